// src/cpu/attention_backward_kernels.cc: Highway kernels of the fused attention backward,
// compiled once per SIMD target (foreach_target) and exported as one
// AttentionBackwardKernelTable per target. Contracts: src/cpu/attention_backward_kernels.hpp.
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/attention_backward_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/attention_backward_kernels.hpp"
#include "src/cpu/attention_kernels.hpp"
#include "src/cpu/row_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kL = cpu::kAttnLanes;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

size_t VectorsOf(int64_t nl) {
  const size_t N = hn::Lanes(DF());
  return (static_cast<size_t>(nl) + N - 1) / N;
}

void ProbsImpl(float* st, int64_t nr, int64_t nl, const float* lse, bool per_lane) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t nvec = VectorsOf(nl);
  const VF zero = hn::Zero(d);
  const VF neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int64_t r = 0; r < nr; ++r) {
    float* row = st + r * kL;
    for (size_t v = 0; v < nvec; ++v) {
      const VF l = per_lane ? hn::LoadU(d, lse + v * N) : hn::Set(d, lse[r]);
      // min(x - lse, 0) that keeps NaN (x86 min drops a NaN operand).
      VF a = hn::Sub(hn::LoadU(d, row + v * N), l);
      a = hn::IfThenElse(hn::Gt(a, zero), zero, a);
      // lse = -inf: every entry of the query is masked (x = -inf, so a is NaN): 0.
      const VF p = hn::IfThenZeroElse(hn::Eq(l, neg_inf), ExpNonPositive(d, a, zero));
      hn::StoreU(p, d, row + v * N);
    }
  }
}

void DscoresImpl(const float* pt, float* dpt, int64_t nr, int64_t nl, const float* delta,
                 bool per_lane, float scale) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t nvec = VectorsOf(nl);
  const VF sc = hn::Set(d, scale);
  for (int64_t r = 0; r < nr; ++r) {
    for (size_t v = 0; v < nvec; ++v) {
      const size_t o = static_cast<size_t>(r * kL) + v * N;
      const VF dl = per_lane ? hn::LoadU(d, delta + v * N) : hn::Set(d, delta[r]);
      const VF g = hn::Mul(hn::LoadU(d, pt + o), hn::Sub(hn::LoadU(d, dpt + o), dl));
      hn::StoreU(hn::Mul(g, sc), d, dpt + o);
    }
  }
}

const cpu::AttentionBackwardKernelTable* GetAttentionBackwardKernelTable() {
  static const cpu::AttentionBackwardKernelTable table{hwy::TargetName(HWY_TARGET), &ProbsImpl,
                                                       &DscoresImpl};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"
namespace softmax {
HWY_EXPORT(GetAttentionBackwardKernelTable);
namespace cpu {
const AttentionBackwardKernelTable& attention_backward_kernels() {
  return *SOFTMAX_DISPATCH_ACTIVE(GetAttentionBackwardKernelTable)();
}
}  // namespace cpu
}  // namespace softmax
#endif  // HWY_ONCE
