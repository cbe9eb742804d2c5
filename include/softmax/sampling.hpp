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
//      top-k (k > 0): the first k tokens.
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
// Errors (softmax::Error, nothing written to `tokens` when thrown):
//   logits / probs not rank 2, V == 0, V >= 2^32, dtype not f32/f64/bf16/f16; tokens not i64 of shape (B) or (B, D); a per-row parameter or streams whose
//   length is not B; temperature < 0, NaN or +inf; top_k < 0; top_p outside (0, 1]; min_p
//   outside [0, 1]; threads < 0; a row holding NaN or +inf, or all -inf (kInvalidArgument; the
//   message names the first such row). sample_from_probs: a probability < 0, NaN or +inf, a row of zeros, or a
//   temperature other than 1 or 0.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "softmax/tensor.hpp"

namespace softmax {

// One value for every row, or one value per row (a view: the caller keeps the values alive).
template <class T>
class PerRow {
 public:
  PerRow(T value) : value_(value) {}  // NOLINT(google-explicit-constructor)
  PerRow(std::span<const T> values) : values_(values), per_row_(true) {}  // NOLINT
  PerRow(const std::vector<T>& values) : PerRow(std::span<const T>(values)) {}  // NOLINT
  PerRow(std::vector<T>&&) = delete;  // would dangle

  bool per_row() const noexcept { return per_row_; }
  // Number of per-row values (0 for a scalar).
  std::size_t size() const noexcept { return per_row_ ? values_.size() : 0; }
  T operator[](int64_t row) const { return per_row_ ? values_[static_cast<std::size_t>(row)] : value_; }

 private:
  T value_{};
  std::span<const T> values_;
  bool per_row_ = false;
};

enum class SamplingMethod : uint8_t {
  kInverseCdf,  // one uniform per row and draw; exact integer masses (default)
  kGumbelMax,   // one uniform per kept token: argmax of log w_i + Gumbel noise
};

struct SamplingParams {
  // 0 = greedy (argmax); otherwise finite and > 0.
  PerRow<double> temperature = 1.0;
  // Keep the k most probable tokens; 0 = off (k >= V is also no filter). Must be >= 0.
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
};

// tokens[b] (or tokens[b, d] for d < D) = a token drawn from row b of logits.
// Shapes: logits (B, V), any strides, dtype f32, f64, bf16 or f16; tokens (B) or (B, D), i64.
// Draw d of a row uses offset + d (as D separate calls with consecutive offsets would).
// Throws softmax::Error (see the header comment); nothing is written then.
void sample(ConstTensorView logits, TensorView tokens, const SamplingParams& params,
            uint64_t seed, uint64_t offset = 0);
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
//   roundings of x - max and of the division, and of the weights in the sum).
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

}  // namespace softmax
