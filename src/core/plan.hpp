// src/core/plan.hpp: device-neutral descriptions of one validated call ("plans"). A driver
// (src/core/*_ops.cc) validates its arguments once, resolves the axis and the row geometry, and
// fills a plan; the backend of the tensors' device (src/core/backend.hpp) runs it. Nothing in a
// plan depends on where the memory lives or how the backend splits the work.
#pragma once

#include <cstdint>

#include "softmax/tensor.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax::detail {

enum class AxisOp : uint8_t { kSoftmax, kLogSoftmax, kLogSumExp, kArgmax };

// softmax, log_softmax (y has x's shape), logsumexp and argmax (y: x's shape without the axis, or
// with it kept at size 1; argmax: i64 or i32 indices): rows of g.n elements along the axis,
// g.rows >= 1 of them, g.n >= 1 (drivers return before planning an empty call).
struct AxisPlan {
  const char* op = "";
  AxisOp op_kind = AxisOp::kSoftmax;
  RowGeometry g;
  const void* x = nullptr;
  void* y = nullptr;
  DType x_dtype = DType::f32;
  DType y_dtype = DType::f32;
  double temperature = 1.0;  // checked: finite and > 0
  bool reduction() const { return op_kind == AxisOp::kLogSumExp || op_kind == AxisOp::kArgmax; }
  // The kernels' mode of the softmax family (argmax: unused).
  cpu::RowMode row_mode() const {
    return op_kind == AxisOp::kSoftmax      ? cpu::RowMode::kSoftmax
           : op_kind == AxisOp::kLogSoftmax ? cpu::RowMode::kLogSoftmax
                                            : cpu::RowMode::kLogSumExp;
  }
};

// softmax_backward (kSoftmax) and log_softmax_backward (kLogSoftmax): y and dy of one dtype and
// shape, dx of that shape; gy walks (y -> dx), gd (dy -> dx), with the same rows.
struct BackwardPlan {
  const char* op = "";
  cpu::RowMode mode = cpu::RowMode::kSoftmax;  // kSoftmax or kLogSoftmax
  RowGeometry gy, gd;
  const void* y = nullptr;
  const void* dy = nullptr;
  void* dx = nullptr;
  DType dtype = DType::f32;  // y and dy
  DType dx_dtype = DType::f32;
  double temperature = 1.0;
};

}  // namespace softmax::detail
