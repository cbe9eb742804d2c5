// bench/gpu/gpu_bench.cu: GPU benchmark of the CUDA kernels with CUDA events, next to a
// device-to-device copy of the same bytes (the bandwidth ceiling). One JSON object per line on
// stdout: {"op", "dtype", "rows", "n", "ms", "bytes", "gbps", "copy_gbps", "strategy"}.
// bytes: what the op must move (read x + write y; backward read y, dy + write dx; cross-entropy
// read logits + write grad). bench/gpu/torch_bench.py adds torch's figures and writes
// bench/results/gpu.md. Usage: softmax_gpu_bench [--quick]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/cuda/cuda_kernels.hpp"

namespace {

namespace sc = softmax::cuda;
using softmax::DType;

#define CK(call)                                                                  \
  do {                                                                            \
    const cudaError_t e_ = (call);                                                \
    if (e_ != cudaSuccess) {                                                      \
      std::fprintf(stderr, "gpu_bench: %s: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                               \
    }                                                                             \
  } while (0)

// Median of `reps` timed runs of fn (after 3 warm-ups), in ms.
template <class Fn>
double time_ms(Fn&& fn, int reps) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) fn();
  std::vector<float> t;
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a));
    fn();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Dev {
  void* p = nullptr;
  explicit Dev(std::size_t bytes) { CK(cudaMalloc(&p, std::max<std::size_t>(bytes, 256))); }
  ~Dev() { cudaFree(p); }
};

void emit(const char* op, DType t, int64_t rows, int64_t n, double ms, double bytes, double copy_ms,
          const char* strategy) {
  std::printf(
      "{\"op\": \"%s\", \"dtype\": \"%s\", \"rows\": %lld, \"n\": %lld, \"ms\": %.5f, "
      "\"bytes\": %.0f, \"gbps\": %.1f, \"copy_gbps\": %.1f, \"strategy\": \"%s\"}\n",
      op, softmax::dtype_name(t), static_cast<long long>(rows), static_cast<long long>(n), ms,
      bytes, bytes / ms / 1e6, bytes / copy_ms / 1e6, strategy);
  std::fflush(stdout);
}

// Finite logit-like values (3 sin i) in storage dtype t (bf16 by truncation: timing only).
void fill(void* p, std::size_t bytes, DType t) {
  const std::size_t count = bytes / softmax::dtype_size(t);
  std::vector<unsigned char> h(bytes);
  for (std::size_t i = 0; i < count; ++i) {
    const float v = 3.0f * std::sin(static_cast<float>(i) * 0.37f);
    if (t == DType::f32) {
      std::memcpy(h.data() + 4 * i, &v, 4);
    } else {
      uint32_t u;
      std::memcpy(&u, &v, 4);
      const auto hb = static_cast<uint16_t>(u >> 16);
      std::memcpy(h.data() + 2 * i, &hb, 2);
    }
  }
  CK(cudaMemcpy(p, h.data(), bytes, cudaMemcpyHostToDevice));
}

void bench_shape(DType t, int64_t rows, int64_t n, int reps) {
  const std::size_t bytes = static_cast<std::size_t>(rows * n) * softmax::dtype_size(t);
  Dev x(bytes), y(bytes), dy(bytes), copy(bytes);
  fill(x.p, bytes, t);
  fill(dy.p, bytes, t);
  const double copy_ms =
      time_ms([&] { CK(cudaMemcpyAsync(copy.p, x.p, bytes, cudaMemcpyDeviceToDevice)); }, reps);
  emit("copy", t, rows, n, copy_ms, 2.0 * bytes, copy_ms, "cudaMemcpy D2D");
  for (auto mode : {sc::RowMode::kSoftmax, sc::RowMode::kLogSoftmax}) {
    sc::RowsArgs a;
    a.x = x.p;
    a.y = y.p;
    a.x_dtype = a.y_dtype = t;
    a.x_stride = a.y_stride = n;
    a.rows = rows;
    a.n = n;
    a.mode = mode;
    const sc::RowsPlan plan = sc::plan_rows(a, sc::device_caps());
    Dev ws(plan.workspace_bytes);
    const double ms = time_ms([&] { sc::rows(a, ws.p, plan.workspace_bytes, nullptr); }, reps);
    emit(mode == sc::RowMode::kSoftmax ? "softmax" : "log_softmax", t, rows, n, ms, 2.0 * bytes,
         copy_ms, sc::strategy_name(plan.strategy));
    sc::BackwardArgs b;
    b.y = y.p;
    b.dy = dy.p;
    b.dx = copy.p;
    b.dtype = b.dx_dtype = t;
    b.stride = b.dx_stride = n;
    b.rows = rows;
    b.n = n;
    b.mode = mode;
    const sc::BackwardPlan bp = sc::plan_backward(b, sc::device_caps());
    Dev bws(bp.workspace_bytes);
    const double bms = time_ms([&] { sc::backward(b, bws.p, bp.workspace_bytes, nullptr); }, reps);
    emit(mode == sc::RowMode::kSoftmax ? "softmax_backward" : "log_softmax_backward", t, rows, n,
         bms, 3.0 * bytes, copy_ms, sc::strategy_name(bp.strategy));
  }
}

void bench_ce(DType t, int64_t rows, int64_t n, int reps) {
  const std::size_t bytes = static_cast<std::size_t>(rows * n) * softmax::dtype_size(t);
  Dev x(bytes), g(bytes), tg(rows * 8), loss(rows * 8), red(8), copy(bytes);
  fill(x.p, bytes, t);
  std::vector<int64_t> th(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) th[r] = (r * 7919) % n;
  CK(cudaMemcpy(tg.p, th.data(), th.size() * 8, cudaMemcpyHostToDevice));
  const double copy_ms =
      time_ms([&] { CK(cudaMemcpyAsync(copy.p, x.p, bytes, cudaMemcpyDeviceToDevice)); }, reps);
  sc::CrossEntropyArgs a;
  a.logits = x.p;
  a.dtype = a.grad_dtype = t;
  a.stride = a.grad_stride = n;
  a.targets = static_cast<const int64_t*>(tg.p);
  a.loss_rows = static_cast<double*>(loss.p);
  a.loss_reduced = static_cast<double*>(red.p);
  a.grad = g.p;
  a.rows = rows;
  a.n = n;
  const std::size_t wsb = sc::cross_entropy_workspace_bytes(a);
  Dev ws(wsb);
  const double ms = time_ms([&] { sc::cross_entropy(a, ws.p, wsb, nullptr); }, reps);
  emit("cross_entropy_fwd_bwd", t, rows, n, ms, 2.0 * bytes, copy_ms, "block-per-row");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!sc::device_available()) {
    std::fprintf(stderr, "gpu_bench: no CUDA device\n");
    return 2;
  }
  const int reps = quick ? 5 : 20;
  std::vector<int64_t> grid = {256, 512, 1024, 2048, 4096, 6144, 8192, 12672};
  if (quick) grid = {256, 4096, 12672};
  for (DType t : {DType::f32, DType::bf16}) {
    for (int64_t n : grid) bench_shape(t, 4096, n, reps);
    bench_shape(t, 16, 131072, reps);
    bench_shape(t, 4, 262144, reps);
    bench_shape(t, 1, 1048576, reps);
    bench_ce(t, 4096, 32768, reps);
  }
  bench_ce(DType::bf16, 8192, 128256, quick ? 3 : 10);
  return 0;
}
