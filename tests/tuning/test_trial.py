"""One trial: the early abort, reproducibility from the seed, failures recorded."""

import math

import numpy as np
import pytest

from _tuning_helpers import build_or_misbehave, build_tiny, first_weights, tiny_data
from fastcnn.tuning import AbortOnDivergence
from fastcnn.tuning.trial import (TrialConfig, TrialData, TrialSpec, model_from_bytes,
                                  model_to_bytes, run_trial)


class _FakeModel:
    stop_training = False


def _feed(callback, losses):
    """Call the hooks as fit does; return the batch after which training stopped."""
    callback.set_model(_FakeModel())
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for batch, loss in enumerate(losses):
        callback.on_batch_end(batch, {"loss": loss, "size": 8})
        if callback.model.stop_training:
            return batch
    return None


def test_abort_when_loss_exceeds_factor_times_first_loss():
    callback = AbortOnDivergence(3.0)
    assert _feed(callback, [2.0, 5.9, 6.0, 6.1, 1.0]) == 3       # 6.1 > 3 x 2.0
    assert callback.diverged["loss"] == 6.1 and callback.diverged["first_loss"] == 2.0
    assert callback.diverged["reason"].startswith("loss > 3")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_abort_on_non_finite_loss_even_without_factor(bad):
    callback = AbortOnDivergence(None)
    assert _feed(callback, [2.0, 100.0, bad]) == 2
    assert callback.diverged["reason"] == "non-finite loss"
    first_bad = AbortOnDivergence(3.0)
    assert _feed(first_bad, [bad, 1.0]) == 0 and first_bad.first_loss is None


def test_abort_state_is_reset_by_each_fit():
    callback = AbortOnDivergence(2.0)
    _feed(callback, [1.0, 3.0])
    assert _feed(callback, [5.0, 6.0]) is None and callback.diverged is None


@pytest.mark.parametrize("factor", [1.0, 0.5, -3, "3", True, math.inf])
def test_abort_factor_must_exceed_one(factor):
    with pytest.raises(ValueError, match="factor must be a finite number > 1"):
        AbortOnDivergence(factor)


def _config(build=build_tiny, epochs=2, keep_model=True, abort_factor=3.0):
    return TrialConfig(build=build, epochs=epochs, batch_size=32, abort_factor=abort_factor,
                       keep_model=keep_model)


def _data():
    (x, y), (x_val, y_val) = tiny_data()
    return TrialData(x, y, x_val, y_val)


def test_same_params_and_seed_give_the_same_numbers_and_weights():
    spec = TrialSpec(index=0, params={"lr": 3e-3}, seed=11)
    first, again = run_trial(_config(), _data(), spec), run_trial(_config(), _data(), spec)
    assert first["status"] == "ok" and first["epochs"] == 2
    assert first["history"] == again["history"]
    np.testing.assert_array_equal(first_weights(first), first_weights(again))
    other_seed = run_trial(_config(), _data(), TrialSpec(0, {"lr": 3e-3}, seed=12))
    assert other_seed["history"] != first["history"]


def test_exploding_learning_rate_is_recorded_as_diverged_not_failed():
    record = run_trial(_config(epochs=3), _data(), TrialSpec(0, {"lr": 30.0}, seed=0))
    assert record["status"] == "diverged" and record["error"] is None
    assert record["epochs"] <= 1 and record["diverged"]["batch"] < 8
    assert record["model"] is None                      # only finished trials ship models


def test_failing_build_is_recorded_with_its_message():
    record = run_trial(_config(build_or_misbehave), _data(),
                       TrialSpec(3, {"lr": 1e-3, "action": "raise"}, seed=0))
    assert record["status"] == "failed" and record["index"] == 3
    assert record["error"] == "ValueError: this trial's parameters are bad on purpose"
    assert "build_or_misbehave" in record["traceback"]


def test_build_must_return_a_compiled_model():
    def uncompiled(params):
        model = build_tiny(params)
        model.optimizer = None
        return model
    record = run_trial(_config(uncompiled), _data(), TrialSpec(0, {"lr": 1e-3}, seed=0))
    assert record["status"] == "failed" and "compiled model" in record["error"]


def test_model_bytes_round_trip_keeps_predictions():
    (x, _), _ = tiny_data(n_train=16)
    model = build_tiny({"lr": 1e-3})
    again = model_from_bytes(model_to_bytes(model))
    np.testing.assert_array_equal(model.predict(x), again.predict(x))
