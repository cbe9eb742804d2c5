// src/ref/serving_reference.hpp: long double references of the serving-side ops: the logit
// processors (softmax/logit_processors.hpp) and sparsemax (softmax/sparsemax.hpp). Written
// from the definitions, independently of the library's code paths (no shared helpers).
#pragma once

#include <cstdint>
#include <vector>

namespace softmax::ref {

using LD = long double;

// One row of logits after the processors, in the documented order: repetition penalty
// (divide positive, multiply negative), presence / frequency penalties over the counts of
// `prev`, additive bias, banned ids, and EOS ids when generated < min_tokens.
struct ProcessorsRef {
  std::vector<int64_t> prev;
  LD repetition = 1, presence = 0, frequency = 0;
  std::vector<std::pair<int64_t, LD>> bias;
  std::vector<int64_t> banned, eos;
  int64_t min_tokens = 0, generated = 0;
};
std::vector<LD> process_logits(std::vector<LD> x, const ProcessorsRef& p);

// sparsemax(z) of one row of finite values (or -inf), by bisection on tau to full long double
// precision (not the sort-based rule the library uses).
std::vector<LD> sparsemax(const std::vector<LD>& z);
// dx = J^T dy of sparsemax at output y.
std::vector<LD> sparsemax_backward(const std::vector<LD>& y, const std::vector<LD>& dy);

}  // namespace softmax::ref
