"""Smoke tests of the speed instrument (``python -m fastcnn bench``) on tiny shapes.

Correctness only: every section runs, every backend's outputs match the reference,
work counts follow docs/benchmarks.md's rules, targets are judged the right way round.
No timing is asserted (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import io
import json

import pytest

import fastcnn
from fastcnn.tools import bench
from fastcnn.tools.bench import cases as C
from fastcnn.tools.bench import steps
from fastcnn.tools.bench.memory import measure_here
from fastcnn.tools.bench.report import Options, run_report
from fastcnn.tools.bench.targets import Target, judge
from fastcnn.tools.bench.torch_ref import torch_available

TINY = [
    C.ConvCase("tiny_conv", 2, 3, 8, 8, 4, 3, 3, 1, 1),
    C.ConvCase("tiny_conv_same_s2", 2, 2, 7, 7, 3, 4, 4, 2, ((1, 1), (1, 2))),
    C.PoolCase("tiny_pool", 2, 3, 8, 8, 3, 2, 1),
    C.BatchNormCase("tiny_bn_dense", (8, 5)),
    C.BatchNormCase("tiny_bn_spatial", (2, 3, 4, 4)),
]


@pytest.fixture
def tiny_cases(monkeypatch):
    monkeypatch.setattr(C, "CASES", {**C.CASES, **{c.name: c for c in TINY}})
    return [c.name for c in TINY]


def test_bench_report_quick_path_on_tiny_shapes(tiny_cases, tmp_path, monkeypatch):
    monkeypatch.setattr(steps, "STEP_BENCHMARKS", {})
    steps.register_step(steps.StepBenchmark("tiny_step", "a trivial step",
                                            build=lambda: (lambda: None)))
    out = io.StringIO()
    path = tmp_path / "bench.json"
    opts = Options(cases=tiny_cases, threads=[1], repeats=1, warmup=1,
                   torch=torch_available(), breakdown=True, plot=str(tmp_path / "bd.png"),
                   memory=False, gemm_size=64, bandwidth_mb=1, progress=False,
                   json_path=str(path))
    results = run_report(opts, out=out)
    text = out.getvalue()
    assert results["errors"] == []             # a backend that raises is listed here
    for heading in ("## Machine limits", "### conv2d", "### maxpool2d", "### batchnorm",
                    "## Where conv2d", "## Training steps"):
        assert heading in text
    rows = results["kernels"]
    backends = set(fastcnn.available_backends()) | {"gemms"}
    if opts.torch:
        backends.add("torch")
    assert {r["backend"] for r in rows} == backends
    for r in rows:
        assert r["median_ms"] > 0 and r["bytes"] > 0
        assert r["check"] in ("ok", "ref", "-"), r       # every backend equals the reference
        if r["backend"] != "numpy":
            assert r["vs_numpy"] > 0
    conv = [r for r in rows if r["kernel"] == "conv2d" and r["backend"] != "gemms"]
    assert all(r["vs_gemms"] > 0 and r["gflops"] > 0 for r in conv)
    for b in results["breakdown"]:
        assert sum(b["phases_ms"].values()) == pytest.approx(b["total_ms"])
    assert (tmp_path / "bd.png").stat().st_size > 0
    assert [s["step"] for s in results["steps"]] == ["tiny_step"] * len(opts.backends)
    saved = json.loads(path.read_text())
    assert saved["machine"]["bandwidth"]["gbs"] > 0
    assert len(saved["kernels"]) == len(rows)


def test_work_counts_follow_the_benchmarks_rules():
    case = C.get_case("conv3x3_64_32")
    fwd = 2 * 64 * 64 * 64 * 3 * 3 * 32 * 32
    assert C.work(case, "fwd")["flops"] == fwd
    assert C.work(case, "bwd")["flops"] == 2 * fwd
    assert C.work(case, "fwd+bwd")["flops"] == 3 * fwd
    pool = C.get_case("pool2_64x32")
    x_bytes, out_bytes = 64 * 64 * 32 * 32 * 4, 64 * 64 * 16 * 16 * 4
    assert C.work(pool, "fwd")["bytes"] == x_bytes + out_bytes
    assert C.work(pool, "fwd+bwd")["bytes"] == 2 * (x_bytes + out_bytes)
    bn = C.get_case("bn_spatial_64x32")
    assert C.work(bn, "fwd")["bytes"] == 2 * x_bytes
    assert C.work(bn, "fwd+bwd")["bytes"] == 5 * x_bytes


def test_mnist_presets_use_keras_same_padding():
    assert C.get_case("mnist_conv2").geometry.oh == 14
    assert C.get_case("mnist_conv3").geometry.oh == 7


@pytest.mark.parametrize("value, at_least, limit, met", [
    (1.1, False, 1.15, True), (1.2, False, 1.15, False),
    (11.0, True, 10.0, True), (9.0, True, 10.0, False), (None, False, 1.0, None)])
def test_target_met_is_judged_the_right_way_round(value, at_least, limit, met):
    assert Target("c", "cython", "gbs", limit, at_least).met(value) is met


def test_judge_applies_only_at_two_threads_fwd_bwd():
    row = {"case": "conv3x3_64_32", "backend": "cython", "threads": 2,
           "direction": "fwd+bwd", "vs_gemms": 1.1, "vs_torch": 1.5}
    verdicts = {v["target"]: v["met"] for v in judge(row)}
    assert verdicts == {"x GEMMs <= 1.15": True, "x torch <= 1.3": False}
    assert judge({**row, "threads": 1}) == []


def test_memory_measure_counts_outputs_and_workspace():
    m = measure_here("mnist_conv1", 2, "numpy")
    # out (2,4,28,28) + dx (2,1,28,28) + dw (4,1,5,5) + db (4,), float32
    expected = (2 * 4 * 784 + 2 * 784 + 100 + 4) * 4 / 2 ** 20
    assert m["outputs_grads_mb"] == pytest.approx(expected)
    assert m["traced_peak_mb"] >= m["outputs_grads_mb"]
    assert m["workspace_traced_mb"] > 0      # the reference builds a column matrix


def _parse(argv):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_lists_cases_and_rejects_bad_arguments(capsys):
    assert bench.run(_parse(["--list-cases"])) == 0
    assert "conv3x3_64_32" in capsys.readouterr().out
    assert bench.run(_parse(["--threads", "0"])) == 2
    assert "--threads" in capsys.readouterr().err
    assert bench.run(_parse(["--cases", "no_such_case", "--no-progress"])) == 2
    assert "no_such_case" in capsys.readouterr().err


def test_register_step_rejects_duplicate_names(monkeypatch):
    monkeypatch.setattr(steps, "STEP_BENCHMARKS", {})
    bench_step = steps.StepBenchmark("s", "d", build=lambda: (lambda: None))
    steps.register_step(bench_step)
    with pytest.raises(ValueError, match="unique"):
        steps.register_step(bench_step)
