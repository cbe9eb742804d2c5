// src/cpu/attention_backward_kernels.hpp: the per-target elementwise kernels of the fused
// attention backward (no SIMD types). The tile products reuse the forward's kernels
// (src/cpu/attention_kernels.hpp: scores, pv, widen); these turn a recomputed score tile into
// probabilities from the saved logsumexp and into the score gradient.
//
// Tiles are the forward's: (rows, kAttnLanes) f32 with row stride kAttnLanes, rows < nr,
// lanes < nl (rounded up to whole vectors; lanes past nl hold finite garbage that callers
// never read). `per_lane` says whether the per-query values (lse, delta) are indexed by lane
// (queries are lanes: the dq pass) or by row (queries are rows: the dk/dv pass).
// Every lane runs the same operations in the same order on every SIMD target (no FMA), so
// results do not depend on the target.
#pragma once

#include <cstdint>

namespace softmax::cpu {

struct AttentionBackwardKernelTable {
  const char* target_name;
  // st[r][l] <- exp(min(st[r][l] - lse, 0)) with lse = lse[l] (per_lane) or lse[r]; a query
  // whose lse is -inf (fully masked) gets 0; NaN propagates.
  void (*probs)(float* st, int64_t nr, int64_t nl, const float* lse, bool per_lane);
  // dpt[r][l] <- pt[r][l] * (dpt[r][l] - delta) * scale with delta = delta[l] (per_lane) or
  // delta[r]: the softmax backward dS = P o (dP - rowsum(dO o O)), times the score scale.
  void (*dscores)(const float* pt, float* dpt, int64_t nr, int64_t nl, const float* delta,
                  bool per_lane, float scale);
};

// The table for the current target (see softmax/dispatch.hpp).
const AttentionBackwardKernelTable& attention_backward_kernels();

}  // namespace softmax::cpu
