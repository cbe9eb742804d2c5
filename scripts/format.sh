#!/usr/bin/env bash
# Formats the tracked C, C++ and CUDA sources with clang-format-14 and the project's
# .clang-format:
#   scripts/format.sh           rewrite the files in place
#   scripts/format.sh --check   change nothing; list the files that differ and exit 1 (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
FMT=${CLANG_FORMAT:-clang-format-14}
command -v "$FMT" >/dev/null || { echo "format.sh: $FMT not found (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.c' '*.cc' '*.h' '*.hpp' '*.cu' '*.cuh')
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do
    "$FMT" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'format.sh: not formatted (run scripts/format.sh): %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files formatted" >&2
else
  "$FMT" -i "${files[@]}"
fi
