"""Model and training tests run on the NumPy reference backend with the seed reset, so
their numbers do not depend on which compiled backends exist."""

import pytest
from _model_helpers import seeded_numpy


@pytest.fixture(autouse=True)
def seeded_numpy_backend():
    """Every test here: NumPy backend, fastcnn.random.seed(0)."""
    with seeded_numpy():
        yield
