"""fastcnn: a fast, readable, trustworthy convolutional network engine.

Hot kernels (im2col convolution, max pooling, batch normalization) run as compiled C
through Cython, with Numba and NumPy-reference fallbacks that give the same results
(:mod:`fastcnn.kernels`). Above them: the network pieces (:mod:`fastcnn.nn`: layers,
initializers, losses, ...), optimizers and schedules (:mod:`fastcnn.optim`), models and
the training loop (:mod:`fastcnn.train`), data (:mod:`fastcnn.data`), ready-made models
(:mod:`fastcnn.zoo`) and tools (:mod:`fastcnn.tools`). docs/architecture.md is the map.

Tool modules (``fastcnn.plot`` with matplotlib, ``diagnostics``, ``gradcheck``,
``testing``, ...) are imported on first use, to keep ``import fastcnn`` fast. The flat
module names of fastcnn 0.1 (``fastcnn.model``, ``fastcnn.backend``, ...) still import:
see :mod:`fastcnn._compat`.
"""

import importlib
import os
import warnings

from fastcnn import _compat
from fastcnn import kernels
from fastcnn import zoo
from fastcnn import zoo as models
from fastcnn.common import random
from fastcnn.common.exceptions import BackendUnavailableError, FastCNNWarning
from fastcnn.common.random import seed
from fastcnn.common.version import __version__
from fastcnn.data import augment, datasets, preprocessing
from fastcnn.data.datasets import DatasetNotFoundError
from fastcnn.data.labels import to_categorical
from fastcnn.data.datasets import load as load_dataset
from fastcnn.kernels import _diagnose
from fastcnn.kernels._dispatch import (
    available_backends,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    use_backend,
    use_num_threads,
)
from fastcnn.nn import initializers, layers, losses, metrics, regularizers
from fastcnn.common.data_format import image_data_format, set_image_data_format
from fastcnn.nn.layers import (
    ELU,
    Add,
    Concatenate,
    Input,
    Multiply,
    Reshape,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LeakyReLU,
    Maxout,
    MaxPooling2D,
    PReLU,
    ReLU,
    Residual,
    SeparableConv2D,
    Sigmoid,
    Softmax,
    Tanh,
)
from fastcnn.optim import optimizers, schedules
from fastcnn.optim.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Nadam, RMSprop
from fastcnn.tools.config import show_config
from fastcnn.train import callbacks
from fastcnn.train.loop import History, TrainingDivergedError
from fastcnn.train.functional import Model
from fastcnn.train.model import Sequential, load_model

_compat.install()

# Running from a clone's root imports this source folder, not the installed package; an
# install without a C compiler has no extension and pip hid the build's warning: say so
# (once, here) rather than run slowly.
_import_problem = _diagnose.import_problem(os.path.dirname(os.path.abspath(__file__)))
if _import_problem is not None:
    warnings.warn(_import_problem, FastCNNWarning, stacklevel=2)

#: tool modules imported on first attribute access: name -> module
_LAZY_MODULES = {
    "plot": "fastcnn.tools.plot",
    "diagnostics": "fastcnn.tools.diagnostics",
    "gradcheck": "fastcnn.tools.gradcheck",
    "testing": "fastcnn.tools.testing",
    "verify": "fastcnn.tools.verify",
    "bench": "fastcnn.tools.bench",
    "config": "fastcnn.tools.config",
    "tuning": "fastcnn.tuning",
    "interop": "fastcnn.interop",
}


def __getattr__(name):
    """``fastcnn.plot`` & co.: import a tool module (or an old module path) on first use."""
    target = _LAZY_MODULES.get(name) or _compat.OLD_PATHS.get(f"fastcnn.{name}")
    if target is None:
        raise AttributeError(f"module 'fastcnn' has no attribute {name!r}")
    module = importlib.import_module(target)
    globals()[name] = module
    return module


__all__ = [
    "__version__",
    # kernels and backends
    "kernels", "available_backends", "get_backend", "set_backend", "use_backend",
    "get_num_threads", "set_num_threads", "use_num_threads", "show_config",
    "BackendUnavailableError", "FastCNNWarning",
    # modules
    "augment", "callbacks", "datasets", "diagnostics", "models", "zoo", "gradcheck",
    "initializers", "layers", "losses", "metrics", "optimizers", "preprocessing", "random",
    "regularizers", "schedules", "plot", "testing", "tuning", "interop",
    # models and training
    "Sequential", "Model", "Input", "to_categorical", "load_model", "image_data_format",
    "set_image_data_format", "History", "TrainingDivergedError", "seed", "load_dataset", "DatasetNotFoundError",
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Nadam",
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dense", "Flatten", "Dropout",
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Sigmoid",
    "Tanh", "Softmax", "Maxout", "Residual", "Reshape", "Add", "Concatenate", "Multiply",
]
