// fuzz/api_check.hpp: the documented error bounds of the public API as checks (used by
// fuzz/api_fuzz.cc), and long double references of the ops src/ref does not cover (the
// backward passes and the losses), written from the formulas in include/softmax/*.hpp.
//
// Bounds (each as stated in the header named, no slack):
//   softmax (ops.hpp)          4 ulp of the compute type (f32 / f64), for every T
//   log_softmax (ops.hpp)      6 eps |y_i| + 2^-150 (f32) / 2^-1075 (f64), eps = 2^-24 / 2^-53
//   logsumexp (ops.hpp)        2^-23 |y| + 2^-23 min(1, |max| / T) + 2^-150 (f32),
//                              2^-51 |y| + 2^-52 min(1, |max| / T) + 2^-1075 (f64)
//   sigmoid (ops.hpp)          3 ulp of the compute type
//   *_backward (backward.hpp)  (2^-22 |y_i| (|dy_i| + sum_j |dy_j y_j|) + 2^-150 (1 + n |y_i|)) / T
//                              and (2^-22 (|dy_i| + exp(y_i) sum_j |dy_j|) + 2^-149 sum_j |dy_j| +
//                              2^-150) / T (f64: 2^-51, 2^-1074, 2^-1075), each plus the
//                              rounding of the output (output_rounding)
//   cross_entropy, nll_loss    per row 2^-20 (f64: 2^-49) (1 + |loss_r|); a reduced loss: the sum
//   (cross_entropy.hpp)        of the rows' bounds over the same divisor; gradient
//                              2^-20 (|a| p_c + |b| w_c + |c| [c == t]) + 2^-148 |a| (f64:
//                              2^-49, 2^-1073) plus the output's rounding
// bf16/f16 outputs (and every loss / lse output, rounded from f64): the result within the bound
// rounded once, so the stored value must lie between the roundings of exact - bound and
// exact + bound (rounding is monotone). Other f32 / f64 outputs: |got - exact| <= bound, where
// +-inf is accepted only when exact +- bound itself rounds to it (beyond the type's range).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "softmax/tensor.hpp"
#include "src/base/half.hpp"

namespace api_fuzz {

using LD = long double;
using softmax::DType;

inline bool is_narrow(DType t) { return t == DType::bf16 || t == DType::f16; }
// The compute type of an op on input dtype t.
inline DType compute_type(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }
// Unit roundoff of a compute type.
inline LD unit_roundoff(DType ct) { return ct == DType::f64 ? 0x1p-53L : 0x1p-24L; }

inline int digits(DType t) {
  switch (t) {
    case DType::f64: return 53;
    case DType::bf16: return 8;
    case DType::f16: return 11;
    default: return 24;
  }
}
inline int min_exponent(DType t) {
  switch (t) {
    case DType::f64: return -1021;
    case DType::f16: return -13;
    default: return -125;
  }
}
// One ulp of a floating dtype at |v| (the subnormal spacing below the normal range).
inline LD ulp(DType t, LD v) {
  int e = 0;
  std::frexp(std::fabs(v), &e);
  const int ue =
      (v == 0 || !std::isfinite(v) || e < min_exponent(t) ? min_exponent(t) : e) - digits(t);
  return std::ldexp(static_cast<LD>(1), ue);
}

// v rounded to nearest (even) in dtype t (bf16/f16 through f32, as the library rounds).
inline LD round_to(DType t, LD v) {
  switch (t) {
    case DType::f64: return static_cast<double>(v);
    case DType::bf16:
      return softmax::detail::bf16_to_f32(softmax::detail::f32_to_bf16(static_cast<float>(v)));
    case DType::f16:
      return softmax::detail::f16_to_f32(softmax::detail::f32_to_f16(static_cast<float>(v)));
    default: return static_cast<float>(v);
  }
}

// True when a stored result `got` of dtype `out` meets |got - exact| <= bound (see the file
// comment for bf16/f16 and overflow). NaN must match NaN, an infinite exact value exactly.
// rounded: the output holds the rounding of a wider result (the losses and lse, formed in f64
// and stored in any floating dtype), so f32 / f64 outputs are bracketed as bf16/f16 are.
inline bool within(DType out, double got, LD exact, LD bound, bool rounded = false) {
  if (std::isnan(exact)) return std::isnan(got);
  if (std::isnan(got)) return false;
  if (std::isinf(exact)) return static_cast<LD>(got) == exact;
  if (is_narrow(out) || rounded) {
    return round_to(out, exact - bound) <= got && got <= round_to(out, exact + bound);
  }
  if (std::isinf(got))
    return static_cast<LD>(got) == round_to(out, got > 0 ? exact + bound : exact - bound);
  return std::fabs(static_cast<LD>(got) - exact) <= bound;
}

// "Plus the rounding of the output" (backward.hpp, cross_entropy.hpp gradients): half an ulp
// of an f32 / f64 output at the exact value (the subnormal spacing below the normal range);
// bf16/f16 outputs get it from within()'s rounding of exact +- bound.
inline LD output_rounding(DType out, LD exact) { return is_narrow(out) ? 0 : ulp(out, exact) / 2; }

// ---- bounds of the axis ops (ops.hpp), as stated there for every T.
inline LD softmax_bound(DType ct, LD exact) { return 4 * ulp(ct, exact); }
// 6 eps |y| plus half the least subnormal of the compute type (an underflowing log-prob).
inline LD log_softmax_bound(DType ct, LD exact) {
  return 6 * unit_roundoff(ct) * std::fabs(exact) + (ct == DType::f64 ? 0x1p-1075L : 0x1p-150L);
}
// 2^-23 |y| + 2^-23 min(1, |max| / T) + 2^-150 (f32), 2^-51 |y| + 2^-52 min(1, |max| / T) +
// 2^-1075 (f64): the middle term is the cancellation case (max < 0, y near 0).
inline LD logsumexp_bound(DType ct, LD exact, LD row_max, double t) {
  const bool f64 = ct == DType::f64;
  LD b = (f64 ? 0x1p-51L : 0x1p-23L) * std::fabs(exact) + (f64 ? 0x1p-1075L : 0x1p-150L);
  if (std::isfinite(row_max)) {
    b += (f64 ? 0x1p-52L : 0x1p-23L) * std::fmin(1.0L, std::fabs(row_max) / static_cast<LD>(t));
  }
  return b;
}
inline LD sigmoid_bound(DType ct, LD exact) { return 3 * ulp(ct, exact); }

// ---- backward passes (backward.hpp): exact dx and its bound for one row.
struct RowGrad {
  std::vector<LD> dx, bound;
  bool in_range = true;  // false: an intermediate exceeds the compute type's range
};
inline RowGrad softmax_backward_ref(const std::vector<LD>& y, const std::vector<LD>& dy, DType ct,
                                    double t) {
  const LD big =
      ct == DType::f64 ? std::numeric_limits<double>::max() : std::numeric_limits<float>::max();
  const LD k = ct == DType::f64 ? 0x1p-51L : 0x1p-22L;
  LD s = 0, sabs = 0;
  RowGrad g;
  for (std::size_t i = 0; i < y.size(); ++i) {
    s += dy[i] * y[i];
    sabs += std::fabs(dy[i] * y[i]);
  }
  if (!(sabs <= big)) g.in_range = false;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const LD v = y[i] * (dy[i] - s);
    g.dx.push_back(v / t);
    const LD tiny = ct == DType::f64 ? 0x1p-1075L : 0x1p-150L;  // products below the normal range
    g.bound.push_back((k * std::fabs(y[i]) * (std::fabs(dy[i]) + sabs) +
                       tiny * (1 + static_cast<LD>(y.size()) * std::fabs(y[i]))) /
                      t);
    if (!(std::fabs(dy[i] - s) <= big) || !(std::fabs(v) <= big)) g.in_range = false;
  }
  return g;
}
inline RowGrad log_softmax_backward_ref(const std::vector<LD>& y, const std::vector<LD>& dy,
                                        DType ct, double t) {
  const LD big =
      ct == DType::f64 ? std::numeric_limits<double>::max() : std::numeric_limits<float>::max();
  const LD k = ct == DType::f64 ? 0x1p-51L : 0x1p-22L;
  LD s = 0, sabs = 0;
  RowGrad g;
  for (const LD v : dy) {
    s += v;
    sabs += std::fabs(v);
  }
  if (!(sabs <= big)) g.in_range = false;
  for (std::size_t i = 0; i < y.size(); ++i) {
    // "a value > 0 is treated as 0, -inf gives exp(y) = 0"
    const LD e = std::exp(std::isnan(y[i]) ? y[i] : std::fmin(y[i], 0.0L));
    g.dx.push_back((dy[i] - e * s) / t);
    const LD tiny = ct == DType::f64 ? 0x1p-1075L : 0x1p-150L;  // a subnormal exp and product
    g.bound.push_back((k * (std::fabs(dy[i]) + e * sabs) + tiny * (2 * sabs + 1)) / t);
    if (!(std::fabs(dy[i] - e * s) <= big)) g.in_range = false;
  }
  return g;
}

// ---- losses (cross_entropy.hpp), hard targets. One row: logits or log-probs x (C classes).
struct LossParams {
  bool logits = true;  // cross_entropy (true) or nll_loss (false)
  std::vector<LD> w;   // class weights (empty: all 1)
  int64_t ignore_index = -100;
  LD eps = 0, z = 0;
};
struct RowLoss {
  bool kept = false;
  LD loss = 0, weight_t = 0, lse = 0;
  std::vector<LD> lp, p;  // log-probs (cross_entropy: log_softmax) and softmax (cross_entropy)
};
inline LD class_weight(const LossParams& q, std::size_t c) { return q.w.empty() ? 1 : q.w[c]; }

// loss_r = (1 - eps) w_t (-lp_t) + (eps / C) sum_c w_c (-lp_c) + z lse^2 (terms with a zero
// coefficient are left out, so an infinite log-prob they would multiply gives no NaN); NaN
// when the row holds NaN or +inf.
// `lp` and `p` come from src/ref (log_softmax / softmax of x) for cross_entropy, x itself
// (and no p) for nll_loss; `lse` from ref::logsumexp.
inline RowLoss row_loss(std::vector<LD> lp, std::vector<LD> p, LD lse, int64_t target,
                        const LossParams& q) {
  RowLoss r;
  r.lp = std::move(lp);
  r.p = std::move(p);
  r.lse = lse;
  if (target == q.ignore_index) return r;
  r.kept = true;
  const auto t = static_cast<std::size_t>(target);
  r.weight_t = class_weight(q, t);
  const auto c = static_cast<LD>(r.lp.size());
  if (q.eps != 1 && r.weight_t != 0) r.loss += (1 - q.eps) * r.weight_t * -r.lp[t];
  if (q.eps != 0) {
    LD sm = 0;
    for (std::size_t i = 0; i < r.lp.size(); ++i) {
      if (class_weight(q, i) != 0) sm += class_weight(q, i) * -r.lp[i];
    }
    r.loss += q.eps / c * sm;
  }
  if (q.logits && q.z != 0) r.loss += q.z * lse * lse;
  // A row holding NaN or +inf (a NaN or +inf logsumexp) gives a NaN loss
  // (docs/ops/cross_entropy.md): 0 * log 0 = 0 exempts a zero weight at a -inf logit of a
  // finite row, not such a row.
  if (q.logits && (std::isnan(lse) || lse == std::numeric_limits<LD>::infinity())) {
    r.loss = std::numeric_limits<LD>::quiet_NaN();
  }
  return r;
}
inline LD row_loss_bound(DType ct, LD loss) {
  return (ct == DType::f64 ? 0x1p-49L : 0x1p-20L) * (1 + std::fabs(loss));
}

// d loss_r / d x_c = g (a' p_c - b' w_c - c' [c == t]) with a' = (1 - eps) w_t + (eps / C) W +
// 2 z lse (cross_entropy; 0 for nll_loss), b' = eps / C, c' = (1 - eps) w_t; and the bound
// 2^-20 (|g a'| p_c + |g b'| w_c + |g c'| [c == t]) (f64: 2^-49). Ignored rows: 0, bound 0.
inline void row_grad(const RowLoss& r, int64_t target, const LossParams& q, LD g, DType ct,
                     std::vector<LD>& grad, std::vector<LD>& bound) {
  const std::size_t n = r.lp.size();
  grad.assign(n, 0);
  bound.assign(n, 0);
  if (!r.kept) return;
  const LD k = ct == DType::f64 ? 0x1p-49L : 0x1p-20L;
  LD wsum = 0;
  for (std::size_t i = 0; i < n; ++i) wsum += class_weight(q, i);
  const LD b = q.eps / static_cast<LD>(n);
  const LD cc = (1 - q.eps) * r.weight_t;
  const LD a = q.logits ? cc + b * wsum + (q.z != 0 ? 2 * q.z * r.lse : 0) : 0;
  for (std::size_t i = 0; i < n; ++i) {
    const LD hit = static_cast<int64_t>(i) == target ? 1 : 0;
    const LD pa = q.logits ? a * r.p[i] : 0;
    grad[i] = g * (pa - b * class_weight(q, i) - cc * hit);
    bound[i] = k * (std::fabs(g * a) * (q.logits ? r.p[i] : 0) +
                    std::fabs(g * b * class_weight(q, i)) + std::fabs(g * cc) * hit);
    if (q.logits) bound[i] += (ct == DType::f64 ? 0x1p-1073L : 0x1p-148L) * std::fabs(g * a);
  }
}

}  // namespace api_fuzz
