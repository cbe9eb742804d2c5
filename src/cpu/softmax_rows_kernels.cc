// src/cpu/softmax_rows_kernels.cc: many short rows in one call (softmax, log-softmax, logsumexp of
// rows of at most kBlockElems), compiled once per SIMD target: the entry point and the f64 and
// f32 inputs (bf16 / f16 inputs: softmax_rows_bf16_kernels.cc, softmax_rows_f16_kernels.cc;
// the kernel itself: softmax_rows-inl.h).
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/cpu/softmax_rows_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/cpu/kernels.hpp"
#include "src/cpu/softmax_rows-inl.h"

HWY_BEFORE_NAMESPACE();
namespace softmax {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void RowsImpl(const void* x, DType x_dtype, int64_t x_stride, void* y, DType y_dtype,
              int64_t y_stride, int64_t rows, int64_t n, const cpu::Temperature& t, RowMode mode) {
  switch (x_dtype) {
    case DType::f64:
      RowsT(hn::ScalableTag<double>(), static_cast<const double*>(x), x_stride,
            static_cast<double*>(y), y_stride, rows, n, t, mode);
      return;
    case DType::bf16:
      RowsBF16In(static_cast<const hwy::bfloat16_t*>(x), x_stride, y, y_dtype, y_stride, rows, n, t,
                 mode);
      return;
    case DType::f16:
      RowsF16In(static_cast<const hwy::float16_t*>(x), x_stride, y, y_dtype, y_stride, rows, n, t,
                mode);
      return;
    default:
      RowsFromF32Family(static_cast<const float*>(x), x_stride, y, y_dtype, y_stride, rows, n, t,
                        mode);
      return;
  }
}

void FillRowsKernels(cpu::KernelTable* t) { t->rows = &RowsImpl; }

}  // namespace HWY_NAMESPACE
}  // namespace softmax
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "src/cpu/target.hpp"

namespace softmax {
HWY_EXPORT(FillRowsKernels);

namespace cpu::detail {
void fill_rows_kernels(int64_t target, KernelTable* table) {
  SOFTMAX_DISPATCH(FillRowsKernels, target)(table);
}
}  // namespace cpu::detail
}  // namespace softmax
#endif  // HWY_ONCE
