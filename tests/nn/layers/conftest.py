"""Layer tests run on the NumPy reference backend (exact, no JIT warm-up) unless a
test asks for another; fastcnn.random is seeded so weights are reproducible."""

import pytest

import fastcnn
import fastcnn.common.random


@pytest.fixture(autouse=True)
def _numpy_backend_and_seed():
    fastcnn.random.seed(0)
    with fastcnn.use_backend("numpy"):
        yield
