// softmax/sampled_softmax.hpp: sampled softmax (Jean, Cho, Memisevic, Bengio 2015, "On Using
// Very Large Target Vocabulary for Neural Machine Translation") with TensorFlow's semantics
// and argument names (tf.nn.sampled_softmax_loss, tf.random.*_candidate_sampler).
//
// Candidate sampling (TensorFlow's RangeSampler), over classes [0, num_classes):
//   log_uniform: P(k) = log((k + 2) / (k + 1)) / log(num_classes + 1) (Zipfian; ids sorted by
//                decreasing frequency); a draw is floor(exp(u * log(num_classes + 1))) - 1
//                (mod num_classes), u uniform in (0, 1).
//   uniform:     P(k) = 1 / num_classes; a draw is floor(u * num_classes).
//   unigram:     P(k) = unigrams[k]^distortion / sum_j unigrams[j]^distortion
//                (tf.random.fixed_unigram_candidate_sampler); a draw inverts the CDF.
//   unique = false: num_sampled independent draws, num_tries = num_sampled.
//   unique = true: draws until num_sampled distinct classes are seen (rejection), num_tries =
//                all draws made.
//   Expected counts (TensorFlow's ExpectedCountHelper), for a class of probability p:
//     num_tries == num_sampled: p * num_sampled; otherwise 1 - (1 - p)^num_tries
//     (computed as -expm1(num_tries * log1p(-p))).
//   Randomness: draw t uses philox_open01 of Philox-4x32-10 with key = seed, counter =
//   (t, 0, offset low 32 bits, offset high 32 bits) (the sampling layout of
//   softmax/sampling.hpp, stream 0), so the same (seed, offset) give the same samples on every
//   thread count and SIMD target. One sample set per call, shared by the whole batch.
//
// Loss (tf.nn.sampled_softmax_loss, per example i with true classes t_i1..t_in, n = num_true,
// sampled classes s_1..s_S):
//   true logit   a_ij = w[t_ij] . x_i + b[t_ij] - log(true_expected_count_ij)
//   sampled logit c_is = w[s_s] . x_i + b[s_s] - log(sampled_expected_count_s)
//     (the log terms only with subtract_log_q; with remove_accidental_hits, c_is = -inf when
//      s_s equals one of example i's true classes: that column gets probability 0)
//   loss_i = logsumexp(a_i., c_i.) - (1 / n) sum_j a_ij
//   (softmax cross-entropy over the n + S columns with label 1/n on each true column).
// Gradient (compute_grad), with g_i the upstream gradient of loss_i (grad_output, else 1) and
// p the softmax over the n + S columns: d loss_i / d a_ij = g_i (p_ij - 1/n), d / d c_is =
// g_i p_is; inputs, and the touched rows of weights / biases, get these through the linear
// layer. Weights and biases gradients are sparse: the union of the sampled and true classes
// (SparseRowGrad); a class sampled twice (unique = false) accumulates both columns.
//
// Numerics: the products run in f32 sgemm (f32 accumulation; per logit error <= D * 2^-24 *
// sum_d |w_d x_d| + 2^-24 |logit|); the sampled columns' logsumexp is the library's f32
// logsumexp (relative error <= 2^-23), the rest is formed in f64. Error bound:
// |loss_i - exact(logits)| <= 2^-21 (1 + |lse_i|), lse_i the normaliser over the n + S columns,
// plus the logits' own error (a logit error e moves the loss by at most 2e). Gradients: each
// element within 2^-20 of its exact value given the f32 logits, plus D * 2^-24 * sum |terms| of its
// f32 product.
//
// Errors (softmax::Error, nothing returned half-way): weights not (num_classes, D) f32 with a
// unit column stride, biases not (num_classes) f32, inputs not (N, D) f32, labels not (N,
// num_true) i32/i64 or a label outside [0, num_classes), num_sampled outside [1, 2^32 - 1),
// num_true < 1,
// num_classes < 1, unique with num_sampled > num_classes (or > the classes of nonzero unigram
// probability), unigrams of the wrong length or with a negative / NaN / inf entry or a zero
// sum, distortion not finite, grad_output not (N) floating, a unique draw that needs more than
// 64 * num_sampled + 2^20 tries (num_sampled too close to the reachable classes).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "softmax/sparse_rows.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

enum class CandidateSampler : uint8_t { kLogUniform, kUniform, kUnigram };

struct SampledSoftmaxOptions {
  int64_t num_sampled = 0;  // >= 1
  int64_t num_classes = 0;  // >= 1; the rows of weights
  int64_t num_true = 1;     // true classes per example (labels' second dimension)
  CandidateSampler sampler = CandidateSampler::kLogUniform;
  std::vector<double> unigrams;  // kUnigram: num_classes counts or probabilities, >= 0, finite
  double distortion = 1.0;       // kUnigram: unigrams are raised to this power
  bool unique = false;
  bool remove_accidental_hits = true;
  bool subtract_log_q = true;
  uint64_t seed = 0;
  uint64_t offset = 0;
  bool compute_grad = false;
  // (N) floating: d objective / d loss_i; unset: 1 for every example.
  std::optional<ConstTensorView> grad_output;
  int threads = 0;  // 0 = OpenMP default; results do not depend on it (except sgemm sums)
};

// The candidate sampler's outputs, as TensorFlow's candidate samplers return them.
struct CandidateSample {
  std::vector<int64_t> sampled;               // (num_sampled)
  std::vector<float> true_expected_count;     // (N, num_true) row-major
  std::vector<float> sampled_expected_count;  // (num_sampled)
  int64_t num_tries = 0;                      // draws made (num_sampled unless unique)
};

struct SampledSoftmaxResult {
  std::vector<float> loss;  // (N) per-example loss
  CandidateSample samples;
  // compute_grad only:
  std::vector<float> grad_inputs;  // (N, D) row-major
  SparseRowGrad grad_weights;      // touched rows of weights (and biases in .bias)
};

// The probability P(k) of class k under the options' sampler (the formulas above).
// Throws softmax::Error for a bad sampler configuration or k outside [0, num_classes).
double candidate_probability(int64_t k, const SampledSoftmaxOptions& options);

// tf.random.{log_uniform,uniform,fixed_unigram}_candidate_sampler: draws num_sampled classes
// and the expected counts of true_classes (N, num_true) i32/i64 and of the samples.
// Uses num_sampled, num_classes, num_true, sampler, unigrams, distortion, unique, seed, offset.
// Throws softmax::Error.
CandidateSample sample_candidates(ConstTensorView true_classes,
                                  const SampledSoftmaxOptions& options);

// tf.nn.sampled_softmax_loss(weights, biases, labels, inputs, ...): see the file comment.
// weights (num_classes, D) f32 (unit column stride), biases (num_classes) f32, labels (N,
// num_true) i32/i64, inputs (N, D) f32. Throws softmax::Error.
SampledSoftmaxResult sampled_softmax_loss(ConstTensorView weights, ConstTensorView biases,
                                          ConstTensorView labels, ConstTensorView inputs,
                                          const SampledSoftmaxOptions& options);

}  // namespace softmax
