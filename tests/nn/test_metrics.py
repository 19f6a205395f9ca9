"""The accuracy metrics: the fraction of hits, exactly NumPy's mean of the hit mask."""

import numpy as np
import pytest

from fastcnn.nn import metrics


@pytest.mark.parametrize("n", [1, 3, 32, 129, 4097])
def test_sparse_and_categorical_accuracy_equal_numpy_mean(n):
    rng = np.random.default_rng(n)
    pred = rng.random((n, 10)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    expected = float(np.mean(pred.argmax(axis=1) == labels))
    onehot = np.eye(10, dtype=np.float32)[labels]
    for value in (metrics.sparse_categorical_accuracy(pred, labels),
                  metrics.categorical_accuracy(pred, onehot),
                  metrics.accuracy(pred, labels), metrics.accuracy(pred, onehot)):
        assert type(value) is float
        assert value == expected


def test_binary_accuracy_counts_thresholded_hits():
    pred = np.array([[0.9], [0.2], [0.6], [0.4]])
    y = np.array([1, 0, 0, 0])
    assert metrics.binary_accuracy(pred, y) == 0.75
    assert metrics.accuracy(pred, y) == 0.75


def test_known_fraction():
    pred = np.eye(4)
    assert metrics.sparse_categorical_accuracy(pred, [0, 1, 0, 0]) == 0.5


def test_empty_batch_is_nan_as_numpy_gives():
    pred = np.zeros((0, 3))
    with pytest.warns(RuntimeWarning):
        value = metrics.sparse_categorical_accuracy(pred, np.zeros(0, dtype=int))
    assert np.isnan(value)
