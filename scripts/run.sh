#!/usr/bin/env bash
# Builds only the `softmax` tool (target softmax_cli; progress on stderr, so stdout holds just
# the tool's output) and runs it on its built-in example, or on the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
[ -x "$BUILD_DIR/tools/softmax" ] ||
  echo "run.sh: first build of the softmax tool into $BUILD_DIR/ (a few minutes on a fresh machine)" >&2
BUILD_TARGETS=softmax_cli ./scripts/build.sh >&2
exec "$BUILD_DIR/tools/softmax" "$@"
