// src/core/tensor.cc: dtype helpers and view arithmetic.
#include <string>

#include "softmax/error.hpp"
#include "softmax/tensor.hpp"
#include "src/base/extent.hpp"

namespace softmax {

std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16:
    case DType::f16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "?";
}

namespace {
// The element count (0 when any dimension is 0, whatever the others are).
int64_t checked_numel(std::span<const int64_t> shape, const char* what) {
  int64_t n = 0;
  switch (detail::element_count(shape.data(), shape.size(), n)) {
    case detail::CountError::kNone: return n;
    case detail::CountError::kNegativeDim: break;
    case detail::CountError::kOverflow:
      throw Error(ErrorKind::kOverflow, what, "shape", "(product)",
                  "the element count overflows int64");
  }
  for (int64_t s : shape) {
    if (s < 0) {
      throw Error(ErrorKind::kInvalidArgument, what, "shape", std::to_string(s),
                  "dimensions must be >= 0");
    }
  }
  return n;
}
}  // namespace

std::vector<int64_t> contiguous_strides(std::span<const int64_t> shape) {
  checked_numel(shape, "contiguous_strides");
  std::vector<int64_t> strides(shape.size());
  detail::c_order_strides(shape.data(), shape.size(), strides.data());
  return strides;
}

int64_t ConstTensorView::numel() const { return checked_numel(shape, "numel"); }
int64_t TensorView::numel() const { return checked_numel(shape, "numel"); }

}  // namespace softmax
