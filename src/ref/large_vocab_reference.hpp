// src/ref/large_vocab_reference.hpp: long double references of the large-vocabulary losses
// (sampled, hierarchical and adaptive softmax), straight from their defining formulas
// (include/softmax/sampled_softmax.hpp, hierarchical_softmax.hpp, adaptive_softmax.hpp): no
// chunking, no sgemm, no shared code with the library beyond the input values.
#pragma once

#include <cstdint>
#include <vector>

namespace softmax::ref {

using LD = long double;

// A dense row-major matrix of long doubles.
struct LMat {
  int64_t rows = 0, cols = 0;
  std::vector<LD> v;
  LD at(int64_t i, int64_t j) const { return v[static_cast<std::size_t>(i * cols + j)]; }
};

LD dot(const LMat& w, int64_t row, const std::vector<LD>& x);
LD log_sigmoid(LD s);

// TensorFlow's log-uniform probability log((k + 2) / (k + 1)) / log(range_max + 1).
LD log_uniform_probability(int64_t k, int64_t range_max);

// Sampled softmax loss of one example x with true classes `labels`, sample set `sampled` and
// expected counts (the library's file comment).
LD sampled_softmax_loss(const LMat& w, const std::vector<LD>& b, const std::vector<LD>& x,
                        const std::vector<int64_t>& labels, const std::vector<int64_t>& sampled,
                        const std::vector<LD>& true_expected,
                        const std::vector<LD>& sampled_expected, bool remove_accidental_hits,
                        bool subtract_log_q);

// Full softmax cross-entropy -log softmax(W x + b)[t] and its gradient with respect to x.
LD full_softmax_loss(const LMat& w, const std::vector<LD>& b, const std::vector<LD>& x, int64_t t,
                     std::vector<LD>* grad_x = nullptr);

// log p(k | h) of a tree given each class's path (internal node ids) and codes: the sum of
// log sigma((2c - 1) s_j), s_j = w_j . h + b_j (b empty: no bias).
LD hierarchical_log_prob(const LMat& w, const std::vector<LD>& b, const std::vector<LD>& h,
                         const std::vector<int32_t>& path, const std::vector<uint8_t>& code);

// Adaptive softmax log-probs of one row (all n_classes), torch's definition; tails as pairs
// of (projection (h_i, D), output (osz_i, h_i)); head_bias empty: none.
std::vector<LD> adaptive_log_prob(const std::vector<LD>& x, const LMat& head,
                                  const std::vector<LD>& head_bias, const std::vector<LMat>& proj,
                                  const std::vector<LMat>& out,
                                  const std::vector<int64_t>& cutoffs);

}  // namespace softmax::ref
