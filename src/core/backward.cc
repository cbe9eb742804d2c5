// src/core/backward.cc: softmax_backward and log_softmax_backward. Validation first (nothing is
// written when it fails); then rows along the axis are walked, gathered into scratch when
// strided, split across OpenMP threads, and handed to the per-target kernels
// (src/cpu/backward_kernels.cc): one reduction over the row, then one elementwise pass.
#include <algorithm>
#include <cfloat>
#include <string>
#include <vector>

#include "softmax/backward.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/core/half.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/training_kernels.hpp"

namespace softmax {
namespace {

using cpu::BackwardMode;

void backward_op(const char* op, const ConstTensorView& y, const ConstTensorView& dy,
                 const TensorView& dx, const SoftmaxOptions& o, BackwardMode mode) {
  detail::check_view(op, "y", y);
  detail::check_view(op, "dy", dy);
  detail::check_output_view(op, "dx", dx);
  detail::check_float_dtype(op, "y", y.dtype);
  if (dy.dtype != y.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "dy", dtype_name(dy.dtype),
                std::string("must have y's dtype (") + dtype_name(y.dtype) + ")");
  }
  detail::check_compute_pair(op, y.dtype, "dx", dx.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, y.rank());
  detail::check_same_shape(op, "dy", y.shape, dy.shape);
  detail::check_same_shape(op, "dx", y.shape, dx.shape);
  const double inv_t = detail::check_temperature(op, o.temperature);
  // The kernels multiply by 1/T in the compute type (f32 for f32/bf16/f16, f64). Where 1/T is
  // not a normal number of that type (f32: T < 1/FLT_MAX or T > 2^126; f64: 1/T overflows or is
  // subnormal) that multiply would saturate or lose bits; there the kernel writes the unscaled
  // row into compute-type scratch and dx = that / T is divided in f64 and rounded once (an
  // exact dx beyond the range gives +-inf, as IEEE).
  const DType ct = y.dtype == DType::f64 ? DType::f64 : DType::f32;
  const double t = o.temperature, inv = 1.0 / t;
  const bool divide =
      ct == DType::f64 ? !(inv >= DBL_MIN && inv <= DBL_MAX) : !(inv >= FLT_MIN && inv <= FLT_MAX);
  detail::check_no_overlap(op, y, dx, /*allow_alias=*/true, "dx", "y");
  detail::check_no_overlap(op, dy, dx, /*allow_alias=*/true, "dx", "dy");

  const detail::RowGeometry gy = detail::make_row_geometry(y, dx, axis, false);
  const detail::RowGeometry gd = detail::make_row_geometry(dy, dx, axis, false);
  if (gy.rows == 0 || gy.n == 0) return;
  const cpu::BackwardKernels& k = cpu::backward_kernels();
  const int64_t n = gy.n;
  const auto es = static_cast<int64_t>(dtype_size(y.dtype));
  const auto os = static_cast<int64_t>(dtype_size(dx.dtype));
  const bool contiguous = gy.x_step == 1 && gd.x_step == 1 && gy.y_step == 1;
  const auto* yb = static_cast<const char*>(y.data);
  const auto* db = static_cast<const char*>(dy.data);
  auto* xb = static_cast<char*>(dx.data);
  const int threads = detail::current_exec().threads;
  const int outer = gy.rows * n >= detail::kMinParallelElems ? threads : 1;
  // Offsets of dy rows follow the same row order as y's (same shape, row-major over the
  // non-axis dims), so walk dy's geometry alongside by row index.
  detail::parallel_for(gy.rows, outer, [&](int64_t b, int64_t e) {
    std::vector<int64_t> dy_off(static_cast<std::size_t>(e - b));
    detail::for_each_row(gd, b, e, [&](int64_t r, int64_t xo, int64_t) { dy_off[r - b] = xo; });
    std::vector<unsigned char> sy, sd, sx;
    if (!contiguous || divide) {
      sy.resize(static_cast<std::size_t>(n * es));
      sd.resize(static_cast<std::size_t>(n * es));
      sx.resize(static_cast<std::size_t>(n * std::max<int64_t>(os, 8)));
    }
    detail::for_each_row(gy, b, e, [&](int64_t r, int64_t yo, int64_t xo) {
      const char* yr = yb + yo * es;
      const char* dr = db + dy_off[r - b] * es;
      char* xr = xb + xo * os;
      if (contiguous && !divide) {
        const double s = k.row_sum(yr, dr, y.dtype, n, mode);
        k.apply(yr, dr, y.dtype, xr, dx.dtype, n, s, inv_t, mode);
        return;
      }
      detail::gather(yr, gy.x_step, n, static_cast<std::size_t>(es), sy.data());
      detail::gather(dr, gd.x_step, n, static_cast<std::size_t>(es), sd.data());
      const double s = k.row_sum(sy.data(), sd.data(), y.dtype, n, mode);
      if (divide) {  // y and dy are in scratch, so dx may alias either
        k.apply(sy.data(), sd.data(), y.dtype, sx.data(), ct, n, s, 1.0, mode);
        for (int64_t i = 0; i < n; ++i) {
          double v = detail::load_as_double(sx.data(), ct, i) / t;
          if (ct == DType::f32) v = static_cast<float>(v);  // the f32 result (bf16/f16: from it)
          detail::store_from_double(xr, dx.dtype, i * gy.y_step, v);
        }
        return;
      }
      k.apply(sy.data(), sd.data(), y.dtype, sx.data(), dx.dtype, n, s, inv_t, mode);
      detail::scatter(sx.data(), n, static_cast<std::size_t>(os), xr, gy.y_step);
    });
  });
}

}  // namespace

void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                      const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("softmax_backward", context, options.threads);
  backward_op("softmax_backward", y, dy, dx, options, BackwardMode::kSoftmax);
}

void log_softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                          const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("log_softmax_backward", context, options.threads);
  backward_op("log_softmax_backward", y, dy, dx, options, BackwardMode::kLogSoftmax);
}

}  // namespace softmax
