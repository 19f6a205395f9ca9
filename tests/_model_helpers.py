"""Shared pieces of the model / training tests (the fixtures that use them live in
each folder's conftest.py)."""

import contextlib

import numpy as np

import fastcnn


@contextlib.contextmanager
def seeded_numpy():
    """Run on the NumPy reference backend (results do not depend on what is compiled)
    with the global seed reset."""
    fastcnn.random.seed(0)
    with fastcnn.use_backend("numpy"):
        yield


def make_blobs(n=96, seed=0, size=4, classes=3, noise=0.5, signal=2.0):
    """``n`` images ``(1, size, size)`` of Gaussian noise with labels in ``[0, classes)``;
    pixel ``(y, y)`` of class ``y`` gets ``+signal``, so a small net separates them
    (``signal=0``: labels carry no information)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, noise, (n, 1, size, size)).astype(np.float32)
    x[np.arange(n), 0, y, y] += signal
    return x, y
