"""The interop tests run on the NumPy reference backend with the global seed reset."""

import pytest

import fastcnn


@pytest.fixture(autouse=True)
def seeded_numpy_backend():
    fastcnn.random.seed(0)
    with fastcnn.use_backend("numpy"):
        yield
