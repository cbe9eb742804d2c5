// src/cpu/sampling_kernels.cc: Highway kernels of next-token sampling (softmax/sampling.hpp),
// compiled once per SIMD target (foreach_target) and exported as one SamplingKernelTable per
// target. The selection (radix select, draw) is scalar integer code in src/core/sampling*.
//
// Shapes (every kernel): x: (n) contiguous, w: (n) contiguous; rows are gathered by the caller.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/sampling_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/sampling_kernels.hpp"
#include "src/cpu/row_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace sampling_impl {  // own namespace: no ODR clash with softmax_kernels.cc helpers
namespace hn = hwy::HWY_NAMESPACE;

using cpu::RowRange;

// max, min and NaN flag over x[0, n), four independent accumulators. Max/Min of IEEE values is
// exact, so the order does not matter and every target agrees.
template <class D, typename TIn>
RowRange RangeT(D d, const TIn* HWY_RESTRICT x, int64_t n_) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const size_t n = static_cast<size_t>(n_);
  constexpr T kInf = std::numeric_limits<T>::infinity();
  auto mx0 = hn::Set(d, -kInf), mx1 = mx0, mn0 = hn::Set(d, kInf), mn1 = mn0;
  // NaN test by IsNaN: Highway 1.0's Ne is an ordered compare (false for NaN) on x86.
  auto nan = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto v0 = LoadWiden(d, x + i);
    const auto v1 = LoadWiden(d, x + i + N);
    mx0 = hn::Max(mx0, v0);
    mx1 = hn::Max(mx1, v1);
    mn0 = hn::Min(mn0, v0);
    mn1 = hn::Min(mn1, v1);
    nan = hn::Or(nan, hn::Or(hn::VecFromMask(d, hn::IsNaN(v0)), hn::VecFromMask(d, hn::IsNaN(v1))));
  }
  for (; i < n; i += N) {
    const size_t count = HWY_MIN(N, n - i);
    const auto v = count == N ? LoadWiden(d, x + i) : LoadWidenN(d, x + i, count);
    const auto valid = hn::FirstN(d, count);
    mx0 = hn::Max(mx0, hn::IfThenElse(valid, v, hn::Set(d, -kInf)));
    mn0 = hn::Min(mn0, hn::IfThenElse(valid, v, hn::Set(d, kInf)));
    nan = hn::Or(nan, hn::VecFromMask(d, hn::And(valid, hn::IsNaN(v))));
  }
  const bool has_nan = !hn::AllTrue(d, hn::Eq(nan, hn::Zero(d)));
  const T mx = hn::GetLane(hn::MaxOfLanes(d, hn::Max(mx0, mx1)));
  const T mn = hn::GetLane(hn::MinOfLanes(d, hn::Min(mn0, mn1)));
  return RowRange{static_cast<double>(mx), static_cast<double>(mn), has_nan};
}

// w = exp((x - max) / t): the subtraction, division and exp each round once in T.
template <bool kDivide, class D, typename TIn>
void WeightsT(D d, const TIn* HWY_RESTRICT x, int64_t n_, hn::TFromD<D> max, hn::TFromD<D> t,
              hn::TFromD<D>* HWY_RESTRICT w) {
  const size_t N = hn::Lanes(d);
  const size_t n = static_cast<size_t>(n_);
  const auto vmax = hn::Set(d, max);
  const auto vt = hn::Set(d, t);
  const auto zero = hn::Zero(d);
  auto one = [&](hn::Vec<D> v) {
    auto z = hn::Sub(v, vmax);                  // <= 0, or -inf
    if constexpr (kDivide) z = hn::Div(z, vt);  // IEEE division: the same on every target
    return ExpNonPositive(d, z, zero);
  };
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = one(LoadWiden(d, x + i));
    const auto b = one(LoadWiden(d, x + i + N));
    hn::StoreU(a, d, w + i);
    hn::StoreU(b, d, w + i + N);
  }
  for (; i < n; i += N) {
    const size_t count = HWY_MIN(N, n - i);
    const auto r = one(count == N ? LoadWiden(d, x + i) : LoadWidenN(d, x + i, count));
    if (count == N) {
      hn::StoreU(r, d, w + i);
    } else {
      HWY_ALIGN hn::TFromD<D> buf[hn::MaxLanes(d)];
      hn::Store(r, d, buf);
      std::memcpy(w + i, buf, count * sizeof(hn::TFromD<D>));
    }
  }
}

}  // namespace sampling_impl

cpu::RowRange SamplingRowRange(const void* x, DType dtype, int64_t n) {
  namespace si = sampling_impl;
  if (dtype == DType::f64) {
    return si::RangeT(si::hn::ScalableTag<double>(), static_cast<const double*>(x), n);
  }
  return VisitF32Storage(dtype, x,
                         [&](auto* px) { return si::RangeT(si::hn::ScalableTag<float>(), px, n); });
}

void SamplingWeightsF32(const void* x, DType dtype, int64_t n, float max, float t, float* w) {
  namespace si = sampling_impl;
  VisitF32Storage(dtype, x, [&](auto* px) {
    const si::hn::ScalableTag<float> d;
    if (t != 1.0f)
      si::WeightsT<true>(d, px, n, max, t, w);
    else
      si::WeightsT<false>(d, px, n, max, t, w);
    return 0;
  });
}

void SamplingWeightsF64(const double* x, int64_t n, double max, double t, double* w) {
  namespace si = sampling_impl;
  const si::hn::ScalableTag<double> d;
  if (t != 1.0)
    si::WeightsT<true>(d, x, n, max, t, w);
  else
    si::WeightsT<false>(d, x, n, max, t, w);
}

const cpu::SamplingKernelTable* GetSamplingKernelTable() {
  static const cpu::SamplingKernelTable table{hwy::TargetName(HWY_TARGET), &SamplingRowRange,
                                              &SamplingWeightsF32, &SamplingWeightsF64};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"
namespace softmax {
HWY_EXPORT(GetSamplingKernelTable);

namespace cpu {
const SamplingKernelTable& sampling_kernels() {
  return *SOFTMAX_DISPATCH_ACTIVE(GetSamplingKernelTable)();
}
}  // namespace cpu
}  // namespace softmax
#endif  // HWY_ONCE
