"""setup.py's OpenMP probe builds with the same CFLAGS/LDFLAGS as the extension.

Issue 13: with sanitizer flags in CFLAGS/LDFLAGS the probe compiled with them (the
compiler carries CFLAGS) but linked without them, failed with undefined __asan_*
symbols, and the build silently went serial.
"""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_setup_module():
    spec = importlib.util.spec_from_file_location("fastcnn_setup_py", os.path.join(ROOT, "setup.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)      # the __main__ guard keeps setup() from running
    return module


def _compiler():
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler
    compiler = new_compiler()
    customize_compiler(compiler)         # reads CFLAGS/LDFLAGS as a real build does
    return compiler


def _asan_works() -> bool:
    """gcc with an ASan runtime and OpenMP (as on CI); else the test has nothing to show."""
    if shutil.which("gcc") is None:
        return False
    probe = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    return probe.returncode == 0 and os.path.isabs(probe.stdout.strip())


@pytest.mark.skipif(sys.platform != "linux" or not _asan_works(),
                    reason="needs gcc with the AddressSanitizer runtime (Linux CI has it)")
def test_probe_links_with_sanitizer_flags(monkeypatch):
    flags = "-fsanitize=address,undefined -fno-omit-frame-pointer"
    monkeypatch.setenv("CFLAGS", flags)
    monkeypatch.setenv("LDFLAGS", flags)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    setup_py = _load_setup_module()
    found, reason = setup_py.check_openmp_support(_compiler())
    assert found == ["-fopenmp"], reason
    assert "ran 2 threads" in reason


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_probe_says_why_it_failed(monkeypatch):
    monkeypatch.setenv("LDFLAGS", "-lno_such_library_fastcnn")
    setup_py = _load_setup_module()
    found, reason = setup_py.check_openmp_support(_compiler())
    assert found is None
    assert "no_such_library_fastcnn" in reason
