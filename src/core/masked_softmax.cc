// src/core/masked_softmax.cc: softmax::masked_softmax (forward, with optional logsumexp) and
// masked_softmax_backward. Semantics: include/softmax/attention.hpp.
//
// Per row (scores (..., Sq, Sk), the softmax runs along Sk):
//   1. x_j = transform(s_j) for kept j, x_j = -inf for masked j (selection, never addition),
//      into a contiguous compute-type (f32 / f64) scratch row;
//   2. softmax::softmax (and softmax::logsumexp for lse) of those rows, a block of rows at a
//      time, so the result IS plain softmax of the -inf-filled rows, bit for bit, and inherits
//      its accuracy and determinism;
//   3. fully masked rows (no kept entry other than -inf): y = 0, lse = -inf.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "src/core/attention_mask.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"
#include "softmax/ops.hpp"
#include "softmax/options.hpp"

namespace softmax {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The dims of a (..., Sq, Sk) tensor other than the last, and the row count.
struct RowSpace {
  std::vector<int64_t> dims;  // shape[0 .. R-1)
  int64_t rows = 1;
  int64_t n = 0;  // Sk
  int64_t rank = 0;
};

RowSpace row_space(const std::vector<int64_t>& shape) {
  RowSpace s;
  s.rank = static_cast<int64_t>(shape.size());
  s.dims.assign(shape.begin(), shape.end() - 1);
  for (int64_t d : s.dims) s.rows *= d;
  s.n = shape.back();
  return s;
}

int64_t row_offset(const std::vector<int64_t>& strides, const int64_t* idx, int64_t k) {
  int64_t o = 0;
  for (int64_t j = 0; j < k; ++j) o += idx[j] * strides[static_cast<std::size_t>(j)];
  return o;
}

void check_scores_rank(const char* op, const ConstTensorView& s) {
  if (s.rank() < 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "scores", "shape " + detail::shape_str(s.shape),
                "must have rank >= 2: (..., Sq, Sk)");
  }
}

// Rows per block of the forward pass: the transformed rows of a block are held in scratch
// (at least kBlockElems elements, so the softmax call has enough work to spread over threads).
constexpr int64_t kBlockElems = int64_t{1} << 16;

template <typename T>
void forward_impl(const ConstTensorView& s, const TensorView& y, const TensorView* lse,
                  const detail::MaskPlan& plan, int threads) {
  const DType ct = std::is_same_v<T, double> ? DType::f64 : DType::f32;
  const RowSpace rs = row_space(s.shape);
  if (rs.rows == 0) return;
  const auto ses = static_cast<int64_t>(dtype_size(s.dtype));
  const auto yes = static_cast<int64_t>(dtype_size(y.dtype));
  const int64_t n = rs.n, R = rs.rank;
  const T scale = static_cast<T>(plan.scale);
  const int64_t block = std::max<int64_t>(1, kBlockElems / std::max<int64_t>(n, 1));
  std::vector<T> xb(static_cast<std::size_t>(std::min(block, rs.rows) * n));
  std::vector<T> yb(xb.size());
  std::vector<T> lb(static_cast<std::size_t>(std::min(block, rs.rows)));
  std::vector<unsigned char> any(lb.size());
  SoftmaxOptions so;
  so.threads = threads;
  for (int64_t r0 = 0; r0 < rs.rows; r0 += block) {
    const int64_t nr = std::min(block, rs.rows - r0);
    // 1. The transformed rows, masked entries -inf by selection.
    const int outer = nr * std::max<int64_t>(n, 1) >= detail::kMinParallelElems ? threads : 1;
    detail::parallel_for(nr, outer, [&](int64_t b, int64_t e) {
      std::vector<int64_t> idx(static_cast<std::size_t>(R));
      for (int64_t r = b; r < e; ++r) {
        detail::unravel(r0 + r, rs.dims.data(), R - 1, idx.data());
        const char* srow =
            static_cast<const char*>(s.data) + row_offset(s.strides, idx.data(), R - 1) * ses;
        const detail::MaskRow mr(plan, idx.data(), R);
        int64_t lo, hi;
        plan.key_range(mr.i, n, lo, hi);
        const int64_t s_step = s.strides[static_cast<std::size_t>(R - 1)];
        T* x = xb.data() + r * n;
        bool kept_finite = false;  // a kept entry that is not -inf (else: fully masked)
        for (int64_t j = 0; j < n; ++j) {
          if (j < lo || j > hi || !mr.mask_keeps(j)) {
            x[j] = -std::numeric_limits<T>::infinity();  // selection
            continue;
          }
          const T v = static_cast<T>(detail::load_as_double(srow, s.dtype, j * s_step));
          x[j] = mr.template finish<T>(v * scale, j);
          kept_finite = kept_finite || !(x[j] == -std::numeric_limits<T>::infinity());
        }
        any[static_cast<std::size_t>(r)] = kept_finite;
      }
    });
    // 2. Plain softmax / logsumexp of the -inf-filled rows (so the result equals them exactly).
    const ConstTensorView xv(xb.data(), ct, {nr, n});
    if (lse) softmax::logsumexp(xv, TensorView(lb.data(), ct, {nr}), so);
    softmax::softmax(xv, TensorView(yb.data(), ct, {nr, n}), so);
    // 3. Fully masked rows: 0 and -inf; then the rows go to y (one rounding for bf16/f16).
    std::vector<int64_t> idx(static_cast<std::size_t>(R));
    for (int64_t r = 0; r < nr; ++r) {
      detail::unravel(r0 + r, rs.dims.data(), R - 1, idx.data());
      char* yrow = static_cast<char*>(y.data) + row_offset(y.strides, idx.data(), R - 1) * yes;
      const int64_t y_step = y.strides[static_cast<std::size_t>(R - 1)];
      const bool masked = !any[static_cast<std::size_t>(r)];
      const T* src = yb.data() + r * n;
      for (int64_t j = 0; j < n; ++j) {
        detail::store_from_double(yrow, y.dtype, j * y_step,
                                  masked ? 0.0 : static_cast<double>(src[j]));
      }
      if (lse) {
        const double lv = masked ? -kInf : static_cast<double>(lb[static_cast<std::size_t>(r)]);
        detail::store_from_double(lse->data, lse->dtype,
                                  row_offset(lse->strides, idx.data(), R - 1), lv);
      }
    }
  }
}

void forward(const ConstTensorView& s, const TensorView& y, const TensorView* lse,
             const MaskOptions& o) {
  const char* op = "masked_softmax";
  detail::check_threads(op, o.threads);
  detail::check_view(op, "scores", s);
  detail::check_output_view(op, "y", y);
  check_scores_rank(op, s);
  detail::check_compute_pair(op, s.dtype, "y", y.dtype);
  detail::check_same_shape(op, "y", s.shape, y.shape);
  const detail::MaskPlan plan = detail::make_mask_plan(op, o, s.shape, 1.0);
  detail::check_no_overlap(op, s, y, /*allow_alias=*/true);
  if (plan.bias) detail::check_disjoint(op, "bias", o.bias, "y", y);
  if (plan.mask) detail::check_disjoint(op, "mask", o.mask, "y", y);
  if (lse) {
    detail::check_output_view(op, "lse", *lse);
    const std::vector<int64_t> ls(s.shape.begin(), s.shape.end() - 1);
    detail::check_same_shape(op, "lse", ls, lse->shape);
    if (lse->dtype != DType::f32 && lse->dtype != DType::f64) {
      throw Error(ErrorKind::kDTypeMismatch, op, "lse", dtype_name(lse->dtype),
                  "must be f32 or f64");
    }
    if (lse->dtype == DType::f64 && s.dtype != DType::f64) {
      throw Error(ErrorKind::kDTypeMismatch, op, "lse", "f64",
                  "f64 lse needs f64 scores (f32, bf16 and f16 compute in f32)");
    }
    detail::check_disjoint(op, "scores", s, "lse", *lse);
    detail::check_disjoint(op, "y", y, "lse", *lse);
    if (plan.bias) detail::check_disjoint(op, "bias", o.bias, "lse", *lse);
    if (plan.mask) detail::check_disjoint(op, "mask", o.mask, "lse", *lse);
  }
  const int threads = detail::current_exec().threads;
  if (s.dtype == DType::f64)
    forward_impl<double>(s, y, lse, plan, threads);
  else
    forward_impl<float>(s, y, lse, plan, threads);
}

template <typename T>
void backward_impl(const ConstTensorView& dy, const ConstTensorView& y, const ConstTensorView& s,
                   const TensorView& dx, const detail::MaskPlan& plan, int threads) {
  const RowSpace rs = row_space(y.shape);
  if (rs.rows == 0) return;
  const int64_t n = rs.n, R = rs.rank;
  const T scale = static_cast<T>(plan.scale);
  const bool capped = plan.softcap > 0;
  const T cap = static_cast<T>(plan.softcap);
  const auto es = [](const ConstTensorView& v) {
    return static_cast<int64_t>(dtype_size(v.dtype));
  };
  const int outer = rs.rows * std::max<int64_t>(n, 1) >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(rs.rows, outer, [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(static_cast<std::size_t>(R));
    std::vector<T> yv(static_cast<std::size_t>(n)), gv(static_cast<std::size_t>(n));
    std::vector<unsigned char> keep(static_cast<std::size_t>(n));
    for (int64_t r = b; r < e; ++r) {
      detail::unravel(r, rs.dims.data(), R - 1, idx.data());
      const char* yrow =
          static_cast<const char*>(y.data) + row_offset(y.strides, idx.data(), R - 1) * es(y);
      const char* grow =
          static_cast<const char*>(dy.data) + row_offset(dy.strides, idx.data(), R - 1) * es(dy);
      char* xrow = static_cast<char*>(dx.data) + row_offset(dx.strides, idx.data(), R - 1) * es(dx);
      const char* srow = capped ? static_cast<const char*>(s.data) +
                                      row_offset(s.strides, idx.data(), R - 1) * es(s)
                                : nullptr;
      const detail::MaskRow mr(plan, idx.data(), R);
      int64_t lo, hi;
      plan.key_range(mr.i, n, lo, hi);
      double dot = 0.0;  // sum_k y_k dy_k over kept, nonzero y_k (sequential: deterministic)
      bool any = false;
      for (int64_t j = 0; j < n; ++j) {
        keep[j] = j >= lo && j <= hi && mr.mask_keeps(j);
        if (!keep[j]) continue;
        yv[j] = static_cast<T>(detail::load_as_double(yrow, y.dtype, j * y.strides[R - 1]));
        if (yv[j] == T(0)) {  // exactly 0: masked by a -inf bias or underflow; no gradient
          keep[j] = 0;
          continue;
        }
        gv[j] = static_cast<T>(detail::load_as_double(grow, dy.dtype, j * dy.strides[R - 1]));
        dot += static_cast<double>(yv[j]) * static_cast<double>(gv[j]);
        any = true;
      }
      const T dotv = static_cast<T>(dot);
      const int64_t xs = dx.strides[R - 1];
      for (int64_t j = 0; j < n; ++j) {
        if (!any || !keep[j]) {  // masked entry or fully masked row: exactly 0 (selection)
          detail::store_from_double(xrow, dx.dtype, j * xs, 0.0);
          continue;
        }
        T g = yv[j] * (gv[j] - dotv);
        T factor = scale;
        if (capped) {
          const T sv = static_cast<T>(detail::load_as_double(srow, s.dtype, j * s.strides[R - 1]));
          const T t = std::tanh((sv * scale) / cap);
          factor = scale * (T(1) - t * t);
        }
        detail::store_from_double(xrow, dx.dtype, j * xs, static_cast<double>(g * factor));
      }
    }
  });
}

}  // namespace

void masked_softmax(ConstTensorView scores, TensorView y, const MaskOptions& options,
                    const Context& context) {
  const detail::ExecScope exec_scope("masked_softmax", context, options.threads);
  forward(scores, y, nullptr, options);
}

void masked_softmax(ConstTensorView scores, TensorView y, TensorView lse,
                    const MaskOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("masked_softmax", context, options.threads);
  forward(scores, y, &lse, options);
}

void masked_softmax_backward(ConstTensorView dy, ConstTensorView y, ConstTensorView scores,
                             TensorView dscores, const MaskOptions& o, const Context& context) {
  const detail::ExecScope exec_scope("masked_softmax_backward", context, o.threads);
  const char* op = "masked_softmax_backward";
  detail::check_threads(op, o.threads);
  detail::check_view(op, "dy", dy);
  detail::check_view(op, "y", y);
  detail::check_output_view(op, "dscores", dscores);
  if (y.rank() < 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "y", "shape " + detail::shape_str(y.shape),
                "must have rank >= 2: (..., Sq, Sk)");
  }
  detail::check_float_dtype(op, "y", y.dtype);
  detail::check_compute_pair(op, y.dtype, "dy", dy.dtype);
  detail::check_compute_pair(op, y.dtype, "dscores", dscores.dtype);
  detail::check_same_shape(op, "dy", y.shape, dy.shape);
  detail::check_same_shape(op, "dscores", y.shape, dscores.shape);
  const detail::MaskPlan plan = detail::make_mask_plan(op, o, y.shape, 1.0);
  if (plan.softcap > 0) {
    if (scores.data == nullptr && scores.rank() == 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "scores", "none",
                  "softcap > 0 needs the forward's scores (the tanh derivative depends on them)");
    }
    detail::check_view(op, "scores", scores);
    detail::check_compute_pair(op, y.dtype, "scores", scores.dtype);
    detail::check_same_shape(op, "scores", y.shape, scores.shape);
    detail::check_disjoint(op, "scores", scores, "dscores", dscores);
  }
  detail::check_disjoint(op, "y", y, "dscores", dscores);
  detail::check_no_overlap(op, dy, dscores, /*allow_alias=*/true);
  if (plan.bias) detail::check_disjoint(op, "bias", o.bias, "dscores", dscores);
  if (plan.mask) detail::check_disjoint(op, "mask", o.mask, "dscores", dscores);
  const int threads = detail::current_exec().threads;
  if (y.dtype == DType::f64)
    backward_impl<double>(dy, y, scores, dscores, plan, threads);
  else
    backward_impl<float>(dy, y, scores, dscores, plan, threads);
}

}  // namespace softmax
