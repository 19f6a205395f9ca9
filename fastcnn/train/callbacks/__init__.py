"""Callbacks: code that ``fit`` runs at fixed points of training (Keras' hooks).

``model.fit(x, y, callbacks=[EarlyStopping(patience=3), ModelCheckpoint("best.npz")])``

The hooks, in the order ``fit`` calls them::

    on_train_begin(logs)
      on_epoch_begin(epoch, logs)            logs = {}
        on_batch_begin(batch, logs)          batch = index within the epoch
        on_batch_end(batch, logs)            logs = {"loss": batch loss, "size": n}
        ...
        on_test_begin(logs)                  only with validation_data, around it
        on_test_end(logs)
      on_epoch_end(epoch, logs)              logs = {"loss", metrics, "val_*", "lr", "time"}
    on_train_end(logs)                       logs = the last epoch's logs

A callback sees the model as ``self.model`` (set by ``fit`` through ``set_model``) and
can stop training by setting ``self.model.stop_training = True``: ``fit`` finishes the
current batch (or epoch, when set at epoch end) and returns. Every callback is
cheap to create and keeps no state between two ``fit`` calls except what it documents
(``EarlyStopping.best`` etc. are reset by ``on_train_begin``), so one instance can be
reused across runs of a hyper-parameter search.

``History`` (in :mod:`fastcnn.train.history`) is always added by ``fit``; the callbacks
here are the Keras set: :class:`EarlyStopping`, :class:`ModelCheckpoint`,
:class:`LearningRateScheduler`, :class:`ReduceLROnPlateau`, :class:`TerminateOnNaN`,
plus :class:`ParameterAveraging` (an exponential moving average of the weights) and
the loggers :class:`CSVLogger` and :class:`TensorBoard`.
"""

from fastcnn.train.callbacks.averaging import ParameterAveraging
from fastcnn.train.callbacks.base import Callback, CallbackList
from fastcnn.train.callbacks.checkpoint import ModelCheckpoint
from fastcnn.train.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from fastcnn.train.callbacks.loggers import CSVLogger, TensorBoard
from fastcnn.train.callbacks.stopping import EarlyStopping, TerminateOnNaN
from fastcnn.train.history import History

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN",
           "ParameterAveraging", "CSVLogger", "TensorBoard"]
