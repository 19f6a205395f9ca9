"""Logging a run to files: :class:`CSVLogger` (one CSV row per epoch, Keras' format) and
:class:`TensorBoard` (event files that TensorBoard reads: scalars per epoch and
histograms of the weights)."""

from __future__ import annotations

import collections.abc
import csv
import os

import numpy as np

from fastcnn.common.validation import check_nonnegative_int
from fastcnn.train.callbacks.base import Callback

__all__ = ["CSVLogger", "TensorBoard"]


def _csv_value(value):
    """A log value as Keras' CSVLogger writes it: numbers and strings as they are, a
    sequence as ``[a, b, ...]`` (the csv module quotes the cell when it holds the
    separator, so its commas stay in one cell)."""
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and np.ndim(value) > 0:
        return f"[{', '.join(map(str, value))}]"
    return value


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch, as Keras' ``CSVLogger``.

    The first row is the header ``epoch,<log keys, sorted>``, e.g.
    ``epoch,accuracy,loss,lr,time,val_accuracy,val_loss``; ``epoch`` counts from 0 (as in
    Keras); a key missing in a later epoch is written ``NA``. The file is flushed after
    every row, so it can be read (``pandas.read_csv``) while training runs.

    Parameters
    ----------
    filename : str or PathLike
    separator : str
        The column separator (one character).
    append : bool
        Add rows to an existing file (no second header when it is not empty) instead
        of overwriting it: continuing a run.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be a single character; "
                             f"got {separator!r}.")
        self.separator = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        has_rows = (self.append and os.path.exists(self.filename)
                    and os.path.getsize(self.filename) > 0)
        self._write_header = not has_rows
        self._file = open(self.filename, "a" if self.append else "w", newline="",
                          encoding="utf-8")
        self.keys = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:        # the first epoch decides the columns
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.separator)
            if self._write_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({key: _csv_value(logs.get(key, "NA")) for key in self.keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None

    def __repr__(self) -> str:
        return (f"CSVLogger({self.filename!r}, separator={self.separator!r}, "
                f"append={self.append})")


class TensorBoard(Callback):
    """Write TensorBoard event files: ``tensorboard --logdir <log_dir>`` then shows them.

    As Keras' callback, two runs under ``log_dir``: ``train/`` and ``validation/``, with
    the same tags so TensorBoard overlays the two curves:

    * scalars ``epoch_<name>`` at step = epoch (0-based): ``epoch_loss``, each metric
      (``epoch_accuracy``), ``epoch_learning_rate`` (train run) and the ``val_*`` values
      without their prefix in the validation run;
    * every ``histogram_freq`` epochs, a histogram of each parameter, tagged by its name
      (``conv2d_1/kernel``), in the train run (0 turns them off).

    The event files are written by ``tensorboardX`` (``pip install fastcnn[tensorboard]``),
    a maintained writer of TensorBoard's format that needs no TensorFlow.

    Parameters
    ----------
    log_dir : str or PathLike
    histogram_freq : int >= 0
    """

    def __init__(self, log_dir="logs", histogram_freq=1):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = check_nonnegative_int("TensorBoard", "histogram_freq",
                                                    histogram_freq)
        self._writers = {}

    def on_train_begin(self, logs=None):
        try:
            from tensorboardX import SummaryWriter   # deferred: optional, imports protobuf
        except ImportError as err:
            raise ImportError("TensorBoard: the callback writes through tensorboardX, which "
                              "is not installed. Hint: pip install 'fastcnn[tensorboard]'."
                              ) from err
        self._writers = {run: SummaryWriter(os.path.join(self.log_dir, run))
                         for run in ("train", "validation")}

    def on_epoch_end(self, epoch, logs=None):
        train, validation = self._writers["train"], self._writers["validation"]
        for key, value in (logs or {}).items():
            if key == "time":
                continue
            if key.startswith("val_"):
                validation.add_scalar(f"epoch_{key[4:]}", float(value), epoch)
            else:
                name = "learning_rate" if key == "lr" else key
                train.add_scalar(f"epoch_{name}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for param in self.model.parameters():
                train.add_histogram(param.name, param.data, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def __repr__(self) -> str:
        return f"TensorBoard({self.log_dir!r}, histogram_freq={self.histogram_freq})"
