"""fastcnn: a fast, readable, trustworthy convolutional network engine.

Hot kernels (im2col convolution, max pooling, batch normalization) run as
compiled C through Cython, with Numba and NumPy-reference fallbacks that give
the same results; see :mod:`fastcnn.kernels` and :mod:`fastcnn.backend`.
Above them: Keras-like layers (:mod:`fastcnn.layers`), :class:`Sequential`
models, optimizers, schedules, initializers, data sets and augmentation.

``fastcnn.plot`` (matplotlib) is imported on first use, to keep ``import fastcnn`` fast.
"""

from . import (
    augment,
    callbacks,
    datasets,
    diagnostics,
    gradcheck,
    initializers,
    kernels,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    preprocessing,
    random,
    regularizers,
    schedules,
)
from .backend import (
    available_backends,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    use_backend,
    use_num_threads,
)
from .config import show_config
from .datasets import DatasetNotFoundError
from .datasets import load as load_dataset
from .exceptions import BackendUnavailableError, FastCNNWarning
from .layers import (
    ELU,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    Maxout,
    MaxPooling2D,
    PReLU,
    ReLU,
    Residual,
    Sigmoid,
    Softmax,
    Tanh,
)
from .model import Sequential, load_model
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop
from .random import seed
from .training import History, TrainingDivergedError

__version__ = "0.1.0"

_LAZY_MODULES = ("plot",)


def __getattr__(name):
    """Import heavy optional modules (matplotlib behind ``fastcnn.plot``) on first use."""
    if name in _LAZY_MODULES:
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fastcnn' has no attribute {name!r}")


__all__ = [
    "__version__",
    # kernels and backends
    "kernels", "available_backends", "get_backend", "set_backend", "use_backend",
    "get_num_threads", "set_num_threads", "use_num_threads", "show_config",
    "BackendUnavailableError", "FastCNNWarning",
    # modules
    "augment", "callbacks", "datasets", "diagnostics", "models", "gradcheck", "initializers", "layers", "losses", "metrics",
    "optimizers", "preprocessing", "random", "regularizers", "schedules", "plot",
    # models and training
    "Sequential", "load_model", "History", "TrainingDivergedError", "seed", "load_dataset", "DatasetNotFoundError",
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta",
    "Conv2D", "MaxPooling2D", "AveragePooling2D", "Dense", "Flatten", "Dropout",
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Sigmoid",
    "Tanh", "Softmax", "Maxout", "Residual",
]
