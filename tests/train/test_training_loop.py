"""The fit loop: seeded shuffling, augmentation, progress and summary lines, history
("lr", update ratios), the explosion guard, and test-time augmentation in predict."""

import functools
import re
import sys
import warnings

import numpy as np
import pytest
from _model_helpers import make_blobs

import fastcnn
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.nn.layers import Conv2D, Dense, Flatten
from fastcnn.optim.optimizers import SGD
from fastcnn.train.callbacks import ModelCheckpoint
from fastcnn.train.loop import TrainingDivergedError
from fastcnn.train.model import Sequential

blobs = functools.partial(make_blobs, size=6)


def cnn(optimizer="adam"):
    model = Sequential([Conv2D(4, 3, activation="relu"), Flatten(),
                        Dense(16, activation="relu"), Dense(3, activation="softmax")],
                       input_shape=(1, 6, 6))
    model.compile(optimizer=optimizer, metrics=["accuracy"])
    return model


def weights(model):
    return [p.data.copy() for p in model.parameters()]


def quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FastCNNWarning)
        return model.fit(*args, **kwargs)


def test_seeded_shuffling_is_reproducible():
    x, y = blobs()
    runs = []
    for seed in (3, 3, 4):
        fastcnn.random.seed(0)                 # same initial weights
        model = cnn()
        quiet_fit(model, x, y, epochs=2, batch_size=16, verbose=0, seed=seed)
        runs.append(weights(model))
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))


def test_history_records_lr_times_and_update_ratios():
    x, y = blobs()
    model = cnn()
    h = quiet_fit(model, x, y, epochs=3, batch_size=16, validation_data=(x, y), verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert h.history["lr"] == [1e-3] * 3
    assert len(h.epoch_times) == 3 and all(t > 0 for t in h.epoch_times)
    names = {p.name for p in model.parameters()}
    assert set(h.update_ratios) <= names and "conv2d_1/kernel" in h.update_ratios
    assert all(len(v) == 3 and all(r > 0 for r in v) for v in h.update_ratios.values())
    assert h.diverged is None and h.to_dict()["history"] is h.history


def test_update_ratio_warning_once_per_cause():
    x, y = blobs()
    model = cnn(SGD(learning_rate=1e-9))
    with pytest.warns(FastCNNWarning) as record:
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    low = [str(w.message) for w in record if "probably too low" in str(w.message)]
    kernels = {re.search(r"parameter '([^']+)'", m).group(1) for m in low}
    assert kernels == {"conv2d_1/kernel", "dense_1/kernel", "dense_2/kernel"}
    assert len(low) == 3                       # once per parameter, not once per epoch
    assert all(v[-1] < 1e-5 for k, v in model.history.update_ratios.items() if "kernel" in k)


def test_augment_is_applied_per_batch_and_seeded():
    x, y = blobs(64)
    calls = []

    def spy(batch, rng=None):
        calls.append((batch.shape, rng.random()))
        return batch[:, :, :, ::-1].copy()

    quiet_fit(cnn(), x, y, epochs=2, batch_size=16, verbose=0, seed=1, augment=spy)
    first = list(calls)
    assert [s for s, _ in first] == [(16, 1, 6, 6)] * 8
    calls.clear()
    quiet_fit(cnn(), x, y, epochs=2, batch_size=16, verbose=0, seed=1, augment=spy)
    assert calls == first                      # same seed, same augmentation stream
    h = quiet_fit(cnn(), x, y, epochs=1, verbose=0, augment="flip,shift")
    assert len(h.epoch) == 1


def test_summary_lines_and_progress(capsys):
    x, y = blobs(32)
    quiet_fit(cnn(), x, y, epochs=2, verbose=2, validation_data=(x, y))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and err == ""
    assert re.fullmatch(r"Epoch 2/2 - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: "
                        r"\d\.\d{4} - val_accuracy: \d\.\d{4} - lr: 0\.001 - \d+\.\d\ds",
                        lines[1]), lines[1]
    quiet_fit(cnn(), x, y, epochs=1, verbose=0)
    assert capsys.readouterr() == ("", "")
    quiet_fit(cnn(), x, y, epochs=1, verbose=1, progress=True)
    out, err = capsys.readouterr()
    assert "Epoch 1/1" in err and "batch" in err and out.startswith("Epoch 1/1 - loss")


def test_fit_rejects_bad_verbose_and_guard():
    x, y = blobs(8)
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2; got 3"):
        cnn().fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="explosion_guard must be True, False, 'strict' or "
                                         "'raise'; got 'maybe'"):
        cnn().fit(x, y, explosion_guard="maybe")


# A diverging run overflows on purpose: NumPy's overflow warnings are expected here.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_explosion_guard_names_a_layer_and_keeps_checkpoints(tmp_path):
    x, y = blobs()
    model = cnn(SGD(learning_rate=0.05))
    ckpt = tmp_path / "ckpt.npz"
    quiet_fit(model, x, y, epochs=2, batch_size=16, verbose=0, seed=0,
              callbacks=[ModelCheckpoint(ckpt, monitor="loss")])
    saved = ckpt.read_bytes()
    model.optimizer.set_learning_rate(1e30)
    layer_names = [layer.name for layer in model.layers]
    with pytest.warns(FastCNNWarning, match="training diverged") as record:
        h = model.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0,
                      callbacks=[ModelCheckpoint(ckpt, monitor="loss")])
    message = str(record[-1].message)
    assert "lower the learning rate" in message
    report = h.diverged
    assert report["layer"] in layer_names and f"'{report['layer']}'" in message
    assert report["kind"] in ("weights", "activations", "gradients")
    assert report["epoch"] == 0 and len(h.epoch) == 0
    assert ckpt.read_bytes() == saved          # the earlier checkpoint is untouched


def test_explosion_guard_three_times_initial_loss_and_raise_mode():
    x, y = blobs()
    model = cnn(SGD(learning_rate=1e3))
    with pytest.raises(TrainingDivergedError, match="exceeded 3x the reference loss") as info:
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, explosion_guard="raise")
    report = info.value.report
    assert report["loss"] > 3 * report["initial_loss"]
    assert report["layer"] in [layer.name for layer in model.layers]
    assert info.value.history.diverged is report


def test_explosion_guard_tolerates_noise_of_a_trained_model():
    x, y = blobs()
    model = cnn()
    quiet_fit(model, x, y, epochs=30, batch_size=8, verbose=0, seed=0)
    # now batch losses are tiny and noisy: a fresh fit must not mistake that for divergence
    losses = []
    from fastcnn.train.callbacks import Callback

    class Batches(Callback):
        def on_batch_end(self, batch, logs=None):
            losses.append(logs["loss"])

    h = quiet_fit(model, x, y, epochs=3, batch_size=8, verbose=0, seed=1, callbacks=[Batches()])
    assert h.diverged is None and len(h.epoch) == 3
    assert max(losses) > 3 * losses[0]         # the plain first-batch rule would have tripped


# A diverging run overflows on purpose: NumPy's overflow warnings are expected here.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_explosion_guard_off_lets_training_run():
    x, y = blobs()
    model = cnn(SGD(learning_rate=1e3))
    h = quiet_fit(model, x, y, epochs=2, batch_size=16, verbose=0, explosion_guard=False)
    assert len(h.epoch) == 2 and h.diverged is None


def test_locate_the_first_layer_with_nan_weights():
    from fastcnn.tools.diagnostics import locate_nonfinite
    x, y = blobs(16)
    model = cnn()
    assert locate_nonfinite(model, x, y)["kind"] is None
    model.layers[2].kernel.data[0, 0] = np.inf
    found = locate_nonfinite(model, x, y)
    assert (found["layer"], found["kind"]) == ("dense_1", "weights")


def test_predict_tta_averages_views():
    x, _ = blobs(10)
    model = cnn()
    plain = model.predict(x, batch_size=4)
    mirrored = model.predict(x[:, :, :, ::-1].copy(), batch_size=4)
    tta = model.predict(x, batch_size=4, tta=True)
    assert tta.shape == (10, 3) and tta.dtype == np.float32
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, rtol=1e-5, atol=1e-7)
    views = model.predict(x, tta={"flips": False, "shifts": [(1, 0), (0, 1)]})
    assert views.shape == (10, 3)
    np.testing.assert_allclose(views.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x, tta=False), model.predict(x))


def test_progress_bar_shows_in_jupyter_and_terminals_only(monkeypatch):
    """verbose=1 shows the tqdm.auto bar when stderr is a terminal or inside a Jupyter
    kernel (a shell with a ``kernel``), never for verbose 0/2 or progress=False."""
    import types

    from fastcnn.train import loop

    shown = []
    monkeypatch.setattr(loop, "tqdm", lambda *a, **k: shown.append(k) or _NoBar())
    x, y = blobs(16)
    kernel_shell = types.SimpleNamespace(kernel=object())
    for ipython_shell, verbose, progress, expected in [
            (None, 1, None, 0), (kernel_shell, 1, None, 1), (kernel_shell, 2, None, 0),
            (kernel_shell, 1, False, 0), (types.SimpleNamespace(), 1, None, 0),
            (None, 0, True, 1)]:
        fake = types.SimpleNamespace(get_ipython=lambda shell=ipython_shell: shell)
        monkeypatch.setitem(sys.modules, "IPython", fake)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
        shown.clear()
        quiet_fit(cnn(), x, y, epochs=1, batch_size=8, verbose=verbose, progress=progress)
        assert len(shown) == expected, (ipython_shell, verbose, progress)


class _NoBar:
    def update(self, n):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        pass
