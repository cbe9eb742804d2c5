// src/cpu/softmax_kernels.cc: Highway kernels for the softmax family, compiled once per SIMD
// target (foreach_target) and exported as one KernelTable per target.
//
// Shapes (every kernel): x: (n) contiguous, y: (n) contiguous; rows are split and strided
// views gathered by the caller (src/core).
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/softmax_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/core/half.hpp"
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
    ShiftedArg<kScale>(d, LoadWidenN(d, x + i + k * N, count), neg_m, inv_hi, inv_lo, t_v, a,
                       lo);
    const auto e = hn::IfThenElseZero(hn::FirstN(d, count), ExpNonPositive(d, a, lo));
    if (e_out) StoreNarrowN(d, kStoreArg ? a : e, e_out + i + k * N, count);
    add(k, e);
  }
  double rest;
  if constexpr (hwy::IsSame<T, double>()) rest = FoldLanesCompensated(dd, acc, comp);
  else rest = FoldLanes(dd, acc);
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

// Statistics of a chunk. f32 compute: one pass, online per block (below). f64 (also f64 compute
// of f32/bf16/f16 input, chunk_stats_log): two passes over the chunk while it sits in L2: its
// maximum (or known_max, the row's maximum when the caller found it first), then the exp sum
// block by block relative to that one maximum, so no partial sum or stored exp is rescaled.
// (Chunks of one row are merged with the online rule by the caller.)
template <bool kSplitOnes, class D, typename TIn>
ChunkStats ChunkStatsT(D d, const TIn* HWY_RESTRICT x, int64_t n, const cpu::Temperature& tp,
                       hn::TFromD<D>* e_out, double* block_max, double known_max) {
  using T = hn::TFromD<D>;
  const InvT<T> inv_t = SplitInvT<T>(tp);
  constexpr T kInf = std::numeric_limits<T>::infinity();
  double rest = 0.0, rest_c = 0.0, ones = 0.0;  // rest_c: compensation of the block sums
  auto block_sum = [&](const TIn* xb, size_t len, T m, T* e_blk) {
    return WithScale<T>(tp, [&](auto scale) {
      return BlockExpSum<decltype(scale)::value, kSplitOnes>(d, xb, len, m, inv_t, e_blk);
    });
  };
  if (!hwy::IsSame<T, double>() && std::isnan(known_max)) {
    // f32 compute: one pass over memory. Each block's max is taken while it sits in L1, and the
    // running sum is rescaled when the max grows (online normaliser, Milakov & Gimelshein
    // 2018); the rescale factors are f64 exps of exact f64 differences of f32 maxima, so they cost
    // the f32 result nothing. (f64 rows take the two-pass branch below: an f64 rescale factor
    // would carry its own rounding into every element.)
    T m_run = -kInf;
    for (int64_t b = 0; b < n; b += kBlockElems) {
      const size_t len = static_cast<size_t>(HWY_MIN(static_cast<int64_t>(kBlockElems), n - b));
      bool blk_nan = false;
      const T bm = BlockMax(d, x + b, len, blk_nan);
      if (blk_nan) return ChunkStats{static_cast<double>(m_run), 0.0, true, 0.0, 0.0};
      if (bm > m_run) {
        if (ones + rest + rest_c != 0.0) {
          const double f = ExpDiff(static_cast<double>(m_run), static_cast<double>(bm), tp);
          rest = (ones + (rest + rest_c)) * f;  // the old ones are no longer exactly 1
          rest_c = 0.0;
          ones = 0.0;
        }
        m_run = bm;
      }
      if (block_max) block_max[b / static_cast<int64_t>(kBlockElems)] = static_cast<double>(m_run);
      if (!(m_run > -kInf && m_run < kInf)) {  // all -inf so far, or +inf: no sum
        if (e_out) std::fill(e_out + b, e_out + b + len, T(0));
        continue;
      }
      const BlockSum bs = block_sum(x + b, len, m_run, e_out ? e_out + b : nullptr);
      rest = TwoSumScalar(rest, bs.rest, rest_c);
      ones += bs.ones;
    }
    rest += rest_c;
    return ChunkStats{static_cast<double>(m_run), ones + rest, false, ones, rest};
  }
  bool has_nan = false;
  const T m = std::isnan(known_max) ? ChunkMax(d, x, n, has_nan) : static_cast<T>(known_max);
  if (has_nan) return ChunkStats{static_cast<double>(m), 0.0, true, 0.0, 0.0};
  const bool finite = m > -kInf && m < kInf;  // else: all -inf, or +inf: no sum
  for (int64_t b = 0; b < n; b += kBlockElems) {
    const size_t len = static_cast<size_t>(HWY_MIN(static_cast<int64_t>(kBlockElems), n - b));
    if (block_max) block_max[b / static_cast<int64_t>(kBlockElems)] = static_cast<double>(m);
    if (!finite) {
      if (e_out) std::fill(e_out + b, e_out + b + len, T(0));
      continue;
    }
    const BlockSum bs = block_sum(x + b, len, m, e_out ? e_out + b : nullptr);
    rest = TwoSumScalar(rest, bs.rest, rest_c);
    ones += bs.ones;
  }
  rest += rest_c;
  return ChunkStats{static_cast<double>(m), ones + rest, false, ones, rest};
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

// y = e / sum, block b rescaled by exp((block_max[b] - max) / T); y may be e (in place) or
// narrower storage.
template <class D, typename TOut>
void ScaleBlocksT(D d, const hn::TFromD<D>* e, TOut* y, int64_t n, const double* block_max,
                  double max, const cpu::Temperature& tp, double sum) {
  for (int64_t b = 0; b < n; b += kBlockElems) {
    const size_t len = static_cast<size_t>(HWY_MIN(static_cast<int64_t>(kBlockElems), n - b));
    const double bm = block_max[b / static_cast<int64_t>(kBlockElems)];
    const double rescale = bm == max ? 1.0 : ExpDiff(bm, max, tp);
    ScaleRun(d, e + b, y + b, len, rescale, sum);
  }
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

// Many short rows in one call (the per-row driver costs more than a 64-wide row): rows of
// n <= kBlockElems contiguous elements at x + r * x_stride and y + r * y_stride. Computes exactly
// what the general path (chunk_stats on one block, merge, scale_blocks / normalize) computes.
// kLogSumExp (mode value 2) writes one value per row at y + r * y_stride.
template <int kScale, class D, typename TIn, typename TOut>
void RowsScaledT(D d, const TIn* x, int64_t x_stride, TOut* y, int64_t y_stride, int64_t rows,
                 int64_t n, const cpu::Temperature& tp, int mode) {
  using T = hn::TFromD<D>;
  const InvT<T> inv_t = SplitInvT<T>(tp);
  constexpr T kInf = std::numeric_limits<T>::infinity();
  constexpr bool kF64 = hwy::IsSame<T, double>();
  HWY_ALIGN T work[kBlockElems];
  const size_t len = static_cast<size_t>(n);
  for (int64_t r = 0; r < rows; ++r) {
    const TIn* xr = x + r * x_stride;
    TOut* yr = y + r * y_stride;
    bool has_nan = false;
    const T m = BlockMax(d, xr, len, has_nan);
    const bool special = has_nan || !(m > -kInf && m < kInf);
    if (mode == 2) {
      double v;
      if (has_nan) v = std::numeric_limits<double>::quiet_NaN();
      else if (!(m > -kInf && m < kInf)) v = static_cast<double>(m);
      else {
        const BlockSum bs = BlockLogSum<kScale, false>(d, xr, len, m, tp, nullptr);
        v = cpu::LogSumExpOf(static_cast<double>(m), bs.ones, bs.rest, tp, kF64);
      }
      StoreScalar(yr, v);
      continue;
    }
    if (special) {
      for (size_t i = 0; i < len; ++i) StoreScalar(yr + i, std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    if (mode == static_cast<int>(RowMode::kSoftmax)) {
      T* e = hwy::IsSame<TOut, T>() ? reinterpret_cast<T*>(yr) : work;
      const BlockSum bs = BlockExpSum<kScale, false>(d, xr, len, m, inv_t, e);
      ScaleRun(d, e, yr, len, 1.0, bs.ones + bs.rest);
    } else if constexpr (kScale != kUnscaled) {
      const BlockSum bs = BlockLogSum<kScale, false>(d, xr, len, m, tp, nullptr);
      NormalizeT<kScale, RowMode::kLogSoftmax>(d, xr, yr, n, m, tp,
                                               cpu::LogOfSum(bs.ones, bs.rest));
    } else {
      // T = 1: the exp pass also stores x - m (into y, or an L1 scratch for bf16/f16), so the
      // output lines are fetched while the exps compute and the last pass is y = (x - m) - L
      // in L1: the same two roundings as NormalizeT, hence the same bits as the long-row path.
      // In place (y is x) the scratch is used: a near-certain row is summed twice (see
      // BlockLogSum), and the second pass must read x, not x - m.
      const bool into_y = hwy::IsSame<TOut, T>() &&
                          static_cast<const void*>(yr) != static_cast<const void*>(xr);
      T* dm = into_y ? reinterpret_cast<T*>(yr) : work;
      const BlockSum bs = BlockLogSum<kUnscaled, true>(d, xr, len, m, tp, dm);
      const auto l = hn::Set(d, static_cast<T>(cpu::LogOfSum(bs.ones, bs.rest)));
      const size_t N = hn::Lanes(d);
      size_t i = 0;
      for (; i + N <= len; i += N) StoreNarrow(d, hn::Sub(hn::LoadU(d, dm + i), l), yr + i);
      if (i < len) StoreNarrowN(d, hn::Sub(LoadWidenN(d, dm + i, len - i), l), yr + i, len - i);
    }
  }
}

template <class D, typename TIn, typename TOut>
void RowsT(D d, const TIn* x, int64_t x_stride, TOut* y, int64_t y_stride, int64_t rows,
           int64_t n, const cpu::Temperature& tp, int mode) {
  WithScale<hn::TFromD<D>>(tp, [&](auto scale) {
    RowsScaledT<decltype(scale)::value>(d, x, x_stride, y, y_stride, rows, n, tp, mode);
  });
}

template <class D, typename TIn, typename TOut>
void SigmoidT(D d, const TIn* x, TOut* y, int64_t n) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const auto one_v = hn::Set(d, T(1));
  auto one = [&](hn::Vec<D> v) {
    const auto e = ExpNonPositive(d, hn::Neg(hn::Abs(v)), hn::Zero(d));
    const auto denom = hn::Add(one_v, e);
    const auto pos = hn::Div(one_v, denom);
    const auto neg = hn::Div(e, denom);
    const auto r = hn::IfThenElse(hn::Ge(v, hn::Zero(d)), pos, neg);
    return hn::IfThenElse(hn::IsNaN(v), v, r);
  };
  const size_t len = static_cast<size_t>(n);
  size_t i = 0;
  for (; i + N <= len; i += N) StoreNarrow(d, one(LoadWiden(d, x + i)), y + i);
  if (i < len) StoreNarrowN(d, one(LoadWidenN(d, x + i, len - i)), y + i, len - i);
}

template <class D, typename TIn>
ArgmaxResult ArgmaxT(D d, const TIn* x, int64_t n) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const size_t len = static_cast<size_t>(n);
  bool has_nan = false;
  const T m = BlockMax(d, x, len, has_nan);  // BlockMax handles any length
  // Second pass: the first lane equal to the max (or the first NaN).
  const auto mv = hn::Set(d, m);
  for (size_t i = 0; i < len; i += N) {
    const size_t count = HWY_MIN(N, len - i);
    const auto v = count == N ? LoadWiden(d, x + i) : LoadWidenN(d, x + i, count);
    const auto hit = hn::And(has_nan ? hn::IsNaN(v) : hn::Eq(v, mv), hn::FirstN(d, count));
    const intptr_t lane = hn::FindFirstTrue(d, hit);
    if (lane >= 0) {
      const int64_t idx = static_cast<int64_t>(i) + lane;
      HWY_ALIGN T lanes[hn::MaxLanes(d)];
      hn::Store(v, d, lanes);
      return ArgmaxResult{idx, static_cast<double>(lanes[lane]), has_nan};
    }
  }
  return ArgmaxResult{0, static_cast<double>(m), has_nan};  // unreachable for n >= 1
}

// ---- dtype dispatch (VisitF32Storage / VisitF32StorageOut live in row_ops-inl.h) ----


ChunkStats ChunkStatsImpl(const void* x, DType dtype, int64_t n, const cpu::Temperature& t,
                          void* e_out, double* block_max, double known_max) {
  if (dtype == DType::f64) {
    return ChunkStatsT<false>(hn::ScalableTag<double>(), static_cast<const double*>(x), n, t,
                              static_cast<double*>(e_out), block_max, known_max);
  }
  return VisitF32Storage(dtype, x, [&](auto* px) {
    return ChunkStatsT<false>(hn::ScalableTag<float>(), px, n, t, static_cast<float*>(e_out),
                              block_max, known_max);
  });
}

// Every dtype in f64 (see KernelTable::chunk_stats_log).
ChunkStats ChunkStatsLogImpl(const void* x, DType dtype, int64_t n, const cpu::Temperature& t,
                             double known_max) {
  const hn::ScalableTag<double> d;
  if (dtype == DType::f64) {
    return ChunkStatsT<true>(d, static_cast<const double*>(x), n, t, nullptr, nullptr, known_max);
  }
  return VisitF32Storage(dtype, x, [&](auto* px) {
    return ChunkStatsT<true>(d, px, n, t, nullptr, nullptr, known_max);
  });
}

ChunkStats ChunkMaxImpl(const void* x, DType dtype, int64_t n) {
  bool has_nan = false;
  double m;
  if (dtype == DType::f64) {
    m = ChunkMax(hn::ScalableTag<double>(), static_cast<const double*>(x), n, has_nan);
  } else {
    m = VisitF32Storage(dtype, x, [&](auto* px) {
      return static_cast<double>(ChunkMax(hn::ScalableTag<float>(), px, n, has_nan));
    });
  }
  return ChunkStats{m, 0.0, has_nan, 0.0, 0.0};
}

void ScaleBlocksImpl(const void* e, void* y, DType y_dtype, int64_t n, const double* block_max,
                     double max, const cpu::Temperature& t, double sum) {
  if (y_dtype == DType::f64) {
    ScaleBlocksT(hn::ScalableTag<double>(), static_cast<const double*>(e), static_cast<double*>(y),
                 n, block_max, max, t, sum);
    return;
  }
  VisitF32StorageOut(y_dtype, y, [&](auto* py) {
    ScaleBlocksT(hn::ScalableTag<float>(), static_cast<const float*>(e), py, n, block_max, max,
                 t, sum);
  });
}

template <class D, typename TIn, typename TOut>
void NormalizeMode(D d, const TIn* x, TOut* y, int64_t n, double max, const cpu::Temperature& t,
                   double scale, RowMode mode) {
  WithScale<hn::TFromD<D>>(t, [&](auto s) {
    constexpr int kScale = decltype(s)::value;
    if (mode == RowMode::kSoftmax) NormalizeT<kScale, RowMode::kSoftmax>(d, x, y, n, max, t, scale);
    else NormalizeT<kScale, RowMode::kLogSoftmax>(d, x, y, n, max, t, scale);
  });
}

void NormalizeImpl(const void* x, DType x_dtype, void* y, DType y_dtype, int64_t n,
                   double max, const cpu::Temperature& t, double scale, RowMode mode) {
  if (x_dtype == DType::f64) {
    NormalizeMode(hn::ScalableTag<double>(), static_cast<const double*>(x), static_cast<double*>(y),
                  n, max, t, scale, mode);
    return;
  }
  VisitF32Storage(x_dtype, x, [&](auto* px) {
    VisitF32StorageOut(y_dtype, y, [&](auto* py) {
      NormalizeMode(hn::ScalableTag<float>(), px, py, n, max, t, scale, mode);
    });
    return 0;
  });
}

void RowsImpl(const void* x, DType x_dtype, int64_t x_stride, void* y, DType y_dtype,
              int64_t y_stride, int64_t rows, int64_t n, const cpu::Temperature& t, int mode) {
  if (x_dtype == DType::f64) {
    RowsT(hn::ScalableTag<double>(), static_cast<const double*>(x), x_stride,
          static_cast<double*>(y), y_stride, rows, n, t, mode);
    return;
  }
  VisitF32Storage(x_dtype, x, [&](auto* px) {
    VisitF32StorageOut(y_dtype, y, [&](auto* py) {
      RowsT(hn::ScalableTag<float>(), px, x_stride, py, y_stride, rows, n, t, mode);
    });
    return 0;
  });
}

void SigmoidImpl(const void* x, DType x_dtype, void* y, DType y_dtype, int64_t n) {
  if (x_dtype == DType::f64) {
    SigmoidT(hn::ScalableTag<double>(), static_cast<const double*>(x), static_cast<double*>(y), n);
    return;
  }
  VisitF32Storage(x_dtype, x, [&](auto* px) {
    VisitF32StorageOut(y_dtype, y, [&](auto* py) { SigmoidT(hn::ScalableTag<float>(), px, py, n); });
    return 0;
  });
}

ArgmaxResult ArgmaxImpl(const void* x, DType dtype, int64_t n) {
  if (dtype == DType::f64) return ArgmaxT(hn::ScalableTag<double>(), static_cast<const double*>(x), n);
  return VisitF32Storage(dtype, x, [&](auto* px) { return ArgmaxT(hn::ScalableTag<float>(), px, n); });
}

double ExpDiffImpl(double a, double b, const cpu::Temperature& t) { return ExpDiff(a, b, t); }

double ExpF64Impl(double a) {
  const hn::CappedTag<double, 1> d1;
  return hn::GetLane(ExpNonPositive(d1, hn::Set(d1, a), hn::Zero(d1)));
}

const cpu::KernelTable* GetKernelTable() {
  static const cpu::KernelTable table{hwy::TargetName(HWY_TARGET),
                                      &ChunkStatsImpl,
                                      &ChunkStatsLogImpl,
                                      &ChunkMaxImpl,
                                      &ScaleBlocksImpl,
                                      &NormalizeImpl,
                                      &RowsImpl,
                                      &SigmoidImpl,
                                      &ArgmaxImpl,
                                      &ExpF64Impl,
                                      &ExpDiffImpl};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"

namespace softmax {
HWY_EXPORT(GetKernelTable);

namespace cpu {
const KernelTable& kernels() { return *SOFTMAX_DISPATCH_ACTIVE(GetKernelTable)(); }
}  // namespace cpu
}  // namespace softmax
#endif  // HWY_ONCE
