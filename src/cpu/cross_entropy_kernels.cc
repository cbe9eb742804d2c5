// src/cpu/cross_entropy_kernels.cc: Highway kernels of the fused cross-entropy (forward
// statistics, shifted dot products for label smoothing / soft targets, and the single pass
// that writes the logit gradient or the log-probs), compiled once per SIMD target.
//
// Shapes (every kernel): x: (n) contiguous row of C = n classes; outputs (n) contiguous.
// Consistent arithmetic (no FMA, fixed lane folding): identical bits on every target.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/cross_entropy_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/row_ops-inl.h"
#include "src/cpu/training_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using cpu::CeWrite;
using cpu::kTrainBlock;
using cpu::RowMaxSum;
using cpu::RowOut;

// Max (NaN lanes flagged) over x[0, len).
template <class D, typename TIn>
HWY_INLINE hn::TFromD<D> BlockMaxCe(D d, const TIn* x, size_t len, bool& has_nan) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  const auto neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  auto m0 = neg_inf, m1 = neg_inf;
  auto nan = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= len; i += 2 * N) {
    const auto v0 = LoadWiden(d, x + i);
    const auto v1 = LoadWiden(d, x + i + N);
    m0 = hn::Max(m0, v0);
    m1 = hn::Max(m1, v1);
    nan = hn::Or(nan, hn::Or(hn::VecFromMask(d, hn::IsNaN(v0)), hn::VecFromMask(d, hn::IsNaN(v1))));
  }
  for (; i < len; i += N) {
    const size_t count = HWY_MIN(N, len - i);
    auto v = count == N ? LoadWiden(d, x + i) : LoadWidenN(d, x + i, count);
    v = hn::IfThenElse(hn::FirstN(d, count), v, neg_inf);
    m0 = hn::Max(m0, v);
    nan = hn::Or(nan, hn::VecFromMask(d, hn::IsNaN(v)));
  }
  has_nan = !hn::AllTrue(d, hn::Eq(nan, hn::Zero(d)));
  return hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
}

// sum over x[0, len) of exp(x - m) (x - m carried exactly by TwoSum), fixed logical lanes.
template <class D, typename TIn>
HWY_INLINE hn::TFromD<D> BlockExpSumCe(D d, const TIn* x, size_t len, hn::TFromD<D> m) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  constexpr size_t K = LogicalLanes<T>() / hn::MaxLanes(d);
  const auto neg_m = hn::Set(d, -m);
  const auto neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  hn::Vec<D> acc[K];
  for (size_t k = 0; k < K; ++k) acc[k] = hn::Zero(d);
  auto term = [&](hn::Vec<D> v) {
    hn::Vec<D> lo;
    const auto a = TwoSum(v, neg_m, lo);
    lo = hn::IfThenZeroElse(hn::Eq(a, neg_inf), lo);
    return ExpNonPositive(d, a, lo);
  };
  size_t i = 0;
  for (; i + K * N <= len; i += K * N) {
    for (size_t k = 0; k < K; ++k) acc[k] = hn::Add(acc[k], term(LoadWiden(d, x + i + k * N)));
  }
  for (size_t k = 0; k < K && i + k * N < len; ++k) {
    const size_t count = HWY_MIN(N, len - i - k * N);
    acc[k] = hn::Add(acc[k], hn::IfThenElseZero(hn::FirstN(d, count),
                                                term(LoadWidenN(d, x + i + k * N, count))));
  }
  return FoldLanes(d, acc);
}

double ExpF64(double a) {
  const hn::CappedTag<double, 1> d1;
  return hn::GetLane(ExpNonPositive(d1, hn::Set(d1, a), hn::Zero(d1)));
}

// Online (max, sum) over blocks (Milakov & Gimelshein 2018): a block is read twice while in L1.
template <class D, typename TIn>
RowMaxSum RowStatsT(D d, const TIn* x, int64_t n) {
  using T = hn::TFromD<D>;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  T m = -kInf;
  double s = 0.0;
  bool any_nan = false;
  for (int64_t b = 0; b < n; b += kTrainBlock) {
    const auto len = static_cast<size_t>(HWY_MIN(kTrainBlock, n - b));
    bool has_nan = false;
    const T bm = BlockMaxCe(d, x + b, len, has_nan);
    if (has_nan) any_nan = true;
    if (any_nan) continue;
    if (bm > m) {
      if (s != 0.0) s *= ExpF64(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    if (!(m > -kInf && m < kInf)) continue;
    s += static_cast<double>(BlockExpSumCe(d, x + b, len, m));
  }
  return RowMaxSum{static_cast<double>(m), s, any_nan};
}

// sum_i v_i * (x_i - shift), f32 (or f64) products in fixed lanes per block, f64 over blocks.
// A term with v_i == 0 is 0 even when x_i = -inf (0 * log 0 = 0: a class without target mass
// or weight contributes nothing); v_i > 0 with x_i = -inf gives -inf (the loss is +inf).
template <class D, typename TIn>
double ShiftedDotT(D d, const TIn* x, const hn::TFromD<D>* v, int64_t n, double shift_d) {
  using T = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  constexpr size_t K = LogicalLanes<T>() / hn::MaxLanes(d);
  const auto neg_shift = hn::Set(d, static_cast<T>(-shift_d));
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kTrainBlock) {
    const auto len = static_cast<size_t>(HWY_MIN(kTrainBlock, n - b));
    const TIn* xb = x + b;
    const T* vb = v ? v + b : nullptr;
    hn::Vec<D> acc[K];
    for (size_t k = 0; k < K; ++k) acc[k] = hn::Zero(d);
    size_t i = 0;
    for (; i + K * N <= len; i += K * N) {
      for (size_t k = 0; k < K; ++k) {
        auto t = hn::Add(LoadWiden(d, xb + i + k * N), neg_shift);
        if (vb) {
          const auto vv = hn::LoadU(d, vb + i + k * N);
          t = hn::IfThenZeroElse(hn::Eq(vv, hn::Zero(d)), hn::Mul(t, vv));
        }
        acc[k] = hn::Add(acc[k], t);
      }
    }
    for (size_t k = 0; k < K && i + k * N < len; ++k) {
      const size_t count = HWY_MIN(N, len - i - k * N);
      auto t = hn::Add(LoadWidenN(d, xb + i + k * N, count), neg_shift);
      if (vb) {
        const auto vv = LoadWidenN(d, vb + i + k * N, count);
        t = hn::IfThenZeroElse(hn::Eq(vv, hn::Zero(d)), hn::Mul(t, vv));
      }
      acc[k] = hn::Add(acc[k], hn::IfThenElseZero(hn::FirstN(d, count), t));
    }
    double block = static_cast<double>(FoldLanes(d, acc));
    if constexpr (!hwy::IsSame<T, double>()) {
      // f32 lanes overflowed (huge log-probs, or x - shift beyond the f32 range) or met -inf /
      // NaN: the block again in f64, one element at a time, so a sum beyond FLT_MAX stays finite
      // (-inf and NaN inputs give -inf and NaN as before).
      if (!std::isfinite(block)) {
        block = 0.0;
        for (size_t j = 0; j < len; ++j) {
          double t = static_cast<double>(hn::GetLane(LoadWidenN(d, xb + j, 1))) - shift_d;
          if (vb) t = vb[j] == T(0) ? 0.0 : t * static_cast<double>(vb[j]);
          block += t;
        }
      }
    }
    total += block;
  }
  return total;
}

template <class D, typename TIn, typename TOut>
void WriteT(D d, const TIn* x, TOut* out, int64_t n, const CeWrite& p, RowOut what) {
  // No HWY_RESTRICT: out may be exactly x; every vector is loaded before it is stored.
  using T = hn::TFromD<D>;
  using TI = hwy::MakeSigned<T>;
  const hn::RebindToSigned<D> di;
  const size_t N = hn::Lanes(d);
  const auto neg_m = hn::Set(d, static_cast<T>(-p.max));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  const auto inv_sum = hn::Set(d, static_cast<T>(p.inv_sum));
  const auto log_sum = hn::Set(d, static_cast<T>(p.log_sum));
  const auto alpha = hn::Set(d, static_cast<T>(p.alpha));
  const bool alpha_inf = std::isinf(static_cast<T>(p.alpha));
  const auto alpha_zero = hn::Set(d, std::copysign(T(0), static_cast<T>(p.alpha)));
  const auto beta = hn::Set(d, static_cast<T>(p.beta));
  const auto gamma = hn::Set(d, static_cast<T>(p.gamma));
  const auto target = hn::Set(di, static_cast<TI>(p.target));
  const T* v = static_cast<const T*>(p.v);
  auto one = [&](hn::Vec<D> xv, size_t i, size_t count) {
    hn::Vec<D> lo;
    const auto a = TwoSum(xv, neg_m, lo);
    lo = hn::IfThenZeroElse(hn::Eq(a, neg_inf), lo);
    if (what == RowOut::kLogProb) return hn::Add(hn::Sub(a, log_sum), lo);
    hn::Vec<D> g = hn::Zero(d);
    if (p.with_p) {
      const auto prob = hn::Mul(ExpNonPositive(d, a, lo), inv_sum);
      g = hn::Mul(alpha, prob);
      // alpha beyond T's range (z-loss with a huge logsumexp): a zero probability still gives
      // the exact 0 (of alpha's sign), not inf * 0 = NaN.
      if (alpha_inf) g = hn::IfThenElse(hn::Eq(prob, hn::Zero(d)), alpha_zero, g);
    }
    if (v) {
      const auto vv = count == N ? hn::LoadU(d, v + i) : LoadWidenN(d, v + i, count);
      g = hn::Sub(g, hn::Mul(beta, vv));
    } else {
      g = hn::Sub(g, beta);
    }
    const auto idx = hn::Iota(di, static_cast<TI>(i));
    return hn::Sub(g, hn::IfThenElseZero(hn::RebindMask(d, hn::Eq(idx, target)), gamma));
  };
  const auto len = static_cast<size_t>(n);
  size_t i = 0;
  for (; i + N <= len; i += N) StoreNarrow(d, one(LoadWiden(d, x + i), i, N), out + i);
  if (i < len) {
    const size_t c = len - i;
    StoreNarrowN(d, one(LoadWidenN(d, x + i, c), i, c), out + i, c);
  }
}

RowMaxSum RowStatsImpl(const void* x, DType t, int64_t n) {
  if (t == DType::f64)
    return RowStatsT(hn::ScalableTag<double>(), static_cast<const double*>(x), n);
  return VisitF32Storage(t, x,
                         [&](auto* px) { return RowStatsT(hn::ScalableTag<float>(), px, n); });
}

double ShiftedDotImpl(const void* x, DType t, const void* v, int64_t n, double shift) {
  if (t == DType::f64) {
    return ShiftedDotT(hn::ScalableTag<double>(), static_cast<const double*>(x),
                       static_cast<const double*>(v), n, shift);
  }
  return VisitF32Storage(t, x, [&](auto* px) {
    return ShiftedDotT(hn::ScalableTag<float>(), px, static_cast<const float*>(v), n, shift);
  });
}

void WriteImpl(const void* x, DType t, void* out, DType ot, int64_t n, const CeWrite& p,
               RowOut what) {
  if (t == DType::f64) {
    WriteT(hn::ScalableTag<double>(), static_cast<const double*>(x), static_cast<double*>(out), n,
           p, what);
    return;
  }
  VisitF32Storage(t, x, [&](auto* px) {
    VisitF32StorageOut(ot, out,
                       [&](auto* po) { WriteT(hn::ScalableTag<float>(), px, po, n, p, what); });
    return 0;
  });
}

const cpu::CrossEntropyKernels* GetCrossEntropyKernels() {
  static const cpu::CrossEntropyKernels table{&RowStatsImpl, &ShiftedDotImpl, &WriteImpl};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"
namespace softmax {
HWY_EXPORT(GetCrossEntropyKernels);
namespace cpu {
const CrossEntropyKernels& cross_entropy_kernels() {
  return *SOFTMAX_DISPATCH_ACTIVE(GetCrossEntropyKernels)();
}
}  // namespace cpu
}  // namespace softmax
#endif  // HWY_ONCE
