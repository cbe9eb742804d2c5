"""`pip install .` for the `softmax` Python module: drives the project's CMake.

Offline on Debian 12 (no PyPI; setuptools, wheel, pybind11-dev, python3-dev, libhwy-dev,
libdlpack-dev from apt, see scripts/install-deps.sh):

    /usr/bin/python3 -m venv --system-site-packages /tmp/softmax-venv
    /tmp/softmax-venv/bin/python -m pip install --no-build-isolation --no-deps .

CMake builds only the extension target (tests and the CLI off) into build-pip/ (never build/,
which scripts/build.sh owns). CMAKE_BUILD_PARALLEL_LEVEL sets the build jobs (default 2).
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


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        os.makedirs(build_dir, exist_ok=True)
        configure = [
            "cmake", "-S", ROOT, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DSOFTMAX_BUILD_PYTHON=ON",
            "-DSOFTMAX_BUILD_TESTS=OFF",
            "-DSOFTMAX_BUILD_TOOLS=OFF",
            "-DSOFTMAX_BUILD_BENCH=OFF",
            "-DSOFTMAX_BUILD_FUZZ=OFF",
            f"-DPython_EXECUTABLE={sys.executable}",
        ]
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.check_call(configure)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "softmax_python",
                               "-j", jobs])
        built = [f for f in os.listdir(os.path.join(build_dir, "python"))
                 if f.startswith("softmax.") and f.endswith(".so")]
        if len(built) != 1:
            raise RuntimeError(f"expected one built softmax*.so in {build_dir}/python, got {built}")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(build_dir, "python", built[0]), dest)


os.makedirs(os.path.join(ROOT, BUILD_BASE), exist_ok=True)
setup(
    name="softmax",
    version=project_version(),
    description="Fast, exact softmax, log-softmax, logsumexp and neighbours on strided tensors",
    long_description=open(os.path.join(ROOT, "docs", "python.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    install_requires=["numpy"],
    ext_modules=[CMakeExtension("softmax")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    options={"build": {"build_base": BUILD_BASE}, "egg_info": {"egg_base": BUILD_BASE}},
)
