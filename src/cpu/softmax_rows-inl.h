// src/cpu/softmax_rows-inl.h: the many-short-rows kernel (softmax, log-softmax, logsumexp of
// rows of at most kBlockElems) as per-target templates, instantiated by input dtype in three
// files so no one translation unit holds all 30 instantiations (instrumented builds compile
// them in parallel): softmax_rows_kernels.cc (f64 and f32 input, and the entry point),
// softmax_rows_bf16_kernels.cc, softmax_rows_f16_kernels.cc.
//
// Per-target include guard (Highway's toggle idiom): this file is included once per target.
#if defined(SOFTMAX_CPU_SOFTMAX_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SOFTMAX_CPU_SOFTMAX_ROWS_INL_H_
#undef SOFTMAX_CPU_SOFTMAX_ROWS_INL_H_
#else
#define SOFTMAX_CPU_SOFTMAX_ROWS_INL_H_
#endif

#include <cmath>
#include <cstdint>
#include <limits>

#include "hwy/highway.h"
#include "src/cpu/kernels.hpp"
#include "src/cpu/softmax_blocks-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Many short rows in one call (the per-row driver costs more than a 64-wide row): rows of
// n <= kBlockElems contiguous elements at x + r * x_stride and y + r * y_stride. Computes exactly
// what the general path (chunk_stats on one block, merge, scale_blocks / normalize) computes.
// kLogSumExp writes one value per row at y + r * y_stride.
template <int kScale, class D, typename TIn, typename TOut>
void RowsScaledT(D d, const TIn* x, int64_t x_stride, TOut* y, int64_t y_stride, int64_t rows,
                 int64_t n, const cpu::Temperature& tp, RowMode mode) {
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
    if (mode == RowMode::kLogSumExp) {
      double v;
      if (has_nan)
        v = std::numeric_limits<double>::quiet_NaN();
      else if (!(m > -kInf && m < kInf))
        v = static_cast<double>(m);
      else {
        const BlockSum bs = BlockLogSum<kScale, false>(d, xr, len, m, tp, nullptr);
        v = cpu::LogSumExpOf(static_cast<double>(m), bs.ones, bs.rest, tp, kF64);
      }
      StoreScalar(yr, v);
      continue;
    }
    if (special) {
      for (size_t i = 0; i < len; ++i)
        StoreScalar(yr + i, std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    if (mode == RowMode::kSoftmax) {
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
      const bool into_y =
          hwy::IsSame<TOut, T>() && static_cast<const void*>(yr) != static_cast<const void*>(xr);
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
void RowsT(D d, const TIn* x, int64_t x_stride, TOut* y, int64_t y_stride, int64_t rows, int64_t n,
           const cpu::Temperature& tp, RowMode mode) {
  WithScale<hn::TFromD<D>>(tp, [&](auto scale) {
    RowsScaledT<decltype(scale)::value>(d, x, x_stride, y, y_stride, rows, n, tp, mode);
  });
}

// Rows of input type TIn (f32 compute) into any f32-family output dtype.
template <typename TIn>
void RowsFromF32Family(const TIn* x, int64_t x_stride, void* y, DType y_dtype, int64_t y_stride,
                       int64_t rows, int64_t n, const cpu::Temperature& t, RowMode mode) {
  VisitF32StorageOut(y_dtype, y, [&](auto* py) {
    RowsT(hn::ScalableTag<float>(), x, x_stride, py, y_stride, rows, n, t, mode);
  });
}

// Defined in softmax_rows_bf16_kernels.cc / softmax_rows_f16_kernels.cc (same targets).
void RowsBF16In(const hwy::bfloat16_t* x, int64_t x_stride, void* y, DType y_dtype,
                int64_t y_stride, int64_t rows, int64_t n, const cpu::Temperature& t, RowMode mode);
void RowsF16In(const hwy::float16_t* x, int64_t x_stride, void* y, DType y_dtype, int64_t y_stride,
               int64_t rows, int64_t n, const cpu::Temperature& t, RowMode mode);

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#endif  // SOFTMAX_CPU_SOFTMAX_ROWS_INL_H_ toggle
