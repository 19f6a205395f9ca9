"""What ``fit`` returns: the per-epoch record of a training run (Keras' ``History``)."""

from __future__ import annotations

__all__ = ["History"]


class History:
    """What ``fit`` returns: ``history.history["loss"][epoch]`` etc. (Keras' shape).

    Attributes
    ----------
    history : dict[str, list[float]]
        Per-epoch values: ``loss``, each metric, ``val_*`` with validation data, and
        ``lr`` (the learning rate at the start of the epoch).
    epoch : list[int]
        Epoch indices (0-based).
    params : dict
        ``batch_size``, ``epochs``, ``steps`` (mini-batches per epoch), ``samples``.
    epoch_times : list[float]
        Wall-clock seconds per epoch (training + validation).
    update_ratios : dict[str, list[float]]
        Per trainable parameter, the median ``||lr * update|| / ||w||`` of each epoch.
    diverged : dict or None
        Set when the explosion guard stopped training: ``epoch``, ``batch``, ``loss``,
        ``initial_loss``, ``reason``, ``layer``, ``kind`` (``"weights"``,
        ``"activations"``, ``"gradients"`` or ``None`` when everything is still finite),
        ``detail`` and ``message``.
    """

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})
        self.epoch_times: list[float] = []
        self.update_ratios: dict[str, list[float]] = {}
        self.diverged: dict | None = None

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def to_dict(self) -> dict:
        """JSON-ready: ``{"history", "epoch", "params", "epoch_times", "update_ratios",
        "diverged"}``."""
        return {"history": self.history, "epoch": self.epoch, "params": self.params,
                "epoch_times": self.epoch_times, "update_ratios": self.update_ratios,
                "diverged": self.diverged}

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items()}
        flag = ", diverged" if self.diverged else ""
        return f"History(epochs={len(self.epoch)}, last={last}{flag})"
