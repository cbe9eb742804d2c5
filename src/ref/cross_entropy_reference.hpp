// src/ref/cross_entropy_reference.hpp: long double reference of the cross-entropy family (the
// formulas of softmax/cross_entropy.hpp, PyTorch's): hard or soft targets, class weights,
// ignore_index, label smoothing, z-loss and the reductions, on logits or on log-probabilities
// (nll_loss). The test oracle of cross_entropy, nll_loss and linear_cross_entropy.
#pragma once

#include <cstdint>
#include <vector>

#include "softmax/cross_entropy.hpp"

namespace softmax::ref {

using LD = long double;

struct CrossEntropyProblem {
  int64_t rows = 0, c = 0;
  std::vector<LD> x;       // rows x c: logits (logits = true) or log-probabilities
  std::vector<int64_t> t;  // hard targets (empty when soft)
  std::vector<LD> q;       // soft targets rows x c
  std::vector<LD> w;       // c class weights (empty: all 1)
  bool logits = true;
  int64_t ignore = -100;
  LD eps = 0, z = 0, normalizer = 1;  // label smoothing, z-loss, the sum's divisor
  Reduction red = Reduction::kMean;
};

// Class c's weight (1 without weights).
LD class_weight(const CrossEntropyProblem& p, int64_t c);

// The reduced loss (kNone: the sum of the rows); `rows` (when given) receives each row's loss.
// 0 * log 0 counts as 0 (a class without mass contributes 0 even at log-prob -inf).
LD cross_entropy_loss(const CrossEntropyProblem& p, std::vector<LD>* rows = nullptr);

}  // namespace softmax::ref
