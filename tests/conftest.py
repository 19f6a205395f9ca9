"""Shared fixtures: the fast backend under test, dtype, a seeded rng; Hypothesis profiles.

``FASTCNN_TEST_SEED`` overrides the seed of the ``rng`` fixture (default 0), so a
failure seen with one seed can be replayed. Hypothesis uses the ``ci`` profile
(200 derandomized examples) when the ``CI`` environment variable is set, else
``dev`` (50 examples); both without deadline, because the first Numba call of a
kernel compiles it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from _helpers import FAST_BACKENDS, skip_unless_available  # tests/ is on pythonpath

import fastcnn
from fastcnn.kernels import _dispatch as _backend

try:
    from hypothesis import settings
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    settings = None

if settings is not None:
    settings.register_profile("dev", max_examples=50, deadline=None)
    settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")

SEED = int(os.environ.get("FASTCNN_TEST_SEED", "0"))


@pytest.fixture(params=FAST_BACKENDS)
def fast_backend(request):
    """Name of a fast backend (skips when it is not available here)."""
    skip_unless_available(request.param)
    return request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param).type


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


@pytest.fixture(autouse=True)
def _restore_backend_state():
    """No test leaks a set_backend()/set_num_threads() choice into the next."""
    with _backend.isolated_backend_state():
        yield


def pytest_report_header(config):
    return (f"fastcnn {fastcnn.__version__}: backends available "
            f"{_backend.available_backends()}; FASTCNN_TEST_SEED={SEED}")
