"""Plots are written as real, non-trivial PNG files and reject bad input clearly."""

import numpy as np
import pytest

from fastcnn.tools import plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_kb=5):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_kb * 1024, f"{path} is only {len(data)} bytes"


HISTORY = {
    "loss": [2.3, 1.2, 0.8, 0.6, 0.5],
    "val_loss": [2.2, 1.3, 1.0, 0.95, 1.0],
    "accuracy": [0.1, 0.6, 0.75, 0.82, 0.86],
    "val_accuracy": [0.12, 0.55, 0.7, 0.72, 0.71],
    "lr": [1e-2, 1e-2, 1e-3, 1e-3, 1e-4],
}


def test_plot_history(tmp_path):
    out = plot.plot_history(HISTORY, tmp_path / "sub" / "history.png")
    assert out == str(tmp_path / "sub" / "history.png")
    assert_png(out)


def test_plot_history_loss_only_and_errors(tmp_path):
    assert_png(plot.plot_history({"loss": [1.0, 0.5]}, tmp_path / "h.png"))
    with pytest.raises(ValueError, match=r"history must contain 'loss'; got keys \['acc'\]"):
        plot.plot_history({"acc": [0.1]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="must be a non-empty 1-D sequence"):
        plot.plot_history({"loss": []}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_learning_rate(tmp_path):
    assert_png(plot.plot_learning_rate(HISTORY, tmp_path / "lr.png"))
    assert_png(plot.plot_learning_rate({"learning_rate": [0.1] * 3}, tmp_path / "lr2.png"))
    with pytest.raises(ValueError, match="'lr' or 'learning_rate'"):
        plot.plot_learning_rate({"loss": [1]}, tmp_path / "x.png")


def test_plot_activation_histograms(tmp_path):
    rng = np.random.default_rng(0)
    stats = {f"relu_{i}": np.maximum(rng.normal(0, 1 / (i + 1), (64, 8, 4, 4)), 0)
             for i in range(5)}
    stats["tanh"] = np.tanh(rng.normal(0, 3, 1000))
    assert_png(plot.plot_activation_histograms(stats, tmp_path / "act.png"))
    with pytest.raises(ValueError, match="stats must be a non-empty dict"):
        plot.plot_activation_histograms({}, tmp_path / "x.png")


@pytest.mark.parametrize("shape", [(16, 3, 5, 5), (6, 1, 3, 3), (4, 2, 7, 7)],
                         ids=["rgb", "grey", "two-channels"])
def test_plot_filters(tmp_path, shape):
    w = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    w[0] = 0.5  # a constant filter must not divide by zero
    assert_png(plot.plot_filters(w, tmp_path / "f.png"), min_kb=3)


def test_filter_mosaic_normalises_per_filter():
    w = np.zeros((2, 3, 2, 2))
    w[0] = np.arange(12).reshape(3, 2, 2)          # range 0..11
    w[1] = 1000 * np.arange(12).reshape(3, 2, 2)   # same pattern, 1000x larger
    grid, rows, cols = plot._filter_mosaic(w)
    assert (rows, cols) == (1, 2) and grid.shape == (4, 7, 3)
    tile0, tile1 = grid[1:3, 1:3], grid[1:3, 4:6]
    np.testing.assert_allclose(tile0, tile1)  # equal after per-filter normalisation
    assert np.nanmin(grid) == 0.0 and np.nanmax(grid) == 1.0


@pytest.mark.parametrize("bad, exc, match", [
    (np.zeros((3, 3, 3)), ValueError, r"shape \(F, C, KH, KW\)"),
    (np.zeros((2, 1, 3, 3), dtype=np.int64), TypeError, "dtype int64"),
    (np.full((2, 1, 3, 3), np.nan), ValueError, "NaN or Inf"),
])
def test_plot_filters_errors(tmp_path, bad, exc, match):
    with pytest.raises(exc, match=match):
        plot.plot_filters(bad, tmp_path / "x.png")


def test_plot_update_ratios(tmp_path):
    rng = np.random.default_rng(2)
    ratios = {"conv1/kernel": 10 ** rng.uniform(-4, -2, 50),
              "dense/kernel": list(10 ** rng.uniform(-3.5, -2.5, 50)),
              "dense/bias": [0.0] + [1e-3] * 49}
    assert_png(plot.plot_update_ratios(ratios, tmp_path / "ratios.png"))


def test_no_pyplot_figures_left_open(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot.plot_history(HISTORY, tmp_path / "h.png")
    plot.plot_filters(np.ones((2, 3, 3, 3)), tmp_path / "f.png")
    assert plt.get_fignums() == before


def test_filter_mosaic_is_a_near_square_grid():
    grey, rows, cols = plot._filter_mosaic(np.random.default_rng(0).normal(size=(32, 1, 3, 3)))
    assert (rows, cols) == (6, 6) and grey.shape == (6 * 4 + 1, 6 * 4 + 1)
    assert np.isnan(grey[-4:-1, -4 * 4:]).all()           # 32 of 36 cells used: last 4 empty
    two, rows, cols = plot._filter_mosaic(np.ones((4, 2, 3, 3)))
    assert (rows, cols) == (2, 2) and two.shape == (2 * 4 + 1, 2 * (2 * 4 + 1) + 1)


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures the plot functions save, with their axes' labels and scales."""
    seen = []
    original = plot._save

    def spy(fig, path):
        seen.append([(ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale(), ax.get_title())
                     for ax in fig.axes])
        return original(fig, path)

    monkeypatch.setattr(plot, "_save", spy)
    return seen


def test_update_ratio_axes_say_what_they_hold(tmp_path, saved_figures):
    ratios = {"conv/kernel": [1e-3, 2e-3, 5e-4]}
    plot.plot_update_ratios(ratios, tmp_path / "epoch.png")
    plot.plot_update_ratios(ratios, tmp_path / "step.png", per="step")
    (epoch_axes,), (step_axes,) = saved_figures
    assert epoch_axes[:3] == ("epoch", "median ||update|| / ||weight|| in the epoch", "log")
    assert step_axes[:2] == ("optimizer step", "||update|| / ||weight||")
    with pytest.raises(ValueError, match="per must be 'epoch' or 'step'; got 'batch'"):
        plot.plot_update_ratios(ratios, tmp_path / "x.png", per="batch")


def test_plot_history_log_loss(tmp_path, saved_figures):
    assert_png(plot.plot_history(HISTORY, tmp_path / "log.png", log_loss=True))
    plot.plot_history(HISTORY, tmp_path / "lin.png")
    (loss, acc), (loss_lin, _) = saved_figures
    assert loss[2] == "log" and loss[3] == "Loss (log scale)" and acc[2] == "linear"
    assert loss_lin[2] == "linear"
    with pytest.raises(ValueError, match="log_loss=True needs positive 'loss' values"):
        plot.plot_history({"loss": [1.0, 0.0]}, tmp_path / "x.png", log_loss=True)
