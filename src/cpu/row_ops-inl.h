// src/cpu/row_ops-inl.h: per-target building blocks of the CPU kernels (Highway).
//
// Everything here is "consistent arithmetic": it uses only IEEE add, sub, mul, min, max and
// bit operations, never FMA (the project builds with -ffp-contract=off) or an approximate
// reciprocal, and rounds with the 1.5 * 2^p "magic number" trick rather than a target's own
// rounding instruction. So every SIMD target computes the same bits lane for lane.
//
// Per-target include guard (Highway's toggle idiom): this file is included once per target.
#if defined(SOFTMAX_CPU_ROW_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SOFTMAX_CPU_ROW_OPS_INL_H_
#undef SOFTMAX_CPU_ROW_OPS_INL_H_
#else
#define SOFTMAX_CPU_ROW_OPS_INL_H_
#endif

#include <cstdint>
#include <cstring>
#include <limits>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---------------------------------------------------------------------------------------------
// Constants of exp, per floating type.
template <typename T>
struct ExpConsts;

template <>
struct ExpConsts<float> {
  using Int = int32_t;
  static constexpr float kLog2e = 1.44269504088896341f;
  // ln 2 split so that n * kLn2Hi is exact for |n| <= 2^8: kLn2Hi has 9 significant bits.
  static constexpr float kLn2Hi = 0.693359375f;
  static constexpr float kLn2Lo = -2.12194440e-4f;
  // exp(a) rounds to 0 for a <= kMinArg (exp(-104) < 2^-150, half the least subnormal).
  static constexpr float kMinArg = -104.0f;
  static constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23
  static constexpr int kMantBits = 23;
  static constexpr Int kBias = 127;
  // Taylor coefficients 1/k!, k = 7..2, of exp on |r| <= ln2 / 2: truncation error
  // (ln2/2)^8 / 8! < 6e-9, i.e. < 0.1 ulp of the result.
  static constexpr int kDegree = 7;
  static constexpr float kCoeffs[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24,
                                      1.0f / 6,    0.5f};
};

template <>
struct ExpConsts<double> {
  using Int = int64_t;
  static constexpr double kLog2e = 1.4426950408889634074;
  // ln 2 split so that n * kLn2Hi is exact for |n| <= 2^11: kLn2Hi has 32 significant bits.
  static constexpr double kLn2Hi = 6.93147180369123816490e-01;
  static constexpr double kLn2Lo = 1.90821492927058770002e-10;
  static constexpr double kMinArg = -746.0;  // exp(-746) < 2^-1075
  static constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr int kMantBits = 52;
  static constexpr Int kBias = 1023;
  // Taylor coefficients 1/k!, k = 13..2: truncation error (ln2/2)^14 / 14! < 5e-18.
  static constexpr int kDegree = 13;
  static constexpr double kCoeffs[] = {
      1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
      1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
      1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5};
};

// 2^k for integral-valued k (as a float/double vector) with kMinExp <= k <= kMaxExp of normals.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Pow2I(D d, V k) {
  using T = hn::TFromD<D>;
  using C = ExpConsts<T>;
  const hn::RebindToSigned<D> di;
  const auto ki = hn::ConvertTo(di, k);  // k is integral: exact on every target
  const auto bits = hn::ShiftLeft<C::kMantBits>(hn::Add(ki, hn::Set(di, C::kBias)));
  return hn::BitCast(d, bits);
}

// exp(a + lo) for a <= 0 (including -inf), |lo| <= ulp(a) / 2 a correction term (pass Zero
// when there is none). Result in [0, 1]; subnormal results are computed (not flushed).
// Max error, measured against a long double reference over all of [-104, 0] (f32 test
// ExpAccuracy): 1 ulp for f32; f64: 1 ulp (sampled). NaN in a gives an unspecified value:
// callers detect NaN rows themselves. Not valid for a > 0.
// Method: Cody-Waite reduction a = n ln2 + r, |r| <= ln2/2, Taylor polynomial in Horner form,
// scaling by 2^n done as two exact multiplications so subnormal results round once.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V ExpNonPositive(D d, V a, V lo) {
  using T = hn::TFromD<D>;
  using C = ExpConsts<T>;
  a = hn::Max(a, hn::Set(d, C::kMinArg));
  const V magic = hn::Set(d, C::kRoundMagic);
  // n = round-to-nearest-even(a * log2(e)), via the magic-number trick (|a log2e| < 2^22).
  const V n = hn::Sub(hn::Add(hn::Mul(a, hn::Set(d, C::kLog2e)), magic), magic);
  V r = hn::Sub(a, hn::Mul(n, hn::Set(d, C::kLn2Hi)));  // exact (Sterbenz)
  r = hn::Sub(r, hn::Mul(n, hn::Set(d, C::kLn2Lo)));
  r = hn::Add(r, lo);
  V p = hn::Set(d, C::kCoeffs[0]);
  for (int i = 1; i < C::kDegree - 1; ++i) {
    p = hn::Add(hn::Mul(p, r), hn::Set(d, C::kCoeffs[i]));
  }
  p = hn::Add(hn::Mul(p, r), hn::Set(d, T(1)));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, T(1)));
  // 2^n = 2^n1 * 2^n2 with n1 = floor(n / 2): both factors are normal for n >= 2 * kMinExp, so
  // p * 2^n1 is exact and the only rounding is the final one (into the subnormals if need be).
  const V n1 = hn::Floor(hn::Mul(n, hn::Set(d, T(0.5))));
  const V n2 = hn::Sub(n, n1);
  return hn::Mul(hn::Mul(p, Pow2I(d, n1)), Pow2I(d, n2));
}

// Knuth's TwoSum: hi + lo == a + b exactly, hi = fl(a + b). Six IEEE operations, no branch.
template <class V>
HWY_INLINE V TwoSum(V a, V b, V& lo) {
  const V hi = hn::Add(a, b);
  const V bb = hn::Sub(hi, a);
  lo = hn::Add(hn::Sub(a, hn::Sub(hi, bb)), hn::Sub(b, bb));
  return hi;
}

// ---------------------------------------------------------------------------------------------
// Loads that widen storage types to the compute type, and stores that narrow with
// round-to-nearest-even (Highway 1.0's bf16 demotion truncates and its emulated f16 demotion
// truncates, so we do both ourselves, identically on every target).

template <class D>
HWY_INLINE hn::Vec<D> LoadWiden(D d, const hn::TFromD<D>* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWiden(D d, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, p));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWiden(D d, const hwy::float16_t* p) {
  // f16 -> f32 through integer operations: exact, and the same on every target.
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> du16;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto em = hn::And(h, hn::Set(du, 0x7FFFu));
  // Normal and subnormal: reinterpret (em << 13) as f32 and scale by 2^112 (exact).
  const auto scaled = hn::Mul(hn::BitCast(d, hn::ShiftLeft<13>(em)), hn::Set(d, 0x1.0p112f));
  // Inf / NaN (exponent 31): exponent 255, mantissa kept.
  const auto infnan = hn::BitCast(d, hn::Or(hn::ShiftLeft<13>(em), hn::Set(du, 0x7F800000u)));
  const hn::RebindToSigned<D> di;  // Highway 1.0 compares unsigned lanes only for ==
  const auto is_infnan = hn::RebindMask(d, hn::Gt(hn::BitCast(di, em), hn::Set(di, 0x7BFF)));
  return hn::Or(hn::IfThenElse(is_infnan, infnan, scaled), hn::BitCast(d, sign));
}

// Narrowing of f32 lanes to bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
template <class D>
HWY_INLINE auto F32ToBF16Bits(D /*d*/, hn::Vec<D> v) {
  const hn::RebindToUnsigned<D> du;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(bits, hn::Set(du, 0x7FFFu)), lsb));
  const auto nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x0040u));
  return hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), nan, rounded);
}

// Narrowing of f32 lanes to f16 bits, round to nearest even, subnormals and overflow to inf
// handled; NaN stays a quiet NaN.
template <class D>
HWY_INLINE auto F32ToF16Bits(D d, hn::Vec<D> v) {
  const hn::RebindToUnsigned<D> du;
  const auto bits = hn::BitCast(du, v);
  const auto sign = hn::And(bits, hn::Set(du, 0x80000000u));
  const auto abs_bits = hn::Xor(bits, sign);
  // Normal range: rebias exponent (127 -> 15), round mantissa 23 -> 10 bits to nearest even.
  const auto odd = hn::And(hn::ShiftRight<13>(abs_bits), hn::Set(du, 1u));
  const auto normal = hn::ShiftRight<13>(
      hn::Add(hn::Add(abs_bits, hn::Set(du, 0xC8000FFFu)), odd));  // (15-127)<<23 + 0xFFF
  // Subnormal range (|v| < 2^-14): add 0.5 so the FPU rounds to nearest even at 2^-24.
  const auto sub = hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(d, abs_bits), hn::Set(d, 0.5f))),
                           hn::Set(du, 0x3F000000u));
  // abs_bits < 2^31, so signed comparisons order them (Highway 1.0 lacks unsigned < for u32).
  const hn::RebindToSigned<D> di;
  const auto abs_i = hn::BitCast(di, abs_bits);
  const auto is_sub = hn::RebindMask(du, hn::Lt(abs_i, hn::Set(di, 0x38800000)));  // < 2^-14
  const auto is_big = hn::RebindMask(du, hn::Gt(abs_i, hn::Set(di, 0x477FEFFF)));  // >= 65520
  const auto is_nan = hn::RebindMask(du, hn::Gt(abs_i, hn::Set(di, 0x7F800000)));
  auto h = hn::IfThenElse(is_sub, sub, normal);
  h = hn::IfThenElse(is_big, hn::Set(du, 0x7C00u), h);
  h = hn::IfThenElse(is_nan, hn::Set(du, 0x7E00u), h);
  return hn::Or(h, hn::ShiftRight<16>(sign));
}

template <class D>
HWY_INLINE void StoreNarrow(D d, hn::Vec<D> v, hn::TFromD<D>* p) {
  hn::StoreU(v, d, p);
}
template <class D>
HWY_INLINE void StoreNarrow(D d, hn::Vec<D> v, hwy::bfloat16_t* p) {
  const hn::Rebind<uint16_t, D> du16;
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(hn::RebindToSigned<D>(), F32ToBF16Bits(d, v))),
             du16, reinterpret_cast<uint16_t*>(p));
}
template <class D>
HWY_INLINE void StoreNarrow(D d, hn::Vec<D> v, hwy::float16_t* p) {
  const hn::Rebind<uint16_t, D> du16;
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(hn::RebindToSigned<D>(), F32ToF16Bits(d, v))),
             du16, reinterpret_cast<uint16_t*>(p));
}

// Partial vectors (the tail of a row) go through a stack buffer so no caller pads and no
// load or store touches memory outside [p, p + count).
template <class D, typename TIn>
HWY_INLINE hn::Vec<D> LoadWidenN(D d, const TIn* p, size_t count) {
  HWY_ALIGN TIn buf[hn::MaxLanes(d)] = {};
  std::memcpy(buf, p, count * sizeof(TIn));
  return LoadWiden(d, buf);
}
template <class D, typename TOut>
HWY_INLINE void StoreNarrowN(D d, hn::Vec<D> v, TOut* p, size_t count) {
  HWY_ALIGN TOut buf[hn::MaxLanes(d)];
  StoreNarrow(d, v, buf);
  std::memcpy(p, buf, count * sizeof(TOut));
}

// ---------------------------------------------------------------------------------------------
// Target-independent accumulation: a block's elements are summed into kLogicalLanes logical
// lanes (element j goes to lane j mod kLogicalLanes), which every target maps onto
// kLogicalLanes / Lanes(d) vectors; the lanes are then folded in a fixed order. Hence the sum
// has the same bits on AVX-512, AVX2, SSE4 and scalar code.
template <typename T>
constexpr size_t LogicalLanes() {
  return 256 / sizeof(T);  // 64 f32 lanes (4 AVX-512 vectors), 32 f64 lanes
}
// Lanes left after the vector fold; then summed by FoldScalar.
template <typename T>
constexpr size_t FoldedLanes() {
  return 64 / sizeof(T);  // 16 f32, 8 f64
}

template <typename T>
HWY_INLINE T FoldScalar(const T* lanes) {
  // Pairwise tree over FoldedLanes<T>() values, fixed order.
  T tmp[FoldedLanes<T>()];
  for (size_t i = 0; i < FoldedLanes<T>(); ++i) tmp[i] = lanes[i];
  for (size_t w = FoldedLanes<T>() / 2; w >= 1; w /= 2) {
    for (size_t i = 0; i < w; ++i) tmp[i] = tmp[i] + tmp[i + w];
  }
  return tmp[0];
}

// Folds acc[0..K) (K = LogicalLanes / Lanes) down to one value in a target-independent order.
template <class D, size_t K>
HWY_INLINE hn::TFromD<D> FoldLanes(D d, hn::Vec<D> (&acc)[K]) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  size_t k = K;
  while (k * N > FoldedLanes<T>()) {
    const size_t half = k / 2;
    for (size_t i = 0; i < half; ++i) acc[i] = hn::Add(acc[i], acc[i + half]);
    k = half;
  }
  HWY_ALIGN T lanes[FoldedLanes<T>() + hn::MaxLanes(d)];
  for (size_t i = 0; i < k; ++i) hn::Store(acc[i], d, lanes + i * N);
  return FoldScalar(lanes);
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#endif  // SOFTMAX_CPU_ROW_OPS_INL_H_
