"""Search spaces: where each hyper-parameter is drawn from.

A *space* is a dict ``name -> distribution`` (or a plain value, held fixed)::

    space = {"lr": LogUniform(1e-4, 1e-1),        # lr = 10 ** uniform(-4, -1)
             "reg": LogUniform(1e-6, 1e-1),
             "dropout": Uniform(0.0, 0.5),
             "filters": Choice([16, 32, 64]),
             "batch_size": 32}                    # fixed

Learning rates and regularization strengths act multiplicatively, so they are drawn
uniformly in *log* space (the course's ``reg = 10 ** uniform(-5, 5)``): a uniform draw
on [1e-6, 1e-1] would put 90% of the trials above 1e-2. Random draws beat a grid for
the same budget when only a few parameters matter (Bergstra & Bengio, 2012): a 3x3
grid tries 3 values of the important one, 9 random trials try 9.

Every distribution can ``sample(rng)``, give ``grid(n)`` points (for grid search) and
be ``narrowed(values)`` around the values of the best trials (coarse -> fine search).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fastcnn.common.configurable import Configurable

__all__ = ["Distribution", "LogUniform", "Uniform", "IntUniform", "Choice", "check_space",
           "sample_space", "grid_space", "refine_space", "space_to_config",
           "space_from_config"]


def _check_bounds(where: str, low, high, positive: bool = False) -> tuple[float, float]:
    for name, value in (("low", low), ("high", high)):
        if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                or not math.isfinite(value)):
            raise ValueError(f"{where}: {name} must be a finite real number; got {value!r}.")
    if positive and low <= 0:
        raise ValueError(f"{where}: low must be > 0 (the range is taken in log space); "
                         f"got {low!r}. Hint: Uniform(low, high) for ranges that reach 0.")
    if not low < high:
        raise ValueError(f"{where}: low must be < high; got low={low!r}, high={high!r}.")
    return low, high


class Distribution(Configurable):
    """Base class. ``log`` says whether plots should use a log axis."""

    log = False

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError

    def grid(self, n: int) -> list:
        raise NotImplementedError

    def narrowed(self, values, expand: float = 0.5) -> "Distribution":
        raise NotImplementedError


class _Interval(Distribution):
    """A real interval [low, high]; subclasses say how it is warped (log or not)."""

    _config_keys = ("low", "high")

    def _to_axis(self, value: float) -> float:      # the axis sampling is uniform on
        return float(value)

    def _from_axis(self, value: float) -> float:
        return float(value)

    def sample(self, rng):
        return self._from_axis(rng.uniform(self._to_axis(self.low), self._to_axis(self.high)))

    def grid(self, n: int) -> list:
        """``n`` points evenly spaced on the axis (geometric for LogUniform)."""
        axis = np.linspace(self._to_axis(self.low), self._to_axis(self.high), n)
        return [self._from_axis(v) for v in axis]

    def narrowed(self, values, expand: float = 0.5):
        """``[min(values), max(values)]`` on the axis, widened by ``expand`` times its
        width on each side (at least ``expand`` x 10% of the full width, so a single
        value still gives a range), and clipped to this distribution's bounds."""
        axis = [self._to_axis(v) for v in values]
        lo_full, hi_full = self._to_axis(self.low), self._to_axis(self.high)
        lo, hi = min(axis), max(axis)
        pad = expand * max(hi - lo, 0.1 * (hi_full - lo_full))
        lo, hi = max(lo - pad, lo_full), min(hi + pad, hi_full)
        return type(self)(self._from_axis(lo), self._from_axis(hi))


class Uniform(_Interval):
    """``uniform(low, high)``: for parameters that act additively (dropout rate)."""

    def __init__(self, low, high):
        self.low, self.high = map(float, _check_bounds("Uniform", low, high))


class LogUniform(_Interval):
    """``10 ** uniform(log10(low), log10(high))``: every decade is equally likely
    (learning rates, regularization strengths). ``0 < low < high``."""

    log = True

    def __init__(self, low, high):
        self.low, self.high = map(float, _check_bounds("LogUniform", low, high, positive=True))

    def _to_axis(self, value):
        return math.log10(value)

    def _from_axis(self, value):
        return float(10.0 ** value)


class IntUniform(Distribution):
    """An integer drawn uniformly from ``low, low + 1, ..., high`` (both included)."""

    _config_keys = ("low", "high")

    def __init__(self, low, high):
        for name, value in (("low", low), ("high", high)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ValueError(f"IntUniform: {name} must be an int; got {value!r}.")
        if not low < high:
            raise ValueError(f"IntUniform: low must be < high; got low={low!r}, "
                             f"high={high!r}. Hint: a fixed value needs no distribution.")
        self.low, self.high = int(low), int(high)

    def sample(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def grid(self, n: int) -> list:
        return sorted({int(round(v)) for v in np.linspace(self.low, self.high, n)})

    def narrowed(self, values, expand: float = 0.5):
        lo, hi = min(values), max(values)
        pad = int(math.ceil(expand * max(hi - lo, 1)))
        lo, hi = max(lo - pad, self.low), min(hi + pad, self.high)
        if lo == hi:                                     # keep a real range
            lo, hi = (lo - 1, hi) if lo > self.low else (lo, hi + 1)
        return IntUniform(int(lo), int(hi))


class Choice(Distribution):
    """One of ``options``, each equally likely (activation names, layer widths...)."""

    _config_keys = ("options",)

    def __init__(self, options):
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise TypeError(f"Choice: options must be a list of values; got {options!r}.")
        options = list(options)
        if not options:
            raise ValueError("Choice: options must hold at least one value; got [].")
        self.options = options

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def grid(self, n: int) -> list:
        return list(self.options)                        # a grid tries every option

    def narrowed(self, values, expand: float = 0.5):
        """The options that the given (best) trials used, in the original order."""
        kept = [option for option in self.options if option in list(values)]
        return Choice(kept or self.options)


_CLASSES = {cls.__name__: cls for cls in (Uniform, LogUniform, IntUniform, Choice)}


def check_space(where: str, space) -> dict:
    """A copy of ``space`` after checking it is a non-empty dict with str keys."""
    if not isinstance(space, dict) or not space:
        raise TypeError(f"{where}: space must be a non-empty dict name -> distribution "
                        f"(LogUniform, Uniform, IntUniform, Choice) or fixed value; "
                        f"got {space!r}.")
    for name in space:
        if not isinstance(name, str):
            raise TypeError(f"{where}: space keys must be parameter names (str); got {name!r}.")
    return dict(space)


def sample_space(space: dict, rng: np.random.Generator) -> dict:
    """One draw: ``{name: value}`` (fixed values copied), in the space's key order."""
    return {name: dist.sample(rng) if isinstance(dist, Distribution) else dist
            for name, dist in space.items()}


def grid_space(space: dict, trials: int) -> list[dict]:
    """The points of a grid with at most ``trials`` points (at least one per axis).

    ``Choice`` axes try every option; the budget left, ``trials / prod(#options)``,
    is shared evenly by the continuous axes: ``n = floor(budget ** (1 / #continuous))``
    points each.
    """
    choice_points = math.prod(len(d.options) for d in space.values() if isinstance(d, Choice))
    continuous = [d for d in space.values()
                  if isinstance(d, Distribution) and not isinstance(d, Choice)]
    per_axis = 1
    if continuous:
        budget = max(trials / choice_points, 1.0)
        # the small epsilon keeps floor(8 ** (1/3)) == 2, not 1.9999 -> 1
        per_axis = max(1, int(math.floor(budget ** (1.0 / len(continuous)) + 1e-9)))
    axes = [(name, dist.grid(per_axis) if isinstance(dist, Distribution) else [dist])
            for name, dist in space.items()]
    points = [{}]
    for name, values in axes:                          # itertools.product, as dicts
        points = [{**point, name: value} for point in points for value in values]
    return points


def refine_space(space: dict, best_params: list[dict], expand: float = 0.5) -> dict:
    """A narrower space around ``best_params`` (the parameters of the best trials):
    every distribution is :meth:`Distribution.narrowed` to the values they used."""
    if not best_params:
        raise ValueError("refine_space: best_params must hold at least one trial's "
                         "parameters; got []. Hint: no trial finished without diverging.")
    return {name: dist.narrowed([p[name] for p in best_params], expand)
            if isinstance(dist, Distribution) else dist for name, dist in space.items()}


def space_to_config(space: dict) -> dict:
    """JSON-ready: ``{name: {"class_name": ..., "config": ...}}`` or ``{"value": v}``."""
    return {name: ({"class_name": type(d).__name__, "config": d.get_config()}
                   if isinstance(d, Distribution) else {"value": d})
            for name, d in space.items()}


def space_from_config(config: dict) -> dict:
    """Inverse of :func:`space_to_config`."""
    return {name: (_CLASSES[item["class_name"]].from_config(item["config"])
                   if "class_name" in item else item["value"])
            for name, item in config.items()}
