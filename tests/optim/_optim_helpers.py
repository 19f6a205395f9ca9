"""What the optimizer tests share: a Parameter from values, and a run of steps."""

import numpy as np

from fastcnn.nn.parameter import Parameter


def make_param(values, name="w", dtype=np.float64, trainable=True):
    return Parameter(np.array(values, dtype=dtype), name=name, trainable=trainable)


def run(opt, params, grads_per_step):
    """Apply ``opt`` for each list of gradients; return the trajectory of every param."""
    history = []
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad[...] = g
        opt.step(params)
        history.append([p.data.copy() for p in params])
    return history
