#!/usr/bin/env bash
# scripts/gpu-check.sh: the GPU check on a machine with one NVIDIA GPU (an H200 is the target):
# builds the CUDA kernels, runs every CUDA test (none may skip), compute-sanitizer memcheck on a
# small subset, the GPU benchmark against a device-to-device copy and torch, and writes
# bench/results/gpu.md. Every step is printed and has its own timeout (about 8 minutes in all).
#   scripts/gpu-check.sh [--quick]      (BUILD_DIR, JOBS, PYTHON, CUDA_ARCH override defaults)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
[[ "${1:-}" == "--quick" ]] && QUICK="--quick"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
JOBS="${JOBS:-$(nproc)}"
PYTHON="${PYTHON:-python3}"
CUDA_ARCH="${CUDA_ARCH:-90a}"
export PATH="/usr/local/cuda/bin:$PATH"
START=$(date +%s)

step() { echo; echo "=== [$(( $(date +%s) - START ))s] $*"; }
run() {  # run <seconds> <command...>: fails the script on error or timeout
  local limit=$1; shift
  echo "+ $*"
  if ! timeout --kill-after=10 "$limit" "$@"; then
    echo "gpu-check: FAILED (or timed out after ${limit}s): $*" >&2
    exit 1
  fi
}

step "device"
run 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

step "configure"
run 120 cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_CUDA=ON \
  -DSOFTMAX_CUDA_ARCHITECTURES="$CUDA_ARCH" -DSOFTMAX_BUILD_PYTHON=OFF -DSOFTMAX_BUILD_TOOLS=OFF

step "build (CUDA kernels, CUDA tests, GPU benchmark)"
TESTS=$(cd tests/cuda && ls *_test.cc *_test.cu 2>/dev/null | sed 's/\.c[cu]$//; s/^/cuda_/')
run 300 cmake --build "$BUILD_DIR" -j "$JOBS" --target softmax_gpu_bench $TESTS

step "CUDA tests (GPU cases must run, not skip)"
for t in $TESTS; do
  log="$BUILD_DIR/$t.log"
  run 180 "$BUILD_DIR/tests/cuda/$t" --gtest_brief=1 2>&1 | tee "$log" | tail -3
  if grep -q "SKIPPED" "$log"; then
    echo "gpu-check: $t skipped GPU cases on a GPU machine" >&2
    exit 1
  fi
done

step "compute-sanitizer memcheck (subset)"
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null || true)
if [[ -z "$SANITIZER" ]]; then
  echo "gpu-check: WARNING: compute-sanitizer not installed: memcheck NOT run" >&2
else
run 180 "$SANITIZER" --tool memcheck --error-exitcode 1 --leak-check full \
  "$BUILD_DIR/tests/cuda/cuda_kernels_gpu_test" \
  --gtest_filter='CudaRows.InPlace:CudaRows.BatchInvariant:CudaRows.ShortWorkspaceThrowsBeforeLaunch:CudaArgmax.*'
fi

step "benchmark (ours vs copy)"
run 180 "$BUILD_DIR/bench/gpu/softmax_gpu_bench" $QUICK > "$BUILD_DIR/gpu_bench.jsonl"
cat "$BUILD_DIR/gpu_bench.jsonl"

step "benchmark (torch) and bench/results/gpu.md"
run 240 "$PYTHON" bench/gpu/torch_bench.py "$BUILD_DIR/gpu_bench.jsonl" bench/results/gpu.md $QUICK
cat bench/results/gpu.md

step "done in $(( $(date +%s) - START ))s"
