"""``Configurable``: the Keras config protocol shared by initializers, regularizers
and schedules — ``get_config()`` returns the constructor arguments,
``from_config(config) = cls(**config)``, and two objects are equal when their
types and configs are."""

from __future__ import annotations
from fastcnn.common.keywords import wrap_init_keywords

__all__ = ["Configurable"]


class Configurable:
    """Mixin: subclasses list their constructor arguments in ``_config_keys``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        wrap_init_keywords(cls)    # unknown keywords name the closest valid one

    _config_keys: tuple[str, ...] = ()

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key in self._config_keys}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def lookup_class(where: str, what: str, registry: dict, name: str, *,
                 case_insensitive: bool = False, shown: str | None = None) -> type:
    """The class registered as ``name`` (lower-cased first when ``case_insensitive``),
    or the registered class whose ``__name__`` is ``name`` (``"HeNormal"``); else a
    ``ValueError`` listing the valid names (``shown``, or the sorted registry keys)."""
    key = name.lower() if case_insensitive else name
    cls = registry.get(key) or {c.__name__: c for c in registry.values()}.get(name)
    if cls is None:
        hint = "case-insensitive" if case_insensitive else "or their class names"
        names = shown or ", ".join(sorted(registry))
        raise ValueError(f"{where}: unknown {what} {name!r}; valid names: {names} ({hint}).")
    return cls
