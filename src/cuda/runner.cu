// src/cuda/runner.cu: the CUDA backend (runner.hpp). Host code only: it maps a plan's row
// geometry onto the launch API of cuda_kernels.hpp. Served layouts: rows contiguous along the
// axis with one constant stride between rows (any C-order tensor, any axis that is the last
// one or whose outer dims collapse); other layouts are kUnsupported, named, before any launch.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "softmax/error.hpp"
#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/runner.hpp"

namespace softmax::cuda {
namespace {

using detail::AxisOp;
using detail::AxisPlan;
using detail::BackwardPlan;
using detail::Exec;
using detail::RowGeometry;

// The constant stride between consecutive rows of x (and of y) when the rows of g are contiguous
// along the axis and evenly spaced; false otherwise. y_reduced: y holds one value per row.
// (make_row_geometry has already merged every pair of outer dims that steps uniformly, so more
// than one outer dim left means the rows are not evenly spaced.)
bool row_strides(const RowGeometry& g, bool y_reduced, int64_t* xs, int64_t* ys) {
  if (g.x_step != 1 || (!y_reduced && g.y_step != 1) || g.dims.size() > 1) return false;
  *xs = g.dims.empty() ? g.n : g.x_strides[0];
  *ys = g.dims.empty() ? (y_reduced ? 1 : g.n) : g.y_strides[0];
  return true;
}

[[noreturn]] void unsupported_layout(const char* op, const char* arg) {
  throw Error(ErrorKind::kUnsupported, op, arg, "a CUDA view with this layout",
              "the CUDA backend takes rows contiguous along the axis with one constant stride "
              "between rows (C order); make the tensor contiguous first");
}

// Scratch of one run: the caller's workspace, or cudaMallocAsync on the stream (freed on it).
class Scratch {
 public:
  Scratch(const char* op, const Exec& exec, std::size_t needed)
      : stream_(static_cast<cudaStream_t>(exec.cuda_stream)), bytes_(needed) {
    if (needed == 0) return;
    ptr_ = detail::caller_workspace(op, exec, needed);
    if (ptr_ != nullptr) {
      bytes_ = exec.workspace_bytes;
      return;
    }
    const cudaError_t e = cudaMallocAsync(&ptr_, needed, stream_);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error(ErrorKind::kUnsupported, op,
                  "cudaMallocAsync of " + std::to_string(needed) + " bytes of scratch failed: " +
                      cudaGetErrorName(e) + " (pass a Context workspace to avoid it)");
    }
    owned_ = true;
  }
  ~Scratch() {
    if (owned_) cudaFreeAsync(ptr_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }

 private:
  cudaStream_t stream_;
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  bool owned_ = false;
};

RowsArgs rows_args(const AxisPlan& p) {
  RowsArgs a;
  int64_t xs = 0, ys = 0;
  if (!row_strides(p.g, p.reduction(), &xs, &ys)) unsupported_layout(p.op, "x");
  a.x = p.x;
  a.x_dtype = p.x_dtype;
  a.x_stride = xs;
  a.y = p.y;
  a.y_dtype = p.y_dtype;
  a.y_stride = ys;
  a.rows = p.g.rows;
  a.n = p.g.n;
  a.temperature = p.temperature;
  a.mode = p.row_mode();
  return a;
}

std::size_t axis_workspace_bytes(const AxisPlan& p, const Exec&) {
  if (p.op_kind == AxisOp::kArgmax) return 0;
  return rows_workspace_bytes(rows_args(p));
}

void run_axis(const AxisPlan& p, const Exec& exec) {
  if (p.op_kind == AxisOp::kArgmax) {
    int64_t xs = 0, ys = 0;
    if (!row_strides(p.g, true, &xs, &ys)) unsupported_layout(p.op, "x");
    if (p.y_dtype != DType::i64 || (ys != 1 && p.g.rows > 1)) {
      throw Error(ErrorKind::kUnsupported, p.op, "indices", dtype_name(p.y_dtype),
                  "the CUDA backend writes contiguous i64 indices");
    }
    argmax(p.x, p.x_dtype, xs, p.g.rows, p.g.n, static_cast<int64_t*>(p.y), exec.cuda_stream);
    return;
  }
  const RowsArgs a = rows_args(p);
  const Scratch ws(p.op, exec, rows_workspace_bytes(a));
  rows(a, ws.data(), ws.bytes(), exec.cuda_stream);
}

BackwardArgs backward_args(const BackwardPlan& p) {
  int64_t ys = 0, dxs = 0, ds = 0, dxs2 = 0;
  if (!row_strides(p.gy, false, &ys, &dxs)) unsupported_layout(p.op, "y");
  if (!row_strides(p.gd, false, &ds, &dxs2)) unsupported_layout(p.op, "dy");
  if (ds != ys) {
    throw Error(
        ErrorKind::kUnsupported, p.op, "dy", "row stride " + std::to_string(ds),
        "the CUDA backend needs y and dy with the same row stride (" + std::to_string(ys) + ")");
  }
  BackwardArgs a;
  a.y = p.y;
  a.dy = p.dy;
  a.dtype = p.dtype;
  a.stride = ys;
  a.dx = p.dx;
  a.dx_dtype = p.dx_dtype;
  a.dx_stride = dxs;
  a.rows = p.gy.rows;
  a.n = p.gy.n;
  a.temperature = p.temperature;
  a.mode = p.mode;
  return a;
}

std::size_t backward_workspace(const BackwardPlan& p, const Exec&) {
  return backward_workspace_bytes(backward_args(p));
}

void run_backward(const BackwardPlan& p, const Exec& exec) {
  const BackwardArgs a = backward_args(p);
  const Scratch ws(p.op, exec, backward_workspace_bytes(a));
  backward(a, ws.data(), ws.bytes(), exec.cuda_stream);
}

}  // namespace

const detail::Backend& backend() {
  static const detail::Backend b{"cuda", axis_workspace_bytes, run_axis, backward_workspace,
                                 run_backward};
  return b;
}

}  // namespace softmax::cuda
