"""``BatchNormalization`` (Ioffe & Szegedy 2015) with Keras' conventions."""

from __future__ import annotations

from fastcnn import kernels
from fastcnn.common.validation import check_float
from fastcnn.nn import initializers
from fastcnn.nn.layers.base import Layer

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """Normalize each feature (after ``Dense``: input ``(N, D)``) or each channel (after
    ``Conv2D``: input ``(N, C, H, W)``, statistics over N, H, W), then scale and shift.

    Training (``M`` = values per channel, ``N`` or ``N*H*W``)::

        mu = mean(x),  var = mean((x - mu)^2)         (biased, over the M values)
        xhat = (x - mu) / sqrt(var + epsilon);  out = gamma * xhat + beta
        moving = momentum * moving + (1 - momentum) * batch_stat

    Inference uses ``moving_mean``/``moving_variance`` instead of ``mu, var``.
    A frozen layer (``trainable=False``) always runs in inference mode (Keras does the
    same, which is what fine-tuning wants).

    Parameters
    ----------
    momentum : float in [0, 1]
        Keras' default 0.99 (PyTorch's ``momentum=0.1`` is Keras' 0.9).
    epsilon : float > 0
        Keras' default 1e-3 (PyTorch: 1e-5).
    axis : None or int
        Keras' argument: the axis that keeps its own statistics, counted with the batch
        dimension in the model's data format. fastcnn always normalizes per channel
        (images) or per feature (vectors); None (the default) means that axis in any
        data format. Given, ``axis`` must name it: -1 or 3 for channels-last images,
        1 (or -3) for channels-first, -1 or 1 for vectors; any other axis is a
        ValueError at build time, never a silent per-channel norm. (Keras' default is
        -1, which is the width of channels-first images: Keras users write ``axis=1``
        there, which works here too.)

    Shape
    -----
    Output shape = input shape: ``(N, D)`` or ``(N, C, H, W)``.

    Attributes
    ----------
    gamma, beta : trainable Parameters ``(C,)`` (init 1 and 0)
    state["moving_mean"], state["moving_variance"] : non-trainable ``(C,)`` (init 0 and 1)

    Notes
    -----
    Backward (training). With ``s = 1/sqrt(var + eps)`` and sums over a channel's M values::

        dbeta = sum(dout);   dgamma = sum(dout * xhat);   dxhat = gamma * dout
        dvar  = sum(dxhat * (x - mu)) * (-s^3 / 2)          = -gamma * dgamma * s^2 / 2
        dmu   = -s * sum(dxhat) + dvar * (-2/M) sum(x - mu) = -gamma * s * dbeta
        dx    = s * dxhat + dvar * 2 (x - mu) / M + dmu / M
              = gamma * s / M * (M * dout - dbeta - xhat * dgamma)

    In inference mode ``mu, var`` are constants and ``dx = gamma * s * dout``.
    """

    def __init__(self, axis=None, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool)):
            raise ValueError(f"BatchNormalization: axis must be None or an int; got {axis!r}.")
        self.axis = axis
        self.momentum = check_float("BatchNormalization", "momentum", momentum, 0.0, 1.0)
        self.epsilon = check_float("BatchNormalization", "epsilon", epsilon, 0.0, None,
                                   low_inclusive=False)

    def compute_output_shape(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ValueError(f"BatchNormalization '{self.name}': expects a per-sample shape "
                             f"(D,) or (C, H, W); got {tuple(input_shape)}.")
        self._check_axis(len(input_shape))
        return tuple(input_shape)

    def _check_axis(self, rank: int) -> None:
        """``axis`` (Keras' count, batch included) must be the channel/feature axis."""
        if self.axis is None:
            return
        if rank == 1:
            allowed = (-1, 1)
        elif self._data_format == "channels_last":
            allowed = (-1, 3)
        else:
            allowed = (1, -3)
        if self.axis not in allowed:
            raise ValueError(
                f"BatchNormalization '{self.name}': axis={self.axis} is not the "
                f"{'feature' if rank == 1 else 'channel'} axis of this "
                f"{'model' if rank == 1 else self._data_format + ' model'} (use one of "
                f"{allowed}); fastcnn normalizes per channel or per feature only.")

    def _build(self, input_shape):
        c = input_shape[0]
        self.gamma = self.add_weight("gamma", (c,), initializers.get("ones"), self.dtype)
        self.beta = self.add_weight("beta", (c,), initializers.get("zeros"), self.dtype)
        self.add_state("moving_mean", (c,), 0.0)
        self.add_state("moving_variance", (c,), 1.0)

    def call(self, x, training):
        out, self._cache = kernels.batchnorm_forward(
            x, self.gamma.data, self.beta.data, self.state["moving_mean"],
            self.state["moving_variance"], training=bool(training and self.trainable),
            momentum=self.momentum, eps=self.epsilon)
        return out

    def call_backward(self, dout):
        dx, dgamma, dbeta = kernels.batchnorm_backward(dout, self._cache)
        self.gamma.grad += dgamma
        self.beta.grad += dbeta
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon}
