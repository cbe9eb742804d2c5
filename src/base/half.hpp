// src/base/half.hpp: scalar bf16/f16 <-> f32 conversions (round to nearest even), bit-identical
// to the vector conversions in src/cpu/row_ops-inl.h; and typed scalar load/store by DType.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "softmax/tensor.hpp"

namespace softmax::detail {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  const uint32_t b = f32_bits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((b >> 16) | 0x0040u);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}
inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_f16(float f) {
  const uint32_t b = f32_bits(f);
  const uint32_t sign = b & 0x80000000u;
  const uint32_t a = b ^ sign;
  uint32_t h;
  if (a > 0x7F800000u) {
    h = 0x7E00u;  // NaN
  } else if (a >= 0x477FF000u) {
    h = 0x7C00u;  // rounds to >= 65520: inf
  } else if (a < 0x38800000u) {
    h = f32_bits(bits_f32(a) + 0.5f) - 0x3F000000u;  // subnormal, FPU rounds at 2^-24
  } else {
    h = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;
  }
  return static_cast<uint16_t>(h | (sign >> 16));
}
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  float v;
  if (em >= 0x7C00u)
    v = bits_f32((em << 13) | 0x7F800000u);
  else
    v = bits_f32(em << 13) * 0x1.0p112f;
  return bits_f32(f32_bits(v) | sign);
}

// v rounded to f32 with round-to-odd (truncate, then set the last bit when inexact). Rounding
// that f32 to nearest even in a format of at most 22 bits (bf16: 8, f16: 11) gives the correctly
// rounded result of v itself: one rounding from f64, not two.
inline float f64_to_f32_round_odd(double v) {
  if (!std::isfinite(v)) return static_cast<float>(v);
  float f = static_cast<float>(v);
  if (std::fabs(static_cast<double>(f)) > std::fabs(v)) f = std::nextafter(f, 0.0f);  // truncate
  if (static_cast<double>(f) != v) f = bits_f32(f32_bits(f) | 1u);                    // sticky bit
  return f;
}
inline uint16_t f64_to_bf16(double v) { return f32_to_bf16(f64_to_f32_round_odd(v)); }
inline uint16_t f64_to_f16(double v) { return f32_to_f16(f64_to_f32_round_odd(v)); }

// Reads element `i` (in elements) of a floating buffer as double.
inline double load_as_double(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::i32: return static_cast<const int32_t*>(p)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
  }
  return 0;
}

// Writes v to element `i` of a buffer of dtype t (bf16/f16 via f32: one rounding from f32
// values, the f32 rounding of v first otherwise; integers truncate).
inline void store_from_double(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::f64: static_cast<double*>(p)[i] = v; break;
    case DType::bf16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(static_cast<float>(v)); break;
    case DType::f16: static_cast<uint16_t*>(p)[i] = f32_to_f16(static_cast<float>(v)); break;
    case DType::i32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::i64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
  }
}

}  // namespace softmax::detail
