#!/usr/bin/env bash
# Builds everything and runs every test (C++ GoogleTest suites, CLI tests, Python tests)
# through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)"
