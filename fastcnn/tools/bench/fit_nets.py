"""The networks and data of the whole-epoch benchmark (``python -m fastcnn bench --fit``).

What users run, not a kernel: each net is trained with ``model.fit`` (shuffling,
batching, callbacks, the default History; progress off) and, in another process, with
the PyTorch training loop a PyTorch user writes for the same architecture, the same
initial weights (copied from the fastcnn model), Adam with the same hyper-parameters,
the same batch size and the same data in memory.

==============  ===============================================================  =====
name            network (input)                                                  batch
==============  ===============================================================  =====
``mnist``       the Keras course MNIST net: Conv2D(32, 3, same, relu), MaxPool 2,  128
                Conv2D(64, 3, same, relu), MaxPool 2, Flatten, Dense(10, softmax)
                (1, 28, 28)
``cifar10``     the course CIFAR-10 net of docs/benchmarks.md: Conv(3->64, 3x3 same)     128
                +ReLU, MaxPool 2, Conv(64->128, 3x3 same)+ReLU, MaxPool 2, Flatten,
                Dense(10, softmax) (3, 32, 32)
``cifar10_bn``  the same with BatchNormalization after each convolution          128
``digits``      the README's net: Conv2D(16, 3, same, relu), BatchNormalization,   32
                MaxPool 2, Conv2D(32, 3, same, relu), Flatten, Dropout(0.25),
                Dense(10, softmax) (1, 8, 8)
==============  ===============================================================  =====

Data are synthetic with the real shapes (``x ~ U[0, 1)`` float32, uniform labels): the
time of an epoch does not depend on the pixel values. MNIST-shaped data has 60,000
training images, CIFAR-shaped 50,000 and the digits 1,437 (scikit-learn's training
split), unless the benchmark asks for fewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fastcnn.common import random as _random
from fastcnn.nn.layers import (BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                               MaxPooling2D)
from fastcnn.optim.optimizers import Adam
from fastcnn.tools.bench.step_nets import torch_twin
from fastcnn.train.model import Sequential
from fastcnn.zoo import cifar10_net

__all__ = ["FitNet", "FIT_NETS", "keras_mnist_net", "readme_digits_net", "make_data",
           "build_model", "torch_training"]


def keras_mnist_net() -> Sequential:
    """The Keras course MNIST net (see the module docstring), built for (1, 28, 28)."""
    return Sequential([
        Conv2D(32, 3, padding="same", activation="relu"), MaxPooling2D(2),
        Conv2D(64, 3, padding="same", activation="relu"), MaxPooling2D(2),
        Flatten(), Dense(10, activation="softmax")], input_shape=(1, 28, 28))


def readme_digits_net() -> Sequential:
    """The README's first net, for scikit-learn's 8x8 digits."""
    return Sequential([
        Conv2D(16, 3, padding="same", activation="relu"), BatchNormalization(),
        MaxPooling2D(2), Conv2D(32, 3, padding="same", activation="relu"), Flatten(),
        Dropout(0.25), Dense(10, activation="softmax")], input_shape=(1, 8, 8))


@dataclass(frozen=True)
class FitNet:
    """One benchmarked net: ``factory()`` builds it; ``samples`` training images of
    ``input_shape`` in an epoch (the real data set's size), ``batch`` per step."""

    factory: Callable[[], Sequential]
    input_shape: tuple
    samples: int
    batch: int
    description: str
    target: float          # docs/benchmarks.md: epoch and predict time <= target x PyTorch's


FIT_NETS: dict[str, FitNet] = {
    "mnist": FitNet(keras_mnist_net, (1, 28, 28), 60_000, 128,
                    "Keras course MNIST net", 0.8),
    "cifar10": FitNet(lambda: cifar10_net(batch_norm=False), (3, 32, 32), 50_000, 128,
                      "course CIFAR-10 net", 0.7),
    "cifar10_bn": FitNet(lambda: cifar10_net(batch_norm=True), (3, 32, 32), 50_000, 128,
                         "course CIFAR-10 net + BatchNormalization", 0.7),
    "digits": FitNet(readme_digits_net, (1, 8, 8), 1_437, 32, "README digits net", 0.8),
}


def get_net(name: str) -> FitNet:
    if name not in FIT_NETS:
        raise ValueError(f"bench --fit: net must be one of {sorted(FIT_NETS)}; got {name!r}.")
    return FIT_NETS[name]


def make_data(name: str, samples: int | None = None, seed: int = 0):
    """``(x, y)``: ``samples`` (default: the real data set's size) float32 images in
    [0, 1) of the net's input shape and int64 labels in [0, 10)."""
    net = get_net(name)
    n = net.samples if samples is None else int(samples)
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + net.input_shape, dtype=np.float32)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return x, y


def build_model(name: str, seed: int = 0) -> Sequential:
    """The fastcnn model, weights drawn after ``fastcnn.random.seed(seed)``, compiled
    with ``Adam()`` (Keras' defaults) and sparse categorical cross-entropy + accuracy,
    as the course does."""
    _random.seed(seed)
    model = get_net(name).factory()
    model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def torch_training(name: str, x: np.ndarray, y: np.ndarray, seed: int = 0):
    """``(train_epoch, predict)`` of the PyTorch twin of :func:`build_model`'s net (same
    weights; ``torch.optim.Adam`` with Keras' ``epsilon=1e-7``): ``train_epoch()`` is
    the loop a PyTorch user writes -- a fresh permutation, then for every batch
    ``zero_grad``, forward, ``cross_entropy`` on the logits, ``backward``, ``step`` --
    and ``predict(x, batch)`` the softmax outputs under ``no_grad`` in eval mode."""
    import torch  # optional: only the PyTorch side of the benchmark needs it
    import torch.nn.functional as F  # (the same)

    net = torch_twin(build_model(name, seed)).train()
    batch = get_net(name).batch
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    generator = torch.Generator().manual_seed(seed)

    def train_epoch():
        net.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch):
            idx = order[start:start + batch]
            opt.zero_grad()
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return float(loss.detach())

    def predict(images, predict_batch):
        net.eval()
        images = torch.from_numpy(images)
        with torch.no_grad():
            return torch.cat([torch.softmax(net(images[i:i + predict_batch]), 1)
                              for i in range(0, len(images), predict_batch)]).numpy()

    return train_epoch, predict
