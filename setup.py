"""`pip install .` for the `softmax` Python module: drives the project's CMake.

Offline on Debian 12 (no PyPI; setuptools, wheel, pybind11-dev, python3-dev, libhwy-dev,
libdlpack-dev from apt, see scripts/install-deps.sh):

    /usr/bin/python3 -m venv --system-site-packages /tmp/softmax-venv
    /tmp/softmax-venv/bin/python -m pip install --no-build-isolation --no-deps .

CMake builds only the extension target (tests and the CLI off) into build-pip/ (never build/,
which scripts/build.sh owns). CMAKE_BUILD_PARALLEL_LEVEL sets the build jobs (default 2).
SOFTMAX_BUILD_DIR=<dir> reuses an existing, configured CMake build directory instead (only the
softmax_python target is built there, without reconfiguring it), so an installed package costs
no second library build.

Progress: pip captures a build backend's output and shows it only with `pip install -v`. So
when the build has a terminal (/dev/tty opens), CMake's progress is also written there as one
updating status line ("softmax: [ 45%] Building CXX object ..."), with or without -v;
SOFTMAX_SETUP_PROGRESS=0 turns that off. The full output still goes to pip (shown with -v,
and on failure).

The package is python/softmax/ (autograd, SciPy forms, nn modules, stubs __init__.pyi and
py.typed) around the extension softmax._core.
"""
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD_BASE = "build-pip"


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(softmax\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1) if m else "0.0.0"


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


def _terminal():
    """The controlling terminal for progress lines, or None (no terminal, or turned off)."""
    if os.environ.get("SOFTMAX_SETUP_PROGRESS", "1") == "0":
        return None
    try:
        return open("/dev/tty", "w", encoding="utf-8")
    except OSError:
        return None


_PROGRESS = re.compile(r"^\[\s*\d+%\]|^-- (Configuring|Generating|Build files)")


def run(cmd):
    """Runs cmd, announcing it; its output goes to ours (pip's log, shown with pip -v) and its
    progress lines to the terminal as one status line, when there is a terminal."""
    print("softmax setup.py: " + " ".join(cmd), flush=True)
    tty = _terminal()
    if tty is None:
        subprocess.check_call(cmd)
        return
    with tty:
        tty.write(f"\nsoftmax: {' '.join(cmd[:3])} ...\n")
        tty.flush()
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              bufsize=1) as p:
            for line in p.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                if _PROGRESS.match(line):
                    tty.write("\r\x1b[Ksoftmax: " + line.strip()[:110])
                    tty.flush()
            rc = p.wait()
        tty.write("\n")
    if rc:
        raise subprocess.CalledProcessError(rc, cmd)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        reuse = os.environ.get("SOFTMAX_BUILD_DIR")
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        if reuse:
            build_dir = os.path.abspath(reuse)
            if not os.path.isfile(os.path.join(build_dir, "CMakeCache.txt")):
                raise RuntimeError(f"SOFTMAX_BUILD_DIR={reuse}: no CMakeCache.txt there "
                                   "(configure it with cmake -S . -B DIR first)")
        else:
            build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
            os.makedirs(build_dir, exist_ok=True)
            run(["cmake", "-S", ROOT, "-B", build_dir,
                 "-DCMAKE_BUILD_TYPE=Release",
                 "-DSOFTMAX_BUILD_PYTHON=ON",
                 "-DSOFTMAX_BUILD_TESTS=OFF",
                 "-DSOFTMAX_BUILD_TOOLS=OFF",
                 "-DSOFTMAX_BUILD_BENCH=OFF",
                 "-DSOFTMAX_BUILD_FUZZ=OFF",
                 f"-DPython_EXECUTABLE={sys.executable}"])
        run(["cmake", "--build", build_dir, "--target", "softmax_python", "-j", jobs])
        pkg = os.path.join(build_dir, "python", "softmax")
        built = [f for f in os.listdir(pkg) if f.startswith("_core.") and f.endswith(".so")]
        if len(built) != 1:
            raise RuntimeError(f"expected one built _core*.so in {pkg}, got {built}")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(pkg, built[0]), dest)


os.makedirs(os.path.join(ROOT, BUILD_BASE), exist_ok=True)
setup(
    name="softmax",
    version=project_version(),
    description="Fast, exact softmax, log-softmax, logsumexp and neighbours on strided tensors",
    long_description=open(os.path.join(ROOT, "docs", "python.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    install_requires=["numpy"],
    packages=["softmax"],
    package_dir={"softmax": "python/softmax"},
    package_data={"softmax": ["__init__.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("softmax._core")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    options={"build": {"build_base": BUILD_BASE}, "egg_info": {"egg_base": BUILD_BASE}},
)
