#!/usr/bin/env bash
# Builds the `softmax` tool and runs it on its built-in example (or on the given arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh >/dev/null
exec "${BUILD_DIR:-build}/tools/softmax" "$@"
