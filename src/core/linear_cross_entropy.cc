// src/core/linear_cross_entropy.cc: cross-entropy of hidden @ weight^T without the (N, V)
// logits (Cut Cross-Entropy, Wijmans et al. 2024; Liger Kernel's fused linear cross-entropy).
//
//   hidden H: (N, D) f32, weight W: (V, D) f32, targets t: (N) i32/i64.
//   Pass 1, per vocabulary chunk [v0, v0 + len): L = H W[v0:v0+len]^T (N x len, oneDNN sgemm);
//     each row's chunk (max, sum exp) merges into a running (m, s) (online normaliser, Milakov &
//     Gimelshein 2018); the target logit and, for label smoothing, sum_c w_c L_c are picked up.
//   Pass 2 (only when a gradient is asked for), per chunk: recompute L, overwrite it with the
//     logit gradient G (the same per-row coefficients as cross_entropy), then
//     grad_hidden += G W_c and grad_weight[v0:v0+len] = G^T H (sgemm).
//   Extra memory: N x chunk floats plus O(N) per-row state; never N x V.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <omp.h>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/cpu/gemm.hpp"
#include "src/core/exec.hpp"
#include "src/core/cross_entropy_impl.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/training_kernels.hpp"

namespace softmax {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
// Automatic chunk: the N x chunk f32 logits block takes about this many bytes.
constexpr int64_t kAutoChunkBytes = int64_t{8} << 20;
constexpr int64_t kMinAutoChunk = 256;

int64_t chunk_columns(int64_t n, int64_t v, const CrossEntropyOptions& o) {
  int64_t c = o.vocab_chunk;
  if (c == 0) c = std::max<int64_t>(kMinAutoChunk, kAutoChunkBytes / (4 * std::max<int64_t>(n, 1)));
  return std::max<int64_t>(1, std::min(c, std::max<int64_t>(v, 1)));
}

// A matrix view (rows, cols) f32 with unit column stride; returns the leading dimension.
int64_t check_matrix(const char* op, const char* arg, const ConstTensorView& m, int64_t rows,
                     int64_t cols, bool output) {
  if (m.dtype != DType::f32) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(m.dtype), "must be f32");
  }
  const std::vector<int64_t> want{rows, cols};
  if (m.shape != want) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + detail::shape_str(m.shape),
                "must be " + detail::shape_str(want));
  }
  const int64_t ld = rows <= 1 ? std::max<int64_t>(cols, 1) : m.strides[0];
  if ((cols > 1 && m.strides[1] != 1) || ld < cols || ld < 1) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, "strides " + detail::shape_str(m.strides),
                std::string("must be row-major with unit column stride (row stride >= ") +
                    std::to_string(cols) + ")" + (output ? "" : " for the BLAS products"));
  }
  return ld;
}



}  // namespace

int64_t linear_cross_entropy_workspace_bytes(int64_t n, int64_t d, int64_t v,
                                             const CrossEntropyOptions& o) {
  (void)d;
  const int64_t chunk = chunk_columns(n, v, o);
  // Logits block + per-row m, s, target logit, weighted sum, loss, lse (f64) + class weights.
  return n * chunk * 4 + n * 6 * 8 + v * 8 + (o.weight ? v * 4 : 0);
}

void linear_cross_entropy(ConstTensorView hidden, ConstTensorView weight, ConstTensorView targets,
                          const LinearCrossEntropyOutputs& out, const CrossEntropyOptions& o,
                          const Context& context) {
  const detail::ExecScope exec_scope("linear_cross_entropy", context, o.threads);
  const char* op = "linear_cross_entropy";
  detail::check_view(op, "hidden", hidden);
  detail::check_view(op, "weight", weight);
  detail::check_view(op, "targets", targets);
  if (hidden.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "hidden", "shape " + detail::shape_str(hidden.shape),
                "must be (N, D)");
  }
  if (weight.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "weight", "shape " + detail::shape_str(weight.shape),
                "must be (V, D)");
  }
  const int64_t n = hidden.shape[0], d = hidden.shape[1], v = weight.shape[0];
  const int64_t ldh = check_matrix(op, "hidden", hidden, n, d, false);
  const int64_t ldw = check_matrix(op, "weight", weight, v, d, false);
  if (targets.dtype != DType::i32 && targets.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "targets", dtype_name(targets.dtype),
                "must be i32 or i64 class ids (soft targets are not supported here)");
  }
  detail::check_same_shape(op, "targets", {n}, targets.shape);
  detail::check_ce_options(op, o, true);
  bool has_w = false;
  const std::vector<double> w = detail::read_class_weights(op, o, v, has_w);

  detail::check_output_view(op, "loss", out.loss);
  detail::check_float_dtype(op, "loss", out.loss.dtype);
  const std::vector<int64_t> loss_shape =
      o.reduction == Reduction::kNone ? std::vector<int64_t>{n} : std::vector<int64_t>{};
  detail::check_same_shape(op, "loss", loss_shape, out.loss.shape);
  int64_t ldgh = 0, ldgw = 0;
  if (out.grad_hidden) {
    detail::check_output_view(op, "grad_hidden", *out.grad_hidden);
    ldgh = check_matrix(op, "grad_hidden", *out.grad_hidden, n, d, true);
  }
  if (out.grad_weight) {
    detail::check_output_view(op, "grad_weight", *out.grad_weight);
    ldgw = check_matrix(op, "grad_weight", *out.grad_weight, v, d, true);
  }
  const std::vector<double> go = detail::read_grad_output(op, o, {n});
  if (out.lse) {
    detail::check_output_view(op, "lse", *out.lse);
    detail::check_float_dtype(op, "lse", out.lse->dtype);
    detail::check_same_shape(op, "lse", {n}, out.lse->shape);
  }
  std::vector<std::pair<const char*, ConstTensorView>> ins{
      {"hidden", hidden}, {"weight", weight}, {"targets", targets}};
  if (o.weight) ins.emplace_back("options.weight", *o.weight);
  if (o.grad_output) ins.emplace_back("grad_output", *o.grad_output);
  std::vector<std::pair<const char*, ConstTensorView>> outs{{"loss", out.loss}};
  if (out.grad_hidden) outs.emplace_back("grad_hidden", *out.grad_hidden);
  if (out.grad_weight) outs.emplace_back("grad_weight", *out.grad_weight);
  if (out.lse) outs.emplace_back("lse", *out.lse);
  for (std::size_t i = 0; i < outs.size(); ++i) {
    for (const auto& in : ins) {
      detail::check_no_overlap(op, in.second, outs[i].second, false, outs[i].first, in.first);
    }
    for (std::size_t j = 0; j < i; ++j) {
      detail::check_no_overlap(op, outs[j].second, outs[i].second, false, outs[i].first,
                               outs[j].first);
    }
  }
  const std::vector<int64_t> t = detail::read_targets(op, targets, v, o.ignore_index);
  // Valid: nothing has been written so far.

  const int threads = detail::current_exec().threads;
  const cpu::GemmThreads gemm_threads(threads);
  const auto* H = static_cast<const float*>(hidden.data);
  const auto* W = static_cast<const float*>(weight.data);
  const int64_t chunk = chunk_columns(n, v, o);
  const double eps = o.label_smoothing, z = o.z_loss, cd = static_cast<double>(v);
  double w_sum = 0.0;
  for (double x : w) w_sum += x;
  std::vector<float> wf;
  if (has_w) wf.assign(w.begin(), w.end());

  std::vector<float> L(static_cast<std::size_t>(n * chunk));
  std::vector<double> m(static_cast<std::size_t>(n), -kInf), s(static_cast<std::size_t>(n), 0.0);
  std::vector<double> xt(static_cast<std::size_t>(n), 0.0), dotw(static_cast<std::size_t>(n), 0.0);
  std::vector<unsigned char> nan_row(static_cast<std::size_t>(n), 0);
  const cpu::CrossEntropyKernels& k = cpu::cross_entropy_kernels();
  const bool par = n * chunk >= detail::kMinParallelElems;

  // Pass 1: online (max, sum) over vocabulary chunks.
  for (int64_t v0 = 0; v0 < v; v0 += chunk) {
    const int64_t len = std::min(chunk, v - v0);
    cpu::sgemm(op, 'N', 'T', n, len, d, H, ldh, W + v0 * ldw, ldw, 0.0f, L.data(), chunk);
    detail::parallel_for(n, par ? threads : 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* row = L.data() + i * chunk;
        const cpu::RowMaxSum st = k.row_stats(row, DType::f32, len);
        const auto u = static_cast<std::size_t>(i);
        if (st.has_nan) nan_row[u] = 1;
        if (!nan_row[u] && st.max > -kInf) {
          if (st.max == kInf || m[u] == kInf) {
            m[u] = kInf;
          } else if (st.max > m[u]) {
            s[u] = s[u] * std::exp(m[u] - st.max) + st.sum;
            m[u] = st.max;
          } else {
            s[u] += st.sum * std::exp(st.max - m[u]);
          }
        }
        if (t[u] >= v0 && t[u] < v0 + len) xt[u] = row[t[u] - v0];
        if (eps != 0.0) dotw[u] += k.shifted_dot(row, DType::f32, has_w ? wf.data() + v0 : nullptr, len, 0.0);
      }
    });
  }

  // Per-row losses and the reduction.
  std::vector<double> loss(static_cast<std::size_t>(n), 0.0), lse(static_cast<std::size_t>(n));
  double mean_denom = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const bool special = nan_row[u] || !(m[u] > -kInf && m[u] < kInf);
    lse[u] = nan_row[u] ? kNaN : special ? m[u] : m[u] + std::log(s[u]);
    if (t[u] == o.ignore_index) continue;
    const double wt = w[static_cast<std::size_t>(t[u])];
    mean_denom += wt;
    if (special) {
      loss[u] = kNaN;
      continue;
    }
    const double log_s = std::log(s[u]);
    loss[u] = (1.0 - eps) * wt * -((xt[u] - m[u]) - log_s);
    if (eps != 0.0) loss[u] += eps / cd * (w_sum * lse[u] - dotw[u]);
    if (z != 0.0) loss[u] += z * lse[u] * lse[u];
  }
  const detail::ReductionPlan plan = detail::plan_reduction(o, mean_denom);

  // Pass 2: gradients.
  if (out.grad_hidden || out.grad_weight) {
    auto* GH = out.grad_hidden ? static_cast<float*>(out.grad_hidden->data) : nullptr;
    auto* GW = out.grad_weight ? static_cast<float*>(out.grad_weight->data) : nullptr;
    if (GH && v == 0) {
      for (int64_t i = 0; i < n; ++i) std::fill(GH + i * ldgh, GH + i * ldgh + d, 0.0f);
    }
    for (int64_t v0 = 0; v0 < v; v0 += chunk) {
      const int64_t len = std::min(chunk, v - v0);
      cpu::sgemm(op, 'N', 'T', n, len, d, H, ldh, W + v0 * ldw, ldw, 0.0f, L.data(), chunk);
      detail::parallel_for(n, par ? threads : 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* row = L.data() + i * chunk;
          const auto u = static_cast<std::size_t>(i);
          const bool kept = t[u] != o.ignore_index;
          const bool special = nan_row[u] || !(m[u] > -kInf && m[u] < kInf);
          if (!kept || special) {
            std::fill(row, row + len, kept ? static_cast<float>(kNaN) : 0.0f);
            continue;
          }
          const double wt = w[static_cast<std::size_t>(t[u])];
          const double g = go.empty() ? plan.g : plan.g * go[u];
          const auto co = detail::hard_row_coeffs(g, wt, eps, cd, w_sum, z, lse[u], true);
          cpu::CeWrite p{m[u], 1.0 / s[u], std::log(s[u]), co.alpha, eps != 0.0 ? co.beta : 0.0,
                         co.gamma, (t[u] >= v0 && t[u] < v0 + len) ? t[u] - v0 : -1,
                         has_w && eps != 0.0 ? wf.data() + v0 : nullptr, true};
          k.write(row, DType::f32, row, DType::f32, len, p, cpu::RowOut::kGrad);
        }
      });
      if (GH) cpu::sgemm(op, 'N', 'N', n, d, len, L.data(), chunk, W + v0 * ldw, ldw, v0 == 0 ? 0.0f : 1.0f, GH, ldgh);
      if (GW) cpu::sgemm(op, 'T', 'N', len, d, n, L.data(), chunk, H, ldh, 0.0f, GW + v0 * ldgw, ldgw);
    }
  }

  if (o.reduction == Reduction::kNone) {
    for (int64_t i = 0; i < n; ++i) {
      detail::store_loss(out.loss, i * out.loss.strides[0], loss[static_cast<std::size_t>(i)]);
    }
  } else {
    double sum = 0.0;
    for (double l : loss) sum += l;
    detail::store_loss(out.loss, 0, plan.denom == 0.0 ? kNaN : sum / plan.denom);
  }
  if (out.lse) {
    for (int64_t i = 0; i < n; ++i) {
      detail::store_loss(*out.lse, i * out.lse->strides[0], lse[static_cast<std::size_t>(i)]);
    }
  }
}

}  // namespace softmax
