// src/cpu/sampling_kernels.hpp: the per-target SIMD kernels of sampling (no SIMD types here).
// Implemented in src/cpu/sampling_kernels.cc (Highway foreach_target), one table per target,
// fetched once per public call. Every kernel is "consistent arithmetic" (row_ops-inl.h): the
// same bits on every SIMD target.
#pragma once

#include <cstdint>

#include "softmax/tensor.hpp"

namespace softmax::cpu {

// Range of a row: the largest and smallest non-NaN element and whether a NaN occurs.
// (max = -inf, min = +inf for a row of NaNs only.)
struct RowRange {
  double max;
  double min;
  bool has_nan;
};

struct SamplingKernelTable {
  const char* target_name;
  // x: (n) contiguous, dtype f32, f64, bf16 or f16, n >= 1.
  RowRange (*row_range)(const void* x, DType dtype, int64_t n);
  // Tempered weights, computed in f32: w[i] = exp((x[i] - max) / t) with the subtraction, the
  // division (skipped when t == 1: x / 1 == x) and exp (row_ops-inl.h ExpNonPositive, <= 1 ulp)
  // in f32. x: (n) of f32, bf16 or f16 without NaN or +inf; max: the row's max (finite);
  // t: finite, > 0. w: (n) f32, w[i] in [0, 1], exactly 1 where x[i] == max, 0 for -inf.
  void (*weights_f32)(const void* x, DType dtype, int64_t n, float max, float t, float* w);
  // The same in f64 for f64 rows.
  void (*weights_f64)(const double* x, int64_t n, double max, double t, double* w);
};

const SamplingKernelTable& sampling_kernels();

}  // namespace softmax::cpu
