"""random_search / grid_search in this process: reproducible, ranked, validated."""

import pytest

import fastcnn
from _tuning_helpers import build_or_misbehave, build_tiny, numbers, tiny_data
from fastcnn.tuning import Choice, LogUniform, grid_search, random_search

SPACE = {"lr": LogUniform(1e-4, 50.0), "reg": LogUniform(1e-6, 1e-2)}


def _search(**kwargs):
    (x, y), val = tiny_data()
    options = dict(validation_data=val, trials=5, epochs=2, seed=0)
    options.update(kwargs)
    return random_search(build_tiny, SPACE, x, y, **options)


def test_random_search_is_reproducible_from_its_seed():
    first, again = _search(), _search()
    assert numbers(first) == numbers(again)
    assert [r["params"] for r in first] == [r["params"] for r in again]
    assert numbers(_search(seed=1)) != numbers(first)


def test_unseeded_search_follows_the_package_seed():
    fastcnn.seed(5)
    first = _search(seed=None, trials=2, epochs=1)
    fastcnn.seed(5)
    assert numbers(_search(seed=None, trials=2, epochs=1)) == numbers(first)


def test_results_are_ranked_ok_first_by_validation_accuracy():
    results = _search(trials=6)
    statuses = [r["status"] for r in results]
    assert statuses == sorted(statuses, key=["ok", "diverged", "failed"].index)
    accuracies = [r["val_accuracy"] for r in results if r["status"] == "ok"]
    assert accuracies == sorted(accuracies, reverse=True)
    assert results.best is results[0]
    assert "diverged" in statuses              # lr up to 50 explodes within a few batches
    assert len(results.top(2)) == 2 and results.top(2)[0] is results.best


def test_grid_search_tries_every_grid_point():
    (x, y), val = tiny_data()
    space = {"lr": LogUniform(1e-3, 1e-2), "reg": Choice([1e-5, 1e-3])}
    results = grid_search(build_tiny, space, x, y, validation_data=val, trials=4, epochs=1,
                          seed=0)
    assert sorted((round(r["params"]["lr"], 6), r["params"]["reg"]) for r in results) == \
        [(1e-3, 1e-5), (1e-3, 1e-3), (1e-2, 1e-5), (1e-2, 1e-3)]
    assert {r["stage"] for r in results} == {"grid"}


def test_verbose_prints_trials_done_running_diverged(capsys):
    _search(trials=3, epochs=1, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("[3/3 done, 0 running,") and "diverged]" in lines[-1]
    assert "val_acc:" in lines[0] and "lr:" in lines[0]


def test_a_failing_trial_does_not_end_the_search_but_all_failing_does():
    (x, y), val = tiny_data()
    space = {"lr": 1e-3, "action": Choice(["ok", "raise"])}
    results = grid_search(build_or_misbehave, space, x, y, validation_data=val, trials=2,
                          epochs=1, seed=0)
    assert [r["status"] for r in results] == ["ok", "failed"]
    with pytest.raises(RuntimeError, match="every trial failed.*bad on purpose"):
        random_search(build_or_misbehave, {"lr": 1e-3, "action": "raise"}, x, y,
                      validation_data=val, trials=2, epochs=1, seed=0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"validation_data": None}, ValueError, "validation_data must be"),
    ({"trials": 0}, ValueError, "trials must be a positive int"),
    ({"epochs": 0}, ValueError, "epochs must be a positive int"),
    ({"abort_factor": 0.5}, ValueError, "factor must be a finite number > 1"),
    ({"executor": "nowhere"}, TypeError, "executor must be"),
    ({"verbose": 3}, ValueError, "verbose must be 0 or 1"),
])
def test_bad_arguments_are_refused_before_any_training(kwargs, error, match):
    with pytest.raises(error, match=match):
        _search(**kwargs)


def test_space_and_build_are_checked():
    (x, y), val = tiny_data()
    with pytest.raises(TypeError, match="space must be a non-empty dict"):
        random_search(build_tiny, {}, x, y, validation_data=val)
    with pytest.raises(TypeError, match="build must be a callable"):
        random_search("build", SPACE, x, y, validation_data=val)
    with pytest.raises(ValueError, match="same, non-zero number of samples"):
        random_search(build_tiny, SPACE, x, y[:-1], validation_data=val)
