"""The interop tests run on the NumPy reference backend with the global seed reset."""

import pytest
from _model_helpers import seeded_numpy


@pytest.fixture(autouse=True)
def seeded_numpy_backend():
    """NumPy backend, fastcnn.random.seed(0), for every interop test."""
    with seeded_numpy():
        yield
