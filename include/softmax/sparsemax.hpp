// softmax/sparsemax.hpp: sparsemax (Martins, Astudillo, "From softmax to sparsemax: a sparse
// model of attention and multi-label classification", ICML 2016), the Euclidean projection of
// z = x / T onto the probability simplex: y_i = max(z_i - tau, 0) with tau the unique value
// making sum(y) = 1. Unlike softmax it gives exact zeros; its Jacobian is
// diag(s) - s s^T / |S| on the support S = {i : y_i > 0} (s its indicator).
// See docs/ops/sparsemax.md (comparison with softmax, argmax, sigmoid and Gumbel-softmax).
#pragma once

#include "softmax/options.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// y = sparsemax(x / options.temperature) along options.axis.
// Algorithm: per row, z in f64, sorted descending (O(n log n)); the support size
// k = max{j : 1 + j z_(j) > sum_{i <= j} z_(i)}, tau = (sum_{i <= k} z_(i) - 1) / k.
// Shapes: x (..., n, ...) f32, f64, bf16 or f16, any strides; y the same shape, dtype as softmax
// allows; y may be x (in place). Error bound against the exact projection: |y_i - exact| <=
// 2^-24 |y_i| (f32 rounding of the output; 2^-53 for f64) + (n + 1) * 2^-52 * max_j |z_j - max z|
// over the finite z_j (the shift of the row by its max, then the f64 prefix sums). Entries -inf get
// 0; a row holding NaN or +inf, or all -inf, gives NaN. Throws softmax::Error for a bad axis,
// temperature (finite, > 0), shapes, dtypes or overlap.
void sparsemax(ConstTensorView x, TensorView y, const SoftmaxOptions& options = {});

// dx = the gradient through y = sparsemax(x / T): dx_i = s_i (dy_i - mean_{j in S} dy_j) / T,
// S = {i : y_i > 0}. y: a sparsemax output; dy: y's shape and dtype; dx: y's shape, dtype as
// softmax_backward allows; dx may be dy. Bound: 2^-52 * n * max |dy| / T plus the output rounding.
// Throws softmax::Error as softmax_backward.
void sparsemax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                        const SoftmaxOptions& options = {});

}  // namespace softmax
