"""Model ensembles and checkpoint averaging: the course's "small boost" at test time.

* :class:`Ensemble`: train several independent models (the top-k trials of a search,
  or checkpoints of one run), and at test time average their predicted
  probabilities. Their errors are partly independent, so the average is usually a
  little more accurate than the best member (a few tenths of a percent to ~2%).
* :func:`average_checkpoints`: one model whose weights are the mean of several
  checkpoints of the *same* run (e.g. the last few epochs): it costs no more than
  one model at test time. This is the offline version of the running average that
  :class:`fastcnn.callbacks.ParameterAveraging` keeps during training
  (``avg <- d * avg + (1 - d) * w`` after every step); averaging only makes sense for
  weights on one trajectory, never for independently trained models (their hidden
  units are in different orders).
"""

from __future__ import annotations

import os

import numpy as np

from fastcnn.train.model import load_model

__all__ = ["Ensemble", "average_checkpoints"]

METHODS = ("mean_prob", "vote")


class Ensemble:
    """Average the predictions of several trained models.

    Parameters
    ----------
    models : list of compiled models
        Same input and output shapes (e.g. ``SearchResults.ensemble(k)``'s top-k).
    method : "mean_prob" (default) or "vote"
        ``"mean_prob"``: ``p(x) = mean_m p_m(x)``, the models' probabilities averaged.
        ``"vote"``: each model votes for its argmax; ``p(x)[k]`` is the fraction of
        votes for class k (ties go to the lower class index under argmax).

    ``predict`` returns ``(N, K)`` probabilities; ``evaluate`` applies the first
    model's loss and metrics to them.
    """

    def __init__(self, models, method: str = "mean_prob"):
        if isinstance(models, (str, bytes)) or not hasattr(models, "__iter__"):
            raise TypeError(f"Ensemble: models must be a list of trained models; got "
                            f"{type(models).__name__}.")
        models = list(models)
        if not models:
            raise ValueError("Ensemble: models must be a non-empty list of trained models; "
                             "got an empty list.")
        for i, model in enumerate(models):
            if not callable(getattr(model, "predict", None)):
                raise TypeError(f"Ensemble: models[{i}] must be a model with predict(); got "
                                f"{type(model).__name__}.")
        if method not in METHODS:
            raise ValueError(f"Ensemble: method must be one of {METHODS}; got {method!r}.")
        self.models = models
        self.method = method

    @classmethod
    def from_checkpoints(cls, paths, method: str = "mean_prob") -> "Ensemble":
        """An ensemble of the models saved at ``paths`` (``model.save`` files)."""
        return cls([load_model(os.fspath(p)) for p in _check_paths("Ensemble.from_checkpoints",
                                                                    paths)], method=method)

    def __len__(self):
        return len(self.models)

    def __repr__(self):
        return f"Ensemble({len(self.models)} models, method={self.method!r})"

    def predict(self, x, batch_size: int = 32, tta=None) -> np.ndarray:
        """``(N, K)`` ensemble probabilities; ``tta`` is passed to every model's
        ``predict`` (test-time augmentation inside each member)."""
        outputs = [m.predict(x, batch_size=batch_size, tta=tta) for m in self.models]
        shapes = {o.shape for o in outputs}
        if len(shapes) != 1:
            raise ValueError(f"Ensemble.predict: the models' outputs must share one shape; "
                             f"got {sorted(shapes)}.")
        if self.method == "mean_prob":
            # mean in float64: the sum of M float32 probability arrays, divided by M
            return np.mean(outputs, axis=0, dtype=np.float64).astype(outputs[0].dtype)
        votes = np.zeros_like(outputs[0])
        rows = np.arange(len(votes))
        for out in outputs:
            votes[rows, out.argmax(axis=1)] += 1
        return votes / len(outputs)

    def evaluate(self, x, y, batch_size: int = 32, tta=None):
        """``[loss, *metrics]`` of the ensemble's probabilities, with the first model's
        compiled loss and metrics (as ``model.evaluate`` returns them)."""
        first = self.models[0]
        if getattr(first, "loss", None) is None:
            raise RuntimeError("Ensemble.evaluate: the first model is not compiled. Hint: "
                               "model.compile(...) (a loaded model keeps its settings).")
        probs = self.predict(x, batch_size=batch_size, tta=tta)
        y = np.asarray(y)
        values = [float(first.loss.forward(probs, y))]
        values += [float(metric(probs, y)) for _, metric in first.compiled_metrics]
        return values if len(values) > 1 else values[0]


def _check_paths(where: str, paths) -> list:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"{where}: paths must be a list of model files; got one path "
                        f"{paths!r}. Hint: wrap it in a list.")
    paths = list(paths)
    if not paths:
        raise ValueError(f"{where}: paths must name at least one model file; got [].")
    return paths


def average_checkpoints(paths):
    """One model whose weights are the element-wise mean of the checkpoints' weights.

    ``w = (1/M) sum_m w_m`` for every parameter and every moving statistic (batch
    norm's running mean/var), computed in float64. The checkpoints must be of one
    architecture (``model.get_config()`` equal), normally saved by one run (e.g.
    ``ModelCheckpoint("ckpt-{epoch}.npz")``). The returned model is the first
    checkpoint's (compile settings and optimizer state included) with the averaged
    weights.
    """
    paths = _check_paths("average_checkpoints", paths)
    models = [load_model(os.fspath(p)) for p in paths]
    base = models[0]
    for path, model in zip(paths[1:], models[1:]):
        if model.get_config() != base.get_config():
            raise ValueError(f"average_checkpoints: {os.fspath(path)!r} holds another "
                             f"architecture than {os.fspath(paths[0])!r}; only checkpoints of "
                             f"one model can be averaged. Hint: Ensemble.from_checkpoints "
                             f"averages predictions of different models instead.")
    targets = [p.data for p in base.parameters()] + list(base.states().values())
    sources = [[p.data for p in m.parameters()] + list(m.states().values()) for m in models]
    for i, target in enumerate(targets):
        mean = np.mean([weights[i] for weights in sources], axis=0, dtype=np.float64)
        target[...] = mean                      # in place: the optimizer holds these arrays
    return base
