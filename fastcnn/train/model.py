"""``Sequential``: a stack of layers with Keras' surface (summary, compile, fit, save).

>>> from fastcnn.layers import Conv2D, MaxPooling2D, Flatten, Dense
>>> model = Sequential([Conv2D(6, 5, padding="same", activation="relu"), MaxPooling2D(),
...                     Flatten(), Dense(10, activation="softmax")], input_shape=(1, 28, 28))
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
>>> model.count_params()
11926

Softmax + cross-entropy fusion: when the last layer ends in a softmax (``Softmax()``,
``Activation("softmax")`` or ``Dense(..., activation="softmax")``) and the loss is a
(sparse) categorical cross-entropy on probabilities, training and ``evaluate`` skip
that softmax and apply the loss to the logits ``z`` in the stable log-softmax form
``log p = z - logsumexp(z)``. The loss value is the same (without ``log(0)``), and
the gradient reaching the layer below is exactly ``(softmax(z) - y) / N``.
``predict`` still returns probabilities.
"""

from __future__ import annotations

import numpy as np

from fastcnn.kernels._common import fit_scope
from fastcnn.nn import losses as _losses
from fastcnn.nn import metrics as _metrics
from fastcnn.nn.layers.base import (
    Layer,
    _all_layers,
    _normalize_dtype,
    assign_unique_names,
    normalize_shape,
)
from fastcnn.nn.layers.base import deserialize as _deserialize
from fastcnn.nn.layers.base import serialize as _serialize
from fastcnn.optim import optimizers
from fastcnn.train import loop as _training
from fastcnn.train import serialization

__all__ = ["Sequential", "load_model"]

_FUSABLE = (_losses.SparseCategoricalCrossentropy, _losses.CategoricalCrossentropy)


class Sequential:
    """A linear stack of layers.

    Parameters
    ----------
    layers : list of Layer, optional
    input_shape : tuple, optional
        Per-sample input shape ``(C, H, W)`` or ``(D,)``. Given, every added layer is
        built at once (so ``summary()`` works); otherwise the first ``fit``/``predict``
        builds the model from ``x.shape[1:]``.
    name : str, optional
    dtype : "float32" (default) or "float64" (gradient checks)
    """

    def __init__(self, layers=None, input_shape=None, name=None, dtype="float32"):
        self.name = name or "sequential"
        self.dtype = _normalize_dtype("Sequential", dtype)
        self.input_shape = (normalize_shape("Sequential", input_shape)
                            if input_shape is not None else None)
        self._layers: list[Layer] = []
        self.optimizer = None
        self.loss = None
        self._logits_loss = None
        self.compiled_metrics: list = []
        self.history = None
        self.stop_training = False       # a callback sets it to end fit early
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------ structure
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Append a layer (named ``"<type>_<k>"`` unless named; built if shapes are known)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: layer must be a fastcnn Layer; got "
                            f"{type(layer).__name__}.")
        assign_unique_names([layer], {sub.name for sub in _all_layers(self._layers)})
        if self.input_shape is not None:
            layer.build(self.output_shape, self.dtype)
        self._layers.append(layer)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise IndexError("Sequential.pop: the model has no layers.")
        return self._layers.pop()

    def build(self, input_shape) -> None:
        """Build every layer for per-sample ``input_shape`` (shapes flow layer to layer)."""
        self.input_shape = normalize_shape("Sequential", input_shape)
        shape = self.input_shape
        for layer in self._layers:
            layer.build(shape, self.dtype)
            shape = layer.output_shape

    @property
    def built(self) -> bool:
        return self.input_shape is not None and all(layer.built for layer in self._layers)

    @property
    def output_shape(self) -> tuple:
        return self._layers[-1].output_shape if self._layers else self.input_shape

    def _ensure_built(self, x) -> None:
        if not self.built:
            if not isinstance(x, np.ndarray) or x.ndim < 2:
                raise ValueError("Sequential: cannot infer the input shape; pass "
                                 "input_shape=... or a batch x of shape (N, ...).")
            self.build(x.shape[1:])

    # ------------------------------------------------------ forward/backward
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._ensure_built(x)
        for layer in self._layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Backward through every layer; returns ``dL/dx`` of the model's input, or
        None with ``need_dx=False`` (the first layer then skips computing it, as a
        training step does: the data needs no gradient)."""
        last = len(self._layers) - 1
        for i in range(last, -1, -1):
            dout = self._layers[i].backward(dout, need_dx=need_dx or i > 0)
        return dout

    @property
    def fused_softmax(self) -> bool:
        """True when training skips the final softmax and the loss takes logits."""
        return (isinstance(self.loss, _FUSABLE) and not self.loss.from_logits
                and bool(self._layers) and self._layers[-1].ends_with_softmax)

    def forward_for_loss(self, x, training=False):
        """What the compiled loss sees: logits if the softmax is fused, else ``forward``."""
        if not self.fused_softmax:
            return self.forward(x, training)
        self._ensure_built(x)
        for layer in self._layers[:-1]:
            x = layer.forward(x, training)
        return self._layers[-1].forward_logits(x, training)

    def backward_from_loss(self, dout, need_dx: bool = True):
        """Backward of :meth:`forward_for_loss`; ``need_dx`` as in :meth:`backward`."""
        if not self.fused_softmax:
            return self.backward(dout, need_dx)
        last = len(self._layers) - 1
        dout = self._layers[last].backward_logits(dout, need_dx=need_dx or last > 0)
        for i in range(last - 1, -1, -1):
            dout = self._layers[i].backward(dout, need_dx=need_dx or i > 0)
        return dout

    def parameters(self) -> list:
        return [p for layer in self._layers for p in layer.parameters()]

    def states(self) -> dict:
        out = {}
        for layer in self._layers:
            out.update(layer.states())
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def count_params(self) -> int:
        """All weights, trainable or not (moving statistics included), as Keras counts."""
        return sum(sum(layer.count_params()) for layer in self._layers)

    def summary(self, print_fn=print) -> None:
        """Print a Keras-style table: Layer (type) | Output Shape | Param #, and totals."""
        if not self.built:
            raise RuntimeError("Sequential.summary: the model is not built. Hint: pass "
                               "input_shape=... to Sequential or call model.build(shape).")
        longest = max((len(f"{l.name} ({type(l).__name__})") for l in self._layers), default=0)
        widths = (max(33, longest + 3), 26, 12)

        def row(*cells):
            return "".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

        lines = [f'Model: "{self.name}"', "_" * sum(widths),
                 row(" Layer (type)", "Output Shape", "Param #"), "=" * sum(widths)]
        trainable = frozen = 0
        for layer in self._layers:
            t, f = layer.count_params()
            trainable, frozen = trainable + t, frozen + f
            shape = "(None, " + ", ".join(map(str, layer.output_shape)) + ")"
            lines.append(row(f" {layer.name} ({type(layer).__name__})", shape, f"{t + f:,}"))
        lines += ["=" * sum(widths), f"Total params: {trainable + frozen:,}",
                  f"Trainable params: {trainable:,}", f"Non-trainable params: {frozen:,}",
                  "_" * sum(widths)]
        print_fn("\n".join(lines))

    # --------------------------------------------------------------- training
    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy",
                metrics=("accuracy",)) -> None:
        """Attach an optimizer, a loss and metrics (Keras strings or objects)."""
        self.optimizer = optimizers.get(optimizer)
        self.loss = _losses.get(loss)
        self.compiled_metrics = [_metrics.get(m) for m in (metrics or [])]
        # The fused form (see module docstring) uses the logits twin of the loss.
        self._logits_loss = (type(self.loss)(from_logits=True)
                             if isinstance(self.loss, _FUSABLE) else None)

    @property
    def compiled_loss(self):
        """The loss the training loop calls: the logits form when softmax is fused."""
        return self._logits_loss if self.fused_softmax else self.loss

    def _check_compiled(self, where: str) -> None:
        if self.optimizer is None:
            raise RuntimeError(f"Sequential.{where}: the model is not compiled. Hint: call "
                               f"model.compile(optimizer='adam', loss=...) first.")

    def fit(self, x, y, batch_size=32, epochs=1, validation_data=None, shuffle=True,
            verbose=1, seed=None, augment=None, callbacks=None, explosion_guard=True,
            progress=None, update_ratio_every=None):
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns a
        :class:`~fastcnn.training.History`.

        Parameters
        ----------
        x, y : arrays
            Inputs of the model's dtype; labels (or one-hot targets).
        batch_size, epochs : int
        validation_data : (x_val, y_val), optional
            Evaluated at the end of every epoch (``val_loss``, ``val_<metric>``).
        shuffle : bool
            A new order every epoch, drawn from the generator ``seed`` selects.
        verbose : 0, 1 or 2
            0 silent; 1 a progress bar (when stderr is a terminal) and one summary
            line per epoch; 2 only the summary line.
        seed : None, int or Generator
            Fixes shuffling and augmentation (see :func:`fastcnn.random.get_rng`).
        augment : None, str, or transform
            A :mod:`fastcnn.augment` transform or spec (``"flip,shift"``) applied to
            every training batch.
        callbacks : list of :class:`~fastcnn.callbacks.Callback`
        explosion_guard : True, False, "warn" or "raise"
            Stop when the loss becomes non-finite or exceeds 3x the first batch loss,
            naming the first layer that went non-finite (see :mod:`fastcnn.training`).
        progress : None or bool
            Force the progress bar on or off (None: automatic, as ``verbose`` says).
        update_ratio_every : int, optional
            Measure update/weight ratios every this many steps (default: about five
            times per epoch; 0 turns it off).

        Set ``model.stop_training = True`` from a callback to stop after the batch.
        """
        self._check_compiled("fit")
        self._ensure_built(x)
        with fit_scope():    # one thread runtime: BLAS on one thread, the kernels parallel
            return _training.fit(self, x, y, batch_size=batch_size, epochs=epochs,
                                 validation_data=validation_data, shuffle=shuffle,
                                 verbose=verbose, seed=seed, augment=augment,
                                 callbacks=callbacks, explosion_guard=explosion_guard,
                                 progress=progress, update_ratio_every=update_ratio_every)

    def evaluate(self, x, y, batch_size=32):
        """``[loss, *metrics]`` over ``(x, y)`` in inference mode (the loss alone
        when compiled without metrics)."""
        self._check_compiled("evaluate")
        self._ensure_built(x)
        with fit_scope():
            return _training.evaluate(self, x, y, batch_size=batch_size)

    def predict(self, x, batch_size=32, tta=None) -> np.ndarray:
        """Outputs for ``x`` in inference mode; ``tta=True`` (or a dict of
        :func:`fastcnn.augment.tta_views` options) averages over test-time views."""
        self._ensure_built(x)
        with fit_scope():
            return _training.predict(self, x, batch_size=batch_size, tta=tta)

    # ------------------------------------------------------------- config/IO
    def get_config(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape, "dtype": str(self.dtype),
                "layers": [_serialize(layer) for layer in self._layers]}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        config = dict(config)
        layers = [_deserialize(d) for d in config.pop("layers")]
        return cls(layers, **config)

    def save(self, path, include_optimizer: bool = True) -> None:
        """One ``.npz`` file: architecture (JSON), weights, moving statistics, compile
        settings and optimizer state; written atomically (temp file + rename)."""
        serialization.save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path) -> None:
        serialization.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights and moving statistics saved by ``save``/``save_weights`` into this
        (built) model of the same architecture; matched in layer order, shapes checked."""
        serialization.load_weights(self, path)

    def load_state_dict_torch(self, state_dict) -> None:
        """Copy a PyTorch ``state_dict`` into this model (see
        :func:`fastcnn.serialization.load_state_dict_torch`)."""
        serialization.load_state_dict_torch(self, state_dict)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self._layers)
        return f"Sequential(name={self.name!r}, input_shape={self.input_shape}, [\n  {inner}\n])"


def load_model(path) -> Sequential:
    """Rebuild a model saved by :meth:`Sequential.save` (architecture, weights,
    statistics, compile settings and optimizer state)."""
    header, arrays = serialization.read_model(path)
    with serialization.rebuilding(path, header, arrays):   # shapes checked before allocation
        model = Sequential.from_config(header["model"])
    serialization.restore_model(model, header, arrays, path)
    return model
