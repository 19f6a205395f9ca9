"""Learning-rate schedules: closed forms, epoch counting, registry, configs, messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fastcnn.optim import schedules as S

STEPS = [0, 1, 2, 3, 9, 10, 11, 25, 1000]


@pytest.mark.parametrize("step", STEPS)
def test_step_decay_closed_form(step):
    sched = S.StepDecay(0.1, drop_every=10, factor=0.5)
    assert sched(step) == pytest.approx(0.1 * 0.5 ** (step // 10), rel=1e-15)


def test_step_decay_hand_values():
    sched = S.StepDecay(1.0, drop_every=2, factor=0.1)
    assert [sched(s) for s in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01], rel=1e-15)


@pytest.mark.parametrize("step", STEPS)
def test_exponential_decay_closed_form(step):
    sched = S.ExponentialDecay(0.01, decay_rate=0.05)
    assert sched(step) == pytest.approx(0.01 * math.exp(-0.05 * step), rel=1e-15)


@pytest.mark.parametrize("step", STEPS)
def test_inverse_time_decay_closed_form(step):
    sched = S.InverseTimeDecay(0.01, decay_rate=0.5)
    assert sched(step) == pytest.approx(0.01 / (1 + 0.5 * step), rel=1e-15)


def test_half_lives():
    # ExponentialDecay halves every ln(2)/k; InverseTimeDecay after 1/k
    assert S.ExponentialDecay(1.0, math.log(2) / 10)(10) == pytest.approx(0.5, rel=1e-15)
    assert S.InverseTimeDecay(1.0, 0.25)(4) == 0.5


@pytest.mark.parametrize("sched", [S.StepDecay(0.2, drop_every=1, factor=0.5, steps_per_epoch=3),
                                   S.ExponentialDecay(0.2, 0.3, steps_per_epoch=3),
                                   S.InverseTimeDecay(0.2, 0.3, steps_per_epoch=3)],
                         ids=["step", "exp", "inv"])
def test_steps_per_epoch_counts_completed_epochs(sched):
    per_step = [sched(s) for s in range(9)]
    plain = type(sched).from_config({**sched.get_config(), "steps_per_epoch": None})
    assert per_step == [plain(s // 3) for s in range(9)]        # constant within an epoch
    assert per_step[0] == per_step[2] > per_step[3]


def test_step_accepts_numpy_ints_and_returns_python_float():
    value = S.StepDecay(0.1, 5)(np.int64(7))
    assert type(value) is float and value == 0.05


@pytest.mark.parametrize("sched", [S.StepDecay(0.1, 3, 0.2), S.ExponentialDecay(0.5, 0.01),
                                   S.InverseTimeDecay(0.3, 2.0, steps_per_epoch=100)], ids=repr)
def test_config_round_trip(sched):
    config = sched.get_config()
    again = type(sched).from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config and repr(again) == repr(sched) and again == sched
    assert S.get(S.serialize(sched)) == sched
    assert [again(s) for s in range(20)] == [sched(s) for s in range(20)]


def test_get():
    sched = S.StepDecay(0.1, 2)
    assert S.get(sched) is sched and S.get(None) is None
    fn = lambda step: 0.1        # noqa: E731
    assert S.get(fn) is fn
    assert S.get({"class_name": "exponential_decay",
                  "config": {"initial_learning_rate": 0.1, "decay_rate": 0.5}}) == \
        S.ExponentialDecay(0.1, 0.5)


@pytest.mark.parametrize("make, exc, message", [
    (lambda: S.StepDecay(-0.1, 2), ValueError,
     r"StepDecay: initial_learning_rate must lie in \[0, inf\); got -0.1\."),
    (lambda: S.StepDecay(0.1, 0), ValueError,
     r"StepDecay: drop_every must be a positive int; got 0\."),
    (lambda: S.StepDecay(0.1, 2, factor=0.0), ValueError,
     r"StepDecay: factor must lie in \(0, 1\]; got 0.0\."),
    (lambda: S.StepDecay(0.1, 2, factor=1.5), ValueError,
     r"StepDecay: factor must lie in \(0, 1\]; got 1.5\."),
    (lambda: S.ExponentialDecay(0.1, -1.0), ValueError,
     r"ExponentialDecay: decay_rate must lie in \[0, inf\); got -1.0\."),
    (lambda: S.InverseTimeDecay(0.1, 1.0, steps_per_epoch=0), ValueError,
     r"InverseTimeDecay: steps_per_epoch must be a positive int; got 0\."),
    (lambda: S.InverseTimeDecay(0.1, 1.0)(-1), ValueError,
     r"InverseTimeDecay: step must be a non-negative int; got -1\."),
    (lambda: S.get("step_decay"), ValueError, r"schedules.get: StepDecay needs arguments"),
    (lambda: S.get("cosine"), ValueError,
     r"schedules.get: unknown schedule 'cosine'; valid names: exponential_decay, "
     r"inverse_time_decay, step_decay"),
    (lambda: S.get(0.1), TypeError, r"schedules.get: identifier must be None, a dict"),
    (lambda: S.serialize(lambda s: 0.1), TypeError, r"cannot be serialized"),
])
def test_errors(make, exc, message):
    with pytest.raises(exc, match=message):
        make()
