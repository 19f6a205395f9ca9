"""The Keras training surface of every model: ``fit``, ``evaluate``, ``predict``,
``train_on_batch``, ``test_on_batch``, ``predict_on_batch`` and ``model(x)``.

Each method converts its data once at the model's edge (:mod:`fastcnn.train.edge`:
dtype cast, channels-last -> NCHW), then runs the one training loop of
:mod:`fastcnn.train.loop`.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.keywords import reject_unknown
from fastcnn.common.validation import check_float
from fastcnn.kernels._common import fit_scope
from fastcnn.train import edge
from fastcnn.train import loop as _loop
from fastcnn.train.step import train_step

__all__ = ["FitMixin"]


def _check_validation_data(where: str, validation_data):
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        got = (f"a {type(validation_data).__name__} of {len(validation_data)}"
               if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
        raise ValueError(f"{where}: validation_data must be a pair (x_val, y_val); got {got}."
                         f" (Sample weights, a third entry in Keras, are not supported.)")
    return validation_data


class FitMixin:
    """Mixed into :class:`~fastcnn.train.engine.BaseModel`."""

    def _prepare(self, where: str, x, y=None, need_y=False):
        x = edge.prepare_x(where, self, x)
        self._ensure_built(x)
        if need_y:
            y = edge.prepare_y(where, y, len(x))
        return x, y

    def _validation(self, where, x, y, validation_split, validation_data):
        """``(x, y, validation_data)`` after ``validation_data`` (prepared once, not per
        epoch) or ``validation_split`` (the last fraction, before shuffling)."""
        validation_data = _check_validation_data(where, validation_data)
        split = check_float(where, "validation_split", validation_split, low=0, high=1,
                            high_inclusive=False)
        if validation_data is not None:
            return x, y, self._prepare(f"{where} (validation_data)", validation_data[0],
                                       validation_data[1], need_y=True)
        if split > 0:
            cut = int(round(len(x) * (1.0 - split)))
            if cut < 1 or cut >= len(x):
                raise ValueError(f"{where}: validation_split={split} of {len(x)} samples "
                                 f"leaves an empty training or validation set.")
            return x[:cut], y[:cut], (x[cut:], y[cut:])
        return x, y, None

    def fit(self, x, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, *, seed=None,
            augment=None, explosion_guard=True, progress=None, update_ratio_every=None,
            **unknown):
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns a
        :class:`~fastcnn.train.history.History` (Keras' argument order and defaults).

        Parameters
        ----------
        x, y : arrays
            Inputs (any int/float dtype: cast once to the model's dtype, the caller's
            array untouched; channels-last images for a channels-last model) and
            labels (or one-hot targets).
        batch_size : int, default 32
        epochs : int
        verbose : 0, 1, 2 or "auto" (= 1)
            0 silent; 1 a progress bar (when stderr is a terminal) and one summary
            line per epoch; 2 only the summary line.
        callbacks : list of :class:`~fastcnn.train.callbacks.Callback`
        validation_split : float in [0, 1)
            Hold out the *last* fraction of ``(x, y)`` (before shuffling, as Keras)
            and evaluate on it at the end of every epoch.
        validation_data : (x_val, y_val), optional
            Evaluated at the end of every epoch (``val_loss``, ``val_<metric>``);
            takes precedence over ``validation_split``.
        shuffle : bool
            A new order every epoch, drawn from the generator ``seed`` selects.
        seed : None, int or Generator
            Fixes shuffling and augmentation (see :func:`fastcnn.random.get_rng`).
        augment : None, str, or transform
            A :mod:`fastcnn.data.augment` transform or spec (``"flip,shift"``) applied to
            every training batch (in NCHW).
        explosion_guard : True, False, "strict" or "raise"
            True (default): stop on a non-finite loss, naming the first layer that went
            non-finite, and warn once if the loss exceeds 3x its start. "strict": also
            stop at 3x. "raise": as strict, raising ``TrainingDivergedError``.
            False: off (see :mod:`fastcnn.train.guard`).
        progress : None or bool
            Force the progress bar on or off (None: automatic, as ``verbose`` says).
        update_ratio_every : int, optional
            Measure update/weight ratios every this many steps (default: about five
            times per epoch; 0 turns it off).

        Set ``model.stop_training = True`` from a callback to stop after the batch.
        """
        where = f"{type(self).__name__}.fit"
        reject_unknown(where, unknown, FitMixin.fit)
        self._check_compiled("fit")
        x, y = self._prepare(where, x, y, need_y=True)
        x, y, validation_data = self._validation(where, x, y, validation_split,
                                                 validation_data)
        with fit_scope():    # one thread runtime: BLAS on one thread, the kernels parallel
            return _loop.fit(self, x, y, batch_size=32 if batch_size is None else batch_size,
                             epochs=epochs, validation_data=validation_data, shuffle=shuffle,
                             verbose=1 if verbose == "auto" else verbose, seed=seed,
                             augment=augment, callbacks=callbacks,
                             explosion_guard=explosion_guard, progress=progress,
                             update_ratio_every=update_ratio_every)

    def evaluate(self, x, y=None, batch_size=None, verbose=0, return_dict=False, **unknown):
        """Loss (+ regularization penalties) and metrics over ``(x, y)`` in inference
        mode: ``[loss, *metrics]`` (the loss alone when compiled without metrics), or
        ``{"loss": ..., "accuracy": ...}`` with ``return_dict=True``. ``verbose=1``
        prints them on one line (fastcnn's default is 0: silent)."""
        where = f"{type(self).__name__}.evaluate"
        reject_unknown(where, unknown, FitMixin.evaluate)
        self._check_compiled("evaluate")
        x, y = self._prepare(where, x, y, need_y=True)
        with fit_scope():
            values = _loop.evaluate(self, x, y, as_dict=True,
                                    batch_size=32 if batch_size is None else batch_size)
        if verbose not in (0, "auto") and verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in values.items()), flush=True)
        if return_dict:
            return values
        return list(values.values()) if self.compiled_metrics else values["loss"]

    def predict(self, x, batch_size=None, verbose=0, tta=None, **unknown) -> np.ndarray:
        """Outputs for ``x`` in inference mode (probabilities after a softmax; images
        back in channels-last for a channels-last model). ``verbose=1`` shows a progress
        bar. ``tta=True`` (or a dict of :func:`fastcnn.data.augment.tta_views` options)
        averages over test-time views."""
        reject_unknown(f"{type(self).__name__}.predict", unknown, FitMixin.predict)
        x, _ = self._prepare(f"{type(self).__name__}.predict", x)
        with fit_scope():
            out = _loop.predict(self, x, batch_size=32 if batch_size is None else batch_size,
                                tta=tta, verbose=verbose)
        return edge.output_to_user(self, out)

    def __call__(self, x, training: bool = False) -> np.ndarray:
        """``model(x)``: the outputs for one batch (as ``predict`` on one batch; with
        ``training=True`` dropout and batch-norm statistics act as in training)."""
        if hasattr(x, "apply_layer") or (isinstance(x, (list, tuple)) and x
                                         and hasattr(x[0], "apply_layer")):
            raise TypeError(f"{type(self).__name__}: calling a model on a symbolic tensor "
                            f"(nesting a model in a graph) is not supported. Hint: call its "
                            f"layers, or build the graph with fastcnn.Model(inputs, outputs).")
        x, _ = self._prepare(type(self).__name__, x)
        return edge.output_to_user(self, self.forward(x, training=bool(training)))

    def predict_on_batch(self, x) -> np.ndarray:
        """``predict`` on one batch (no batching)."""
        return self(x)

    def _batch_values(self, loss, out, y, return_dict):
        values = {"loss": float(loss)}
        values.update({name: float(metric(out, y)) for name, metric in self.compiled_metrics})
        if return_dict:
            return values
        return list(values.values()) if self.compiled_metrics else values["loss"]

    def train_on_batch(self, x, y=None, return_dict=False, **unknown):
        """One optimizer step on one batch; returns its loss and metrics (measured
        before the update), as ``evaluate`` formats them."""
        where = f"{type(self).__name__}.train_on_batch"
        reject_unknown(where, unknown, FitMixin.train_on_batch)
        self._check_compiled("train_on_batch")
        x, y = self._prepare(where, x, y, need_y=True)
        loss, out = train_step(self, x, y)
        return self._batch_values(loss, out, y, return_dict)

    def test_on_batch(self, x, y=None, return_dict=False, **unknown):
        """``evaluate`` on one batch (inference mode, no update)."""
        reject_unknown(f"{type(self).__name__}.test_on_batch", unknown, FitMixin.test_on_batch)
        return self.evaluate(x, y, batch_size=max(1, len(x)), return_dict=return_dict)
