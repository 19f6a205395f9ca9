"""Divergence guard defaults (stop on non-finite only, warn once above 3x, strict stop
opt-in) and check_initial_loss's derived thresholds (both verdicts)."""

import warnings

import numpy as np
import pytest

import fastcnn
from fastcnn import Sequential, diagnostics
from fastcnn.callbacks import Callback
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.layers import Conv2D, Dense, Flatten

from _model_helpers import make_blobs


class Spike(Callback):
    """After batch 0, scale the last layer's kernel by ``factor`` (a finite loss spike);
    after batch 1, undo it: the run recovers."""

    def __init__(self, factor=60.0):
        super().__init__()
        self.factor = factor

    def on_batch_end(self, batch, logs=None):
        kernel = self.model.layers[-1].kernel.data
        if batch == 0:
            kernel *= self.factor
        elif batch == 1:
            kernel /= self.factor


def model_for_guard():
    model = Sequential([Conv2D(4, 3, activation="relu"), Flatten(),
                        Dense(3, activation="softmax")], input_shape=(1, 6, 6))
    model.compile(optimizer=fastcnn.SGD(learning_rate=1e-6), metrics=[])
    return model


@pytest.mark.filterwarnings("ignore:fit. parameter")       # update/weight ratio warnings
def test_default_guard_warns_once_above_3x_and_keeps_training():
    x, y = make_blobs(64, size=6)
    with pytest.warns(FastCNNWarning, match="exceeds 3x the reference loss") as record:
        h = model_for_guard().fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0,
                                  shuffle=False, callbacks=[Spike()])
    assert h.diverged is None and len(h.epoch) == 2
    assert sum("exceeds 3x" in str(w.message) for w in record) == 1


@pytest.mark.parametrize("guard", ["strict", "raise"])
def test_strict_guard_stops_at_3x(guard):
    x, y = make_blobs(64, size=6)
    model = model_for_guard()
    if guard == "raise":
        with pytest.raises(fastcnn.TrainingDivergedError, match="exceeded 3x"):
            model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False,
                      callbacks=[Spike()], explosion_guard=guard)
        return
    with pytest.warns(FastCNNWarning, match="training diverged at epoch 1, batch 2"):
        h = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False,
                      callbacks=[Spike()], explosion_guard=guard)
    assert h.diverged["reason"].startswith("loss exceeded 3x") and len(h.epoch) == 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore:fit.*exceeds 3x")      # the finite jump before the inf
@pytest.mark.filterwarnings("ignore:fit. parameter")       # update/weight ratio warnings
def test_default_guard_still_stops_on_a_non_finite_loss():
    x, y = make_blobs(64, size=6)
    model = model_for_guard()
    with pytest.warns(FastCNNWarning, match="non-finite loss"):
        h = model.fit(x, y, epochs=2, batch_size=8, verbose=0,
                      callbacks=[Spike(factor=np.float32(1e38))])
    assert h.diverged is not None and h.diverged["reason"] == "non-finite loss"


def test_check_initial_loss_both_verdicts_on_the_readme_model():
    fastcnn.seed(0)
    (x, y), _ = fastcnn.datasets.load_digits()
    x = fastcnn.preprocessing.Standardize().fit(x).transform(x)
    model = fastcnn.models.digits_cnn()
    model.compile(optimizer="adam", metrics=["accuracy"])
    report = diagnostics.check_initial_loss(model, x, y)
    assert report.passed and report.verdict.startswith("ok"), str(report)
    assert report.lower < report.loss < report.upper == pytest.approx(np.log(10) + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FastCNNWarning)
        model.fit(x[:512], y[:512], epochs=3, verbose=0, seed=0)
    trained = diagnostics.check_initial_loss(model, x, y)
    assert not trained.passed and "below the entropy of the labels" in trained.verdict


def test_check_initial_loss_lower_bound_is_the_label_entropy():
    """Unbalanced labels: an uninformed model cannot beat H(pi) < ln C; the bound is
    that entropy (minus 3 standard errors), not ln C."""
    x, _ = make_blobs(200, size=6)
    y = np.zeros(200, int)
    y[:20] = 1                                  # pi = (0.9, 0.1, 0)
    model = model_for_guard()
    report = diagnostics.check_initial_loss(model, x, y)
    entropy = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    assert report.lower < entropy and report.lower > entropy - 0.5
