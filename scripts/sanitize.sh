#!/usr/bin/env bash
# Builds the whole test suite with AddressSanitizer + UndefinedBehaviorSanitizer (GCC, libgomp,
# RelWithDebInfo) into ${SANITIZE_BUILD_DIR:-build-asan} and runs it through CTest.
#   scripts/sanitize.sh [extra cmake configure args]
# Environment:
#   SANITIZE_CTEST_EXCLUDE  extra CTest -E regex (e.g. a long test) added to the fixed exclusions
#   SANITIZE_JOBS           build and test parallelism (default: nproc)
#   SANITIZE_FUZZ_SECONDS   the bounded API fuzz run after the tests (default 240; 0 skips it)
#   SANITIZE_FUZZ_SEED      its seed (default 1: every CI run tries the same inputs, a prefix
#                           of the ones checked before landing; set another to explore)
#   SANITIZE_FUZZ_RUNS      at most this many mutated inputs (default 10000)
# Excluded tests, with the reason:
#   consumer_*, capi_consumer_*, capi_doc_example
#               build a separate consumer program (C, Rust, ctypes) against the library with
#               the consumer's own (uninstrumented) flags: packaging tests; an instrumented
#               libsoftmax.so needs the ASan runtime first in the process, which they do not have.
#   cli_llm     runs softmax-llm under `ulimit -v` (the memory-bomb checks): ASan reserves
#               terabytes of shadow address space and cannot start under that limit. The same
#               checks run instrumented in llm_test (C++).
# Environment of the instrumented runs: allocator_may_return_null=1, so the tests that ask for
# an impossible allocation see std::bad_alloc as in a normal build (ASan aborts otherwise). The
# MPI tests run without leak detection: Open MPI keeps allocations past MPI_Finalize by design.
# dist_sampling_test and dist_top_logprobs_test too: they run the ops from short-lived
# std::threads (one per rank), each with its own OpenMP pool, and LeakSanitizer reports the
# per-thread sampling scratch
# (thread_scratch, one row of weights per thread, reused across calls) of those pool threads,
# which libgomp never joins, at exit.
# The Python tests (and the CLI tests labelled python_module, which import the module to compare
# with the CLI) run the extension module (instrumented) inside Debian's uninstrumented
# /usr/bin/python3, so libasan is preloaded for them (it must come first in the process), with
# libstdc++ right after it (the interpreter does not link it, and ASan's __cxa_throw interceptor
# must find it at start-up or the first C++ exception aborts the process), and
# leak detection is off (the interpreter keeps its allocations at exit by design).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
./scripts/install-deps.sh
BUILD=${SANITIZE_BUILD_DIR:-build-asan}
JOBS=${SANITIZE_JOBS:-$(nproc)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# To fit CI's time on 2 cores: -O1 with line tables only, no CUDA, and the kernels compiled for
# AVX2 and the scalar fallback only (AVX-512 targets left out: SOFTMAX_HWY_DISABLE).
# ccache where installed (install-deps.sh adds it): a rerun recompiles only what changed.
LAUNCH=(); command -v ccache >/dev/null && LAUNCH=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=gcc CXX=g++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCH[@]}" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DSOFTMAX_BUILD_CUDA=OFF -DSOFTMAX_HWY_DISABLE="HWY_AVX3|HWY_AVX3_DL" \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" -DCMAKE_MODULE_LINKER_FLAGS="$SAN" \
  "$@" >/dev/null
cmake --build "$BUILD" -j"$JOBS"
libasan=$(g++ -print-file-name=libasan.so)
libstdcxx=$(g++ -print-file-name=libstdc++.so)
exclude='^consumer_|^capi_consumer_|^capi_doc_example$|^cli_llm$'
[ -n "${SANITIZE_CTEST_EXCLUDE:-}" ] && exclude="$exclude|$SANITIZE_CTEST_EXCLUDE"
cd "$BUILD"
# The first report fails the test. The C++ tests and the CLI keep leak checking.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1
ctest --output-on-failure -j"$JOBS" -LE python_module -E "$exclude|^python_tests$|^mpi_|^cli_vocab_parallel$|^dist_sampling_test$|^dist_top_logprobs_test$"
# MPI processes: no leak check (see the header).
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
  ctest --output-on-failure -j"$JOBS" -R '^mpi_|^cli_vocab_parallel$|^dist_sampling_test$|^dist_top_logprobs_test$' -E "$exclude|python"
# Python processes: the preloaded runtime, no leak check (see the header).
LD_PRELOAD="$libasan:$libstdcxx" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
  ctest --output-on-failure -j"$JOBS" -R '^python_tests$|^mpi_dist_python' -E "$exclude"
# CLI tests that import the module as well (CTest label python_module, tests/cli/CMakeLists.txt).
LD_PRELOAD="$libasan:$libstdcxx" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
  ctest --output-on-failure -j"$JOBS" -L python_module -E "$exclude"
# The API fuzzer (fuzz/api_fuzz.cc: random op, dtypes, shapes, strides, in place, axis,
# temperature, threads, special values; every call either throws softmax::Error with the
# output untouched or matches the long double reference within the documented bound), for a
# bounded time on mutations of its corpus, instrumented as above. A failing input is left in
# $BUILD/replay-crash-SEED; replay it with `$BUILD/fuzz/api_fuzz_replay FILE`.
# (scripts/fuzz.sh runs the coverage-guided libFuzzer build of the same target.)
FUZZ_SECONDS=${SANITIZE_FUZZ_SECONDS:-240}
if [ "$FUZZ_SECONDS" != 0 ]; then
  seed=${SANITIZE_FUZZ_SEED:-1}
  echo "== sanitize: API fuzzer, ${FUZZ_SECONDS} s, seed $seed" >&2
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
    ./fuzz/api_fuzz_replay --mutate "$FUZZ_SECONDS" "$seed" "${SANITIZE_FUZZ_RUNS:-10000}" "$ROOT/fuzz/corpus/api"
fi
