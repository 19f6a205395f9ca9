"""The whole-epoch benchmark (``python -m fastcnn bench --fit``) on tiny data: the nets
are the ones named, the PyTorch twin computes the same function, the worker and the
orchestrator produce complete rows. Correctness only: no timing is asserted."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastcnn.tools.bench import fit, fit_nets, fit_worker

ROOT = Path(__file__).resolve().parents[2]


def test_keras_course_mnist_net_has_keras_parameter_counts():
    model = fit_nets.keras_mnist_net()
    # Keras: Conv2D(32) 320, Conv2D(64) 18,496, Dense(10) on 7*7*64 = 31,370
    assert [layer.count_params()[0] for layer in model.layers] == [320, 0, 18496, 0, 0, 31370]
    assert model.output_shape == (10,)


def test_readme_digits_net_matches_the_readme():
    names = [type(layer).__name__ for layer in fit_nets.readme_digits_net().layers]
    assert names == ["Conv2D", "BatchNormalization", "MaxPooling2D", "Conv2D", "Flatten",
                     "Dropout", "Dense"]


def test_make_data_has_the_real_shapes_and_sizes():
    x, y = fit_nets.make_data("cifar10", 10)
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert fit_nets.FIT_NETS["mnist"].samples == 60_000
    with pytest.raises(ValueError, match="net must be one of"):
        fit_nets.make_data("imagenet")


@pytest.mark.parametrize("name", ["mnist", "digits", "cifar10_bn"])
def test_torch_twin_predicts_what_fastcnn_predicts(name):
    pytest.importorskip("torch")
    x, y = fit_nets.make_data(name, 16)
    model = fit_nets.build_model(name)
    _, predict = fit_nets.torch_training(name, x, y)     # the same seed: the same weights
    np.testing.assert_allclose(predict(x, 8), model.predict(x, batch_size=8),
                               rtol=1e-4, atol=1e-5)


def test_worker_reports_epochs_kernel_time_and_predict():
    result = fit_worker.time_fastcnn("numpy", "digits", 1, 64, 2)
    assert len(result["epochs"]) == 2 and result["predict_seconds"] > 0
    for epoch in result["epochs"]:
        assert 0 < epoch["kernel_seconds"] <= epoch["seconds"]


def test_fit_bench_rows_with_ratios_alternating_processes():
    pytest.importorskip("torch")
    opts = fit.FitOptions(nets=["digits"], threads=[1], backends=["numpy"], samples=64,
                          epochs=1, rounds=2)
    out = io.StringIO()
    seen = []
    rows = fit.run_fit_bench(opts, out=out, progress=seen.append)
    assert seen == ["fit digits numpy 1t", "fit digits torch 1t"] * 2   # A B A B
    assert [r["side"] for r in rows] == ["numpy", "torch"]
    ours = rows[0]
    assert "error" not in ours, ours
    assert ours["vs_torch"] > 0 and ours["predict_vs_torch"] > 0
    assert 0 <= ours["outside_kernels"] < 1
    assert len(ours["epoch_times_ms"]) == 2
    assert "| digits | 1 | numpy |" in out.getvalue()


def test_fit_options_reject_bad_values():
    with pytest.raises(ValueError, match="net must be one of"):
        fit.FitOptions(nets=["nope"])
    with pytest.raises(ValueError, match="epochs and rounds must be >= 1"):
        fit.FitOptions(epochs=0)


def test_cli_fit_quick_prints_the_table(tmp_path):
    out = tmp_path / "fit.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastcnn", "bench", "--fit", "--fit-nets", "digits",
         "--fit-samples", "64", "--fit-epochs", "1", "--fit-rounds", "1", "--threads", "1",
         "--backends", "numpy", "--no-torch", "--no-progress", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "## Whole training epochs" in proc.stdout
    assert json.loads(out.read_text())["fit"][0]["net"] == "digits"


def test_bench_steps_does_not_import_step_nets():
    """steps.py is the registry; step_nets registers into it (one direction only)."""
    source = (ROOT / "fastcnn/tools/bench/steps.py").read_text()
    imported = {alias.name for node in ast.walk(ast.parse(source))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    modules = {node.module for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.ImportFrom) and node.module}
    assert not any("step_nets" in name for name in imported | modules)
