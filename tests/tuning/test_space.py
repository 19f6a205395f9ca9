"""Search spaces: sampling, grids, refinement, configs, errors."""

import math

import numpy as np
import pytest

from fastcnn.tuning import Choice, IntUniform, LogUniform, Uniform
from fastcnn.tuning.space import (grid_space, refine_space, sample_space, space_from_config,
                                  space_to_config)


def test_log_uniform_spreads_evenly_over_decades():
    rng = np.random.default_rng(0)
    draws = np.array([LogUniform(1e-6, 1.0).sample(rng) for _ in range(4000)])
    assert draws.min() >= 1e-6 and draws.max() <= 1.0
    decades = np.histogram(np.log10(draws), bins=6, range=(-6, 0))[0]
    # each decade holds ~1/6 of the draws (a uniform draw would put 90% in the last)
    assert decades.min() > 4000 / 6 * 0.8, decades


def test_uniform_int_and_choice_stay_in_range():
    rng = np.random.default_rng(1)
    assert all(0.1 <= Uniform(0.1, 0.5).sample(rng) <= 0.5 for _ in range(200))
    ints = {IntUniform(2, 4).sample(rng) for _ in range(200)}
    assert ints == {2, 3, 4}                             # both ends included
    assert all(isinstance(v, int) for v in ints)
    assert {Choice(["a", "b"]).sample(rng) for _ in range(50)} == {"a", "b"}


def test_sample_space_is_reproducible_and_keeps_fixed_values():
    space = {"lr": LogUniform(1e-4, 1e-1), "act": Choice(["relu", "tanh"]), "batch": 32}
    first = [sample_space(space, np.random.default_rng(7)) for _ in range(3)]
    again = [sample_space(space, np.random.default_rng(7)) for _ in range(3)]
    assert first == again
    assert all(p["batch"] == 32 and list(p) == ["lr", "act", "batch"] for p in first)


def test_grid_space_shares_the_budget_between_continuous_axes():
    space = {"lr": LogUniform(1e-4, 1e-2), "reg": Uniform(0.0, 1.0),
             "act": Choice(["relu", "tanh"])}
    points = grid_space(space, 18)                       # 2 choices x 3 x 3
    assert len(points) == 18
    assert sorted({p["lr"] for p in points}) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert sorted({p["reg"] for p in points}) == pytest.approx([0.0, 0.5, 1.0])
    assert len(grid_space({"lr": LogUniform(1e-4, 1e-2), "reg": Uniform(0, 1)}, 8)) == 4
    assert len(grid_space({"k": IntUniform(1, 3)}, 100)) == 3     # no duplicate ints


def test_refine_narrows_around_the_best_values_within_the_old_bounds():
    space = {"lr": LogUniform(1e-6, 1.0), "drop": Uniform(0.0, 0.5),
             "k": IntUniform(1, 10), "act": Choice(["relu", "tanh", "elu"]), "fixed": 3}
    best = [{"lr": 1e-3, "drop": 0.2, "k": 4, "act": "tanh", "fixed": 3},
            {"lr": 1e-2, "drop": 0.3, "k": 6, "act": "relu", "fixed": 3}]
    fine = refine_space(space, best, expand=0.5)
    # lr: log10 range [-3, -2] widened by half its width each side -> [-3.5, -1.5]
    assert math.log10(fine["lr"].low) == pytest.approx(-3.5)
    assert math.log10(fine["lr"].high) == pytest.approx(-1.5)
    assert fine["drop"].low == pytest.approx(0.15) and fine["drop"].high == pytest.approx(0.35)
    assert (fine["k"].low, fine["k"].high) == (3, 7)
    assert fine["act"].options == ["relu", "tanh"]       # original order kept
    assert fine["fixed"] == 3
    edge = refine_space(space, [{**best[0], "lr": 1.0}])  # clipped to the old bound
    assert edge["lr"].high == 1.0 and edge["lr"].low < 1.0


def test_space_config_round_trip():
    space = {"lr": LogUniform(1e-4, 1e-1), "d": Uniform(0, 0.5), "k": IntUniform(1, 3),
             "a": Choice(["x", 2]), "fixed": "value"}
    assert space_from_config(space_to_config(space)) == space


@pytest.mark.parametrize("make, match", [
    (lambda: LogUniform(0.0, 1.0), "low must be > 0"),
    (lambda: LogUniform(1e-2, 1e-3), "low must be < high"),
    (lambda: Uniform(1.0, float("nan")), "high must be a finite real number"),
    (lambda: IntUniform(1.5, 3), "low must be an int"),
    (lambda: IntUniform(3, 3), "low must be < high"),
    (lambda: Choice([]), "at least one value"),
])
def test_bad_distributions_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_choice_needs_a_list_not_a_string():
    with pytest.raises(TypeError, match="options must be a list of values"):
        Choice("relu")


def test_refine_without_trials_is_an_error():
    with pytest.raises(ValueError, match="at least one trial"):
        refine_space({"lr": LogUniform(1e-4, 1e-1)}, [])
