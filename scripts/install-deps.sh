#!/usr/bin/env bash
# Installs the Debian 12 packages the build, tests and benchmarks need.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=(cmake g++ make pkg-config clang libclang-rt-14-dev clang-format clang-tidy
      libomp-dev libhwy-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libmpfr-dev
      libdnnl-dev libopenblas-serial-dev libxnnpack-dev libpthreadpool-dev libdlpack-dev
      libopenmpi-dev openmpi-bin python3-mpi4py ccache
      pybind11-dev python3-dev python3-numpy python3-pytest python3-pybind11 python3-scipy
      python3-setuptools python3-pip python3-wheel python3-venv)
if [ "${SOFTMAX_BENCH_DEPS:-0}" = 1 ]; then pkgs+=(python3-torch python3-matplotlib); fi
if [ "${SOFTMAX_TORCH:-1}" = 1 ]; then pkgs+=(python3-torch); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
