// softmax/backward.hpp: gradients of softmax and log_softmax (the backward passes).
//
// Common rules
// - Views: y (the forward output), dy (the gradient with respect to y) and dx (the gradient
//   with respect to the forward input x) are strided views of one shape; the op runs along
//   `options.axis` (negative counts from the end), as the forward op did.
// - dtypes: y and dy share one dtype. f32, bf16, f16 compute in f32 and dx may be f32, bf16
//   or f16 (rounded once from the f32 result); f64 computes in f64 and writes f64.
// - Temperature: for y = softmax(x / T) pass the same options.temperature; dx is scaled by 1/T
//   (a multiply by 1/T in the compute type; where 1/T is not a normal number of that type, a
//   division by T in f64, so an extreme T neither saturates nor loses bits: a dx beyond the
//   range of its dtype is +-inf, one below it rounds into the subnormals).
// - In place: dx may be exactly y or exactly dy (same data, dtype and strides); any other
//   overlap of dx with y or dy is rejected (ErrorKind::kOverlap).
// - Errors: softmax::Error naming the op, argument, value and rule for a bad axis, shape or
//   dtype mismatch, a bad temperature, overlapping buffers, a CUDA view. Nothing is written
//   to dx when it is thrown.
// - Per row, the reduction (sum(dy * y) or sum(dy)) is accumulated in fixed target-independent
//   lanes (f32 lanes within 2048-element blocks, then f64 across blocks), so results do not
//   depend on the SIMD target or thread count. Memory: the row is read twice, the second time
//   from cache for rows up to a few hundred KiB, and written once.
// - Empty: zero rows is a no-op; a row of length 0 writes nothing.
#pragma once

#include "softmax/options.hpp"
#include "softmax/context.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// dx = (y * (dy - sum(dy * y))) / T along options.axis, the gradient of y = softmax(x / T)
// (the Jacobian-vector product diag(y) - y y^T applied to dy).
// Shapes: y, dy, dx all (..., n, ...) the same. Error bound (f32, against long double, tested):
// |dx_i - exact| <= (2^-22 * |y_i| * (|dy_i| + sum_j |dy_j * y_j|) + 2^-150 * (1 + n |y_i|)) / T
// plus the rounding of the output; f64 likewise with 2^-51 and 2^-1075. The absolute term is
// the rounding of products below the normal range (each dy_j * y_j of the sum, y_i * (dy_i - s)).
// NaN or inf in y or dy propagate (IEEE); no special casing.
// Throws softmax::Error (see the common rules).
void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                      const SoftmaxOptions& options = {}, const Context& context = {});

// dx = (dy - exp(y) * sum(dy)) / T along options.axis, the gradient of y = log_softmax(x / T).
// y must be a log-softmax output (values <= 0; a value > 0 is treated as 0, -inf gives
// exp(y) = 0). Shapes as softmax_backward. exp is Highway-vectorised with <= 1 ulp error (f32),
// so |dx_i - exact| <= (2^-22 * (|dy_i| + exp(y_i) * sum_j |dy_j|) + 2^-149 * sum_j |dy_j| +
// 2^-150) / T plus the rounding of the output (f32); f64 likewise with 2^-51, 2^-1074 and
// 2^-1075. The absolute terms are an exp(y_i) below the normal range (1 ulp of the subnormal
// spacing, times sum(dy)) and the rounding of its product.
// Throws softmax::Error (see the common rules).
void log_softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx,
                          const SoftmaxOptions& options = {}, const Context& context = {});

}  // namespace softmax
