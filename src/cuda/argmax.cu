// src/cuda/argmax.cu: argmax rows: the index of the first maximum of each row, or of its first
// NaN (as the CPU's KernelTable::argmax). Exact (comparisons only), so bit-identical with the CPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/launch.hpp"
#include "src/cuda/numerics.cuh"

namespace softmax::cuda {
namespace dev {

// (value, index) with the rule: a NaN beats any number, then the larger value, then the lower
// index.
struct Best {
  double v;
  int64_t i;
  bool nan;
};
__device__ __forceinline__ Best better(Best a, Best b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  if (a.nan != b.nan) return a.nan ? a : b;
  if (!a.nan && a.v != b.v) return a.v > b.v ? a : b;
  return a.i < b.i ? a : b;
}

template <class XS>
__global__ void __launch_bounds__(256)
    argmax_kernel(const typename XS::Mem* x, int64_t xs, int n, int64_t* out) {
  __shared__ Best warp_best[8];
  const int64_t r = blockIdx.x;
  const auto* xr = x + r * xs;
  Best b{0.0, -1, false};
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) {
    const double v = static_cast<double>(num::widen(XS(), xr[i]));
    b = better(b, Best{v, i, v != v});
  }
  for (int off = 16; off >= 1; off >>= 1) {
    Best o;
    o.v = __shfl_down_sync(0xFFFFFFFFu, b.v, off);
    o.i = __shfl_down_sync(0xFFFFFFFFu, b.i, off);
    o.nan = __shfl_down_sync(0xFFFFFFFFu, static_cast<int>(b.nan), off) != 0;
    b = better(b, o);
  }
  if ((threadIdx.x & 31) == 0) warp_best[threadIdx.x >> 5] = b;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best t = warp_best[0];
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) t = better(t, warp_best[w]);
    out[r] = t.i;
  }
}

}  // namespace dev

void argmax(const void* x, DType dtype, int64_t x_stride, int64_t rows, int64_t n,
            int64_t* index_out, void* stream) {
  if (dtype != DType::f32 && dtype != DType::f64 && dtype != DType::bf16 && dtype != DType::f16) {
    throw Error(ErrorKind::kDTypeMismatch, "argmax", "x", dtype_name(dtype),
                "must be f32, f64, bf16 or f16");
  }
  if (rows < 0 || rows > INT32_MAX) {
    throw Error(ErrorKind::kInvalidArgument, "argmax", "rows", std::to_string(rows),
                "must be in [0, 2^31)");
  }
  if (n < 1 || n > INT32_MAX) {
    throw Error(ErrorKind::kInvalidArgument, "argmax", "n", std::to_string(n),
                "must be in [1, 2^31) (a row needs an element)");
  }
  if (rows > 1 && x_stride < 0) {
    throw Error(ErrorKind::kInvalidArgument, "argmax", "x_stride", std::to_string(x_stride),
                "must be >= 0");
  }
  if (rows == 0) return;
  if (x == nullptr || index_out == nullptr) {
    throw Error(ErrorKind::kInvalidArgument, "argmax", x == nullptr ? "x" : "index_out", "null",
                "must point to device memory");
  }
  auto st = static_cast<cudaStream_t>(stream);
  const int nn = static_cast<int>(n);
  switch (dtype) {
    case DType::f64:
      dev::argmax_kernel<num::F64>
          <<<grid1(rows), 256, 0, st>>>(static_cast<const double*>(x), x_stride, nn, index_out);
      break;
    case DType::bf16:
      dev::argmax_kernel<num::BF16>
          <<<grid1(rows), 256, 0, st>>>(static_cast<const uint16_t*>(x), x_stride, nn, index_out);
      break;
    case DType::f16:
      dev::argmax_kernel<num::F16>
          <<<grid1(rows), 256, 0, st>>>(static_cast<const uint16_t*>(x), x_stride, nn, index_out);
      break;
    default:
      dev::argmax_kernel<num::F32>
          <<<grid1(rows), 256, 0, st>>>(static_cast<const float*>(x), x_stride, nn, index_out);
      break;
  }
  check_launch("argmax");
}

}  // namespace softmax::cuda
