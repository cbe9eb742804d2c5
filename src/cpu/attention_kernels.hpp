// src/cpu/attention_kernels.hpp: the per-target CPU kernels of fused attention (no SIMD types).
//
// Layout ("transposed tiles"): one SIMD lane per query row. A query tile is held transposed,
// qt (D, kQ) with kQ = kAttnQueryTile lanes per row, so a score tile is st (kAttnKeyTile, kQ):
// st[j][i] = score of query i against key j. Every dot product, running max, running sum and
// output accumulation is then a lane-wise chain over d or j in a fixed order: a lane's result
// does not depend on the vector width, so every SIMD target computes the same bits (no FMA:
// the project builds with -ffp-contract=off; Highway Mul and Add are single IEEE operations).
// Keys and values are read by broadcasting scalars from row-major (nk, D) / (nk, Dv) f32 rows.
// With one query (nq == 1, decode) scores and pv switch to one-query kernels (keys as lanes via
// gathers; whole value rows as vectors) that perform, lane for lane, the same operations in the
// same order, so they return the same bits (tested).
#pragma once

#include <cstdint>

#include "softmax/attention.hpp"
#include "softmax/tensor.hpp"

namespace softmax::cpu {

// Fixed tile and split sizes of attention and its backward (results depend on them, so they are
// constants, not tuning knobs; docs/ops/attention.md).
inline constexpr int64_t kAttnQueryTile = 64;  // query rows per tile (one SIMD lane each)
inline constexpr int64_t kAttnKeyTile = 64;
inline constexpr int64_t kAttnKeySplit = 1024;  // a multiple of kAttnKeyTile

inline constexpr int64_t kAttnLanes = kAttnQueryTile;  // row stride of qt, st, pt and ot

struct AttentionKernelTable {
  const char* target_name;
  // st[j][i] = scale * sum_{d < D} k[j * ldk + d] * qt[d][i], for j < nk, i < nq (rounded up
  // to whole vectors; lanes past nq compute garbage from qt's zero padding, never NaN).
  //   qt: (D, kAttnLanes) f32; k: (nk, D) f32 with row stride ldk; st: (kAttnKeyTile, kAttnLanes).
  // The sum runs over d in order, one mul and one add per step.
  void (*scores)(const float* qt, int64_t d, int64_t nq, const float* k, int64_t ldk, int64_t nk,
                 float scale, float* st);
  // One online-softmax step (Milakov & Gimelshein 2018) over rows j < nk of st, per lane i:
  //   bad[i] |= any st[j][i] is NaN or +inf (such entries then count as -inf);
  //   m_new = max(m, max_j st[j][i]); alpha[i] = exp(m - m_new) (0 when m = -inf, 1 when
  //   m_new = -inf); st[j][i] <- p = exp(st[j][i] - m_new) (0 when m_new = -inf);
  //   l = l * alpha + sum_j p (in order of j); m = m_new.
  void (*online)(float* st, int64_t nk, int64_t nq, float* m, float* l, float* alpha, float* bad);
  // ot[c][i] = ot[c][i] * alpha[i] + sum_{j < nk} v[j * ldv + c] * pt[j][i] (in order of j),
  // for c < dv. pt: (kAttnKeyTile, kAttnLanes); v: (nk, dv) f32 with row stride ldv;
  // ot: (dv, kAttnLanes).
  void (*pv)(const float* pt, int64_t nk, int64_t nq, const float* v, int64_t ldv, int64_t dv,
             const float* alpha, float* ot);
  // dst[0, n) = src[0, n) widened to f32 (src dtype f32, bf16 or f16; contiguous).
  void (*widen)(const void* src, DType dtype, int64_t n, float* dst);
  // exp(a) for a <= 0 in f32 (the kernels' own exp, for merging split partials).
  float (*exp_nonpos)(float a);
};

// The table for the current target (see softmax/dispatch.hpp).
const AttentionKernelTable& attention_kernels();

}  // namespace softmax::cpu
