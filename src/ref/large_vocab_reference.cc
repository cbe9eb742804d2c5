// src/ref/large_vocab_reference.cc
#include "src/ref/large_vocab_reference.hpp"

#include <cmath>
#include <limits>

#include "src/ref/reference.hpp"

namespace softmax::ref {

LD dot(const LMat& w, int64_t row, const std::vector<LD>& x) {
  LD s = 0;
  for (int64_t j = 0; j < w.cols; ++j) s += w.at(row, j) * x[static_cast<std::size_t>(j)];
  return s;
}

LD log_sigmoid(LD s) { return s < 0 ? s - std::log1p(std::exp(s)) : -std::log1p(std::exp(-s)); }

LD log_uniform_probability(int64_t k, int64_t range_max) {
  return std::log((static_cast<LD>(k) + 2) / (static_cast<LD>(k) + 1)) /
         std::log(static_cast<LD>(range_max) + 1);
}

LD sampled_softmax_loss(const LMat& w, const std::vector<LD>& b, const std::vector<LD>& x,
                        const std::vector<int64_t>& labels, const std::vector<int64_t>& sampled,
                        const std::vector<LD>& true_expected,
                        const std::vector<LD>& sampled_expected, bool remove_accidental_hits,
                        bool subtract_log_q) {
  std::vector<LD> logits;
  LD mean = 0;
  for (std::size_t j = 0; j < labels.size(); ++j) {
    const auto t = static_cast<std::size_t>(labels[j]);
    LD a = dot(w, labels[j], x) + b[t];
    if (subtract_log_q) a -= std::log(true_expected[j]);
    logits.push_back(a);
    mean += a / static_cast<LD>(labels.size());
  }
  for (std::size_t s = 0; s < sampled.size(); ++s) {
    bool hit = false;
    for (int64_t t : labels) hit = hit || t == sampled[s];
    if (remove_accidental_hits && hit) continue;  // probability 0
    LD c = dot(w, sampled[s], x) + b[static_cast<std::size_t>(sampled[s])];
    if (subtract_log_q) c -= std::log(sampled_expected[s]);
    logits.push_back(c);
  }
  return logsumexp(logits) - mean;
}

LD full_softmax_loss(const LMat& w, const std::vector<LD>& b, const std::vector<LD>& x, int64_t t,
                     std::vector<LD>* grad_x) {
  std::vector<LD> z(static_cast<std::size_t>(w.rows));
  for (int64_t k = 0; k < w.rows; ++k)
    z[static_cast<std::size_t>(k)] = dot(w, k, x) + b[static_cast<std::size_t>(k)];
  const std::vector<LD> p = softmax(z);
  if (grad_x) {
    grad_x->assign(x.size(), 0);
    for (int64_t k = 0; k < w.rows; ++k) {
      const LD c = p[static_cast<std::size_t>(k)] - (k == t ? 1 : 0);
      for (int64_t j = 0; j < w.cols; ++j) (*grad_x)[static_cast<std::size_t>(j)] += c * w.at(k, j);
    }
  }
  return logsumexp(z) - z[static_cast<std::size_t>(t)];
}

LD hierarchical_log_prob(const LMat& w, const std::vector<LD>& b, const std::vector<LD>& h,
                         const std::vector<int32_t>& path, const std::vector<uint8_t>& code) {
  LD lp = 0;
  for (std::size_t q = 0; q < path.size(); ++q) {
    const LD s = dot(w, path[q], h) + (b.empty() ? 0 : b[static_cast<std::size_t>(path[q])]);
    lp += log_sigmoid(code[q] ? s : -s);
  }
  return lp;
}

std::vector<LD> adaptive_log_prob(const std::vector<LD>& x, const LMat& head,
                                  const std::vector<LD>& head_bias, const std::vector<LMat>& proj,
                                  const std::vector<LMat>& out,
                                  const std::vector<int64_t>& cutoffs) {
  std::vector<LD> z(static_cast<std::size_t>(head.rows));
  for (int64_t k = 0; k < head.rows; ++k) {
    z[static_cast<std::size_t>(k)] =
        dot(head, k, x) + (head_bias.empty() ? 0 : head_bias[static_cast<std::size_t>(k)]);
  }
  const std::vector<LD> hl = log_softmax(z);
  std::vector<LD> lp(hl.begin(), hl.begin() + cutoffs[0]);
  for (std::size_t c = 0; c < proj.size(); ++c) {
    std::vector<LD> p(static_cast<std::size_t>(proj[c].rows));
    for (int64_t k = 0; k < proj[c].rows; ++k) p[static_cast<std::size_t>(k)] = dot(proj[c], k, x);
    std::vector<LD> o(static_cast<std::size_t>(out[c].rows));
    for (int64_t k = 0; k < out[c].rows; ++k) o[static_cast<std::size_t>(k)] = dot(out[c], k, p);
    for (LD v : log_softmax(o)) lp.push_back(v + hl[static_cast<std::size_t>(cutoffs[0]) + c]);
  }
  return lp;
}

}  // namespace softmax::ref
