// src/core/gumbel_softmax.cc: gumbel_softmax and its backward (softmax/gumbel_softmax.hpp).
// The perturbed logits z = x + g are materialised once (contiguous, compute type), then the
// library's own softmax / softmax_backward run on them; the hard forward writes the one-hot
// argmax of z.
#include "softmax/gumbel_softmax.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "softmax/backward.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/philox.hpp"
#include "src/core/rows.hpp"

namespace softmax {
namespace {

struct Perturbed {
  std::vector<float> f;
  std::vector<double> d;
  ConstTensorView view;
};

// Checks the logits and options; returns the normalised axis.
int64_t check_input(const char* op, const ConstTensorView& x, const GumbelSoftmaxOptions& o) {
  detail::check_view(op, "logits", x);
  detail::check_float_dtype(op, "logits", x.dtype);
  if (x.rank() < 1) {
    throw Error(ErrorKind::kShapeMismatch, op, "logits", detail::shape_str(x.shape),
                "must have rank >= 1");
  }
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  if (x.shape[axis] >= int64_t{0xFFFFFFFF}) {
    throw Error(ErrorKind::kUnsupported, op, "logits", detail::shape_str(x.shape),
                "the axis must be shorter than 2^32 - 1 (Philox draw ids)");
  }
  if (!(o.tau > 0) || !std::isfinite(o.tau)) {
    throw Error(ErrorKind::kInvalidArgument, op, "tau", detail::num_str(o.tau),
                "must be finite and > 0");
  }
  detail::check_threads(op, o.threads);
  return axis;
}

// z = x + g, contiguous with x's shape, f64 for f64 logits else f32.
Perturbed perturb(const ConstTensorView& x, int64_t axis, uint64_t seed, uint64_t offset) {
  Perturbed p;
  const int64_t total = x.numel();
  const bool f64 = x.dtype == DType::f64;
  if (f64)
    p.d.resize(static_cast<std::size_t>(total));
  else
    p.f.resize(static_cast<std::size_t>(total));
  p.view = ConstTensorView(f64 ? static_cast<const void*>(p.d.data()) : p.f.data(),
                           f64 ? DType::f64 : DType::f32, x.shape);
  if (total == 0) return p;
  const detail::RowGeometry g = detail::make_row_geometry(x, p.view, axis, false);
  detail::for_each_row(g, 0, g.rows, [&](int64_t r, int64_t xo, int64_t zo) {
    for (int64_t i = 0; i < g.n; ++i) {
      const double u =
          detail::philox_open01(seed, offset, static_cast<uint64_t>(r), static_cast<uint32_t>(i));
      const double v =
          detail::load_as_double(x.data, x.dtype, xo + i * g.x_step) - std::log(-std::log(u));
      if (f64)
        p.d[zo + i * g.y_step] = v;
      else
        p.f[zo + i * g.y_step] = static_cast<float>(v);
    }
  });
  return p;
}

void write_one_hot(const ConstTensorView& z, int64_t axis, const TensorView& y) {
  const detail::RowGeometry g = detail::make_row_geometry(z, y, axis, false);
  detail::for_each_row(g, 0, g.rows, [&](int64_t, int64_t zo, int64_t yo) {
    int64_t best = 0;
    double bv = -std::numeric_limits<double>::infinity();
    bool invalid = false;  // NaN or +inf in x + g: the soft output's row is NaN, so is this one
    for (int64_t i = 0; i < g.n; ++i) {
      const double v = detail::load_as_double(z.data, z.dtype, zo + i * g.x_step);
      invalid = invalid || std::isnan(v) || v == std::numeric_limits<double>::infinity();
      if (v > bv) {
        bv = v;
        best = i;
      }
    }
    invalid = invalid || bv == -std::numeric_limits<double>::infinity();  // every entry -inf
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t i = 0; i < g.n; ++i) {
      detail::store_from_double(y.data, y.dtype, yo + i * g.y_step,
                                invalid ? nan : (i == best ? 1.0 : 0.0));
    }
  });
}

}  // namespace

void gumbel_softmax(ConstTensorView logits, TensorView y, const GumbelSoftmaxOptions& options,
                    uint64_t seed, uint64_t offset) {
  const char* op = "gumbel_softmax";
  const int64_t axis = check_input(op, logits, options);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, logits.dtype, "y", y.dtype);
  detail::check_same_shape(op, "y", logits.shape, y.shape);
  detail::check_no_overlap(op, logits, y, /*allow_alias=*/true, "y", "logits");
  const Perturbed z = perturb(logits, axis, seed, offset);
  if (options.hard) {
    write_one_hot(z.view, axis, y);
    return;
  }
  SoftmaxOptions so;
  so.axis = axis;
  so.temperature = options.tau;
  so.threads = options.threads;
  softmax(z.view, y, so);
}

void gumbel_softmax_backward(ConstTensorView logits, ConstTensorView dy, TensorView dx,
                             const GumbelSoftmaxOptions& options, uint64_t seed, uint64_t offset) {
  const char* op = "gumbel_softmax_backward";
  const int64_t axis = check_input(op, logits, options);
  detail::check_view(op, "dy", dy);
  if (dy.dtype != logits.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "dy", dtype_name(dy.dtype),
                std::string("must have the logits' dtype (") + dtype_name(logits.dtype) + ")");
  }
  detail::check_same_shape(op, "dy", logits.shape, dy.shape);
  detail::check_output_view(op, "dx", dx);
  detail::check_compute_pair(op, logits.dtype, "dx", dx.dtype);
  detail::check_same_shape(op, "dx", logits.shape, dx.shape);
  detail::check_no_overlap(op, logits, dx, /*allow_alias=*/true, "dx", "logits");
  detail::check_no_overlap(op, dy, dx, /*allow_alias=*/true, "dx", "dy");
  const Perturbed z = perturb(logits, axis, seed, offset);
  SoftmaxOptions so;
  so.axis = axis;
  so.temperature = options.tau;
  so.threads = options.threads;
  // y_soft and dy in the compute type (dy converted when bf16 / f16: exact).
  const int64_t total = logits.numel();
  std::vector<float> ysf, dyf;
  std::vector<double> ysd;
  TensorView ys = logits.dtype == DType::f64 ? (ysd.resize(static_cast<std::size_t>(total)),
                                                TensorView(ysd.data(), DType::f64, logits.shape))
                                             : (ysf.resize(static_cast<std::size_t>(total)),
                                                TensorView(ysf.data(), DType::f32, logits.shape));
  softmax(z.view, ys, so);
  ConstTensorView dyc = dy;
  if (dy.dtype == DType::bf16 || dy.dtype == DType::f16) {
    dyf.resize(static_cast<std::size_t>(total));
    TensorView dst(dyf.data(), DType::f32, dy.shape);
    if (total > 0) {
      const detail::RowGeometry g = detail::make_row_geometry(dy, dst, axis, false);
      detail::for_each_row(g, 0, g.rows, [&](int64_t, int64_t so_, int64_t d) {
        for (int64_t i = 0; i < g.n; ++i)
          dyf[d + i * g.y_step] =
              static_cast<float>(detail::load_as_double(dy.data, dy.dtype, so_ + i * g.x_step));
      });
    }
    dyc = dst;
  }
  softmax_backward(ys, dyc, dx, so);
}

}  // namespace softmax
