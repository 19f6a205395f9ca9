"""Update/weight ratios: how big each step is relative to the weights it changes.

Every ``k`` steps (about 5 times per epoch) the weights are copied before the step and
``||w_after - w_before|| / ||w_before||`` is measured per trainable parameter.
``history.update_ratios[name]`` gets the epoch's median. A :class:`FastCNNWarning` (once
per parameter and cause in a ``fit``) says when every sample of an epoch for a weight
matrix/kernel lies below ``1e-5`` (learning rate probably too low) or above ``1e-1``
(too high); CS231n's rule of thumb is about ``1e-3``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.train.history import History

__all__ = ["RatioMeter", "UPDATE_RATIO_LOW", "UPDATE_RATIO_HIGH", "SAMPLES_PER_EPOCH"]

#: update/weight ratios outside [LOW, HIGH] for a whole epoch trigger a warning
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1
#: how many steps per epoch are measured by default
SAMPLES_PER_EPOCH = 5


class RatioMeter:
    """Measures ``||w_after - w_before|| / ||w_before||`` on sampled steps, with weight
    snapshots in buffers allocated once."""

    def __init__(self, params, every: int):
        self.params = [p for p in params if p.trainable]
        self.every = every
        self.snaps = [np.empty_like(p.data) for p in self.params]
        self.norms = [0.0] * len(self.params)
        self.samples: dict[str, list[float]] = {p.name: [] for p in self.params}
        self.warned: set = set()

    @np.errstate(over="ignore", invalid="ignore")     # a diverging run may overflow
    def before(self) -> None:
        for i, (p, snap) in enumerate(zip(self.params, self.snaps)):
            np.copyto(snap, p.data)
            flat = snap.reshape(-1)
            self.norms[i] = math.sqrt(float(np.dot(flat, flat)))

    @np.errstate(over="ignore", invalid="ignore")
    def after(self) -> None:
        for p, snap, norm in zip(self.params, self.snaps, self.norms):
            np.subtract(p.data, snap, out=snap)          # the update, lr included
            flat = snap.reshape(-1)
            if norm > 0:                                 # zero-initialised biases: skip
                self.samples[p.name].append(math.sqrt(float(np.dot(flat, flat))) / norm)

    def end_epoch(self, history: History, epoch: int) -> None:
        for p in self.params:
            values = self.samples[p.name]
            if not values:
                continue
            history.update_ratios.setdefault(p.name, []).append(float(np.median(values)))
            if p.data.ndim < 2:                          # the rule is about weight matrices
                values.clear()
                continue
            cause = ("low" if max(values) < UPDATE_RATIO_LOW else
                     "high" if min(values) > UPDATE_RATIO_HIGH else None)
            if cause and (p.name, cause) not in self.warned:
                self.warned.add((p.name, cause))
                hint = ("the learning rate is probably too low (or the gradient vanishes "
                        "here)" if cause == "low" else "the learning rate is probably too high")
                warnings.warn(
                    f"fit: parameter {p.name!r} had update/weight ratios "
                    f"{min(values):.1e}..{max(values):.1e} during epoch {epoch + 1}, far from "
                    f"the ~1e-3 rule of thumb; {hint}.", FastCNNWarning, stacklevel=4)
            values.clear()
