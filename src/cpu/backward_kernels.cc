// src/cpu/backward_kernels.cc: Highway kernels of softmax_backward / log_softmax_backward,
// compiled once per SIMD target (foreach_target) and exported as one BackwardKernels table.
//
// Shapes (every kernel): y, dy, dx: (n) contiguous; the caller gathers strided rows.
// Consistent arithmetic: IEEE add/sub/mul, and exact FMA only through Fma() (row_ops-inl.h; no
// compiler contraction: -ffp-contract=off), sums in fixed logical lanes (FoldLanes), so every
// target computes the same bits.
#include <cstdint>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/backward_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/row_ops-inl.h"
#include "src/cpu/training_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using cpu::BackwardMode;
using cpu::kTrainBlock;

// sum over [0, len) of dy_i * y_i (kSoftmax) or dy_i, in LogicalLanes target-independent lanes.
// f64: compensated (each product's rounding error by FMA, each addition's by TwoSum, and the
// lane fold by FoldLanesCompensated), so the sum is exact to about 2^-106 relative to
// sum |dy_i y_i| and the softmax_backward bound does not grow by the plain sum's error.
// f32: plain f32 lanes (the f32 bound allows for them).
template <class D, typename TIn>
HWY_INLINE double BlockSum(D d, const TIn* y, const TIn* dy, size_t len, BackwardMode mode) {
  using T = hn::TFromD<D>;
  constexpr bool kComp = hwy::IsSame<T, double>();
  const size_t N = hn::Lanes(d);
  constexpr size_t K = LogicalLanes<T>() / hn::MaxLanes(d);
  static_assert(K >= 1, "logical lanes must cover a vector");
  hn::Vec<D> acc[K], comp[K];
  for (size_t k = 0; k < K; ++k) acc[k] = comp[k] = hn::Zero(d);
  const bool prod = mode == BackwardMode::kSoftmax;
  auto add = [&](size_t k, hn::Vec<D> g, hn::Vec<D> yv) {
    const auto p = prod ? hn::Mul(g, yv) : g;
    if constexpr (kComp) {
      hn::Vec<D> lo;
      acc[k] = TwoSum(acc[k], p, lo);
      comp[k] = hn::Add(comp[k], prod ? hn::Add(lo, Fma(d, g, yv, hn::Neg(p))) : lo);
    } else {
      acc[k] = hn::Add(acc[k], p);
    }
  };
  size_t i = 0;
  for (; i + K * N <= len; i += K * N) {
    for (size_t k = 0; k < K; ++k) {
      add(k, LoadWiden(d, dy + i + k * N), prod ? LoadWiden(d, y + i + k * N) : hn::Zero(d));
    }
  }
  for (size_t k = 0; k < K && i + k * N < len; ++k) {
    const size_t count = HWY_MIN(N, len - i - k * N);
    // zero-filled past count
    add(k, LoadWidenN(d, dy + i + k * N, count),
        prod ? LoadWidenN(d, y + i + k * N, count) : hn::Zero(d));
  }
  if constexpr (kComp)
    return FoldLanesCompensated(d, acc, comp);
  else
    return static_cast<double>(FoldLanes(d, acc));
}

template <class D, typename TIn>
double RowSumT(D d, const TIn* y, const TIn* dy, int64_t n, BackwardMode mode) {
  double s = 0.0, c = 0.0;  // c: the rounding errors of the block additions (TwoSum)
  for (int64_t b = 0; b < n; b += kTrainBlock) {
    const auto len = static_cast<size_t>(HWY_MIN(kTrainBlock, n - b));
    const double v = BlockSum(d, y + b, dy + b, len, mode);
    const double hi = s + v;
    const double bb = hi - s;
    c += (s - (hi - bb)) + (v - bb);
    s = hi;
  }
  return s + c;
}

template <class D, typename TIn, typename TOut>
void ApplyT(D d, const TIn* y, const TIn* dy, TOut* dx, int64_t n, double s_d, double inv_t_d,
            BackwardMode mode) {
  // No HWY_RESTRICT: dx may be exactly y or dy; each vector is loaded before it is stored.
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const auto s = hn::Set(d, static_cast<T>(s_d));
  const auto inv_t = hn::Set(d, static_cast<T>(inv_t_d));
  const bool scaled = static_cast<T>(inv_t_d) != T(1);
  auto one = [&](hn::Vec<D> yv, hn::Vec<D> g) {
    hn::Vec<D> r;
    if (mode == BackwardMode::kSoftmax) {
      r = hn::Mul(yv, hn::Sub(g, s));
    } else {
      const auto e = ExpNonPositive(d, hn::Min(yv, hn::Zero(d)), hn::Zero(d));
      r = hn::Sub(g, hn::Mul(e, s));
    }
    return scaled ? hn::Mul(r, inv_t) : r;
  };
  const auto len = static_cast<size_t>(n);
  size_t i = 0;
  for (; i + N <= len; i += N) {
    StoreNarrow(d, one(LoadWiden(d, y + i), LoadWiden(d, dy + i)), dx + i);
  }
  if (i < len) {
    const size_t c = len - i;
    StoreNarrowN(d, one(LoadWidenN(d, y + i, c), LoadWidenN(d, dy + i, c)), dx + i, c);
  }
}

double RowSumImpl(const void* y, const void* dy, DType t, int64_t n, BackwardMode mode) {
  if (t == DType::f64) {
    return RowSumT(hn::ScalableTag<double>(), static_cast<const double*>(y),
                   static_cast<const double*>(dy), n, mode);
  }
  return VisitF32Storage(t, y, [&](auto* py) {
    using P = decltype(py);
    return RowSumT(hn::ScalableTag<float>(), py, static_cast<P>(dy), n, mode);
  });
}

void ApplyImpl(const void* y, const void* dy, DType t, void* dx, DType dxt, int64_t n, double s,
               double inv_t, BackwardMode mode) {
  if (t == DType::f64) {
    ApplyT(hn::ScalableTag<double>(), static_cast<const double*>(y), static_cast<const double*>(dy),
           static_cast<double*>(dx), n, s, inv_t, mode);
    return;
  }
  VisitF32Storage(t, y, [&](auto* py) {
    using P = decltype(py);
    VisitF32StorageOut(dxt, dx, [&](auto* pdx) {
      ApplyT(hn::ScalableTag<float>(), py, static_cast<P>(dy), pdx, n, s, inv_t, mode);
    });
    return 0;
  });
}

const cpu::BackwardKernels* GetBackwardKernels() {
  static const cpu::BackwardKernels table{&RowSumImpl, &ApplyImpl};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"
namespace softmax {
HWY_EXPORT(GetBackwardKernels);
namespace cpu {
const BackwardKernels& backward_kernels() { return *SOFTMAX_DISPATCH_ACTIVE(GetBackwardKernels)(); }
}  // namespace cpu
}  // namespace softmax
#endif  // HWY_ONCE
