#!/usr/bin/env bash
# Configures and builds into ${BUILD_DIR:-build} (Release), installing Debian packages first
# if any are missing. Extra arguments go to cmake's configure step. BUILD_TARGETS (space
# separated, default: everything) limits what is built; cmake's progress lines go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
echo "build.sh: configuring $BUILD_DIR (Release)" >&2
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
echo "build.sh: building ${BUILD_TARGETS:-everything} with $(nproc) jobs" >&2
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
