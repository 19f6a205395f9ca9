"""``python -m fastcnn verify``: runs, prints the table, exits 0; exits 1 on a broken backend."""

import subprocess
import sys

import numpy as np
import pytest
from _helpers import subprocess_env

from fastcnn import cli
from fastcnn.kernels import _dispatch as _backend
from fastcnn.kernels import reference
from fastcnn.tools import verify


def test_verify_command_runs_and_prints_table():
    result = subprocess.run([sys.executable, "-m", "fastcnn", "verify", "--cases", "2",
                             "--seed", "3"], env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "max abs err" in out and "max rel err" in out
    fast = [b for b in _backend.available_backends() if b != "numpy"]
    for name in fast:
        for kernel in ("conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm",
                       "im2col"):
            assert f"{name:8s} {kernel:10s}" in out
    for name in set(_backend.BACKENDS) - set(fast) - {"numpy"}:
        assert f"{name}: missing (" in out
    assert "OK:" in out and "FAIL" not in out


def test_verify_reference_against_itself_passes(capsys):
    args = cli.build_parser().parse_args(["verify", "--backend", "numpy", "--cases", "2"])
    assert verify.run(args) == 0
    out = capsys.readouterr().out
    assert out.count("  pass") == 24          # 6 kernels x 2 directions x 2 dtypes


def test_verify_exits_1_when_a_backend_is_broken(monkeypatch, capsys):
    # A fake "numba" backend: the reference, except a max-pool backward 0.1 % off.
    # The checker's reference stays the pristine "numpy" module.
    broken = type(reference)("broken_backend")
    for name in reference.__all__:
        setattr(broken, name, getattr(reference, name))

    def wrong_pool_backward(dout, cache):
        dx = reference.maxpool2d_backward(dout, cache)
        return dx * np.asarray(1.001, dx.dtype)     # 0.1 % off: beyond every tolerance

    broken.maxpool2d_backward = wrong_pool_backward
    monkeypatch.setitem(sys.modules, "broken_backend", broken)
    args = cli.build_parser().parse_args(["verify", "--backend", "numba", "--cases", "3"])
    with _backend.isolated_backend_state({"numba": "broken_backend"}):
        assert verify.run(args) == 1
    out = capsys.readouterr().out
    assert "numba    maxpool2d          backward  float32" in out
    assert "FAIL numba maxpool2d backward" in out and "FAILED:" in out
    assert "numba    conv2d             forward   float32" in out   # the rest ran and passed


def test_verify_exits_1_when_a_named_backend_is_missing(monkeypatch, capsys):
    args = cli.build_parser().parse_args(["verify", "--backend", "cython"])
    with _backend.isolated_backend_state({"cython": "fastcnn.kernels._no_such_module"}):
        assert verify.run(args) == 1
    assert "cython: missing (No module named 'fastcnn.kernels._no_such_module')" in \
        capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", "-2", "x"])
def test_verify_rejects_bad_case_count(bad):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["verify", "--cases", bad])
