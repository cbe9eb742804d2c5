// softmax/cross_entropy.hpp: the training losses: fused log-softmax + negative log-likelihood
// (cross_entropy), nll_loss on log-probabilities, and linear + cross-entropy that never holds
// the (tokens x vocabulary) logits.
//
// Semantics are PyTorch's torch.nn.functional.cross_entropy / nll_loss (1.13) and ONNX
// SoftmaxCrossEntropyLoss-13 / NegativeLogLikelihoodLoss-13, extended with PaLM's z-loss:
//
//   Shapes: logits (N, C) or (N, C, d1, ..., dk) with the class axis 1 (or (C) for one sample);
//   hard targets (N) or (N, d1, ..., dk), integer class ids (i32 or i64); soft targets: a
//   floating tensor of the logits' shape holding class probabilities. A "row" is one (n, d...)
//   position: R = N * d1 * ... * dk rows of C classes.
//
//   Per row r with target t (hard), lp = log_softmax(x_r), lse = logsumexp(x_r), w = class weights
//   (all 1 when none), eps = label_smoothing, z = z_loss:
//     loss_r = (1 - eps) * w_t * (-lp_t) + (eps / C) * sum_c w_c * (-lp_c) + z * lse^2
//   and loss_r = 0 (with a zero gradient) when t == ignore_index: smoothing and z-loss apply only
//   to kept rows. Soft targets q (probabilities, rows of the logits' shape):
//     q'_c = (1 - eps) * q_c + eps / C,   loss_r = -sum_c w_c * q'_c * lp_c + z * lse^2
//   (ignore_index does not apply).
//   Reduction: none -> loss has the rows' shape (N, d1..dk); sum -> sum_r loss_r / normalizer
//   (normalizer defaults to 1: the caller-given normaliser that chunked and distributed callers
//   use); mean -> sum_r loss_r / D where D = sum over kept rows of w_{t_r} (hard targets; ONNX's
//   weighted mean, PyTorch's), or D = R (soft targets). If D == 0 (every target ignored, or
//   every kept weight 0) the mean is NaN (as PyTorch >= 1.11) and the gradient is 0.
//   The z-loss term is unweighted and divided by the same D or normaliser.
//
//   Gradient (optional, written in the same call, without a separate probabilities pass):
//     d loss / d x_rc = g * ((1 - eps) * w_t + (eps / C) * W + 2 z lse) * p_c
//                       - g * (eps / C) * w_c - g * (1 - eps) * w_t * [c == t]
//   with p = softmax(x_r), W = sum_c w_c, g = grad_scale / D (mean), grad_scale / normalizer
//   (sum) or grad_scale * grad_output_r (none; grad_output unset: the gradient of the sum of the
//   per-row losses); soft targets:
//     g * ((sum_c w_c q'_c + 2 z lse) * p_c - w_c q'_c).
//   A term whose coefficient is 0 (target mass w_c q'_c, or (1 - eps) w_t) is 0 even where
//   lp_c = -inf (0 * log 0 = 0): soft targets with a zero at a -inf logit give a finite loss.
//   With eps > 0 a -inf class of positive weight has mass, so the loss is +inf (exact); the
//   gradient stays finite (p_c = 0 there).
//
// Numerics: lse = max + log(sum exp(x - max)) with the library's Highway exp (<= 1 ulp f32) and
// f64 partial sums; log-probs are (x - max) - log(sum) (never log(softmax)), so C equal huge
// logits give exactly ln C; per-row losses are formed in f64 and reduced in f64 in row order,
// so results do not depend on the thread count or SIMD target. Error bounds (tested against a
// long double reference, f32 logits; f64 logits: the same with 2^-49 for 2^-20):
// |loss_r - exact| <= 2^-20 * (1 + |loss_r|) per row, and per gradient element
// |g_c - exact| <= 2^-20 * (|a| p_c + |b| w_c + |c| [c == t]) + 2^-148 |a| (f64: 2^-1073 |a|),
// a, b, c the three coefficients of the gradient formula above (i.e. a few f32 roundings of each
// term; the absolute term: a p_c below the normal range, quantised to the subnormal spacing),
// plus the rounding of the output.
//
// Errors: softmax::Error naming op, argument, value and rule for a target out of [0, C) that
// is not ignore_index, shape or dtype mismatches, NaN/inf or wrongly shaped weights, a
// label_smoothing outside [0, 1], a negative or non-finite z_loss, a normalizer that is not
// finite and > 0 (or != 1 without reduction sum), overlapping outputs, a CUDA view. Validation
// (including every target) happens before anything is written.
#pragma once

#include <cstdint>
#include <optional>

#include "softmax/context.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

enum class Reduction : uint8_t { kNone, kSum, kMean };

// Options shared by cross_entropy, nll_loss and linear_cross_entropy (PyTorch's names).
struct CrossEntropyOptions {
  // Per-class weights, shape (C), any floating dtype; no NaN or inf. Unset: all 1.
  std::optional<ConstTensorView> weight;
  // Hard targets equal to this are skipped (loss 0, gradient 0, excluded from the mean).
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::kMean;
  // In [0, 1]: mixes the target with the uniform distribution (Szegedy et al. 2016), PyTorch's
  // formula (weights included); applies only to rows whose target is not ignored.
  double label_smoothing = 0.0;
  // z-loss coefficient (PaLM, Chowdhery et al. 2022): adds z_loss * lse^2 per kept row.
  // >= 0 and finite. cross_entropy and linear_cross_entropy only (nll_loss has no lse).
  double z_loss = 0.0;
  // reduction == kSum only: the sum is divided by this (finite, > 0).
  double normalizer = 1.0;
  // The upstream gradient d(objective)/d(loss) the gradient outputs are multiplied by (for
  // reduction none: applied to every row). Finite.
  double grad_scale = 1.0;
  // Reduction none only: the per-row upstream gradients d(objective)/d(loss_r), shaped like the
  // loss (the rows' shape), any floating dtype; row r's gradient is multiplied by it (and by
  // grad_scale). Unset: 1 for every row.
  std::optional<ConstTensorView> grad_output;
  // Worker threads (OpenMP). 0 = the OpenMP default (OMP_NUM_THREADS or all CPUs). Any
  // count is clamped to the number of CPUs the process may use (omp_get_num_procs()), and
  // to 1 in a child created by fork() (OpenMP's thread pool does not survive fork).
  // threads < 0 throws softmax::Error (kInvalidArgument).
  // Results do not depend on it, except the BLAS products of linear_cross_entropy (oneDNN may
  // split its sums by thread count).
  int threads = 0;
  // linear_cross_entropy only: vocabulary columns per chunk; 0 chooses so that the chunk of
  // logits (N x chunk f32) takes about 8 MiB (at least 256 columns). At most 32768: the passes
  // run per 32768-class block (chunks restart at each block, the blocks' statistics merge in
  // class order), the grid a vocabulary-parallel split shares (softmax/dist.hpp).
  int64_t vocab_chunk = 0;
};

// Outputs of cross_entropy / nll_loss. `loss` is required; the rest are computed when set.
struct CrossEntropyOutputs {
  // Reduction none: shape of the rows (N, d1..dk) (rank 0 for 1-d logits); sum / mean: rank 0.
  // Any floating dtype (bf16/f16 rounded once from the f64 value).
  TensorView loss;
  // d loss / d input, the input's shape; dtype f32/bf16/f16 for f32/bf16/f16 inputs, f64 for
  // f64. May be exactly the input (in place).
  std::optional<TensorView> grad;
  // cross_entropy only: logsumexp of every row (rows' shape), any floating dtype.
  std::optional<TensorView> lse;
  // cross_entropy only: log_softmax of the logits (ONNX's second output), the logits' shape;
  // dtype as grad. May be exactly the logits when grad is not.
  std::optional<TensorView> log_probs;
};

// Fused log-softmax + NLL (+ label smoothing, z-loss, soft targets) with the gradient with
// respect to the logits in the same pass (Liger Kernel's fused cross-entropy). See the file
// comment for the exact formulas. logits: f32, f64, bf16 or f16.
// Throws softmax::Error (nothing written).
void cross_entropy(ConstTensorView logits, ConstTensorView targets, const CrossEntropyOutputs& out,
                   const CrossEntropyOptions& options = {}, const Context& context = {});

// Negative log-likelihood on log-probabilities (ONNX NegativeLogLikelihoodLoss-13, PyTorch
// nll_loss, extended with label_smoothing and soft targets by the same formulas with lp given):
//   loss_r = (1 - eps) * w_t * (-lp_t) + (eps / C) * sum_c w_c * (-lp_c); gradient
//   -g * ((1 - eps) * w_t * [c == t] + (eps / C) * w_c) (soft: -g * w_c * q'_c).
// z_loss must be 0; out.lse and out.log_probs must be unset. Throws softmax::Error.
void nll_loss(ConstTensorView log_probs, ConstTensorView targets, const CrossEntropyOutputs& out,
              const CrossEntropyOptions& options = {}, const Context& context = {});

// Outputs of linear_cross_entropy.
struct LinearCrossEntropyOutputs {
  TensorView loss;                        // as CrossEntropyOutputs::loss; f32 or f64
  std::optional<TensorView> grad_hidden;  // (N, D) f32
  std::optional<TensorView> grad_weight;  // (V, D) f32
  std::optional<TensorView> lse;          // (N), any floating dtype
};

// cross_entropy(hidden @ weight^T, targets) and its gradients with respect to hidden and
// weight, computed in vocabulary chunks with an online logsumexp (Milakov & Gimelshein 2018),
// never holding the (N, V) logits (Cut Cross-Entropy, Wijmans et al. 2024, arXiv:2411.09009;
// Liger Kernel's fused linear cross-entropy). Extra memory: O(N x vocab_chunk) floats.
// The products run in oneDNN's sgemm (f32 accumulation). Pass 1 computes each chunk's logits
// and merges its (max, sum); pass 2 (only when a gradient is requested) recomputes them, turns
// them into the logit gradient in place and accumulates grad_hidden += G Wc, grad_weight_c = G^T H.
// hidden: (N, D) f32, weight: (V, D) f32, both with unit stride on D; targets (N) i32/i64.
// All CrossEntropyOptions apply except soft targets; class weights are per vocabulary entry.
// Throws softmax::Error (nothing written).
void linear_cross_entropy(ConstTensorView hidden, ConstTensorView weight, ConstTensorView targets,
                          const LinearCrossEntropyOutputs& out,
                          const CrossEntropyOptions& options = {}, const Context& context = {});

// Bytes of scratch linear_cross_entropy allocates for these sizes and options (the N x chunk
// logits block plus per-row state), so callers can budget memory. n (rows), d (hidden size) and
// v (classes) must be >= 0 and options.vocab_chunk >= 0 (else softmax::Error kInvalidArgument
// naming it); a size that does not fit int64 is kOverflow.
int64_t linear_cross_entropy_workspace_bytes(int64_t n, int64_t d, int64_t v,
                                             const CrossEntropyOptions& options = {});

}  // namespace softmax
