// src/core/backward.cc: the drivers of softmax_backward and log_softmax_backward. Validation
// first (nothing is written when it fails), then a BackwardPlan (src/core/plan.hpp) that the
// backend of the tensors' device runs (the CPU's: src/core/cpu_runner.cc).
#include <algorithm>
#include <cfloat>
#include <string>
#include <vector>

#include "softmax/backward.hpp"
#include "softmax/error.hpp"
#include "src/core/backend.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/core/rows.hpp"

namespace softmax {
namespace {

void backward_op(const char* op, const ConstTensorView& y, const ConstTensorView& dy,
                 const TensorView& dx, const SoftmaxOptions& o, cpu::RowMode mode) {
  detail::check_view_any_device(op, "y", y);
  detail::check_view_any_device(op, "dy", dy);
  detail::check_output_view_any_device(op, "dx", dx);
  const Device device =
      detail::call_device(op, {{"y", y.device}, {"dy", dy.device}, {"dx", dx.device}});
  detail::check_float_dtype(op, "y", y.dtype);
  if (dy.dtype != y.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "dy", dtype_name(dy.dtype),
                std::string("must have y's dtype (") + dtype_name(y.dtype) + ")");
  }
  detail::check_compute_pair(op, y.dtype, "dx", dx.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, y.rank());
  detail::check_same_shape(op, "dy", y.shape, dy.shape);
  detail::check_same_shape(op, "dx", y.shape, dx.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, y, dx, /*allow_alias=*/true, "dx", "y");
  detail::check_no_overlap(op, dy, dx, /*allow_alias=*/true, "dx", "dy");
  const detail::Backend& backend = detail::backend_for(op, device);
  detail::BackwardPlan plan;
  plan.op = op;
  plan.mode = mode;
  plan.gy = detail::make_row_geometry(y, dx, axis, false);
  plan.gd = detail::make_row_geometry(dy, dx, axis, false);
  plan.y = y.data;
  plan.dy = dy.data;
  plan.dx = dx.data;
  plan.dtype = y.dtype;
  plan.dx_dtype = dx.dtype;
  plan.temperature = o.temperature;
  if (plan.gy.rows == 0 || plan.gy.n == 0) return;
  backend.run_backward(plan, detail::current_exec());
}

}  // namespace

void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                      const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("softmax_backward", context, options.threads);
  backward_op("softmax_backward", y, dy, dx, options, cpu::RowMode::kSoftmax);
}

void log_softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                          const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("log_softmax_backward", context, options.threads);
  backward_op("log_softmax_backward", y, dy, dx, options, cpu::RowMode::kLogSoftmax);
}

}  // namespace softmax
