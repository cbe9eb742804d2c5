// softmax/logit_processors.hpp: the logit processors of a serving engine, applied to each row
// of logits (B, V) before temperature and the top-k / top-p / min-p filters. See
// docs/ops/sampling.md.
//
// Order (vLLM's), per row r, on the logits x (in the compute type: f32 for f32/bf16/f16 logits,
// f64 for f64; each step rounds once to it from an f64 evaluation):
//   1. repetition penalty rho (CTRL, Keskar et al. 2019, as Hugging Face and vLLM apply it): for
//      every token id in the row's previous tokens, x_i = x_i / rho if x_i > 0, else x_i * rho.
//      So rho > 1 always lowers a repeated token's probability (dividing a negative logit would
//      raise it); rho = 1 is off.
//   2. presence and frequency penalties (OpenAI's definition): x_i -= c_i * frequency_penalty
//      + (c_i > 0) * presence_penalty, c_i = the number of times id i occurs in the row's
//      previous tokens; applied to the result of step 1. 0 = off; negative values reward.
//   3. logit bias: x_i += bias for every (id, bias) of the row (a repeated id adds each bias).
//   4. banned tokens: x_i = -inf.
//   5. minimum length: while num_generated < min_tokens, x_i = -inf for every id in
//      eos_token_ids.
// -inf stays -inf in steps 1-3 (-inf / rho = -inf * rho = -inf).
//
// Note: vLLM applies the repetition penalty over prompt and output tokens and the presence /
// frequency penalties over output tokens only; here one list per row serves all three (pass
// the tokens that should count).
#pragma once

#include <cstdint>
#include <span>

#include "softmax/per_row.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// Per-row lists of token ids in CSR form: row r holds ids[offsets[r], offsets[r + 1]).
// offsets empty: `ids` is one list shared by every row. Otherwise offsets has B + 1
// nondecreasing entries, offsets[0] == 0 and offsets[B] == ids.size(). Every id in [0, V).
struct TokenLists {
  std::span<const int64_t> ids;
  std::span<const int64_t> offsets;
};

struct LogitProcessors {
  // Earlier tokens of each row (prompt and/or output), with repeats (they give the counts).
  TokenLists prev_tokens;
  // > 0 and finite; 1 = off.
  PerRow<double> repetition_penalty = 1.0;
  // Finite; 0 = off.
  PerRow<double> presence_penalty = 0.0;
  PerRow<double> frequency_penalty = 0.0;
  // Additive bias: logit_bias_values[j] is added to token logit_bias.ids[j] (same CSR layout;
  // one value per id). Values finite or -inf (a ban).
  TokenLists logit_bias;
  std::span<const double> logit_bias_values;
  // Tokens never drawn (logit -inf).
  TokenLists banned_tokens;
  // EOS suppression: while num_generated[r] < min_tokens[r], the ids in eos_token_ids get -inf.
  // min_tokens >= 0 (0 = off); num_generated >= -1, -1 = the length of the row's prev_tokens.
  std::span<const int64_t> eos_token_ids;
  PerRow<int64_t> min_tokens = int64_t{0};
  PerRow<int64_t> num_generated = int64_t{-1};
};

// out = the processed logits (steps 1-5 above) of logits.
// Shapes: logits (B, V), any strides, f32, f64, bf16 or f16; out (B, V) of the same dtype, any
// strides; out may be logits itself (in place), no other overlap. Error bound: each step is
// evaluated in f64 from the compute-type value and rounded once: |error| <= 2^-24 |result| per
// step for f32/bf16/f16 (plus the final rounding to bf16/f16), 2^-53 for f64. Entries not named
// by any list are copied unchanged (bit for bit; also NaN and inf, which are not checked here).
// sample() with these processors draws exactly what sample() draws from this output for f32 and
// f64 logits; for bf16 / f16 it keeps the processed values in f32 (no rounding back to 16 bits).
// Throws softmax::Error (nothing written) for: bad shapes or dtypes; per-row parameters whose
// length is not B; repetition_penalty <= 0, NaN or inf; presence / frequency penalty NaN or
// inf; a TokenLists whose offsets break the rules above or whose ids lie outside [0, V);
// logit_bias_values not one per id, or NaN / +inf; eos ids outside [0, V); min_tokens < 0;
// num_generated < -1; threads < 0.
void apply_penalties(ConstTensorView logits, TensorView out, const LogitProcessors& processors,
                     int threads = 0);

}  // namespace softmax
