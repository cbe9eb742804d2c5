// src/cuda/cross_entropy.cu: fused cross-entropy forward + backward rows (hard targets), the
// formulas of softmax/cross_entropy.hpp. One thread block per row: pass 1 reads the logits
// once for the online (max, sum exp) statistics and the weighted sums, pass 2 writes the
// gradient (Liger's trick: no probabilities tensor, no second kernel). Every sum has a fixed
// order (thread t owns elements t + 512 k; per-thread partials merge by a fixed tree), so
// results do not depend on the batch or on the run.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/launch.hpp"
#include "src/cuda/numerics.cuh"

namespace softmax::cuda {
namespace dev {

constexpr int kCeThreads = 512;
constexpr double kCeInf = __builtin_huge_val();

// Online partial statistics: max m, s = sum exp(x - m), wx = sum w (x - m), w = sum w, nan.
struct CePart {
  double m, s, wx, w;
  int nan;
};

__device__ __forceinline__ CePart ce_merge(CePart a, CePart b) {
  CePart r;
  r.nan = a.nan | b.nan;
  r.w = a.w + b.w;
  r.m = a.m > b.m ? a.m : b.m;
  const num::InvT<double> one{1.0, 0.0, 1.0, 0};
  const double fa = a.m == r.m ? 1.0 : (a.m == -kCeInf ? 0.0 : num::exp_diff(a.m, r.m, one));
  const double fb = b.m == r.m ? 1.0 : (b.m == -kCeInf ? 0.0 : num::exp_diff(b.m, r.m, one));
  r.s = a.s * fa + b.s * fb;
  // sum w (x - r.m) = sum w (x - a.m) + (a.m - r.m) sum w (only finite maxima shift).
  const double sa = a.w == 0.0 || a.m == r.m ? a.wx : a.wx + (a.m - r.m) * a.w;
  const double sb = b.w == 0.0 || b.m == r.m ? b.wx : b.wx + (b.m - r.m) * b.w;
  r.wx = sa + sb;
  return r;
}

// Fixed-order block reduction of per-thread parts (warp tree, then the warps in order).
__device__ CePart ce_block_reduce(CePart p) {
  __shared__ CePart warp_parts[kCeThreads / 32];
  for (int off = 16; off >= 1; off >>= 1) {
    CePart o;
    o.m = __shfl_down_sync(0xFFFFFFFFu, p.m, off);
    o.s = __shfl_down_sync(0xFFFFFFFFu, p.s, off);
    o.wx = __shfl_down_sync(0xFFFFFFFFu, p.wx, off);
    o.w = __shfl_down_sync(0xFFFFFFFFu, p.w, off);
    o.nan = __shfl_down_sync(0xFFFFFFFFu, p.nan, off);
    p = ce_merge(p, o);
  }
  if ((threadIdx.x & 31) == 0) warp_parts[threadIdx.x >> 5] = p;
  __syncthreads();
  __shared__ CePart total;
  if (threadIdx.x == 0) {
    CePart t = warp_parts[0];
    for (int w = 1; w < kCeThreads / 32; ++w) t = ce_merge(t, warp_parts[w]);
    total = t;
  }
  __syncthreads();
  return total;
}

struct CeParams {
  const int64_t* targets;
  const float* weight;
  int64_t ignore_index;
  double eps, z, grad_scale, normalizer;
  int reduction;        // softmax::Reduction
  const double* denom;  // mean: sum of w_t over kept rows (device), else null
  double* loss_ws;      // rows
  double* loss_rows;
  double* lse_rows;
};

template <class XS, class GS>
__global__ void __launch_bounds__(kCeThreads)
    ce_row_kernel(const typename XS::Mem* x, int64_t xs, typename GS::Mem* grad, int64_t gs, int n,
                  CeParams p) {
  using T = typename XS::Compute;
  const int64_t r = blockIdx.x;
  const auto* xr = x + r * xs;
  const bool smooth = p.eps > 0.0;
  CePart part{-kCeInf, 0.0, 0.0, 0.0, 0};
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kCeThreads) {
    const T v = num::widen(XS(), xr[i]);
    if (v != v) {
      part.nan = 1;
      continue;
    }
    const double vd = static_cast<double>(v);
    const double wi = p.weight ? static_cast<double>(p.weight[i]) : 1.0;
    if (vd > part.m) {
      if (part.s != 0.0) part.s *= num::exp_diff(part.m, vd, num::InvT<double>{1.0, 0.0, 1.0, 0});
      if (part.w != 0.0 && part.m > -kCeInf) part.wx += (part.m - vd) * part.w;
      part.m = vd;
    }
    if (part.m > -kCeInf && part.m < kCeInf) {
      T a, lo;
      num::shifted_arg(v, -static_cast<T>(part.m), num::InvT<T>{T(1), T(0), T(1), 0}, a, lo);
      part.s += static_cast<double>(num::exp_nonpositive(a, lo));
      if (smooth) part.wx += wi * (vd - part.m);
    }
    part.w += wi;
  }
  const CePart st = ce_block_reduce(part);
  const int64_t t = p.targets[r];
  const bool ignored = t == p.ignore_index;
  const bool bad = !ignored && (t < 0 || t >= n);
  const bool special = st.nan || !(st.m > -kCeInf && st.m < kCeInf);
  const double log_s = ::log(st.s);
  const double lse = special ? (st.nan ? __builtin_nan("") : st.m) : st.m + log_s;
  const double nd = static_cast<double>(n);
  double loss = 0.0, wt = 0.0;
  if (bad) {
    loss = __builtin_nan("");
  } else if (!ignored) {
    wt = p.weight ? static_cast<double>(p.weight[t]) : 1.0;
    const double xt = static_cast<double>(num::widen(XS(), xr[t]));
    loss = (1.0 - p.eps) * wt * ((st.m - xt) + log_s);
    if (smooth) loss += (p.eps / nd) * (st.w * log_s - st.wx);
    if (p.z != 0.0) loss += p.z * lse * lse;
  }
  if (threadIdx.x == 0) {
    p.loss_ws[r] = loss;
    if (p.loss_rows) p.loss_rows[r] = loss;
    if (p.lse_rows) p.lse_rows[r] = lse;
  }
  if (grad == nullptr) return;
  auto* gr = grad + r * gs;
  double g = p.grad_scale;
  if (p.reduction == 2)
    g = *p.denom == 0.0 ? 0.0 : g / *p.denom;
  else if (p.reduction == 1)
    g = g / p.normalizer;
  if (ignored || g == 0.0) {
    for (int i = static_cast<int>(threadIdx.x); i < n; i += kCeThreads)
      gr[i] = num::narrow(GS(), T(0));
    return;
  }
  const double ca = g * ((1.0 - p.eps) * wt + (p.eps / nd) * st.w + 2.0 * p.z * lse);
  const double cb = g * (p.eps / nd);
  const double cc = g * (1.0 - p.eps) * wt;
  const double inv_s = 1.0 / st.s;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kCeThreads) {
    double v;
    if (bad || special) {
      v = __builtin_nan("");
    } else {
      const T xi = num::widen(XS(), xr[i]);
      T a, lo;
      num::shifted_arg(xi, -static_cast<T>(st.m), num::InvT<T>{T(1), T(0), T(1), 0}, a, lo);
      const double pc = static_cast<double>(num::exp_nonpositive(a, lo)) * inv_s;
      const double wi = p.weight ? static_cast<double>(p.weight[i]) : 1.0;
      v = ca * pc - cb * wi - (i == t ? cc : 0.0);
    }
    gr[i] = num::narrow(GS(), static_cast<T>(v));
  }
}

// D = sum of w_t over kept rows, in a fixed order (one block).
__global__ void __launch_bounds__(1024)
    ce_denominator_kernel(const int64_t* targets, const float* weight, int64_t ignore_index,
                          int64_t rows, int64_t n, double* out) {
  __shared__ double parts[1024];
  double s = 0.0;
  for (int64_t r = threadIdx.x; r < rows; r += 1024) {
    const int64_t t = targets[r];
    if (t == ignore_index || t < 0 || t >= n) continue;
    s += weight ? static_cast<double>(weight[t]) : 1.0;
  }
  parts[threadIdx.x] = s;
  __syncthreads();
  for (int w = 512; w >= 1; w >>= 1) {
    if (static_cast<int>(threadIdx.x) < w) parts[threadIdx.x] += parts[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = parts[0];
}

// The reduced loss: the row losses summed in a fixed order, then / D (mean) or / normalizer.
__global__ void __launch_bounds__(1024)
    ce_reduce_kernel(const double* loss, int64_t rows, const double* denom, double normalizer,
                     double* out) {
  __shared__ double parts[1024];
  double s = 0.0;
  for (int64_t r = threadIdx.x; r < rows; r += 1024) s += loss[r];
  parts[threadIdx.x] = s;
  __syncthreads();
  for (int w = 512; w >= 1; w >>= 1) {
    if (static_cast<int>(threadIdx.x) < w) parts[threadIdx.x] += parts[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    *out = denom ? (*denom == 0.0 ? __builtin_nan("") : parts[0] / *denom) : parts[0] / normalizer;
}

}  // namespace dev

namespace {

void check_ce(const CrossEntropyArgs& a) {
  const char* op = "cross_entropy";
  auto bad = [&](const char* arg, const std::string& v, const char* rule) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, v, rule);
  };
  const bool f64 = a.dtype == DType::f64;
  const bool f32s = a.dtype == DType::f32 || a.dtype == DType::bf16 || a.dtype == DType::f16;
  if (!f64 && !f32s) {
    throw Error(ErrorKind::kDTypeMismatch, op, "logits", dtype_name(a.dtype),
                "must be f32, f64, bf16 or f16");
  }
  if (a.grad != nullptr) {
    const bool ok = f64 ? a.grad_dtype == DType::f64
                        : a.grad_dtype == DType::f32 || a.grad_dtype == DType::bf16 ||
                              a.grad_dtype == DType::f16;
    if (!ok)
      throw Error(ErrorKind::kDTypeMismatch, op, "grad", dtype_name(a.grad_dtype),
                  "must match the logits' compute type");
  }
  if (a.rows < 0 || a.rows > INT32_MAX) bad("rows", std::to_string(a.rows), "must be in [0, 2^31)");
  if (a.n < 1 || a.n > INT32_MAX) bad("n", std::to_string(a.n), "must be in [1, 2^31)");
  if (a.rows > 1 && a.stride < 0) bad("stride", std::to_string(a.stride), "must be >= 0");
  if (a.rows > 1 && a.grad != nullptr && a.grad_stride < a.n)
    bad("grad_stride", std::to_string(a.grad_stride), "must be >= n");
  if (!(a.label_smoothing >= 0.0 && a.label_smoothing <= 1.0))
    bad("label_smoothing", std::to_string(a.label_smoothing), "must be in [0, 1]");
  if (!(a.z_loss >= 0.0) || !std::isfinite(a.z_loss))
    bad("z_loss", std::to_string(a.z_loss), "must be finite and >= 0");
  if (!(a.normalizer > 0.0) || !std::isfinite(a.normalizer))
    bad("normalizer", std::to_string(a.normalizer), "must be finite and > 0");
  if (!std::isfinite(a.grad_scale))
    bad("grad_scale", std::to_string(a.grad_scale), "must be finite");
  if (a.rows > 0 && (a.logits == nullptr || a.targets == nullptr))
    bad(a.logits ? "targets" : "logits", "null", "must point to device memory");
  if (a.reduction != Reduction::kNone && a.loss_reduced == nullptr && a.grad == nullptr &&
      a.loss_rows == nullptr) {
    bad("loss_reduced", "null", "some output must be set");
  }
}

template <class XS, class GS>
void launch_ce(const CrossEntropyArgs& a, dev::CeParams p, cudaStream_t st) {
  dev::ce_row_kernel<XS, GS><<<grid1(a.rows), dev::kCeThreads, 0, st>>>(
      static_cast<const typename XS::Mem*>(a.logits), a.stride,
      static_cast<typename GS::Mem*>(a.grad), a.grad_stride, static_cast<int>(a.n), p);
}
template <class XS>
void launch_ce_g(const CrossEntropyArgs& a, dev::CeParams p, cudaStream_t st) {
  switch (a.grad_dtype) {
    case DType::bf16: return launch_ce<XS, num::BF16>(a, p, st);
    case DType::f16: return launch_ce<XS, num::F16>(a, p, st);
    default: return launch_ce<XS, num::F32>(a, p, st);
  }
}

}  // namespace

std::size_t cross_entropy_workspace_bytes(const CrossEntropyArgs& a) {
  check_ce(a);
  return static_cast<std::size_t>(a.rows + 1) * sizeof(double);
}

void cross_entropy(const CrossEntropyArgs& a, void* workspace, std::size_t workspace_bytes,
                   void* stream) {
  const std::size_t need = cross_entropy_workspace_bytes(a);
  check_workspace("cross_entropy", need, workspace, workspace_bytes);
  log_plan("cross_entropy", a.rows, a.n, a.dtype, a.grad ? a.grad_dtype : a.dtype, "block-per-row",
           "one block per row: online statistics in one read, the gradient in a second");
  if (a.rows == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  auto* ws = static_cast<double*>(workspace);
  double* denom = ws + a.rows;
  dev::CeParams p{a.targets,
                  a.weight,
                  a.ignore_index,
                  a.label_smoothing,
                  a.z_loss,
                  a.grad_scale,
                  a.normalizer,
                  static_cast<int>(a.reduction),
                  a.reduction == Reduction::kMean ? denom : nullptr,
                  ws,
                  a.loss_rows,
                  a.lse_rows};
  if (a.reduction == Reduction::kMean) {
    dev::ce_denominator_kernel<<<1, 1024, 0, st>>>(a.targets, a.weight, a.ignore_index, a.rows, a.n,
                                                   denom);
  }
  switch (a.dtype) {
    case DType::f64: launch_ce<num::F64, num::F64>(a, p, st); break;
    case DType::bf16: launch_ce_g<num::BF16>(a, p, st); break;
    case DType::f16: launch_ce_g<num::F16>(a, p, st); break;
    default: launch_ce_g<num::F32>(a, p, st); break;
  }
  if (a.reduction != Reduction::kNone && a.loss_reduced != nullptr) {
    dev::ce_reduce_kernel<<<1, 1024, 0, st>>>(ws, a.rows, p.denom, a.normalizer, a.loss_reduced);
  }
  check_launch("cross_entropy");
}

}  // namespace softmax::cuda
