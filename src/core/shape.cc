// src/core/shape.cc: the public axis and shape rules (softmax/shape.hpp), the same functions
// the ops validate with.
#include "softmax/shape.hpp"

#include "src/core/checks.hpp"

namespace softmax {

int64_t normalize_axis(int64_t axis, int64_t rank, const char* op) {
  return detail::normalize_axis(op, axis, rank);
}

std::vector<int64_t> reduced_shape(std::span<const int64_t> shape, int64_t axis, bool keepdims) {
  return detail::reduced_shape(std::vector<int64_t>(shape.begin(), shape.end()), axis, keepdims);
}

}  // namespace softmax
