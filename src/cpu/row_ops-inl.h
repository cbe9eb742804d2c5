// src/cpu/row_ops-inl.h: per-target building blocks of the CPU kernels (Highway).
//
// Everything here is "consistent arithmetic": it uses only correctly rounded IEEE operations
// (add, sub, mul, div, min, max, and fused multiply-add through Fma(), which is exact FMA on
// every target), bit operations, never a contraction chosen by the compiler (the project builds
// with -ffp-contract=off) or an approximate reciprocal, and rounds with the 1.5 * 2^p "magic
// number" trick rather than a target's own rounding instruction. So every SIMD target computes
// the same bits lane for lane.
//
// Per-target include guard (Highway's toggle idiom): this file is included once per target.
#if defined(SOFTMAX_CPU_ROW_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SOFTMAX_CPU_ROW_OPS_INL_H_
#undef SOFTMAX_CPU_ROW_OPS_INL_H_
#else
#define SOFTMAX_CPU_ROW_OPS_INL_H_
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "hwy/highway.h"
#include "softmax/tensor.hpp"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// a * b + c rounded once (IEEE fused multiply-add) on every target: the FMA instruction where the
// target has one (AVX2, AVX-512, NEON, SVE), std::fma per lane elsewhere (the scalar fallback),
// so results stay bit-identical across targets. (Highway's MulAdd rounds twice on targets
// without FMA, so it is not used directly.)
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Fma(D d, V a, V b, V c) {
#if HWY_NATIVE_FMA
  (void)d;
  return hn::MulAdd(a, b, c);
#else
  using T = hn::TFromD<D>;
  HWY_ALIGN T va[hn::MaxLanes(d)], vb[hn::MaxLanes(d)], vc[hn::MaxLanes(d)];
  hn::Store(a, d, va);
  hn::Store(b, d, vb);
  hn::Store(c, d, vc);
  for (size_t i = 0; i < hn::Lanes(d); ++i) va[i] = std::fma(va[i], vb[i], vc[i]);
  return hn::Load(d, va);
#endif
}

// ---------------------------------------------------------------------------------------------
// Constants of exp, per floating type.
template <typename T>
struct ExpConsts;

template <>
struct ExpConsts<float> {
  using Int = int32_t;
  static constexpr float kLog2e = 1.44269504088896341f;
  // ln 2 = kLn2Hi + kLn2Lo: kLn2Hi is ln 2 rounded to f32, kLn2Lo the rest. With FMA,
  // a - n * kLn2Hi is exact for the reduced range (|result| <= 0.35, a multiple of 2^-24).
  static constexpr float kLn2Hi = 0.693147182464599609375f;
  static constexpr float kLn2Lo = -1.904654323148236e-09f;
  // exp(a) rounds to 0 for a <= kMinArg (exp(-104) < 2^-150, half the least subnormal).
  static constexpr float kMinArg = -104.0f;
  static constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23
  static constexpr int kMantBits = 23;
  static constexpr int kScaleOffset = 64;
  static constexpr float kScaleBack = 0x1.0p-64f;
  // Taylor coefficients 1/k!, k = 7..2, of exp on |r| <= ln2 / 2: truncation error
  // (ln2/2)^8 / 8! < 6e-9, i.e. < 0.1 ulp of the result.
  static constexpr int kDegree = 7;
  static constexpr float kCoeffs[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120,
                                      1.0f / 24,   1.0f / 6,   0.5f};
};

template <>
struct ExpConsts<double> {
  using Int = int64_t;
  static constexpr double kLog2e = 1.4426950408889634074;
  // ln 2 = kLn2Hi + kLn2Lo (ln 2 rounded to f64, and the rest); see the f32 case.
  static constexpr double kLn2Hi = 0.6931471805599452862267639829951804131269;
  static constexpr double kLn2Lo = 2.319046813846299558417771e-17;
  static constexpr double kMinArg = -746.0;                  // exp(-746) < 2^-1075
  static constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr int kMantBits = 52;
  static constexpr int kScaleOffset = 64;
  static constexpr double kScaleBack = 0x1.0p-64;
  // Taylor coefficients 1/k!, k = 13..2: truncation error (ln2/2)^14 / 14! < 5e-18.
  static constexpr int kDegree = 13;
  static constexpr double kCoeffs[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                                       1.0 / 3628800.0,    1.0 / 362880.0,    1.0 / 40320.0,
                                       1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,
                                       1.0 / 24.0,         1.0 / 6.0,         0.5};
};

// exp(a + lo) for a <= 0 (including -inf), |lo| <= ulp(a) / 2 a correction term (pass Zero
// when there is none; it is ignored where a <= kMinArg). Result in [0, 1]; subnormal results
// are computed (not flushed). Max error, measured against a long double reference
// (tests/cpu/exp_test.cc, docs/accuracy.md): 0.886 ulp for f32 over [-104, 0], 0.843 ulp for
// f64 (sampled over [-746, 0]). NaN in `a`
// gives an unspecified value: callers detect NaN rows themselves. Not valid for a > 0.
// Method: Cody-Waite reduction a = n ln2 + r, |r| <= ln2/2 with FMA (n by the magic-number
// rounding, whose low bits already hold n as an integer), Taylor polynomial in Horner form, and the
// scaling p * 2^n done as an exact exponent-field add of n + 64 followed by one multiply by
// 2^-64, so subnormal results round exactly once.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V ExpNonPositive(D d, V a, V lo) {
  using T = hn::TFromD<D>;
  using C = ExpConsts<T>;
  const hn::RebindToSigned<D> di;
  const V min_arg = hn::Set(d, C::kMinArg);
  // Drop lo where a is clamped (a = -inf makes lo NaN); a NaN `a` keeps a NaN lo (so NaN
  // propagates into sums on every target).
  lo = hn::IfThenZeroElse(hn::Le(a, min_arg), lo);
  a = hn::Max(a, min_arg);
  const V magic = hn::Set(d, C::kRoundMagic);
  // t = magic + round-to-nearest-even(a * log2(e)); valid since |a log2e| < 2^22.
  const V t = Fma(d, a, hn::Set(d, C::kLog2e), magic);
  const V neg_n = hn::Sub(magic, t);
  V r = Fma(d, neg_n, hn::Set(d, C::kLn2Hi), a);  // exact (see kLn2Hi)
  r = Fma(d, neg_n, hn::Set(d, C::kLn2Lo), r);
  r = hn::Add(r, lo);
  V p = hn::Set(d, C::kCoeffs[0]);
  for (int i = 1; i < C::kDegree - 1; ++i) p = Fma(d, p, r, hn::Set(d, C::kCoeffs[i]));
  p = Fma(d, p, r, hn::Set(d, T(1)));
  p = Fma(d, p, r, hn::Set(d, T(1)));
  // The low bits of t are n (the magic constant's low mantissa bits are zero), so
  // (bits(t) + 64) << mantissa_bits is (n + 64) in the exponent field: p * 2^(n + 64) is a
  // normal number for every n >= kMinArg * log2(e), computed exactly by an integer add.
  const auto e_bits = hn::ShiftLeft<C::kMantBits>(
      hn::Add(hn::BitCast(di, t), hn::Set(di, static_cast<typename C::Int>(C::kScaleOffset))));
  const V scaled = hn::BitCast(d, hn::Add(hn::BitCast(di, p), e_bits));
  return hn::Mul(scaled, hn::Set(d, C::kScaleBack));
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

// LoadWiden, also from f32/bf16/f16 storage into f64 lanes (exact: through f32).
template <class D, typename TIn>
HWY_INLINE hn::Vec<D> LoadAny(D d, const TIn* p) {
  if constexpr (hwy::IsSame<hn::TFromD<D>, double>() && !hwy::IsSame<TIn, double>()) {
    const hn::Rebind<float, D> df;
    return hn::PromoteTo(d, LoadWiden(df, p));
  } else {
    return LoadWiden(d, p);
  }
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
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(hn::RebindToSigned<D>(), F32ToBF16Bits(d, v))), du16,
             reinterpret_cast<uint16_t*>(p));
}
template <class D>
HWY_INLINE void StoreNarrow(D d, hn::Vec<D> v, hwy::float16_t* p) {
  const hn::Rebind<uint16_t, D> du16;
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(hn::RebindToSigned<D>(), F32ToF16Bits(d, v))), du16,
             reinterpret_cast<uint16_t*>(p));
}

// The one place that maps a storage DType of the f32 compute path to its element type:
// fn(const float*), fn(const hwy::bfloat16_t*) or fn(const hwy::float16_t*).
template <class Fn>
HWY_INLINE auto VisitF32Storage(DType t, const void* p, Fn&& fn) {
  switch (t) {
    case DType::bf16: return fn(static_cast<const hwy::bfloat16_t*>(p));
    case DType::f16: return fn(static_cast<const hwy::float16_t*>(p));
    default: return fn(static_cast<const float*>(p));
  }
}
template <class Fn>
HWY_INLINE void VisitF32StorageOut(DType t, void* p, Fn&& fn) {
  switch (t) {
    case DType::bf16: fn(static_cast<hwy::bfloat16_t*>(p)); break;
    case DType::f16: fn(static_cast<hwy::float16_t*>(p)); break;
    default: fn(static_cast<float*>(p)); break;
  }
}

// Partial vectors (the tail of a row) go through a stack buffer so no caller pads and no
// load or store touches memory outside [p, p + count).
template <class D, typename TIn>
HWY_INLINE hn::Vec<D> LoadWidenN(D d, const TIn* p, size_t count) {
  HWY_ALIGN TIn buf[hn::MaxLanes(d)] = {};
  std::memcpy(buf, p, count * sizeof(TIn));
  return LoadAny(d, buf);
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

// Folds f64 accumulators acc[0..K) and their compensation terms comp[0..K) to one value,
// keeping every rounding error of the fold (Knuth's TwoSum): a plain fold of lanes holding terms
// of very different sizes (the maximum's 1 and small exps) would round several times at the
// larger ulp. Same target-independent order as FoldLanes (halving the logical lanes, then a
// pairwise tree over FoldedLanes values), so every target gets the same bits.
template <class D, size_t K>
HWY_INLINE double FoldLanesCompensated(D d, hn::Vec<D> (&acc)[K], hn::Vec<D> (&comp)[K]) {
  static_assert(hwy::IsSame<hn::TFromD<D>, double>(), "f64 lanes");
  constexpr size_t kFolded = FoldedLanes<double>();
  const size_t N = hn::Lanes(d);
  size_t k = K;
  while (k * N > kFolded) {
    const size_t half = k / 2;
    for (size_t i = 0; i < half; ++i) {
      hn::Vec<D> lo;
      acc[i] = TwoSum(acc[i], acc[i + half], lo);
      comp[i] = hn::Add(comp[i], hn::Add(comp[i + half], lo));
    }
    k = half;
  }
  HWY_ALIGN double a[kFolded + hn::MaxLanes(d)], c[kFolded + hn::MaxLanes(d)];
  for (size_t i = 0; i < k; ++i) {
    hn::Store(acc[i], d, a + i * N);
    hn::Store(comp[i], d, c + i * N);
  }
  for (size_t w = kFolded / 2; w >= 1; w /= 2) {
    for (size_t i = 0; i < w; ++i) {
      const double hi = a[i] + a[i + w];
      const double bb = hi - a[i];
      c[i] = c[i] + (c[i + w] + ((a[i] - (hi - bb)) + (a[i + w] - bb)));
      a[i] = hi;
    }
  }
  return a[0] + c[0];
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#endif  // SOFTMAX_CPU_ROW_OPS_INL_H_
