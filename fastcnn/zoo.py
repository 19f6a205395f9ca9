"""A small model zoo: the classic and course networks as ready ``Sequential`` models.

Every function returns a built, *uncompiled* model (call ``compile`` yourself), so
``summary()`` works at once and parameter counts can be compared with Keras':

===================  ==================  ============  ====================================
function             default input       parameters    what it is
===================  ==================  ============  ====================================
``digits_cnn``       (1, 8, 8)           30,634        the CLI's default for 8x8 digits
``lenet5``           (1, 28, 28)         61,706        LeCun et al. 1998 (tanh, avg-pool)
``mnist_net``        (1, 28, 28)         122,270       the course MNIST net (docs/benchmarks.md)
``cifar10_net``      (3, 32, 32)         157,578       the course CIFAR-10 net (docs/benchmarks.md)
``small_resnet``     (3, 32, 32)         depends       ResNet-style blocks via ``Residual``
``mobilenet_small``  (3, 32, 32)         14,890        depthwise-separable blocks (MobileNet)
``vgg16``            (3, 224, 224)       138,357,544   Simonyan & Zisserman 2014, Keras' count
===================  ==================  ============  ====================================

Every model ends in ``Dense(classes, activation="softmax")``, which ``Sequential``
fuses with a cross-entropy loss during training (see :mod:`fastcnn.model`).
"""

from __future__ import annotations

from fastcnn.nn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    MaxPooling2D,
    ReLU,
    Residual,
)
from fastcnn.train.functional import Model
from fastcnn.train.model import Sequential, load_model

# fastcnn.models is this module: Keras code says models.Sequential, models.Model and
# models.load_model (keras.models), so those names are here too.
__all__ = ["digits_cnn", "lenet5", "mnist_net", "cifar10_net", "small_resnet",
           "mobilenet_small", "vgg16", "MODELS", "get", "Sequential", "Model", "load_model"]


def digits_cnn(input_shape=(1, 8, 8), classes=10, dropout=0.25, dtype="float32"):
    """A small CNN for 8x8 digit images (scikit-learn's digits)::

        Conv2D(32, 3, same) + ReLU      (32, 8, 8)
        Conv2D(32, 3, same) + ReLU      (32, 8, 8)
        MaxPooling2D(2)                 (32, 4, 4)
        Conv2D(64, 3, same) + ReLU      (64, 4, 4)
        MaxPooling2D(2)                 (64, 2, 2)
        Flatten, Dropout(dropout)       (256,)
        Dense(classes) + softmax

    He-normal initialization (ReLU net). 30,634 parameters with the defaults.
    """
    layers = [Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
              Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
              MaxPooling2D(2),
              Conv2D(64, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
              MaxPooling2D(2), Flatten()]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(classes, activation="softmax"))
    return Sequential(layers, input_shape=input_shape, name="digits_cnn", dtype=dtype)


def lenet5(input_shape=(1, 28, 28), classes=10, dtype="float32"):
    """LeNet-5 as Keras tutorials write it: tanh units, average pooling, a "same"
    first convolution so that 28x28 MNIST gives LeNet's 32x32 geometry::

        Conv2D(6, 5, same) + tanh, AveragePooling2D      (6, 14, 14)
        Conv2D(16, 5) + tanh, AveragePooling2D           (16, 5, 5)
        Flatten, Dense(120) + tanh, Dense(84) + tanh, Dense(classes) + softmax

    61,706 parameters on (1, 28, 28) with 10 classes.
    """
    return Sequential([
        Conv2D(6, 5, padding="same", activation="tanh"), AveragePooling2D(),
        Conv2D(16, 5, activation="tanh"), AveragePooling2D(), Flatten(),
        Dense(120, activation="tanh"), Dense(84, activation="tanh"),
        Dense(classes, activation="softmax")], input_shape=input_shape, name="lenet5",
        dtype=dtype)


def mnist_net(input_shape=(1, 28, 28), classes=10, dtype="float32"):
    """The course MNIST net of docs/benchmarks.md (strided convolutions, no pooling)::

        Conv2D(4, 5, same) + ReLU                (4, 28, 28)     104 params
        Conv2D(8, 5, strides 2, same) + ReLU     (8, 14, 14)     808
        Conv2D(12, 4, strides 2, same) + ReLU    (12, 7, 7)      1,548
        Flatten, Dense(200) + ReLU               (200,)          117,800
        Dense(classes) + softmax                                 2,010   -> 122,270
    """
    return Sequential([
        Conv2D(4, 5, padding="same", activation="relu"),
        Conv2D(8, 5, strides=2, padding="same", activation="relu"),
        Conv2D(12, 4, strides=2, padding="same", activation="relu"),
        Flatten(), Dense(200, activation="relu"),
        Dense(classes, activation="softmax")], input_shape=input_shape, name="mnist_net",
        dtype=dtype)


def cifar10_net(batch_norm=False, dropout=0.0, input_shape=(3, 32, 32), classes=10,
                dtype="float32"):
    """The course CIFAR-10 net of docs/benchmarks.md::

        Conv2D(64, 3, same) + ReLU, MaxPooling2D(2)      (64, 16, 16)    1,792 params
        Conv2D(128, 3, same) + ReLU, MaxPooling2D(2)     (128, 8, 8)     73,856
        Flatten, Dense(classes) + softmax                                81,930 -> 157,578

    ``batch_norm=True`` puts ``BatchNormalization`` between each convolution and its
    ReLU (Ioffe & Szegedy's placement; +256 and +512 parameters, half of them moving
    statistics). ``dropout > 0`` adds ``Dropout(dropout)`` after each pooling layer.
    """
    layers = []
    for filters in (64, 128):
        if batch_norm:
            layers += [Conv2D(filters, 3, padding="same"), BatchNormalization(), ReLU()]
        else:
            layers.append(Conv2D(filters, 3, padding="same", activation="relu"))
        layers.append(MaxPooling2D(2))
        if dropout:
            layers.append(Dropout(dropout))
    layers += [Flatten(), Dense(classes, activation="softmax")]
    return Sequential(layers, input_shape=input_shape, name="cifar10_net", dtype=dtype)


def small_resnet(input_shape=(3, 32, 32), classes=10, filters=(16, 32, 64), blocks=1,
                 dtype="float32"):
    """A small ResNet (He et al. 2016, the CIFAR variant) built from ``Residual``::

        Conv2D(filters[0], 3, same), BN, ReLU
        for each stage s (downsampling by 2 from the second stage on):
            blocks x  Residual(main=[Conv 3x3, BN, ReLU, Conv 3x3, BN],
                               shortcut=identity or Conv2D 1x1 stride 2), ReLU
        AveragePooling2D over the remaining map (global average), Flatten,
        Dense(classes) + softmax

    He-normal initialization everywhere.
    """
    def conv(f, k=3, s=1):
        return Conv2D(f, k, strides=s, padding="same", use_bias=False,
                      kernel_initializer="he_normal")

    layers = [conv(filters[0]), BatchNormalization(), ReLU()]
    size = tuple(input_shape[1:])
    prev = filters[0]
    for stage, f in enumerate(filters):
        for b in range(blocks):
            stride = 2 if (stage > 0 and b == 0) else 1
            shortcut = None
            if stride != 1 or f != prev:
                shortcut = Conv2D(f, 1, strides=stride, padding="same", use_bias=False,
                                  kernel_initializer="he_normal")
            main = [conv(f, 3, stride), BatchNormalization(), ReLU(), conv(f),
                    BatchNormalization()]
            layers += [Residual(main, shortcut=shortcut), ReLU()]
            if stride == 2:
                size = (-(-size[0] // 2), -(-size[1] // 2))
            prev = f
    layers += [AveragePooling2D(pool_size=size), Flatten(),
               Dense(classes, activation="softmax")]
    return Sequential(layers, input_shape=input_shape, name="small_resnet", dtype=dtype)


def mobilenet_small(input_shape=(3, 32, 32), classes=10, widths=(32, 64, 128),
                    dtype="float32"):
    """A small MobileNet (Howard et al. 2017) for 32x32 images: a 3x3 stem, then one
    depthwise-separable block per width, the second and later ones downsampling by 2::

        Conv2D(16, 3, same, no bias), BN, ReLU                           (16, 32, 32)
        for each width f (stride 1 for the first, 2 after):
            DepthwiseConv2D(3, stride, same, no bias), BN, ReLU          (C, H/s, W/s)
            Conv2D(f, 1, no bias) (pointwise), BN, ReLU                  (f, H/s, W/s)
        AveragePooling2D over the remaining map (global average), Flatten,
        Dense(classes) + softmax

    A block costs ``9*C + C*f`` weights where a 3x3 convolution costs ``9*C*f``: that is
    the point of separable convolutions. He-normal initialization. 14,890 parameters
    with the defaults (Keras counts the same; 704 of them are BatchNormalization's moving
    statistics).
    """
    def bn_relu():
        return [BatchNormalization(), ReLU()]

    layers = [Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer="he_normal"),
              *bn_relu()]
    size = tuple(input_shape[1:])
    for k, filters in enumerate(widths):
        stride = 1 if k == 0 else 2
        layers += [DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                   depthwise_initializer="he_normal"), *bn_relu(),
                   Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal"),
                   *bn_relu()]
        size = (-(-size[0] // stride), -(-size[1] // stride))
    layers += [AveragePooling2D(pool_size=size), Flatten(),
               Dense(classes, activation="softmax")]
    return Sequential(layers, input_shape=input_shape, name="mobilenet_small", dtype=dtype)


def vgg16(input_shape=(3, 224, 224), classes=1000, dtype="float32"):
    """VGG-16 (configuration D) with its fully connected top, as Keras'
    ``applications.VGG16(include_top=True)``: 13 3x3 "same" convolutions in 5 blocks
    (64, 128, 256, 512, 512 filters) each closed by 2x2 max pooling, then
    Dense(4096) + ReLU, Dense(4096) + ReLU, Dense(classes) + softmax.

    138,357,544 parameters at (3, 224, 224) with 1000 classes (~553 MB of float32
    weights, as much again for their gradients).
    """
    layers = []
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        layers += [Conv2D(filters, 3, padding="same", activation="relu")
                   for _ in range(convs)]
        layers.append(MaxPooling2D(2))
    layers += [Flatten(), Dense(4096, activation="relu"), Dense(4096, activation="relu"),
               Dense(classes, activation="softmax")]
    return Sequential(layers, input_shape=input_shape, name="vgg16", dtype=dtype)


#: name -> builder (names used by ``python -m fastcnn train --model``)
MODELS = {
    "digits_cnn": digits_cnn,
    "lenet5": lenet5,
    "mnist_net": mnist_net,
    "cifar10_net": cifar10_net,
    "cifar10_net_bn": lambda **kw: cifar10_net(batch_norm=True, **kw),
    "small_resnet": small_resnet,
    "mobilenet_small": mobilenet_small,
    "vgg16": vgg16,
}


def get(name: str, **kwargs):
    """Build a zoo model by name (``-`` and ``_`` are interchangeable)."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"models.get: name must be one of {sorted(MODELS)}; got {name!r}.")
    return MODELS[key](**kwargs)
