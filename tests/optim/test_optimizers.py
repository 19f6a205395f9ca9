"""Optimizers' machinery: lazy state, frozen parameters, state_dict and config round trips,
clipping, learning-rate schedules, allocation-free steps and pinned messages (their
arithmetic: test_optimizer_math.py)."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from _optim_helpers import make_param, run

from fastcnn.nn.parameter import Parameter
from fastcnn.optim import optimizers as O
from fastcnn.optim import schedules as S

ALL_OPTIMIZERS = [
    O.SGD(0.1), O.SGD(0.1, momentum=0.9, nesterov=True), O.Adagrad(0.1), O.RMSprop(0.01),
    O.RMSprop(0.01, momentum=0.9, centered=True), O.Adam(0.01), O.Adam(0.01, amsgrad=True),
    O.AdamW(0.01), O.Adadelta(),
]
IDS = [repr(o) for o in ALL_OPTIMIZERS]
SLOTS = {"SGD": [(), ("momentum",)], "Adagrad": [("accumulator",)],
         "RMSprop": [("velocity",), ("average_gradient", "momentum", "velocity")],
         "Adam": [("m", "v"), ("m", "v", "v_max")], "AdamW": [("m", "v")],
         "Adadelta": [("accumulated_delta", "accumulated_grad")]}


def fresh(opt):
    return type(opt).from_config(opt.get_config())


def model_params(rng, dtype=np.float32):
    params = [Parameter(rng.standard_normal((3, 4)).astype(dtype), name="dense/kernel"),
              Parameter(rng.standard_normal(4).astype(dtype), name="dense/bias"),
              Parameter(rng.standard_normal((2, 2)).astype(dtype), name="frozen", trainable=False)]
    return params


def grad_steps(rng, params, n):
    return [[rng.standard_normal(p.shape).astype(p.data.dtype) for p in params]
            for _ in range(n)]


@pytest.mark.parametrize("opt", ALL_OPTIMIZERS, ids=IDS)
def test_lazy_state_and_frozen_params(opt, rng):
    opt = fresh(opt)
    params = model_params(rng)
    frozen_before = params[2].data.copy()
    assert opt.state_dict() == {"iterations": 0, "state": {}}
    run(opt, params, grad_steps(rng, params, 2))
    sd = opt.state_dict()
    assert sd["iterations"] == 2 == opt.iterations
    assert set(sd["state"]) == {"dense/kernel", "dense/bias"}          # no state for "frozen"
    assert tuple(sorted(sd["state"]["dense/kernel"])) in SLOTS[type(opt).__name__]
    for name, p in zip(["dense/kernel", "dense/bias"], params):
        for arr in sd["state"][name].values():
            assert arr.shape == p.shape and arr.dtype == np.float32
    np.testing.assert_array_equal(params[2].data, frozen_before)


@pytest.mark.parametrize("opt", ALL_OPTIMIZERS, ids=IDS)
def test_state_dict_round_trip_continues_identically(opt, rng):
    opt = fresh(opt)
    params = model_params(rng)
    steps = grad_steps(rng, params, 5)
    run(opt, params, steps[:2])
    saved_params = [p.data.copy() for p in params]
    sd = json_like_copy(opt.state_dict())

    reference = run(opt, params, steps[2:])               # the original continues
    clone_params = [Parameter(d.copy(), name=p.name, trainable=p.trainable)
                    for d, p in zip(saved_params, params)]
    clone = fresh(opt)
    clone.load_state_dict(sd)
    resumed = run(clone, clone_params, steps[2:])         # a fresh one resumes from the dict
    assert clone.iterations == opt.iterations == 5
    for a, b in zip(reference, resumed):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def json_like_copy(sd):
    """What a checkpoint round trip gives back: plain dicts, new arrays."""
    return {"iterations": int(sd["iterations"]),
            "state": {k: {s: np.array(a) for s, a in v.items()} for k, v in sd["state"].items()}}


def test_state_dict_returns_copies(rng):
    opt = O.Adam(0.1)
    params = model_params(rng)
    run(opt, params, grad_steps(rng, params, 1))
    sd = opt.state_dict()
    sd["state"]["dense/bias"]["m"][...] = 123.0
    assert not np.any(opt.state_dict()["state"]["dense/bias"]["m"] == 123.0)


def test_load_state_dict_errors(rng):
    opt = O.Adam(0.1)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state_dict must be a dict with "
                                         r"keys 'iterations' and 'state'; got \['state'\]\."):
        opt.load_state_dict({"state": {}})
    with pytest.raises(ValueError, match=r"iterations must be a non-negative int; got -1\."):
        opt.load_state_dict({"iterations": -1, "state": {}})
    with pytest.raises(ValueError, match=r"state of parameter 'w' must have slots \['m', 'v'\]; "
                                         r"got \['m'\]\."):
        opt.load_state_dict({"iterations": 1, "state": {"w": {"m": np.zeros(3)}}})
    opt.load_state_dict({"iterations": 1, "state": {"w": {"m": np.zeros(3), "v": np.zeros(3)}}})
    p = make_param([1.0, 2.0], name="w")
    with pytest.raises(ValueError, match=r"Adam.step: loaded state 'm' of parameter 'w' has shape "
                                         r"\(3,\) dtype float64; the parameter has shape \(2,\)"):
        opt.step([p])


def test_step_parameter_errors():
    p = make_param([1.0], name="")
    with pytest.raises(ValueError, match=r"SGD.step: a parameter has no name \(shape \(1,\)\)"):
        O.SGD().step([p])
    a, b = make_param([1.0], name="x"), make_param([2.0], name="x")
    with pytest.raises(ValueError, match=r"SGD.step: two parameters are named 'x'"):
        O.SGD().step([a, b])
    c = make_param([1.0], name="c")
    c.grad = np.zeros(1, dtype=np.float32)
    with pytest.raises(ValueError, match=r"parameter 'c' has data \(1,\) float64 but grad \(1,\) "
                                         r"float32; they must match\."):
        O.SGD().step([c])


# --------------------------------------------------------------------------- config

@pytest.mark.parametrize("opt", ALL_OPTIMIZERS + [
    O.SGD(S.StepDecay(0.1, drop_every=3, factor=0.5), clipnorm=1.0),
    O.Adam(S.ExponentialDecay(0.01, 0.1), clipvalue=0.5), O.RMSprop(global_clipnorm=2.0)],
    ids=IDS + ["sgd-schedule-clipnorm", "adam-schedule-clipvalue", "rmsprop-global-clip"])
def test_config_round_trip(opt):
    config = opt.get_config()
    again = type(opt).from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config and repr(again) == repr(opt)
    assert O.get(O.serialize(opt)).get_config() == config


@pytest.mark.parametrize("name, cls", [("sgd", O.SGD), ("SGD", O.SGD), ("Adam", O.Adam),
                                       ("adamw", O.AdamW), ("RMSprop", O.RMSprop),
                                       ("adagrad", O.Adagrad), ("ADADELTA", O.Adadelta)])
def test_get_by_name_uses_keras_defaults(name, cls):
    opt = O.get(name)
    assert type(opt) is cls
    assert opt.get_config() == cls().get_config()


def test_keras_defaults():
    assert O.SGD().get_config()["learning_rate"] == 0.01
    adam = O.Adam().get_config()
    assert (adam["learning_rate"], adam["beta_1"], adam["beta_2"], adam["epsilon"]) == \
        (0.001, 0.9, 0.999, 1e-7)
    assert O.AdamW().weight_decay == 0.004
    assert (O.Adagrad().initial_accumulator_value, O.Adagrad().epsilon) == (0.1, 1e-7)
    assert (O.RMSprop().rho, O.RMSprop().learning_rate) == (0.9, 0.001)
    assert (O.Adadelta().learning_rate, O.Adadelta().rho, O.Adadelta().epsilon) == (1.0, 0.95, 1e-7)


def test_get_instance_and_errors():
    opt = O.Adam()
    assert O.get(opt) is opt
    assert O.get({"class_name": "SGD", "config": {"momentum": 0.5}}).momentum == 0.5
    with pytest.raises(ValueError, match=r"optimizers.get: unknown optimizer 'adamax'; valid names: "
                                         r"adadelta, adagrad, adam, adamw, nadam, rmsprop, sgd"):
        O.get("adamax")
    with pytest.raises(ValueError, match=r"a config dict needs a 'class_name' key"):
        O.get({"config": {}})
    with pytest.raises(TypeError, match=r"identifier must be a str, a dict or an Optimizer; "
                                        r"got int\."):
        O.get(1)


# --------------------------------------------------------------------------- learning rate

def test_schedule_drives_the_learning_rate():
    sched = S.StepDecay(0.1, drop_every=2, factor=0.5)
    opt = O.SGD(sched)
    p = make_param([0.0])
    rates = []
    for _ in range(5):
        rates.append(opt.current_learning_rate())
        p.grad[...] = 1.0
        opt.step([p])
    assert rates == [0.1, 0.1, 0.05, 0.05, 0.025]           # first step uses schedule(0)
    assert p.data[0] == pytest.approx(-sum(rates), rel=1e-14)
    assert opt.learning_rate is sched


def test_set_learning_rate():
    opt = O.Adam(0.01)
    opt.set_learning_rate(0.001)
    assert opt.current_learning_rate() == 0.001 and opt.get_config()["learning_rate"] == 0.001
    opt.learning_rate = S.InverseTimeDecay(0.1, 1.0)
    assert opt.current_learning_rate() == 0.1
    with pytest.raises(ValueError, match=r"Adam: learning_rate must be a float >= 0 or a schedule "
                                         r"\(callable step -> float\); got -1\."):
        opt.set_learning_rate(-1)


def test_lambda_schedule_works_but_does_not_serialize():
    opt = O.SGD(lambda step: 0.1 / (step + 1))
    p = make_param([0.0])
    p.grad[...] = 1.0
    opt.step([p])
    opt.step([p])
    assert p.data[0] == pytest.approx(-0.15)
    with pytest.raises(TypeError, match="cannot be serialized"):
        opt.get_config()


# --------------------------------------------------------------------------- clipping

def test_clipnorm_clipvalue_global_clipnorm_leave_grad_untouched():
    g = np.array([3.0, 4.0])                                  # norm 5
    for opt, expected in [(O.SGD(1.0, clipnorm=1.0), [-0.6, -0.8]),
                          (O.SGD(1.0, clipnorm=10.0), [-3.0, -4.0]),
                          (O.SGD(1.0, clipvalue=3.5), [-3.0, -3.5])]:
        p = make_param([0.0, 0.0])
        p.grad[...] = g
        opt.step([p])
        np.testing.assert_allclose(p.data, expected, rtol=1e-15)
        np.testing.assert_array_equal(p.grad, g)             # the user's gradient is intact
    a, b = make_param([0.0], name="a"), make_param([0.0], name="b")
    a.grad[...], b.grad[...] = 6.0, 8.0                       # joint norm 10
    O.SGD(1.0, global_clipnorm=5.0).step([a, b])
    np.testing.assert_allclose([a.data[0], b.data[0]], [-3.0, -4.0], rtol=1e-15)


# --------------------------------------------------------------------------- the hot path

@pytest.mark.parametrize("opt", ALL_OPTIMIZERS + [O.Adam(weight_decay=0.1, clipvalue=1.0)],
                         ids=IDS + ["adam-wd-clipvalue"])
def test_steps_after_the_first_allocate_nothing_big(opt, rng):
    opt = fresh(opt)
    p = Parameter(rng.standard_normal(250_000).astype(np.float32), name="big")   # 1 MB
    p.grad[...] = rng.standard_normal(p.shape).astype(np.float32)
    opt.step([p])                                              # creates state and scratch
    tracemalloc.start()
    try:
        opt.step([p])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000, f"{opt!r}: a step allocated {peak} bytes (param: 1,000,000)"
    assert p.data.dtype == np.float32


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("make, exc, message", [
    (lambda: O.SGD(-0.1), ValueError,
     r"SGD: learning_rate must be a float >= 0 or a schedule \(callable step -> float\); "
     r"got -0.1\."),
    (lambda: O.SGD("fast"), ValueError, r"SGD: learning_rate must be .*; got 'fast'\."),
    (lambda: O.SGD(momentum=1.5), ValueError, r"SGD: momentum must lie in \[0, 1\]; got 1.5\."),
    (lambda: O.SGD(nesterov="yes"), TypeError, r"SGD: nesterov must be a bool; got 'yes'\."),
    (lambda: O.SGD(nesterov=True), ValueError,
     r"SGD: nesterov=True requires momentum > 0; got momentum=0.0\."),
    (lambda: O.SGD(weight_decay=-1.0), ValueError,
     r"SGD: weight_decay must lie in \[0, inf\); got -1.0\."),
    (lambda: O.Adagrad(initial_accumulator_value=-0.1), ValueError,
     r"Adagrad: initial_accumulator_value must lie in \[0, inf\); got -0.1\."),
    (lambda: O.Adagrad(epsilon=-1e-7), ValueError,
     r"Adagrad: epsilon must lie in \[0, inf\); got -1e-07\."),
    (lambda: O.RMSprop(rho=1.0), ValueError, r"RMSprop: rho must lie in \[0, 1\); got 1.0\."),
    (lambda: O.RMSprop(momentum=-0.5), ValueError,
     r"RMSprop: momentum must lie in \[0, 1\]; got -0.5\."),
    (lambda: O.RMSprop(epsilon=float("inf")), ValueError,
     r"RMSprop: epsilon must be a finite float >= 1.175e-38 .*; got inf\."),
    # issue 13: an epsilon of 0 made NaN weights after one step on a zero gradient
    (lambda: O.RMSprop(epsilon=0.0), ValueError,
     r"RMSprop: epsilon must be a finite float >= 1.175e-38 \(float32's smallest normal "
     r"number\), because g / sqrt\(v \+ epsilon\) with v starting at 0 is 0 / 0 on a zero "
     r"gradient; got 0.0\."),
    (lambda: O.Adam(epsilon=0), ValueError,
     r"Adam: epsilon must be a finite float >= 1.175e-38 .* because m / \(sqrt\(v\) \+ "
     r"epsilon\) is 0 / 0 on a zero gradient; got 0\."),
    (lambda: O.Adam(epsilon=1e-50), ValueError, r"Adam: epsilon must be .*; got 1e-50\."),
    (lambda: O.AdamW(epsilon=0.0), ValueError, r"AdamW: epsilon must be a finite float"),
    (lambda: O.Adadelta(epsilon=0.0), ValueError, r"Adadelta: epsilon must be a finite float"),
    (lambda: O.Adagrad(epsilon=0.0, initial_accumulator_value=0.0), ValueError,
     r"Adagrad: epsilon and initial_accumulator_value cannot both be \(nearly\) 0: "
     r"g / sqrt\(G \+ epsilon\) is 0 / 0 on a zero gradient; got epsilon=0.0, "
     r"initial_accumulator_value=0.0\."),
    (lambda: O.RMSprop(centered=1), TypeError, r"RMSprop: centered must be a bool; got 1\."),
    (lambda: O.Adam(beta_1=1.5), ValueError, r"Adam: beta_1 must lie in \[0, 1\); got 1.5\."),
    (lambda: O.Adam(beta_2=-0.1), ValueError, r"Adam: beta_2 must lie in \[0, 1\); got -0.1\."),
    (lambda: O.Adam(epsilon=-1.0), ValueError, r"Adam: epsilon must be a finite .*; got -1.0\."),
    (lambda: O.Adam(weight_decay=-0.01), ValueError,
     r"Adam: weight_decay must lie in \[0, inf\); got -0.01\."),
    (lambda: O.Adam(amsgrad="no"), TypeError, r"Adam: amsgrad must be a bool; got 'no'\."),
    (lambda: O.AdamW(beta_1=1.0), ValueError, r"AdamW: beta_1 must lie in \[0, 1\); got 1.0\."),
    (lambda: O.AdamW(weight_decay=-1), ValueError,
     r"AdamW: weight_decay must lie in \[0, inf\); got -1\."),
    (lambda: O.Adadelta(rho=1.2), ValueError, r"Adadelta: rho must lie in \[0, 1\); got 1.2\."),
    (lambda: O.Adadelta(epsilon=-1.0), ValueError,
     r"Adadelta: epsilon must be a finite float .*; got -1.0\."),
    (lambda: O.Adam(clipnorm=0.0), ValueError, r"Adam: clipnorm must lie in \(0, inf\); got 0.0\."),
    (lambda: O.SGD(clipvalue=-1.0), ValueError,
     r"SGD: clipvalue must lie in \(0, inf\); got -1.0\."),
    (lambda: O.SGD(global_clipnorm=0), ValueError,
     r"SGD: global_clipnorm must lie in \(0, inf\); got 0\."),
    (lambda: O.SGD(clipnorm=1.0, clipvalue=1.0), ValueError,
     r"SGD: at most one of clipnorm, clipvalue and global_clipnorm may be set; "
     r"got clipnorm=1.0, clipvalue=1.0\."),
])
def test_hyperparameter_validation(make, exc, message):
    with pytest.raises(exc, match=message):
        make()


@pytest.mark.parametrize("opt", [
    O.SGD(0.1, momentum=1.0), O.Adagrad(0.1, epsilon=0.0), O.Adagrad(0.1, epsilon=O.MIN_EPSILON,
                                                                     initial_accumulator_value=0),
    O.RMSprop(0.1, epsilon=O.MIN_EPSILON), O.RMSprop(0.1, epsilon=O.MIN_EPSILON, centered=True,
                                                     momentum=0.5),
    O.Adam(0.1, epsilon=O.MIN_EPSILON, beta_1=0.0, beta_2=0.0), O.AdamW(0.1, epsilon=O.MIN_EPSILON),
    O.Adadelta(1.0, epsilon=O.MIN_EPSILON, rho=0.0),
], ids=["sgd", "adagrad", "adagrad-acc0", "rmsprop", "rmsprop-centered", "adam", "adamw",
        "adadelta"])
def test_extreme_accepted_hyperparameters_keep_float32_weights_finite(opt):
    """What the constructors accept (the extremes of each rule) never turns zero
    gradients -- a dead unit, a frozen feature -- into NaN weights."""
    p = make_param([1.0, -2.0], dtype=np.float32)
    run(opt, [p], [[0.0, 0.0], [0.0, 0.0], [1e-3, 0.0]])
    assert np.isfinite(p.data).all(), p.data
