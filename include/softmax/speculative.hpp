// softmax/speculative.hpp: verification of speculative decoding (Leviathan, Kalman, Matias,
// "Fast inference from transformers via speculative decoding", ICML 2023; Chen et al.,
// "Accelerating large language model decoding with speculative sampling", 2023), as
// FlashInfer's chain_speculative_sampling and vLLM's rejection sampler run it.
//
// Per row b, with k draft tokens t_0 .. t_{k-1} drawn from the draft distributions q_j
// (draft_probs[b, j]) and the target distributions p_j (target_probs[b, j], j <= k):
//   for j = 0 .. k-1: accept t_j with probability min(1, p_j(t_j) / q_j(t_j)): u_j < p/q with
//     u_j uniform in (0, 1) (evaluated as u_j * q_j(t_j) * P_j < p_j(t_j) * Q_j, P_j and Q_j the
//     rows' sums, so rows that sum to 1 within the tolerance below are used as given and
//     renormalised exactly); on the first rejection, emit a token drawn from the residual
//     max(0, p_j - q_j) normalised (from p_j when the residual is all zero) and stop;
//   when all k are accepted, emit a bonus token drawn from p_k.
// The emitted tokens are then distributed exactly as tokens drawn from the target model
// one at a time (the rule's theorem); a draft token with q_j(t_j) = 0 is accepted iff
// p_j(t_j) > 0.
// Randomness: Philox-4x32-10 keyed by seed (per-stream keys as softmax/sampling.hpp); the
// acceptance uniform of position j is draw 2j, the residual / bonus draw at position j is
// draw 2j + 1 (an inverse-CDF draw on exact integer masses, as sample()), counter offset
// `offset`, stream = streams[b] or b. A row's result depends only on its own inputs.
#pragma once

#include <cstdint>
#include <span>

#include "softmax/tensor.hpp"

namespace softmax {

// Shapes: draft_tokens (B, k) i64, ids in [0, V); draft_probs (B, k, V), target_probs
// (B, k + 1, V), f32 or f64 (each may be either), any strides; k >= 0, 1 <= V < 2^32.
// Outputs: num_accepted (B) i64 in [0, k]; tokens (B, k + 1) i64: the accepted draft tokens,
// then the correction (or bonus) token, then -1 padding (num_accepted + 1 tokens per row).
// Every probability must be finite and >= 0 and every row of draft_probs / target_probs must
// sum to 1 within 1e-3 (kInvalidArgument otherwise, naming the row); bad shapes, dtypes,
// token ids, streams of the wrong length, or overlapping outputs throw softmax::Error.
// Nothing is written when it throws.
void speculative_verify(ConstTensorView draft_tokens, ConstTensorView draft_probs,
                        ConstTensorView target_probs, TensorView num_accepted, TensorView tokens,
                        uint64_t seed, uint64_t offset = 0, std::span<const uint64_t> streams = {},
                        int threads = 0);

}  // namespace softmax
