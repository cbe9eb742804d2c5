// src/cpu/argmax_sigmoid_kernels.cc: the softmax family's neighbours on contiguous runs: argmax
// (first maximum, first NaN) and the elementwise sigmoid, compiled once per SIMD target.
#include <cmath>
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/argmax_sigmoid_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/kernels.hpp"
#include "src/cpu/softmax_blocks-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

void SigmoidImpl(const void* x, DType x_dtype, void* y, DType y_dtype, int64_t n) {
  if (x_dtype == DType::f64) {
    SigmoidT(hn::ScalableTag<double>(), static_cast<const double*>(x), static_cast<double*>(y), n);
    return;
  }
  VisitF32Storage(x_dtype, x, [&](auto* px) {
    VisitF32StorageOut(y_dtype, y,
                       [&](auto* py) { SigmoidT(hn::ScalableTag<float>(), px, py, n); });
    return 0;
  });
}

ArgmaxResult ArgmaxImpl(const void* x, DType dtype, int64_t n) {
  if (dtype == DType::f64)
    return ArgmaxT(hn::ScalableTag<double>(), static_cast<const double*>(x), n);
  return VisitF32Storage(dtype, x,
                         [&](auto* px) { return ArgmaxT(hn::ScalableTag<float>(), px, n); });
}

void FillArgmaxSigmoidKernels(cpu::KernelTable* t) {
  t->sigmoid = &SigmoidImpl;
  t->argmax = &ArgmaxImpl;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"

namespace softmax {
HWY_EXPORT(FillArgmaxSigmoidKernels);

namespace cpu::detail {
void fill_argmax_sigmoid_kernels(int64_t target, KernelTable* table) {
  SOFTMAX_DISPATCH(FillArgmaxSigmoidKernels, target)(table);
}
}  // namespace cpu::detail
}  // namespace softmax
#endif  // HWY_ONCE
