"""Preprocessing: round trips, fit-on-train-only semantics, whitening, errors, state."""

import numpy as np
import pytest

from fastcnn.data.preprocessing import MeanImageSubtraction, PCAWhitening, Standardize, ZCAWhitening

ALL = [
    lambda: MeanImageSubtraction(),
    lambda: Standardize(per="channel"),
    lambda: Standardize(per="pixel"),
    lambda: PCAWhitening(),
    lambda: ZCAWhitening(),
]
IDS = ["mean", "std-channel", "std-pixel", "pca", "zca"]


def images(rng, n=400, shape=(3, 4, 4), dtype=np.float64):
    """Correlated, non-centred images: a random linear mix of Gaussian noise plus offsets."""
    d = int(np.prod(shape))
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    flat = rng.normal(size=(n, d)) @ mix * 0.5 + rng.uniform(-1, 3, size=d)
    return flat.reshape((n,) + shape).astype(dtype)


@pytest.mark.parametrize("make", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_and_dtype(make, dtype):
    rng = np.random.default_rng(0)
    x = images(rng, dtype=dtype)
    pre = make()
    z = pre.fit_transform(x)
    assert z.dtype == dtype
    back = pre.inverse_transform(z)
    assert back.shape == x.shape and back.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(back, x, rtol=tol, atol=tol)


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_fit_uses_train_only(make):
    """Statistics come from fit's data: transforming test data does not change them."""
    rng = np.random.default_rng(1)
    x_train, x_test = images(rng), images(rng, n=50) + 5.0
    pre = make().fit(x_train)
    z_test_1 = pre.transform(x_test)
    state = {k: v.copy() for k, v in pre.state_dict().items()}
    pre.transform(x_test * 2)  # must not refit
    for k, v in pre.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    np.testing.assert_array_equal(pre.transform(x_test), z_test_1)
    # test data shifted by +5 is NOT centred: the train mean was used
    flat = z_test_1.reshape(len(z_test_1), -1)
    if not isinstance(pre, (PCAWhitening,)):
        assert abs(flat.mean()) > 0.5


def test_mean_image_subtraction_centres_each_pixel():
    x = images(np.random.default_rng(2))
    z = MeanImageSubtraction().fit_transform(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("per, axes", [("channel", (0, 2, 3)), ("pixel", (0,))])
def test_standardize_stats(per, axes):
    x = images(np.random.default_rng(3))
    pre = Standardize(per=per)
    z = pre.fit_transform(x)
    np.testing.assert_allclose(z.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=axes), 1.0, atol=1e-12)
    np.testing.assert_allclose(pre.mean_, x.mean(axis=axes), rtol=1e-12)
    expected_shape = (3,) if per == "channel" else (3, 4, 4)
    assert pre.mean_.shape == pre.scale_.shape == expected_shape


def test_standardize_constant_feature_is_centred_not_inf():
    x = images(np.random.default_rng(4))
    x[:, 1] = 0.25
    z = Standardize().fit_transform(x)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z[:, 1], 0.0)


@pytest.mark.parametrize("cls", [PCAWhitening, ZCAWhitening])
def test_whitening_gives_identity_covariance(cls):
    x = images(np.random.default_rng(5), n=2000, dtype=np.float32)
    pre = cls(epsilon=1e-8)
    z = pre.fit_transform(x).reshape(len(x), -1).astype(np.float64)
    cov = np.cov(z, rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(cov.shape[0]), atol=2e-3)
    # and the raw data was far from white
    raw = np.cov(x.reshape(len(x), -1), rowvar=False)
    assert np.abs(raw - np.eye(raw.shape[0])).max() > 0.1


def test_zca_keeps_shape_and_is_symmetric():
    x = images(np.random.default_rng(6))
    pre = ZCAWhitening().fit(x)
    assert pre.transform(x).shape == x.shape
    w = pre._matrix(-0.5, np.float64)
    np.testing.assert_allclose(w, w.T, atol=1e-12)


def test_pca_components_flat_output_and_reconstruction():
    rng = np.random.default_rng(7)
    # data that lives in a 5-dim subspace of 48 dims (plus a mean)
    basis = np.linalg.qr(rng.normal(size=(48, 5)))[0]
    x = (rng.normal(size=(300, 5)) * [5, 4, 3, 2, 1]) @ basis.T + 1.0
    x = x.reshape(300, 3, 4, 4)
    pre = PCAWhitening(n_components=5)
    z = pre.fit_transform(x)
    assert z.shape == (300, 5)
    # variance along component i is S_i / (S_i + eps): 1 up to the epsilon damping
    s = pre.variances_
    np.testing.assert_allclose(z.var(axis=0), s / (s + pre.epsilon), rtol=1e-9)
    np.testing.assert_allclose(pre.inverse_transform(z), x, atol=1e-6)
    assert np.all(np.diff(pre.variances_) <= 0)  # sorted, largest first
    with pytest.raises(ValueError, match=r"z must have shape \(N, 5\)"):
        pre.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="n_components must be <= the number of features 48"):
        PCAWhitening(n_components=49).fit(x)


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_errors_before_fit_and_on_shape_mismatch(make):
    pre = make()
    x = images(np.random.default_rng(8), n=20)
    name = type(pre).__name__
    with pytest.raises(RuntimeError, match=rf"{name}.transform: not fitted yet. Hint: call fit"):
        pre.transform(x)
    with pytest.raises(RuntimeError, match="not fitted"):
        pre.inverse_transform(x)
    pre.fit(x)
    with pytest.raises(ValueError, match=r"feature shape \(3, 4, 4\) \(seen in fit\); "
                                         r"got x.shape=\(20, 3, 5, 4\)"):
        pre.transform(np.zeros((20, 3, 5, 4)))
    with pytest.raises(TypeError, match="dtype int64"):
        pre.transform(x.astype(np.int64))


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_config_and_state_round_trip(make, tmp_path):
    x = images(np.random.default_rng(9), dtype=np.float32)
    pre = make().fit(x)
    np.savez(tmp_path / "state.npz", **pre.state_dict())
    with np.load(tmp_path / "state.npz") as f:
        state = dict(f)
    clone = type(pre).from_config(pre.get_config()).load_state_dict(state)
    assert repr(clone) == repr(pre)
    np.testing.assert_array_equal(clone.transform(x), pre.transform(x))
    with pytest.raises(ValueError, match="state is missing"):
        make().load_state_dict({})


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="per must be 'channel' or 'pixel'; got 'image'"):
        Standardize(per="image")
    with pytest.raises(ValueError, match="n_components must be a positive int; got 0"):
        PCAWhitening(n_components=0)
    with pytest.raises(ValueError, match="epsilon must lie in"):
        ZCAWhitening(epsilon=-1.0)
