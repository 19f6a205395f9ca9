"""The first-run diagnosis: a source tree without a built extension is named (at import
and by ``config``), with the fix."""

import importlib.machinery
import os
import shutil
import subprocess
import sys

import pytest

import fastcnn
from fastcnn.kernels import _diagnose

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def fake_tree(root, built=False):
    """``root`` laid out as a clone: setup.py, csrc/, fastcnn/kernels/cython/."""
    folder = root / "fastcnn" / "kernels" / "cython"
    folder.mkdir(parents=True)
    (root / "csrc").mkdir()
    (root / "setup.py").write_text("")
    if built:
        (folder / f"_kernels{SUFFIX}").write_bytes(b"")
    return str(root / "fastcnn")


def test_source_tree_without_extension_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTCNN_NO_EXTENSION", raising=False)
    package = fake_tree(tmp_path / "clone")
    clone_root = str(tmp_path / "clone")            # "" on sys.path: the current folder
    message = _diagnose.source_tree_problem(package, path=[clone_root])
    assert f"imported from its source tree {package}, which has no compiled extension" \
        in message
    assert "`fastcnn train`" in message and "pip install -e ." in message
    assert "hidden behind it" not in message
    installed = tmp_path / "site-packages"
    fake_tree(installed, built=True)
    message = _diagnose.source_tree_problem(package, path=[clone_root, str(installed)])
    assert f"The installed fastcnn at {installed} (which has the extension) is hidden" \
        in message
    monkeypatch.setenv("FASTCNN_NO_EXTENSION", "1")            # a pure-Python run, meant
    assert _diagnose.source_tree_problem(package, path=[clone_root]) is None


def test_no_message_for_a_built_tree_or_an_installed_package(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTCNN_NO_EXTENSION", raising=False)
    assert _diagnose.source_tree_problem(fake_tree(tmp_path / "a", built=True)) is None
    installed = tmp_path / "site" / "fastcnn" / "kernels" / "cython"
    installed.mkdir(parents=True)                              # no setup.py beside it
    assert _diagnose.source_tree_problem(str(tmp_path / "site" / "fastcnn")) is None


def test_missing_backend_advice(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTCNN_NO_EXTENSION", raising=False)
    reason, fix = _diagnose.missing_backend_advice(
        "cython", "cannot import name '_kernels'", fake_tree(tmp_path / "c"))
    assert "source tree" in reason and "pip install -e ." in fix
    reason, fix = _diagnose.missing_backend_advice("cython", "x",
                                                   str(tmp_path / "nowhere"))
    assert "not built when fastcnn was installed" in reason
    assert "C compiler" in fix and "FASTCNN_REQUIRE_EXTENSION=1" in fix
    reason, fix = _diagnose.missing_backend_advice(
        "numba", "No module named 'numba'", "")
    assert "not installed" in reason and fix == "pip install numba"
    reason, _ = _diagnose.missing_backend_advice("numba", "llvmlite broke", "")
    assert "does not import: llvmlite broke" in reason


@pytest.mark.skipif(os.name != "posix", reason="copies the package and runs a subprocess")
def test_config_in_an_unbuilt_clone_root_warns_once_and_explains(tmp_path):
    package = os.path.dirname(fastcnn.__file__)
    clone = tmp_path / "clone"
    shutil.copytree(package, clone / "fastcnn",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    (clone / "csrc").mkdir()
    (clone / "setup.py").write_text("")
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTCNN_NO_EXTENSION", "PYTHONPATH")}   # the clone's copy, no other
    run = subprocess.run([sys.executable, "-m", "fastcnn", "config"], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("FastCNNWarning: fastcnn is imported from its source tree") == 1
    assert (f"cython  missing: imported from the source tree {clone / 'fastcnn'}, which has "
            f"no built extension") in run.stdout
