"""``BaseModel``: what ``Sequential`` and the functional ``Model`` share — one graph
runner, one compile, one training loop (:mod:`fastcnn.train.loop`), one save/load path.

A subclass provides ``self._graph`` (a :class:`~fastcnn.train.graph.Graph`, None until
built), ``layers``, ``input_shape`` (per-sample, in the model's data format),
``get_config``/``from_config``. Everything below works on the graph.

Softmax + cross-entropy fusion: when the output layer ends in a softmax (``Softmax()``,
``Activation("softmax")`` or ``Dense(..., activation="softmax")``) and the loss is a
(sparse) categorical cross-entropy on probabilities, training and ``evaluate`` skip
that softmax and apply the loss to the logits ``z`` in the stable log-softmax form
``log p = z - logsumexp(z)``. The loss value is the same (without ``log(0)``), and
the gradient reaching the layer below is exactly ``(softmax(z) - y) / N``.
``predict`` still returns probabilities.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.keywords import closest, suggest_keywords
from fastcnn.nn import losses as _losses
from fastcnn.nn import metrics as _metrics
from fastcnn.optim import optimizers
from fastcnn.train import edge, serialization
from fastcnn.train.fitting import FitMixin

__all__ = ["BaseModel"]

_FUSABLE = (_losses.SparseCategoricalCrossentropy, _losses.CategoricalCrossentropy)


class BaseModel(FitMixin):
    """The shared model surface (see the module docstring)."""

    _graph = None
    optimizer = None
    loss = None
    _logits_loss = None
    history = None
    stop_training = False            # a callback sets it to end fit early

    def _init_training_state(self) -> None:
        self.optimizer = None
        self.loss = None
        self._logits_loss = None
        self.compiled_metrics: list = []
        self.history = None
        self.stop_training = False

    # ------------------------------------------------------------ structure
    @property
    def built(self) -> bool:
        return self._graph is not None

    @property
    def graph(self):
        """The :class:`~fastcnn.train.graph.Graph` the model runs (None until built):
        ``graph.nodes`` (node 0 the InputLayer) and ``graph.inbound`` (what each reads),
        for tools that walk the model, such as the ONNX and PyTorch exports."""
        return self._graph

    @property
    def output_shape(self) -> tuple:
        """Per-sample output shape in NCHW order (what the layers compute)."""
        return self._graph.nodes[-1].output_shape if self.built else None

    def _ensure_built(self, x) -> None:
        """Build from a batch (NCHW, already prepared) when the shape is not known yet."""

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at position ``index`` of ``model.layers``."""
        layers = self.layers
        if (name is None) == (index is None):
            raise ValueError(f"{type(self).__name__}.get_layer: give exactly one of name= "
                             f"and index=; got name={name!r}, index={index!r}.")
        if index is not None:
            if not isinstance(index, int) or not -len(layers) <= index < len(layers):
                raise ValueError(f"{type(self).__name__}.get_layer: index must be an int in "
                                 f"[-{len(layers)}, {len(layers)}); got {index!r}.")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        guess = closest(name, [layer.name for layer in layers])
        raise ValueError(f"{type(self).__name__}.get_layer: no layer named {name!r}"
                         + (f"; did you mean {guess!r}?" if guess else "")
                         + f" Layers: {[layer.name for layer in layers]}.")

    def parameters(self) -> list:
        if self.built:
            return self._graph.parameters()
        return [p for layer in self.layers for p in layer.parameters()]

    def states(self) -> dict:
        out = {}
        for layer in (self._graph.nodes if self.built else self.layers):
            out.update(layer.states())
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def count_params(self) -> int:
        """All weights, trainable or not (moving statistics included), as Keras counts."""
        return sum(sum(layer.count_params()) for layer in self.layers)

    def get_weights(self) -> list:
        """Copies of every weight array, layer by layer: parameters, then moving
        statistics (Keras' order: batch norm gives gamma, beta, mean, variance)."""
        return [a.copy() for a in self._weight_targets()]

    def set_weights(self, weights) -> None:
        """Copy a list like :meth:`get_weights`' into the model (shapes checked first)."""
        targets = self._weight_targets()
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"{type(self).__name__}.set_weights: expected {len(targets)} "
                             f"arrays (see get_weights()); got {len(weights)}.")
        arrays = [np.asarray(w) for w in weights]
        for i, (target, value) in enumerate(zip(targets, arrays)):
            if target.shape != value.shape:
                raise ValueError(f"{type(self).__name__}.set_weights: array {i} must have "
                                 f"shape {target.shape}; got {value.shape}.")
        for target, value in zip(targets, arrays):
            target[...] = value                 # in place: optimizers hold these arrays

    def _weight_targets(self) -> list:
        if not self.built:
            raise RuntimeError(f"{type(self).__name__}: the model is not built, so it has no "
                               f"weights yet. Hint: pass input_shape=... or call build().")
        out = []
        for layer in self.layers:
            out += [p.data for p in layer.parameters()] + list(layer.states().values())
        return out

    # ------------------------------------------------------ forward/backward
    def forward(self, x: np.ndarray, training: bool = False, observe=None) -> np.ndarray:
        """Output for an NCHW batch of the model's dtype (no edge conversion)."""
        self._ensure_built(x)
        return self._graph.forward(x, training, observe=observe)

    def backward(self, dout: np.ndarray, need_dx: bool = True, observe=None):
        """Backward through the graph; returns ``dL/dx`` of the model's input, or None
        with ``need_dx=False`` (the first layers then skip computing it, as a training
        step does: the data needs no gradient)."""
        return self._graph.backward(dout, need_dx, observe=observe)

    @property
    def fused_softmax(self) -> bool:
        """True when training skips the final softmax and the loss takes logits."""
        return (isinstance(self.loss, _FUSABLE) and not self.loss.from_logits
                and self.built and self._graph.nodes[-1].ends_with_softmax)

    def forward_for_loss(self, x, training=False, observe=None):
        """What the compiled loss sees: logits if the softmax is fused, else ``forward``."""
        self._ensure_built(x)
        return self._graph.forward(x, training, logits=self.fused_softmax, observe=observe)

    def backward_from_loss(self, dout, need_dx: bool = True, observe=None):
        """Backward of :meth:`forward_for_loss`; ``need_dx`` as in :meth:`backward`."""
        return self._graph.backward(dout, need_dx, logits=self.fused_softmax, observe=observe)

    # --------------------------------------------------------------- compile
    @suggest_keywords
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
            raise RuntimeError(f"{type(self).__name__}.{where}: the model is not compiled. "
                               f"Hint: call model.compile(optimizer='adam', loss=...) first.")

    # ------------------------------------------------------------- config/IO
    def save(self, path, include_optimizer: bool = True) -> None:
        """One ``.npz`` file: architecture (JSON), weights, moving statistics, compile
        settings and optimizer state; written atomically (temp file + rename).
        ``fastcnn.load_model`` rebuilds a Sequential or a functional Model."""
        serialization.save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path) -> None:
        serialization.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights and moving statistics saved by ``save``/``save_weights`` into this
        (built) model of the same architecture; matched in layer order, shapes checked."""
        serialization.load_weights(self, path)

    def load_state_dict_torch(self, state_dict) -> None:
        """Copy a PyTorch ``state_dict`` into this model (see
        :func:`fastcnn.train.serialization.load_state_dict_torch`)."""
        serialization.load_state_dict_torch(self, state_dict)

    def _display_shape(self, shape) -> str:
        """``(None, ...)`` in the model's data format, as Keras prints it."""
        return "(None, " + ", ".join(map(str, edge.external_shape(self, shape))) + ")"
