"""Augmentation: determinism under a seed, no in-place changes, shapes, exact geometry, TTA."""

import json

import numpy as np
import pytest

from fastcnn.data import augment
from fastcnn.data.augment import (
    BrightnessJitter,
    Compose,
    ContrastJitter,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShift,
)

MAKERS = {
    "flip": lambda seed=None: RandomHorizontalFlip(seed=seed),
    "shift-constant": lambda seed=None: RandomShift(2, mode="constant", seed=seed),
    "shift-edge": lambda seed=None: RandomShift((1, 3), mode="edge", seed=seed),
    "crop": lambda seed=None: RandomCrop(size=6, padding=1, seed=seed),
    "brightness": lambda seed=None: BrightnessJitter(0.2, seed=seed),
    "contrast": lambda seed=None: ContrastJitter(0.5, 1.5, seed=seed),
    "compose": lambda seed=None: Compose(
        [RandomHorizontalFlip(), RandomShift(1), BrightnessJitter(0.1, clip=(0, 1))], seed=seed),
}


def batch(dtype=np.float32, shape=(16, 3, 8, 8), seed=0):
    return np.random.default_rng(seed).random(shape).astype(dtype)


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seeded_deterministic_pure_and_dtype(name, dtype):
    x = batch(dtype)
    x_before = x.copy()
    out1 = MAKERS[name](seed=7)(x)
    out2 = MAKERS[name](seed=7)(x)
    np.testing.assert_array_equal(out1, out2)  # same seed, same result
    np.testing.assert_array_equal(x, x_before)  # input untouched
    assert not np.shares_memory(out1, x)
    assert out1.dtype == dtype
    expected = (16, 3, 6, 6) if name == "crop" else x.shape
    assert out1.shape == expected
    # an explicit rng overrides the own generator, and is reproducible too
    t = MAKERS[name](seed=1)
    np.testing.assert_array_equal(t(x, rng=np.random.default_rng(3)), t(x, rng=3))
    # successive calls draw new parameters (the batch has 16 images)
    t = MAKERS[name](seed=7)
    assert not np.array_equal(t(x), t(x))


def test_flip_twice_is_identity_and_p_extremes():
    x = batch()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(RandomHorizontalFlip(p=1.0)(x)), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    # p=0.5: every image is either itself or its mirror, and both happen
    out = RandomHorizontalFlip(seed=0)(batch(shape=(64, 1, 4, 4)))
    src = batch(shape=(64, 1, 4, 4))
    same = np.all(out == src, axis=(1, 2, 3))
    mirrored = np.all(out == src[..., ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored) and same.any() and mirrored.any()


def _naive_shift(img, dy, dx, fill=0.0):
    c, h, w = img.shape
    out = np.full_like(img, fill)
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[:, i, j] = img[:, i - dy, j - dx]
    return out


def test_shift_matches_a_loop_oracle_per_image():
    """Recover each image's (dy, dx) by brute force and check it was within max_shift."""
    x = batch(np.float64, shape=(12, 2, 7, 9))
    out = RandomShift(max_shift=2, mode="constant", seed=5)(x)
    found = set()
    for n in range(len(x)):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out[n], _naive_shift(x[n], dy, dx))]
        assert len(matches) == 1, f"image {n}: no unique shift explains the output"
        found.add(matches[0])
    assert len(found) > 3  # per-image parameters, not one shift for the batch


def test_shift_edge_mode_repeats_border():
    x = batch(np.float64, shape=(32, 1, 5, 5))
    out = RandomShift(max_shift=(2, 2), mode="edge", seed=2)(x)
    # no zeros introduced (inputs are in (0, 1)); every value comes from the same image
    assert out.min() > 0
    for n in range(len(x)):
        assert np.isin(out[n], x[n]).all()


def test_crop_windows_come_from_padded_image():
    x = batch(np.float64, shape=(10, 3, 8, 8))
    out = RandomCrop(size=(5, 6), padding=(1, 2), fill=-1.0, seed=0)(x)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)), constant_values=-1.0)
    for n in range(len(x)):
        hits = [(t, l) for t in range(10 - 5 + 1) for l in range(12 - 6 + 1)
                if np.array_equal(out[n], padded[n, :, t:t + 5, l:l + 6])]
        assert hits
    with pytest.raises(ValueError, match=r"crop size \(12, 12\) must fit the padded input"):
        RandomCrop(size=12, padding=1)(x)


def test_brightness_and_contrast_semantics():
    x = batch(np.float64)
    out = BrightnessJitter(0.3, seed=0)(x)
    delta = out - x
    per_image = delta.reshape(len(x), -1)
    np.testing.assert_allclose(per_image, per_image[:, :1] * np.ones_like(per_image), atol=1e-12)
    assert np.abs(per_image[:, 0]).max() <= 0.3 and np.ptp(per_image[:, 0]) > 0
    clipped = BrightnessJitter(0.5, clip=(0.0, 1.0), seed=0)(x)
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0
    out = ContrastJitter(0.5, 1.5, seed=0)(x)
    # channel means are preserved, deviations are scaled by one factor per image
    np.testing.assert_allclose(out.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=1e-12)
    dev_in = x - x.mean(axis=(2, 3), keepdims=True)
    dev_out = out - out.mean(axis=(2, 3), keepdims=True)
    ratio = (dev_out / dev_in).reshape(len(x), -1)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-9)
    assert ratio.min() >= 0.5 and ratio.max() <= 1.5


def test_get_spec_forms():
    t = augment.get("flip, shift", seed=0)
    assert isinstance(t, Compose) and [type(c) for c in t.transforms] == [
        RandomHorizontalFlip, RandomShift]
    assert isinstance(augment.get("crop"), RandomCrop) and augment.get("crop").padding == (4, 4)
    assert augment.get(None) is None and augment.get("") is None
    s = augment.get({"name": "shift", "max_shift": 3})
    assert s.max_shift == (3, 3)
    assert isinstance(augment.get(["flip", {"name": "contrast"}]), Compose)
    f = RandomHorizontalFlip()
    assert augment.get(f) is f
    with pytest.raises(ValueError, match="augmentation name must be one of"):
        augment.get("flip,rotate")
    with pytest.raises(TypeError, match="spec must be"):
        augment.get(3)


def test_config_round_trip():
    t = Compose([RandomHorizontalFlip(0.3), RandomShift(1, mode="edge"),
                 RandomCrop(6, padding=2), BrightnessJitter(0.1, clip=(0, 1)),
                 ContrastJitter(0.9, 1.1)], seed=4)
    config = json.loads(json.dumps(t.get_config()))
    clone = Compose.from_config(config)
    assert repr(clone) == repr(t)
    x = batch()
    np.testing.assert_array_equal(clone(x), Compose.from_config(config)(x))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: RandomHorizontalFlip(p=1.5), ValueError, r"p must lie in \[0.0, 1.0\]; got 1.5"),
    (lambda: RandomShift(max_shift=-1), ValueError, "max_shift must be >= 0"),
    (lambda: RandomCrop(padding=1, mode="wrap"), ValueError, "mode must be one of"),
    (lambda: ContrastJitter(1.2, 0.8), ValueError, "upper must lie in"),
    (lambda: BrightnessJitter(clip=(1, 0)), ValueError, "clip must be None or a"),
    (lambda: RandomShift()(np.zeros((2, 8, 8), np.float32)), ValueError, "must have 4 dims"),
    (lambda: RandomShift()(np.zeros((2, 1, 8, 8), np.uint8)), TypeError, "dtype uint8"),
    (lambda: RandomShift()(np.zeros((2, 1, 8, 8), np.float32), rng="x"), TypeError, "rng must"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------- TTA
def test_tta_views_are_deterministic_copies():
    x = batch(np.float64, shape=(4, 1, 6, 6))
    views = list(augment.tta_views(x, flips=True, shifts=((1, 0), (0, -2)), mode="constant"))
    assert len(views) == 6
    np.testing.assert_array_equal(views[0], x)
    np.testing.assert_array_equal(views[1], x[..., ::-1])
    for n in range(4):
        np.testing.assert_array_equal(views[2][n], _naive_shift(x[n], 1, 0))
        np.testing.assert_array_equal(views[4][n], _naive_shift(x[n], 0, -2))
    np.testing.assert_array_equal(views[5], views[4][..., ::-1])
    assert not any(np.shares_memory(v, x) for v in views)
    again = list(augment.tta_views(x, flips=True, shifts=((1, 0), (0, -2)), mode="constant"))
    for a, b in zip(views, again):
        np.testing.assert_array_equal(a, b)
    assert len(list(augment.tta_views(x, flips=False))) == 1
    with pytest.raises(ValueError, match=r"\(dy, dx\) pairs"):
        list(augment.tta_views(x, shifts=(1,)))


def test_tta_predict_averages():
    x = batch(np.float32, shape=(5, 1, 4, 4))
    seen = []

    def predict(v):
        seen.append(v)
        return v.reshape(len(v), -1)[:, :3]  # "probabilities": the first 3 pixels

    out = augment.tta_predict(predict, x)  # default: identity + mirror
    expected = (x.reshape(5, -1)[:, :3] + x[..., ::-1].reshape(5, -1)[:, :3]) / 2
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32 and len(seen) == 2
    out = augment.tta_predict(predict, x, {"flips": False, "shifts": ((1, 1),)})
    assert len(seen) == 4
    explicit = augment.tta_predict(predict, x, [x, x])
    np.testing.assert_allclose(explicit, predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match="every view must have x's shape"):
        augment.tta_predict(predict, x, [x[:2]])
    with pytest.raises(ValueError, match="at least one batch"):
        augment.tta_predict(predict, x, [])
