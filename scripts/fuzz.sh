#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan) into build-fuzz and runs each for
# SECONDS (default 60) on a copy of the seed corpus (fuzz/corpus-work/, not committed):
#   npy_fuzz   the .npy reader          (seeds: fuzz/corpus/npy)
#   text_fuzz  the CSV/text reader      (seeds: fuzz/corpus/text)
#   api_fuzz   the public C++ API, checked against the long double reference within the
#              documented bounds        (seeds: fuzz/corpus/api; the library is instrumented too)
# Crashing inputs are written to build-fuzz/artifacts/; add a fixed one to fuzz/corpus/<kind>/
# so the corpus replay tests (ctest -R fuzz_replay) keep it fixed.
#   scripts/fuzz.sh [SECONDS] [npy_fuzz|text_fuzz|api_fuzz ...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(npy_fuzz text_fuzz api_fuzz)
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
# As the sanitizer build (scripts/sanitize.sh), to fit CI's time: -O1 with line tables, no CUDA,
# kernels for AVX2 and the scalar fallback only.
# ccache where installed (install-deps.sh adds it): a rerun recompiles only what changed.
LAUNCH=(); command -v ccache >/dev/null && LAUNCH=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCH[@]}" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DSOFTMAX_BUILD_CUDA=OFF -DSOFTMAX_HWY_DISABLE="HWY_AVX3|HWY_AVX3_DL" \
  -DSOFTMAX_BUILD_FUZZ=ON -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_PYTHON=OFF \
  -DSOFTMAX_BUILD_TOOLS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}"
mkdir -p "$BUILD/artifacts"
for t in "${TARGETS[@]}"; do
  kind=${t%_fuzz}
  work=fuzz/corpus-work/$kind
  mkdir -p "$work"
  seeds=(); [ -d "fuzz/corpus/$kind" ] && seeds=("fuzz/corpus/$kind")  # libFuzzer rejects a missing folder
  echo "== $t: ${SECONDS_EACH}s" >&2
  start=$SECONDS
  # -timeout: one input may take at most 10 s (the API fuzzer's longest rows take well under 1 s)
  "$BUILD/fuzz/$t" -max_total_time="$SECONDS_EACH" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$BUILD/artifacts/$t-" -print_final_stats=1 "$work" "${seeds[@]}" \
    >"$BUILD/$t.log" 2>&1 || { tail -40 "$BUILD/$t.log" >&2; echo "$t FAILED (log: $BUILD/$t.log)" >&2; exit 1; }
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" "$BUILD/$t.log" >&2
  echo "== $t passed in $((SECONDS - start)) s" >&2
done
