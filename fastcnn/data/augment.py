"""Data augmentation for NCHW image batches, and test-time augmentation (TTA).

Each transform is a callable ``t(x_batch, rng=None) -> new_batch``:

- it never modifies ``x_batch`` (the result is a new array, same shape unless the
  transform crops to a different size, same dtype);
- it draws *one set of random parameters per image* (a flip decision, a shift, a
  brightness offset ...) and applies them to the whole batch at once with array
  operations, never a Python loop over images;
- it is reproducible: ``rng`` may be a ``numpy.random.Generator`` or an int seed; when
  it is None the transform uses its own generator created from ``seed=`` at
  construction (so ``RandomShift(seed=0)`` gives the same sequence in every run).

``Compose([...])`` chains transforms, and ``get("flip,shift")`` builds one from the
short names in :data:`AUGMENTATIONS` so a command line can say ``--augment flip,shift``.

Test-time augmentation: :func:`tta_views` yields deterministic transformed copies of
a batch (identity, mirror, small shifts) and :func:`tta_predict` averages a model's
predictions over them.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastcnn.common.validation import as_float_array, check_float, check_nonnegative_int, to_pair

__all__ = [
    "Augmentation",
    "RandomHorizontalFlip",
    "RandomShift",
    "RandomCrop",
    "BrightnessJitter",
    "ContrastJitter",
    "Compose",
    "AUGMENTATIONS",
    "get",
    "tta_views",
    "tta_predict",
]

_PAD_MODES = ("constant", "edge", "reflect")


def _as_rng(where: str, rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{where}: rng must be a numpy.random.Generator, an int seed or None; "
                    f"got {type(rng).__name__}.")


def _pad(x: np.ndarray, ph: int, pw: int, mode: str, fill: float) -> np.ndarray:
    """Pad the two spatial axes of an NCHW batch by ``ph`` rows and ``pw`` columns per side."""
    widths = ((0, 0), (0, 0), (ph, ph), (pw, pw))
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=fill)
    return np.pad(x, widths, mode=mode)


def _crop_each(padded: np.ndarray, top: np.ndarray, left: np.ndarray, h: int, w: int):
    """Crop an ``h x w`` window at a different ``(top[n], left[n])`` from every image.

    ``sliding_window_view`` is a zero-copy view of shape ``(N, C, PH-h+1, PW-w+1, h, w)``
    holding every window; indexing it with one (top, left) pair per image picks the
    windows in a single gather, no loop. The index arrays sit on axes 0, 2, 3 around the
    slice on axis 1, so NumPy puts the broadcast (N) axis first: the result is (N, C, h, w).
    """
    windows = sliding_window_view(padded, (h, w), axis=(2, 3))
    return windows[np.arange(padded.shape[0]), :, top, left]


class Augmentation:
    """Base class: input checks, the random generator, and config round trips.

    Subclasses implement ``_apply(x, rng)`` on a validated float NCHW array and return
    a new array.
    """

    def __init__(self, seed=None):
        if seed is not None:
            seed = check_nonnegative_int(type(self).__name__, "seed", seed)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, x, rng=None) -> np.ndarray:
        where = type(self).__name__
        x = as_float_array(where, "x", x, ndim=4)
        rng = self._rng if rng is None else _as_rng(where, rng)
        return self._apply(x, rng)

    def get_config(self) -> dict:
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class RandomHorizontalFlip(Augmentation):
    """Mirror each image left-right with probability ``p``: ``out[n] = x[n, :, :, ::-1]``.

    Right for natural images (CIFAR); wrong for digits and text, where a mirrored
    symbol is a different symbol.
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(seed)
        self.p = check_float("RandomHorizontalFlip", "p", p, low=0.0, high=1.0)

    def get_config(self) -> dict:
        return {"p": self.p, **super().get_config()}

    def _apply(self, x, rng):
        flip = rng.random(x.shape[0]) < self.p  # one decision per image
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out


class RandomCrop(Augmentation):
    """Pad each side by ``padding``, then crop a ``size`` window at a random place per image.

    With ``size`` equal to the input size and ``padding=4`` this is the classic CIFAR
    recipe (pad 32 -> 40, crop 32 back): a random translation by up to 4 pixels.

    Parameters
    ----------
    size : int, (h, w) or None
        Output height and width; None keeps the input size.
    padding : int or (ph, pw)
        Pixels added on each side before cropping.
    mode : {"constant", "edge", "reflect"}
        How the padding is filled: ``fill``, the nearest border pixel, or a mirror image.
    fill : float
        The value of constant padding.

    Shape: ``(N, C, H, W) -> (N, C, h, w)``, requires ``h <= H + 2 ph`` and ``w <= W + 2 pw``.
    """

    def __init__(self, size=None, padding=0, mode: str = "constant", fill: float = 0.0,
                 seed=None):
        super().__init__(seed)
        where = type(self).__name__
        self.size = None if size is None else to_pair(where, "size", size)
        self.padding = to_pair(where, "padding", padding, minimum=0)
        if mode not in _PAD_MODES:
            raise ValueError(f"{where}: mode must be one of {_PAD_MODES}; got {mode!r}.")
        self.mode = mode
        self.fill = check_float(where, "fill", fill)

    def get_config(self) -> dict:
        return {"size": self.size, "padding": self.padding, "mode": self.mode,
                "fill": self.fill, **super().get_config()}

    def _apply(self, x, rng):
        n, _, height, width = x.shape
        ph, pw = self.padding
        h, w = (height, width) if self.size is None else self.size
        if h > height + 2 * ph or w > width + 2 * pw:
            raise ValueError(
                f"{type(self).__name__}: crop size {(h, w)} must fit the padded input "
                f"{(height + 2 * ph, width + 2 * pw)}; got x.shape={x.shape}.")
        padded = _pad(x, ph, pw, self.mode, self.fill)
        top = rng.integers(0, height + 2 * ph - h + 1, size=n)
        left = rng.integers(0, width + 2 * pw - w + 1, size=n)
        return _crop_each(padded, top, left, h, w)


class RandomShift(RandomCrop):
    """Translate each image by a random ``(dy, dx)``, ``|dy|, |dx| <= max_shift``, same size.

    ``out[n, c, i, j] = x[n, c, i - dy, j - dx]``, with pixels shifted in from outside
    filled by ``mode`` (``"constant"`` fills with ``fill``, ``"edge"`` repeats the border).
    Implemented as :class:`RandomCrop` with ``size`` = input size and
    ``padding = max_shift``: a crop at offset ``max_shift - dy`` of the padded image.
    """

    def __init__(self, max_shift=2, mode: str = "constant", fill: float = 0.0, seed=None):
        super().__init__(size=None, padding=to_pair("RandomShift", "max_shift", max_shift,
                                                     minimum=0),
                         mode=mode, fill=fill, seed=seed)
        self.max_shift = self.padding

    def get_config(self) -> dict:
        return {"max_shift": self.max_shift, "mode": self.mode, "fill": self.fill,
                "seed": self.seed}


class _Jitter(Augmentation):
    """Shared ``clip`` handling for the photometric jitters."""

    def __init__(self, clip=None, seed=None):
        super().__init__(seed)
        if clip is not None:
            if (not isinstance(clip, (tuple, list)) or len(clip) != 2
                    or not all(isinstance(v, numbers.Real) for v in clip) or clip[0] >= clip[1]):
                raise ValueError(f"{type(self).__name__}: clip must be None or a (low, high) "
                                 f"pair with low < high; got {clip!r}.")
            clip = (float(clip[0]), float(clip[1]))
        self.clip = clip

    def _clip(self, out):
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        return out


class BrightnessJitter(_Jitter):
    """Add one random offset per image: ``out[n] = x[n] + delta_n``, ``delta_n ~ U(-max_delta, max_delta)``.

    ``clip=(0, 1)`` keeps pixel data in range; leave it None for standardized data.
    """

    def __init__(self, max_delta: float = 0.1, clip=None, seed=None):
        super().__init__(clip, seed)
        self.max_delta = check_float("BrightnessJitter", "max_delta", max_delta, low=0.0)

    def get_config(self) -> dict:
        return {"max_delta": self.max_delta, "clip": self.clip, **super().get_config()}

    def _apply(self, x, rng):
        delta = rng.uniform(-self.max_delta, self.max_delta, size=(x.shape[0], 1, 1, 1))
        return self._clip(x + delta.astype(x.dtype))


class ContrastJitter(_Jitter):
    """Scale each image's deviations from its per-channel mean by a random factor.

    ``out[n, c] = (x[n, c] - m[n, c]) * f_n + m[n, c]`` with ``m[n, c]`` the mean of
    channel ``c`` of image ``n`` and ``f_n ~ U(lower, upper)`` (as
    ``tf.image.adjust_contrast``). ``f < 1`` flattens, ``f > 1`` sharpens contrast.
    """

    def __init__(self, lower: float = 0.8, upper: float = 1.2, clip=None, seed=None):
        super().__init__(clip, seed)
        self.lower = check_float("ContrastJitter", "lower", lower, low=0.0)
        self.upper = check_float("ContrastJitter", "upper", upper, low=self.lower)

    def get_config(self) -> dict:
        return {"lower": self.lower, "upper": self.upper, "clip": self.clip,
                **super().get_config()}

    def _apply(self, x, rng):
        factor = rng.uniform(self.lower, self.upper, size=(x.shape[0], 1, 1, 1)).astype(x.dtype)
        mean = x.mean(axis=(2, 3), keepdims=True)
        return self._clip((x - mean) * factor + mean)


class Compose(Augmentation):
    """Apply ``transforms`` in order, all drawing from one generator.

    With ``rng=None`` the composition's own generator (from ``seed``) feeds every step,
    so the whole pipeline is reproduced by one seed; the children's own seeds are then
    not used.
    """

    def __init__(self, transforms, seed=None):
        super().__init__(seed)
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] must be callable(x, rng=...); "
                                f"got {type(t).__name__}.")
        self.transforms = transforms

    def get_config(self) -> dict:
        """Children as ``{"class_name", "config"}`` dicts (only fastcnn transforms serialise)."""
        children = []
        for t in self.transforms:
            if type(t).__name__ not in _CLASSES:
                raise TypeError(f"Compose.get_config: cannot serialise {t!r}; only the "
                                f"transforms {sorted(_CLASSES)} have a config.")
            children.append({"class_name": type(t).__name__, "config": t.get_config()})
        return {"transforms": children, **super().get_config()}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        children = [_CLASSES[c["class_name"]].from_config(c["config"])
                    for c in config.pop("transforms")]
        return cls(children, **config)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}], seed={self.seed!r})"

    def _apply(self, x, rng):
        for t in self.transforms:
            x = t(x, rng=rng)
        return x


_CLASSES = {c.__name__: c for c in (RandomHorizontalFlip, RandomShift, RandomCrop,
                                     BrightnessJitter, ContrastJitter, Compose)}

#: short names for :func:`get` (and ``--augment`` on the command line)
AUGMENTATIONS = {
    "flip": RandomHorizontalFlip,
    "hflip": RandomHorizontalFlip,
    "shift": RandomShift,
    "crop": lambda **kw: RandomCrop(**{"padding": 4, **kw}),
    "brightness": BrightnessJitter,
    "contrast": ContrastJitter,
}


def get(spec, seed=None):
    """Build an augmentation from a flexible spec.

    - ``None`` or ``""`` -> None (no augmentation);
    - ``"flip,shift"`` -> ``Compose([RandomHorizontalFlip(), RandomShift()], seed=seed)``,
      a single name -> that transform (``"crop"`` is ``RandomCrop(padding=4)``);
    - ``{"name": "shift", "max_shift": 3}`` -> ``RandomShift(max_shift=3)``;
    - a list of any of these -> their ``Compose``;
    - a transform or any callable -> returned unchanged.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str):
        names = [s.strip().lower() for s in spec.split(",") if s.strip()]
        parts = [_from_name(name, {}, seed) for name in names]
        return parts[0] if len(parts) == 1 else Compose(parts, seed=seed)
    if isinstance(spec, dict):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"get: a dict spec needs a 'name' key naming one of "
                             f"{sorted(AUGMENTATIONS)}; got {spec!r}.")
        return _from_name(name.lower(), kwargs, seed)
    if isinstance(spec, (list, tuple)):
        return Compose([get(s) for s in spec], seed=seed)
    if callable(spec):
        return spec
    raise TypeError(f"get: spec must be None, a str, a dict, a list or a callable; "
                    f"got {type(spec).__name__}.")


def _from_name(name: str, kwargs: dict, seed):
    if name not in AUGMENTATIONS:
        raise ValueError(f"get: augmentation name must be one of {sorted(AUGMENTATIONS)}; "
                         f"got {name!r}.")
    if seed is not None:
        kwargs = {"seed": seed, **kwargs}
    return AUGMENTATIONS[name](**kwargs)


# ---------------------------------------------------------------------------------
# Test-time augmentation
# ---------------------------------------------------------------------------------
def _shift(x: np.ndarray, dy: int, dx: int, mode: str) -> np.ndarray:
    """Deterministic translation, ``out[..., i, j] = x[..., i - dy, j - dx]``."""
    if dy == 0 and dx == 0:
        return x.copy()
    ph, pw = abs(dy), abs(dx)
    padded = _pad(x, ph, pw, mode, 0.0)
    h, w = x.shape[2:]
    return padded[:, :, ph - dy: ph - dy + h, pw - dx: pw - dx + w].copy()


def tta_views(x, flips: bool = True, shifts=(), mode: str = "edge"):
    """Yield deterministic transformed copies of the batch ``x`` for test-time augmentation.

    The views are ``x`` shifted by ``(0, 0)`` and by each ``(dy, dx)`` in ``shifts``
    (see :func:`_shift`; borders filled by ``mode``), each followed by its mirror image
    when ``flips`` is True: ``(1 + len(shifts)) * (2 if flips else 1)`` views, each a
    new array of ``x``'s shape and dtype, the first one equal to ``x``.
    """
    x = as_float_array("tta_views", "x", x, ndim=4)
    if mode not in _PAD_MODES:
        raise ValueError(f"tta_views: mode must be one of {_PAD_MODES}; got {mode!r}.")
    offsets = [(0, 0)]
    for s in shifts:
        if (not isinstance(s, (tuple, list)) or len(s) != 2
                or not all(isinstance(v, numbers.Integral) for v in s)):
            raise ValueError(f"tta_views: shifts must hold (dy, dx) pairs of ints; got {s!r}.")
        if abs(s[0]) >= x.shape[2] or abs(s[1]) >= x.shape[3]:
            raise ValueError(f"tta_views: shift {tuple(s)} must be smaller than the image "
                             f"size {x.shape[2:]}.")
        offsets.append((int(s[0]), int(s[1])))
    for dy, dx in offsets:
        view = _shift(x, dy, dx, mode)
        yield view
        if flips:
            yield view[:, :, :, ::-1].copy()


def tta_predict(predict_fn, x, views=None):
    """Average ``predict_fn`` over test-time views of ``x``.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(batch) -> predictions`` (e.g. class probabilities ``(N, K)``).
    x : ndarray (N, C, H, W)
    views : None, True, dict or iterable of arrays
        None/True: the default :func:`tta_views` (identity and mirror);
        a dict: keyword arguments for :func:`tta_views`;
        an iterable: the view batches themselves, each of ``x``'s shape.

    Returns
    -------
    The mean of the predictions over the views (accumulated in float64, returned in the
    dtype ``predict_fn`` returns).
    """
    x = as_float_array("tta_predict", "x", x, ndim=4)
    if views is None or views is True:
        views = tta_views(x)
    elif isinstance(views, dict):
        views = tta_views(x, **views)
    total, count, first = None, 0, None
    for i, view in enumerate(views):
        view = np.asarray(view)
        if view.shape != x.shape:
            raise ValueError(f"tta_predict: every view must have x's shape {x.shape}; "
                             f"got view {i} with shape {view.shape}.")
        pred = np.asarray(predict_fn(view))
        if first is None:
            first, total = pred, np.zeros(pred.shape, dtype=np.float64)
        elif pred.shape != first.shape:
            raise ValueError(f"tta_predict: predictions must all have shape {first.shape}; "
                             f"got {pred.shape} for view {i}.")
        total += pred
        count += 1
    if count == 0:
        raise ValueError("tta_predict: views must contain at least one batch; got none.")
    out_dtype = first.dtype if np.issubdtype(first.dtype, np.floating) else np.float64
    return (total / count).astype(out_dtype)
