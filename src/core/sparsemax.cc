// src/core/sparsemax.cc: sparsemax and its backward (softmax/sparsemax.hpp). Rows are walked
// with the shared row geometry and split across threads; each row is computed in f64.
#include "softmax/sparsemax.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"

namespace softmax {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The threshold tau of z (n finite or -inf values, at least one finite); sorted: scratch.
double sparsemax_tau(const std::vector<double>& z, std::vector<double>& sorted) {
  sorted.clear();
  for (double v : z) {
    if (v > -kInf) sorted.push_back(v);
  }
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  double cum = 0, tau_cum = sorted[0];
  std::size_t k = 1;
  for (std::size_t j = 0; j < sorted.size(); ++j) {
    cum += sorted[j];
    if (1.0 + static_cast<double>(j + 1) * sorted[j] > cum) {
      k = j + 1;
      tau_cum = cum;
    }
  }
  return (tau_cum - 1.0) / static_cast<double>(k);
}

// Runs fn(x offset, y offset, g) over every row of (x, y) along axis, in parallel.
template <class Fn>
void for_rows(const ConstTensorView& x, const ConstTensorView& y, int64_t axis, int threads,
              Fn&& fn) {
  if (x.numel() == 0) return;
  const detail::RowGeometry g = detail::make_row_geometry(x, y, axis, false);
  const int nt = g.rows * g.n < detail::kMinParallelElems ? 1 : detail::resolve_threads(threads);
  detail::parallel_for(g.rows, nt, [&](int64_t b, int64_t e) {
    detail::for_each_row(g, b, e, [&](int64_t, int64_t xo, int64_t yo) { fn(xo, yo, g); });
  });
}

}  // namespace

void sparsemax(ConstTensorView x, TensorView y, const SoftmaxOptions& options) {
  const char* op = "sparsemax";
  detail::check_view(op, "x", x);
  detail::check_float_dtype(op, "x", x.dtype);
  if (x.rank() < 1) {
    throw Error(ErrorKind::kShapeMismatch, op, "x", detail::shape_str(x.shape),
                "must have rank >= 1");
  }
  const int64_t axis = detail::normalize_axis(op, options.axis, x.rank());
  const double inv_t = detail::check_temperature(op, options.temperature);
  detail::check_threads(op, options.threads);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  for_rows(x, y, axis, options.threads, [&](int64_t xo, int64_t yo, const detail::RowGeometry& g) {
    thread_local std::vector<double> z, sorted;
    z.resize(static_cast<std::size_t>(g.n));
    bool bad = false, any = false;
    for (int64_t i = 0; i < g.n; ++i) {
      const double v = detail::load_as_double(x.data, x.dtype, xo + i * g.x_step);
      bad |= std::isnan(v) || v == kInf;
      any |= v > -kInf;
      z[i] = v == -kInf ? v : (options.temperature == 1.0 ? v : v * inv_t);
    }
    // Shift-invariant: the row minus its max, so the prefix sums' rounding scales with the
    // row's spread, not its magnitude (equal logits of 1e16 stay uniform). Exact in f64 for
    // entries within a factor 2 of the max (Sterbenz); -inf stays -inf.
    if (!bad && any) {
      double m = -kInf;
      for (int64_t i = 0; i < g.n; ++i) m = std::max(m, z[i]);
      for (int64_t i = 0; i < g.n; ++i) z[i] = z[i] == -kInf ? z[i] : z[i] - m;
    }
    const double tau = bad || !any ? kNaN : sparsemax_tau(z, sorted);
    for (int64_t i = 0; i < g.n; ++i) {
      const double out = std::isnan(tau) ? kNaN : std::max(z[i] - tau, 0.0);
      detail::store_from_double(y.data, y.dtype, yo + i * g.y_step, out);
    }
  });
}

void sparsemax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                        const SoftmaxOptions& options) {
  const char* op = "sparsemax_backward";
  detail::check_view(op, "y", y);
  detail::check_view(op, "dy", dy);
  detail::check_float_dtype(op, "y", y.dtype);
  if (dy.dtype != y.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "dy", dtype_name(dy.dtype),
                std::string("must have y's dtype (") + dtype_name(y.dtype) + ")");
  }
  if (y.rank() < 1) {
    throw Error(ErrorKind::kShapeMismatch, op, "y", detail::shape_str(y.shape),
                "must have rank >= 1");
  }
  detail::check_same_shape(op, "dy", y.shape, dy.shape);
  const int64_t axis = detail::normalize_axis(op, options.axis, y.rank());
  const double inv_t = detail::check_temperature(op, options.temperature);
  detail::check_threads(op, options.threads);
  detail::check_output_view(op, "dx", dx);
  detail::check_compute_pair(op, y.dtype, "dx", dx.dtype);
  detail::check_same_shape(op, "dx", y.shape, dx.shape);
  detail::check_no_overlap(op, y, dx, /*allow_alias=*/false, "dx", "y");
  detail::check_no_overlap(op, dy, dx, /*allow_alias=*/true, "dx", "dy");
  const detail::RowGeometry gd =
      y.numel() == 0 ? detail::RowGeometry{} : detail::make_row_geometry(dy, dx, axis, false);
  std::vector<int64_t> dy_off(static_cast<std::size_t>(gd.rows));
  if (gd.rows > 0)
    detail::for_each_row(gd, 0, gd.rows, [&](int64_t r, int64_t o, int64_t) { dy_off[r] = o; });
  // Rows of (y, dx) in the same row-major order as (dy, dx): pair them by row index.
  if (y.numel() == 0) return;
  const detail::RowGeometry g = detail::make_row_geometry(y, dx, axis, false);
  const int nt =
      g.rows * g.n < detail::kMinParallelElems ? 1 : detail::resolve_threads(options.threads);
  detail::parallel_for(g.rows, nt, [&](int64_t b, int64_t e) {
    detail::for_each_row(g, b, e, [&](int64_t r, int64_t yo, int64_t xo) {
      const int64_t dyo = dy_off[r];
      double sum = 0;
      int64_t support = 0;
      for (int64_t i = 0; i < g.n; ++i) {
        if (detail::load_as_double(y.data, y.dtype, yo + i * g.x_step) > 0) {
          sum += detail::load_as_double(dy.data, dy.dtype, dyo + i * gd.x_step);
          ++support;
        }
      }
      const double mean = support > 0 ? sum / static_cast<double>(support) : 0.0;
      for (int64_t i = 0; i < g.n; ++i) {
        const bool in = detail::load_as_double(y.data, y.dtype, yo + i * g.x_step) > 0;
        const double d =
            in ? (detail::load_as_double(dy.data, dy.dtype, dyo + i * gd.x_step) - mean) * inv_t
               : 0.0;
        detail::store_from_double(dx.data, dx.dtype, xo + i * g.y_step, d);
      }
    });
  });
}

}  // namespace softmax
