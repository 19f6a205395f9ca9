"""A Keras CNN course's snippets, transcribed literally, run on fastcnn.

Only the import lines differ from the course (``fastcnn`` instead of ``tensorflow.keras``),
plus one line per snippet that Keras users set once in their config:
``fastcnn.set_image_data_format("channels_last")`` (Keras' default layout; fastcnn's own
default is channels-first). Each snippet trains a few batches on synthetic data of the
course's shapes and dtypes (uint8 pixels, ``/ 255.0`` float64, int labels) and checks
what the course prints (parameter counts are Keras').
"""

import numpy as np
import pytest

import fastcnn


@pytest.fixture(autouse=True)
def channels_last():
    fastcnn.set_image_data_format("channels_last")     # keras.config's default
    yield
    fastcnn.set_image_data_format("channels_first")


def fashion_mnist(n=96, seed=0):
    """Fashion-MNIST-shaped data: uint8 (n, 28, 28) images, int labels 0..9."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    x[np.arange(n), y * 2, :] = 255                    # a learnable stripe per class
    return x, y


def cifar10(n=48, seed=0):
    """CIFAR-10-shaped data: uint8 (n, 32, 32, 3) images, (n, 1) int labels."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, (n, 1)))


def test_fashion_mnist_cnn_channels_last_div_255():
    from fastcnn import layers, models
    (x_train, y_train), (x_test, y_test) = fashion_mnist(), fashion_mnist(32, seed=1)
    # --- course code
    x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
    x_test = x_test.reshape(-1, 28, 28, 1) / 255.0
    model = models.Sequential([
        layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation='relu'),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(64, activation='relu'),
        layers.Dense(10, activation='softmax')
    ])
    model.summary()
    model.compile(optimizer='adam',
                  loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=2, batch_size=32, validation_split=0.1,
                        verbose=0)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
    # --- checks
    assert model.count_params() == 121_930                       # Keras' summary
    assert x_train.dtype == np.float64                            # never mutated
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(test_loss) and 0 <= test_acc <= 1
    predictions = model.predict(x_test)
    assert predictions.shape == (32, 10) and np.allclose(predictions.sum(axis=1), 1, atol=1e-5)


def test_vgg_like_cifar10_with_one_hot_labels():
    from fastcnn import Sequential, to_categorical
    from fastcnn.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from fastcnn.optimizers import RMSprop
    (x_train, y_train), (x_test, y_test) = cifar10(), cifar10(16, seed=1)
    # --- course code (Keras' cifar10_cnn example)
    y_train = to_categorical(y_train, 10)
    y_test = to_categorical(y_test, 10)
    model = Sequential()
    model.add(Conv2D(32, (3, 3), padding='same', activation='relu', input_shape=(32, 32, 3)))
    model.add(Conv2D(32, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Conv2D(64, (3, 3), padding='same', activation='relu'))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Flatten())
    model.add(Dense(512, activation='relu'))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation='softmax'))
    opt = RMSprop(learning_rate=0.0001)
    model.compile(loss='categorical_crossentropy', optimizer=opt, metrics=['accuracy'])
    x_train = x_train.astype('float32')
    x_test = x_test.astype('float32')
    x_train /= 255
    x_test /= 255
    model.fit(x_train, y_train, batch_size=16, epochs=1, validation_data=(x_test, y_test),
              shuffle=True, verbose=0)
    scores = model.evaluate(x_test, y_test, verbose=1)
    # --- checks
    assert model.count_params() == 1_250_858                     # Keras' summary
    assert y_train.shape == (48, 10) and len(scores) == 2


# Random labels: the loss may spike early (the guard's one warning), as in Keras runs.
@pytest.mark.filterwarnings("ignore:fit.*exceeds 3x")
@pytest.mark.parametrize("order", ["bn_before_relu", "bn_after_relu"])
def test_batch_norm_variants(order):
    from fastcnn import layers, models
    (x_train, y_train) = cifar10(32)
    x_train = x_train / 255.0
    # --- course code: conv -> BN -> ReLU (no conv bias), and conv+ReLU -> BN
    if order == "bn_before_relu":
        model = models.Sequential([
            layers.Conv2D(32, 3, padding='same', use_bias=False, input_shape=(32, 32, 3)),
            layers.BatchNormalization(),
            layers.Activation('relu'),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation='softmax'),
        ])
    else:
        model = models.Sequential([
            layers.Conv2D(32, 3, padding='same', activation='relu', input_shape=(32, 32, 3)),
            layers.BatchNormalization(momentum=0.9),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation='softmax'),
        ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    model.fit(x_train, y_train, batch_size=8, epochs=1, verbose=0)
    # --- checks: Keras counts gamma, beta and both moving statistics
    bias = 0 if order == "bn_before_relu" else 32
    assert model.count_params() == 864 + bias + 4 * 32 + 8192 * 10 + 10
    assert model.layers[1].state["moving_mean"].any()


def test_he_initialisation_model_is_not_stopped_by_the_guard():
    """The issue's case: this model's loss jumps ~8x at batch 2 and recovers; the old
    default guard (a hard 3x stop, now ``explosion_guard="strict"``) stopped it there."""
    from fastcnn import layers, models
    from fastcnn.optimizers import SGD

    def run(**guard):
        fastcnn.seed(0)
        x_train, y_train = fashion_mnist(256)
        # --- course code
        x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
        model = models.Sequential([
            layers.Conv2D(32, (3, 3), activation='relu', kernel_initializer='he_normal',
                          input_shape=(28, 28, 1)),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(100, activation='relu', kernel_initializer='he_normal'),
            layers.Dense(10, activation='softmax'),
        ])
        model.compile(loss='sparse_categorical_crossentropy',
                      optimizer=SGD(learning_rate=0.1), metrics=['accuracy'])
        return model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0, **guard)

    with pytest.warns(fastcnn.FastCNNWarning, match="batch 2 exceeds 3x"):
        history = run()
    assert history.diverged is None and len(history.history["loss"]) == 2
    assert history.history["loss"][1] < np.log(10)            # recovered and learning
    with pytest.warns(fastcnn.FastCNNWarning, match="training diverged"):
        strict = run(explosion_guard="strict")
    assert strict.diverged["batch"] == 1 and strict.history == {}


def test_functional_skip_connection_block():
    import fastcnn as keras
    from fastcnn import layers
    x_train, y_train = cifar10(32)
    x_train = x_train / 255.0

    # --- course code
    def residual_block(x, filters, stride=1):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding='same')(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation('relu')(y)
        y = layers.Conv2D(filters, 3, padding='same')(y)
        y = layers.BatchNormalization()(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride)(shortcut)
            shortcut = layers.BatchNormalization()(shortcut)
        y = layers.add([y, shortcut])
        return layers.Activation('relu')(y)

    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(16, 3, padding='same', activation='relu')(inputs)
    x = residual_block(x, 16)
    x = residual_block(x, 32, stride=2)
    x = layers.MaxPooling2D(4)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(10, activation='softmax')(x)
    model = keras.Model(inputs, outputs)
    model.summary()
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=1, batch_size=16, verbose=0)
    # --- checks
    assert len(history.history["loss"]) == 1
    assert x.shape == (None, 512)
    assert model.get_layer(index=-1).output_shape == (10,)


def test_callbacks_snippet(tmp_path):
    from fastcnn import callbacks, layers, models
    (x_train, y_train), (x_val, y_val) = fashion_mnist(64), fashion_mnist(32, seed=1)
    x_train, x_val = x_train / 255.0, x_val / 255.0
    model = models.Sequential([layers.Flatten(input_shape=(28, 28)),
                               layers.Dense(32, activation='relu'),
                               layers.Dense(10, activation='softmax')])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    # --- course code
    my_callbacks = [
        callbacks.EarlyStopping(monitor='val_loss', patience=2, restore_best_weights=True,
                                verbose=1),
        callbacks.ModelCheckpoint(str(tmp_path / 'best_model.npz'), monitor='val_accuracy',
                                  save_best_only=True),
        callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=1),
    ]
    history = model.fit(x_train, y_train, epochs=4, batch_size=16,
                        validation_data=(x_val, y_val), callbacks=my_callbacks, verbose=0)
    # --- checks
    assert (tmp_path / 'best_model.npz').exists()
    best = fastcnn.load_model(tmp_path / 'best_model.npz')
    assert best.data_format == "channels_last" and best.predict(x_val).shape == (32, 10)
    assert 1 <= len(history.history["loss"]) <= 4
