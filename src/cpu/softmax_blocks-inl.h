// src/cpu/softmax_blocks-inl.h: the per-target building blocks of the softmax-family kernels
// (Highway): temperature variants, the shifted exponent, block max, block exp-sums and log-sums
// in target-independent logical lanes, the final scaling and the normalize pass. Included by
// the kernel files of each family (softmax_stats_kernels.cc, softmax_normalize_kernels.cc,
// softmax_rows_kernels.cc, argmax_sigmoid_kernels.cc), once per target.
//
// Shapes (every kernel): x: (n) contiguous, y: (n) contiguous; rows are split and strided
// views gathered by the caller (src/core).
//
// Per-target include guard (Highway's toggle idiom): this file is included once per target.
#if defined(SOFTMAX_CPU_SOFTMAX_BLOCKS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SOFTMAX_CPU_SOFTMAX_BLOCKS_INL_H_
#undef SOFTMAX_CPU_SOFTMAX_BLOCKS_INL_H_
#else
#define SOFTMAX_CPU_SOFTMAX_BLOCKS_INL_H_
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "hwy/highway.h"
#include "src/base/half.hpp"
#include "src/cpu/kernels.hpp"
#include "src/cpu/row_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using cpu::ArgmaxResult;
using cpu::ChunkStats;
using cpu::RowMode;

// Elements per block of the online pass: a block is read twice (max, then exp-sum) while it
// sits in L1 (8 KiB of f32), so a chunk costs one pass over memory.
constexpr size_t kBlockElems = static_cast<size_t>(cpu::kBlockElems);

// 1/T in the compute type as an unevaluated pair hi + lo, and T itself (for the dividing
// variant, f64 only). f64: the pair of cpu::Temperature (1/T to ~2^-106). f32: that pair rounded
// to an f32 pair (1/T to ~2^-48, so the softmax error does not grow with |x - m| / T); only used
// where Temperature::f32_ok() (1/T in [2^-100, 2^100]: both halves normal).
template <typename T>
struct InvT {
  T hi, lo, t;
};
template <typename T>
HWY_INLINE InvT<T> SplitInvT(const cpu::Temperature& tp) {
  if constexpr (hwy::IsSame<T, double>()) {
    return InvT<T>{tp.inv, tp.inv_lo, tp.t};
  } else {
    const float hi = static_cast<float>(tp.inv);
    const float lo = static_cast<float>((tp.inv - static_cast<double>(hi)) + tp.inv_lo);
    return InvT<T>{hi, lo, 0.0f};
  }
}

// The kernels' temperature variants (template argument kScale): T == 1, multiply by the pair
// 1/T = hi + lo, divide by T (f64 only: 1/T overflows or is tiny, see cpu::Temperature).
constexpr int kUnscaled = 0, kPairScaled = 1, kDivided = 2;
template <int kScale>
using ScaleTag = std::integral_constant<int, kScale>;

// fn(ScaleTag<variant>) for the variant of tp in compute type T (f32 has no dividing variant).
template <typename T, class Fn>
HWY_INLINE auto WithScale(const cpu::Temperature& tp, Fn&& fn) {
  if (!tp.scaled()) return fn(ScaleTag<kUnscaled>());
  if constexpr (hwy::IsSame<T, double>()) {
    if (tp.divide) return fn(ScaleTag<kDivided>());
  }
  return fn(ScaleTag<kPairScaled>());
}

// The exponent of one vector: a + lo = (x - m) / T, with x - m carried exactly (TwoSum) and
// then either multiplied by 1/T = inv_hi + inv_lo (FMA gives the product's rounding error) or
// divided by T (the FMA remainder gives the quotient's), so a + lo carries (x - m) / T to about
// 2^-48 (f32) / 2^-100 (f64) relative. Where x - m overflows (x and m finite, of opposite huge
// signs) it falls back to x / T - m / T. `lo` is meaningless where a is -inf.
template <int kScale, class D, class V = hn::Vec<D>>
HWY_INLINE void ShiftedArg(D d, V x, V neg_m, V inv_hi, V inv_lo, V t, V& a_out, V& lo_out) {
  V lo;
  V a = TwoSum(x, neg_m, lo);
  if constexpr (kScale != kUnscaled) {
    const auto ovf = hn::And(hn::IsInf(a), hn::IsFinite(x));
    const V hi = a;
    if constexpr (kScale == kPairScaled) {
      a = hn::Mul(hi, inv_hi);
      lo = hn::Add(Fma(d, hi, inv_hi, hn::Neg(a)), Fma(d, hi, inv_lo, hn::Mul(lo, inv_hi)));
    } else {
      a = hn::Div(hi, t);
      lo = hn::Div(hn::Add(Fma(d, hn::Neg(a), t, hi), lo), t);
    }
    if (HWY_UNLIKELY(!hn::AllFalse(d, ovf))) {
      const V alt = kScale == kPairScaled ? hn::Add(hn::Mul(x, inv_hi), hn::Mul(neg_m, inv_hi))
                                          : hn::Add(hn::Div(x, t), hn::Div(neg_m, t));
      a = hn::IfThenElse(ovf, alt, a);
      lo = hn::IfThenZeroElse(ovf, lo);
    }
  } else {
    (void)d;
    (void)inv_hi;
    (void)inv_lo;
    (void)t;
  }
  a_out = a;
  lo_out = lo;
}

// One value, rounded once from f64 to f32 (and then, for bf16/f16 storage, from f32).
HWY_INLINE void StoreScalar(float* p, double v) { *p = static_cast<float>(v); }
HWY_INLINE void StoreScalar(double* p, double v) { *p = v; }
HWY_INLINE void StoreScalar(hwy::bfloat16_t* p, double v) {
  const uint16_t b = detail::f32_to_bf16(static_cast<float>(v));
  std::memcpy(p, &b, 2);
}
HWY_INLINE void StoreScalar(hwy::float16_t* p, double v) {
  const uint16_t b = detail::f32_to_f16(static_cast<float>(v));
  std::memcpy(p, &b, 2);
}

// exp((a - b) / T) for a <= b, with a - b carried exactly (TwoSum) and (a - b) / T as in
// ShiftedArg: the maxima of f64 rows differ by amounts that f64 cannot hold exactly, and exp
// would amplify that rounding.
HWY_INLINE double ExpDiff(double a, double b, const cpu::Temperature& tp) {
  const hn::CappedTag<double, 1> d1;
  const InvT<double> it = SplitInvT<double>(tp);
  return WithScale<double>(tp, [&](auto scale) {
    hn::Vec<decltype(d1)> arg, lo;
    ShiftedArg<decltype(scale)::value>(d1, hn::Set(d1, a), hn::Set(d1, -b), hn::Set(d1, it.hi),
                                       hn::Set(d1, it.lo), hn::Set(d1, it.t), arg, lo);
    return hn::GetLane(ExpNonPositive(d1, arg, lo));
  });
}

// s + v rounded, with the rounding error added to comp (Knuth's TwoSum): compensated sums of
// block and chunk partials.
HWY_INLINE double TwoSumScalar(double s, double v, double& comp) {
  const double hi = s + v;
  const double bb = hi - s;
  comp += (s - (hi - bb)) + (v - bb);
  return hi;
}

// Max and NaN flag over x[0, len).
template <class D, typename TIn>
HWY_INLINE hn::TFromD<D> BlockMax(D d, const TIn* HWY_RESTRICT x, size_t len, bool& has_nan) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const auto neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  auto m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
  auto nan = hn::Zero(d);  // lanes of all-ones where a NaN was seen
  size_t i = 0;
  for (; i + 4 * N <= len; i += 4 * N) {
    const auto v0 = LoadAny(d, x + i);
    const auto v1 = LoadAny(d, x + i + N);
    const auto v2 = LoadAny(d, x + i + 2 * N);
    const auto v3 = LoadAny(d, x + i + 3 * N);
    m0 = hn::Max(m0, v0);
    m1 = hn::Max(m1, v1);
    m2 = hn::Max(m2, v2);
    m3 = hn::Max(m3, v3);
    const auto n01 = hn::Or(hn::VecFromMask(d, hn::IsNaN(v0)), hn::VecFromMask(d, hn::IsNaN(v1)));
    const auto n23 = hn::Or(hn::VecFromMask(d, hn::IsNaN(v2)), hn::VecFromMask(d, hn::IsNaN(v3)));
    nan = hn::Or(nan, hn::Or(n01, n23));
  }
  for (; i < len; i += N) {
    const size_t count = HWY_MIN(N, len - i);
    auto v = count == N ? LoadAny(d, x + i) : LoadWidenN(d, x + i, count);
    v = hn::IfThenElse(hn::FirstN(d, count), v, neg_inf);
    m0 = hn::Max(m0, v);
    nan = hn::Or(nan, hn::VecFromMask(d, hn::IsNaN(v)));
  }
  m0 = hn::Max(hn::Max(m0, m1), hn::Max(m2, m3));
  has_nan = !hn::AllTrue(d, hn::Eq(nan, hn::Zero(d)));
  // NaN lanes (if any) make the max meaningless; the caller sees has_nan.
  return hn::GetLane(hn::MaxOfLanes(d, m0));
}

// Logical lanes of the exp sums: element j of a block goes to lane j mod kSumLanes on every
// target (one AVX-512 f32 vector, two AVX2 vectors, 16 scalars). Few physical accumulators keep
// the unrolled loop within the register file; out-of-order execution overlaps the exps.
constexpr size_t kSumLanes = 16;

// Adds the lanes of e (compute type T) into the f64 accumulators acc[2k], acc[2k + 1] (f32) or
// acc[k] (f64), so that flattened accumulator lane j always holds block elements j mod kSumLanes.
// f64 input: e is already f64 and the addition is compensated (TwoSum, error terms in comp),
// since a block puts 128 terms in each lane.
template <class D, class DD, size_t K2>
HWY_INLINE void AccumulateWide(D d, DD dd, hn::Vec<DD> (&acc)[K2], hn::Vec<DD> (&comp)[K2],
                               size_t k, hn::Vec<D> e) {
  if constexpr (hwy::IsSame<hn::TFromD<D>, double>()) {
    (void)dd;
    hn::Vec<D> lo;
    acc[k] = TwoSum(acc[k], e, lo);
    comp[k] = hn::Add(comp[k], lo);
  } else {
    (void)comp;
#if HWY_TARGET == HWY_SCALAR
    acc[k] = hn::Add(acc[k], hn::Set(dd, static_cast<double>(hn::GetLane(e))));
#else
    const hn::Half<D> dh;
    acc[2 * k] = hn::Add(acc[2 * k], hn::PromoteTo(dd, hn::LowerHalf(dh, e)));
    acc[2 * k + 1] = hn::Add(acc[2 * k + 1], hn::PromoteTo(dd, hn::UpperHalf(dh, e)));
#endif
    (void)d;
  }
}

// f64 accumulator tag for compute tag D: same total width as one vector of D split in halves
// (f32), or D itself (f64). On the scalar target, one f64 lane per f32 lane.
template <class D>
using WideTag = hn::Simd<double,
                         hwy::IsSame<hn::TFromD<D>, double>() ? hn::MaxLanes(D())
                         : (HWY_TARGET == HWY_SCALAR)         ? 1
                                                              : hn::MaxLanes(D()) / 2,
                         0>;

// A block's exp sum: rest + ones, where (with kSplitOnes) `ones` counts the terms that are
// exactly 1 (the maximum, and anything within rounding of it) and `rest` sums the others.
// Keeping them apart lets log(sum) be computed as log1p(rest) when ones == 1, so logsumexp and
// log-softmax stay accurate in relative terms near 0 (a near-certain token).
struct BlockSum {
  double rest;
  double ones;
};

// sum over x[0, len) of exp((x - m) / T), accumulated in f64 in kSumLanes target-independent
// logical lanes; when e_out is non-null also stores each exp there (compute type T).
// f64 accumulation keeps the row sum exact to ~1e-16 whatever the row length (f64 compute:
// compensated, FoldLanesCompensated). D may be an f64 tag over f32/bf16/f16 input (the log modes'
// near-certain rows, chunk_stats_log).
template <int kScale, bool kSplitOnes, bool kStoreArg = false, class D, typename TIn>
HWY_INLINE BlockSum BlockExpSum(D d, const TIn* HWY_RESTRICT x, size_t len, hn::TFromD<D> m,
                                InvT<hn::TFromD<D>> it, hn::TFromD<D>* e_out) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  constexpr size_t K = kSumLanes / hn::MaxLanes(d);
  const WideTag<D> dd;
  constexpr size_t K2 = kSumLanes / hn::MaxLanes(WideTag<D>());
  static_assert(K >= 1 && K2 >= 1, "logical lanes must cover a vector");
  const auto neg_m = hn::Set(d, -m);
  const auto inv_hi = hn::Set(d, it.hi);
  const auto inv_lo = hn::Set(d, it.lo);
  const auto t_v = hn::Set(d, it.t);
  const auto one = hn::Set(d, T(1));
  hn::Vec<WideTag<D>> acc[K2], comp[K2];
  for (size_t k = 0; k < K2; ++k) acc[k] = comp[k] = hn::Zero(dd);
  auto ones = hn::Zero(d);  // integer counts: exact in any order
  auto add = [&](size_t k, hn::Vec<D> e) {
    if constexpr (kSplitOnes) {
      const auto is_one = hn::Eq(e, one);
      ones = hn::Add(ones, hn::IfThenElseZero(is_one, one));
      e = hn::IfThenZeroElse(is_one, e);
    }
    AccumulateWide(d, dd, acc, comp, k, e);
  };
  size_t i = 0;
  for (; i + K * N <= len; i += K * N) {
    for (size_t k = 0; k < K; ++k) {
      hn::Vec<D> a, lo;
      ShiftedArg<kScale>(d, LoadAny(d, x + i + k * N), neg_m, inv_hi, inv_lo, t_v, a, lo);
      const auto e = ExpNonPositive(d, a, lo);
      if (e_out) hn::StoreU(kStoreArg ? a : e, d, e_out + i + k * N);
      add(k, e);
    }
  }
  for (size_t k = 0; k < K && i + k * N < len; ++k) {
    const size_t count = HWY_MIN(N, len - i - k * N);
    hn::Vec<D> a, lo;
    ShiftedArg<kScale>(d, LoadWidenN(d, x + i + k * N, count), neg_m, inv_hi, inv_lo, t_v, a, lo);
    const auto e = hn::IfThenElseZero(hn::FirstN(d, count), ExpNonPositive(d, a, lo));
    if (e_out) StoreNarrowN(d, kStoreArg ? a : e, e_out + i + k * N, count);
    add(k, e);
  }
  double rest;
  if constexpr (hwy::IsSame<T, double>())
    rest = FoldLanesCompensated(dd, acc, comp);
  else
    rest = FoldLanes(dd, acc);
  double n_ones = 0;
  if constexpr (kSplitOnes) n_ones = static_cast<double>(hn::GetLane(hn::SumOfLanes(d, ones)));
  return BlockSum{rest, n_ones};
}

// Max and NaN flag of a whole chunk (block by block, so NaN anywhere is seen).
template <class D, typename TIn>
HWY_INLINE hn::TFromD<D> ChunkMax(D d, const TIn* HWY_RESTRICT x, int64_t n, bool& has_nan) {
  using T = hn::TFromD<D>;
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t b = 0; b < n; b += kBlockElems) {
    const size_t len = static_cast<size_t>(HWY_MIN(static_cast<int64_t>(kBlockElems), n - b));
    bool blk_nan = false;
    const T bm = BlockMax(d, x + b, len, blk_nan);
    if (blk_nan) {
      has_nan = true;
      return m;
    }
    m = bm > m ? bm : m;
  }
  return m;
}

// The exp sum of one block for the log modes, split as in BlockSum. f64 always keeps the terms
// equal to 1 apart. f32: one plain pass first; only a near-certain row (sum < 1 + 2^-20, where
// log(sum) must keep relative accuracy) is summed again, in f64 (f64 exps of the f32 inputs, so
// exps below the f32 subnormal range are not quantised to 2^-149) with the split. The general
// path (src/core row_stats_log: chunk_stats, then chunk_stats_log) applies the same rule to the
// whole row, so both give the same bits.
template <int kScale, bool kStoreArg, class D, typename TIn>
HWY_INLINE BlockSum BlockLogSum(D d, const TIn* HWY_RESTRICT x, size_t len, hn::TFromD<D> m,
                                const cpu::Temperature& tp, hn::TFromD<D>* arg_out) {
  using T = hn::TFromD<D>;
  if constexpr (!hwy::IsSame<T, double>()) {
    const BlockSum plain =
        BlockExpSum<kScale, false, kStoreArg>(d, x, len, m, SplitInvT<T>(tp), arg_out);
    if (!(plain.rest < cpu::kSplitOnesBelow)) return plain;
    const hn::ScalableTag<double> dd;
    return BlockExpSum<kScale, true>(dd, x, len, static_cast<double>(m), SplitInvT<double>(tp),
                                     static_cast<double*>(nullptr));
  } else {
    return BlockExpSum<kScale, true, kStoreArg>(d, x, len, m, SplitInvT<T>(tp), arg_out);
  }
}

// The final scaling of one block of stored exps: y = e / sum. f64: a true division (one rounding;
// the f32 path's reciprocal-then-multiply would add half an ulp to a 4-ulp budget). f32: a multiply
// by the f32 rounding of rescale / sum, computed in f64 (relative error 2^-24 on the factor).
// rescale = exp((block max - row max) / T) (1 when the block's exps are relative to the row max).
template <class D, typename TOut>
HWY_INLINE void ScaleRun(D d, const hn::TFromD<D>* e, TOut* y, size_t len, double rescale,
                         double sum) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  if (hwy::IsSame<T, double>() && rescale == 1.0) {
    const auto s = hn::Set(d, static_cast<T>(sum));
    for (; i + N <= len; i += N) StoreNarrow(d, hn::Div(hn::LoadU(d, e + i), s), y + i);
    if (i < len) StoreNarrowN(d, hn::Div(LoadWidenN(d, e + i, len - i), s), y + i, len - i);
    return;
  }
  const auto f = hn::Set(d, static_cast<T>(rescale / sum));
  for (; i + N <= len; i += N) StoreNarrow(d, hn::Mul(hn::LoadU(d, e + i), f), y + i);
  if (i < len) StoreNarrowN(d, hn::Mul(LoadWidenN(d, e + i, len - i), f), y + i, len - i);
}

template <int kScale, RowMode kMode, class D, typename TIn, typename TOut>
void NormalizeT(D d, const TIn* x, TOut* y, int64_t n, double max_d, const cpu::Temperature& tp,
                double scale_d) {
  // No HWY_RESTRICT: y may alias x exactly (in place); each vector is loaded before stored.
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const InvT<T> it = SplitInvT<T>(tp);
  const auto neg_m = hn::Set(d, -static_cast<T>(max_d));
  const auto inv_hi = hn::Set(d, it.hi);
  const auto inv_lo = hn::Set(d, it.lo);
  const auto t_v = hn::Set(d, it.t);
  const auto scale = hn::Set(d, static_cast<T>(scale_d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  const size_t len = static_cast<size_t>(n);
  auto one = [&](hn::Vec<D> v) {
    if constexpr (kMode == RowMode::kSoftmax) {
      hn::Vec<D> a, lo;
      ShiftedArg<kScale>(d, v, neg_m, inv_hi, inv_lo, t_v, a, lo);
      return hn::Mul(ExpNonPositive(d, a, lo), scale);
    } else if constexpr (kScale == kUnscaled) {
      // log-softmax, T = 1: y = (x - m) - log(sum). No TwoSum here: y and x - m have the same
      // sign and |y| >= |x - m|, so rounding x - m costs at most half an ulp of y (exp would
      // amplify it; a subtraction does not).
      return hn::Sub(hn::Add(v, neg_m), scale);
    } else {
      // log-softmax, T != 1: (x - m) / T carried as a + lo (see ShiftedArg), then one rounding.
      hn::Vec<D> a, lo;
      ShiftedArg<kScale>(d, v, neg_m, inv_hi, inv_lo, t_v, a, lo);
      lo = hn::IfThenZeroElse(hn::Eq(a, neg_inf), lo);
      return hn::Add(hn::Sub(a, scale), lo);
    }
  };
  size_t i = 0;
  for (; i + N <= len; i += N) StoreNarrow(d, one(LoadWiden(d, x + i)), y + i);
  if (i < len) StoreNarrowN(d, one(LoadWidenN(d, x + i, len - i)), y + i, len - i);
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#endif  // SOFTMAX_CPU_SOFTMAX_BLOCKS_INL_H_ toggle
