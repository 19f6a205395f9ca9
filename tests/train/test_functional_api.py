"""The functional API: Input, layer calls on symbolic tensors, Model over a DAG, merges,
gradient-checked graphs, summary with "Connected to", save/load, config round trip."""

import json

import numpy as np
import pytest

import fastcnn
from fastcnn import Input, Model, Sequential
from fastcnn.layers import (
    Add,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Flatten,
    Multiply,
    ReLU,
    Reshape,
    Residual,
    add,
    concatenate,
    multiply,
)
from fastcnn.tools.gradcheck import check_model

from _model_helpers import make_blobs


def basic_block(dtype="float32", channels=2, size=6):
    """ResNet basic block with a strided 1x1 projection shortcut, then a classifier."""
    inputs = Input(shape=(channels, size, size), dtype=dtype)
    h = Conv2D(4, 3, strides=2, padding="same")(inputs)
    h = ReLU()(BatchNormalization()(h))
    h = BatchNormalization()(Conv2D(4, 3, padding="same")(h))
    shortcut = Conv2D(4, 1, strides=2)(inputs)
    h = ReLU()(add([h, shortcut]))
    outputs = Dense(3, activation="softmax")(Flatten()(h))
    return Model(inputs, outputs, name="block")


def test_symbolic_shapes_and_model_structure():
    model = basic_block()
    assert [type(layer).__name__ for layer in model.layers][:2] == ["InputLayer", "Conv2D"]
    assert model.layers[0].output.shape == (None, 2, 6, 6)
    assert model.output_shape == (3,)
    # Keras counts the same block: 76 + 16 + 148 + 16 + 12 + 3 * 37 (BN: 4 arrays of 4)
    assert model.count_params() == 76 + 16 + 148 + 16 + 12 + 111
    assert isinstance(Sequential([Dense(2)], input_shape=(3,)), Model)


def test_resnet_basic_block_gradient_check():
    model = basic_block("float64")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((4, 2, 6, 6))
    errors = check_model(model, x, np.array([0, 1, 2, 1]), tol=1e-6)
    assert "input" in errors and max(errors.values()) < 1e-6
    assert any("conv2d" in name and "kernel" in name for name in errors)


def test_tensor_reused_twice_sums_its_gradients():
    """``h`` feeds Multiply twice (h * h) and Add once: dL/dh = 2 h g + g."""
    inputs = Input(shape=(5,), dtype="float64")
    h = Dense(4)(inputs)
    both = add([multiply([h, h]), h])
    joined = concatenate([both, h])
    model = Model(inputs, Dense(3)(joined))
    model.compile(optimizer="sgd", loss="mse", metrics=[])
    x = np.random.default_rng(2).standard_normal((6, 5))
    y = np.random.default_rng(3).standard_normal((6, 3))
    errors = check_model(model, x, y, tol=1e-6)
    assert max(errors.values()) < 1e-6


def test_graph_equals_residual_sugar_and_sequential():
    """The same residual block as Residual (sugar) and as a graph gives the same
    outputs and input gradient when the weights are copied."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 5, 5)).astype(np.float32)
    sugar = Sequential([Residual([Conv2D(2, 3, padding="same"), ReLU()])], input_shape=(2, 5, 5))
    inputs = Input(shape=(2, 5, 5))
    graph = Model(inputs, add([ReLU()(Conv2D(2, 3, padding="same")(inputs)), inputs]))
    graph.set_weights(sugar.get_weights())
    np.testing.assert_allclose(graph.predict(x), sugar.predict(x), rtol=1e-6)
    g = rng.standard_normal((3, 2, 5, 5)).astype(np.float32)
    graph.forward(x, training=True)
    sugar.forward(x, training=True)
    np.testing.assert_allclose(graph.backward(g), sugar.backward(g), rtol=1e-5, atol=1e-6)


def test_first_layers_skip_input_gradient_in_a_training_step():
    model = basic_block()
    model.compile()
    x, y = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32), [0, 1, 2, 0]
    model.forward_for_loss(x, training=True)
    assert model.backward_from_loss(np.ones((4, 3), np.float32) / 4, need_dx=False) is None
    assert model.backward_from_loss(np.ones((4, 3), np.float32) / 4).shape == x.shape
    assert np.isfinite(model.train_on_batch(x, np.array(y))).all()


def test_functional_model_trains_saves_and_loads(tmp_path):
    x, y = make_blobs(64, size=6)
    x = np.repeat(x, 2, axis=1)
    model = basic_block()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "block.npz"
    model.save(path)
    loaded = fastcnn.load_model(path)
    assert type(loaded) is Model and loaded.name == "block"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    # training continues identically (optimizer state restored)
    h1 = model.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=5).history["loss"]
    h2 = loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=5).history["loss"]
    assert h1 == h2
    seq = Sequential([Conv2D(2, 3), Flatten(), Dense(3, activation="softmax")],
                     input_shape=(1, 6, 6))
    seq.save(tmp_path / "seq.npz")
    assert type(fastcnn.load_model(tmp_path / "seq.npz")) is Sequential


def test_config_round_trip_is_json_and_identical():
    model = basic_block()
    text = json.dumps(model.get_config())
    clone = Model.from_config(json.loads(text))
    assert json.dumps(clone.get_config()) == text
    assert clone.count_params() == model.count_params()


def test_summary_has_connected_to_column():
    lines = []
    basic_block().summary(print_fn=lines.append)
    text = lines[0]
    assert "Connected to" in text.splitlines()[2]
    add_row = next(line for line in text.splitlines() if "(Add)" in line)
    assert "batch_normalization_2[0][0], conv2d_3[0][0]" in add_row
    assert "(None, 4, 3, 3)" in add_row
    assert "Total params: 379" in text and "Non-trainable params: 16" in text   # BN stats


def test_concatenate_and_multiply_shapes_and_values():
    a, b = np.ones((2, 3, 4, 4), np.float32), np.full((2, 1, 4, 4), 2, np.float32)
    layer = Concatenate(axis=1)
    out = layer([a, b])
    assert out.shape == (2, 4, 4, 4) and out[0, 3, 0, 0] == 2
    da, db = layer.backward(np.arange(out.size, dtype=np.float32).reshape(out.shape))
    np.testing.assert_array_equal(np.concatenate([da, db], axis=1).ravel(), np.arange(out.size))
    assert Multiply()([a, a + 1]).max() == 2.0
    assert Add()([a, a, a]).max() == 3.0


def test_concatenate_axis_follows_channels_last():
    inputs = Input(shape=(4, 4, 3), data_format="channels_last")
    joined = concatenate([Conv2D(2, 1)(inputs), Conv2D(5, 1)(inputs)])     # axis=-1: channels
    assert joined.shape == (None, 4, 4, 7) and joined.internal_shape == (7, 4, 4)


def test_reshape_layer():
    model = Sequential([Dense(12), Reshape((3, 2, 2)), Conv2D(1, 1), Flatten(), Dense(2)],
                       input_shape=(5,))
    assert model.layers[1].output_shape == (3, 2, 2)
    assert model.predict(np.zeros((2, 5))).shape == (2, 2)
    assert Reshape((-1,)).compute_output_shape((3, 4)) == (12,)
    with pytest.raises(ValueError, match="holds 12 values but the input"):
        Reshape((3, 4)).compute_output_shape((5,))
    with pytest.raises(ValueError, match="at most one -1"):
        Reshape((-1, -1))


def test_graph_errors_are_clear():
    inputs = Input(shape=(4,))
    dense = Dense(2)
    h = dense(inputs)
    with pytest.raises(ValueError, match="already used in a graph"):
        dense(h)
    with pytest.raises(TypeError, match="takes a list of tensors"):
        Add()(h)
    with pytest.raises(TypeError, match="takes one tensor"):
        Dense(2)([h, h])
    with pytest.raises(ValueError, match="same shape"):
        add([h, Dense(3)(inputs)])
    other = Input(shape=(4,))
    with pytest.raises(ValueError, match="not the model's input"):
        Model(inputs, add([h, Dense(2)(other)]))
    with pytest.raises(TypeError, match="Several inputs or outputs are not supported"):
        Model([inputs, other], h)
    with pytest.raises(TypeError, match="holds no values"):
        np.asarray(h)
    model = Model(inputs, h)
    with pytest.raises(TypeError, match="nesting a model"):
        model(inputs)
    with pytest.raises(TypeError, match=r"merges \(Add, Concatenate\) need the functional"):
        Sequential([Add()])


def test_layer_call_on_arrays_runs_eagerly():
    x = np.ones((2, 3), np.float32)
    dense = Dense(4)
    out = dense(x)
    assert out.shape == (2, 4) and dense.built
    assert add([x, x]).tolist() == (2 * x).tolist()


def test_diagnostics_walk_the_graph():
    from fastcnn import diagnostics
    model = basic_block()
    model.compile(optimizer="adam", metrics=["accuracy"])
    x = np.random.default_rng(0).standard_normal((8, 2, 6, 6)).astype(np.float32)
    y = np.arange(8) % 3
    assert diagnostics.locate_nonfinite(model, x, y)["kind"] is None
    stats = diagnostics.activation_stats(model, x)
    assert [row["layer"] for row in stats.rows] == [layer.name for layer in model.layers[1:]]
    shortcut = model.get_layer("conv2d_3")             # the 1x1 projection, a side branch
    shortcut.kernel.data[0, 0, 0, 0] = np.inf
    found = diagnostics.locate_nonfinite(model, x, y)
    assert (found["layer"], found["kind"]) == ("conv2d_3", "weights")
    shortcut.kernel.data[0, 0, 0, 0] = 0.0
    clone = diagnostics.clone_model(model)
    assert type(clone) is Model
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    report = diagnostics.overfit_small_subset(model, x, y, n=8, epochs=60)
    assert report.passed, report.verdict
