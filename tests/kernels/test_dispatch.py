"""Backend selection: set/use/get_backend, available_backends, FASTCNN_BACKEND, missing
backends, cache routing, lazy imports, show_config."""

import contextlib
import subprocess
import sys
import types

import numpy as np
import pytest
from _helpers import subprocess_env

import fastcnn
from fastcnn import kernels
from fastcnn.kernels import _dispatch as _backend
from fastcnn.kernels import reference


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter (import-time behaviour) with extra env vars."""
    full_env = {k: v for k, v in subprocess_env(**env).items()
                if k != "FASTCNN_BACKEND" or "FASTCNN_BACKEND" in env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=full_env, timeout=120)
    return result


@pytest.fixture
def fresh_registry(monkeypatch):
    """``override({name: module path})`` points backends elsewhere (e.g. at a missing
    module) until the test ends; no FASTCNN_BACKEND from the environment."""
    monkeypatch.delenv("FASTCNN_BACKEND", raising=False)
    with contextlib.ExitStack() as stack:
        yield lambda paths: stack.enter_context(_backend.isolated_backend_state(paths))


def test_available_backends_lists_numpy_last_and_fastest_first():
    names = fastcnn.available_backends()
    assert names[-1] == "numpy"
    order = list(_backend.BACKENDS)
    assert names == sorted(names, key=order.index)


def test_default_backend_is_the_fastest_available(monkeypatch):
    monkeypatch.delenv("FASTCNN_BACKEND", raising=False)
    fastcnn.set_backend(None)
    assert fastcnn.get_backend() == fastcnn.available_backends()[0]


def test_set_backend_and_reset():
    fastcnn.set_backend("numpy")
    assert fastcnn.get_backend() == "numpy"
    _, cache = kernels.maxpool2d_forward(np.ones((1, 1, 2, 2), np.float32))
    assert cache.backend == "numpy"
    fastcnn.set_backend(None)
    assert fastcnn.get_backend() == fastcnn.available_backends()[0]


def test_use_backend_nests_and_restores():
    fastcnn.set_backend("numpy")
    available = fastcnn.available_backends()
    with fastcnn.use_backend(available[0]) as name:
        assert name == fastcnn.get_backend() == available[0]
        with fastcnn.use_backend("numpy"):
            assert fastcnn.get_backend() == "numpy"
        assert fastcnn.get_backend() == available[0]
    assert fastcnn.get_backend() == "numpy"


def test_use_backend_restores_after_an_exception():
    before = fastcnn.get_backend()
    with pytest.raises(RuntimeError):
        with fastcnn.use_backend("numpy"):
            raise RuntimeError("boom")
    assert fastcnn.get_backend() == before


def test_unknown_backend_name_is_a_value_error():
    with pytest.raises(ValueError, match=r"backend must be one of \['cython', 'numba', 'numpy'\]; "
                                         r"got 'torch'\."):
        fastcnn.set_backend("torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        with fastcnn.use_backend("tensorflow"):
            pass


def test_missing_backend_explicit_request_says_why(fresh_registry):
    fresh_registry({"cython": "fastcnn.kernels._no_such_extension"})
    with pytest.raises(fastcnn.BackendUnavailableError,
                       match=r"backend 'cython' is not available: No module named "
                             r"'fastcnn.kernels._no_such_extension'\. Hint: the compiled "
                             r"extension is missing"):
        fastcnn.set_backend("cython")
    with pytest.raises(fastcnn.BackendUnavailableError, match="backend 'cython' is not available"):
        with fastcnn.use_backend("cython"):
            pass
    assert "cython" not in fastcnn.available_backends()
    assert issubclass(fastcnn.BackendUnavailableError, ImportError)


def test_missing_backend_is_skipped_by_the_default_choice(fresh_registry):
    fresh_registry({name: f"fastcnn.kernels._missing_{name}" for name in ("cython", "numba")})
    fastcnn.set_backend(None)
    assert fastcnn.available_backends() == ["numpy"]
    assert fastcnn.get_backend() == "numpy"


def test_env_var_selects_backend(fresh_registry, monkeypatch):
    monkeypatch.setenv("FASTCNN_BACKEND", "numpy")
    fastcnn.set_backend(None)
    assert fastcnn.get_backend() == "numpy"
    fastcnn.set_backend(fastcnn.available_backends()[0])   # set_backend beats the env var
    assert fastcnn.get_backend() == fastcnn.available_backends()[0]


def test_remembered_default_follows_the_env_var_and_the_registry(fresh_registry, monkeypatch):
    # The default is remembered between kernel calls; nothing but the env value and the
    # registry is changed here, and each change shows at the very next call.
    fastcnn.set_backend(None)
    fastest = fastcnn.get_backend()
    assert fastcnn.get_backend() == fastest            # the remembered answer
    monkeypatch.setenv("FASTCNN_BACKEND", "numpy")
    assert fastcnn.get_backend() == "numpy"
    monkeypatch.setenv("FASTCNN_BACKEND", " numpy ")   # spaces are ignored
    assert fastcnn.get_backend() == "numpy"
    monkeypatch.delenv("FASTCNN_BACKEND")
    assert fastcnn.get_backend() == fastest
    with _backend.isolated_backend_state({name: f"fastcnn.kernels._missing_{name}"
                                          for name in ("cython", "numba")}):
        assert fastcnn.get_backend() == "numpy"
    assert fastcnn.get_backend() == fastest


def test_env_var_with_unknown_name_is_an_error(fresh_registry, monkeypatch):
    monkeypatch.setenv("FASTCNN_BACKEND", "fortran")
    fastcnn.set_backend(None)
    with pytest.raises(ValueError, match=r"FASTCNN_BACKEND must be one of .*; got 'fortran'\."):
        fastcnn.get_backend()


def test_env_var_naming_a_missing_backend_fails_loudly(fresh_registry, monkeypatch):
    fresh_registry({"numba": "fastcnn.kernels._missing_numba"})
    monkeypatch.setenv("FASTCNN_BACKEND", "numba")
    fastcnn.set_backend(None)
    with pytest.raises(fastcnn.BackendUnavailableError, match="backend 'numba' is not available"):
        fastcnn.get_backend()


def test_env_var_in_a_fresh_process():
    result = run_python("import fastcnn; print(fastcnn.get_backend())", FASTCNN_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"
    result = run_python("import fastcnn; fastcnn.get_backend()", FASTCNN_BACKEND="nope")
    assert result.returncode != 0 and "FASTCNN_BACKEND must be one of" in result.stderr


def test_import_fastcnn_does_not_import_numba():
    result = run_python("import sys, fastcnn, fastcnn.kernels, fastcnn.testing; "
                        "print('numba' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _counting_backend(calls):
    """A fake backend module: the reference, recording which functions ran."""
    module = types.ModuleType("fastcnn_fake_backend")
    for name in reference.__all__:
        def wrapper(*args, _f=getattr(reference, name), _name=name):
            calls.append(_name)
            return _f(*args)
        setattr(module, name, wrapper)
    return module


def test_backward_routes_to_the_backend_that_made_the_cache(fresh_registry, monkeypatch):
    calls = []
    sys.modules["fastcnn_fake_backend"] = _counting_backend(calls)
    monkeypatch.setitem(sys.modules, "fastcnn_fake_backend", sys.modules["fastcnn_fake_backend"])
    fresh_registry({"numba": "fastcnn_fake_backend"})
    monkeypatch.setattr(_backend, "is_available", lambda name: name in ("numba", "numpy"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    with fastcnn.use_backend("numba"):
        out, cache = kernels.conv2d_forward(x, w, None)
    assert cache.backend == "numba" and calls == ["conv2d_forward"]
    with fastcnn.use_backend("numpy"):     # current backend differs: the cache decides
        dx, dw, db = kernels.conv2d_backward(np.ones_like(out), cache)
    assert calls == ["conv2d_forward", "conv2d_backward"]
    assert db is None                       # no bias in the forward pass -> no db
    with fastcnn.use_backend("numpy"):
        _, ref_cache = kernels.conv2d_forward(x, w, None)
    with fastcnn.use_backend("numba"):
        kernels.conv2d_backward(np.ones_like(out), ref_cache)
    assert calls == ["conv2d_forward", "conv2d_backward"]   # the numpy cache went to numpy


def test_num_threads_setting():
    fastcnn.set_num_threads(1)
    assert fastcnn.get_num_threads() == 1
    with fastcnn.use_num_threads(2):
        assert fastcnn.get_num_threads() == 2
    assert fastcnn.get_num_threads() == 1
    fastcnn.set_num_threads(None)
    assert fastcnn.get_num_threads() >= 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: n must be a positive int or None"):
            fastcnn.set_num_threads(bad)


def test_show_config_prints_backends_and_reasons(capsys, fresh_registry):
    fresh_registry({"cython": "fastcnn.kernels._no_such_extension"})
    fastcnn.show_config()
    text = capsys.readouterr().out
    assert "active backend:" in text and "threads:" in text
    assert "numpy   available" in text
    # a missing backend: why, the fix, and the import error itself
    assert "cython  missing: the compiled extension was not built" in text
    assert "          fix: install a C compiler" in text
    assert "(import error: No module named 'fastcnn.kernels._no_such_extension')" in text
    assert "BLAS / thread pools:" in text


def test_cli_config_command_prints():
    result = subprocess.run([sys.executable, "-m", "fastcnn", "config"], env=subprocess_env(),
                            capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "backends:" in result.stdout and "numpy" in result.stdout
