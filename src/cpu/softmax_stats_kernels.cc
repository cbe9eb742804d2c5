// src/cpu/softmax_stats_kernels.cc: the row statistics of the softmax family (chunk max, exp-sum,
// split log-sum) and the scalar exp helpers, compiled once per SIMD target (foreach_target).
#include <cmath>
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/softmax_stats_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/kernels.hpp"
#include "src/cpu/softmax_blocks-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

double ExpDiffImpl(double a, double b, const cpu::Temperature& t) { return ExpDiff(a, b, t); }

double ExpF64Impl(double a) {
  const hn::CappedTag<double, 1> d1;
  return hn::GetLane(ExpNonPositive(d1, hn::Set(d1, a), hn::Zero(d1)));
}

void FillStatsKernels(cpu::KernelTable* t) {
  t->chunk_stats = &ChunkStatsImpl;
  t->chunk_stats_log = &ChunkStatsLogImpl;
  t->chunk_max = &ChunkMaxImpl;
  t->exp_f64 = &ExpF64Impl;
  t->exp_diff = &ExpDiffImpl;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"

namespace softmax {
HWY_EXPORT(FillStatsKernels);

namespace cpu::detail {
void fill_stats_kernels(int64_t target, KernelTable* table) {
  SOFTMAX_DISPATCH(FillStatsKernels, target)(table);
}
}  // namespace cpu::detail
}  // namespace softmax
#endif  // HWY_ONCE
