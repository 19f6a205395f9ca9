"""Build of fastcnn's compiled backend: C99 kernels (csrc/) + Cython wrappers.

Metadata lives in pyproject.toml; this file only describes the extension:

- one extension table (name -> sources, whether it uses OpenMP);
- OpenMP detection by compiling AND running a tiny program (sklearn's
  check_openmp_support idea): with -fopenmp when it works, else a clear warning and
  serial kernels (results are identical, only slower);
- global Cython directives (FASTCNN_CYTHON_DEBUG=1 turns the safety checks on);
- a build that FAILS (no C compiler, compile error) does not fail the install: it
  prints a loud warning and the package runs on Numba/NumPy, unless
  FASTCNN_REQUIRE_EXTENSION=1 makes it fatal.

Environment switches:
  FASTCNN_REQUIRE_EXTENSION=1  a failed build fails the install (CI uses it)
  FASTCNN_NO_EXTENSION=1   build no extension at all (pure-Python install; CI uses it)
  FASTCNN_NO_OPENMP=1      build the kernels without OpenMP
  FASTCNN_NATIVE=1         add -march=native (only for a build used on this very machine)
  FASTCNN_CYTHON_DEBUG=1   boundscheck/wraparound/initializedcheck on, -O0 -g
"""

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


# name -> sources (relative to the repository root) and whether the module uses OpenMP
EXTENSIONS = {
    "fastcnn.kernels.cython._kernels": {
        "sources": [
            "fastcnn/kernels/cython/_kernels.pyx",
            "csrc/fc_im2col.c",
            "csrc/fc_conv.c",
            "csrc/fc_maxpool.c",
            "csrc/fc_batchnorm.c",
            "csrc/fc_info.c",
        ],
        "depends": [
            "csrc/include/fastcnn/fastcnn.h",
            "csrc/fc_omp.h",
            "csrc/fc_window.h",
            "csrc/fc_im2col_impl.h",
            "csrc/fc_gemm_impl.h",
            "csrc/fc_winograd_impl.h",
            "csrc/fc_conv_impl.h",
            "csrc/fc_depthwise_impl.h",
            "csrc/fc_maxpool_impl.h",
            "csrc/fc_batchnorm_impl.h",
            "fastcnn/kernels/cython/_csrc.pxd",
        ],
        "openmp": True,
    },
    "fastcnn.kernels.cython._avgpool": {
        "sources": [
            "fastcnn/kernels/cython/_avgpool.pyx",
            "csrc/fc_avgpool.c",
        ],
        "depends": [
            "csrc/include/fastcnn/fastcnn.h",
            "csrc/fc_omp.h",
            "csrc/fc_avgpool_impl.h",
            "fastcnn/kernels/cython/_csrc.pxd",
        ],
        "openmp": True,
    },
}


# Added to csrc/*.c only (see BuildExt._strict_flags_for_csrc). Never -ffast-math: it
# breaks the NaN handling of max pooling and bitwise reproducibility.
STRICT_C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wshadow"]


def _warn(message):
    """Print ``message`` framed in stars on stderr, and on the terminal when there is one.

    pip captures a build's output and shows it only on failure or with ``pip -v``, so a
    warning on stderr alone is never seen by the person running ``pip install .``;
    writing to the controlling terminal (``/dev/tty``) reaches them anyway. Without a
    terminal (CI logs, ``!pip install`` in Jupyter) nothing reaches them (measured with
    pip 23.2 and 26.3): for a failed build, the installed package warns on its first
    import instead (``fastcnn/kernels/_diagnose.py``)."""
    bar = "*" * 78
    text = f"\n{bar}\n{textwrap.dedent(message).strip()}\n{bar}\n"
    print(text, file=sys.stderr)
    try:
        with open("/dev/tty", "w") as tty:   # no terminal (CI, Windows): stderr only
            tty.write(text)
    except OSError:
        pass


def _build_failed(message):
    """A failed build: fatal under FASTCNN_REQUIRE_EXTENSION=1, otherwise a loud warning
    (the package installs without its "cython" backend and runs on Numba/NumPy)."""
    message = textwrap.dedent(message).strip()
    if _flag("FASTCNN_REQUIRE_EXTENSION"):
        _warn(message + "\nFASTCNN_REQUIRE_EXTENSION=1: the install fails.")
        raise SystemExit("fastcnn: the compiled extension could not be built "
                         "(FASTCNN_REQUIRE_EXTENSION=1).")
    _warn(message + "\nSet FASTCNN_REQUIRE_EXTENSION=1 to make this failure fatal.")


def _compiler_missing(compiler):
    """The C compiler command when it is not on PATH (None when found, or when the
    compiler type does not say which executable it runs)."""
    command = getattr(compiler, "compiler_so", None)
    if not command:
        return None
    return None if shutil.which(command[0]) else command[0]


OPENMP_TEST = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel num_threads(2) reduction(+ : n)
    n += 1;
    printf("%d\n", n);
    return n == 2 ? 0 : 1;
}
"""


def _env_flags(name):
    """The words of an environment variable such as CFLAGS ("" when unset)."""
    return shlex.split(os.environ.get(name, ""))


def check_openmp_support(compiler):
    """Compile, link and run a tiny OpenMP program with ``compiler``.

    Returns ``(flags, reason)``: the flags that worked (None when OpenMP is unusable)
    and one line saying why. The probe is compiled and linked with the build's own
    flags: the compiler already carries CFLAGS/CPPFLAGS, and the link gets CFLAGS and
    LDFLAGS as the extension's link does (distutils adds both to LDSHARED but neither
    to the executable linker). Without that, flags such as -fsanitize=address in
    CFLAGS/LDFLAGS made the probe fail to link and the build silently went serial.
    """
    flags = ["-fopenmp"]
    link_flags = _env_flags("CFLAGS") + _env_flags("LDFLAGS") + flags
    tmp = tempfile.mkdtemp(prefix="fastcnn-openmp-")
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        with open("test_openmp.c", "w") as f:
            f.write(OPENMP_TEST)
        objects = compiler.compile(["test_openmp.c"], extra_postargs=flags)
        compiler.link_executable(objects, "test_openmp", extra_postargs=link_flags)
        # A sanitizer runtime preloaded for the Python process must not be preloaded
        # into the probe: it is linked in already.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        out = subprocess.run([os.path.join(tmp, "test_openmp")], capture_output=True,
                             text=True, timeout=60, env=env)
        if out.returncode != 0 or out.stdout.strip() != "2":
            return None, (f"the test program ran but did not see 2 threads (exit "
                          f"{out.returncode}, output {out.stdout.strip()!r})")
        return flags, f"a test program compiled, linked and ran 2 threads with {flags}"
    except Exception as err:  # any compile/link/run failure means: no OpenMP
        return None, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """build_ext that adds OpenMP when it works and never fails the install."""

    def build_extensions(self):
        missing = _compiler_missing(self.compiler)
        if missing is not None:
            _build_failed(f"""
                fastcnn: NO C COMPILER FOUND (`{missing}` is not on PATH).
                fastcnn is installed WITHOUT its fast "cython" backend and will run on
                Numba or NumPy: correct, but several times slower.
                To get the fast backend, install a C compiler and reinstall:
                    Debian/Ubuntu: apt-get install gcc python3-dev
                    macOS:         xcode-select --install
                    then:          pip install --force-reinstall --no-deps .
            """)
            return
        use_openmp = not _flag("FASTCNN_NO_OPENMP")
        omp_flags = None
        if use_openmp:
            omp_flags, reason = check_openmp_support(self.compiler)
            used = (f"CFLAGS={os.environ.get('CFLAGS', '')!r} "
                    f"LDFLAGS={os.environ.get('LDFLAGS', '')!r}")
            print(f"fastcnn: OpenMP probe ({used}): "
                  f"{'enabled' if omp_flags else 'NOT available'}: {reason}", file=sys.stderr)
            if omp_flags is None:
                _warn(f"""
                    fastcnn: this C compiler could not build and run an OpenMP test program
                    ({reason}).
                    The compiled kernels are built WITHOUT OpenMP: they run on one thread
                    (results are identical, only slower).
                    To get multi-threaded kernels, install an OpenMP runtime
                    (e.g. libgomp with gcc, or `apt-get install libomp-dev` for clang;
                    on macOS `brew install libomp`) and reinstall fastcnn.
                    Set FASTCNN_NO_OPENMP=1 to silence this warning.
                """)
        for ext in self.extensions:
            if omp_flags and EXTENSIONS.get(ext.name, {}).get("openmp", False):
                ext.extra_compile_args += omp_flags
                ext.extra_link_args += omp_flags
        self._strict_flags_for_csrc()
        try:
            super().build_extensions()
        except Exception as err:  # compiler missing, compile error, ...
            _build_failed(f"""
                fastcnn: building the compiled extension FAILED:
                    {type(err).__name__}: {err}
                fastcnn is installed WITHOUT its "cython" backend and will run on
                Numba (if installed) or NumPy: correct, but slower.
                To get the fast backend, install a C compiler and reinstall:
                    pip install --force-reinstall --no-deps .
            """)

    def _strict_flags_for_csrc(self):
        """Our own C (csrc/*.c) is compiled as ISO C99 with all warnings on (and kept at
        zero); the Cython-generated C gets the common flags only. ISO mode also means
        -ffp-contract=off: no silent FMA contraction that would change rounding."""
        if self.compiler.compiler_type != "unix":
            return
        original = self.compiler._compile

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if os.path.basename(os.path.dirname(os.path.abspath(src))) == "csrc":
                extra_postargs = list(extra_postargs) + STRICT_C_FLAGS
            return original(obj, src, ext, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = _compile

    def run(self):
        try:
            super().run()
        except Exception as err:
            _build_failed(f"""
                fastcnn: the build_ext step FAILED ({type(err).__name__}: {err}).
                fastcnn is installed WITHOUT its "cython" backend (Numba/NumPy only).
            """)


def _extensions():
    if _flag("FASTCNN_NO_EXTENSION"):
        print("fastcnn: FASTCNN_NO_EXTENSION=1, building no compiled extension "
              "(pure-Python install).", file=sys.stderr)
        return []
    try:
        import numpy  # noqa: F401  (build requirement; headers are not needed)
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as err:
        _build_failed(f"""
            fastcnn: Cython is not available ({err}); building no compiled extension.
            fastcnn will run on Numba/NumPy. Install Cython>=3 and reinstall for speed.
        """)
        return []

    debug = _flag("FASTCNN_CYTHON_DEBUG")
    if sysconfig.get_config_var("CC") and "cl.exe" in str(sysconfig.get_config_var("CC")):
        cflags = ["/O2"]  # MSVC (untested): keep it simple
    else:
        cflags = ["-O0", "-g"] if debug else ["-O3"]
        if _flag("FASTCNN_NATIVE"):
            cflags.append("-march=native")
    extensions = []
    for name, spec in EXTENSIONS.items():
        ext = Extension(
            name,
            sources=spec["sources"],
            depends=spec["depends"],
            include_dirs=["csrc/include", "csrc"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            extra_compile_args=list(cflags),
            extra_link_args=[],
        )
        extensions.append(ext)
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": not debug,
        "embedsignature": True,
    }
    try:
        return cythonize(extensions, compiler_directives=directives, quiet=True)
    except Exception as err:
        _build_failed(f"""
            fastcnn: cythonizing the wrappers FAILED ({type(err).__name__}: {err}).
            fastcnn is installed WITHOUT its "cython" backend (Numba/NumPy only).
        """)
        return []


if __name__ == "__main__":   # pip's build backend runs this file as __main__; tests import it
    setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
