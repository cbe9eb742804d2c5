// src/cpu/softmax_rows_bf16_kernels.cc: the many-short-rows kernel (softmax_rows-inl.h) for
// bf16 input, compiled once per SIMD target; called by softmax_rows_kernels.cc's entry point.
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/softmax_rows_bf16_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/softmax_rows-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {

void RowsBF16In(const hwy::bfloat16_t* x, int64_t x_stride, void* y, DType y_dtype,
                int64_t y_stride, int64_t rows, int64_t n, const cpu::Temperature& t,
                RowMode mode) {
  RowsFromF32Family(x, x_stride, y, y_dtype, y_stride, rows, n, t, mode);
}

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();
