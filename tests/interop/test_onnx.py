"""export_onnx: the file runs in ONNX Runtime and gives model.predict's outputs."""

import numpy as np
import pytest

from fastcnn.interop import export_onnx
from fastcnn.nn.layers import AveragePooling2D, Conv2D, Dense, Flatten
from fastcnn.tools.testing import assert_close
from fastcnn.train.model import Sequential
from _interop_nets import every_layer_cnn, image_output_net, images, merge_net, randomize

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_every_layer_matches_predict_in_onnxruntime(tmp_path):
    model = every_layer_cnn()
    path = export_onnx(model, tmp_path / "net.onnx")
    x = images()
    expected = model.predict(x)
    got = run_onnx(path, x)
    assert got.dtype == np.float32 and got.shape == (5, 3)
    assert_close(got, expected, kind="torch-forward", what="onnxruntime vs predict")
    # the batch axis is symbolic: another batch size runs too
    assert_close(run_onnx(path, images(n=2, seed=4)), model.predict(images(n=2, seed=4)),
                 kind="torch-forward", what="onnxruntime, batch of 2")


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_functional_model_with_every_merge_layer(tmp_path, data_format):
    model = merge_net(data_format)
    x = images(n=6)
    if data_format == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    path = export_onnx(model, tmp_path / "merges.onnx")
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert {"Sum", "Mul", "Concat"} <= set(ops)
    assert ops.count("Transpose") == (data_format == "channels_last")   # input side only
    assert_close(run_onnx(path, x), model.predict(x), kind="torch-forward",
                 what="onnxruntime vs predict, functional model")


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_image_output_keeps_the_data_format(tmp_path, data_format):
    model = image_output_net(data_format)
    shape = (6, 5, 2) if data_format == "channels_last" else (2, 6, 5)
    x = images(n=3, shape=shape)
    proto = onnx.load(export_onnx(model, tmp_path / "img.onnx"))
    dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in (proto.graph.input[0], proto.graph.output[0])]
    out = (6, 5, 4) if data_format == "channels_last" else (4, 6, 5)
    assert dims == [["N", *shape], ["N", *out]]
    got = run_onnx(tmp_path / "img.onnx", x)
    assert_close(got, model.predict(x), kind="torch-forward", what="image output")


def test_graph_is_valid_and_names_its_io(tmp_path):
    proto = onnx.load(export_onnx(every_layer_cnn(), tmp_path / "net.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]
    ops = {node.op_type for node in proto.graph.node}
    assert {"Conv", "BatchNormalization", "MaxPool", "AveragePool", "Add", "Gemm",
            "PRelu", "LeakyRelu", "Elu", "Relu", "Tanh", "Sigmoid", "Softmax",
            "ReduceMax", "Flatten"} <= ops
    assert "Dropout" not in ops                           # the identity at inference
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    pads = next(a for a in conv.attribute if a.name == "pads").ints
    assert list(pads) == [1, 0, 1, 1]     # "same", 9x8, 3x3, stride 2: W gets 0 left, 1 right


def test_float64_model_exports_in_float32(tmp_path):
    model = randomize(Sequential([Conv2D(2, 3, padding="same"), AveragePooling2D(2),
                                  Flatten(), Dense(2)], input_shape=(1, 5, 5),
                                 dtype="float64"))
    x = images(n=3, shape=(1, 5, 5))
    got = run_onnx(export_onnx(model, tmp_path / "m.onnx"), x)
    assert got.dtype == np.float32
    assert_close(got, model.predict(x.astype(np.float64)).astype(np.float32),
                 kind="torch-forward", what="onnxruntime vs float64 predict")


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"export_onnx: path must end in '\.onnx'"):
        export_onnx(every_layer_cnn(), tmp_path / "m.npz")
    with pytest.raises(RuntimeError, match="export_onnx: the model is not built"):
        export_onnx(Sequential([Dense(2)]), tmp_path / "m.onnx")
