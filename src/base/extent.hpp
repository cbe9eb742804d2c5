// src/base/extent.hpp: the element count and the C-order strides of a shape, without allocating
// or throwing (callers name the op and tensor in their own errors).
#pragma once

#include <cstddef>
#include <cstdint>

namespace softmax::detail {

enum class CountError : uint8_t { kNone, kNegativeDim, kOverflow };

// n = the element count of shape[0, rank): 0 when any dimension is 0, whatever the others are;
// otherwise their product, kOverflow when it does not fit int64; kNegativeDim for a dim < 0.
inline CountError element_count(const int64_t* shape, std::size_t rank, int64_t& n) noexcept {
  n = 0;
  bool empty = false;
  for (std::size_t i = 0; i < rank; ++i) {
    if (shape[i] < 0) return CountError::kNegativeDim;
    empty = empty || shape[i] == 0;
  }
  if (empty) return CountError::kNone;
  n = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    if (__builtin_mul_overflow(n, shape[i], &n)) return CountError::kOverflow;
  }
  return CountError::kNone;
}

// Row-major strides (elements) of shape[0, rank) into strides[0, rank). With a zero dimension
// the view holds no element and its strides are never used; the product of the other dims may
// then exceed int64, so the stride stops growing instead of overflowing.
inline void c_order_strides(const int64_t* shape, std::size_t rank, int64_t* strides) noexcept {
  int64_t s = 1;
  for (std::size_t i = rank; i-- > 0;) {
    strides[i] = s;
    int64_t next;
    if (!__builtin_mul_overflow(s, shape[i] > 0 ? shape[i] : 1, &next)) s = next;
  }
}

}  // namespace softmax::detail
