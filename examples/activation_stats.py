"""Why initialization matters: activation statistics of a deep net (CS231n's demo).

A 10-layer MLP with 500 units per layer is fed 1000 unit-Gaussian inputs, and
``fastcnn.diagnostics.activation_stats`` reports each layer's mean, std, dead ReLUs
and saturated units:

1. tanh, ``W ~ 0.01 * randn``: every layer multiplies the std by about
   ``0.01 * sqrt(500) = 0.22``, so by layer 10 the activations (and the gradients
   that flow back through them) have all but vanished -> verdict "vanishing".
2. tanh, ``W ~ 1.0 * randn``: pre-activations of std ~22 pin tanh at +-1 -> verdict
   "saturated" (local gradients ~0).
3. tanh, Xavier/Glorot (``Var(W) = 2 / (fan_in + fan_out)``): the std stays in a
   healthy range through all 10 layers -> "healthy".
4. ReLU, He (``Var(W) = 2 / fan_in``): the factor 2 makes up for ReLU zeroing half of
   its inputs, so the std stays constant -> "healthy".

Run ``python examples/activation_stats.py [OUT_DIR]``: it prints the four tables and
writes one histogram PNG per case (default OUT_DIR: ``runs/activation_stats``).
``tests/test_diagnostics.py`` asserts these four verdicts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import fastcnn.common.random
from fastcnn.tools.diagnostics import activation_stats
from fastcnn.nn.initializers import RandomNormal
from fastcnn.nn.layers import Dense
from fastcnn.train.model import Sequential

CASES = {
    "tanh, 0.01 * randn": ("tanh", RandomNormal(stddev=0.01)),
    "tanh, 1.0 * randn": ("tanh", RandomNormal(stddev=1.0)),
    "tanh, Xavier (glorot_normal)": ("tanh", "glorot_normal"),
    "relu, He (he_normal)": ("relu", "he_normal"),
}


def deep_mlp(activation, initializer, depth=10, units=500, input_dim=500):
    """``depth`` Dense layers of ``units`` with the given activation and init (no bias
    effect: biases start at zero)."""
    layers = [Dense(units, activation=activation, kernel_initializer=initializer)
              for _ in range(depth)]
    return Sequential(layers, input_shape=(input_dim,))


def main(out_dir="runs/activation_stats", n=1000, seed=0) -> dict:
    fastcnn.random.seed(seed)
    x = np.random.default_rng(seed).standard_normal((n, 500)).astype(np.float32)
    verdicts = {}
    for title, (activation, init) in CASES.items():
        stats = activation_stats(deep_mlp(activation, init), x)
        print(f"\n== {title} ==\n{stats.table()}")
        if out_dir:
            name = title.split(",")[0] + "-" + title.split(",")[1].split()[0]
            path = Path(out_dir) / f"{name.replace(' ', '').replace('.', '')}.png"
            stats.plot(path, title=title)
        verdicts[title] = stats.verdict
    return verdicts


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/activation_stats")
