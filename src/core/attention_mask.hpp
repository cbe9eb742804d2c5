// src/core/attention_mask.hpp: validated form of softmax::MaskOptions shared by masked_softmax
// and attention: the score transform (scale, softcap, ALiBi, bias) and the keep rule (causal,
// window, boolean mask), element by element, with broadcast bias/mask strides.
// Semantics: include/softmax/attention.hpp. Masks are applied by selection: callers test kept()
// and never add -inf.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"

namespace softmax::detail {

// Strides (in elements) that read `v` broadcast to `target` (NumPy rules, trailing-aligned;
// broadcast dims get stride 0). Throws kShapeMismatch when v does not broadcast.
inline std::vector<int64_t> broadcast_strides(const char* op, const char* arg,
                                              const ConstTensorView& v,
                                              const std::vector<int64_t>& target) {
  const auto r = static_cast<int64_t>(v.shape.size());
  const auto R = static_cast<int64_t>(target.size());
  if (r > R) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + shape_str(v.shape),
                "must broadcast to " + shape_str(target) + " (rank " + std::to_string(r) + " > " +
                    std::to_string(R) + ")");
  }
  std::vector<int64_t> s(static_cast<std::size_t>(R), 0);
  for (int64_t k = 0; k < r; ++k) {
    const int64_t dv = v.shape[static_cast<std::size_t>(r - 1 - k)];
    const int64_t dt = target[static_cast<std::size_t>(R - 1 - k)];
    if (dv == dt && dv != 1) {
      s[static_cast<std::size_t>(R - 1 - k)] = v.strides[static_cast<std::size_t>(r - 1 - k)];
    } else if (dv != 1 && !(dv == dt)) {
      throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + shape_str(v.shape),
                  "must broadcast to " + shape_str(target) +
                      " (NumPy rules: each trailing "
                      "dimension equal or 1)");
    }
  }
  return s;
}

// q, k, v and the f32-computed outputs of attention and its backward: f32, bf16 or f16.
inline void check_attention_dtype(const char* op, const char* arg, DType t) {
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(t),
                "must be f32, bf16 or f16 (attention computes in f32)");
  }
}

// check_no_overlap with the arguments named: `out` may not overlap `in` at all.
inline void check_disjoint(const char* op, const char* in_name, const ConstTensorView& in,
                           const char* out_name, const TensorView& out) {
  check_no_overlap(op, in, out, /*allow_alias=*/false, out_name, in_name);
}

// MaskOptions after validation, for a target score tensor of shape `shape` (rank R >= 2,
// (..., Sq, Sk)); the head axis (ALiBi) is R - 3.
struct MaskPlan {
  double scale = 1.0;
  double softcap = 0.0;
  bool causal = false;
  int64_t offset = 0;  // p(i) = i + offset
  int64_t window_left = -1, window_right = -1;
  const float* slopes = nullptr;  // size H, or null
  const void* bias = nullptr;
  DType bias_dtype = DType::f32;
  std::vector<int64_t> bias_strides;  // rank R, broadcast
  const void* mask = nullptr;
  DType mask_dtype = DType::i32;
  std::vector<int64_t> mask_strides;  // rank R, broadcast

  // Anything that depends on more than (i, j) geometry or needs per-element work?
  bool elementwise() const { return softcap > 0 || slopes || bias || mask; }
  bool geometric() const { return causal || window_left >= 0 || window_right >= 0; }

  // Kept range of keys for query i by geometry alone: [lo, hi] (may be empty: lo > hi).
  void key_range(int64_t i, int64_t sk, int64_t& lo, int64_t& hi) const {
    const int64_t p = i + offset;
    lo = 0;
    hi = sk - 1;
    if (causal && p < hi) hi = p;
    if (window_right >= 0 && p + window_right < hi) hi = p + window_right;
    if (window_left >= 0 && p - window_left > lo) lo = p - window_left;
  }

  // Offset (elements) of element idx (rank R) in a broadcast operand.
  static int64_t offset_of(const std::vector<int64_t>& strides, const int64_t* idx) {
    int64_t o = 0;
    for (std::size_t k = 0; k < strides.size(); ++k) o += idx[k] * strides[k];
    return o;
  }
};

// Validates `o` for scores of shape `shape` (..., Sq, Sk); `default_scale` when o.scale is unset.
inline MaskPlan make_mask_plan(const char* op, const MaskOptions& o,
                               const std::vector<int64_t>& shape, double default_scale) {
  MaskPlan p;
  const auto R = static_cast<int64_t>(shape.size());
  const int64_t sq = shape[static_cast<std::size_t>(R - 2)];
  const int64_t sk = shape[static_cast<std::size_t>(R - 1)];
  p.scale = o.scale.has_value() ? *o.scale : default_scale;
  if (!std::isfinite(p.scale)) {
    throw Error(ErrorKind::kInvalidArgument, op, "scale", num_str(p.scale), "must be finite");
  }
  if (!(o.softcap >= 0) || !std::isfinite(o.softcap)) {
    throw Error(ErrorKind::kInvalidArgument, op, "softcap", num_str(o.softcap),
                "must be 0 (off) or finite and > 0");
  }
  p.softcap = o.softcap;
  if (o.window_left < -1) {
    throw Error(ErrorKind::kInvalidArgument, op, "window_left", std::to_string(o.window_left),
                "must be -1 (unbounded) or >= 0");
  }
  if (o.window_right < -1) {
    throw Error(ErrorKind::kInvalidArgument, op, "window_right", std::to_string(o.window_right),
                "must be -1 (unbounded) or >= 0");
  }
  p.window_left = o.window_left;
  p.window_right = o.window_right;
  p.causal = o.causal;
  p.offset = o.align == Align::kBottomRight ? sk - sq : 0;
  if (!o.alibi_slopes.empty()) {
    if (R < 3) {
      throw Error(
          ErrorKind::kShapeMismatch, op, "alibi_slopes",
          std::to_string(o.alibi_slopes.size()) + " slopes",
          "ALiBi needs a head axis: scores of rank >= 3 (..., H, Sq, Sk), got " + shape_str(shape));
    }
    const int64_t h = shape[static_cast<std::size_t>(R - 3)];
    if (static_cast<int64_t>(o.alibi_slopes.size()) != h) {
      throw Error(ErrorKind::kShapeMismatch, op, "alibi_slopes",
                  std::to_string(o.alibi_slopes.size()) + " slopes",
                  "must have one slope per head (" + std::to_string(h) + ")");
    }
    for (float s : o.alibi_slopes) {
      if (!std::isfinite(s)) {
        throw Error(ErrorKind::kInvalidArgument, op, "alibi_slopes", num_str(s),
                    "every slope must be finite");
      }
    }
    p.slopes = o.alibi_slopes.data();
  }
  if (o.bias.data != nullptr || o.bias.rank() > 0) {
    check_view(op, "bias", o.bias);
    check_float_dtype(op, "bias", o.bias.dtype);
    p.bias_strides = broadcast_strides(op, "bias", o.bias, shape);
    p.bias = o.bias.data;
    p.bias_dtype = o.bias.dtype;
  }
  if (o.mask.data != nullptr || o.mask.rank() > 0) {
    check_view(op, "mask", o.mask);
    if (o.mask.dtype != DType::i32 && o.mask.dtype != DType::i64) {
      throw Error(ErrorKind::kDTypeMismatch, op, "mask", dtype_name(o.mask.dtype),
                  "must be i32 or i64 (nonzero = keep)");
    }
    p.mask_strides = broadcast_strides(op, "mask", o.mask, shape);
    p.mask = o.mask.data;
    p.mask_dtype = o.mask.dtype;
  }
  // A tensor with zero elements may carry null data; never dereference it then.
  if (p.bias && o.bias.numel() == 0) p.bias = nullptr;
  if (p.mask && o.mask.numel() == 0) p.mask = nullptr;
  return p;
}

// One row's view of a plan: query i of head h; bias/mask offsets of element (row, j=0) and
// their strides along j.
struct MaskRow {
  const MaskPlan* plan;
  int64_t i = 0;
  double slope = 0;  // 0 when no ALiBi
  bool has_slope = false;
  const char* bias = nullptr;
  int64_t bias_step = 0;
  const char* mask = nullptr;
  int64_t mask_step = 0;

  // idx: the row's index over dims 0..R-2 (the last, R-2, is the query i), R = plan rank.
  MaskRow(const MaskPlan& p, const int64_t* idx, int64_t rank) : plan(&p) {
    i = idx[rank - 2];
    if (p.slopes) {
      slope = p.slopes[idx[rank - 3]];
      has_slope = true;
    }
    if (p.bias) {
      const int64_t es = static_cast<int64_t>(dtype_size(p.bias_dtype));
      int64_t o = 0;
      for (int64_t k = 0; k < rank - 1; ++k) o += idx[k] * p.bias_strides[k];
      bias = static_cast<const char*>(p.bias) + o * es;
      bias_step = p.bias_strides[rank - 1] * es;
    }
    if (p.mask) {
      const int64_t es = static_cast<int64_t>(dtype_size(p.mask_dtype));
      int64_t o = 0;
      for (int64_t k = 0; k < rank - 1; ++k) o += idx[k] * p.mask_strides[k];
      mask = static_cast<const char*>(p.mask) + o * es;
      mask_step = p.mask_strides[rank - 1] * es;
    }
  }

  // Kept by the boolean mask (geometry is checked through key_range).
  bool mask_keeps(int64_t j) const {
    if (!mask) return true;
    const char* m = mask + j * mask_step;
    if (plan->mask_dtype == DType::i32) return *reinterpret_cast<const int32_t*>(m) != 0;
    return *reinterpret_cast<const int64_t*>(m) != 0;
  }

  // The elementwise part of the transform, applied to x = scale * s already rounded to T:
  // softcap, ALiBi, bias (in that order).
  template <typename T>
  T finish(T x, int64_t j) const {
    if (plan->softcap > 0) {
      const T cap = static_cast<T>(plan->softcap);
      x = cap * std::tanh(x / cap);
    }
    if (has_slope) {
      const int64_t d = i + plan->offset - j;
      x = x - static_cast<T>(slope) * static_cast<T>(d < 0 ? -d : d);
    }
    if (bias) {
      x = x + static_cast<T>(load_as_double(bias + j * bias_step, plan->bias_dtype, 0));
    }
    return x;
  }
};

// Index of row r (over dims[0..n)) in row-major order, written into idx.
inline void unravel(int64_t r, const int64_t* dims, int64_t n, int64_t* idx) {
  for (int64_t k = n; k-- > 0;) {
    idx[k] = dims[k] == 0 ? 0 : r % dims[k];
    r = dims[k] == 0 ? 0 : r / dims[k];
  }
}

}  // namespace softmax::detail
