"""The memoized window geometry: one shared, equal instance per distinct geometry."""

import numpy as np
import pytest

from fastcnn import kernels
from fastcnn.kernels.geometry import WindowGeometry, window_geometry


def test_same_ints_give_the_same_instance_equal_to_a_fresh_one():
    args = (2, 3, 9, 7, 3, 2, 2, 1, 1, 0, 1, 1, 2, 1, True)
    g = window_geometry(*args)
    assert window_geometry(*args) is g
    fresh = WindowGeometry(*args)
    assert g == fresh
    assert (g.oh, g.ow) == (fresh.oh, fresh.ow)


@pytest.mark.parametrize("changed", range(15))
def test_every_field_is_part_of_the_key(changed):
    args = [2, 3, 9, 7, 3, 2, 2, 1, 1, 0, 1, 1, 2, 1, False]
    other = list(args)
    other[changed] = (not other[changed]) if changed == 14 else other[changed] + 1
    assert window_geometry(*args) != window_geometry(*other)


def test_kernel_calls_reuse_the_geometry():
    x = np.ones((2, 3, 8, 8), dtype=np.float32)
    w = np.ones((4, 3, 3, 3), dtype=np.float32)
    kernels.conv2d_forward(x, w, None, 1, 1)
    kernels.maxpool2d_forward(x, 2)
    before = window_geometry.cache_info()
    kernels.conv2d_forward(x, w, None, 1, ((1, 1), (1, 1)))
    kernels.maxpool2d_forward(x, (2, 2), 2)
    after = window_geometry.cache_info()
    assert after.hits == before.hits + 2
    assert after.misses == before.misses


def test_invalid_geometry_is_still_an_error_naming_the_argument():
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="padding"):
        kernels.maxpool2d_forward(x, 2, padding=2)
    with pytest.raises(ValueError, match="stride"):
        kernels.maxpool2d_forward(x, 2, stride=(True, 1))
    with pytest.raises(ValueError, match="stride"):
        kernels.conv2d_forward(x, np.ones((1, 1, 3, 3), np.float32), None, stride=0)
