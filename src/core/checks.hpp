// src/core/checks.hpp: argument validation shared by every op. Each check throws
// softmax::Error naming the op, the argument, the value and the rule; none writes anything.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "src/base/format.hpp"  // num_str, for the messages of every check
#include "softmax/tensor.hpp"

namespace softmax::detail {

// "(2, 3, 4)".
std::string shape_str(const std::vector<int64_t>& shape);

// Rank/strides agree, dims >= 0, element count and byte extent fit in int64, data is non-null
// and element-aligned (its address a multiple of dtype_size) when the view holds elements, and
// the view lives on the CPU. The one view rule of every op's inputs.
void check_view(const char* op, const char* arg, const ConstTensorView& v);
// As check_view, plus: no two elements of an output share memory (kOverlap). Rule: with the
// dims of size > 1 sorted by |stride|, each |stride| exceeds the span sum (shape_j - 1) *
// |stride_j| of the dims before it (so stride 0 on a dim > 1 is rejected, and so are strides
// that make rows interleave; a few non-overlapping interleaved layouts are rejected too).
void check_output_view(const char* op, const char* arg, const TensorView& v);

// As check_view / check_output_view for the ops that every backend serves (src/core/backend.hpp):
// the view may live on any device (the backend is chosen from it afterwards).
void check_view_any_device(const char* op, const char* arg, const ConstTensorView& v);
void check_output_view_any_device(const char* op, const char* arg, const TensorView& v);

// "cpu" / "cuda".
const char* device_name(Device d) noexcept;
// One tensor argument of a call and where it lives.
struct DeviceArg {
  const char* arg;
  Device device;
};
// The device of a call: every listed tensor's (the first one's). Tensors on different devices
// throw softmax::Error (kInvalidArgument) naming the first two that differ.
Device call_device(const char* op, std::initializer_list<DeviceArg> tensors);

// Normalises axis (negative counts from the end) for a tensor of `rank` >= 1.
int64_t normalize_axis(const char* op, int64_t axis, int64_t rank);

// temperature must be finite and > 0; returns 1 / temperature clamped to the largest finite
// double (so an extreme T never produces inf * 0).
double check_temperature(const char* op, double temperature);

// x must be f32, f64, bf16 or f16.
void check_float_dtype(const char* op, const char* arg, DType t);
// (x, y) must be {f32, bf16, f16} x {f32, bf16, f16} or f64 -> f64.
void check_compute_pair(const char* op, DType x, const char* y_arg, DType y);

void check_same_shape(const char* op, const char* arg, const std::vector<int64_t>& expected,
                      const std::vector<int64_t>& got);

// Shape of a reduction along `axis` (dropped, or 1 with keepdims).
std::vector<int64_t> reduced_shape(const std::vector<int64_t>& shape, int64_t axis, bool keepdims);
// check_same_shape(op, arg, reduced_shape(shape, axis, keepdims), got) without building the
// expected shape unless it throws.
void check_reduced_shape(const char* op, const char* arg, const std::vector<int64_t>& shape,
                         int64_t axis, bool keepdims, const std::vector<int64_t>& got);

// The output y may be exactly x (same data, dtype, shape and strides: in place) when
// `allow_alias`; any other overlap of their byte ranges is rejected. The message names y_arg
// (the output's argument name) and x_arg. The one overlap check of every op.
void check_no_overlap(const char* op, const ConstTensorView& x, const ConstTensorView& y,
                      bool allow_alias, const char* y_arg = "y", const char* x_arg = "x");
void check_no_overlap(const char* op, const ConstTensorView& x, const TensorView& y,
                      bool allow_alias, const char* y_arg = "y", const char* x_arg = "x");

}  // namespace softmax::detail
