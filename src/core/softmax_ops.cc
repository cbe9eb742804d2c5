// src/core/softmax_ops.cc: the drivers of the public axis ops. Validation first (nothing is
// written when it fails), then a device-neutral plan (src/core/plan.hpp) that the backend of the
// tensors' device runs (src/core/backend.hpp; the CPU's: src/core/cpu_runner.cc). hardmax and
// sigmoid run on the CPU only.
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "src/core/axis_ops.hpp"
#include "src/core/backend.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/row_stats.hpp"
#include "src/core/rows.hpp"
#include "src/core/verbose.hpp"
#include "src/core/widen.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax {
namespace {

using cpu::kChunkElems;
using cpu::KernelTable;
using cpu::RowMode;
using cpu::Temperature;
using detail::AxisOp;
using detail::num_chunks;
using detail::RowGeometry;

// A validated call of an axis op: its plan and the backend that runs it; `widen` when f32 compute
// cannot carry the temperature (the CPU then computes on an f64 copy), `empty` when there is
// nothing to compute.
struct AxisCall {
  detail::AxisPlan plan;
  const detail::Backend* backend = nullptr;
  bool widen = false;
  bool empty = false;
};

// Validation of softmax / log_softmax (y: x's shape) and logsumexp (y: x's shape without the
// axis, or kept with size 1), then the plan.
AxisCall plan_axis(const char* op, const ConstTensorView& x, const TensorView& y,
                   const SoftmaxOptions& o, AxisOp kind) {
  const bool reduce = kind == AxisOp::kLogSumExp;
  detail::check_view_any_device(op, "x", x);
  detail::check_output_view_any_device(op, "y", y);
  const Device device = detail::call_device(op, {{"x", x.device}, {"y", y.device}});
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  if (reduce) {
    detail::check_reduced_shape(op, "y", x.shape, axis, o.keepdims, y.shape);
  } else {
    detail::check_same_shape(op, "y", x.shape, y.shape);
  }
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/!reduce);
  AxisCall c;
  c.backend = &detail::backend_for(op, device);
  c.widen = device == Device::cpu && x.dtype != DType::f64 &&
            !cpu::MakeTemperature(o.temperature).f32_ok();
  c.plan.op = op;
  c.plan.op_kind = kind;
  c.plan.g = detail::make_row_geometry(x, y, axis, reduce);
  c.plan.x = x.data;
  c.plan.y = y.data;
  c.plan.x_dtype = x.dtype;
  c.plan.y_dtype = y.dtype;
  c.plan.temperature = o.temperature;
  c.empty = c.plan.g.rows == 0 || (!reduce && c.plan.g.n == 0);
  return c;
}

void axis_op(const char* op, const ConstTensorView& x, const TensorView& y, const SoftmaxOptions& o,
             AxisOp kind) {
  const AxisCall c = plan_axis(op, x, y, o, kind);
  if (c.widen) {
    detail::run_widened(x, y, [&](const ConstTensorView& xd, const TensorView& yd) {
      axis_op(op, xd, yd, o, kind);
    });
    return;
  }
  if (c.empty) return;
  c.backend->run_axis(c.plan, detail::current_exec());
}

std::size_t axis_workspace_bytes(const char* op, const ConstTensorView& x, const TensorView& y,
                                 const SoftmaxOptions& o, AxisOp kind) {
  const AxisCall c = plan_axis(op, x, y, o, kind);
  if (c.widen || c.empty) return 0;
  return c.backend->axis_workspace_bytes(c.plan, detail::current_exec());
}

const char* axis_op_name(AxisOp kind) {
  switch (kind) {
    case AxisOp::kSoftmax: return "softmax";
    case AxisOp::kLogSoftmax: return "log_softmax";
    case AxisOp::kLogSumExp: return "logsumexp";
    case AxisOp::kArgmax: break;
  }
  return "argmax";
}

const char* axis_query_name(AxisOp kind) {
  switch (kind) {
    case AxisOp::kSoftmax: return "softmax_workspace_bytes";
    case AxisOp::kLogSoftmax: return "log_softmax_workspace_bytes";
    case AxisOp::kLogSumExp: return "logsumexp_workspace_bytes";
    case AxisOp::kArgmax: break;
  }
  return "argmax_workspace_bytes";
}

}  // namespace

namespace detail {

void run_axis_op(AxisOp kind, const ConstTensorView& x, const TensorView& y,
                 const SoftmaxOptions& options, const Context& context) {
  const char* op = axis_op_name(kind);
  const ExecScope exec_scope(op, context, options.threads, /*sized_workspace=*/true);
  axis_op(op, x, y, options, kind);
}

std::size_t axis_op_workspace_bytes(AxisOp kind, const ConstTensorView& x, const TensorView& y,
                                    const SoftmaxOptions& options, const Context& context) {
  const ExecScope exec_scope(axis_query_name(kind), context, options.threads,
                             /*sized_workspace=*/true);
  return axis_workspace_bytes(axis_op_name(kind), x, y, options, kind);
}

}  // namespace detail

void softmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options,
             const Context& context) {
  detail::run_axis_op(AxisOp::kSoftmax, x, y, options, context);
}

void log_softmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options,
                 const Context& context) {
  detail::run_axis_op(AxisOp::kLogSoftmax, x, y, options, context);
}

void logsumexp(ConstTensorView x, TensorView y, const SoftmaxOptions& o, const Context& context) {
  detail::run_axis_op(AxisOp::kLogSumExp, x, y, o, context);
}

std::size_t softmax_workspace_bytes(const ConstTensorView& x, const TensorView& y,
                                    const SoftmaxOptions& options, const Context& context) {
  return detail::axis_op_workspace_bytes(AxisOp::kSoftmax, x, y, options, context);
}

std::size_t log_softmax_workspace_bytes(const ConstTensorView& x, const TensorView& y,
                                        const SoftmaxOptions& options, const Context& context) {
  return detail::axis_op_workspace_bytes(AxisOp::kLogSoftmax, x, y, options, context);
}

std::size_t logsumexp_workspace_bytes(const ConstTensorView& x, const TensorView& y,
                                      const SoftmaxOptions& options, const Context& context) {
  return detail::axis_op_workspace_bytes(AxisOp::kLogSumExp, x, y, options, context);
}

void argmax(ConstTensorView x, TensorView indices, const SoftmaxOptions& o,
            const Context& context) {
  const detail::ExecScope exec_scope("argmax", context, o.threads);
  const char* op = "argmax";
  detail::check_view_any_device(op, "x", x);
  detail::check_output_view_any_device(op, "indices", indices);
  const Device device = detail::call_device(op, {{"x", x.device}, {"indices", indices.device}});
  detail::check_float_dtype(op, "x", x.dtype);
  if (indices.dtype != DType::i64 && indices.dtype != DType::i32) {
    throw Error(ErrorKind::kDTypeMismatch, op, "indices", dtype_name(indices.dtype),
                "must be i64 or i32");
  }
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "indices", detail::reduced_shape(x.shape, axis, o.keepdims),
                           indices.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, indices, /*allow_alias=*/false, "indices");
  const detail::Backend& backend = detail::backend_for(op, device);
  detail::AxisPlan plan;
  plan.op = op;
  plan.op_kind = AxisOp::kArgmax;
  plan.g = detail::make_row_geometry(x, indices, axis, true);
  plan.x = x.data;
  plan.y = indices.data;
  plan.x_dtype = x.dtype;
  plan.y_dtype = indices.dtype;
  if (plan.g.rows == 0) return;
  if (plan.g.n == 0) {
    throw Error(
        ErrorKind::kInvalidArgument, op, "x", "shape " + detail::shape_str(x.shape),
        "argmax of an empty row is undefined (axis " + std::to_string(axis) + " has size 0)");
  }
  if (indices.dtype == DType::i32 && plan.g.n > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::kOverflow, op, "indices", "i32",
                "rows of " + std::to_string(plan.g.n) + " elements need i64 indices");
  }
  backend.run_axis(plan, detail::current_exec());
}

void hardmax(ConstTensorView x, TensorView y, const SoftmaxOptions& o, const Context& context) {
  const detail::ExecScope exec_scope("hardmax", context, o.threads);
  const char* op = "hardmax";
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_float_dtype(op, "x", x.dtype);
  detail::check_float_dtype(op, "y", y.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  const RowGeometry g = detail::make_row_geometry(x, y, axis, false);
  if (g.rows == 0 || g.n == 0) return;
  // Indices first (into scratch), then the one-hot rows: safe in place.
  std::vector<int64_t> idx(static_cast<std::size_t>(g.rows));
  std::vector<int64_t> ishape = detail::reduced_shape(x.shape, axis, false);
  SoftmaxOptions ao = o;
  ao.keepdims = false;
  argmax(x, TensorView(idx.data(), DType::i64, ishape), ao);
  const int threads = detail::current_exec().threads;
  auto* yb = static_cast<char*>(y.data);
  const auto yes = static_cast<int64_t>(dtype_size(y.dtype));
  detail::parallel_for(g.rows, g.rows * g.n >= detail::kMinParallelElems ? threads : 1,
                       [&](int64_t b, int64_t e) {
                         detail::for_each_row(g, b, e, [&](int64_t r, int64_t, int64_t yo) {
                           char* row = yb + yo * yes;
                           for (int64_t i = 0; i < g.n; ++i) {
                             detail::store_from_double(row + i * g.y_step * yes, y.dtype, 0,
                                                       i == idx[r] ? 1.0 : 0.0);
                           }
                         });
                       });
}

void sigmoid(ConstTensorView x, TensorView y, const ElementwiseOptions& o, const Context& context) {
  const detail::ExecScope exec_scope("sigmoid", context, o.threads);
  const char* op = "sigmoid";
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  if (x.rank() == 0) {  // one element: view it as (1,)
    x.shape = y.shape = {1};
    x.strides = y.strides = {1};
  }
  RowGeometry g = detail::make_row_geometry(x, y, x.rank() - 1, false);
  if (g.rows == 0 || g.n == 0) return;
  const KernelTable& k = cpu::kernels();
  const int threads = detail::current_exec().threads;
  const auto xes = dtype_size(x.dtype), yes = dtype_size(y.dtype);
  const auto* xb = static_cast<const char*>(x.data);
  auto* yb = static_cast<char*>(y.data);
  const bool split_rows = g.rows >= threads || g.n <= 2 * kChunkElems;
  auto one_row = [&](const char* xrow, char* yrow, detail::GatherScratch& s, int row_threads) {
    const void* src = xrow;
    if (g.x_step != 1) {
      void* buf = s.get(detail::GatherScratch::kX, static_cast<std::size_t>(g.n) * xes);
      detail::gather(xrow, g.x_step, g.n, xes, buf);
      src = buf;
    }
    void* dst =
        g.y_step == 1 ? static_cast<void*>(yrow) : s.get(detail::GatherScratch::kY, g.n * yes);
    const int64_t chunks = num_chunks(g.n);
    detail::parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const int64_t off = c * kChunkElems;
        k.sigmoid(static_cast<const char*>(src) + off * static_cast<int64_t>(xes), x.dtype,
                  static_cast<char*>(dst) + off * static_cast<int64_t>(yes), y.dtype,
                  std::min(kChunkElems, g.n - off));
      }
    });
    if (g.y_step != 1) detail::scatter(dst, g.n, yes, yrow, g.y_step);
  };
  const int outer = split_rows && g.rows * g.n >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    detail::GatherScratch s;
    detail::for_each_row(g, b, e, [&](int64_t, int64_t xo, int64_t yo) {
      one_row(xb + xo * static_cast<int64_t>(xes), yb + yo * static_cast<int64_t>(yes), s,
              split_rows ? 1 : threads);
    });
  });
}

// ---- one-row conveniences ----
namespace {
template <typename T>
void span_op(const char* op, std::span<const T> x, std::span<T> y, double temperature,
             RowMode mode) {
  if (x.size() != y.size()) {
    throw Error(ErrorKind::kShapeMismatch, op, "y", "size " + std::to_string(y.size()),
                "must have the size of x (" + std::to_string(x.size()) + ")");
  }
  const auto n = static_cast<int64_t>(x.size());
  SoftmaxOptions o;
  o.temperature = temperature;
  o.threads = 1;
  axis_op(op, ConstTensorView(x.data(), {n}), TensorView(y.data(), {n}), o,
          mode == RowMode::kSoftmax ? AxisOp::kSoftmax : AxisOp::kLogSoftmax);
}
template <typename T>
T span_lse(std::span<const T> x, double temperature) {
  T out = 0;
  SoftmaxOptions o;
  o.temperature = temperature;
  o.threads = 1;
  logsumexp(ConstTensorView(x.data(), {static_cast<int64_t>(x.size())}), TensorView(&out, {}), o);
  return out;
}
template <typename T>
int64_t span_argmax(std::span<const T> x) {
  int64_t out = 0;
  SoftmaxOptions o;
  o.threads = 1;
  argmax(ConstTensorView(x.data(), {static_cast<int64_t>(x.size())}),
         TensorView(&out, DType::i64, {}), o);
  return out;
}
}  // namespace

void softmax(std::span<const float> x, std::span<float> y, double t) {
  span_op("softmax", x, y, t, RowMode::kSoftmax);
}
void softmax(std::span<const double> x, std::span<double> y, double t) {
  span_op("softmax", x, y, t, RowMode::kSoftmax);
}
void log_softmax(std::span<const float> x, std::span<float> y, double t) {
  span_op("log_softmax", x, y, t, RowMode::kLogSoftmax);
}
void log_softmax(std::span<const double> x, std::span<double> y, double t) {
  span_op("log_softmax", x, y, t, RowMode::kLogSoftmax);
}
float logsumexp(std::span<const float> x, double t) { return span_lse(x, t); }
double logsumexp(std::span<const double> x, double t) { return span_lse(x, t); }
int64_t argmax(std::span<const float> x) { return span_argmax(x); }
int64_t argmax(std::span<const double> x) { return span_argmax(x); }

}  // namespace softmax
