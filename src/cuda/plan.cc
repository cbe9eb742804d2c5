// src/cuda/plan.cc: launch plans of the CUDA kernels: argument rules and the strategy per row
// length. Plain host C++ (no CUDA runtime), so it is unit-tested on machines without a GPU.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "softmax/error.hpp"
#include "src/base/format.hpp"
#include "src/cuda/cuda_kernels.hpp"

namespace softmax::cuda {
namespace {

constexpr int64_t kBlock = cpu::kBlockElems;  // 2048
constexpr int64_t kChunk = cpu::kChunkElems;  // 32768
constexpr int64_t kMaxGridY = 65535;
constexpr std::size_t kScratchReserve = 4096;  // static shared memory of the kernels

}  // namespace

namespace {

bool is_f32_storage(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

// x in {f32, bf16, f16} with y in {f32, bf16, f16}, or f64 with f64.
void check_dtypes(const char* op, const char* x_arg, DType x, const char* y_arg, DType y) {
  if (!is_f32_storage(x) && x != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, x_arg, dtype_name(x),
                "must be f32, f64, bf16 or f16");
  }
  const bool ok = x == DType::f64 ? y == DType::f64 : is_f32_storage(y);
  if (!ok) {
    throw Error(ErrorKind::kDTypeMismatch, op, y_arg, dtype_name(y),
                std::string("must be ") + (x == DType::f64 ? "f64" : "f32, bf16 or f16") + " for " +
                    x_arg + " of dtype " + dtype_name(x));
  }
}

void check_count(const char* op, const char* arg, int64_t v, int64_t max) {
  if (v < 0 || v > max) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, std::to_string(v),
                "must be in [0, " + std::to_string(max) + "]");
  }
}

void check_stride(const char* op, const char* arg, int64_t stride, int64_t min, int64_t rows) {
  if (rows > 1 && stride < min) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, std::to_string(stride),
                "must be >= " + std::to_string(min) + " (rows must not overlap)");
  }
}

void check_ptr(const char* op, const char* arg, const void* p, bool needed) {
  if (needed && p == nullptr) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, "null", "must point to device memory");
  }
}

double check_temperature(const char* op, double t) {
  if (!(t > 0) || !std::isfinite(t)) {
    throw Error(ErrorKind::kInvalidArgument, op, "temperature", std::to_string(t),
                "must be finite and > 0");
  }
  return t;
}

int warps_for(int64_t n) {
  return static_cast<int>(std::clamp<int64_t>((n + kBlock - 1) / kBlock, 2, 16));
}

}  // namespace

const char* strategy_name(Strategy s) noexcept {
  switch (s) {
    case Strategy::kWarpPerRow: return "warp-per-row";
    case Strategy::kCtaPerRow: return "block-per-row";
    case Strategy::kClusterPerRow: return "cluster-per-row";
    case Strategy::kSplitRow: return "split-row";
  }
  return "?";
}

RowsPlan plan_rows(const RowsArgs& a, const DeviceCaps& caps) {
  const char* op = a.mode == RowMode::kSoftmax      ? "softmax"
                   : a.mode == RowMode::kLogSoftmax ? "log_softmax"
                                                    : "logsumexp";
  if (a.mode != RowMode::kSoftmax && a.mode != RowMode::kLogSoftmax &&
      a.mode != RowMode::kLogSumExp) {
    throw Error(ErrorKind::kInvalidArgument, op, "mode", std::to_string(static_cast<int>(a.mode)),
                "must be softmax, log_softmax or logsumexp");
  }
  check_dtypes(op, "x", a.x_dtype, "y", a.y_dtype);
  check_count(op, "rows", a.rows, std::numeric_limits<int32_t>::max());
  check_count(op, "n", a.n, std::numeric_limits<int32_t>::max() - kChunk);
  const bool reduce = a.mode == RowMode::kLogSumExp;
  check_stride(op, "x_stride", a.x_stride, 0, a.rows);
  check_stride(op, "y_stride", a.y_stride, reduce ? 1 : a.n, a.rows);
  const bool work = a.rows > 0 && a.n > 0;
  check_ptr(op, "x", a.x, work);
  check_ptr(op, "y", a.y, work);
  const cpu::Temperature tp = cpu::MakeTemperature(check_temperature(op, a.temperature));
  const bool f64 = a.x_dtype == DType::f64;
  if (!f64 && !tp.f32_ok()) {
    throw Error(ErrorKind::kUnsupported, op, "temperature", detail::num_str(a.temperature),
                "1/temperature must be in [2^-100, 2^100] for f32/bf16/f16 rows on the GPU");
  }
  RowsPlan p;
  const std::size_t cs = f64 ? 8 : 4;
  const int64_t n = a.n;
  p.chunks = n == 0 ? 1 : (n + kChunk - 1) / kChunk;
  const auto smem_cap =
      static_cast<std::size_t>(std::max<int64_t>(caps.smem_optin_bytes, 48 * 1024));
  const std::size_t row_bytes = static_cast<std::size_t>((n + 3) / 4 * 4) * cs;
  if (n <= kBlock) {
    p.strategy = Strategy::kWarpPerRow;
    p.threads = 128;
    p.rows_per_block = 4;
    p.tile_stride = static_cast<int>((n + 3) / 4 * 4);
    p.grid_x = (a.rows + 3) / 4;
    p.smem_bytes = 4 * row_bytes;
    p.why = "n <= 2048: one warp per row, the row staged in shared memory";
  } else if (n <= kChunk && row_bytes + kScratchReserve <= smem_cap) {
    p.strategy = Strategy::kCtaPerRow;
    p.threads = 32 * warps_for(n);
    p.grid_x = a.rows;
    p.smem_bytes = row_bytes;
    p.why =
        "one chunk (<= 32768 elements): one block per row, the row in shared memory, one warp per "
        "2048-element block";
  } else if (!f64 && caps.sm_major >= 9 && p.chunks <= caps.max_cluster) {
    p.strategy = Strategy::kClusterPerRow;
    p.threads = 512;
    p.cluster = static_cast<int>(p.chunks);
    p.grid_x = p.chunks;
    p.row_batch = std::min(a.rows, kMaxGridY);
    p.grid_y = p.row_batch;
    p.smem_bytes = static_cast<std::size_t>(kChunk) * cs;
    p.why = "row up to " + std::to_string(caps.max_cluster) +
            " chunks of 32768: a cluster per row, one chunk per block in shared memory, chunk "
            "statistics merged through distributed shared memory";
  } else {
    p.strategy = Strategy::kSplitRow;
    p.threads = 512;
    p.grid_x = p.chunks;
    p.row_batch = std::min(a.rows, kMaxGridY);
    p.grid_y = p.row_batch;
    p.workspace_bytes = work ? 2 * static_cast<std::size_t>(p.row_batch) *
                                   static_cast<std::size_t>(p.chunks) * kChunkRecordBytes
                             : 0;
    p.why = f64 ? "past block capacity (f64): chunk maxima, chunk sums relative to the row max, "
                  "then a kernel merges them and writes y (three reads)"
                : "past cluster capacity: chunk statistics to the workspace, then a kernel merges "
                  "them and writes y (two reads)";
  }
  return p;
}

BackwardPlan plan_backward(const BackwardArgs& a, const DeviceCaps& caps) {
  const char* op = a.mode == RowMode::kSoftmax ? "softmax_backward" : "log_softmax_backward";
  if (a.mode != RowMode::kSoftmax && a.mode != RowMode::kLogSoftmax) {
    throw Error(ErrorKind::kInvalidArgument, op, "mode", std::to_string(static_cast<int>(a.mode)),
                "must be softmax or log_softmax");
  }
  check_dtypes(op, "y", a.dtype, "dx", a.dx_dtype);
  check_count(op, "rows", a.rows, std::numeric_limits<int32_t>::max());
  check_count(op, "n", a.n, std::numeric_limits<int32_t>::max() - kChunk);
  check_stride(op, "stride", a.stride, 0, a.rows);
  check_stride(op, "dx_stride", a.dx_stride, a.n, a.rows);
  const bool work = a.rows > 0 && a.n > 0;
  check_ptr(op, "y", a.y, work);
  check_ptr(op, "dy", a.dy, work);
  check_ptr(op, "dx", a.dx, work);
  check_temperature(op, a.temperature);
  BackwardPlan p;
  const int64_t n = a.n;
  p.blocks = n == 0 ? 1 : (n + kBlock - 1) / kBlock;
  (void)caps;
  if (n <= kBlock) {
    p.strategy = Strategy::kWarpPerRow;
    p.threads = 128;
    p.grid_x = (a.rows + 3) / 4;
    p.why = "n <= 2048: one warp per row (y and dy re-read from cache)";
  } else {
    p.strategy = Strategy::kSplitRow;
    p.threads = 256;
    p.grid_x = a.rows * p.blocks;  // kernel 1: one warp per block, 8 per thread block
    p.workspace_bytes = work ? static_cast<std::size_t>(a.rows * p.blocks) * sizeof(double) : 0;
    p.why =
        "long rows: block sums to the workspace, then a kernel merges them in block order "
        "and writes dx (two reads)";
  }
  return p;
}

}  // namespace softmax::cuda
