"""Optimizers' arithmetic: hand-computed single steps, and a 5-step golden table against an
independent plain-Python re-implementation of every update rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _optim_helpers import make_param, run

from fastcnn.optim import optimizers as O

# --------------------------------------------------------------------------- single steps

@pytest.mark.parametrize("opt, grads, expected", [
    # w = 1, g = 0.5, lr = 0.1:  w - lr g
    (O.SGD(0.1), [0.5], 0.95),
    # v = -0.05, w = 0.95; then v = 0.9 * -0.05 - 0.05 = -0.095, w = 0.855
    (O.SGD(0.1, momentum=0.9), [0.5, 0.5], 0.855),
    # v = -0.05; w = 1 + 0.9 * -0.05 - 0.05
    (O.SGD(0.1, momentum=0.9, nesterov=True), [0.5], 0.905),
    # g' = 0.5 + 0.1 * 1 = 0.6; w = 1 - 0.06
    (O.SGD(0.1, weight_decay=0.1), [0.5], 0.94),
    # G = 0.1 + 0.25 = 0.35; w = 1 - 0.1 * 0.5 / sqrt(0.35)
    (O.Adagrad(0.1, epsilon=0.0), [0.5], 1 - 0.05 / math.sqrt(0.35)),
    # v = 0.1 * 0.25 = 0.025; w = 1 - 0.01 * 0.5 / sqrt(0.025) = 1 - 0.01 * sqrt(10)
    # (epsilon=1e-30: 0 is rejected, and 1e-30 is below the resolution of these sums,
    # so the results are those of epsilon = 0)
    (O.RMSprop(0.01, epsilon=1e-30), [0.5], 1 - 0.01 * math.sqrt(10)),
    # centered: mg = 0.05, d = 0.025 - 0.0025 = 0.0225; w = 1 - 0.01 * 0.5 / 0.15
    (O.RMSprop(0.01, epsilon=1e-30, centered=True), [0.5], 1 - 0.01 * 0.5 / 0.15),
    # first Adam step is lr * sign(g) when epsilon ~ 0: m/(1-b1) = g, v/(1-b2) = g^2
    (O.Adam(0.1, epsilon=1e-30), [0.5], 0.9),
    (O.Adam(0.1, epsilon=1e-30, amsgrad=True), [0.5], 0.9),
    # AdamW: w = 1 * (1 - 0.1 * 0.1) = 0.99, then - lr * sign(g)
    (O.AdamW(0.1, weight_decay=0.1, epsilon=1e-30), [0.5], 0.89),
    # Eg = 0.1 * 0.25; dx = sqrt(0 + 1e-6) / sqrt(0.025 + 1e-6) * 0.5
    (O.Adadelta(1.0, rho=0.9, epsilon=1e-6), [0.5], 1 - math.sqrt(1e-6 / (0.025 + 1e-6)) * 0.5),
], ids=["sgd", "sgd-momentum-2steps", "sgd-nesterov", "sgd-wd", "adagrad", "rmsprop",
        "rmsprop-centered", "adam", "adam-amsgrad", "adamw", "adadelta"])
def test_hand_computed_steps(opt, grads, expected):
    p = make_param([1.0])
    run(opt, [p], [[g] for g in grads])
    assert p.data[0] == pytest.approx(expected, rel=1e-13, abs=0)


# --------------------------------------------------------------------------- golden table

def ref_sgd(w, gs, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    v, out = 0.0, []
    for g in gs:
        g = g + weight_decay * w
        if momentum == 0.0:
            w = w - lr * g
        else:
            v = momentum * v - lr * g
            w = w + momentum * v - lr * g if nesterov else w + v
        out.append(w)
    return out


def ref_adagrad(w, gs, lr, initial_accumulator_value=0.1, epsilon=1e-7):
    acc, out = initial_accumulator_value, []
    for g in gs:
        acc = acc + g * g
        w = w - lr * g / math.sqrt(acc + epsilon)
        out.append(w)
    return out


def ref_rmsprop(w, gs, lr, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    v = mg = b = 0.0
    out = []
    for g in gs:
        v = rho * v + (1 - rho) * g * g
        d = v
        if centered:
            mg = rho * mg + (1 - rho) * g
            d = v - mg * mg
        u = lr * g / math.sqrt(d + epsilon)
        if momentum:
            b = momentum * b + u
            w = w - b
        else:
            w = w - u
        out.append(w)
    return out


def ref_adam(w, gs, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
             amsgrad=False, decoupled=False):
    m = v = vmax = 0.0
    out = []
    for t, g in enumerate(gs, start=1):
        if decoupled:
            w = w - lr * weight_decay * w
        else:
            g = g + weight_decay * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        vmax = max(vmax, v)
        vv = vmax if amsgrad else v
        # Keras' epsilon-hat form: epsilon added to sqrt(v), not to sqrt(v_hat)
        w = w - lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (math.sqrt(vv) + epsilon)
        out.append(w)
    return out


def ref_adadelta(w, gs, lr, rho=0.95, epsilon=1e-7):
    eg = edx = 0.0
    out = []
    for g in gs:
        eg = rho * eg + (1 - rho) * g * g
        dx = math.sqrt(edx + epsilon) / math.sqrt(eg + epsilon) * g
        edx = rho * edx + (1 - rho) * dx * dx
        w = w - lr * dx
        out.append(w)
    return out


W0 = [0.8, -1.5, 0.05]
GRADS = [[0.5, -0.3, 0.02], [-0.3, 0.4, 0.0], [0.8, 0.1, -0.05], [0.1, -0.9, 0.3],
         [-0.6, 0.2, 0.001]]                       # 5 steps, one column per element

CASES = {
    "sgd": (O.SGD, dict(learning_rate=0.1), ref_sgd),
    "sgd-momentum": (O.SGD, dict(learning_rate=0.1, momentum=0.9), ref_sgd),
    "sgd-nesterov-wd": (O.SGD, dict(learning_rate=0.05, momentum=0.8, nesterov=True,
                                    weight_decay=0.01), ref_sgd),
    "adagrad": (O.Adagrad, dict(learning_rate=0.1), ref_adagrad),
    "adagrad-init0": (O.Adagrad, dict(learning_rate=0.1, initial_accumulator_value=0.0,
                                      epsilon=1e-3), ref_adagrad),
    "rmsprop": (O.RMSprop, dict(learning_rate=0.01), ref_rmsprop),
    "rmsprop-momentum-centered": (O.RMSprop, dict(learning_rate=0.01, rho=0.8, momentum=0.5,
                                                  centered=True), ref_rmsprop),
    "adam": (O.Adam, dict(learning_rate=0.01), ref_adam),
    "adam-eps-large": (O.Adam, dict(learning_rate=0.01, epsilon=0.1), ref_adam),
    "adam-amsgrad-wd": (O.Adam, dict(learning_rate=0.01, beta_1=0.8, beta_2=0.9,
                                     weight_decay=0.1, amsgrad=True), ref_adam),
    "adamw": (O.AdamW, dict(learning_rate=0.01, weight_decay=0.5),
              lambda w, gs, **kw: ref_adam(w, gs, decoupled=True, **kw)),
    "adadelta": (O.Adadelta, dict(learning_rate=1.0), ref_adadelta),
    "adadelta-lr": (O.Adadelta, dict(learning_rate=0.5, rho=0.9, epsilon=1e-4), ref_adadelta),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_five_steps(case, dtype):
    cls, kwargs, ref = CASES[case]
    p = make_param(W0, dtype=dtype)
    history = run(cls(**kwargs), [p], [[np.array(g, dtype=dtype)] for g in GRADS])
    ref_kwargs = dict(kwargs)
    ref_kwargs["lr"] = ref_kwargs.pop("learning_rate")
    columns = [ref(W0[i], [g[i] for g in GRADS], **ref_kwargs) for i in range(len(W0))]
    expected = np.array(columns).T                 # (step, element)
    got = np.array([h[0] for h in history])
    assert p.data.dtype == dtype                   # float32 stays float32
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (2e-5, 1e-6)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                               err_msg=f"{case} {np.dtype(dtype).name}")


# --------------------------------------------------------------------------- state
