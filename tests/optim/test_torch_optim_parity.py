"""fastcnn optimizers against ``torch.optim`` on the same gradient sequence (float64).

Where the conventions differ, the test converts them and says so:

* SGD / RMSprop momentum: Keras keeps ``lr`` inside the velocity, PyTorch outside; the
  trajectories are identical while ``lr`` is constant (it is here).
* Adagrad / RMSprop: Keras adds epsilon *inside* the square root, PyTorch *outside*;
  no constant converts one into the other, so both run with ``epsilon = 0`` (Adagrad
  with ``initial_accumulator_value = 0.1`` on both sides, so nothing divides by 0).
* Adam / AdamW: Keras' epsilon is added to ``sqrt(v)``, PyTorch's to
  ``sqrt(v / (1 - beta_2^t))``; they agree exactly when PyTorch's ``eps`` is set to
  ``epsilon / sqrt(1 - beta_2^t)`` before step ``t``, which the test does.
* Adadelta: same convention on both sides; only the default epsilon differs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastcnn.nn.parameter import Parameter
from fastcnn.optim import optimizers as O

torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for optimizers")

pytestmark = pytest.mark.requires_torch

N_STEPS = 8


def adam_eps(epsilon, beta_2):
    """PyTorch eps for step t equal to Keras' epsilon (see the module docstring)."""
    return lambda t: epsilon / math.sqrt(1.0 - beta_2 ** t)


CASES = {
    "sgd": (O.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1), None),
    "sgd-momentum": (O.SGD(0.1, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None),
    "sgd-nesterov-wd": (O.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True,
                                                  weight_decay=0.01), None),
    "adagrad": (O.Adagrad(0.1, initial_accumulator_value=0.1, epsilon=0.0),
                lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=0.0),
                None),
    # fastcnn rejects epsilon=0 (0/0 on a zero gradient); 1e-30 is below the resolution
    # of v here, so it computes exactly what PyTorch's eps=0 does.
    "rmsprop": (O.RMSprop(0.01, rho=0.9, epsilon=1e-30),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0), None),
    "rmsprop-momentum-centered": (
        O.RMSprop(0.01, rho=0.8, momentum=0.5, epsilon=1e-30, centered=True),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.8, momentum=0.5, eps=0.0,
                                      centered=True), None),
    "adam": (O.Adam(0.01, epsilon=1e-3),
             lambda p: torch.optim.Adam(p, lr=0.01), adam_eps(1e-3, 0.999)),
    "adam-amsgrad-wd": (O.Adam(0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-7, weight_decay=0.1,
                               amsgrad=True),
                        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1,
                                                   amsgrad=True), adam_eps(1e-7, 0.9)),
    "adamw": (O.AdamW(0.01, weight_decay=0.5, epsilon=1e-2),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.5), adam_eps(1e-2, 0.999)),
    "adamw-amsgrad": (O.AdamW(0.01, weight_decay=0.01, amsgrad=True),
                      lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01, amsgrad=True),
                      adam_eps(1e-7, 0.999)),
    "adadelta": (O.Adadelta(1.0, rho=0.9, epsilon=1e-6),
                 lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6), None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_optim(case, rng):
    ours, make_torch, eps_for_step = CASES[case]
    ours = type(ours).from_config(ours.get_config())          # fresh state per test
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) * (0.1 + i % 3) for i in range(N_STEPS)]
    grads[2][0, 0] = 0.0                                       # a zero gradient element

    p = Parameter(w0.copy(), name="w")
    tp = torch.nn.Parameter(torch.tensor(w0.copy(), dtype=torch.float64))
    topt = make_torch([tp])
    for t, g in enumerate(grads, start=1):
        p.grad[...] = g
        ours.step([p])
        tp.grad = torch.tensor(g, dtype=torch.float64)
        if eps_for_step is not None:
            topt.param_groups[0]["eps"] = eps_for_step(t)
        topt.step()
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{case}: step {t}")
