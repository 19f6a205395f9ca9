"""Losses: values by hand, gradients by central differences, Keras names."""

import numpy as np
import pytest

from fastcnn.nn import losses
from fastcnn.tools.gradcheck import GradientCheckError, check_loss, check_regularizer

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((5, 4))
LABELS = np.array([0, 3, 1, 1, 2])
ONEHOT = np.eye(4)[LABELS]
PROBS = losses.softmax(LOGITS)


CASES = [
    ("scce-probs", losses.SparseCategoricalCrossentropy(), PROBS, LABELS),
    ("scce-logits", losses.SparseCategoricalCrossentropy(from_logits=True), LOGITS, LABELS),
    ("cce-probs", losses.CategoricalCrossentropy(), PROBS, ONEHOT),
    ("cce-logits", losses.CategoricalCrossentropy(from_logits=True), LOGITS, ONEHOT),
    ("cce-soft-targets", losses.CategoricalCrossentropy(from_logits=True), LOGITS,
     losses.softmax(RNG.standard_normal((5, 4)))),
    ("bce-probs", losses.BinaryCrossentropy(), 1 / (1 + np.exp(-LOGITS[:, :1])),
     (LABELS[:, None] > 1).astype(float)),
    ("bce-logits", losses.BinaryCrossentropy(from_logits=True), LOGITS,
     (RNG.random((5, 4)) > 0.5).astype(float)),
    ("mse", losses.MeanSquaredError(), LOGITS, RNG.standard_normal((5, 4))),
    ("multiclass-hinge", losses.MulticlassHinge(), LOGITS, LABELS),
    ("multiclass-hinge-onehot", losses.MulticlassHinge(), LOGITS, ONEHOT),
    ("categorical-hinge", losses.CategoricalHinge(), LOGITS, ONEHOT),
]


@pytest.mark.parametrize("loss, pred, y", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_loss_gradients(loss, pred, y):
    errors = check_loss(loss, pred, y)
    assert errors["pred"] < 1e-6


def test_cross_entropy_values_by_hand():
    expected = -np.mean(np.log(PROBS[np.arange(5), LABELS]))
    assert losses.SparseCategoricalCrossentropy().forward(PROBS, LABELS) == pytest.approx(expected)
    assert losses.SparseCategoricalCrossentropy(True).forward(LOGITS, LABELS) == pytest.approx(
        expected)
    assert losses.CategoricalCrossentropy().forward(PROBS, ONEHOT) == pytest.approx(expected)


def test_fused_gradient_is_p_minus_y():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    loss.forward(LOGITS, LABELS)
    np.testing.assert_allclose(loss.backward(), (PROBS - ONEHOT) / 5, rtol=1e-12)


def test_logits_form_is_stable():
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    value = losses.SparseCategoricalCrossentropy(from_logits=True).forward(z, np.array([1, 1]))
    assert value == pytest.approx(1000.0)       # -log softmax = 2000 / 2, no inf/nan


def test_multiclass_hinge_cs231n_example():
    # CS231n's example: scores [3.2, 5.1, -1.7] for a cat (class 0):
    # max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9
    scores = np.array([[3.2, 5.1, -1.7]])
    assert losses.MulticlassHinge().forward(scores, np.array([0])) == pytest.approx(2.9)


def test_mse_and_bce_values():
    assert losses.MeanSquaredError().forward(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]])) == 2.5
    p = np.array([[0.8], [0.3]])
    y = np.array([1.0, 0.0])
    expected = -(np.log(0.8) + np.log(0.7)) / 2
    assert losses.BinaryCrossentropy().forward(p, y) == pytest.approx(expected)


@pytest.mark.parametrize("name, cls", [
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("binary_crossentropy", losses.BinaryCrossentropy), ("mse", losses.MeanSquaredError),
    ("mean_squared_error", losses.MeanSquaredError), ("categorical_hinge", losses.CategoricalHinge),
    ("multiclass_hinge", losses.MulticlassHinge), ("MeanSquaredError", losses.MeanSquaredError)])
def test_get_by_keras_name(name, cls):
    assert type(losses.get(name)) is cls


def test_get_roundtrip_and_unknown():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(losses.serialize(loss)).from_logits is True
    with pytest.raises(ValueError, match="losses.get: unknown loss 'crossentropy'"):
        losses.get("crossentropy")


def test_label_errors():
    loss = losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) for 4 classes; got min 0, "
                                         r"max 4"):
        loss.forward(PROBS, np.array([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"y must be integer class labels of shape \(5,\)"):
        loss.forward(PROBS, ONEHOT)
    with pytest.raises(RuntimeError, match="no forward pass to differentiate"):
        losses.MeanSquaredError().backward()


@pytest.mark.parametrize("identifier", ["l1", "l2", {"class_name": "L1L2",
                                                     "config": {"l1": 0.01, "l2": 0.02}}])
def test_regularizer_gradients(identifier):
    from fastcnn.nn import regularizers
    w = np.random.default_rng(3).standard_normal((4, 3))
    w[np.abs(w) < 0.05] = 0.5                 # away from L1's kink at 0
    assert check_regularizer(regularizers.get(identifier), w)["w"] < 1e-6


def test_check_loss_catches_a_wrong_gradient():
    class Broken(losses.MeanSquaredError):
        def forward(self, pred, y):
            value = super().forward(pred, y)
            self._grad = self._grad * 1.01
            return value
    with pytest.raises(GradientCheckError, match="FAIL pred"):
        check_loss(Broken(), LOGITS, LOGITS * 0)
