"""Ensembles of models and checkpoint averaging."""

import numpy as np
import pytest

import fastcnn
from _tuning_helpers import build_tiny, tiny_data
from fastcnn.nn import layers
from fastcnn.tuning import Ensemble, LogUniform, average_checkpoints, random_search


def _trained(seed, epochs=1):
    (x, y), _ = tiny_data()
    fastcnn.seed(seed)
    model = build_tiny({"lr": 3e-3})
    model.fit(x, y, epochs=epochs, verbose=0, seed=seed)
    return model


def test_mean_prob_is_the_mean_of_the_members_probabilities():
    models = [_trained(0), _trained(1), _trained(2)]
    _, (x_val, y_val) = tiny_data()
    expected = np.mean([m.predict(x_val) for m in models], axis=0)
    ensemble = Ensemble(models)
    probs = ensemble.predict(x_val)
    assert probs.dtype == np.float32 and probs.shape == (len(x_val), 10)
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    loss, acc = ensemble.evaluate(x_val, y_val)
    assert acc == pytest.approx(np.mean(expected.argmax(axis=1) == y_val))
    assert loss == pytest.approx(-np.mean(np.log(expected[np.arange(len(y_val)), y_val])),
                                 rel=1e-5)


def test_vote_counts_each_members_argmax():
    models = [_trained(0), _trained(1), _trained(2)]
    _, (x_val, _) = tiny_data()
    votes = Ensemble(models, method="vote").predict(x_val)
    assert np.allclose(votes.sum(axis=1), 1.0)
    first = models[0].predict(x_val).argmax(axis=1)
    assert np.all(votes[np.arange(len(x_val)), first] >= 1 / 3 - 1e-7)


def test_tta_is_passed_to_every_member():
    models = [_trained(0), _trained(1)]
    _, (x_val, _) = tiny_data()
    expected = np.mean([m.predict(x_val, tta=True) for m in models], axis=0)
    np.testing.assert_allclose(Ensemble(models).predict(x_val, tta=True), expected, rtol=1e-6)


def test_from_checkpoints_and_average_checkpoints(tmp_path):
    _, (x_val, _) = tiny_data()
    first, second = _trained(0, epochs=1), _trained(0, epochs=2)   # one run's two stages
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    first.save(paths[0])
    second.save(paths[1])
    ensemble = Ensemble.from_checkpoints(paths)
    assert len(ensemble) == 2
    np.testing.assert_allclose(ensemble.predict(x_val),
                               (first.predict(x_val) + second.predict(x_val)) / 2, rtol=1e-6)
    averaged = average_checkpoints(paths)
    for p, a, b in zip(averaged.parameters(), first.parameters(), second.parameters()):
        np.testing.assert_allclose(p.data, (a.data.astype(np.float64) + b.data) / 2, rtol=1e-6)
    assert averaged.optimizer is not None          # compiled, ready to evaluate


def test_average_checkpoints_refuses_different_architectures(tmp_path):
    other = fastcnn.Sequential([layers.Flatten(), layers.Dense(10, activation="softmax")],
                               input_shape=(1, 8, 8))
    other.compile()
    _trained(0).save(tmp_path / "a.npz")
    other.save(tmp_path / "b.npz")
    with pytest.raises(ValueError, match="another architecture"):
        average_checkpoints([tmp_path / "a.npz", tmp_path / "b.npz"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        average_checkpoints(tmp_path / "a.npz")


def test_bad_ensembles_are_refused():
    with pytest.raises(ValueError, match="non-empty list"):
        Ensemble([])
    with pytest.raises(ValueError, match="method must be one of"):
        Ensemble([_trained(0)], method="median")
    with pytest.raises(TypeError, match=r"models\[1\] must be a model"):
        Ensemble([_trained(0), "model"])


def test_search_results_ensemble_of_the_top_k():
    (x, y), val = tiny_data()
    results = random_search(build_tiny, {"lr": LogUniform(1e-3, 1e-2)}, x, y,
                            validation_data=val, trials=3, epochs=1, seed=0)
    ensemble = results.ensemble(2)
    expected = np.mean([results.model(r).predict(val[0]) for r in results.top(2)], axis=0)
    np.testing.assert_allclose(ensemble.predict(val[0]), expected, rtol=1e-6)
