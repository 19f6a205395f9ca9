"""Regularizers: penalty and gradient by hand and by central differences, in-place
accumulation, dtype, registry, config round trips and pinned messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastcnn.nn import regularizers as R
from fastcnn.nn.parameter import Parameter
from fastcnn.tools.gradcheck import numeric_gradient, relative_error

W = np.array([[0.5, -2.0], [0.0, 3.0]])


@pytest.mark.parametrize("reg, penalty, grad", [
    # L1: 0.1 * (0.5 + 2 + 0 + 3); gradient 0.1 * sign(w), 0 at w == 0
    (R.L1(0.1), 0.55, [[0.1, -0.1], [0.0, 0.1]]),
    # L2 (Keras, no 1/2): 0.01 * (0.25 + 4 + 0 + 9); gradient 2 * 0.01 * w
    (R.L2(0.01), 0.1325, [[0.01, -0.04], [0.0, 0.06]]),
    (R.L1L2(l1=0.1, l2=0.01), 0.55 + 0.1325, [[0.11, -0.14], [0.0, 0.16]]),
    (R.L1L2(), 0.0, [[0.0, 0.0], [0.0, 0.0]]),
], ids=["l1", "l2", "l1l2", "l1l2-default-zero"])
def test_penalty_and_gradient_by_hand(reg, penalty, grad):
    p, g = reg(W.copy())
    assert isinstance(p, float)
    assert p == pytest.approx(penalty, rel=1e-12)
    np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reg", [R.L1(0.03), R.L2(0.2), R.L1L2(0.05, 0.3)],
                         ids=["l1", "l2", "l1l2"])
def test_gradient_matches_central_differences(reg, rng):
    w = rng.standard_normal((4, 3, 2, 2))
    w[np.abs(w) < 1e-3] = 0.5          # keep L1's kink at 0 far from every h-step
    numeric = numeric_gradient(lambda: np.array(reg(w)[0]), w, 1.0)
    assert relative_error(reg(w)[1], numeric) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [R.L1(0.1), R.L2(0.1), R.L1L2(0.1, 0.2)], ids=["l1", "l2", "l1l2"])
def test_apply_accumulates_in_place_and_keeps_dtype(reg, dtype, rng):
    p = Parameter(rng.standard_normal((3, 5)).astype(dtype), name="w")
    p.grad[...] = 1.0
    buffer = p.grad
    penalty = reg.apply_(p)
    expected_penalty, expected_grad = reg(p.data)
    assert p.grad is buffer and p.grad.dtype == dtype and expected_grad.dtype == dtype
    assert penalty == pytest.approx(expected_penalty, rel=1e-6)
    np.testing.assert_allclose(p.grad, 1.0 + expected_grad, rtol=1e-6)


@pytest.mark.parametrize("identifier, expected", [
    ("l1", R.L1()), ("L2", R.L2(0.01)), ("l1_l2", R.L1L2()), ("L1L2", R.L1L2()),
    ({"class_name": "L2", "config": {"l2": 1e-4}}, R.L2(1e-4)),
    ({"class_name": "l1_l2", "config": {"l1": 0.1, "l2": 0.2}}, R.L1L2(0.1, 0.2)),
])
def test_get(identifier, expected):
    assert R.get(identifier) == expected


def test_get_none_instance_callable_and_aliases():
    reg = R.L2(0.5)
    assert R.get(None) is None and R.get(reg) is reg
    fn = lambda w: (0.0, np.zeros_like(w))      # noqa: E731
    assert R.get(fn) is fn
    assert R.l1 is R.L1 and R.l2 is R.L2 and R.l1_l2 is R.L1L2
    assert R.L2().l2 == 0.01 and R.L1().l1 == 0.01       # Keras defaults


@pytest.mark.parametrize("reg", [R.L1(0.2), R.L2(0.3), R.L1L2(0.1, 0.4)], ids=repr)
def test_config_round_trip(reg):
    config = reg.get_config()
    again = type(reg).from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config and repr(again) == repr(reg)
    assert R.get(R.serialize(reg)) == reg


@pytest.mark.parametrize("make, exc, message", [
    (lambda: R.L2(-0.1), ValueError, r"L2: l2 must lie in \[0, inf\); got -0.1\."),
    (lambda: R.L1(float("nan")), ValueError, r"L1: l1 must be a finite real number; got nan\."),
    (lambda: R.L1L2(l2=-1), ValueError, r"L1L2: l2 must lie in \[0, inf\); got -1\."),
    (lambda: R.get("l3"), ValueError,
     r"regularizers.get: unknown regularizer 'l3'; valid names: l1, l2, l1_l2"),
    (lambda: R.get({"l2": 0.1}), ValueError, r"a config dict needs a 'class_name' key"),
    (lambda: R.get(0.1), TypeError, r"identifier must be None, a str, a dict"),
])
def test_errors(make, exc, message):
    with pytest.raises(exc, match=message):
        make()
