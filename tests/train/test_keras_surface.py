"""The everyday Keras names, with Keras' argument names and defaults."""

import re

import numpy as np
import pytest

import fastcnn
from fastcnn import Sequential
from fastcnn.callbacks import EarlyStopping
from fastcnn.layers import Conv2D, Dense, Flatten

from _model_helpers import make_blobs


def small(input_shape=(1, 4, 4), **compile_args):
    model = Sequential([Conv2D(2, 3, padding="same", activation="relu"), Flatten(),
                        Dense(3, activation="softmax")], input_shape=input_shape)
    model.compile(**({"metrics": ["accuracy"]} | compile_args))
    return model


def test_validation_split_holds_out_the_last_fraction():
    x, y = make_blobs(40)
    model = small()
    h = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, seed=0)
    assert h.params["samples"] == 30
    np.testing.assert_allclose(h.history["val_loss"][0], model.evaluate(x[30:], y[30:])[0])
    with pytest.raises(ValueError, match=r"validation_split must lie in \[0, 1\)"):
        model.fit(x, y, validation_split=1.0, verbose=0)


def test_fit_without_targets_and_bad_validation_data_are_clear_errors():
    x, y = make_blobs(8)
    model = small()
    with pytest.raises(ValueError, match=r"Sequential.fit: y \(the targets\) is None"):
        model.fit(x, None)
    with pytest.raises(ValueError, match=r"Sequential.fit: y \(the targets\) is None"):
        model.fit(x)
    with pytest.raises(ValueError, match=r"validation_data must be a pair \(x_val, y_val\); "
                                         r"got a tuple of 1"):
        model.fit(x, y, validation_data=(x,), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data\): y \(the targets\) is None"):
        model.fit(x, y, validation_data=(x, None), verbose=0)


def test_get_set_weights_get_layer_and_model_call():
    model = small()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(2, 1, 3, 3), (2,), (32, 3), (3,)]
    weights[0][...] = 0.5
    model.set_weights(weights)
    assert (model.layers[0].kernel.data == 0.5).all()
    weights[0][...] = 0.0                        # get_weights returned copies
    assert (model.layers[0].kernel.data == 0.5).all()
    with pytest.raises(ValueError, match="array 1 must have shape"):
        model.set_weights([weights[0], weights[2], weights[1], weights[3]])
    assert model.get_layer("dense_1") is model.layers[2]
    assert model.get_layer(index=-1) is model.layers[2]
    with pytest.raises(ValueError, match="no layer named 'dense1'; did you mean 'dense_1'"):
        model.get_layer("dense1")
    x, _ = make_blobs(5)
    np.testing.assert_array_equal(model(x), model.predict(x))


def test_train_on_batch_test_on_batch_and_return_dict():
    x, y = make_blobs(16)
    model = small()
    before = model.evaluate(x, y, return_dict=True)
    assert set(before) == {"loss", "accuracy"}
    loss, acc = model.train_on_batch(x, y)
    assert loss == pytest.approx(before["loss"], rel=1e-5)     # measured before the update
    assert model.train_on_batch(x, y, return_dict=True)["loss"] < loss
    assert model.test_on_batch(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)
    assert model.predict_on_batch(x).shape == (16, 3)


def test_evaluate_and_predict_verbose(capsys):
    x, y = make_blobs(8)
    model = small()
    model.evaluate(x, y, verbose=1)
    assert re.fullmatch(r"loss: \d\.\d{4} - accuracy: \d\.\d{4}\n", capsys.readouterr().out)
    model.predict(x, verbose=1)
    assert "predict" in capsys.readouterr().err
    model.predict(x, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_input_shape_on_the_first_layer():
    model = Sequential([Dense(4, input_shape=(6,)), Dense(2)])
    assert model.built and model.input_shape == (6,) and model.count_params() == 28 + 10
    assert model.get_config()["layers"][0]["config"]["input_shape"] == (6,)
    inputs_first = Sequential([fastcnn.Input(shape=(6,)), Dense(2)])
    assert inputs_first.built and inputs_first.count_params() == 14


def test_bias_regularizer_adds_its_penalty():
    x, y = make_blobs(8)
    plain = Sequential([Flatten(), Dense(3, bias_initializer="ones")], input_shape=(1, 4, 4))
    reg = Sequential([Flatten(), Dense(3, bias_initializer="ones", bias_regularizer="l2")],
                     input_shape=(1, 4, 4))
    reg.set_weights(plain.get_weights())
    for m in (plain, reg):
        m.compile(loss="sparse_categorical_crossentropy", metrics=[])
    # Keras' "l2" is 0.01 * sum(b^2): three ones add 0.03
    assert reg.evaluate(x, y) == pytest.approx(plain.evaluate(x, y) + 0.03, rel=1e-5)
    assert reg.get_config()["layers"][1]["config"]["bias_regularizer"] == "l2"


def test_to_categorical():
    out = fastcnn.to_categorical(np.array([[2], [0]]), num_classes=4)
    assert out.dtype == np.float32 and out.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    assert fastcnn.to_categorical([1, 0]).shape == (2, 2)
    with pytest.raises(ValueError, match="label 4 does not fit num_classes=3"):
        fastcnn.to_categorical([4], 3)
    x, y = make_blobs(16)
    model = small(loss="categorical_crossentropy")
    model.fit(x, fastcnn.to_categorical(y, 3), epochs=1, verbose=0)


def test_nadam_trains_and_is_a_keras_name():
    x, y = make_blobs(48)
    model = small(optimizer="nadam")
    h = model.fit(x, y, epochs=5, verbose=0, seed=0)
    assert isinstance(model.optimizer, fastcnn.Nadam)
    assert h.history["loss"][-1] < h.history["loss"][0]
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        fastcnn.Nadam(epsilon=0)


def test_nadam_matches_torch():
    torch = pytest.importorskip("torch")
    from fastcnn.nn.parameter import Parameter
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((5, 4))
    p = Parameter(w0.copy(), name="w")
    ours = fastcnn.Nadam(learning_rate=0.01, epsilon=1e-8)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    theirs = torch.optim.NAdam([tw], lr=0.01, eps=1e-8)
    for _ in range(30):
        g = rng.standard_normal((5, 4))
        p.grad[...] = g
        ours.step([p])
        tw.grad = torch.tensor(g)
        theirs.step()
    np.testing.assert_allclose(p.data, tw.detach().numpy(), rtol=1e-8, atol=1e-10)


def test_early_stopping_verbose(capsys):
    x, y = make_blobs(16)
    model = small()
    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=10.0, verbose=1,
                            restore_best_weights=True)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[stopper])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "Restoring model weights" in out
    with pytest.raises(ValueError, match="verbose must be 0 or 1; got 2"):
        EarlyStopping(verbose=2)


@pytest.mark.parametrize("make, word, guess", [
    (lambda: Conv2D(3, 3, paddin="same"), "paddin", "padding"),
    (lambda: Dense(3, kernel_regulariser="l2"), "kernel_regulariser", "kernel_regularizer"),
    (lambda: EarlyStopping(patiense=2), "patiense", "patience"),
    (lambda: fastcnn.Adam(learning_rat=0.1), "learning_rat", "learning_rate"),
    (lambda: fastcnn.initializers.HeNormal(sed=1), "sed", "seed"),
    (lambda: small().fit(*make_blobs(4), epoch=2), "epoch", "epochs"),
    (lambda: small().compile(metric=["accuracy"]), "metric", "metrics"),
    (lambda: small().evaluate(*make_blobs(4), return_dic=True), "return_dic", "return_dict"),
])
def test_unknown_keywords_name_the_closest_valid_one(make, word, guess):
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{word}'; did you mean "
                                        f"'{guess}'"):
        make()


def test_model_checkpoint_filepath_is_suggested():
    from fastcnn.callbacks import ModelCheckpoint
    with pytest.raises(TypeError, match="unexpected keyword argument 'filename'; did you mean "
                                        "'filepath'"):
        ModelCheckpoint(filename="best.npz")


def test_callback_keyword_suggestion_uses_the_constructor_names():
    from fastcnn.callbacks import ModelCheckpoint
    import inspect
    names = [n for n in inspect.signature(ModelCheckpoint.__init__).parameters if n != "self"]
    with pytest.raises(TypeError, match=f"did you mean '{names[0]}'"):
        ModelCheckpoint(**{names[0][:-1] + "X": "m.npz"})


def test_batch_normalization_axis_names_the_channel_axis():
    from fastcnn.layers import BatchNormalization
    last = Sequential([Conv2D(2, 3), BatchNormalization(axis=-1)], input_shape=(6, 6, 1),
                      data_format="channels_last")
    first = Sequential([Conv2D(2, 3), BatchNormalization(axis=1)], input_shape=(1, 6, 6))
    assert last.count_params() == first.count_params() == 20 + 8
    with pytest.raises(ValueError, match=r"axis=-1 is not the channel axis of this "
                                         r"channels_first model \(use one of \(1, -3\)\)"):
        Sequential([Conv2D(2, 3), BatchNormalization(axis=-1)], input_shape=(1, 6, 6))
    with pytest.raises(ValueError, match="axis=2 is not the channel axis"):
        Sequential([Conv2D(2, 3), BatchNormalization(axis=2)], input_shape=(6, 6, 1),
                   data_format="channels_last")
