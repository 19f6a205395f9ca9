"""Initializers: fans, statistics against the stated distributions, orthogonality,
seeding, the registry, config round trips and pinned error messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import fastcnn.common.random as frandom
from fastcnn.nn import initializers as I

CONV = (64, 32, 3, 3)          # OIHW: fan_in = 32*9 = 288, fan_out = 64*9 = 576
DENSE = (300, 200)             # (D_in, D_out)


@pytest.mark.parametrize("shape, fans", [
    ((), (1, 1)),
    ((7,), (7, 7)),
    ((10, 20), (10, 20)),                       # Dense (in, out)
    ((16, 3, 5, 5), (3 * 25, 16 * 25)),         # OIHW
    ((8, 4, 3), (4 * 3, 8 * 3)),                # 1-D conv (F, C, K)
    ((6, 2, 3, 4), (2 * 12, 6 * 12)),           # non-square kernel
], ids=["scalar", "vector", "dense", "oihw", "conv1d", "nonsquare"])
def test_compute_fans(shape, fans):
    assert I.compute_fans(shape) == fans


# name -> (expected std as a function of (fan_in, fan_out), bound on |w| or None)
def _std(scale, n):
    return math.sqrt(scale / n)


PRESETS = {
    "glorot_uniform": (lambda fi, fo: _std(1, (fi + fo) / 2),
                       lambda fi, fo: math.sqrt(6 / (fi + fo))),
    "glorot_normal": (lambda fi, fo: _std(1, (fi + fo) / 2),
                      lambda fi, fo: 2 * _std(1, (fi + fo) / 2) / 0.87962566103423978),
    "he_uniform": (lambda fi, fo: _std(2, fi), lambda fi, fo: math.sqrt(6 / fi)),
    "he_normal": (lambda fi, fo: _std(2, fi), lambda fi, fo: 2 * _std(2, fi) / 0.87962566103423978),
    "lecun_uniform": (lambda fi, fo: _std(1, fi), lambda fi, fo: math.sqrt(3 / fi)),
    "lecun_normal": (lambda fi, fo: _std(1, fi),
                     lambda fi, fo: 2 * _std(1, fi) / 0.87962566103423978),
}


@pytest.mark.parametrize("shape", [CONV, DENSE], ids=["oihw", "dense"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_variance_scaling_presets_statistics(name, shape):
    w = I.get(name)(shape, rng=0)
    assert w.shape == shape and w.dtype == np.float32
    fan_in, fan_out = I.compute_fans(shape)
    std, bound = (f(fan_in, fan_out) for f in PRESETS[name])
    n = w.size
    # mean: 5 standard errors; std: the sample std's relative error is ~ 1/sqrt(2n)
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert abs(w.std() / std - 1) < 5 / math.sqrt(2 * n) + 0.005
    assert np.abs(w).max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("mode, n", [("fan_in", 288), ("fan_out", 576), ("fan_avg", 432)])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_modes(mode, n, distribution):
    w = I.VarianceScaling(scale=3.0, mode=mode, distribution=distribution)(CONV, rng=1)
    assert abs(w.std() / math.sqrt(3.0 / n) - 1) < 0.02


def test_random_normal_is_the_cs231n_recipe():
    # CS231n: W = 0.01 * np.random.randn(D, H)  ==  RandomNormal(stddev=0.01)
    w = I.RandomNormal(stddev=0.01)((50, 40), dtype=np.float64, rng=3)
    expected = 0.01 * np.random.default_rng(3).standard_normal((50, 40))
    np.testing.assert_allclose(w, expected, rtol=1e-15, atol=0)


def test_random_uniform_range_and_moments():
    w = I.RandomUniform(-0.5, 1.5)((200, 300), rng=2)
    assert w.min() >= -0.5 and w.max() < 1.5
    assert abs(w.mean() - 0.5) < 0.01 and abs(w.std() - 2 / math.sqrt(12)) < 0.01


def test_truncated_normal_redraws_beyond_two_std():
    w = I.TruncatedNormal(mean=1.0, stddev=0.5)((400, 500), dtype=np.float64, rng=4)
    assert np.abs(w - 1.0).max() <= 1.0                      # 2 * stddev
    assert abs(w.mean() - 1.0) < 0.005
    assert abs(w.std() / (0.5 * 0.87962566103423978) - 1) < 0.01


@pytest.mark.parametrize("shape", [(40, 10), (10, 40), (12, 3, 3, 3), (4, 3, 3, 3)],
                         ids=["tall", "wide", "oihw-rows-le-cols", "oihw-few-filters"])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal(shape, gain):
    w = I.Orthogonal(gain=gain)(shape, dtype=np.float64, rng=5)
    m = w.reshape(shape[0], -1) if len(shape) > 2 else w
    small = min(m.shape)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T     # Q^T Q (or Q Q^T) = gain^2 I
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(small), atol=1e-12)


def test_constant_ones_zeros():
    assert np.array_equal(I.get("zeros")((2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(I.get("ones")((4,), dtype=np.float64), np.ones(4))
    c = I.Constant(0.25)((3, 2))
    assert c.dtype == np.float32 and np.all(c == 0.25)


def test_global_seed_reproducible():
    frandom.seed(123)
    a = I.HeNormal()((20, 30))
    b = I.GlorotUniform()((5, 5))
    frandom.seed(123)
    assert np.array_equal(a, I.HeNormal()((20, 30)))
    assert np.array_equal(b, I.GlorotUniform()((5, 5)))
    assert not np.array_equal(a, I.HeNormal()((20, 30)))     # the stream moves on


def test_seed_argument_and_rng_precedence():
    init = I.RandomNormal(seed=7)
    assert np.array_equal(init((10,)), init((10,)))            # Keras: same values per call
    assert np.array_equal(init((10,), rng=8), I.RandomNormal()((10,), rng=8))   # rng wins
    g = np.random.default_rng(9)
    first = I.RandomNormal()((10,), rng=g)
    assert not np.array_equal(first, I.RandomNormal()((10,), rng=g))   # a Generator advances


def test_same_seed_same_values_in_float32_and_float64():
    w32 = I.HeUniform(seed=1)(CONV, dtype=np.float32)
    w64 = I.HeUniform(seed=1)(CONV, dtype=np.float64)
    assert w64.dtype == np.float64
    np.testing.assert_array_equal(w32, w64.astype(np.float32))


def test_get_rng():
    assert frandom.get_rng() is frandom.get_rng(None)
    g = np.random.default_rng(0)
    assert frandom.get_rng(g) is g
    assert frandom.get_rng(5).random() == np.random.default_rng(5).random()
    with pytest.raises(ValueError, match=r"get_rng: seed must be None, a non-negative int or a "
                                         r"numpy.random.Generator; got -1\."):
        frandom.get_rng(-1)
    with pytest.raises(ValueError, match=r"seed: n must be a non-negative int; got 1.5\."):
        frandom.seed(1.5)


@pytest.mark.parametrize("identifier, cls", [
    ("he_normal", I.HeNormal), ("HeNormal", I.HeNormal), ("glorot_uniform", I.GlorotUniform),
    ("orthogonal", I.Orthogonal), ("zeros", I.Zeros),
    ({"class_name": "RandomNormal", "config": {"stddev": 0.01}}, I.RandomNormal),
    ({"class_name": "variance_scaling", "config": {"scale": 2.0}}, I.VarianceScaling),
])
def test_get(identifier, cls):
    init = I.get(identifier)
    assert type(init) is cls
    if isinstance(identifier, dict):
        assert init == cls(**identifier["config"])


def test_get_instance_none_and_callables():
    init = I.LecunNormal(seed=1)
    assert I.get(init) is init and I.get(None) is None

    def with_rng(shape, dtype, rng):
        return rng.standard_normal(shape).astype(dtype)

    a = I.get(with_rng)((3, 4), rng=0)
    assert a.dtype == np.float32 and a.shape == (3, 4)
    assert np.array_equal(a, I.get(with_rng)((3, 4), rng=0))
    plain = I.get(lambda shape: np.full(shape, 2.0, np.float32))
    assert np.all(plain((2,)) == 2.0)
    with pytest.raises(ValueError, match=r"must return an array of shape \(5,\) and dtype float32"):
        I.get(lambda shape: np.zeros(3))((5,))
    with pytest.raises(TypeError, match="cannot be serialized"):
        I.get(with_rng).get_config()


def test_get_unknown_lists_valid_names():
    with pytest.raises(ValueError, match=r"initializers.get: unknown initializer 'kaiming'; "
                                         r"valid names: constant, glorot_normal, .*he_normal"):
        I.get("kaiming")
    with pytest.raises(ValueError, match=r"a config dict needs a 'class_name' key"):
        I.get({"config": {}})
    with pytest.raises(TypeError, match=r"identifier must be None, a str, a dict"):
        I.get(3)


ALL = [I.Zeros(), I.Ones(), I.Constant(0.3), I.RandomNormal(0.1, 0.2, seed=1),
       I.RandomUniform(-1.0, 2.0), I.TruncatedNormal(stddev=0.3, seed=2),
       I.VarianceScaling(2.0, "fan_out", "uniform", seed=3), I.GlorotNormal(), I.GlorotUniform(),
       I.HeNormal(seed=4), I.HeUniform(), I.LecunNormal(), I.LecunUniform(), I.Orthogonal(1.5)]


@pytest.mark.parametrize("init", ALL, ids=lambda i: type(i).__name__)
def test_config_round_trip(init):
    config = init.get_config()
    again = type(init).from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config and again == init and repr(again) == repr(init)
    assert I.get(I.serialize(init)) == init


@pytest.mark.parametrize("make, exc, message", [
    (lambda: I.RandomUniform(1.0, 0.0), ValueError,
     r"RandomUniform: maxval must be >= minval=1.0; got 0.0\."),
    (lambda: I.RandomNormal(stddev=-1.0), ValueError,
     r"RandomNormal: stddev must lie in \[0, inf\); got -1.0\."),
    (lambda: I.VarianceScaling(scale=0.0), ValueError,
     r"VarianceScaling: scale must lie in \(0, inf\); got 0.0\."),
    (lambda: I.VarianceScaling(mode="fan_sum"), ValueError,
     r"VarianceScaling: mode must be one of \('fan_in', 'fan_out', 'fan_avg'\); got 'fan_sum'\."),
    (lambda: I.VarianceScaling(distribution="gamma"), ValueError,
     r"VarianceScaling: distribution must be one of .*; got 'gamma'\."),
    (lambda: I.HeNormal(seed=-3), ValueError,
     r"HeNormal: seed must be None or a non-negative int; got -3\."),
    (lambda: I.Constant("a"), ValueError,
     r"Constant: value must be a finite real number; got 'a'\."),
    (lambda: I.Orthogonal()((5,)), ValueError,
     r"Orthogonal: shape must have at least 2 dims; got \(5,\)\."),
    (lambda: I.HeNormal()((3, -1)), ValueError,
     r"HeNormal: shape must be a tuple of non-negative ints; got \(3, -1\)\."),
    (lambda: I.GlorotUniform()((3, 3), dtype=np.int32), TypeError,
     r"GlorotUniform: dtype must be a floating dtype \(float32 or float64\); got int32\."),
])
def test_errors(make, exc, message):
    with pytest.raises(exc, match=message):
        make()
