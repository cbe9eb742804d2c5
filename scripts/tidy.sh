#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy: the bugprone and performance checks) over the project's own
# sources: the library (src/, capi/), the tools, the Python bindings and the examples. Any
# warning fails the run (exit 1) and is printed. Needs only a configured build directory with
# compile_commands.json (nothing is compiled): TIDY_BUILD_DIR (default build-tidy).
# Measured on 2 shared cores: see the time it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
dir=${TIDY_BUILD_DIR:-build-tidy}
start=$SECONDS
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DSOFTMAX_BUILD_CUDA=OFF >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run-clang-tidy-14 -p "$dir" -quiet -j "$(nproc)" "$PWD/(src|capi|tools|python|examples)/" \
  >"$log" 2>&1 || true
if grep -E "(warning|error):" "$log" | grep -v "warnings generated" >/dev/null; then
  grep -E -A3 "(warning|error):" "$log" | grep -v "warnings generated" >&2
  echo "tidy: clang-tidy reported the findings above ($((SECONDS - start)) s)" >&2
  exit 1
fi
echo "tidy: clean over $(grep -c '"file"' "$dir/compile_commands.json") files in $((SECONDS - start)) s" >&2
