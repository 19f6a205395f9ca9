"""fastcnn: a fast, readable, trustworthy convolutional network engine.

Hot kernels (im2col convolution, max pooling, batch normalization) run as
compiled C through Cython, with Numba and NumPy-reference fallbacks that give
the same results; see :mod:`fastcnn.kernels` and :mod:`fastcnn.backend`.
"""

from . import kernels
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
from .exceptions import BackendUnavailableError, FastCNNWarning

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "kernels",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
    "get_num_threads",
    "set_num_threads",
    "use_num_threads",
    "show_config",
    "BackendUnavailableError",
    "FastCNNWarning",
]
