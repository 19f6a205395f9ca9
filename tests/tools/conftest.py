"""Fixtures of the tool tests. The diagnostics and gradient-check tests ask for the
NumPy backend with ``pytestmark = pytest.mark.usefixtures("seeded_numpy_backend")``;
verify and bench choose their backends themselves."""

import pytest
from _model_helpers import seeded_numpy


@pytest.fixture
def seeded_numpy_backend():
    """NumPy backend, fastcnn.random.seed(0), for the test's duration."""
    with seeded_numpy():
        yield
