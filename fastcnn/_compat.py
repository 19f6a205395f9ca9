"""Old import paths keep working: ``import fastcnn.model`` is ``fastcnn.train.model``.

fastcnn 0.1 was 31 flat modules (``fastcnn.model``, ``fastcnn.backend``, ``fastcnn.layers``,
...). They now live in subpackages (see docs/architecture.md). Instead of one re-export file
per old name, this module keeps one table, :data:`OLD_PATHS`, and a finder on
``sys.meta_path`` that answers an import of an old name with the module at its new path.

The alias is the *same module object*, not a copy: ``fastcnn.model.Sequential is
fastcnn.train.model.Sequential``, and monkeypatching either name patches both. An old
package name also covers its submodules: ``fastcnn.layers.conv`` is
``fastcnn.nn.layers.conv``.

How (the simple version is a file ``fastcnn/model.py`` holding
``from fastcnn.train.model import *``): Python's import system runs a loader's
``exec_module`` on a fresh module, then returns whatever ``sys.modules[name]`` holds
afterwards; our loader puts the real module there.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["OLD_PATHS", "new_path", "install"]

#: old module (or package) name -> its new home
OLD_PATHS = {
    "fastcnn.backend": "fastcnn.kernels._dispatch",
    "fastcnn._shapes": "fastcnn.kernels.geometry",
    "fastcnn.kernels.cython_backend": "fastcnn.kernels.cython.backend",
    "fastcnn.kernels._cython": "fastcnn.kernels.cython",
    "fastcnn.kernels.numba_backend": "fastcnn.kernels.numba.backend",
    "fastcnn.kernels._numba_conv": "fastcnn.kernels.numba.conv",
    "fastcnn.kernels._numba_pool": "fastcnn.kernels.numba.pool",
    "fastcnn.kernels._numba_norm": "fastcnn.kernels.numba.norm",
    "fastcnn.layers": "fastcnn.nn.layers",
    "fastcnn.parameter": "fastcnn.nn.parameter",
    "fastcnn.initializers": "fastcnn.nn.initializers",
    "fastcnn.regularizers": "fastcnn.nn.regularizers",
    "fastcnn.losses": "fastcnn.nn.losses",
    "fastcnn.metrics": "fastcnn.nn.metrics",
    "fastcnn.optimizers": "fastcnn.optim.optimizers",
    "fastcnn.schedules": "fastcnn.optim.schedules",
    "fastcnn.model": "fastcnn.train.model",
    "fastcnn.training": "fastcnn.train.loop",
    "fastcnn.callbacks": "fastcnn.train.callbacks",
    "fastcnn.serialization": "fastcnn.train.serialization",
    "fastcnn.models": "fastcnn.zoo",
    "fastcnn.datasets": "fastcnn.data.datasets",
    "fastcnn.preprocessing": "fastcnn.data.preprocessing",
    "fastcnn.augment": "fastcnn.data.augment",
    "fastcnn.diagnostics": "fastcnn.tools.diagnostics",
    "fastcnn.gradcheck": "fastcnn.tools.gradcheck",
    "fastcnn.plot": "fastcnn.tools.plot",
    "fastcnn.verify": "fastcnn.tools.verify",
    "fastcnn.config": "fastcnn.tools.config",
    "fastcnn.testing": "fastcnn.tools.testing",
    "fastcnn.bench": "fastcnn.tools.bench",
    "fastcnn.train_cli": "fastcnn.cli.train",
    "fastcnn._validation": "fastcnn.common.validation",
    "fastcnn._configurable": "fastcnn.common.configurable",
    "fastcnn.exceptions": "fastcnn.common.exceptions",
    "fastcnn.random": "fastcnn.common.random",
}


def new_path(name: str) -> str | None:
    """The new module name for an old one (``"fastcnn.layers.conv"`` ->
    ``"fastcnn.nn.layers.conv"``), or None when ``name`` is not an old path."""
    if name in OLD_PATHS:
        return OLD_PATHS[name]
    package = name.rpartition(".")[0]
    while package:
        if package in OLD_PATHS:
            return f"{OLD_PATHS[package]}.{name[len(package) + 1:]}"
        package = package.rpartition(".")[0]
    return None


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds old names; loads each by importing its new path (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("fastcnn.") or new_path(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None                      # the default: an empty placeholder module

    def exec_module(self, module):
        sys.modules[module.__name__] = importlib.import_module(new_path(module.__name__))


_FINDER = _AliasFinder()


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (idempotent). First, because an old
    package's submodule would otherwise be found again under its old name as a copy."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
