"""``Layer``: the base class of every layer, and the (de)serialization registry.

A layer is a function ``out = f(x; params)`` on a batch plus its vector-Jacobian
product. The contract every subclass keeps (Keras surface, PyTorch insides):

=========================  ====================================================
``build(input_shape)``     create the Parameters for a *per-sample* input shape
                           (no batch dim), e.g. ``(C, H, W)`` or ``(D,)``;
                           ``Sequential`` calls it with the inferred shape.
``forward(x, training)``   ``x`` is ``(N, *input_shape)``; remembers what
                           ``backward`` needs.
``backward(dout)``         returns ``dx`` and *accumulates* ``dL/dparam`` into
                           ``Parameter.grad`` (call ``zero_grad()`` between steps).
``parameters()``           the layer's :class:`~fastcnn.parameter.Parameter` objects.
``state``                  non-trainable arrays (batch norm's moving statistics).
``get_config()``           JSON-serialisable constructor arguments;
                           ``from_config(config) == cls(**config)``.
=========================  ====================================================

Subclasses implement ``_build``, ``call``, ``call_backward`` and, when the shape
changes, ``compute_output_shape``. The base class does the cheap checks (built?
right per-sample shape and dtype? backward after forward?) and runs the optional
fused activation (``Conv2D(..., activation="relu")``) after ``call``.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import re

import numpy as np

from fastcnn.common.keywords import init_keywords, unknown_keyword_error
from fastcnn.common.validation import FLOAT_DTYPES, _is_int
from fastcnn.nn.parameter import Parameter

__all__ = ["Layer", "serialize", "deserialize", "get_layer_class", "normalize_shape",
           "assign_unique_names", "checking_new_arrays"]

_REGISTRY: dict[str, type] = {}

# While a model is rebuilt from a file, every weight and state array a layer asks for
# is first shown to a check (``check(kind, full_name, shape)``, kind "weight" or
# "state") that raises if the file does not hold an array of that name and shape --
# *before* the array is allocated, so a config asking for Dense(units=10**12) is a
# ValueError, not a 262 TiB allocation. A context variable, so threads loading
# models concurrently do not see each other's checks.
_ARRAY_CHECK: contextvars.ContextVar = contextvars.ContextVar("fastcnn_array_check",
                                                              default=None)


@contextlib.contextmanager
def checking_new_arrays(check):
    """Within the block, ``add_weight``/``add_state`` call ``check(kind, name, shape)``
    before allocating (fastcnn.train.serialization uses it while loading)."""
    token = _ARRAY_CHECK.set(check)
    try:
        yield
    finally:
        _ARRAY_CHECK.reset(token)


def _check_new_array(kind: str, name: str, shape: tuple) -> None:
    check = _ARRAY_CHECK.get()
    if check is not None:
        check(kind, name, shape)


def _snake(name: str) -> str:
    """``"MaxPooling2D" -> "max_pooling2d"``, ``"ReLU" -> "re_lu"`` (Keras' rule)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def normalize_shape(where: str, shape) -> tuple[int, ...]:
    """A per-sample shape as a tuple of positive ints, or a ValueError."""
    if _is_int(shape):
        shape = (shape,)
    if (not isinstance(shape, (tuple, list)) or len(shape) == 0
            or not all(_is_int(s) and s > 0 for s in shape)):
        raise ValueError(
            f"{where}: input_shape must be a non-empty tuple of positive ints without the "
            f"batch dimension, e.g. (3, 32, 32) or (784,); got {shape!r}."
        )
    return tuple(int(s) for s in shape)


def _normalize_dtype(where: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{where}: dtype must be float32 or float64; got {dtype!r}.")
    return dt


class Layer:
    """Base class; see the module docstring for the contract.

    Parameters
    ----------
    name : str, optional
        Unique within a model; ``Sequential`` assigns ``"<type>_<k>"`` when omitted.
        Parameter names derive from it: ``"conv2d_1/kernel"``.
    trainable : bool
        False freezes the layer: its parameters become non-trainable (optimizers
        skip them, ``summary()`` counts them as non-trainable).
    input_shape : tuple, optional
        Keras' shortcut on a model's first layer (per-sample, in the model's data format).

    ``layer(t)`` on a symbolic tensor (``fastcnn.Input``) adds it to a functional graph;
    ``layer(x)`` on a NumPy batch builds it if needed and runs ``forward(x)``.
    """

    is_merge = False        # True for layers that take a list of inputs (Add, ...)
    # The data format of the model (set by the model): layers compute in NCHW whatever
    # it is; only shape arguments (Concatenate's axis, Reshape's target) are read in it.
    _data_format = "channels_first"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls
        # A subclass that overrides call_backward(dout) without the need_dx argument (a
        # user's own Dense, say) loses the inherited shortcut instead of a TypeError.
        own = cls.__dict__.get("call_backward")
        if own is not None and "need_dx" not in inspect.signature(own).parameters:
            cls.skips_input_grad = False

    def __init__(self, name: str | None = None, trainable: bool = True, input_shape=None,
                 **unknown):
        if unknown:
            raise unknown_keyword_error(type(self).__name__, next(iter(unknown)),
                                        init_keywords(type(self)))
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty str without "
                             f"'/'; got {name!r}.")
        self._name = name if name is not None else _snake(type(self).__name__)
        self._auto_named = name is None
        self._trainable = bool(trainable)
        self._params: dict[str, Parameter] = {}
        self.state: dict[str, np.ndarray] = {}
        self._activation: Layer | None = None
        self.built = False
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.dtype: np.dtype | None = None
        self._out_shape = None        # full (N, ...) shape of the last forward output
        self._declared_input_shape = (normalize_shape(type(self).__name__, input_shape)
                                      if input_shape is not None else None)
        self._in_graph = False        # True once called on a symbolic tensor

    def __call__(self, inputs, training: bool = False):
        """``layer(tensor)`` in a functional graph, or ``layer(x)`` on a NumPy batch."""
        first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
        # A SymbolicTensor adds the layer to its graph (duck typing: no import cycle).
        apply_layer = getattr(first, "apply_layer", None)
        if apply_layer is not None:
            return apply_layer(self, inputs)
        arrays = list(inputs) if self.is_merge else [inputs]
        if not all(isinstance(a, np.ndarray) and a.ndim >= 2 for a in arrays):
            raise TypeError(f"{type(self).__name__} '{self.name}': call it on a symbolic "
                            f"tensor (fastcnn.Input) or on a NumPy batch (N, ...); got "
                            f"{type(inputs).__name__}.")
        if not self.built:
            shapes = [a.shape[1:] for a in arrays]
            dtype = arrays[0].dtype if arrays[0].dtype in FLOAT_DTYPES else np.float32
            self.build(shapes if self.is_merge else shapes[0], dtype)
        return self.forward(inputs, training)

    # ----------------------------------------------------------------- identity
    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value
        self._auto_named = False
        for short, p in self._params.items():
            p.name = f"{value}/{short}"

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in self._params.values():
            p.trainable = self._trainable
        for sub in self.sublayers():
            sub.trainable = value

    def sublayers(self) -> list["Layer"]:
        """Layers owned by this one (Residual's branches); [] for plain layers."""
        return []

    # -------------------------------------------------------------------- build
    def add_weight(self, short_name: str, shape, initializer, dtype, regularizer=None,
                   rng=None) -> Parameter:
        """Create a Parameter ``"<layer name>/<short_name>"`` from an initializer."""
        _check_new_array("weight", f"{self.name}/{short_name}", tuple(shape))
        # rng=None lets a seeded initializer (HeNormal(seed=1)) use its own seed,
        # and an unseeded one the package-global generator (fastcnn.random.seed).
        data = initializer(tuple(shape), dtype=dtype, rng=rng)
        if data.dtype != dtype:
            data = data.astype(dtype)
        p = Parameter(np.ascontiguousarray(data), name=f"{self.name}/{short_name}",
                      trainable=self.trainable, regularizer=regularizer)
        self._params[short_name] = p
        return p

    def add_state(self, key: str, shape, fill_value: float) -> np.ndarray:
        """Create the non-trainable array ``state[key]`` (``np.full(shape, fill_value)``)."""
        _check_new_array("state", f"{self.name}/{key}", tuple(shape))
        self.state[key] = np.full(shape, fill_value, dtype=self.dtype)
        return self.state[key]

    def build(self, input_shape, dtype=np.float32) -> None:
        """Create parameters for per-sample ``input_shape``; a no-op if already built
        for the same shape and dtype."""
        where = f"{type(self).__name__} '{self.name}'"
        input_shape = normalize_shape(where, input_shape)
        dtype = _normalize_dtype(where, dtype)
        if self.built:
            if (input_shape, dtype) != (self.input_shape, self.dtype):
                raise ValueError(
                    f"{where}: already built for input shape {self.input_shape} "
                    f"({self.dtype}); got {input_shape} ({dtype}). Hint: create a new layer.")
            return
        output_shape = self.compute_output_shape(input_shape)  # validates the shape
        self.input_shape, self.dtype = input_shape, dtype
        self._build(input_shape)
        if self._activation is not None:
            self._activation.build(output_shape, dtype)
        self.output_shape = output_shape
        self.built = True

    def _build(self, input_shape: tuple) -> None:
        """Create Parameters (subclasses with weights override this)."""

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape (pure function)."""
        return tuple(input_shape)

    # ------------------------------------------------------------ forward/back
    def _check_input(self, x) -> None:
        if not self.built:
            raise RuntimeError(
                f"{type(self).__name__} '{self.name}' is used before it was built. Hint: "
                f"call layer.build(input_shape) (per-sample shape, e.g. (3, 32, 32)) or add "
                f"it to Sequential(..., input_shape=...).")
        if not isinstance(x, np.ndarray) or x.dtype != self.dtype:
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(
                f"{type(self).__name__} '{self.name}': x must be a numpy array of dtype "
                f"{self.dtype} (the layer's dtype); got {got}. Hint: x.astype(np.{self.dtype}).")
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': x must have shape (N, "
                f"{', '.join(map(str, self.input_shape))}); got x.shape={x.shape}.")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``out = activation(call(x))`` for a batch ``x`` of shape ``(N, *input_shape)``."""
        self._check_input(x)
        out = self.call(x, training)
        if self._activation is not None:
            # A fresh call() output is seen by no one else: the activation may
            # overwrite it (no second full-size array, no page faults). Not so when
            # call() hands back (a view of) its input, as Activation("relu") does.
            self._act_fused = not np.may_share_memory(out, x)
            out = (self._activation.forward_fused(out, training) if self._act_fused
                   else self._activation.forward(out, training))
        self._out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """``dx = dL/dx`` from ``dout = dL/dout``; accumulates parameter gradients.

        ``need_dx=False`` says nobody needs ``dx`` (the first layer of a training step:
        the data gets no gradient). Layers that can save work then (see
        :attr:`skips_input_grad`) do, and ``None`` is returned either way.
        """
        self._check_dout(dout)
        if self._activation is not None:
            dout = (self._activation.backward_fused(dout) if self._act_fused
                    else self._activation.backward(dout))
        return self._call_backward(dout, need_dx)

    def _call_backward(self, dout: np.ndarray, need_dx: bool) -> np.ndarray | None:
        if not need_dx and self.skips_input_grad:
            return self.call_backward(dout, need_dx=False)
        dx = self.call_backward(dout)
        return dx if need_dx else None

    # The fused-activation pair: what a layer with ``activation=...`` calls. ``x`` is
    # the owner's fresh ``call()`` output (nobody else holds it, so it may be
    # overwritten), and the returned gradient goes only to the owner's
    # ``call_backward`` (so it may live in a buffer reused across steps). The
    # default is the plain forward/backward; ReLU overrides both.
    def forward_fused(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.forward(x, training)

    def backward_fused(self, dout: np.ndarray) -> np.ndarray:
        return self.backward(dout)

    _act_fused = False

    #: True for layers whose ``call_backward(dout, need_dx=...)`` can skip computing
    #: the input gradient (Conv2D skips its dX GEMMs and col2im, Dense ``dout @ W^T``);
    #: the others take ``call_backward(dout)`` and ``backward`` drops the result.
    skips_input_grad = False

    def _check_dout(self, dout) -> None:
        if self._out_shape is None:
            raise RuntimeError(
                f"{type(self).__name__} '{self.name}'.backward: no cached forward pass. "
                f"Hint: call forward(x, training=True) first.")
        if not isinstance(dout, np.ndarray) or dout.shape != self._out_shape:
            got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
            raise ValueError(
                f"{type(self).__name__} '{self.name}'.backward: dout must have the shape of "
                f"the last forward output {self._out_shape}; got {got}.")

    @property
    def ends_with_softmax(self) -> bool:
        """True if this layer's last operation is a softmax (see ``forward_logits``): its
        fused activation is one (``Dense(10, activation="softmax")``). A Softmax layer
        answers True itself."""
        return self._activation is not None and self._activation.ends_with_softmax

    def forward_logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Like ``forward`` but stops before a final softmax (returns its input).

        ``Sequential`` uses this pair to fuse softmax with a cross-entropy loss.
        """
        self._check_input(x)
        out = self.call(x, training)
        self._out_shape = out.shape
        return out

    def backward_logits(self, dlogits: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Backward of :meth:`forward_logits`; ``need_dx`` as in :meth:`backward`."""
        self._check_dout(dlogits)
        return self._call_backward(dlogits, need_dx)

    def call(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement call(x, training)")

    def call_backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement call_backward(dout)")

    # ------------------------------------------------------------ parameters
    def parameters(self) -> list[Parameter]:
        """Own Parameters (definition order), then those of sublayers."""
        params = list(self._params.values())
        for sub in self.sublayers():
            params.extend(sub.parameters())
        return params

    def states(self) -> dict[str, np.ndarray]:
        """Non-trainable arrays of this layer and its sublayers, keyed ``"<layer>/<key>"``."""
        out = {f"{self.name}/{k}": v for k, v in self.state.items()}
        for sub in self.sublayers():
            out.update(sub.states())
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def count_params(self) -> tuple[int, int]:
        """``(trainable, non_trainable)`` element counts; moving statistics and frozen
        parameters are non-trainable (as in Keras)."""
        params = self.parameters()
        trainable = sum(p.size for p in params if p.trainable)
        frozen = sum(p.size for p in params if not p.trainable)
        return trainable, frozen + sum(a.size for a in self.states().values())

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        config = {"name": self.name, "trainable": self.trainable}
        if self._declared_input_shape is not None:
            config["input_shape"] = self._declared_input_shape
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def __repr__(self) -> str:
        config = self.get_config()
        defaults = {k: p.default for k, p in inspect.signature(type(self).__init__)
                    .parameters.items() if p.default is not inspect.Parameter.empty}
        def is_default(key, value):
            default = defaults.get(key, object())
            return value == default or value == (default, default)   # 1 == (1, 1)
        shown = [f"{k}={v!r}" for k, v in config.items()
                 if k not in ("name", "trainable", "input_shape") and not is_default(k, v)]
        if not self.trainable:
            shown.append("trainable=False")
        built = f", built for {self.input_shape}" if self.built else ""
        return f"{type(self).__name__}({', '.join(shown)}) '{self.name}'{built}"


def serialize(layer: Layer) -> dict:
    """``{"class_name": ..., "config": ...}`` (Keras' format)."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def get_layer_class(class_name: str) -> type:
    if class_name not in _REGISTRY:
        raise ValueError(f"deserialize: unknown layer class {class_name!r}; expected one of "
                         f"{sorted(_REGISTRY)}.")
    return _REGISTRY[class_name]


def deserialize(data: dict) -> Layer:
    """Inverse of :func:`serialize`."""
    if not isinstance(data, dict) or "class_name" not in data or "config" not in data:
        raise ValueError(f"deserialize: expected {{'class_name': ..., 'config': ...}}; "
                         f"got {data!r}.")
    return get_layer_class(data["class_name"]).from_config(dict(data["config"]))


def _all_layers(layers):
    for layer in layers:
        yield layer
        yield from _all_layers(layer.sublayers())


def assign_unique_names(layers, taken: set) -> None:
    """Give every auto-named layer (and sublayer) a name ``"<type>_<k>"`` not in
    ``taken`` (smallest k >= 1), and add all names to ``taken``. Explicit names are
    kept; a clash between explicit names is a ValueError."""
    for layer in _all_layers(layers):
        if layer._auto_named:
            base, k = _snake(type(layer).__name__), 1
            while f"{base}_{k}" in taken:
                k += 1
            layer.name = f"{base}_{k}"
            layer._auto_named = True
        elif layer.name in taken:
            raise ValueError(f"layer name {layer.name!r} is used twice; names must be unique "
                             f"within a model. Hint: pass a different name= or none.")
        taken.add(layer.name)
