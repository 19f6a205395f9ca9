"""Which kernel backend runs, and with how many threads.

Three backends implement the same kernel functions (see ``fastcnn.kernels``):

=========  ==========================================  ===============================
name       module                                      needs
=========  ==========================================  ===============================
"cython"   ``fastcnn.kernels.cython_backend``          the compiled extension (pip install .)
"numba"    ``fastcnn.kernels.numba_backend``           ``pip install numba``
"numpy"    ``fastcnn.kernels.reference``               nothing: always there, the ground truth
=========  ==========================================  ===============================

The active backend is, by priority: the innermost ``use_backend(...)`` block, then
``set_backend(...)``, then the ``FASTCNN_BACKEND`` environment variable, then the
fastest one that imports (cython > numba > numpy). Backend modules are imported
lazily, so ``import fastcnn`` does not import Numba.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import threading

from fastcnn.common.exceptions import BackendUnavailableError

__all__ = [
    "BACKENDS",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
    "backend_module",
    "get_num_threads",
    "set_num_threads",
    "use_num_threads",
    "isolated_backend_state",
    "unavailable_reason",
    "MAX_THREADS",
]

#: Backend names, fastest first, with the module implementing each.
BACKENDS = {
    "cython": "fastcnn.kernels.cython.backend",
    "numba": "fastcnn.kernels.numba.backend",
    "numpy": "fastcnn.kernels.reference",
}

_HINTS = {
    "cython": "the compiled extension is missing; reinstall with a C compiler "
              "available: pip install --force-reinstall --no-deps .",
    "numba": "Numba is not installed; pip install numba",
    "numpy": "",
}

_state = threading.local()          # per-thread stacks of use_backend()/use_num_threads()
_chosen: str | None = None           # set_backend()
_modules: dict[str, object] = {}     # imported backend modules
_import_errors: dict[str, BaseException] = {}
_num_threads: int | None = None


def _check_name(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {name!r}.")
    return name


def backend_module(name: str):
    """Import (once) and return the module of backend ``name``, or raise
    :class:`BackendUnavailableError` saying why it cannot be used."""
    _check_name(name)
    if name in _modules:
        return _modules[name]
    if name in _import_errors:
        err = _import_errors[name]
        raise BackendUnavailableError(_unavailable_message(name, err)) from err
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as err:
        _import_errors[name] = err
        _registry_changed()
        raise BackendUnavailableError(_unavailable_message(name, err)) from err
    _modules[name] = module
    _registry_changed()
    return module


def _unavailable_message(name: str, err: BaseException) -> str:
    return f"backend {name!r} is not available: {err}. Hint: {_HINTS[name]}."


def is_available(name: str) -> bool:
    """True when backend ``name`` imports. Cheap checks come first so that merely
    asking does not import Numba when Numba is absent."""
    _check_name(name)
    if name == "numba" and importlib.util.find_spec("numba") is None:
        if name not in _import_errors:
            _import_errors[name] = ImportError("No module named 'numba'")
            _registry_changed()
        return False
    try:
        backend_module(name)
    except BackendUnavailableError:
        return False
    return True


def available_backends() -> list[str]:
    """Names of the backends that work here, fastest first."""
    return [name for name in BACKENDS if is_available(name)]


# The default backend depends on FASTCNN_BACKEND and on the registry (BACKENDS, what
# imported, what failed). It is asked on every kernel call, so it is remembered as
# (env value, registry version, name): a call then costs one environment read and two
# comparisons. Every change of the registry bumps the version (under a lock, so no bump
# is lost), and the version is read BEFORE the answer is computed, so an answer computed
# while the registry changes is stored under the old version and never reused.
_default_memo: tuple | None = None
_registry_version = 0
_registry_lock = threading.Lock()


def _registry_changed() -> None:
    """Forget the remembered default backend (the registry changed)."""
    global _registry_version
    with _registry_lock:
        _registry_version += 1


def _default_backend() -> str:
    """The backend when none was chosen in code: ``FASTCNN_BACKEND``, else the fastest
    that imports; remembered while the env value and the registry are unchanged."""
    global _default_memo
    env = os.environ.get("FASTCNN_BACKEND", "")
    memo = _default_memo                 # one read: another thread may replace it
    if memo is not None and memo[0] == env and memo[1] == _registry_version:
        return memo[2]
    version = _registry_version
    name = _find_default_backend(env.strip())
    _default_memo = (env, version, name)
    return name


def _find_default_backend(env: str) -> str:
    if env:
        if env not in BACKENDS:
            raise ValueError(
                f"FASTCNN_BACKEND must be one of {list(BACKENDS)}; got {env!r}."
            )
        backend_module(env)  # explicit request: fail loudly if missing
        return env
    for name in BACKENDS:
        if is_available(name):
            return name
    raise AssertionError("the numpy backend always imports")  # pragma: no cover


def get_backend() -> str:
    """Name of the backend the kernels run on right now."""
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    if _chosen is not None:
        return _chosen
    return _default_backend()


def set_backend(name: str | None) -> None:
    """Run kernels on backend ``name`` from now on (``None`` restores the default).

    Raises :class:`BackendUnavailableError` (an ``ImportError``) when it cannot be used.
    """
    global _chosen
    if name is not None:
        backend_module(name)
    _chosen = name


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: run kernels on backend ``name`` inside the ``with`` block."""
    backend_module(name)
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    stack.append(name)
    try:
        yield name
    finally:
        stack.pop()


#: Largest thread count accepted: 4 per core. More only adds OS threads and workspace
#: (1024 threads once meant 1,026 OS threads and 738 MB of kept workspace).
MAX_THREADS = 4 * (os.cpu_count() or 1)


def get_num_threads() -> int:
    """Threads the compiled and Numba kernels may use: the innermost
    ``use_num_threads(...)`` block of this Python thread, else ``set_num_threads(...)``,
    else ``OMP_NUM_THREADS`` if set (at most :data:`MAX_THREADS`), else every core."""
    stack = getattr(_state, "threads", None)
    if stack:
        return stack[-1]
    chosen = _num_threads             # one read: another thread may set it meanwhile
    if chosen is not None:
        return chosen
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return min(int(env), MAX_THREADS)
    return os.cpu_count() or 1


def _check_threads(where: str, n) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where}: n must be a positive int or None; got {n!r}.")
    if n > MAX_THREADS:
        raise ValueError(f"{where}: n = {n} is more than {MAX_THREADS} threads (4 per core "
                         f"of this machine's {os.cpu_count()}); more threads than that only "
                         f"add overhead and workspace memory.")


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads in the kernels (``None``: back to the default), for every
    Python thread that is not inside a ``use_num_threads`` block.

    Results do not depend on the thread count: every kernel is written so that
    its output is bitwise identical for any ``n``. ``n`` may be at most
    :data:`MAX_THREADS` (4 per core).
    """
    global _num_threads
    if n is not None:
        _check_threads("set_num_threads", n)
    _num_threads = n


@contextlib.contextmanager
def use_num_threads(n: int):
    """Context manager: the kernels called by THIS Python thread use ``n`` threads inside
    the ``with`` block (other threads are not affected, so concurrent blocks never
    undo each other's setting)."""
    _check_threads("use_num_threads", n)
    stack = getattr(_state, "threads", None)
    if stack is None:
        stack = _state.threads = []
    stack.append(n)
    try:
        yield n
    finally:
        stack.pop()


@contextlib.contextmanager
def isolated_backend_state(backends: dict | None = None):
    """Run a block with its own backend registry and choices; restore everything after.

    For tests and tools that must not leak state: the chosen backend (``set_backend``),
    the thread count (``set_num_threads``), the registry and its import caches are
    saved on entry and put back on exit. ``backends`` overrides registry entries for the
    block, ``{name: module path}``; an overridden backend is imported afresh, so pointing
    ``"cython"`` at a missing module shows how fastcnn behaves without the extension::

        with isolated_backend_state({"cython": "no_such_module"}):
            assert "cython" not in available_backends()
    """
    global _chosen, _num_threads
    saved = (dict(BACKENDS), dict(_modules), dict(_import_errors), _chosen, _num_threads)
    for name, module_path in (backends or {}).items():
        _check_name(name)
        BACKENDS[name] = module_path
        _modules.pop(name, None)
        _import_errors.pop(name, None)
    _registry_changed()
    try:
        yield
    finally:
        for live, old in zip((BACKENDS, _modules, _import_errors), saved[:3]):
            live.clear()
            live.update(old)
        _chosen, _num_threads = saved[3], saved[4]
        _registry_changed()


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot be used here (its import error, e.g. "No module named
    'numba'"), or None when it is available."""
    if is_available(name):
        return None
    return str(_import_errors.get(name, "not importable"))
