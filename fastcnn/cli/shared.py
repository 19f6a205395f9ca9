"""What the ``train`` and ``search`` commands share: the data set choices, loading one
(a missing file becomes one line naming the fix), the validation split, and the
:class:`UsageError` that both turn into one line on stderr and exit status 2."""

from __future__ import annotations

import numpy as np

from fastcnn.data import datasets

DATASET_CHOICES = ("digits", "mnist", "fashion-mnist", "cifar10")
DEFAULT_MODEL = {"digits": "digits_cnn", "mnist": "mnist_net", "fashion-mnist": "mnist_net",
                 "cifar10": "cifar10_net"}


class UsageError(Exception):
    """A user error: reported as one line and exit status 2."""


def load_data(dataset: str, data_dir):
    """``((x_train, y_train), (x_test, y_test))`` of ``dataset``; UsageError when its
    files are missing."""
    try:
        if dataset == "digits":
            return datasets.load_digits()
        return datasets.load(dataset, data_dir=data_dir)
    except datasets.DatasetNotFoundError as exc:
        one_line = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise UsageError(f"{one_line} Hint: pass --data-dir DIR.") from None


def split_validation(x, y, fraction: float, seed: int):
    """``((x_fit, y_fit), (x_val, y_val))``: a random ``fraction`` held out (at least one
    example), or ``((x, y), None)`` when ``fraction`` is 0."""
    if fraction == 0:
        return (x, y), None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(round(fraction * len(x))))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])
