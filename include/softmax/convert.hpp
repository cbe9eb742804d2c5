// softmax/convert.hpp: dtype conversion of a strided tensor.
#pragma once

#include "softmax/context.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// y = x elementwise in y's dtype.
// Shapes: y.shape == x.shape (any rank, any strides). dtypes: x any of f32, f64, bf16, f16, i32,
// i64; y f32, f64, bf16 or f16 (integer outputs are not offered: they would need a rounding
// rule).
// Rounding: each value is rounded once, to nearest even, from its exact value (f64 -> bf16/f16
// directly, never through a rounded f32); values beyond the target's range become +-inf, NaN
// stays NaN. Error bound: 0.5 ulp of the target format (exact when it can hold the value).
// y may be exactly x only when the dtypes are equal (a copy); other overlaps are rejected.
// Throws softmax::Error for mismatched shapes, an unsupported dtype, overlap, a CUDA view;
// nothing is written then.
void convert(ConstTensorView x, TensorView y, const Context& context = {});

}  // namespace softmax
