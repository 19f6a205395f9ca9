"""CSVLogger (Keras' CSV format) and TensorBoard (event files read back with
TensorBoard's own reader)."""

import csv

import numpy as np
import pytest

from fastcnn.nn.layers import Dense, Flatten
from fastcnn.train.callbacks import CSVLogger, TensorBoard
from fastcnn.train.model import Sequential
from _model_helpers import make_blobs

pytestmark = pytest.mark.filterwarnings("ignore::fastcnn.exceptions.FastCNNWarning")


def _fit(callbacks, epochs=3, validation=True):
    x, y = make_blobs()
    model = Sequential([Flatten(), Dense(8, activation="relu"), Dense(3, activation="softmax")],
                       input_shape=x.shape[1:])
    model.compile(optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, seed=0,
                        validation_data=(x[:20], y[:20]) if validation else None,
                        callbacks=callbacks)
    return model, history


def test_csv_logger_writes_keras_format(tmp_path):
    path = tmp_path / "log.csv"
    _, history = _fit([CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,loss,lr,time,val_accuracy,val_loss"
    rows = list(csv.DictReader(lines))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        np.testing.assert_allclose([float(row[key]) for row in rows], history.history[key],
                                   rtol=1e-12)


def test_csv_logger_append_separator_and_missing_keys(tmp_path):
    path = tmp_path / "log.tsv"
    logger = CSVLogger(path, separator="\t", append=True)
    _fit([logger], epochs=2)
    _fit([logger], epochs=1)                               # continues: no second header
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch\taccuracy\t")
    assert [line.split("\t")[0] for line in lines[1:]] == ["0", "1", "0"]
    # a key absent from a later epoch is written NA; sequences are quoted lists
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "sizes": [1, 2]})
    logger.on_epoch_end(1, {"sizes": np.array([3, 4])})
    logger.on_train_end()
    assert path.read_text().splitlines()[-2:] == ['0\t1.0\t[1, 2]', '1\tNA\t[3, 4]']
    comma = CSVLogger(tmp_path / "c.csv")
    comma.on_train_begin()
    comma.on_epoch_end(0, {"sizes": (1, 2)})
    comma.on_train_end()
    assert list(csv.reader(open(tmp_path / "c.csv")))[1] == ["0", "[1, 2]"]
    with pytest.raises(ValueError, match="CSVLogger: separator must be a single character"):
        CSVLogger(path, separator=", ")


def _read_events(run_dir):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    reader = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.HISTOGRAMS: 0,
                                     event_accumulator.SCALARS: 0})
    reader.Reload()
    return reader


def test_tensorboard_writes_scalars_and_histograms_tensorboard_reads(tmp_path):
    pytest.importorskip("tensorboardX")
    model, history = _fit([TensorBoard(tmp_path / "logs", histogram_freq=2)])
    train = _read_events(tmp_path / "logs" / "train")
    validation = _read_events(tmp_path / "logs" / "validation")
    assert sorted(train.Tags()["scalars"]) == ["epoch_accuracy", "epoch_learning_rate",
                                               "epoch_loss"]
    assert sorted(validation.Tags()["scalars"]) == ["epoch_accuracy", "epoch_loss"]
    for reader, tag, key in [(train, "epoch_loss", "loss"), (train, "epoch_accuracy", "accuracy"),
                             (train, "epoch_learning_rate", "lr"),
                             (validation, "epoch_loss", "val_loss")]:
        events = reader.Scalars(tag)
        assert [e.step for e in events] == [0, 1, 2]
        np.testing.assert_allclose([e.value for e in events], history.history[key], rtol=1e-6)
    params = model.parameters()
    assert sorted(train.Tags()["histograms"]) == sorted(p.name for p in params)
    for p in params:
        events = train.Histograms(p.name)
        assert [e.step for e in events] == [0, 2]          # histogram_freq=2
        last = events[-1].histogram_value
        assert last.num == p.data.size                     # the final weights
        np.testing.assert_allclose([last.min, last.max, last.sum],
                                   [p.data.min(), p.data.max(), p.data.sum()], rtol=1e-5,
                                   atol=1e-6)


def test_tensorboard_without_validation_and_without_histograms(tmp_path):
    pytest.importorskip("tensorboardX")
    _fit([TensorBoard(tmp_path, histogram_freq=0)], epochs=1, validation=False)
    train = _read_events(tmp_path / "train")
    assert train.Tags()["histograms"] == []
    assert len(train.Scalars("epoch_loss")) == 1
    with pytest.raises(ValueError, match="TensorBoard: histogram_freq"):
        TensorBoard(tmp_path, histogram_freq=-1)
