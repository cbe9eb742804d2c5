// src/core/linear_cross_entropy.cc: cross-entropy of hidden @ weight^T without the (N, V)
// logits (Cut Cross-Entropy, Wijmans et al. 2024; Liger Kernel's fused linear cross-entropy).
//
//   hidden H: (N, D) f32, weight W: (V, D) f32, targets t: (N) i32/i64.
//   Pass 1, per 32768-class block, per vocabulary chunk [v0, v0 + len) inside it:
//     L = H W[v0:v0+len]^T (N x len, oneDNN sgemm); each row's chunk (max, sum exp) merges into
//     the block's running (m, s) (online normaliser, Milakov & Gimelshein 2018); the target logit
//     and, for label smoothing, sum_c w_c L_c are picked up. The blocks' partials are then merged
//     in class order (the grid a vocabulary-parallel split shares: linear_cross_entropy_rows.hpp).
//   Pass 2 (only when a gradient is asked for), per chunk: recompute L, overwrite it with the
//     logit gradient G (the same per-row coefficients as cross_entropy), then
//     grad_hidden += G W_c and grad_weight[v0:v0+len] = G^T H (sgemm).
//   Extra memory: N x chunk floats plus O(N) per-row state; never N x V.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/cross_entropy_impl.hpp"
#include "src/core/exec.hpp"
#include "src/core/linear_cross_entropy_rows.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/gemm.hpp"
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
  if (c == 0) c = std::max<int64_t>(kMinAutoChunk, kAutoChunkBytes / 4 / std::max<int64_t>(n, 1));
  c = std::min(c, detail::kLceBlock);  // chunks never cross a block boundary
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
  const char* op = "linear_cross_entropy_workspace_bytes";
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"n", n},
                                    {"d", d},
                                    {"v", v},
                                    {"vocab_chunk", o.vocab_chunk}}) {
    if (value < 0) {
      throw Error(ErrorKind::kInvalidArgument, op, name, std::to_string(value), "must be >= 0");
    }
  }
  const int64_t chunk = chunk_columns(n, v, o);
  // Logits block + per-row block partials, target logit, loss, lse (f64) + class weights.
  const int64_t blocks = detail::lce_block_count(0, v);
  int64_t total = 0;
  const auto add = [&](int64_t a, int64_t b, int64_t c) {
    int64_t term;
    if (__builtin_mul_overflow(a, b, &term) || __builtin_mul_overflow(term, c, &term) ||
        __builtin_add_overflow(total, term, &total)) {
      throw Error(ErrorKind::kOverflow, op, "n, d, v",
                  std::to_string(n) + ", " + std::to_string(d) + ", " + std::to_string(v),
                  "the workspace size overflows int64");
    }
  };
  add(n, chunk, 4);
  add(n, blocks + 1, 32);
  add(n, 4, 8);
  add(v, 1, 8);
  if (o.weight) add(v, 1, 4);
  return total;
}

namespace detail {

LceJob prepare_lce(const char* op, const ConstTensorView& hidden, const ConstTensorView& weight,
                   const ConstTensorView& targets, const LinearCrossEntropyOutputs& out,
                   const CrossEntropyOptions& o, int64_t class_count, int64_t offset,
                   bool global_checks) {
  check_view(op, "hidden", hidden);
  check_view(op, "weight", weight);
  check_view(op, "targets", targets);
  if (hidden.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "hidden", "shape " + shape_str(hidden.shape),
                "must be (N, D)");
  }
  if (weight.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "weight", "shape " + shape_str(weight.shape),
                "must be (V, D)");
  }
  LceJob j;
  j.n = hidden.shape[0];
  j.d = hidden.shape[1];
  j.vn = weight.shape[0];
  j.v = class_count < 0 ? j.vn : class_count;
  j.offset = offset;
  j.ldh = check_matrix(op, "hidden", hidden, j.n, j.d, false);
  j.ldw = check_matrix(op, "weight", weight, j.vn, j.d, false);
  if (targets.dtype != DType::i32 && targets.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "targets", dtype_name(targets.dtype),
                "must be i32 or i64 class ids (soft targets are not supported here)");
  }
  check_same_shape(op, "targets", {j.n}, targets.shape);
  check_ce_options(op, o, true);
  if (global_checks) j.w = read_class_weights(op, o, j.v, j.has_w);

  check_output_view(op, "loss", out.loss);
  check_float_dtype(op, "loss", out.loss.dtype);
  const std::vector<int64_t> loss_shape =
      o.reduction == Reduction::kNone ? std::vector<int64_t>{j.n} : std::vector<int64_t>{};
  check_same_shape(op, "loss", loss_shape, out.loss.shape);
  if (out.grad_hidden) {
    check_output_view(op, "grad_hidden", *out.grad_hidden);
    j.ldgh = check_matrix(op, "grad_hidden", *out.grad_hidden, j.n, j.d, true);
    j.GH = static_cast<float*>(out.grad_hidden->data);
  }
  if (out.grad_weight) {
    check_output_view(op, "grad_weight", *out.grad_weight);
    j.ldgw = check_matrix(op, "grad_weight", *out.grad_weight, j.vn, j.d, true);
    j.GW = static_cast<float*>(out.grad_weight->data);
  }
  j.go = read_grad_output(op, o, {j.n});
  if (out.lse) {
    check_output_view(op, "lse", *out.lse);
    check_float_dtype(op, "lse", out.lse->dtype);
    check_same_shape(op, "lse", {j.n}, out.lse->shape);
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
      check_no_overlap(op, in.second, outs[i].second, false, outs[i].first, in.first);
    }
    for (std::size_t k = 0; k < i; ++k) {
      check_no_overlap(op, outs[k].second, outs[i].second, false, outs[i].first, outs[k].first);
    }
  }
  if (!global_checks) return j;
  j.t = read_targets(op, targets, j.v, o.ignore_index);
  j.ignore_index = o.ignore_index;
  j.H = static_cast<const float*>(hidden.data);
  j.W = static_cast<const float*>(weight.data);
  j.chunk = chunk_columns(j.n, j.v, o);
  j.eps = o.label_smoothing;
  j.z = o.z_loss;
  j.w_sum = class_weight_sum(j.w, j.v);
  if (j.has_w) j.wf.assign(j.w.begin(), j.w.end());
  return j;
}

int64_t lce_block_count(int64_t offset, int64_t vn) {
  if (vn <= 0) return 0;
  return (offset + vn - 1) / kLceBlock - offset / kLceBlock + 1;
}

void lce_merge(LceStats& u, const LceStats& b) {
  if (b.nan != 0.0) u.nan = 1.0;
  if (u.nan == 0.0 && b.m > -kInf) {
    if (b.m == kInf || u.m == kInf) {
      u.m = kInf;
    } else if (b.m > u.m) {
      u.s = u.s * std::exp(u.m - b.m) + b.s;
      u.m = b.m;
    } else {
      u.s += b.s * std::exp(b.m - u.m);
    }
  }
  u.dot += b.dot;
}

namespace {

// Calls f(v0, len, block) for every chunk of the classes held, in class order (global ids
// v0; block: the chunk's block index among the held blocks).
template <class F>
void for_each_chunk(const LceJob& j, F&& f) {
  int64_t block = 0;
  for (int64_t b0 = j.offset; b0 < j.offset + j.vn; ++block) {
    const int64_t b1 = std::min(j.offset + j.vn, (b0 / kLceBlock + 1) * kLceBlock);
    for (int64_t v0 = b0; v0 < b1; v0 += j.chunk) f(v0, std::min(j.chunk, b1 - v0), block);
    b0 = b1;
  }
}

}  // namespace

void lce_pass1(const char* op, const LceJob& j, int threads, std::vector<LceStats>& blocks,
               std::vector<double>& xt, std::vector<unsigned char>& owned) {
  const int64_t nb = lce_block_count(j.offset, j.vn);
  blocks.assign(static_cast<std::size_t>(j.n * nb), LceStats{});
  xt.assign(static_cast<std::size_t>(j.n), 0.0);
  owned.assign(static_cast<std::size_t>(j.n), 0);
  if (j.vn == 0 || j.n == 0) return;
  const cpu::GemmThreads gemm_threads(threads);
  std::vector<float> L(static_cast<std::size_t>(j.n * j.chunk));
  const cpu::CrossEntropyKernels& k = cpu::cross_entropy_kernels();
  const bool par = j.n * j.chunk >= kMinParallelElems;
  for_each_chunk(j, [&](int64_t v0, int64_t len, int64_t block) {
    const int64_t r0 = v0 - j.offset;  // weight row
    cpu::sgemm(op, 'N', 'T', j.n, len, j.d, j.H, j.ldh, j.W + r0 * j.ldw, j.ldw, 0.0f, L.data(),
               j.chunk);
    parallel_for(j.n, par ? threads : 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* row = L.data() + i * j.chunk;
        const cpu::RowMaxSum st = k.row_stats(row, DType::f32, len);
        const auto u = static_cast<std::size_t>(i);
        LceStats c;
        c.m = st.max;
        c.s = st.sum;
        c.nan = st.has_nan ? 1.0 : 0.0;
        if (j.eps != 0.0) {
          c.dot = k.shifted_dot(row, DType::f32, j.has_w ? j.wf.data() + v0 : nullptr, len, 0.0);
        }
        lce_merge(blocks[static_cast<std::size_t>(i * nb + block)], c);
        if (j.t[u] >= v0 && j.t[u] < v0 + len) {
          xt[u] = row[j.t[u] - v0];
          owned[u] = 1;
        }
      }
    });
  });
}

void lce_finish_rows(const LceJob& j, const CrossEntropyOptions& o, LceRows& rows) {
  const double cd = static_cast<double>(j.v);
  rows.loss.assign(static_cast<std::size_t>(j.n), 0.0);
  rows.lse.assign(static_cast<std::size_t>(j.n), 0.0);
  double mean_denom = 0.0;
  for (int64_t i = 0; i < j.n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const LceStats& st = rows.st[u];
    const bool special = st.nan != 0.0 || !(st.m > -kInf && st.m < kInf);
    rows.lse[u] = st.nan != 0.0 ? kNaN : special ? st.m : st.m + std::log(st.s);
    if (j.t[u] == j.ignore_index) continue;
    const double wt = class_weight(j.w, j.t[u]);
    mean_denom += wt;
    if (special) {
      rows.loss[u] = kNaN;
      continue;
    }
    const double log_s = std::log(st.s);
    rows.loss[u] = (1.0 - j.eps) * wt * -((rows.xt[u] - st.m) - log_s);
    if (j.eps != 0.0) rows.loss[u] += j.eps / cd * (j.w_sum * rows.lse[u] - st.dot);
    if (j.z != 0.0) rows.loss[u] += j.z * rows.lse[u] * rows.lse[u];
  }
  rows.plan = plan_reduction(o, mean_denom);
}

void lce_pass2(const char* op, const LceJob& j, const LceRows& rows, int threads, float* GH,
               int64_t ldgh) {
  if (GH && j.vn == 0) {
    for (int64_t i = 0; i < j.n; ++i) std::fill(GH + i * ldgh, GH + i * ldgh + j.d, 0.0f);
  }
  if (j.vn == 0 || j.n == 0) return;
  const cpu::GemmThreads gemm_threads(threads);
  std::vector<float> L(static_cast<std::size_t>(j.n * j.chunk));
  const cpu::CrossEntropyKernels& k = cpu::cross_entropy_kernels();
  const bool par = j.n * j.chunk >= kMinParallelElems;
  const double cd = static_cast<double>(j.v);
  bool first = true;
  for_each_chunk(j, [&](int64_t v0, int64_t len, int64_t) {
    const int64_t r0 = v0 - j.offset;
    cpu::sgemm(op, 'N', 'T', j.n, len, j.d, j.H, j.ldh, j.W + r0 * j.ldw, j.ldw, 0.0f, L.data(),
               j.chunk);
    parallel_for(j.n, par ? threads : 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float* row = L.data() + i * j.chunk;
        const auto u = static_cast<std::size_t>(i);
        const LceStats& st = rows.st[u];
        const bool kept = j.t[u] != j.ignore_index;
        const bool special = st.nan != 0.0 || !(st.m > -kInf && st.m < kInf);
        if (!kept || special) {
          std::fill(row, row + len, kept ? static_cast<float>(kNaN) : 0.0f);
          continue;
        }
        const double wt = class_weight(j.w, j.t[u]);
        const double g = j.go.empty() ? rows.plan.g : rows.plan.g * j.go[u];
        const auto co = hard_row_coeffs(g, wt, j.eps, cd, j.w_sum, j.z, rows.lse[u], true);
        cpu::CeWrite p{st.m,
                       1.0 / st.s,
                       std::log(st.s),
                       co.alpha,
                       j.eps != 0.0 ? co.beta : 0.0,
                       co.gamma,
                       (j.t[u] >= v0 && j.t[u] < v0 + len) ? j.t[u] - v0 : -1,
                       j.has_w && j.eps != 0.0 ? j.wf.data() + v0 : nullptr,
                       true};
        k.write(row, DType::f32, row, DType::f32, len, p, cpu::RowOut::kGrad);
      }
    });
    if (GH) {
      cpu::sgemm(op, 'N', 'N', j.n, j.d, len, L.data(), j.chunk, j.W + r0 * j.ldw, j.ldw,
                 first ? 0.0f : 1.0f, GH, ldgh);
    }
    if (j.GW) {
      cpu::sgemm(op, 'T', 'N', len, j.d, j.n, L.data(), j.chunk, j.H, j.ldh, 0.0f,
                 j.GW + r0 * j.ldgw, j.ldgw);
    }
    first = false;
  });
}

void lce_store(const LceJob& j, const LinearCrossEntropyOutputs& out, const CrossEntropyOptions& o,
               const LceRows& rows) {
  if (o.reduction == Reduction::kNone) {
    for (int64_t i = 0; i < j.n; ++i) {
      store_loss(out.loss, i * out.loss.strides[0], rows.loss[static_cast<std::size_t>(i)]);
    }
  } else {
    double sum = 0.0;
    for (double l : rows.loss) sum += l;
    store_loss(out.loss, 0, rows.plan.denom == 0.0 ? kNaN : sum / rows.plan.denom);
  }
  if (out.lse) {
    for (int64_t i = 0; i < j.n; ++i) {
      store_loss(*out.lse, i * out.lse->strides[0], rows.lse[static_cast<std::size_t>(i)]);
    }
  }
}

}  // namespace detail

void linear_cross_entropy(ConstTensorView hidden, ConstTensorView weight, ConstTensorView targets,
                          const LinearCrossEntropyOutputs& out, const CrossEntropyOptions& o,
                          const Context& context) {
  const detail::ExecScope exec_scope("linear_cross_entropy", context, o.threads);
  const char* op = "linear_cross_entropy";
  const detail::LceJob job = detail::prepare_lce(op, hidden, weight, targets, out, o);
  // Valid: nothing has been written so far.
  const int threads = detail::current_exec().threads;
  std::vector<detail::LceStats> blocks;
  detail::LceRows rows;
  std::vector<unsigned char> owned;
  detail::lce_pass1(op, job, threads, blocks, rows.xt, owned);
  const int64_t nb = detail::lce_block_count(0, job.v);
  rows.st.assign(static_cast<std::size_t>(job.n), detail::LceStats{});
  for (int64_t i = 0; i < job.n; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      detail::lce_merge(rows.st[static_cast<std::size_t>(i)],
                        blocks[static_cast<std::size_t>(i * nb + b)]);
    }
  }
  detail::lce_finish_rows(job, o, rows);
  if (out.grad_hidden || out.grad_weight)
    detail::lce_pass2(op, job, rows, threads, job.GH, job.ldgh);
  detail::lce_store(job, out, o, rows);
}

}  // namespace softmax
