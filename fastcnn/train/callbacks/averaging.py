"""A running average of the weights for test time: :class:`ParameterAveraging`."""

from __future__ import annotations

import contextlib

from fastcnn.common.validation import check_float
from fastcnn.train.callbacks.base import (
    Callback,
)


class ParameterAveraging(Callback):
    """Exponential moving average (EMA) of the trainable weights (Polyak averaging).

    After every optimizer step, for each trainable parameter ``w``::

        d_t   = min(decay, (1 + t) / (10 + t))     if warmup   (t = steps averaged so far)
        d_t   = decay                              otherwise
        avg  <- d_t * avg + (1 - d_t) * w          (avg starts as a copy of w at train begin)

    The warm-up (TensorFlow's ``num_updates`` rule) lets the average forget the random
    initial weights quickly in short runs. Batch-norm moving statistics are not
    averaged (they are already averages).

    Parameters
    ----------
    decay : float in [0, 1)
    warmup : bool
    use_for_validation : bool
        Validation at the end of each epoch runs with the averaged weights (swapped in
        for the evaluation, swapped back before training goes on), so ``val_*`` in the
        history measures the averaged model.
    swap_at_end : bool
        At the end of training leave the averaged weights in the model (the raw ones
        are kept in ``raw_weights``). With False the model keeps its raw weights and
        :meth:`averaged` swaps the averages in on demand.

    Use ``with avg.averaged(): model.evaluate(x_test, y_test)`` to evaluate the average.
    """

    def __init__(self, decay=0.995, warmup=True, use_for_validation=True, swap_at_end=True):
        super().__init__()
        self.decay = check_float("ParameterAveraging", "decay", decay, low=0, high=1,
                                 high_inclusive=False)
        self.warmup = bool(warmup)
        self.use_for_validation = bool(use_for_validation)
        self.swap_at_end = bool(swap_at_end)
        self.averages = None
        self.raw_weights = None

    def _params(self):
        return [p for p in self.model.parameters() if p.trainable]

    def on_train_begin(self, logs=None):
        self.steps = 0
        self.averages = [p.data.copy() for p in self._params()]
        self.raw_weights = None

    def current_decay(self) -> float:
        """The ``d_t`` the next update uses."""
        t = self.steps
        return min(self.decay, (1.0 + t) / (10.0 + t)) if self.warmup else self.decay

    def on_batch_end(self, batch, logs=None):
        d = self.current_decay()
        for avg, p in zip(self.averages, self._params()):
            # avg = d * avg + (1 - d) * w, in place: avg += (1 - d) * (w - avg)
            avg -= p.data
            avg *= d
            avg += p.data
        self.steps += 1

    def _swap(self) -> None:
        for avg, p in zip(self.averages, self._params()):
            tmp = p.data.copy()
            p.data[...] = avg
            avg[...] = tmp

    @contextlib.contextmanager
    def averaged(self):
        """Context manager: the model holds the averaged weights inside the block."""
        if self.averages is None:
            raise RuntimeError("ParameterAveraging.averaged: no averages yet. Hint: pass "
                               "this callback to fit first.")
        if self.raw_weights is not None:        # already swapped in at train end
            yield
            return
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def on_test_begin(self, logs=None):
        if self.use_for_validation:
            self._swap()

    def on_test_end(self, logs=None):
        if self.use_for_validation:
            self._swap()

    def on_train_end(self, logs=None):
        if self.swap_at_end and self.averages is not None and self.raw_weights is None:
            self.raw_weights = [p.data.copy() for p in self._params()]
            for avg, p in zip(self.averages, self._params()):
                p.data[...] = avg

    def __repr__(self):
        return (f"ParameterAveraging(decay={self.decay}, warmup={self.warmup}, "
                f"use_for_validation={self.use_for_validation}, "
                f"swap_at_end={self.swap_at_end})")
