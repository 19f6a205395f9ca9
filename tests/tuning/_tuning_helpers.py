"""Builders and data for the tuning tests.

They live in a module of their own (not in a test file) because the local pool's and
Dask's worker processes import them by name to unpickle a search's ``build``.
"""

from __future__ import annotations

import os
import time

import numpy as np

import fastcnn
from fastcnn.nn import layers
from fastcnn.tuning.trial import model_from_bytes


def tiny_data(n_train=240, n_val=120):
    """A slice of the digits: ``(x, y), (x_val, y_val)``, float32 NCHW."""
    (x, y), _ = fastcnn.datasets.load_digits()
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_val], y[n_train:n_train + n_val])


def build_tiny(params):
    """Conv(4) + ReLU, max-pool, Dense(10) softmax, with dropout so that the trial's
    seed matters; Adam at ``params["lr"]``, optional L2 ``params["reg"]``."""
    reg = params.get("reg")
    kernel_regularizer = None if reg is None else {"class_name": "L2",
                                                   "config": {"l2": float(reg)}}
    model = fastcnn.Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu",
                      kernel_regularizer=kernel_regularizer),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.2),
        layers.Dense(10, activation="softmax")], input_shape=(1, 8, 8))
    model.compile(optimizer=fastcnn.Adam(float(params["lr"])))
    return model


def build_or_misbehave(params):
    """``build_tiny`` unless ``params["action"]`` says otherwise:

    * ``"die"``: kill this process (as a crash or the OOM killer would);
    * ``"die_once"``: the same, but only the first time (a marker file at
      ``params["marker"]`` remembers it), so a retry succeeds;
    * ``"hang"``: sleep far longer than any test timeout;
    * ``"raise"``: raise a ValueError (an ordinary failing trial).
    """
    action = params.get("action", "ok")
    if action == "die":
        os._exit(3)
    if action == "die_once" and not os.path.exists(params["marker"]):
        with open(params["marker"], "w") as f:
            f.write("died once\n")
        os._exit(3)
    if action == "hang":
        time.sleep(600)
    if action == "raise":
        raise ValueError("this trial's parameters are bad on purpose")
    return build_tiny(params)


def numbers(results):
    """What must not depend on the executor: per trial, its metrics and history."""
    return sorted((r["stage"], r["index"], r["status"], r["val_accuracy"], r["val_loss"],
                   r["epochs"], repr(r["history"]), r["seed"]) for r in results)


def first_weights(record):
    """The first parameter array of a record's shipped model."""
    return np.array(model_from_bytes(record["model"]).parameters()[0].data)
