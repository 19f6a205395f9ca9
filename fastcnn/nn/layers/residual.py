"""``Residual``: ``out = main(x) + shortcut(x)`` (He et al. 2016)."""

from __future__ import annotations

from fastcnn.nn.layers.base import Layer, assign_unique_names, deserialize, serialize

__all__ = ["Residual"]


class Residual(Layer):
    """A residual block: ``out = main(x) + shortcut(x)``.

    The identity shortcut lets gradients flow unchanged to earlier layers:
    ``dx = dmain(dout) + dshortcut(dout)`` (with the identity, ``+ dout``). Put the
    activation that ResNet applies after the sum as the next layer (``ReLU()``).

    Parameters
    ----------
    main : list of layers, or a ``Sequential`` (its layers are taken)
        The residual branch ``F``; its output shape must equal the shortcut's.
    shortcut : Layer or None
        None: identity. Otherwise e.g. ``Conv2D(F, 1, strides=2)`` to match a branch that
        changes the channel count or downsamples.

    Shape
    -----
    Input ``(N, *S)``; output = the main branch's output shape.
    """

    def __init__(self, main, shortcut=None, **kwargs):
        super().__init__(**kwargs)
        layers = list(main.layers) if hasattr(main, "layers") else main
        if (not isinstance(layers, (list, tuple)) or not layers
                or not all(isinstance(layer, Layer) for layer in layers)):
            raise TypeError(f"Residual: main must be a non-empty list of layers or a Sequential; "
                            f"got {main!r}.")
        if shortcut is not None and not isinstance(shortcut, Layer):
            raise TypeError(f"Residual: shortcut must be None (identity) or a layer; "
                            f"got {shortcut!r}.")
        self.main = list(layers)
        self.shortcut = shortcut
        assign_unique_names(self.sublayers(), set())

    def sublayers(self):
        return self.main + ([self.shortcut] if self.shortcut is not None else [])

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.main:
            shape = layer.compute_output_shape(shape)
        short = input_shape if self.shortcut is None else self.shortcut.compute_output_shape(
            input_shape)
        if tuple(short) != shape:
            raise ValueError(
                f"Residual '{self.name}': the main branch maps {tuple(input_shape)} to {shape} "
                f"but the shortcut gives {tuple(short)}; they must match to be added. Hint: "
                f"use a shortcut such as Conv2D({shape[0]}, 1, strides=...).")
        return shape

    def _build(self, input_shape):
        shape = input_shape
        for layer in self.main:
            layer.build(shape, self.dtype)
            shape = layer.output_shape
        if self.shortcut is not None:
            self.shortcut.build(input_shape, self.dtype)

    def call(self, x, training):
        h = x
        for layer in self.main:
            h = layer.forward(h, training)
        return h + (x if self.shortcut is None else self.shortcut.forward(x, training))

    def call_backward(self, dout):
        d = dout
        for layer in reversed(self.main):
            d = layer.backward(d)
        return d + (dout if self.shortcut is None else self.shortcut.backward(dout))

    def get_config(self):
        return {**super().get_config(), "main": [serialize(layer) for layer in self.main],
                "shortcut": None if self.shortcut is None else serialize(self.shortcut)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["main"] = [deserialize(d) for d in config["main"]]
        if config.get("shortcut") is not None:
            config["shortcut"] = deserialize(config["shortcut"])
        return cls(**config)

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.main)
        return f"Residual(main=[{inner}], shortcut={self.shortcut!r}) '{self.name}'"
