// src/cpu/training_kernels.hpp: per-target kernel tables of the training path (no SIMD types):
// softmax / log-softmax backward (src/cpu/backward_kernels.cc) and cross-entropy
// (src/cpu/cross_entropy_kernels.cc). Each function works on one contiguous row; src/core
// validates, gathers strided rows, splits rows across threads and forms the losses.
//
// "Compute type": f32 for f32/bf16/f16 storage, f64 for f64. All sums use fixed,
// target-independent lanes (src/cpu/row_ops-inl.h, FoldLanes) within blocks of kTrainBlock
// elements and f64 across blocks, so every SIMD target gives the same bits.
#pragma once

#include <cstdint>

#include "softmax/tensor.hpp"

namespace softmax::cpu {

inline constexpr int64_t kTrainBlock = 2048;

enum class BackwardMode : uint8_t { kSoftmax, kLogSoftmax };

struct BackwardKernels {
  // y, dy: (n) contiguous, both of dtype t. Returns sum_i dy_i * y_i (kSoftmax) or
  // sum_i dy_i (kLogSoftmax).
  double (*row_sum)(const void* y, const void* dy, DType t, int64_t n, BackwardMode mode);
  // dx_i = y_i * (dy_i - s) * inv_t (kSoftmax) or (dy_i - exp(min(y_i, 0)) * s) * inv_t
  // (kLogSoftmax); the multiply by inv_t is skipped when inv_t == 1. dx (n) of dtype dxt
  // (f32/bf16/f16 for f32-computed t, f64 for f64); dx may be exactly y or dy.
  void (*apply)(const void* y, const void* dy, DType t, void* dx, DType dxt, int64_t n, double s,
                double inv_t, BackwardMode mode);
};
const BackwardKernels& backward_kernels();

// Statistics of one row: m = max (non-NaN), sum = sum exp(x - m) (f64), has_nan.
struct RowMaxSum {
  double max;
  double sum;
  bool has_nan;
};

enum class RowOut : uint8_t { kGrad, kLogProb };

// Parameters of CrossEntropyKernels::write.
struct CeWrite {
  double max;      // row max
  double inv_sum;  // 1 / sum exp(x - max)
  double log_sum;  // log(sum exp(x - max))
  double alpha;    // gradient: coefficient of p_i
  double beta;     // gradient: coefficient of v_i (or of 1 when v is null)
  double gamma;    // gradient: subtracted at index `target`
  int64_t target;  // index in [0, n) that gets -gamma, or -1
  const void* v;   // n values of the compute type, or null (all 1)
  bool with_p;     // false: alpha * p_i is dropped (nll_loss, where the input is log-probs)
};

struct CrossEntropyKernels {
  // x: (n) contiguous of dtype t (f32, f64, bf16, f16).
  RowMaxSum (*row_stats)(const void* x, DType t, int64_t n);
  // sum_i v_i * (x_i - shift) (v null: all 1), v of the compute type.
  double (*shifted_dot)(const void* x, DType t, const void* v, int64_t n, double shift);
  // kGrad: out_i = alpha * p_i - beta * v_i - gamma * [i == target], p_i = exp(x_i - max) * inv_sum
  // kLogProb: out_i = (x_i - max) - log_sum (the TwoSum low part of x_i - max added back).
  // out: (n) of dtype ot (f32/bf16/f16 for f32-computed t, f64 for f64); may be exactly x.
  void (*write)(const void* x, DType t, void* out, DType ot, int64_t n, const CeWrite& p,
                RowOut what);
};
const CrossEntropyKernels& cross_entropy_kernels();

}  // namespace softmax::cpu
