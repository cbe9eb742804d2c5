// src/core/cross_entropy_impl.hpp: pieces shared by cross_entropy / nll_loss
// (src/core/cross_entropy.cc) and linear_cross_entropy (src/core/linear_cross_entropy.cc):
// option validation, weight and target reading, and the per-row loss/gradient coefficients
// (the formulas of include/softmax/cross_entropy.hpp, in one place).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "softmax/tensor.hpp"

namespace softmax::detail {

// Validates label_smoothing, z_loss (must be 0 unless allow_z), normalizer, grad_scale.
void check_ce_options(const char* op, const CrossEntropyOptions& o, bool allow_z);

// Reads and validates the class weights ((C) floating, finite) as f64; `present` tells whether
// weights were given. Empty when unset (every weight 1: use class_weight / class_weight_sum, so
// no O(C) vector is built per call without weights).
std::vector<double> read_class_weights(const char* op, const CrossEntropyOptions& o, int64_t c,
                                       bool& present);

// Weight of class i (1 when w is empty: no weights given).
inline double class_weight(const std::vector<double>& w, int64_t i) {
  return w.empty() ? 1.0 : w[static_cast<std::size_t>(i)];
}
// Their sum over c classes, added in class order (c exactly when w is empty, as c ones add up).
inline double class_weight_sum(const std::vector<double>& w, int64_t c) {
  if (w.empty()) return static_cast<double>(c);
  double s = 0.0;
  for (double x : w) s += x;
  return s;
}

// Element offset of row r (row-major over `dims`) in a view with `strides` for those dims.
inline int64_t row_offset(int64_t r, const std::vector<int64_t>& dims,
                          const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (std::size_t j = dims.size(); j-- > 0;) {
    off += (r % dims[j]) * strides[j];
    r /= dims[j];
  }
  return off;
}

// Reads hard targets (i32/i64 view of shape `dims`) and checks every one is in [0, c) or
// equals ignore_index; throws softmax::Error naming the first bad one.
std::vector<int64_t> read_targets(const char* op, const ConstTensorView& targets, int64_t c,
                                  int64_t ignore_index);

// Per-row coefficients for a hard target t that is kept (not ignored), given the common
// gradient factor g: loss and gradient formulas of softmax/cross_entropy.hpp.
struct HardRowCoeffs {
  double alpha, beta, gamma;
};
inline HardRowCoeffs hard_row_coeffs(double g, double w_t, double eps, double c, double w_sum,
                                     double z, double lse, bool with_p) {
  HardRowCoeffs k;
  k.alpha = with_p ? g * ((1.0 - eps) * w_t + eps / c * w_sum + 2.0 * z * lse) : 0.0;
  k.beta = g * eps / c;
  k.gamma = g * (1.0 - eps) * w_t;
  return k;
}

// The reduction's denominator and gradient factor.
struct ReductionPlan {
  double denom;  // divides the summed loss (1 for none)
  double g;      // gradient factor of every row (0 when denom == 0)
};
ReductionPlan plan_reduction(const CrossEntropyOptions& o, double mean_denom);

// Reads options.grad_output (reduction none only, shape `rows_shape`, floating) as one f64 per
// row; empty when unset.
std::vector<double> read_grad_output(const char* op, const CrossEntropyOptions& o,
                                     const std::vector<int64_t>& rows_shape);

// Writes `value` (f64) into element `off` of a floating view (rounded once to its dtype).
void store_loss(const TensorView& v, int64_t off, double value);

}  // namespace softmax::detail
