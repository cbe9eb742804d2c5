// src/cuda/cuda_kernels.hpp: the launch API of the CUDA kernels (no CUDA types in it).
//
// The shape of the CPU kernel table (src/cpu/kernels.hpp, KernelTable::rows): each call works on
// `rows` contiguous rows of n elements in device memory, row r at x + r * x_stride (elements),
// and enqueues its kernels on `stream` (a cudaStream_t passed as void*; nullptr is the legacy
// default stream). Nothing here allocates device memory: a call that needs scratch space takes
// a caller workspace of at least *_workspace_bytes(...) bytes (any 256-byte aligned device
// pointer; nullptr when 0 bytes are needed). The kernels never synchronise the stream.
//
// Errors: a request outside the rules below throws softmax::Error (kInvalidArgument,
// kDTypeMismatch or kUnsupported) before anything is enqueued; a CUDA launch failure throws
// softmax::Error (kUnsupported) naming the CUDA error. Inputs the ops accept but cannot
// compute (NaN rows, ...) follow the CPU ops' rules (softmax/ops.hpp).
//
// Dtypes: x in {f32, bf16, f16} computes in f32 (y any of f32, bf16, f16); f64 -> f64.
// Numerics: see docs/gpu.md (what is bit-identical with the CPU, and the GPU bounds).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "softmax/cross_entropy.hpp"
#include "softmax/tensor.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax::cuda {

using cpu::RowMode;

// Bytes of one split-row record (chunk statistics and the 16 block maxima;
// src/cuda/softmax_rows.cu).
inline constexpr std::size_t kChunkRecordBytes = 168;

// How the rows of one call are mapped onto the GPU (logged under SOFTMAX_VERBOSE=1).
enum class Strategy : uint8_t {
  kWarpPerRow,     // n <= 2048: one warp per row, the row staged in shared memory
  kCtaPerRow,      // one thread block per row, the whole row in shared memory (one read)
  kClusterPerRow,  // sm_90: a thread-block cluster per row, one 32768-element chunk per block,
                   // chunk statistics exchanged through distributed shared memory (one read)
  kSplitRow,       // past cluster capacity: chunk statistics to the workspace, then a second
                   // kernel merges them and writes y (two reads of x; three for f64)
};
const char* strategy_name(Strategy s) noexcept;

// What the launch logic needs to know about the device (queried once per device).
struct DeviceCaps {
  int sm_major = 0;
  int sm_minor = 0;
  int sm_count = 0;
  int64_t smem_optin_bytes = 0;  // shared memory per block with the opt-in attribute
  int max_cluster = 0;           // largest usable cluster of chunk-sized blocks (0: none)
};
// The caps of `device` (-1: the current device). Throws softmax::Error when no device.
DeviceCaps device_caps(int device = -1);
// True when a CUDA device is present and usable (never throws).
bool device_available() noexcept;

// ---- softmax / log_softmax / logsumexp rows ----
struct RowsArgs {
  const void* x = nullptr;
  DType x_dtype = DType::f32;
  int64_t x_stride = 0;  // elements between rows (>= n when rows > 1)
  void* y = nullptr;     // softmax/log_softmax: rows of n; logsumexp: one value per row
  DType y_dtype = DType::f32;
  int64_t y_stride = 0;  // logsumexp: elements between the per-row values
  int64_t rows = 0;
  int64_t n = 0;
  double temperature = 1.0;  // finite, > 0
  RowMode mode = RowMode::kSoftmax;
};

// The launch plan of a rows call: pure host logic (unit-tested without a GPU).
struct RowsPlan {
  Strategy strategy = Strategy::kWarpPerRow;
  int threads = 0;         // per block
  int rows_per_block = 1;  // kWarpPerRow: rows handled by one block (one per warp)
  int tile_stride = 0;     // kWarpPerRow: elements between the warps' tiles
  int64_t row_batch = 0;   // kClusterPerRow / kSplitRow: rows per launch (grid y <= 65535)
  int64_t chunks = 1;      // 32768-element chunks per row
  int cluster = 1;         // kClusterPerRow: blocks per cluster (= chunks)
  int64_t grid_x = 0;      // blocks (kSplitRow: chunks), grid_y: rows (kSplitRow)
  int64_t grid_y = 1;
  std::size_t smem_bytes = 0;
  std::size_t workspace_bytes = 0;
  std::string why;  // one line for SOFTMAX_VERBOSE
};
// Throws softmax::Error on a request the kernels do not serve (see RowsArgs).
RowsPlan plan_rows(const RowsArgs& a, const DeviceCaps& caps);
std::size_t rows_workspace_bytes(const RowsArgs& a, int device = -1);
void rows(const RowsArgs& a, void* workspace, std::size_t workspace_bytes, void* stream);

// ---- softmax_backward / log_softmax_backward rows ----
// kSoftmax:    dx = y * (dy - sum(dy * y)) / T
// kLogSoftmax: dx = (dy - exp(y) * sum(dy)) / T
// y, dy: rows of n of dtype `dtype` (same strides); dx: rows of n of dx_dtype (may be y or dy).
struct BackwardArgs {
  const void* y = nullptr;
  const void* dy = nullptr;
  DType dtype = DType::f32;
  int64_t stride = 0;  // y and dy row stride
  void* dx = nullptr;
  DType dx_dtype = DType::f32;
  int64_t dx_stride = 0;
  int64_t rows = 0;
  int64_t n = 0;
  double temperature = 1.0;
  RowMode mode = RowMode::kSoftmax;  // kSoftmax or kLogSoftmax
};
struct BackwardPlan {
  Strategy strategy = Strategy::kWarpPerRow;
  int threads = 0;
  int64_t grid_x = 0, grid_y = 1;
  int64_t blocks = 1;  // 2048-element blocks per row
  std::size_t smem_bytes = 0;
  std::size_t workspace_bytes = 0;
  std::string why;
};
BackwardPlan plan_backward(const BackwardArgs& a, const DeviceCaps& caps);
std::size_t backward_workspace_bytes(const BackwardArgs& a, int device = -1);
void backward(const BackwardArgs& a, void* workspace, std::size_t workspace_bytes, void* stream);

// ---- argmax rows: index of the first maximum (first NaN if any) of each row, n >= 1 ----
void argmax(const void* x, DType dtype, int64_t x_stride, int64_t rows, int64_t n,
            int64_t* index_out, void* stream);

// ---- cross-entropy forward + backward rows (hard targets) ----
// The formulas of softmax/cross_entropy.hpp (PyTorch's): row r with target t = targets[r],
// lse = logsumexp(x_r), p = softmax(x_r), class weights w (all 1 when null), W = sum_c w_c,
// eps = label_smoothing, z = z_loss:
//   loss_r = (1 - eps) w_t (lse - x_t) + (eps / n) sum_c w_c (lse - x_c) + z lse^2
//   grad_rc = g ((1 - eps) w_t + (eps / n) W + 2 z lse) p_c - g (eps / n) w_c
//             - g (1 - eps) w_t [c == t]
// t == ignore_index: loss 0, gradient 0, lse still written. g = grad_scale / D (mean, D = sum of
// w_t over kept rows; D == 0: the mean is NaN and the gradient 0), grad_scale / normalizer
// (sum), grad_scale (none). The gradient is written in the same kernel as the loss (one read
// for the statistics, one for the gradient). Targets are device data and are not validated
// here (the op validates them on the host first): a target outside [0, n) that is not
// ignore_index gives that row a NaN loss and a NaN gradient.
// logits: rows of n (f32, bf16, f16: f32 exps with f64 sums; f64); grad: rows of n of
// grad_dtype (as the rows dtype rules; may be the logits themselves), or null.
// Outputs (f64, device memory, each may be null): loss_rows (rows), lse_rows (rows),
// loss_reduced (one value; sum / mean).
// Bound: |loss_r - exact| <= 2^-20 (1 + |loss_r|) (f32 logits; f64: 2^-49) and the gradient as
// the CPU op's; not bit-identical with the CPU (the sums use a different fixed order).
struct CrossEntropyArgs {
  const void* logits = nullptr;
  DType dtype = DType::f32;
  int64_t stride = 0;
  const int64_t* targets = nullptr;
  const float* weight = nullptr;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  double z_loss = 0.0;
  Reduction reduction = Reduction::kMean;
  double normalizer = 1.0;
  double grad_scale = 1.0;
  double* loss_rows = nullptr;
  double* lse_rows = nullptr;
  double* loss_reduced = nullptr;
  void* grad = nullptr;
  DType grad_dtype = DType::f32;
  int64_t grad_stride = 0;
  int64_t rows = 0;
  int64_t n = 0;
};
// Workspace: the per-row losses and the mean's denominator.
std::size_t cross_entropy_workspace_bytes(const CrossEntropyArgs& a);
void cross_entropy(const CrossEntropyArgs& a, void* workspace, std::size_t workspace_bytes,
                   void* stream);

}  // namespace softmax::cuda
