// softmax/adaptive_softmax.hpp: adaptive softmax (Grave, Joulin, Cisse, Grangier, Jegou 2017,
// "Efficient softmax approximation for GPUs"), numerically PyTorch 1.13's
// nn.AdaptiveLogSoftmaxWithLoss given the same weights.
//
// Parameters, as torch's module holds them (cutoffs c_0 < c_1 < ... < c_{m-1} as its
// constructor takes them, n_classes = c_{m-1} + the last tail's output rows, c_m = n_classes):
//   head_weight (c_0 + m, D) f32, head_bias (c_0 + m) f32 or none: head.weight / head.bias;
//   tails[i] = {projection (h_i, D), output (c_{i+1} - c_i, h_i)} f32: tail[i][0].weight and
//   tail[i][1].weight (no biases), any h_i >= 1.
// Log-probabilities of input row x: head = log_softmax(head_weight x + head_bias); class
// k < c_0: head[k]; class k in [c_i, c_{i+1}): head[c_0 + i] + log_softmax(output_i
// (projection_i x))[k - c_i].
// adaptive_log_softmax_with_loss returns torch's (output, loss): output_n = log p(target_n |
// x_n), loss = mean_n(-output_n). Gradients (compute_grad): of grad_scale * loss with respect
// to input and every weight (dense, the weights' shapes).
// adaptive_predict: torch's predict (the argmax of the log-probs; a row whose head argmax is a
// shortlist class returns it without evaluating the tails; ties: the lowest id).
//
// Numerics: f32 sgemm products (f32 accumulation), row log-softmax / logsumexp / softmax of
// the library (f32, <= 3 ulp), the output and the loss in f64 from those. Error bounds, plus
// the logits' error (D * 2^-24 * sum |terms| each, moving a log-prob by at most twice that):
// adaptive_log_prob <= 2^-21 (1 + |log p|) per element; output_n <= 2^-21 (1 + |lse_head| +
// |lse_cluster|) (the f32 logsumexp of the head and of the target's cluster).
//
// Errors (softmax::Error): cutoffs empty, not strictly increasing, or with c_0 <= 0; no tails
// or a tail count other than the cutoffs'; input not (N, D) f32 (unit column stride); weights
// of the wrong shape or dtype; a target outside [0, n_classes) (i32/i64, shape (N)).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "softmax/tensor.hpp"

namespace softmax {

struct AdaptiveTail {
  ConstTensorView projection;  // (h_i, D)
  ConstTensorView output;      // (c_{i+1} - c_i, h_i)
};

struct AdaptiveSoftmaxOptions {
  bool compute_grad = false;
  double grad_scale = 1.0;  // finite
  int threads = 0;          // 0 = OpenMP default
};

struct AdaptiveSoftmaxResult {
  std::vector<float> output;  // (N): log p(target_n | input_n)
  double loss = 0.0;          // mean(-output) (NaN for N = 0, as torch)
  // compute_grad only, row-major in the inputs' shapes:
  std::vector<float> grad_input, grad_head_weight, grad_head_bias;
  std::vector<std::vector<float>> grad_tail_projection, grad_tail_output;
};

// torch's AdaptiveLogSoftmaxWithLoss.forward(input, target). input (N, D) f32, target (N)
// i32/i64. Throws softmax::Error.
AdaptiveSoftmaxResult adaptive_log_softmax_with_loss(ConstTensorView input, ConstTensorView target,
                                                     ConstTensorView head_weight,
                                                     std::span<const AdaptiveTail> tail_weights,
                                                     std::span<const int64_t> cutoffs,
                                                     std::optional<ConstTensorView> head_bias,
                                                     const AdaptiveSoftmaxOptions& options = {});

// torch's log_prob(input): (N, n_classes) row-major f32. Throws softmax::Error.
std::vector<float> adaptive_log_prob(ConstTensorView input, ConstTensorView head_weight,
                                     std::span<const AdaptiveTail> tail_weights,
                                     std::span<const int64_t> cutoffs,
                                     std::optional<ConstTensorView> head_bias, int threads = 0);

// torch's predict(input): (N) class ids. Throws softmax::Error.
std::vector<int64_t> adaptive_predict(ConstTensorView input, ConstTensorView head_weight,
                                      std::span<const AdaptiveTail> tail_weights,
                                      std::span<const int64_t> cutoffs,
                                      std::optional<ConstTensorView> head_bias, int threads = 0);

}  // namespace softmax
