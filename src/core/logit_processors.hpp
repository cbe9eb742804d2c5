// src/core/logit_processors.hpp: the row-level engine of the logit processors
// (softmax/logit_processors.hpp), shared by apply_penalties and the sampling ops.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "softmax/logit_processors.hpp"

namespace softmax::detail {

// Every rule of softmax/logit_processors.hpp for B = rows, V = vocab; throws softmax::Error
// naming `op` and the argument.
void check_processors(const char* op, const LogitProcessors& p, int64_t rows, int64_t vocab);

// False when every processor is off (the logits pass through unchanged).
bool processors_active(const LogitProcessors& p);

// Row r's slice of a TokenLists (the shared list when offsets is empty).
std::span<const int64_t> row_list(const TokenLists& l, int64_t r);

// Applies the processors to row r, x: (n) contiguous in the compute type (float or double).
// Holds the scratch of one thread (reused across rows).
class RowProcessor {
 public:
  template <class T>
  void apply(const LogitProcessors& p, int64_t r, T* x, int64_t n);

 private:
  std::vector<int64_t> sorted_;
};

}  // namespace softmax::detail
