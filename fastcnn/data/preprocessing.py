"""Data preprocessing fitted on the training set: mean subtraction, standardization, whitening.

Every preprocessor learns its statistics in :meth:`fit` from the *training* images only
and then applies the same fixed transform to train, validation and test data (fitting on
test data leaks information about it into the model). Each one has

- ``fit(x) -> self``, ``transform(x)``, ``fit_transform(x)``, ``inverse_transform(z)``;
- ``get_config()`` (constructor arguments) / ``from_config(config)``;
- ``state_dict()`` (a dict of ndarrays, e.g. for ``np.savez``) / ``load_state_dict(state)``.

``x`` has shape ``(N, *feature_shape)``, e.g. ``(N, C, H, W)``; float32 in gives float32
out, float64 gives float64. Statistics are accumulated in float64 (over chunks of the
batch, so no float64 copy of the whole data set is made) and stored in float64.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.validation import as_float_array, check_float, check_positive_int

__all__ = [
    "Preprocessor",
    "MeanImageSubtraction",
    "Standardize",
    "PCAWhitening",
    "ZCAWhitening",
]

_CHUNK = 2048  # samples per chunk when accumulating float64 statistics


def _chunks(n: int):
    for start in range(0, n, _CHUNK):
        yield slice(start, min(start + _CHUNK, n))


class Preprocessor:
    """Common machinery: input checks, fitted-state checks, config and state round trips."""

    #: names of the ndarray attributes (with trailing ``_``) that make up the fitted state
    _state_names: tuple = ()

    def __init__(self):
        self.feature_shape_ = None

    # -- checks ---------------------------------------------------------------------
    def _check_input(self, method: str, x, fitted: bool = True) -> np.ndarray:
        where = f"{type(self).__name__}.{method}"
        x = as_float_array(where, "x", x)
        if x.ndim < 2:
            raise ValueError(f"{where}: x must have at least 2 dims (N, features...); "
                             f"got x.shape={x.shape}.")
        if fitted:
            self._check_fitted(method)
            if x.shape[1:] != self.feature_shape_:
                raise ValueError(
                    f"{where}: x must have feature shape {self.feature_shape_} (seen in fit); "
                    f"got x.shape={x.shape}.")
        elif x.shape[0] == 0:
            raise ValueError(f"{where}: x must hold at least one sample; got x.shape={x.shape}.")
        return x

    def _check_fitted(self, method: str) -> None:
        if self.feature_shape_ is None:
            raise RuntimeError(f"{type(self).__name__}.{method}: not fitted yet. "
                               "Hint: call fit(x_train) first.")

    # -- API (subclasses define fit, transform, inverse_transform) -------------------
    def fit_transform(self, x) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def state_dict(self) -> dict:
        """The fitted statistics as ndarrays (``feature_shape`` included)."""
        self._check_fitted("state_dict")
        state = {"feature_shape": np.asarray(self.feature_shape_, dtype=np.int64)}
        for name in self._state_names:
            state[name] = getattr(self, name + "_").copy()
        return state

    def load_state_dict(self, state: dict):
        """Restore what :meth:`state_dict` returned; returns ``self``."""
        missing = [k for k in ("feature_shape",) + self._state_names if k not in state]
        if missing:
            raise ValueError(f"{type(self).__name__}.load_state_dict: state is missing "
                             f"{missing}; got keys {sorted(state)}.")
        self.feature_shape_ = tuple(int(d) for d in np.asarray(state["feature_shape"]))
        for name in self._state_names:
            setattr(self, name + "_", np.array(state[name], dtype=np.float64))
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanImageSubtraction(Preprocessor):
    """Subtract the training set's mean image: ``z = x - mean_n(x_train)``.

    The mean has the feature shape (e.g. ``(C, H, W)``): each pixel of each channel
    gets its own mean, as in the AlexNet/CS231n recipe.

    Attributes
    ----------
    mean_ : float64 ndarray of the feature shape.
    """

    _state_names = ("mean",)

    def fit(self, x):
        x = self._check_input("fit", x, fitted=False)
        total = np.zeros(x.shape[1:], dtype=np.float64)
        for s in _chunks(x.shape[0]):
            total += x[s].sum(axis=0, dtype=np.float64)
        self.mean_ = total / x.shape[0]
        self.feature_shape_ = x.shape[1:]
        return self

    def transform(self, x) -> np.ndarray:
        x = self._check_input("transform", x)
        return x - self.mean_.astype(x.dtype)

    def inverse_transform(self, z) -> np.ndarray:
        z = self._check_input("inverse_transform", z)
        return z + self.mean_.astype(z.dtype)


class Standardize(Preprocessor):
    """Zero mean, unit variance: ``z = (x - mean) / std``, statistics from the training set.

    Parameters
    ----------
    per : {"channel", "pixel"}
        ``"channel"``: one mean and std per channel (axis 1), pooled over the batch and
        all spatial positions (the usual ``Normalize(mean, std)`` of image pipelines).
        ``"pixel"``: one mean and std per feature (every channel and position).
    epsilon : float
        A std below ``epsilon`` (a constant feature) is replaced by 1, so constant
        features are only centred instead of blowing up (as scikit-learn's StandardScaler).

    Attributes
    ----------
    mean_, scale_ : float64 ndarrays, shape ``(C,)`` for "channel" or the feature shape
        for "pixel". ``scale_`` is the population std (``ddof=0``) after the epsilon rule.
    """

    _state_names = ("mean", "scale")

    def __init__(self, per: str = "channel", epsilon: float = 1e-7):
        super().__init__()
        if per not in ("channel", "pixel"):
            raise ValueError(f"Standardize: per must be 'channel' or 'pixel'; got {per!r}.")
        self.per = per
        self.epsilon = check_float("Standardize", "epsilon", epsilon, low=0.0)

    def get_config(self) -> dict:
        return {"per": self.per, "epsilon": self.epsilon}

    def _reduce_axes(self, x):
        # "channel": reduce over N and every axis after the channel axis.
        return (0,) + tuple(range(2, x.ndim)) if self.per == "channel" else (0,)

    def _broadcast(self, stat, x):
        """Reshape a per-channel statistic to (1, C, 1, 1, ...) and cast to x's dtype."""
        if self.per == "channel":
            stat = stat.reshape((1, -1) + (1,) * (x.ndim - 2))
        return stat.astype(x.dtype)

    def fit(self, x):
        x = self._check_input("fit", x, fitted=False)
        axes = self._reduce_axes(x)
        keep = x.shape[1:2] if self.per == "channel" else x.shape[1:]
        count = x.size // int(np.prod(keep))
        # Two passes (mean, then squared deviations) in float64: stable, unlike E[x^2]-E[x]^2.
        total = np.zeros(keep, dtype=np.float64)
        for s in _chunks(x.shape[0]):
            total += x[s].sum(axis=axes, dtype=np.float64)
        mean = total / count
        shaped = mean.reshape((1, -1) + (1,) * (x.ndim - 2)) if self.per == "channel" else mean
        sq = np.zeros(keep, dtype=np.float64)
        for s in _chunks(x.shape[0]):
            sq += np.square(x[s] - shaped).sum(axis=axes)
        std = np.sqrt(sq / count)
        self.mean_ = mean
        self.scale_ = np.where(std < self.epsilon, 1.0, std)
        self.feature_shape_ = x.shape[1:]
        return self

    def transform(self, x) -> np.ndarray:
        x = self._check_input("transform", x)
        return (x - self._broadcast(self.mean_, x)) / self._broadcast(self.scale_, x)

    def inverse_transform(self, z) -> np.ndarray:
        z = self._check_input("inverse_transform", z)
        return z * self._broadcast(self.scale_, z) + self._broadcast(self.mean_, z)


class _Whitening(Preprocessor):
    r"""Shared fit for PCA and ZCA whitening.

    With ``X`` the training data flattened to ``(N, D)`` and centred (``X - mu``), the
    covariance is ``Sigma = X^T X / N`` (``D x D``, symmetric positive semi-definite).
    Its SVD ``Sigma = U diag(S) U^T`` has orthonormal columns ``U`` (principal
    directions) and ``S`` the variances along them, sorted in decreasing order (for a
    symmetric PSD matrix the SVD *is* the eigendecomposition). Scaling by
    ``1 / sqrt(S + epsilon)`` gives every direction unit variance; ``epsilon`` keeps
    directions of (near) zero variance from being amplified into noise.

    Cost: ``O(N D^2)`` for the covariance plus ``O(D^3)`` for the SVD. For 8x8 digits
    (D = 64) that is instant; for CIFAR-10 (D = 3072) expect a few seconds to tens of
    seconds on a laptop CPU, once per fit.
    """

    _state_names = ("mean", "components", "variances")

    def __init__(self, epsilon: float = 1e-5):
        super().__init__()
        self.epsilon = check_float(type(self).__name__, "epsilon", epsilon, low=0.0)

    def _fit_svd(self, x):
        x = self._check_input("fit", x, fitted=False)
        flat = x.reshape(x.shape[0], -1)
        n, d = flat.shape
        mean = np.zeros(d, dtype=np.float64)
        for s in _chunks(n):
            mean += flat[s].sum(axis=0, dtype=np.float64)
        mean /= n
        cov = np.zeros((d, d), dtype=np.float64)
        for s in _chunks(n):
            centred = flat[s] - mean  # float64 chunk
            cov += centred.T @ centred
        cov /= n
        # hermitian=True: Sigma is symmetric, so LAPACK's symmetric solver is used (faster,
        # and U is exactly orthonormal); singular values come back sorted, largest first.
        u, s, _ = np.linalg.svd(cov, hermitian=True)
        self.feature_shape_ = x.shape[1:]
        return mean, u, np.maximum(s, 0.0)


class PCAWhitening(_Whitening):
    r"""Project onto the principal components and scale each to unit variance.

    .. math::

        z = (x - \mu)\, U_k\, \mathrm{diag}\bigl(1/\sqrt{S_k + \epsilon}\bigr),
        \qquad x = z\, \mathrm{diag}\bigl(\sqrt{S_k + \epsilon}\bigr)\, U_k^T + \mu

    where ``U_k`` holds the first ``k = n_components`` columns of ``U`` (see
    :class:`_Whitening`). The output is flat: ``(N, k)``, no longer an image.
    ``inverse_transform`` maps back to ``(N, *feature_shape)``; it is exact (up to
    float error) when ``k == D``, and otherwise gives the projection of ``x`` onto
    the top ``k`` components (the best rank-``k`` reconstruction).

    Parameters
    ----------
    n_components : int or None
        Number of components kept; None keeps all ``D``.
    epsilon : float
        Added to the variances before the square root.
    """

    def __init__(self, n_components=None, epsilon: float = 1e-5):
        super().__init__(epsilon)
        if n_components is not None:
            n_components = check_positive_int("PCAWhitening", "n_components", n_components)
        self.n_components = n_components

    def get_config(self) -> dict:
        return {"n_components": self.n_components, "epsilon": self.epsilon}

    def fit(self, x):
        mean, u, s = self._fit_svd(x)
        d = u.shape[0]
        k = d if self.n_components is None else self.n_components
        if k > d:
            self.feature_shape_ = None
            raise ValueError(f"PCAWhitening.fit: n_components must be <= the number of "
                             f"features {d}; got {k}.")
        self.mean_, self.components_, self.variances_ = mean, u[:, :k], s[:k]
        return self

    def transform(self, x) -> np.ndarray:
        x = self._check_input("transform", x)
        w = (self.components_ / np.sqrt(self.variances_ + self.epsilon)).astype(x.dtype)
        return (x.reshape(x.shape[0], -1) - self.mean_.astype(x.dtype)) @ w

    def inverse_transform(self, z) -> np.ndarray:
        self._check_fitted("inverse_transform")
        k = self.components_.shape[1]
        z = as_float_array("PCAWhitening.inverse_transform", "z", z, ndim=2)
        if z.shape[1] != k:
            raise ValueError(f"PCAWhitening.inverse_transform: z must have shape (N, {k}); "
                             f"got z.shape={z.shape}.")
        w_inv = (np.sqrt(self.variances_ + self.epsilon)[:, None] * self.components_.T)
        flat = z @ w_inv.astype(z.dtype) + self.mean_.astype(z.dtype)
        return flat.reshape((z.shape[0],) + self.feature_shape_)


class ZCAWhitening(_Whitening):
    r"""Whiten, then rotate back: decorrelated unit-variance data that still looks like images.

    .. math::

        W = U\, \mathrm{diag}\bigl(1/\sqrt{S + \epsilon}\bigr)\, U^T, \qquad
        z = (x - \mu) W, \qquad x = z W^{-1} + \mu,\quad
        W^{-1} = U\, \mathrm{diag}\bigl(\sqrt{S + \epsilon}\bigr)\, U^T

    (``U``, ``S`` from the SVD of the training covariance, see :class:`_Whitening`).
    Of all whitening matrices, ZCA's ``W`` (symmetric) changes the data least in the
    mean-squared sense, so edges stay where they were. The covariance of ``z`` is
    ``U diag(S / (S + eps)) U^T``, the identity when ``S >> eps``. Output shape equals
    input shape; ``inverse_transform`` is exact up to float error.

    Attributes
    ----------
    mean_ : (D,), components_ : (D, D) = U, variances_ : (D,) = S, all float64.
    """

    def get_config(self) -> dict:
        return {"epsilon": self.epsilon}

    def fit(self, x):
        self.mean_, self.components_, self.variances_ = self._fit_svd(x)
        self._cache = {}
        return self

    def load_state_dict(self, state: dict):
        super().load_state_dict(state)
        self._cache = {}
        return self

    def _matrix(self, power: float, dtype):
        """``U diag((S + eps)^power) U^T`` in ``dtype``, built once per fit (a D^3 product)."""
        key = (power, np.dtype(dtype))
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            u = self.components_
            cache[key] = ((u * (self.variances_ + self.epsilon) ** power) @ u.T).astype(dtype)
        return cache[key]

    def transform(self, x) -> np.ndarray:
        x = self._check_input("transform", x)
        flat = x.reshape(x.shape[0], -1) - self.mean_.astype(x.dtype)
        return (flat @ self._matrix(-0.5, x.dtype)).reshape(x.shape)

    def inverse_transform(self, z) -> np.ndarray:
        z = self._check_input("inverse_transform", z)
        flat = z.reshape(z.shape[0], -1) @ self._matrix(0.5, z.dtype)
        return (flat + self.mean_.astype(z.dtype)).reshape(z.shape)
