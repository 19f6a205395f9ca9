"""Callbacks: EarlyStopping, ModelCheckpoint, LearningRateScheduler, ReduceLROnPlateau,
TerminateOnNaN, ParameterAveraging, hook order and model.stop_training."""

import math

import numpy as np
import pytest
from _model_helpers import make_blobs

from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.nn.layers import Dense, Flatten
from fastcnn.optim.optimizers import SGD
from fastcnn.optim.schedules import StepDecay
from fastcnn.train.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ParameterAveraging,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from fastcnn.train.model import Sequential, load_model

# update/weight-ratio warnings of deliberately odd learning rates are not the point here
pytestmark = pytest.mark.filterwarnings("ignore::fastcnn.exceptions.FastCNNWarning")


blobs = make_blobs


def dense_model(optimizer="adam"):
    model = Sequential([Flatten(), Dense(8, activation="relu"), Dense(3, activation="softmax")],
                       input_shape=(1, 4, 4))
    model.compile(optimizer=optimizer, metrics=["accuracy"])
    return model


def feed(callback, model, values, key="val_loss"):
    """Drive the epoch hooks by hand with a chosen monitored sequence."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch, {})
        callback.on_epoch_end(epoch, {key: value, "loss": 1.0})
        if model.stop_training:                  # fit would stop here
            return epoch
    return None


@pytest.mark.parametrize("patience, stopped", [(0, 2), (1, 2), (2, 3), (3, None)])
def test_early_stopping_patience(patience, stopped):
    es = EarlyStopping(monitor="val_loss", patience=patience)
    assert feed(es, dense_model(), [1.0, 0.9, 0.95, 0.96]) == stopped
    assert es.best == 0.9 and es.best_epoch == 1
    assert es.stopped_epoch == (stopped if stopped is not None else -1)


def test_early_stopping_min_delta_and_max_mode():
    es = EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    assert es.mode == "max"
    # 0.52 does not beat 0.5 by more than min_delta: no improvement -> stop at epoch 1
    assert feed(es, dense_model(), [0.5, 0.52, 0.9], key="val_accuracy") == 1


def test_early_stopping_restores_best_weights():
    x, y = blobs()
    model = dense_model(SGD(learning_rate=0.5))

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append([p.data.copy() for p in self.model.parameters()])

    rec = Recorder()
    # monitor the training loss of a noisy high-lr run with patience 2
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = model.fit(x, y, epochs=12, batch_size=8, validation_data=(x[:24] + 1.5, y[:24]),
                  callbacks=[rec, es], verbose=0, seed=0)
    best = int(np.argmin(h.history["val_loss"]))
    assert es.best_epoch == best
    for p, saved in zip(model.parameters(), rec.weights[best]):
        np.testing.assert_array_equal(p.data, saved)
    assert model.evaluate(x[:24] + 1.5, y[:24])[0] == pytest.approx(es.best, rel=1e-5)


def test_model_checkpoint_best_only_and_every_epoch(tmp_path):
    model = dense_model()
    best = ModelCheckpoint(tmp_path / "best-{epoch}.npz", save_best_only=True)
    feed(best, model, [1.0, 0.8, 0.9, 0.7])
    assert [p.rsplit("-", 1)[1] for p in best.saved] == ["1.npz", "2.npz", "4.npz"]
    every = ModelCheckpoint(tmp_path / "every.npz")
    feed(every, model, [1.0, 2.0])
    assert every.saved == [str(tmp_path / "every.npz")] * 2
    loaded = load_model(tmp_path / "best-4.npz")
    for a, b in zip(loaded.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_model_checkpoint_in_fit_and_refuses_nan_weights(tmp_path):
    x, y = blobs()
    model = dense_model()
    ck = ModelCheckpoint(tmp_path / "m.npz", monitor="val_loss", save_best_only=True)
    model.fit(x, y, epochs=2, validation_data=(x, y), callbacks=[ck], verbose=0, seed=0)
    assert (tmp_path / "m.npz").exists() and ck.saved
    before = (tmp_path / "m.npz").read_bytes()
    model.parameters()[0].data[0, 0] = np.nan
    plain = ModelCheckpoint(tmp_path / "m.npz")
    with pytest.warns(FastCNNWarning, match="not saved"):
        feed(plain, model, [0.1])
    assert (tmp_path / "m.npz").read_bytes() == before


def test_monitor_missing_warns():
    es = EarlyStopping(monitor="val_loss")
    es.set_model(dense_model())
    es.on_train_begin()
    with pytest.warns(FastCNNWarning, match="monitor 'val_loss' is not in the epoch logs"):
        es.on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize("schedule, expected", [
    (StepDecay(0.1, drop_every=1, factor=0.5), [0.1, 0.05, 0.025]),
    (lambda epoch: 0.01 * (epoch + 1), [0.01, 0.02, 0.03]),
    (lambda epoch, lr: lr * 0.1, [1e-4, 1e-5, 1e-6]),           # Keras' two-argument form
], ids=["StepDecay", "callable", "keras-two-args"])
def test_learning_rate_scheduler_sets_the_rate(schedule, expected):
    x, y = blobs(32)
    model = dense_model()                     # Adam, lr 1e-3
    h = model.fit(x, y, epochs=3, callbacks=[LearningRateScheduler(schedule)], verbose=0)
    np.testing.assert_allclose(h.history["lr"], expected, rtol=1e-12)
    assert model.optimizer.current_learning_rate() == pytest.approx(expected[-1])


def test_learning_rate_scheduler_rejects_bad_values():
    with pytest.raises(TypeError, match="schedule must be callable"):
        LearningRateScheduler(0.1)
    model = dense_model()
    cb = LearningRateScheduler(lambda e: -1.0)
    cb.set_model(model)
    with pytest.raises(ValueError, match="must return a finite float >= 0; got -1.0"):
        cb.on_epoch_begin(0)


def test_reduce_lr_on_plateau():
    model = dense_model(SGD(learning_rate=1.0))
    cb = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.2)
    feed(cb, model, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # epochs 1-2 stall -> 0.5; 3-4 -> 0.25; 5-6 -> max(0.125, 0.2) = 0.2; then no change
    assert cb.reductions == [(2, 0.5), (4, 0.25), (6, 0.2)]
    assert model.optimizer.current_learning_rate() == 0.2


def test_reduce_lr_on_plateau_in_fit_changes_history_lr():
    x, y = blobs(32)
    model = dense_model(SGD(learning_rate=0.1))
    cb = ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, min_delta=10.0)
    h = model.fit(x, y, epochs=3, callbacks=[cb], verbose=0)
    np.testing.assert_allclose(h.history["lr"], [0.1, 0.1, 0.01])   # epoch 0 improves on inf


def test_terminate_on_nan():
    x, y = blobs(64)
    x[37] = np.nan
    model = dense_model()
    cb = TerminateOnNaN()
    h = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, callbacks=[cb],
                  explosion_guard=False, verbose=0)
    assert cb.terminated_at == (0, 2)          # sample 37 is in batch 2 of epoch 0
    assert len(h.epoch) == 1 and math.isnan(h.history["loss"][0])


@pytest.mark.parametrize("warmup", [True, False])
def test_parameter_averaging_math(warmup):
    x, y = blobs(40)
    model = dense_model(SGD(learning_rate=0.1))
    start = [p.data.astype(np.float64) for p in model.parameters()]

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            self.steps = []

        def on_batch_end(self, batch, logs=None):
            self.steps.append([p.data.astype(np.float64) for p in self.model.parameters()])

    rec = Recorder()
    avg = ParameterAveraging(decay=0.9, warmup=warmup, swap_at_end=False)
    model.fit(x, y, epochs=2, batch_size=8, callbacks=[rec, avg], verbose=0, seed=0)
    expected = [w.copy() for w in start]
    for t, weights in enumerate(rec.steps):
        d = min(0.9, (1 + t) / (10 + t)) if warmup else 0.9
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
    assert avg.steps == len(rec.steps) == 10
    for a, e in zip(avg.averages, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
    raw = [p.data.copy() for p in model.parameters()]
    with avg.averaged():
        for p, e in zip(model.parameters(), expected):
            np.testing.assert_allclose(p.data, e, rtol=1e-5, atol=1e-6)
    for p, r in zip(model.parameters(), raw):                  # swapped back
        np.testing.assert_array_equal(p.data, r)


def test_parameter_averaging_validation_and_swap_at_end():
    x, y = blobs(48)
    model = dense_model(SGD(learning_rate=0.2))
    avg = ParameterAveraging(decay=0.5)
    h = model.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y), callbacks=[avg],
                  verbose=0, seed=0)
    # the model now holds the averages; the last validation was computed with them
    assert model.evaluate(x, y)[0] == pytest.approx(h.history["val_loss"][-1], rel=1e-6)
    assert avg.raw_weights is not None
    assert not all(np.array_equal(p.data, r) for p, r in zip(model.parameters(),
                                                              avg.raw_weights))


def test_hook_order_and_stop_training():
    x, y = blobs(32)
    model = dense_model()
    calls = []

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            calls.append(f"batch_end {batch}")
            if batch == 1:
                self.model.stop_training = True

        def on_test_begin(self, logs=None):
            calls.append("test_begin")

        def on_test_end(self, logs=None):
            calls.append("test_end")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    h = model.fit(x, y, epochs=5, batch_size=8, validation_data=(x, y), callbacks=[Spy()],
                  verbose=0)
    assert calls == ["train_begin", "epoch_begin 0", "batch_end 0", "batch_end 1",
                     "test_begin", "test_end",
                     "epoch_end 0 ['accuracy', 'loss', 'lr', 'time', 'val_accuracy', "
                     "'val_loss']", "train_end"]
    assert len(h.epoch) == 1
    # the next fit starts afresh
    assert len(model.fit(x, y, epochs=2, verbose=0).epoch) == 2


def test_callbacks_must_be_callbacks():
    x, y = blobs(8)
    with pytest.raises(TypeError, match="callbacks must be fastcnn.callbacks.Callback"):
        dense_model().fit(x, y, callbacks=[print], verbose=0)


@pytest.mark.parametrize("make, message", [
    (lambda: EarlyStopping(mode="up"), "mode must be 'auto', 'min' or 'max'; got 'up'"),
    (lambda: EarlyStopping(patience=-1), "patience must be a non-negative int; got -1"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"factor must lie in \(0, 1\); got 1.0"),
    (lambda: ParameterAveraging(decay=1.0), r"decay must lie in \[0, 1\); got 1.0"),
])
def test_argument_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------- ModelCheckpoint: issue 13, Keras surface

def test_model_checkpoint_best_survives_a_second_fit(tmp_path):
    """The audit: a second fit overwrote a checkpoint of loss 1.19 with one of 2.05e22,
    because the best value was forgotten at every fit."""
    model = dense_model()
    ck = ModelCheckpoint(filepath=tmp_path / "best.npz", save_best_only=True)   # val_loss
    feed(ck, model, [1.19])
    saved = (tmp_path / "best.npz").read_bytes()
    model.parameters()[0].data[...] += 1.0                # a different, worse model
    feed(ck, model, [2.05e22, 3.0])                       # the next fit call
    assert (tmp_path / "best.npz").read_bytes() == saved
    assert ck.best == 1.19 and len(ck.saved) == 1
    feed(ck, model, [0.5])                                # a real improvement is saved
    assert ck.best == 0.5 and len(ck.saved) == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the run diverges on purpose
def test_model_checkpoint_keeps_best_through_a_diverging_fit(tmp_path):
    x, y = blobs()
    model = dense_model(SGD(learning_rate=0.05))
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="loss", save_best_only=True)
    every = ModelCheckpoint(tmp_path / "every.npz", monitor="loss")
    model.fit(x, y, epochs=2, callbacks=[best, every], verbose=0, seed=0)
    files = {name: (tmp_path / name).read_bytes() for name in ("best.npz", "every.npz")}
    model.optimizer.set_learning_rate(1e30)
    with pytest.warns(FastCNNWarning, match="not saved"):
        model.fit(x, y, epochs=2, callbacks=[best, every], verbose=0, seed=0,
                  explosion_guard=False)
    for name, before in files.items():                    # neither replaced by NaN weights
        assert (tmp_path / name).read_bytes() == before, name
    assert np.isfinite(load_model(tmp_path / "every.npz").parameters()[0].data).all()


@pytest.mark.parametrize("logs, reason", [
    ({"loss": math.nan}, "loss is nan"),
    ({"loss": 0.3, "val_loss": math.inf}, "val_loss is inf"),
])
def test_model_checkpoint_default_mode_skips_non_finite(tmp_path, logs, reason):
    model = dense_model()
    ck = ModelCheckpoint(tmp_path / "m.npz")
    ck.set_model(model)
    with pytest.warns(FastCNNWarning, match=f"epoch 3 not saved: {reason}"):
        ck.on_epoch_end(2, logs)
    assert not (tmp_path / "m.npz").exists() and ck.saved == []


def test_model_checkpoint_skips_non_finite_moving_statistics(tmp_path):
    from fastcnn.nn.layers import BatchNormalization
    model = Sequential([Dense(3), BatchNormalization()], input_shape=(4,))
    model.layers[1].state["moving_variance"][0] = np.inf
    ck = ModelCheckpoint(tmp_path / "m.npz")
    ck.set_model(model)
    with pytest.warns(FastCNNWarning, match="the weights are not all finite"):
        ck.on_epoch_end(0, {"loss": 0.1})
    assert not (tmp_path / "m.npz").exists()


def test_model_checkpoint_keras_arguments(tmp_path, capsys):
    model = dense_model()
    ck = ModelCheckpoint(filepath=tmp_path / "w.npz", monitor="val_accuracy", verbose=1,
                         save_best_only=True, save_weights_only=True,
                         initial_value_threshold=0.5)
    assert ck.mode == "max" and ck.best == 0.5
    feed(ck, model, [0.4, 0.75, 0.7], key="val_accuracy")
    out = capsys.readouterr().out.splitlines()
    assert out == ["Epoch 1: val_accuracy did not improve from 0.50000",
                   f"Epoch 2: val_accuracy improved from 0.50000 to 0.75000, saving model to "
                   f"{tmp_path / 'w.npz'}",
                   "Epoch 3: val_accuracy did not improve from 0.75000"]
    with pytest.raises(ValueError, match="holds 'fastcnn-weights', not a model"):
        load_model(tmp_path / "w.npz")
    clone = dense_model()
    clone.load_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="verbose must be 0 or 1; got 'yes'"):
        ModelCheckpoint(tmp_path / "x.npz", verbose="yes")
    with pytest.raises(ValueError, match="initial_value_threshold must be a finite number"):
        ModelCheckpoint(tmp_path / "x.npz", initial_value_threshold=math.nan)
