"""Why a backend is missing, and what to do about it (for ``import fastcnn``'s warning
and ``python -m fastcnn config``).

The trap this catches: running Python from the root of a clone of the repository puts
the clone's ``fastcnn/`` folder first on ``sys.path``, ahead of the installed package.
That folder has no compiled extension unless it was built in place, so fastcnn
silently runs on the slower backends, even right after ``pip install .``.

The second trap: ``pip install .`` on a machine without a C compiler. setup.py does not
fail the install (the package runs on Numba/NumPy) and prints a framed warning, but pip
shows a build's output only when the build fails or with ``pip -v``: without a terminal
(CI logs, ``!pip install`` in Jupyter) the user sees "Successfully installed" and
nothing else. So the installed package says it on import: a wheel tagged for this
platform (``Root-Is-Purelib: false`` in its ``WHEEL`` file: it was built to hold the
extension) that has no extension is a failed build. A pure-Python install made on
purpose (``FASTCNN_NO_EXTENSION=1``) is a ``py3-none-any`` wheel and stays quiet.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys

__all__ = ["source_tree_problem", "failed_build_problem", "missing_backend_advice",
           "has_extension", "import_problem"]

_EXTENSION_DIR = os.path.join("kernels", "cython")


def has_extension(package_dir: str) -> bool:
    """True when ``<package_dir>/kernels/cython`` holds a built ``_kernels`` module
    (``_kernels.cpython-311-x86_64-linux-gnu.so`` or any other extension suffix)."""
    folder = os.path.join(package_dir, _EXTENSION_DIR)
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return any(name.startswith("_kernels") and name.endswith(suffixes) for name in names)


def _pure_python_intended() -> bool:
    return os.environ.get("FASTCNN_NO_EXTENSION", "").strip().lower() in ("1", "true", "yes")


def _is_source_tree(package_dir: str) -> bool:
    root = os.path.dirname(os.path.abspath(package_dir))
    return (os.path.isfile(os.path.join(root, "setup.py"))
            and os.path.isdir(os.path.join(root, "csrc")))


def _shadowed_install(package_dir: str, path: list[str]) -> str | None:
    """Another ``fastcnn`` on ``path`` (an installed one) that has the extension."""
    here = os.path.realpath(package_dir)
    for entry in path:
        candidate = os.path.join(entry or os.getcwd(), "fastcnn")
        if os.path.realpath(candidate) != here and has_extension(candidate):
            return candidate
    return None


def source_tree_problem(package_dir: str, path: list[str] | None = None) -> str | None:
    """A message when ``package_dir`` (the imported ``fastcnn/``) is a source tree
    without a built extension; None when all is well (installed, or built in place, or
    FASTCNN_NO_EXTENSION=1 says the pure-Python run is intended)."""
    if _pure_python_intended():
        return None
    if not _is_source_tree(package_dir) or has_extension(package_dir):
        return None
    shadowed = _shadowed_install(package_dir, sys.path if path is None else path)
    installed = (f" The installed fastcnn at {os.path.dirname(shadowed)} (which has the "
                 f"extension) is hidden behind it." if shadowed else "")
    return (f"fastcnn is imported from its source tree {package_dir}, which has no compiled "
            f"extension, so the kernels run on Numba/NumPy (slower). This happens when "
            f"Python runs in the clone's root folder, which comes first on sys.path."
            f"{installed} Fix: use the installed command (`fastcnn train`, `fastcnn config`) "
            f"or run from another folder; or build the extension here: `pip install -e .` "
            f"(or `python setup.py build_ext --inplace`).")


def _installed_as_platform_wheel(package_dir: str) -> bool:
    """True when a ``fastcnn-*.dist-info`` beside ``package_dir`` (the installed
    package's site-packages) says ``Root-Is-Purelib: false``: the wheel was built to hold
    the compiled extension."""
    site = os.path.dirname(os.path.abspath(package_dir))
    try:
        infos = [n for n in os.listdir(site)
                 if n.startswith("fastcnn-") and n.endswith(".dist-info")]
    except OSError:
        return False
    for info in infos:
        try:
            with open(os.path.join(site, info, "WHEEL"), encoding="utf-8") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if fields.get("Root-Is-Purelib", "").strip().lower() == "false":
            return True
    return False


def failed_build_problem(package_dir: str) -> str | None:
    """A message when ``package_dir`` is an installed fastcnn whose compiled extension
    failed to build (see the module docstring); None otherwise."""
    if _pure_python_intended() or _is_source_tree(package_dir) or has_extension(package_dir):
        return None
    if not _installed_as_platform_wheel(package_dir):
        return None
    _, fix = missing_backend_advice("cython", None, package_dir)
    return (f"fastcnn at {package_dir} was installed WITHOUT its compiled extension: the "
            f"C build failed when it was installed (most often: no C compiler), so the "
            f"kernels run on Numba/NumPy (correct, several times slower). pip showed no "
            f"error because fastcnn installs anyway. Fix: {fix}. Set "
            f"FASTCNN_NO_EXTENSION=1 if a pure-Python fastcnn is what you want.")


def import_problem(package_dir: str) -> str | None:
    """What ``import fastcnn`` warns about (once): the unbuilt source tree or the failed
    build, or None."""
    return source_tree_problem(package_dir) or failed_build_problem(package_dir)


def missing_backend_advice(name: str, error: str | None,
                           package_dir: str) -> tuple[str, str]:
    """``(reason, fix)`` for a backend that does not import (``error``: its import error
    message, as ``fastcnn.kernels._dispatch.unavailable_reason`` gives it)."""
    if name == "cython":
        tree = source_tree_problem(package_dir)
        if tree is not None:
            return (f"imported from the source tree {package_dir}, which has no built "
                    f"extension", "run `fastcnn config` (the installed command) or Python "
                    "from another folder, or build here: pip install -e .")
        return ("the compiled extension was not built when fastcnn was installed (no C "
                "compiler found, a build error, or FASTCNN_NO_EXTENSION=1)",
                "install a C compiler (Debian/Ubuntu: apt-get install gcc python3-dev; "
                "macOS: xcode-select --install), then reinstall: pip install "
                "--force-reinstall --no-deps <fastcnn source or wheel>; add "
                "FASTCNN_REQUIRE_EXTENSION=1 to see why it fails")
    if name == "numba":
        if error is None or "No module named 'numba'" in error:
            return ("Numba is not installed (a default dependency: the installer may have "
                    "found no Numba wheel for this Python)", "pip install numba")
        return (f"Numba is installed but does not import: {error}",
                "pip install --upgrade numba llvmlite")
    return (str(error), "")  # numpy: always available
