// src/core/widen.hpp: f32/bf16/f16 inputs whose temperature leaves the f32 compute range
// (!cpu::Temperature::f32_ok()) are computed in f64 on a widened copy and rounded back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "softmax/tensor.hpp"
#include "src/base/half.hpp"

namespace softmax::detail {

// Calls fn(offset in elements) for every element of a view of `shape` and `strides`, row-major.
template <class Fn>
void for_each_element(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                      Fn&& fn) {
  for (int64_t s : shape) {
    if (s == 0) return;
  }
  std::vector<int64_t> idx(shape.size(), 0);
  int64_t off = 0;
  for (;;) {
    fn(off);
    std::size_t d = shape.size();
    for (;;) {
      if (d == 0) return;
      --d;
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= (shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
}

// f32/bf16/f16 input with 1/T outside the f32 compute range (!Temperature::f32_ok(): T below
// 2^-100 or above 2^100, where 1/T has no f32 pair): computed in f64 by op_f64 on a contiguous
// f64 copy of x, and the f64 result rounded to y's dtype (through f32, as every f32-computed
// result). So an extreme T gives the correctly rounded limit (e.g. -inf log-probs for T = 1e-40)
// instead of a clamped 1/T. Extreme temperatures only: it allocates 8 bytes per element of x and y.
template <class OpF64>
void run_widened(const ConstTensorView& x, const TensorView& y, OpF64&& op_f64) {
  // (At least one element each, so the views' data are never null.)
  std::vector<double> xd(static_cast<std::size_t>(std::max<int64_t>(x.numel(), 1)));
  std::vector<double> yd(static_cast<std::size_t>(std::max<int64_t>(y.numel(), 1)));
  std::size_t i = 0;
  for_each_element(x.shape, x.strides,
                   [&](int64_t off) { xd[i++] = load_as_double(x.data, x.dtype, off); });
  op_f64(ConstTensorView(xd.data(), x.shape), TensorView(yd.data(), y.shape));
  i = 0;
  for_each_element(y.shape, y.strides,
                   [&](int64_t off) { store_from_double(y.data, y.dtype, off, yd[i++]); });
}

}  // namespace softmax::detail
