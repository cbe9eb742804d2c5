// src/cuda/backward.cu: softmax_backward / log_softmax_backward rows, in the CPU's reduction
// order (src/cpu/backward_kernels.cc): per 2048-element block, f32 rows sum dy * y (or dy) in
// 64 f32 lanes (element j into lane j mod 64) folded 64 -> 32 -> 16 then by a tree; f64 rows in
// 32 compensated f64 lanes folded in lane order; blocks combine by TwoSum in block order.
// A warp owns a block: lane L holds lanes L and L + 32 (f32) or lane L (f64).
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>

#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/launch.hpp"
#include "src/cuda/numerics.cuh"

namespace softmax::cuda {
namespace dev {

constexpr int kTrainBlock = 2048;
constexpr unsigned kFullMask = 0xFFFFFFFFu;

template <class XS>
__device__ double warp_block_dot(const typename XS::Mem* y, const typename XS::Mem* dy, int len,
                                 bool prod) {
  using T = typename XS::Compute;
  const int lane = static_cast<int>(threadIdx.x & 31);
  if constexpr (sizeof(T) == 4) {
    float a0 = 0.0f, a1 = 0.0f;
    for (int base = 0; base < len; base += 64) {
      const int i0 = base + lane, i1 = base + 32 + lane;
      if (i0 < len) {
        const float g = num::widen(XS(), dy[i0]);
        a0 = a0 + (prod ? g * num::widen(XS(), y[i0]) : g);
      }
      if (i1 < len) {
        const float g = num::widen(XS(), dy[i1]);
        a1 = a1 + (prod ? g * num::widen(XS(), y[i1]) : g);
      }
    }
    float a = a0 + a1;
    for (int off = 16; off >= 1; off >>= 1) a = a + __shfl_down_sync(kFullMask, a, off);
    return static_cast<double>(__shfl_sync(kFullMask, a, 0));
  } else {
    double acc = 0.0, comp = 0.0;
    for (int i = lane; i < len; i += 32) {
      const double g = dy[i];
      const double yv = prod ? y[i] : 0.0;
      const double p = prod ? g * yv : g;
      double lo;
      acc = num::two_sum(acc, p, lo);
      comp = comp + (prod ? lo + ::fma(g, yv, -p) : lo);
    }
    double s = 0.0, err = 0.0;
    for (int j = 0; j < 32; ++j) {
      const double a = __shfl_sync(kFullMask, acc, j);
      const double c = __shfl_sync(kFullMask, comp, j);
      double lo;
      const double hi = num::two_sum(s, a, lo);
      err += lo + c;
      s = hi;
    }
    return s + err;
  }
}

template <class XS, class DS>
__device__ void apply_range(const typename XS::Mem* y, const typename XS::Mem* dy,
                            typename DS::Mem* dx, int begin, int end, int tid, int nt, double s_d,
                            double inv_t_d, bool prod) {
  using T = typename XS::Compute;
  const T s = static_cast<T>(s_d);
  const T inv_t = static_cast<T>(inv_t_d);
  const bool scaled = inv_t != T(1);
  for (int i = begin + tid; i < end; i += nt) {
    const T yv = num::widen(XS(), y[i]);
    const T g = num::widen(XS(), dy[i]);
    T r;
    if (prod) {
      r = yv * (g - s);
    } else {
      const T e = num::exp_nonpositive(yv < T(0) ? yv : T(0), T(0));
      r = g - e * s;
    }
    dx[i] = num::narrow(DS(), scaled ? r * inv_t : r);
  }
}

// n <= 2048: warp w of block b handles row b * 4 + w.
template <class XS, class DS>
__global__ void __launch_bounds__(128)
    backward_warp_kernel(const typename XS::Mem* y, const typename XS::Mem* dy, int64_t stride,
                         typename DS::Mem* dx, int64_t dx_stride, int64_t rows, int n, double inv_t,
                         bool prod) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (r >= rows) return;
  const auto* yr = y + r * stride;
  const auto* dr = dy + r * stride;
  const double v = warp_block_dot<XS>(yr, dr, n, prod);
  double c = 0.0;
  const double s = num::two_sum_acc(0.0, v, c) + c;
  apply_range<XS, DS>(yr, dr, dx + r * dx_stride, 0, n, static_cast<int>(threadIdx.x & 31), 32, s,
                      inv_t, prod);
}

// Long rows, kernel 1: the sum of every 2048-element block (8 warps per thread block).
template <class XS>
__global__ void __launch_bounds__(256)
    backward_block_sums_kernel(const typename XS::Mem* y, const typename XS::Mem* dy,
                               int64_t stride, int64_t rows, int n, int blocks, bool prod,
                               double* sums) {
  const int64_t id = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  if (id >= rows * blocks) return;
  const int64_t r = id / blocks;
  const int b = static_cast<int>(id % blocks);
  const int64_t off = r * stride + static_cast<int64_t>(b) * kTrainBlock;
  const double v =
      warp_block_dot<XS>(y + off, dy + off, min(kTrainBlock, n - b * kTrainBlock), prod);
  if ((threadIdx.x & 31) == 0) sums[id] = v;
}

// Long rows, kernel 2: each thread block merges its row's block sums in block order and writes
// one 2048-element block of dx.
template <class XS, class DS>
__global__ void __launch_bounds__(256)
    backward_apply_kernel(const typename XS::Mem* y, const typename XS::Mem* dy, int64_t stride,
                          typename DS::Mem* dx, int64_t dx_stride, int n, int blocks,
                          const double* sums, double inv_t, bool prod) {
  __shared__ double s_row;
  const int64_t id = blockIdx.x;
  const int64_t r = id / blocks;
  const int b = static_cast<int>(id % blocks);
  if (threadIdx.x == 0) {
    double s = 0.0, c = 0.0;
    for (int k = 0; k < blocks; ++k) s = num::two_sum_acc(s, sums[r * blocks + k], c);
    s_row = s + c;
  }
  __syncthreads();
  const int begin = b * kTrainBlock, end = min(n, begin + kTrainBlock);
  apply_range<XS, DS>(y + r * stride, dy + r * stride, dx + r * dx_stride, begin, end,
                      static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), s_row, inv_t,
                      prod);
}

}  // namespace dev

namespace {

template <class XS, class DS>
void launch_backward(const BackwardArgs& a, const BackwardPlan& plan, void* ws, cudaStream_t st) {
  const auto* y = static_cast<const typename XS::Mem*>(a.y);
  const auto* dy = static_cast<const typename XS::Mem*>(a.dy);
  auto* dx = static_cast<typename DS::Mem*>(a.dx);
  double inv_t = 1.0 / a.temperature;  // as the CPU op (src/core/backward.cc)
  if (!(inv_t <= DBL_MAX)) inv_t = DBL_MAX;
  if (a.dtype != DType::f64) inv_t = std::min(inv_t, static_cast<double>(FLT_MAX));
  const bool prod = a.mode == RowMode::kSoftmax;
  const int n = static_cast<int>(a.n);
  const auto blocks = static_cast<int>(plan.blocks);
  if (plan.strategy == Strategy::kWarpPerRow) {
    dev::backward_warp_kernel<XS, DS><<<grid1(plan.grid_x), 128, 0, st>>>(
        y, dy, a.stride, dx, a.dx_stride, a.rows, n, inv_t, prod);
  } else {
    auto* sums = static_cast<double*>(ws);
    dev::backward_block_sums_kernel<XS><<<grid1((a.rows * blocks + 7) / 8), 256, 0, st>>>(
        y, dy, a.stride, a.rows, n, blocks, prod, sums);
    dev::backward_apply_kernel<XS, DS><<<grid1(a.rows * blocks), 256, 0, st>>>(
        y, dy, a.stride, dx, a.dx_stride, n, blocks, sums, inv_t, prod);
  }
  check_launch(prod ? "softmax_backward" : "log_softmax_backward");
}

template <class XS>
void launch_backward_dx(const BackwardArgs& a, const BackwardPlan& plan, void* ws,
                        cudaStream_t st) {
  switch (a.dx_dtype) {
    case DType::bf16: return launch_backward<XS, num::BF16>(a, plan, ws, st);
    case DType::f16: return launch_backward<XS, num::F16>(a, plan, ws, st);
    default: return launch_backward<XS, num::F32>(a, plan, ws, st);
  }
}

}  // namespace

std::size_t backward_workspace_bytes(const BackwardArgs& a, int device) {
  return plan_backward(a, device_caps(device)).workspace_bytes;
}

void backward(const BackwardArgs& a, void* workspace, std::size_t workspace_bytes, void* stream) {
  const BackwardPlan plan = plan_backward(a, device_caps());
  const char* op = a.mode == RowMode::kSoftmax ? "softmax_backward" : "log_softmax_backward";
  check_workspace(op, plan.workspace_bytes, workspace, workspace_bytes);
  log_plan(op, a.rows, a.n, a.dtype, a.dx_dtype, strategy_name(plan.strategy), plan.why);
  if (a.rows == 0 || a.n == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  switch (a.dtype) {
    case DType::f64: return launch_backward<num::F64, num::F64>(a, plan, workspace, st);
    case DType::bf16: return launch_backward_dx<num::BF16>(a, plan, workspace, st);
    case DType::f16: return launch_backward_dx<num::F16>(a, plan, workspace, st);
    default: return launch_backward_dx<num::F32>(a, plan, workspace, st);
  }
}

}  // namespace softmax::cuda
