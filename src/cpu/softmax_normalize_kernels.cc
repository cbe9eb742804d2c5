// src/cpu/softmax_normalize_kernels.cc: the output pass of long rows (scaling stored exps by the
// merged sum, or normalizing from the row statistics), compiled once per SIMD target.
#include <cmath>
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/softmax_normalize_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/kernels.hpp"
#include "src/cpu/softmax_blocks-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

void ScaleBlocksImpl(const void* e, void* y, DType y_dtype, int64_t n, const double* block_max,
                     double max, const cpu::Temperature& t, double sum) {
  if (y_dtype == DType::f64) {
    ScaleBlocksT(hn::ScalableTag<double>(), static_cast<const double*>(e), static_cast<double*>(y),
                 n, block_max, max, t, sum);
    return;
  }
  VisitF32StorageOut(y_dtype, y, [&](auto* py) {
    ScaleBlocksT(hn::ScalableTag<float>(), static_cast<const float*>(e), py, n, block_max, max, t,
                 sum);
  });
}

template <class D, typename TIn, typename TOut>
void NormalizeMode(D d, const TIn* x, TOut* y, int64_t n, double max, const cpu::Temperature& t,
                   double scale, RowMode mode) {
  WithScale<hn::TFromD<D>>(t, [&](auto s) {
    constexpr int kScale = decltype(s)::value;
    if (mode == RowMode::kSoftmax)
      NormalizeT<kScale, RowMode::kSoftmax>(d, x, y, n, max, t, scale);
    else
      NormalizeT<kScale, RowMode::kLogSoftmax>(d, x, y, n, max, t, scale);
  });
}

void NormalizeImpl(const void* x, DType x_dtype, void* y, DType y_dtype, int64_t n, double max,
                   const cpu::Temperature& t, double scale, RowMode mode) {
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

void FillNormalizeKernels(cpu::KernelTable* t) {
  t->scale_blocks = &ScaleBlocksImpl;
  t->normalize = &NormalizeImpl;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"

namespace softmax {
HWY_EXPORT(FillNormalizeKernels);

namespace cpu::detail {
void fill_normalize_kernels(int64_t target, KernelTable* table) {
  SOFTMAX_DISPATCH(FillNormalizeKernels, target)(table);
}
}  // namespace cpu::detail
}  // namespace softmax
#endif  // HWY_ONCE
