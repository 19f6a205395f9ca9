"""``fastcnn.show_config()``: what this installation can do."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
from threadpoolctl import threadpool_info

from fastcnn.common.version import __version__
from fastcnn.kernels import _diagnose
from fastcnn.kernels import _dispatch as _backend

__all__ = ["show_config", "config_info"]

#: the imported fastcnn package folder (installed, or a source tree)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # fastcnn/


def _blas_info() -> list[str]:
    lines = []
    for pool in threadpool_info():
        lines.append(f"{pool.get('internal_api')} {pool.get('version')} "
                     f"({pool.get('user_api')}, {pool.get('num_threads')} threads, "
                     f"{pool.get('filepath')})")
    return lines or ["(no BLAS/OpenMP thread pools found)"]


def config_info() -> dict:
    """The facts :func:`show_config` prints, as a dict."""

    info = {
        "fastcnn": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "backends": {},
        "active_backend": _backend.get_backend(),
        "num_threads": _backend.get_num_threads(),
    }
    for name in _backend.BACKENDS:
        if _backend.is_available(name):
            module = _backend.backend_module(name)
            details = getattr(module, "backend_info", lambda: {})()
            info["backends"][name] = {"available": True, **details}
        else:
            error = _backend.unavailable_reason(name)
            reason, fix = _diagnose.missing_backend_advice(name, error, _PACKAGE_DIR)
            info["backends"][name] = {"available": False, "reason": reason, "fix": fix,
                                      "error": error}
    # Import BLAS info after the backends so their libraries are loaded and listed.
    info["blas"] = _blas_info()
    return info


def show_config() -> None:
    """Print the backends found (and, for a missing one, why and how to get it), the
    active backend, thread count, and the BLAS libraries in use."""
    info = config_info()
    print(f"fastcnn {info['fastcnn']}  (Python {info['python']}, NumPy {info['numpy']}, "
          f"{info['platform']})")
    print(f"active backend: {info['active_backend']}    threads: {info['num_threads']}")
    print("backends:")
    for name, details in info["backends"].items():
        if details["available"]:
            extra = ", ".join(f"{k}={v}" for k, v in details.items() if k != "available")
            print(f"  {name:7s} available" + (f"  ({extra})" if extra else ""))
        else:
            print(f"  {name:7s} missing: {details['reason']}")
            print(f"          fix: {details['fix']}")
            print(f"          (import error: {details['error']})")
    print("BLAS / thread pools:")
    for line in info["blas"]:
        print(f"  {line}")
