"""The training-step benchmarks (fastcnn.bench.steps / step_nets) on tiny batches:
the registry, the nets' architectures, the GEMM list, the PyTorch twins' agreement
and the report's step section."""

from __future__ import annotations

import io

import numpy as np
import pytest

import fastcnn
from fastcnn.tools.bench import step_nets as S
from fastcnn.tools.bench import steps
from fastcnn.tools.bench.report import Options, run_report
from fastcnn.tools.bench.torch_ref import torch_available

needs_torch = pytest.mark.skipif(not torch_available(),
                                 reason="PyTorch is not installed (optional extra)")

NAMES = ["cifar10_b256", "cifar10_bn_b256", "mnist_b100"]


def test_registry_holds_the_three_course_nets_with_their_targets():
    registry, errors = steps.load_step_benchmarks()
    assert errors == []
    assert set(NAMES) <= set(registry)
    assert registry["cifar10_b256"].max_vs_torch == 0.7
    assert registry["cifar10_b256"].max_vs_gemms == 1.3
    assert registry["cifar10_bn_b256"].max_vs_torch == 0.7
    assert registry["mnist_b100"].max_vs_torch == 0.6
    assert [n for n in NAMES if registry[n].quick] == ["mnist_b100"]
    for name in NAMES:
        b = registry[name]
        assert b.build_torch is not None and b.build_gemms is not None and b.check is not None


@pytest.mark.parametrize("name, batch, shapes, params", [
    ("cifar10_b256", 256, [(64, 32, 32), (64, 16, 16), (128, 16, 16), (128, 8, 8), (8192,),
                           (10,)], 157_578),
    ("cifar10_bn_b256", 256, [(64, 32, 32), (64, 32, 32), (64, 32, 32), (64, 16, 16),
                              (128, 16, 16), (128, 16, 16), (128, 16, 16), (128, 8, 8),
                              (8192,), (10,)], 157_578 + 256 + 512),
    ("mnist_b100", 100, [(4, 28, 28), (8, 14, 14), (12, 7, 7), (588,), (200,), (10,)],
     122_270),
])
def test_nets_are_the_benchmarks_md_architectures(name, batch, shapes, params):
    model = S.build_model(name)
    assert [layer.output_shape for layer in model.layers] == shapes
    assert model.count_params() == params
    assert S.NETS[name].batch == batch


def test_step_gemms_lists_every_conv_and_dense_product():
    model = S.build_model("mnist_b100")
    gemms = S.step_gemms(model, 100)
    # 3 convs + 2 dense layers, 3 products each, minus the first layer's dX.
    assert len(gemms) == 5 * 3 - 1
    first = [g for g in gemms if g["layer"] == model.layers[0].name]
    assert [g["what"] for g in first] == ["fwd", "dW"]
    assert first[0]["m"] == 4 and first[0]["k"] == 25 and first[0]["n"] == 100 * 28 * 28
    dense = [g for g in gemms if g["layer"] == model.layers[4].name]
    assert [(g["m"], g["k"], g["n"]) for g in dense] == [(100, 588, 200), (588, 100, 200),
                                                         (100, 200, 588)]
    assert len(S.step_gemms(model, 100, input_grad=True)) == 15


def test_gemms_step_runs_and_preallocates():
    step = S.gemms_step("mnist_b100", batch=2)
    outputs = [c for _, _, c in step.gemms]
    step()
    assert [c for _, _, c in step.gemms] == outputs        # same arrays, written in place
    a, b, c = step.gemms[0]
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", fastcnn.available_backends())
def test_fastcnn_step_trains_on_every_backend(name, backend):
    with fastcnn.use_backend(backend):
        step = S.fastcnn_step(name, batch=4)
        before = step.model.layers[0].kernel.data.copy()
        first = step()
        step()
    assert np.isfinite(first)
    assert not np.array_equal(before, step.model.layers[0].kernel.data)


@needs_torch
@pytest.mark.parametrize("name", NAMES)
def test_torch_twin_gives_the_same_first_loss(name):
    result = S.check_first_loss(name, batch=4)
    assert result["ok"], result
    assert result["rel_error"] <= 1e-4


@needs_torch
def test_torch_twin_pads_asymmetric_same_convs():
    import torch
    model = S.build_model("mnist_b100")
    net = S.torch_twin(model)
    # conv 2 (5x5, stride 2, 28 -> 14) pads 3 in all: 1 before, 2 after (TensorFlow);
    # conv 3 (4x4, stride 2, 14 -> 7) pads 2: symmetric, nn.Conv2d's own padding.
    pads = [m for m in net if isinstance(m, torch.nn.ZeroPad2d)]
    assert [tuple(m.padding) for m in pads] == [(1, 2, 1, 2)]
    x, _ = S.make_batch("mnist_b100", batch=3)
    ours = model.forward_for_loss(x, training=False)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_report_step_section_on_the_quick_net_tiny_batch(monkeypatch):
    bench = steps.STEP_BENCHMARKS["mnist_b100"]
    from functools import partial
    tiny = steps.StepBenchmark(
        "mnist_tiny", "MNIST net, batch 2", build=partial(S.fastcnn_step, "mnist_b100", 2),
        build_torch=partial(S.torch_step, "mnist_b100", 2),
        build_gemms=partial(S.gemms_step, "mnist_b100", 2),
        check=partial(S.check_first_loss, "mnist_b100", 2),
        max_vs_torch=bench.max_vs_torch)
    monkeypatch.setattr(steps, "STEP_BENCHMARKS", {"mnist_tiny": tiny})
    out = io.StringIO()
    opts = Options(cases=[], backends=["numpy"], threads=[1], repeats=1, warmup=1,
                   torch=torch_available(), memory=False, gemm_size=64, bandwidth_mb=1,
                   progress=False)
    results = run_report(opts, out=out)
    assert results["errors"] == []
    rows = results["steps"]
    expected = {"numpy", "gemms"} | ({"torch"} if opts.torch else set())
    assert {r["backend"] for r in rows} == expected
    assert all(r["median_ms"] > 0 for r in rows)
    numpy_row = next(r for r in rows if r["backend"] == "numpy")
    assert numpy_row["vs_gemms"] > 0
    text = out.getvalue()
    assert "## Training steps" in text and "mnist_tiny" in text
    if opts.torch:
        assert numpy_row["vs_torch"] > 0
        assert numpy_row["check"]["ok"]


def test_report_rejects_unknown_step_names():
    with pytest.raises(ValueError, match="steps must be among"):
        run_report(Options(cases=[], steps=["no_such_step"], memory=False, progress=False),
                   out=io.StringIO())
