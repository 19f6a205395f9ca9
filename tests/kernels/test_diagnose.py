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


def fake_install(site, purelib, built=False):
    """``site`` laid out as site-packages after ``pip install``: fastcnn/ and its
    dist-info, whose WHEEL says whether the wheel was pure Python."""
    folder = site / "fastcnn" / "kernels" / "cython"
    folder.mkdir(parents=True)
    if built:
        (folder / f"_kernels{SUFFIX}").write_bytes(b"")
    info = site / "fastcnn-0.1.0.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nGenerator: setuptools (80.9.0)\n"
                                f"Root-Is-Purelib: {str(purelib).lower()}\n"
                                f"Tag: {'py3-none-any' if purelib else 'cp311-cp311-linux'}\n")
    return str(site / "fastcnn")


def test_an_install_whose_build_failed_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTCNN_NO_EXTENSION", raising=False)
    package = fake_install(tmp_path / "failed", purelib=False)
    message = _diagnose.failed_build_problem(package)
    assert f"fastcnn at {package} was installed WITHOUT its compiled extension" in message
    assert "no C compiler" in message and "pip install --force-reinstall" in message
    assert _diagnose.import_problem(package) == message
    # a built platform wheel, a pure-Python wheel (FASTCNN_NO_EXTENSION=1 at build time),
    # no dist-info at all (not a pip install), a source tree: nothing to say here
    assert _diagnose.failed_build_problem(
        fake_install(tmp_path / "built", purelib=False, built=True)) is None
    assert _diagnose.failed_build_problem(fake_install(tmp_path / "pure", purelib=True)) is None
    assert _diagnose.failed_build_problem(fake_tree(tmp_path / "clone")) is None
    bare = tmp_path / "bare" / "fastcnn"
    bare.mkdir(parents=True)
    assert _diagnose.failed_build_problem(str(bare)) is None
    monkeypatch.setenv("FASTCNN_NO_EXTENSION", "1")            # a pure-Python run, meant
    assert _diagnose.failed_build_problem(package) is None


def _build_wheel_without_compiler(tmp_path) -> str:
    """``pip wheel`` of a copy of this source tree with CC pointing nowhere (the
    "machine without a C compiler"); returns the wheel's path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastcnn.__file__)))
    if not all(os.path.exists(os.path.join(root, name)) for name in ("setup.py", "csrc")):
        # e.g. CI's no-extension stage tests an installed copy in site-packages
        pytest.skip(f"needs fastcnn's source tree (setup.py, csrc/) beside the imported "
                    f"package; this fastcnn is an installed copy in {root}")
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "build", "*.egg-info")
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(root, name), src / name)
    for name in ("csrc", "fastcnn"):
        shutil.copytree(os.path.join(root, name), src / name, ignore=skip)
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTCNN_NO_EXTENSION", "FASTCNN_REQUIRE_EXTENSION")}
    env["CC"] = "/nonexistent/cc"
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                         env=env, capture_output=True, text=True, timeout=900,
                         stdin=subprocess.DEVNULL, start_new_session=True)  # no terminal
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # what pip shows a user without a terminal: no word of the failed build
    assert "NO C COMPILER FOUND" not in run.stdout + run.stderr
    wheels = list((tmp_path / "dist").glob("fastcnn-*.whl"))
    assert len(wheels) == 1 and not wheels[0].name.endswith("-none-any.whl"), wheels
    return str(wheels[0])


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="builds a wheel and runs a subprocess")
def test_pip_install_without_a_compiler_warns_on_first_import(tmp_path):
    # the build (without isolation) must get as far as compiling: Cython is needed
    pytest.importorskip("Cython", reason="the build reaches the C compiler only with Cython")
    wheel = _build_wheel_without_compiler(tmp_path)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                    "--target", str(site), wheel], check=True, capture_output=True,
                   timeout=300)
    assert not _diagnose.has_extension(str(site / "fastcnn"))
    env = {k: v for k, v in os.environ.items() if k != "FASTCNN_NO_EXTENSION"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", "import fastcnn, fastcnn.kernels; "
                          "print(fastcnn.available_backends())"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "'cython'" not in run.stdout
    assert run.stderr.count("was installed WITHOUT its compiled extension") == 1, run.stderr
