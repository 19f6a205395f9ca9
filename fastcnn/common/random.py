"""One package-wide random generator, so that a whole run can be reproduced.

Everything random in fastcnn (weight initialization, dropout masks, data
shuffling and augmentation, hyper-parameter search) draws from a
:class:`numpy.random.Generator` obtained through :func:`get_rng`:

>>> import fastcnn.random as fr
>>> fr.seed(0)                  # the next run draws the same numbers as the last one
>>> a = fr.get_rng().standard_normal(3)
>>> fr.seed(0)
>>> bool((a == fr.get_rng().standard_normal(3)).all())
True

``get_rng(None)`` is the package-global generator (re-created by :func:`seed`);
``get_rng(7)`` is a fresh ``np.random.default_rng(7)``, independent of the global
stream; ``get_rng(generator)`` is that generator itself. NumPy's legacy global
state (``np.random.seed``) is never touched, so fastcnn does not disturb other
libraries' random numbers, and theirs do not disturb ours.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["seed", "get_rng"]

# Unseeded until seed() is called: then runs differ, as with Keras/PyTorch defaults.
_global_rng: np.random.Generator = np.random.default_rng()


def seed(n: int) -> None:
    """Re-create the package-global generator as ``np.random.default_rng(n)``.

    Parameters
    ----------
    n : int >= 0
        The seed. Call once at the start of a script to make it reproducible.
    """
    global _global_rng
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"seed: n must be a non-negative int; got {n!r}.")
    _global_rng = np.random.default_rng(int(n))


def get_rng(seed=None) -> np.random.Generator:
    """The generator to draw from.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        ``None``: the package-global generator (see :func:`seed`); an int >= 0:
        a fresh ``np.random.default_rng(seed)`` (the same numbers on every call);
        a ``Generator``: returned as is.
    """
    if seed is None:
        return _global_rng
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(
        f"get_rng: seed must be None, a non-negative int or a numpy.random.Generator; "
        f"got {seed!r}."
    )
