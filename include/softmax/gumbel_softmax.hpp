// softmax/gumbel_softmax.hpp: the Gumbel-softmax (concrete) relaxation of a categorical draw
// (Jang, Gu, Poole, "Categorical reparameterization with Gumbel-softmax", ICLR 2017; Maddison,
// Mnih, Teh, "The concrete distribution", ICLR 2017), forward and backward, seeded.
// See docs/ops/sparsemax.md for how it compares with softmax, argmax, sigmoid and sparsemax.
//
//   y = softmax((x + g) / tau) along the axis,  g_i = -log(-log(u_i)),
// u_i the Philox-4x32-10 uniform in (0, 1) of softmax/sampling.hpp's Gumbel-max with stream r
// = the row index (row-major over the other dims) and draw i = the position along the axis:
// a function of (seed, offset, r, i) only. hard = true returns the straight-through variant:
// the forward value is one_hot(argmax_i (x_i + g_i)) (lowest index on ties; exactly 0 and 1,
// where torch's y_hard - y_soft.detach() + y_soft carries rounding), and the backward pass is
// that of the soft y. So argmax of the hard output is the Gumbel-max draw of softmax(x). A row
// whose soft output is NaN (a NaN or +inf logit, or every logit -inf) is NaN in the hard output
// too, never a one-hot.
#pragma once

#include <cstdint>

#include "softmax/tensor.hpp"

namespace softmax {

struct GumbelSoftmaxOptions {
  int64_t axis = -1;  // as SoftmaxOptions::axis
  double tau = 1.0;   // temperature, finite and > 0
  bool hard = false;  // straight-through one-hot forward
  int threads = 0;    // as SoftmaxOptions::threads
};

// Shapes: logits (..., n, ...) f32, f64, bf16 or f16, any strides, n < 2^32 - 1 along the axis;
// y the same shape, dtype as softmax allows ({f32, bf16, f16} for f32/bf16/f16 logits, f64 for
// f64). x + g is rounded once to the compute type (f32, or f64), then the soft output has
// softmax's error bound (include/softmax/ops.hpp) on it. NaN propagates as in softmax.
// Throws softmax::Error (nothing written) for a bad axis, tau, shapes, dtypes or overlap.
void gumbel_softmax(ConstTensorView logits, TensorView y, const GumbelSoftmaxOptions& options,
                    uint64_t seed, uint64_t offset = 0);

// dx = the gradient of sum(dy * y_soft) with respect to the logits, y_soft = the soft forward
// output for the same (logits, options.tau, seed, offset): (y_soft * (dy - sum(dy * y_soft))) /
// tau, also for hard = true (straight-through). dy: the logits' shape and dtype; dx: the
// logits' shape, dtype as softmax_backward allows. Bound as softmax_backward, on y_soft.
// Throws softmax::Error as gumbel_softmax, and for dy / dx of the wrong shape or dtype.
void gumbel_softmax_backward(ConstTensorView logits, ConstTensorView dy, TensorView dx,
                             const GumbelSoftmaxOptions& options, uint64_t seed,
                             uint64_t offset = 0);

}  // namespace softmax
