"""fastcnn.models: parameter counts equal Keras' for the same architectures, forward
shapes, and the name registry."""

import numpy as np
import pytest

from fastcnn import zoo as models
from fastcnn.nn.layers import Residual


# Counts worked out layer by layer in each builder's docstring (Keras counts the same:
# weights + biases, and for BatchNormalization gamma, beta and the two moving statistics).
@pytest.mark.parametrize("build, params, input_shape", [
    (models.digits_cnn, 30_634, (1, 8, 8)),
    (models.lenet5, 61_706, (1, 28, 28)),
    (models.mnist_net, 122_270, (1, 28, 28)),
    (models.cifar10_net, 157_578, (3, 32, 32)),
    (lambda: models.cifar10_net(batch_norm=True), 157_578 + 4 * (64 + 128), (3, 32, 32)),
    (lambda: models.cifar10_net(dropout=0.25), 157_578, (3, 32, 32)),
], ids=["digits_cnn", "lenet5", "mnist_net", "cifar10_net", "cifar10_net-bn",
        "cifar10_net-dropout"])
def test_parameter_counts_and_forward_shapes(build, params, input_shape):
    model = build()
    assert model.count_params() == params
    assert model.input_shape == input_shape
    x = np.random.default_rng(0).random((2,) + input_shape, dtype=np.float32)
    probs = model.predict(x)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_mnist_net_layer_shapes_follow_benchmarks_md():
    model = models.mnist_net()
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [(4, 28, 28), (8, 14, 14), (12, 7, 7), (588,), (200,), (10,)]


def test_cifar10_net_layer_shapes_follow_benchmarks_md():
    shapes = [layer.output_shape for layer in models.cifar10_net().layers]
    assert shapes == [(64, 32, 32), (64, 16, 16), (128, 16, 16), (128, 8, 8), (8192,), (10,)]


def test_small_resnet_uses_residual_blocks():
    model = models.small_resnet(input_shape=(3, 16, 16), classes=5, filters=(8, 16), blocks=2)
    blocks = [layer for layer in model.layers if isinstance(layer, Residual)]
    assert len(blocks) == 4
    assert blocks[0].shortcut is None and blocks[2].shortcut is not None   # stride-2 stage
    x = np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)
    assert model.predict(x).shape == (2, 5)
    model.compile("adam", metrics=["accuracy"])
    loss = model.evaluate(x, np.array([0, 1]))[0]
    assert np.isfinite(loss)


def test_vgg16_count_equals_keras():
    # keras.applications.VGG16(include_top=True, weights=None).count_params()
    model = models.vgg16()
    assert model.count_params() == 138_357_544
    assert model.layers[-1].output_shape == (1000,)
    assert [layer.output_shape for layer in model.layers if type(layer).__name__ ==
            "MaxPooling2D"][-1] == (512, 7, 7)


def test_vgg16_small_input_and_classes():
    model = models.vgg16(input_shape=(3, 32, 32), classes=10)
    # 13 conv layers (14,714,688) + 512->4096 + 4096->4096 + 4096->10
    assert model.count_params() == 14_714_688 + 512 * 4096 + 4096 + 4096 * 4096 + 4096 + 40_970


def test_registry():
    assert set(models.MODELS) >= {"digits_cnn", "lenet5", "mnist_net", "cifar10_net",
                                  "small_resnet", "vgg16"}
    assert models.get("mnist-net").name == "mnist_net"
    with pytest.raises(ValueError, match="models.get: name must be one of .*; got 'alexnet'"):
        models.get("alexnet")


def test_mobilenet_small_counts_equal_keras():
    # Keras (any backend), same layers on (32, 32, 3):
    #   Conv2D(16, 3, no bias) 432, BN(16) 64
    #   DepthwiseConv2D(3) on 16: 144, BN 64; Conv2D(32, 1) 512, BN 128
    #   DepthwiseConv2D(3, s2) on 32: 288, BN 128; Conv2D(64, 1) 2,048, BN 256
    #   DepthwiseConv2D(3, s2) on 64: 576, BN 256; Conv2D(128, 1) 8,192, BN 512
    #   Dense(10) 1,290 -> 14,890, of which 704 moving statistics
    model = models.mobilenet_small()
    assert model.count_params() == 14_890
    assert sum(a.size for a in model.states().values()) == 704
    shapes = [layer.output_shape for layer in model.layers
              if type(layer).__name__ in ("DepthwiseConv2D", "Conv2D")]
    assert shapes == [(16, 32, 32), (16, 32, 32), (32, 32, 32), (32, 16, 16), (64, 16, 16),
                      (64, 8, 8), (128, 8, 8)]
    assert models.get("mobilenet-small").name == "mobilenet_small"


def test_mobilenet_small_trains():
    # 3 classes of noise images: class y brightens its channel y by one standard
    # deviation. A narrow MobileNet must learn it: the loss (in inference mode, with the
    # moving statistics) halves and the accuracy ends near 1.
    rng = np.random.default_rng(0)
    n = 96
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 1.0, (n, 3, 8, 8)).astype(np.float32)
    x[np.arange(n), y] += 1.0
    model = models.mobilenet_small(input_shape=(3, 8, 8), classes=3, widths=(8, 16))
    model.compile("adam", metrics=["accuracy"])
    before = model.evaluate(x, y)[0]
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    loss, accuracy = model.evaluate(x, y)
    assert loss < 0.5 * before
    assert accuracy >= 0.9
