"""Unknown keyword arguments get an error that names the closest valid one.

A Keras user types ``ModelCheckpoint(filename=...)`` or ``fit(x, y, epoch=3)``; Python's
own message ("unexpected keyword argument") does not say what the right name is. Every
public constructor and method of fastcnn that takes keywords goes through
:func:`check_keywords` (directly, or through the :func:`suggest_keywords` decorator), so
the message reads::

    ModelCheckpoint: unexpected keyword argument 'filename'; did you mean 'filepath'?
    Valid keywords: filepath, monitor, save_best_only, ...

The match is :func:`difflib.get_close_matches` (a similarity ratio >= 0.6 over the
characters), the same idea as Python 3.12's "Did you mean" for names.
"""

from __future__ import annotations

import difflib
import functools
import inspect

__all__ = ["closest", "check_keywords", "suggest_keywords", "reject_unknown",
           "init_keywords", "wrap_init_keywords"]


def closest(name: str, valid) -> str | None:
    """The valid name most similar to ``name`` (None when nothing is close)."""
    matches = difflib.get_close_matches(str(name), sorted(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_keyword_error(where: str, name: str, valid) -> TypeError:
    """``TypeError`` naming the unknown keyword, the closest valid one and the list."""
    valid = sorted(valid)
    guess = closest(name, valid)
    hint = f"; did you mean {guess!r}?" if guess else "."
    return TypeError(f"{where}: unexpected keyword argument {name!r}{hint} "
                     f"Valid keywords: {', '.join(valid)}.")


def check_keywords(where: str, given, valid) -> None:
    """Raise :func:`unknown_keyword_error` for the first name of ``given`` not in ``valid``."""
    valid = set(valid)
    for name in given:
        if name not in valid:
            raise unknown_keyword_error(where, name, valid)


def _named_parameters(func) -> set:
    return {name for name, p in inspect.signature(func).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"}


def reject_unknown(where: str, unknown: dict, func) -> None:
    """For functions that end in ``**unknown`` (so that no wrapper frame shifts the
    ``stacklevel`` of the warnings they give): raise for the first unknown keyword,
    suggesting the closest of ``func``'s own parameters."""
    if unknown:
        raise unknown_keyword_error(where, next(iter(unknown)), _named_parameters(func))


def suggest_keywords(func):
    """Decorator: unknown keywords to ``func`` raise :func:`unknown_keyword_error`
    (``where`` is its qualified name, ``Sequential.fit``) instead of Python's message."""
    valid = _named_parameters(func)
    where = func.__qualname__

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for name in kwargs:
            if name not in valid:
                owner = type(args[0]).__name__ if args and "." in where else None
                label = f"{owner}.{func.__name__}" if owner else where
                raise unknown_keyword_error(label, name, valid)
        return func(*args, **kwargs)

    return wrapper


def init_keywords(cls) -> set:
    """The keywords ``cls(...)`` accepts: those its constructor names and, while a
    constructor passes ``**kwargs`` on to its base, those of the next one up."""
    names: set = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        names |= _named_parameters(init)
        if not any(p.kind is p.VAR_KEYWORD
                   for p in inspect.signature(init).parameters.values()):
            break
    return names


def wrap_init_keywords(cls) -> None:
    """Make ``cls.__init__`` (when it defines one) check its keywords against
    :func:`init_keywords` first. Base classes call this from ``__init_subclass__``."""
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_checks_keywords", False):
        return

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        # Only the constructor Python called first checks (the outermost of a chain of
        # super().__init__ calls), against every keyword of the class's bases.
        if kwargs and type(self).__init__ is checked_init:
            check_keywords(type(self).__name__, kwargs, init_keywords(type(self)))
        init(self, *args, **kwargs)

    checked_init._checks_keywords = True
    cls.__init__ = checked_init
