// softmax/sampling.hpp: next-token sampling from logits (or probabilities): greedy, temperature,
// top-k, top-p (nucleus), min-p, Gumbel-max, and top log-probs. See docs/ops/sampling.md.
//
// Semantics, per row of logits x (length V):
//   1. Temperature T: T == 0 is greedy: the argmax of x (lowest id on ties), no division and no
//      randomness; the filters below cannot change it. For T > 0 the row is tempered in the
//      compute type (f32 for f32/bf16/f16 logits, f64 for f64):
//        z_i = (x_i - max) / T,   w_i = exp(z_i)  (so the largest weight is exactly 1)
//      The token distribution is p_i = w_i / sum_j w_j.
//   2. Tokens are ordered by weight, largest first; equal weights by lower id. Every filter keeps
//      a prefix of this order:
//      top-k (k > 0): the first k tokens (k = 0, Hugging Face's "off", and k = -1, vLLM's, are
//        both off).
//      top-p (p < 1): the shortest prefix of what top-k kept whose probability (renormalised over
//        the top-k set) reaches p, i.e. whose mass Q >= p * M exactly (M: mass of the top-k set).
//      min-p (m > 0): tokens with w_i >= m * w_max (the product rounded to f64), i.e.
//        p_i >= m * p_max; renormalising after top-k / top-p leaves p_i / p_max unchanged.
//      The order is temperature, top-k, top-p, min-p; the kept set is the intersection.
//   3. Draw (inverse CDF, the default): token masses are the weights in fixed point,
//      q_i = floor(w_i * 2^(62 - e)) with 2^e the power of two just above w_max, summed exactly in
//      128-bit integers (so the filters above are exact: no rounding decides a boundary). One
//      64-bit uniform U gives r = floor(S * U / 2^64) with S the kept mass; the token is the first
//      kept token, in id order, whose running mass exceeds r. A token whose weight is 0 (or below
//      2^-62 of the maximum weight, q_i = 0) is never returned.
//      Gumbel-max (SamplingMethod::kGumbelMax): argmax over kept tokens of
//      log(w_i) - log(-log(u_i)), one uniform u_i per token (lowest id on ties); the same
//      distribution (up to the rounding of the weights), drawn from a different random stream.
//
// Randomness: Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011), counter = (draw, stream low 32 bits, offset low, offset high) where
// seed and offset are the call's or the row's (SamplingParams::seeds / offsets) and
// stream (64 bits) is the row index (or params.streams[row]) and draw is 0 for the inverse-CDF
// uniform, the token id for Gumbel-max; key = seed (64 bits) for streams < 2^32, and for larger
// streams the first 64 bits of the block of counter (2^32 - 1, stream high 32 bits, 0, 0) under
// key seed (a counter no draw uses; distinct high words give distinct keys), so streams that
// differ in any of their 64 bits draw independently. So a row's tokens depend only on its
// logits, its
// parameters, seed, offset and stream: not on the batch size, the other rows, the thread count or
// the SIMD target.
//
// Algorithm (no sort of the vocabulary; after FlashInfer's sort-free sampling, which replaces the
// sort by threshold searches): one pass for the row maximum (and NaN / +inf check), one pass
// writing the tempered weights, one scalar pass histogramming the weights' bit patterns (their
// top 12 bits) with counts and exact masses; that locates the bucket holding the first filter's
// boundary, and one pass gathers the tokens at or above it (usually a few hundred). On that list
// a radix select on the weights' bits (8 bits a level, Hoare-style narrowing) finds the exact
// boundary key and how many tokens tied at it are kept; a walk in id order then draws.
// Cost: two SIMD and two scalar passes over V plus O(list) work; worst case (all weights
// equal) the list is the whole row and the select stops at once.
//
// Logit processors (SamplingParams::processors, softmax/logit_processors.hpp) run first, on the
// logits in the compute type; everything above then applies to the processed row.
//
// Errors (softmax::Error, nothing written to `tokens` when thrown):
//   logits / probs not rank 2, V == 0, V >= 2^32, dtype not f32/f64/bf16/f16; tokens not i64 of
//   shape (B) or (B, D); a per-row parameter, streams, seeds or offsets whose length is not B;
//   a processors rule (softmax/logit_processors.hpp); temperature < 0, NaN or +inf; top_k < -1;
//   top_p outside (0, 1]; min_p
//   outside [0, 1]; threads < 0; a row holding NaN or +inf, or all -inf (kInvalidArgument; the
//   message names the first such row). sample_from_probs: a probability < 0, NaN or +inf, a row of
//   zeros, or a temperature other than 1 or 0.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "softmax/logit_processors.hpp"
#include "softmax/per_row.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

enum class SamplingMethod : uint8_t {
  kInverseCdf,  // one uniform per row and draw; exact integer masses (default)
  kGumbelMax,   // one uniform per kept token: argmax of log w_i + Gumbel noise
};

struct SamplingParams {
  // 0 = greedy (argmax); otherwise finite and > 0.
  PerRow<double> temperature = 1.0;
  // Keep the k most probable tokens; 0 or -1 = off (k >= V is also no filter). Must be >= -1.
  PerRow<int64_t> top_k = int64_t{0};
  // Keep the smallest most-probable set whose probability reaches p; 1 = off. In (0, 1].
  PerRow<double> top_p = 1.0;
  // Keep tokens with p >= min_p * p_max; 0 = off. In [0, 1].
  PerRow<double> min_p = 0.0;
  SamplingMethod method = SamplingMethod::kInverseCdf;
  // Philox stream per row, any 64-bit value (e.g. a request id, so a request draws the same
  // tokens wherever it sits in the batch); empty = the row index. Length B when given.
  std::span<const uint64_t> streams;
  // Worker threads over rows (OpenMP). 0 = the OpenMP default (OMP_NUM_THREADS or all CPUs);
  // any count is clamped to the number of CPUs the process may use (omp_get_num_procs()), and
  // to 1 in a child created by fork(); < 0 throws softmax::Error. Results do not depend on it.
  int threads = 0;
  // Per-request Philox key and offset (64 bits each): row r uses seeds[r] and offsets[r]
  // instead of the call's seed and offset (draw d of the row uses offsets[r] + d). Empty = the
  // call's values. Length B when given.
  std::span<const uint64_t> seeds;
  std::span<const uint64_t> offsets;
  // Logit processors (penalties, logit bias, banned tokens, min-length EOS suppression; see
  // softmax/logit_processors.hpp), applied to each row before temperature; nullptr = none.
  // Logits only (sample_from_probs rejects them).
  const LogitProcessors* processors = nullptr;
};

// tokens[b] (or tokens[b, d] for d < D) = a token drawn from row b of logits.
// Shapes: logits (B, V), any strides, dtype f32, f64, bf16 or f16; tokens (B) or (B, D), i64.
// Draw d of a row uses offset + d (as D separate calls with consecutive offsets would).
// Throws softmax::Error (see the header comment); nothing is written then.
void sample(ConstTensorView logits, TensorView tokens, const SamplingParams& params, uint64_t seed,
            uint64_t offset = 0);
// As above, one draw per row; returns B token ids.
std::vector<int64_t> sample(ConstTensorView logits, const SamplingParams& params, uint64_t seed,
                            uint64_t offset = 0);
// One row (B = 1).
int64_t sample(std::span<const float> logits, const SamplingParams& params, uint64_t seed,
               uint64_t offset = 0);

// As sample, from probabilities instead of logits: weights w_i = probs_i (they need not sum to
// 1; each row is normalised by its sum). Every probability must be finite and >= 0 and a row
// must not be all zero. params.temperature must be 1 (temperature belongs on logits) or 0 (the
// most probable token, lowest id on ties).
void sample_from_probs(ConstTensorView probs, TensorView tokens, const SamplingParams& params,
                       uint64_t seed, uint64_t offset = 0);
std::vector<int64_t> sample_from_probs(ConstTensorView probs, const SamplingParams& params,
                                       uint64_t seed, uint64_t offset = 0);

// The n most probable tokens of each row and their log-probabilities under softmax(x / T),
// most probable first (lower id first on ties), as LLM APIs' "logprobs" report them.
//   ids: (rows, n) row-major; logprobs: (rows, n), log p_i = z_i - log(sum_j exp(z_j)) with
//   z_i = (x_i - max) / T in the compute type and the sum in f64 (never log(softmax)); a token
//   whose weight underflowed reports its exact log-probability z_i - log(sum), not -inf.
//   Error bound: |error| <= 2^-22 * (|log p_i| + log(V) + 1) for f32/bf16/f16 logits (the f32
//   roundings of x - max and of the division, and of the weights in the sum); for f64 logits
//   |error| <= 2^-50 * (|log p_i| + 1) + V * 2^-53 (the last term: the f64 sum of V terms).
//   A -inf logit reports -inf.
// logits as in sample; 0 <= n <= V; temperature finite and > 0 (for T = 0 ask for T = 1);
// threads as SamplingParams::threads. Throws softmax::Error for those, and for rows holding NaN
// or +inf or all -inf.
struct TopLogprobs {
  int64_t rows = 0;
  int64_t n = 0;
  std::vector<int64_t> ids;
  std::vector<double> logprobs;
};
TopLogprobs top_logprobs(ConstTensorView logits, int64_t n, double temperature = 1.0,
                         int threads = 0);

// ---- Processed outputs (what vLLM's logprobs_mode reports) ----
//
// The processed distribution of a row is the one sample() draws from with the same params:
// logit processors, temperature, then the top-k / top-p / min-p filters, renormalised over the
// kept tokens: p_i = q_i / S with q_i the exact integer masses of the header comment (0 outside
// the kept set). A greedy row (temperature 0) has p = 1 at its argmax. The raw distribution is
// softmax(logits) itself: no processors, temperature 1, no filters.
enum class LogprobsMode : uint8_t {
  kRaw,        // log softmax(logits) (vLLM "raw_logprobs")
  kProcessed,  // log of the processed distribution (vLLM "processed_logprobs")
};

// probs = the processed distribution of every row (FlashInfer's top_k_renorm_probs /
// top_p_renorm_probs, and top_k_mask_logits up to the log).
// Shapes: logits (B, V) as in sample; probs (B, V) f32 or f64, any strides. Error bound: each
// entry is q_i / S rounded once to f64 (then to f32), and q_i / w_i differs from the exact
// scale by < 1 / q_i <= 2^-61 * w_max / w_i. params.seed(s) / offsets / streams / method are
// unused. Throws softmax::Error as sample (and for a probs view of the wrong shape or dtype).
void filtered_probs(ConstTensorView logits, TensorView probs, const SamplingParams& params);

// logprobs[b] (or [b, d]) = log p(tokens[b] (or [b, d])) under the row's raw or processed
// distribution (-inf for a token the filters removed).
// Shapes: logits (B, V) as in sample; tokens (B) or (B, D) i64, every id in [0, V); logprobs the
// tokens' shape, f32 or f64. kRaw: log p_t = z_t - log(sum_j exp(z_j)), z = x - max in the
// compute type, the sum in f64 (bound as top_logprobs, T = 1; params are not used except
// threads). kProcessed: log(q_t / S) (bound as filtered_probs, plus one rounding of the log).
// Throws softmax::Error as sample, and for token ids outside [0, V).
void token_logprobs(ConstTensorView logits, ConstTensorView tokens, TensorView logprobs,
                    const SamplingParams& params, LogprobsMode mode);

// The n most probable tokens of each row under the raw or processed distribution, most probable
// first (lower id first on ties; tokens of probability 0 follow in id order with -inf).
// kRaw is top_logprobs(logits, n, 1.0, params.threads). 0 <= n <= V.
TopLogprobs top_logprobs(ConstTensorView logits, int64_t n, const SamplingParams& params,
                         LogprobsMode mode);

// ---- Without replacement ----

// tokens[b, :k] = k distinct tokens of row b drawn without replacement from the processed
// distribution (in draw order), by Gumbel-top-k (Kool, van Hoof, Welling, "Stochastic beams and
// where to find them", ICML 2019; exact): the k largest keys log(w_i) - log(-log(u_i)) over the
// kept tokens with w_i > 0, u_i = the Philox uniform of Gumbel-max for token i (so tokens[b, 0]
// is the token sample() draws with SamplingMethod::kGumbelMax); lowest id on equal keys. A
// greedy row (temperature 0) gives its k largest processed logits (lowest id on ties).
// Shapes: logits (B, V) as in sample; tokens (B, k) i64, 0 <= k. params.method is unused.
// Throws softmax::Error as sample, and when a row has fewer than k tokens of positive
// probability after the filters (finite logits for a greedy row).
void sample_without_replacement(ConstTensorView logits, TensorView tokens,
                                const SamplingParams& params, uint64_t seed, uint64_t offset = 0);

}  // namespace softmax
