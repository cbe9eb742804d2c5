// src/cpu/attention_kernels.cc: Highway kernels of fused attention (FlashAttention-2 style tiles
// with the online softmax), compiled once per SIMD target (foreach_target) and exported as one
// AttentionKernelTable per target. Layout and determinism: src/cpu/attention_kernels.hpp.
//
// Shapes (every kernel): qt (D, kAttnLanes), st / pt (kAttnKeyTile, kAttnLanes),
// ot (Dv, kAttnLanes), all f32 with row stride kAttnLanes; k (nk, D) and v (nk, Dv) f32 rows
// with caller-given row strides; m, l, alpha, bad: (kAttnLanes).
// Register blocking: 4 keys (or 4 output columns) x up to 4 query vectors = 16 accumulators
// (8 x 1 when there is one query vector, e.g. decode).
#include <cstdint>
#include <cstring>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/attention_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/attention_kernels.hpp"
#include "src/cpu/row_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kL = cpu::kAttnLanes;
constexpr int kBlock = 4;  // keys / columns per register block (8 with one query vector)
// Query vectors per register block: 4 x 4 accumulators fit AVX-512's 32 registers; targets with
// 16 registers (AVX2, SSE4) take 4 x 2. Block shapes never change a lane's order of operations.
constexpr size_t kMaxNV = hn::MaxLanes(hn::ScalableTag<float>()) >= 16 ? 4 : 2;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// st rows [0, NK) of lanes [q0, q0 + NV * N): a 4 x 4 register block at most.
template <int NK, int NV>
HWY_INLINE void ScoresBlock(const float* HWY_RESTRICT qt, int64_t dd, size_t q0,
                            const float* HWY_RESTRICT k, int64_t ldk, float scale,
                            float* HWY_RESTRICT st) {
  const DF d;
  const size_t N = hn::Lanes(d);
  VF acc[NK][NV];
  for (int a = 0; a < NK; ++a)
    for (int b = 0; b < NV; ++b) acc[a][b] = hn::Zero(d);
  for (int64_t x = 0; x < dd; ++x) {
    VF qv[NV];
    for (int b = 0; b < NV; ++b) qv[b] = hn::LoadU(d, qt + x * kL + q0 + b * N);
    for (int a = 0; a < NK; ++a) {
      const VF kv = hn::Set(d, k[a * ldk + x]);
      for (int b = 0; b < NV; ++b) acc[a][b] = hn::Add(acc[a][b], hn::Mul(kv, qv[b]));
    }
  }
  const VF sc = hn::Set(d, scale);
  for (int a = 0; a < NK; ++a)
    for (int b = 0; b < NV; ++b) hn::StoreU(hn::Mul(acc[a][b], sc), d, st + a * kL + q0 + b * N);
}

template <int NK>
HWY_INLINE void ScoresNK(int nv, const float* qt, int64_t dd, size_t q0, const float* k,
                         int64_t ldk, float scale, float* st) {
  switch (nv) {
    case 1: ScoresBlock<NK, 1>(qt, dd, q0, k, ldk, scale, st); break;
    case 2: ScoresBlock<NK, 2>(qt, dd, q0, k, ldk, scale, st); break;
    case 3: ScoresBlock<NK, 3>(qt, dd, q0, k, ldk, scale, st); break;
    default: ScoresBlock<NK, 4>(qt, dd, q0, k, ldk, scale, st); break;
  }
}

size_t VectorsFor(int64_t nq) {
  const size_t N = hn::Lanes(DF());
  return (static_cast<size_t>(nq) + N - 1) / N;
}

// One query (lane 0 only, e.g. decode): keys become the lanes, k gathered column by column,
// st[j][0] = scale * sum_d k[j][d] * q[d] in order of d: lane for lane the operations of
// ScoresBlock (products commute exactly), so the bits equal those of the general path.
template <int G>
HWY_INLINE void ScoresOneQueryGroups(const float* HWY_RESTRICT qt, int64_t dd,
                                     const float* HWY_RESTRICT k, int64_t ldk, int64_t j0,
                                     int64_t nk, float scale, float* HWY_RESTRICT st) {
  const DF d;
  const hn::RebindToSigned<DF> di;
  const size_t N = hn::Lanes(d);
  const auto idx = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<int32_t>(ldk)));
  hn::Vec<decltype(di)> ix[G];
  size_t count[G];
  for (int g = 0; g < G; ++g) {
    const int64_t left = nk - j0 - g * static_cast<int64_t>(N);
    count[g] = static_cast<size_t>(HWY_MIN(static_cast<int64_t>(N), left));
    // Lanes past count re-read the group's first row (valid memory) and are discarded.
    ix[g] = count[g] == N ? idx : hn::IfThenElseZero(hn::FirstN(di, count[g]), idx);
  }
  VF acc[G];
  for (int g = 0; g < G; ++g) acc[g] = hn::Zero(d);
  for (int64_t x = 0; x < dd; ++x) {
    const VF qv = hn::Set(d, qt[x * kL]);
    for (int g = 0; g < G; ++g) {
      const float* base = k + (j0 + g * static_cast<int64_t>(N)) * ldk + x;
      acc[g] = hn::Add(acc[g], hn::Mul(hn::GatherIndex(d, base, ix[g]), qv));
    }
  }
  HWY_ALIGN float lanes[hn::MaxLanes(d)];
  for (int g = 0; g < G; ++g) {
    hn::Store(hn::Mul(acc[g], hn::Set(d, scale)), d, lanes);
    for (size_t u = 0; u < count[g]; ++u)
      st[(j0 + g * static_cast<int64_t>(N) + static_cast<int64_t>(u)) * kL] = lanes[u];
  }
}

// One query (lane 0 only, e.g. decode): keys become the lanes, k gathered column by column,
// st[j][0] = scale * sum_d k[j][d] * q[d] in order of d: lane for lane the operations of
// ScoresBlock (products commute exactly), so the bits equal those of the general path.
// Four groups of keys run as independent add chains.
void ScoresOneQuery(const float* qt, int64_t dd, const float* k, int64_t ldk, int64_t nk,
                    float scale, float* st) {
  const auto N = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t j0 = 0;
  for (; j0 + 4 * N <= nk; j0 += 4 * N) ScoresOneQueryGroups<4>(qt, dd, k, ldk, j0, nk, scale, st);
  const int64_t groups = (nk - j0 + N - 1) / N;
  switch (groups) {
    case 1: ScoresOneQueryGroups<1>(qt, dd, k, ldk, j0, nk, scale, st); break;
    case 2: ScoresOneQueryGroups<2>(qt, dd, k, ldk, j0, nk, scale, st); break;
    case 3: ScoresOneQueryGroups<3>(qt, dd, k, ldk, j0, nk, scale, st); break;
    case 4: ScoresOneQueryGroups<4>(qt, dd, k, ldk, j0, nk, scale, st); break;  // last partial
    default: break;
  }
}

void ScoresImpl(const float* qt, int64_t dd, int64_t nq, const float* k, int64_t ldk, int64_t nk,
                float scale, float* st) {
  const size_t N = hn::Lanes(DF());
  constexpr int64_t kMaxIndex = int64_t{1} << 30;
  if (nq == 1 && ldk > -kMaxIndex / kL && ldk < kMaxIndex / kL) {
    ScoresOneQuery(qt, dd, k, ldk, nk, scale, st);
    return;
  }
  const size_t nvec = VectorsFor(nq);
  for (size_t v0 = 0; v0 < nvec; v0 += kMaxNV) {
    const int nv = static_cast<int>(HWY_MIN(static_cast<size_t>(kMaxNV), nvec - v0));
    const size_t q0 = v0 * N;
    int64_t j = 0;
    if (nv == 1) {  // one query vector (decode): 8 keys a block for 8 independent add chains
      for (; j + 2 * kBlock <= nk; j += 2 * kBlock) {
        ScoresBlock<2 * kBlock, 1>(qt, dd, q0, k + j * ldk, ldk, scale, st + j * kL);
      }
    }
    for (; j + kBlock <= nk; j += kBlock) {
      ScoresNK<4>(nv, qt, dd, q0, k + j * ldk, ldk, scale, st + j * kL);
    }
    switch (nk - j) {
      case 1: ScoresNK<1>(nv, qt, dd, q0, k + j * ldk, ldk, scale, st + j * kL); break;
      case 2: ScoresNK<2>(nv, qt, dd, q0, k + j * ldk, ldk, scale, st + j * kL); break;
      case 3: ScoresNK<3>(nv, qt, dd, q0, k + j * ldk, ldk, scale, st + j * kL); break;
      default: break;
    }
  }
}

void OnlineImpl(float* st, int64_t nk, int64_t nq, float* m, float* l, float* alpha, float* bad) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t nvec = VectorsFor(nq);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const VF neg_inf = hn::Set(d, -kInf), pos_inf = hn::Set(d, kInf);
  const VF zero = hn::Zero(d), one = hn::Set(d, 1.0f);
  for (size_t v = 0; v < nvec; ++v) {
    const size_t q0 = v * N;
    const VF mv = hn::LoadU(d, m + q0);
    VF badv = hn::LoadU(d, bad + q0);
    VF tm = neg_inf;
    for (int64_t j = 0; j < nk; ++j) {
      VF s = hn::LoadU(d, st + j * kL + q0);
      // NaN / +inf: flag the lane, then count the entry as -inf so Max stays IEEE-clean (x86
      // max with a NaN operand depends on operand order).
      const auto is_bad = hn::Or(hn::IsNaN(s), hn::Eq(s, pos_inf));
      badv = hn::IfThenElse(is_bad, one, badv);
      s = hn::IfThenElse(is_bad, neg_inf, s);
      hn::StoreU(s, d, st + j * kL + q0);
      tm = hn::Max(tm, s);
    }
    const VF mnew = hn::Max(mv, tm);
    const auto none = hn::Eq(mnew, neg_inf);  // nothing kept so far: keep the state as is
    VF a = ExpNonPositive(d, hn::Sub(mv, mnew), zero);
    a = hn::IfThenElse(hn::Eq(mv, neg_inf), zero, a);
    a = hn::IfThenElse(none, one, a);
    VF rs = zero;
    for (int64_t j = 0; j < nk; ++j) {
      const VF s = hn::LoadU(d, st + j * kL + q0);
      const VF p = hn::IfThenZeroElse(none, ExpNonPositive(d, hn::Sub(s, mnew), zero));
      hn::StoreU(p, d, st + j * kL + q0);
      rs = hn::Add(rs, p);
    }
    hn::StoreU(hn::Add(hn::Mul(hn::LoadU(d, l + q0), a), rs), d, l + q0);
    hn::StoreU(mnew, d, m + q0);
    hn::StoreU(a, d, alpha + q0);
    hn::StoreU(badv, d, bad + q0);
  }
}

template <int NC, int NV>
HWY_INLINE void PvBlock(const float* HWY_RESTRICT pt, int64_t nk, size_t q0,
                        const float* HWY_RESTRICT v, int64_t ldv, const float* HWY_RESTRICT alpha,
                        float* HWY_RESTRICT ot) {
  const DF d;
  const size_t N = hn::Lanes(d);
  VF acc[NC][NV];
  for (int b = 0; b < NV; ++b) {
    const VF a = hn::LoadU(d, alpha + q0 + b * N);
    for (int c = 0; c < NC; ++c) acc[c][b] = hn::Mul(hn::LoadU(d, ot + c * kL + q0 + b * N), a);
  }
  for (int64_t j = 0; j < nk; ++j) {
    VF p[NV];
    for (int b = 0; b < NV; ++b) p[b] = hn::LoadU(d, pt + j * kL + q0 + b * N);
    for (int c = 0; c < NC; ++c) {
      const VF vv = hn::Set(d, v[j * ldv + c]);
      for (int b = 0; b < NV; ++b) acc[c][b] = hn::Add(acc[c][b], hn::Mul(vv, p[b]));
    }
  }
  for (int c = 0; c < NC; ++c)
    for (int b = 0; b < NV; ++b) hn::StoreU(acc[c][b], d, ot + c * kL + q0 + b * N);
}

template <int NC>
HWY_INLINE void PvNC(int nv, const float* pt, int64_t nk, size_t q0, const float* v, int64_t ldv,
                     const float* alpha, float* ot) {
  switch (nv) {
    case 1: PvBlock<NC, 1>(pt, nk, q0, v, ldv, alpha, ot); break;
    case 2: PvBlock<NC, 2>(pt, nk, q0, v, ldv, alpha, ot); break;
    case 3: PvBlock<NC, 3>(pt, nk, q0, v, ldv, alpha, ot); break;
    default: PvBlock<NC, 4>(pt, nk, q0, v, ldv, alpha, ot); break;
  }
}

// One query (lane 0 only, e.g. decode): the output row is kept contiguous so the value rows are
// read as whole vectors, o[c] = o[c] * alpha + sum_j pt[j][0] * v[j][c] in order of j: lane for
// lane the operations of PvBlock, so the bits equal those of the general path.
void PvOneQuery(const float* pt, int64_t nk, const float* v, int64_t ldv, int64_t dv, float alpha0,
                float* ot) {
  const DF d;
  const size_t N = hn::Lanes(d);
  constexpr size_t kMaxCols = 512;  // Dv above this takes the general path
  HWY_ALIGN float o[kMaxCols];
  for (int64_t c = 0; c < dv; ++c) o[c] = ot[c * kL] * alpha0;
  const size_t full = static_cast<size_t>(dv) / N * N;
  for (int64_t j = 0; j < nk; ++j) {
    const float p = pt[j * kL];
    const VF pv = hn::Set(d, p);
    const float* row = v + j * ldv;
    size_t c = 0;
    for (; c + 4 * N <= full; c += 4 * N) {
      for (size_t u = 0; u < 4; ++u) {
        hn::Store(hn::Add(hn::Load(d, o + c + u * N), hn::Mul(hn::LoadU(d, row + c + u * N), pv)),
                  d, o + c + u * N);
      }
    }
    for (; c < full; c += N) {
      hn::Store(hn::Add(hn::Load(d, o + c), hn::Mul(hn::LoadU(d, row + c), pv)), d, o + c);
    }
    for (; c < static_cast<size_t>(dv); ++c) o[c] = o[c] + row[c] * p;
  }
  for (int64_t c = 0; c < dv; ++c) ot[c * kL] = o[c];
}

void PvImpl(const float* pt, int64_t nk, int64_t nq, const float* v, int64_t ldv, int64_t dv,
            const float* alpha, float* ot) {
  if (nq == 1 && dv <= 512) {
    PvOneQuery(pt, nk, v, ldv, dv, alpha[0], ot);
    return;
  }
  const size_t N = hn::Lanes(DF());
  const size_t nvec = VectorsFor(nq);
  for (size_t v0 = 0; v0 < nvec; v0 += kMaxNV) {
    const int nv = static_cast<int>(HWY_MIN(static_cast<size_t>(kMaxNV), nvec - v0));
    const size_t q0 = v0 * N;
    int64_t c = 0;
    if (nv == 1) {  // one query vector (decode): 8 columns a block
      for (; c + 2 * kBlock <= dv; c += 2 * kBlock) {
        PvBlock<2 * kBlock, 1>(pt, nk, q0, v + c, ldv, alpha, ot + c * kL);
      }
    }
    for (; c + kBlock <= dv; c += kBlock) PvNC<4>(nv, pt, nk, q0, v + c, ldv, alpha, ot + c * kL);
    switch (dv - c) {
      case 1: PvNC<1>(nv, pt, nk, q0, v + c, ldv, alpha, ot + c * kL); break;
      case 2: PvNC<2>(nv, pt, nk, q0, v + c, ldv, alpha, ot + c * kL); break;
      case 3: PvNC<3>(nv, pt, nk, q0, v + c, ldv, alpha, ot + c * kL); break;
      default: break;
    }
  }
}

template <typename TIn>
void WidenT(const TIn* src, int64_t n, float* dst) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t len = static_cast<size_t>(n);
  size_t i = 0;
  for (; i + N <= len; i += N) hn::StoreU(LoadWiden(d, src + i), d, dst + i);
  if (i < len) StoreNarrowN(d, LoadWidenN(d, src + i, len - i), dst + i, len - i);
}

void WidenImpl(const void* src, DType dtype, int64_t n, float* dst) {
  switch (dtype) {
    case DType::bf16: WidenT(static_cast<const hwy::bfloat16_t*>(src), n, dst); break;
    case DType::f16: WidenT(static_cast<const hwy::float16_t*>(src), n, dst); break;
    default: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); break;
  }
}

float ExpNonPosImpl(float a) {
  const hn::CappedTag<float, 1> d1;
  return hn::GetLane(ExpNonPositive(d1, hn::Set(d1, a), hn::Zero(d1)));
}

const cpu::AttentionKernelTable* GetAttentionKernelTable() {
  static const cpu::AttentionKernelTable table{
      hwy::TargetName(HWY_TARGET), &ScoresImpl, &OnlineImpl, &PvImpl, &WidenImpl, &ExpNonPosImpl};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"
namespace softmax {
HWY_EXPORT(GetAttentionKernelTable);
namespace cpu {
const AttentionKernelTable& attention_kernels() {
  return *SOFTMAX_DISPATCH_ACTIVE(GetAttentionKernelTable)();
}
}  // namespace cpu
}  // namespace softmax
#endif  // HWY_ONCE
