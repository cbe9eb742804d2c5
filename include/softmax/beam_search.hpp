// softmax/beam_search.hpp: one step of beam search: the best continuations of B beams.
#pragma once

#include <cstdint>

#include "softmax/tensor.hpp"

namespace softmax {

// The 2 * beam_width best candidates (beam b, token v) by score beam_scores[b] +
// log_probs[b, v] (the sum in f64), best first; equal scores by lower beam, then lower token.
// 2 * beam_width candidates let a step keep beam_width live beams after the finished
// (end-of-sequence) ones are set aside, as Hugging Face's beam search does.
// Exact selection without a full sort: each beam's best 2 * beam_width tokens by a bounded
// heap (O(V log W) per beam), then nth_element over the B * 2W survivors and a sort of the
// winners. Candidates with score -inf are never chosen.
// Shapes: log_probs (B, V), beam_scores (B), f32 or f64 (either), any strides; outputs
// beam_indices (2W) i64, tokens (2W) i64, scores (2W) f32 or f64.
// Throws softmax::Error (nothing written) for bad shapes or dtypes, beam_width < 1, NaN or +inf
// in log_probs or beam_scores, or fewer than 2 * beam_width candidates of finite score.
void beam_search_step(ConstTensorView log_probs, ConstTensorView beam_scores, int64_t beam_width,
                      TensorView beam_indices, TensorView tokens, TensorView scores);

}  // namespace softmax
