"""Weight initializers: Keras names, Keras semantics, fastcnn's array layouts.

An initializer is called as ``init(shape, dtype=np.float32, rng=None)`` and returns a
new array. The random ones draw from ``rng`` if given (a Generator or an int seed),
else from their own ``seed=`` (an int: the same values on every call, as in Keras),
else from the package-global generator (:func:`fastcnn.random.get_rng`, which
:func:`fastcnn.random.seed` makes reproducible). Values are drawn in float64 and
rounded to ``dtype``, so one seed gives the same weights in float32 and float64.

Why the scale matters (CS231n, "Weight initialization"): with ``W ~ 0.01 * randn``
activations shrink layer after layer until gradients vanish; with too large a
scale, tanh/sigmoid units saturate. Choosing ``Var(W) = scale / fan`` keeps the
variance of activations (fan_in) or of gradients (fan_out) constant through depth:

===================  =====  ========  =========================================
name                 scale  mode      distribution
===================  =====  ========  =========================================
``glorot_uniform``   1      fan_avg   uniform       (Glorot & Bengio 2010; the
``glorot_normal``    1      fan_avg   truncated     Keras default for Dense/Conv2D)
``he_uniform``       2      fan_in    uniform       (He et al. 2015, for ReLU)
``he_normal``        2      fan_in    truncated
``lecun_uniform``    1      fan_in    uniform       (LeCun et al. 1998, for SELU)
``lecun_normal``     1      fan_in    truncated
===================  =====  ========  =========================================

all of them presets of :class:`VarianceScaling`. The CS231n recipe
``W = 0.01 * np.random.randn(D, H)`` is ``random_normal`` with ``stddev=0.01``.

Fans (:func:`compute_fans`) follow fastcnn's layouts, not Keras': Dense kernels are
``(D_in, D_out)`` and conv kernels are OIHW ``(F, C, KH, KW)`` (PyTorch), so
``fan_in = C*KH*KW`` and ``fan_out = F*KH*KW``. A Keras model and a fastcnn model of
the same architecture thus draw from the same distributions.
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from fastcnn.common.configurable import Configurable, lookup_class
from fastcnn.common.random import get_rng
from fastcnn.common.validation import check_float, check_nonnegative_float

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "GlorotNormal", "GlorotUniform", "HeNormal",
    "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal", "compute_fans", "get",
    "serialize", "zeros", "ones", "constant", "random_normal", "random_uniform",
    "truncated_normal", "variance_scaling", "glorot_normal", "glorot_uniform",
    "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "orthogonal",
]


# std of a unit normal truncated to [-2, 2] is 0.87962566103423978; dividing by it
# makes the *truncated* distribution have the requested std (Keras does the same).
_TRUNCATED_STD = 0.87962566103423978


def _check_shape(where: str, shape) -> tuple:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ValueError(f"{where}: shape must be a tuple of non-negative ints; got {shape!r}.")
    return tuple(int(d) for d in shape)


def _check_float_dtype(where: str, dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{where}: dtype must be a floating dtype (float32 or float64); "
                        f"got {dtype}.")
    return dtype


def _check_seed(where: str, seed):
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)
                             or seed < 0):
        raise ValueError(f"{where}: seed must be None or a non-negative int; got {seed!r}.")
    return None if seed is None else int(seed)


def compute_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape.

    ============================  ================  ================
    shape                         fan_in            fan_out
    ============================  ================  ================
    ``()``                        1                 1
    ``(n,)`` (a bias, a vector)   n                 n
    ``(D_in, D_out)`` (Dense)     D_in              D_out
    ``(F, C, KH, KW)`` (OIHW)     C * KH * KW       F * KH * KW
    ``(F, C, *k)`` (any conv)     C * prod(k)       F * prod(k)
    ============================  ================  ================

    Note that the 2-D case is input-first (``x @ W``) while the conv case is
    output-first (OIHW): these are the two layouts fastcnn uses.
    """
    shape = _check_shape("compute_fans", shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


class Initializer(Configurable):
    """Base class: ``init(shape, dtype=np.float32, rng=None) -> ndarray``.

    Subclasses implement ``_generate(shape, dtype, rng)`` and keep their constructor
    arguments as attributes named like the arguments, so that ``get_config()``
    returns exactly the constructor's keyword arguments and
    ``from_config(config) = cls(**config)`` rebuilds an equal initializer (Keras).
    """

    _random = True      # False for the deterministic ones (zeros, ones, constant)

    def __call__(self, shape, dtype=np.float32, rng=None) -> np.ndarray:
        where = type(self).__name__
        shape = _check_shape(where, shape)
        if self._random:
            dtype = _check_float_dtype(where, dtype)
            # Precedence: the rng argument, then this initializer's seed, then global.
            rng = get_rng(rng if rng is not None else getattr(self, "seed", None))
        return self._generate(shape, np.dtype(dtype), rng)

    def _generate(self, shape: tuple, dtype: np.dtype, rng) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _generate().")



class Zeros(Initializer):
    """All zeros (the usual bias initializer)."""

    _random = False

    def _generate(self, shape, dtype, rng):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """All ones (batch-norm ``gamma``)."""

    _random = False

    def _generate(self, shape, dtype, rng):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    """Every element equal to ``value`` (a real scalar)."""

    _random = False
    _config_keys = ("value",)

    def __init__(self, value: float = 0.0):
        self.value = check_float("Constant", "value", value)

    def _generate(self, shape, dtype, rng):
        return np.full(shape, self.value, dtype=dtype)


class RandomNormal(Initializer):
    """``W ~ N(mean, stddev**2)``, untruncated.

    The CS231n recipe ``0.01 * np.random.randn(...)`` is ``RandomNormal(stddev=0.01)``:
    fine for a shallow net, but in deep nets activations shrink towards zero layer
    after layer (use ``he_normal`` for ReLU nets instead).
    """

    _config_keys = ("mean", "stddev", "seed")

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None):
        self.mean = check_float("RandomNormal", "mean", mean)
        self.stddev = check_nonnegative_float("RandomNormal", "stddev", stddev)
        self.seed = _check_seed("RandomNormal", seed)

    def _generate(self, shape, dtype, rng):
        return (self.mean + self.stddev * rng.standard_normal(shape)).astype(dtype)


class RandomUniform(Initializer):
    """``W ~ U[minval, maxval)``."""

    _config_keys = ("minval", "maxval", "seed")

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed=None):
        self.minval = check_float("RandomUniform", "minval", minval)
        self.maxval = check_float("RandomUniform", "maxval", maxval)
        if self.maxval < self.minval:
            raise ValueError(f"RandomUniform: maxval must be >= minval={self.minval!r}; "
                             f"got {self.maxval!r}.")
        self.seed = _check_seed("RandomUniform", seed)

    def _generate(self, shape, dtype, rng):
        return rng.uniform(self.minval, self.maxval, size=shape).astype(dtype)


def _truncated_standard_normal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Unit normals, every value beyond 2 (standard deviations) re-drawn until it is not.

    About 4.6% of the values are re-drawn once, 0.2% twice, and so on: the loop ends
    after a handful of rounds. (Keras' TruncatedNormal uses the same rule.)
    """
    z = rng.standard_normal(shape)
    bad = np.flatnonzero(np.abs(z) > 2.0)
    flat = z.reshape(-1)
    while bad.size:
        flat[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(flat[bad]) > 2.0]
    return z


class TruncatedNormal(Initializer):
    """``W ~ N(mean, stddev**2)`` with values more than 2 ``stddev`` from ``mean``
    discarded and re-drawn (Keras semantics). ``stddev`` is the std *before*
    truncation, so the actual std is ``0.8796 * stddev``."""

    _config_keys = ("mean", "stddev", "seed")

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None):
        self.mean = check_float("TruncatedNormal", "mean", mean)
        self.stddev = check_nonnegative_float("TruncatedNormal", "stddev", stddev)
        self.seed = _check_seed("TruncatedNormal", seed)

    def _generate(self, shape, dtype, rng):
        z = _truncated_standard_normal(rng, shape)
        return (self.mean + self.stddev * z).astype(dtype)


class VarianceScaling(Initializer):
    """Zero-mean weights with ``Var(W) = scale / n``, ``n`` a fan of the shape.

    ``n`` is ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2`` by ``mode``
    (:func:`compute_fans`). By ``distribution``:

    * ``"truncated_normal"`` (alias ``"normal"``): a normal truncated at 2 std, with
      ``stddev = sqrt(scale / n) / 0.87962566103423978`` *before* truncation, so
      that the truncated values have std ``sqrt(scale / n)`` (Keras);
    * ``"untruncated_normal"``: ``N(0, scale / n)``;
    * ``"uniform"``: ``U[-limit, limit]`` with ``limit = sqrt(3 * scale / n)``
      (a uniform on ``[-a, a]`` has variance ``a**2 / 3``).

    He, Glorot and LeCun initializers are presets of this class (module docstring).
    """

    _config_keys = ("scale", "mode", "distribution", "seed")
    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed=None):
        where = type(self).__name__
        self.scale = check_float(where, "scale", scale, low=0, low_inclusive=False,
                                 high_inclusive=False)
        if mode not in self._MODES:
            raise ValueError(f"{where}: mode must be one of {self._MODES}; got {mode!r}.")
        if distribution == "normal":        # Keras 2 spelling
            distribution = "truncated_normal"
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"{where}: distribution must be one of {self._DISTRIBUTIONS}; "
                             f"got {distribution!r}.")
        self.mode = mode
        self.distribution = distribution
        self.seed = _check_seed(where, seed)

    def variance(self, shape) -> float:
        """The target variance ``scale / n`` for this shape."""
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return self.scale / max(1.0, n)

    def _generate(self, shape, dtype, rng):
        var = self.variance(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            w = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "untruncated_normal":
            w = math.sqrt(var) * rng.standard_normal(shape)
        else:
            w = (math.sqrt(var) / _TRUNCATED_STD) * _truncated_standard_normal(rng, shape)
        return w.astype(dtype)


class _Preset(VarianceScaling):
    """A VarianceScaling whose scale/mode/distribution are fixed; only ``seed`` is free."""

    _config_keys = ("seed",)
    _preset: tuple = ()

    def __init__(self, seed=None):
        scale, mode, distribution = self._preset
        super().__init__(scale=scale, mode=mode, distribution=distribution, seed=seed)


class GlorotNormal(_Preset):
    """Glorot (Xavier) normal: truncated normal, std ``sqrt(2 / (fan_in + fan_out))``."""
    _preset = (1.0, "fan_avg", "truncated_normal")


class GlorotUniform(_Preset):
    """Glorot (Xavier) uniform: ``U[-l, l]``, ``l = sqrt(6 / (fan_in + fan_out))``.
    The Keras default kernel initializer of Dense and Conv2D."""
    _preset = (1.0, "fan_avg", "uniform")


class HeNormal(_Preset):
    """He (Kaiming) normal: truncated normal, std ``sqrt(2 / fan_in)`` (ReLU nets)."""
    _preset = (2.0, "fan_in", "truncated_normal")


class HeUniform(_Preset):
    """He (Kaiming) uniform: ``U[-l, l]``, ``l = sqrt(6 / fan_in)``."""
    _preset = (2.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """LeCun normal: truncated normal, std ``sqrt(1 / fan_in)`` (SELU nets)."""
    _preset = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """LeCun uniform: ``U[-l, l]``, ``l = sqrt(3 / fan_in)``."""
    _preset = (1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014).

    The weight is viewed as a matrix ``M`` of ``rows x cols``: for 2-D shapes the
    shape itself (Dense ``(D_in, D_out)``, as Keras), for N-D shapes
    ``(shape[0], prod(shape[1:]))`` (OIHW: one row per filter, as PyTorch). ``M`` is
    the Q factor of the QR decomposition of a Gaussian matrix, with the signs of
    ``diag(R)`` folded in so that ``Q`` is uniformly (Haar) distributed. Its
    columns are orthonormal when ``rows >= cols`` (``M.T @ M = gain**2 I``), else
    its rows are (``M @ M.T = gain**2 I``).
    """

    _config_keys = ("gain", "seed")

    def __init__(self, gain: float = 1.0, seed=None):
        self.gain = check_float("Orthogonal", "gain", gain)
        self.seed = _check_seed("Orthogonal", seed)

    def _generate(self, shape, dtype, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: shape must have at least 2 dims; got {shape!r}.")
        rows, cols = (shape if len(shape) == 2 else (shape[0], math.prod(shape[1:])))
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)                   # q: (max, min) with orthonormal columns
        q *= np.sign(np.diag(r))                 # sign fix: makes q Haar-distributed
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)


# Keras-style lowercase aliases (``initializers.he_normal()`` works like the class).
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal = VarianceScaling, Orthogonal
glorot_normal, glorot_uniform = GlorotNormal, GlorotUniform
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, LecunUniform

_REGISTRY: dict[str, type] = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_normal": GlorotNormal, "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal, "he_uniform": HeUniform,
    "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
}


def _lookup(name: str) -> type:
    return lookup_class("initializers.get", "initializer", _REGISTRY, name)


class _FunctionInitializer(Initializer):
    """Adapts a plain function ``f(shape, dtype=..., rng=...)`` (either keyword
    optional) to the Initializer interface. Not serializable."""

    _random = False

    def __init__(self, fn):
        self.fn = fn
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):      # builtins without a signature
            params = {}
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._takes = {k for k in ("dtype", "rng") if var_kw or k in params}

    def _generate(self, shape, dtype, rng):
        kwargs = {"dtype": dtype, "rng": get_rng(rng)}     # an int seed becomes a Generator
        out = np.asarray(self.fn(shape, **{k: kwargs[k] for k in self._takes}))
        if out.shape != shape or out.dtype != dtype:
            raise ValueError(f"initializer {self.fn!r} must return an array of shape {shape} "
                             f"and dtype {dtype}; got shape {out.shape}, dtype {out.dtype}.")
        return out

    def get_config(self):
        raise TypeError(f"initializer function {self.fn!r} cannot be serialized. Hint: "
                        f"subclass fastcnn.initializers.Initializer and give it get_config().")

    def __repr__(self):
        return f"FunctionInitializer({self.fn!r})"


def get(identifier):
    """An :class:`Initializer` from a name, a config dict, an instance or a callable.

    * ``None`` -> ``None``;
    * ``"he_normal"`` or ``"HeNormal"`` -> ``HeNormal()`` (default arguments);
    * ``{"class_name": "RandomNormal", "config": {"stddev": 0.01}}``
      -> ``RandomNormal(stddev=0.01)``;
    * an ``Initializer`` -> itself;
    * a callable ``f(shape, dtype=..., rng=...)`` -> wrapped (``dtype``/``rng`` are passed
      only if ``f`` accepts them).

    Unknown names raise ``ValueError`` listing the valid ones.
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"initializers.get: a config dict needs a 'class_name' key; "
                             f"got keys {sorted(identifier)}.")
        return _lookup(identifier["class_name"]).from_config(dict(identifier.get("config", {})))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return _FunctionInitializer(identifier)
    raise TypeError(f"initializers.get: identifier must be None, a str, a dict, an "
                    f"Initializer or a callable; got {type(identifier).__name__}.")


def serialize(initializer: Initializer) -> dict:
    """``{"class_name": ..., "config": ...}``, the inverse of :func:`get` for a dict."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
