// src/core/adaptive_softmax.cc: PyTorch 1.13's AdaptiveLogSoftmaxWithLoss forward, log_prob and
// predict, and the gradients of its loss (see softmax/adaptive_softmax.hpp).
//
//   head logits Z = X Wh^T + bh (N x (c_0 + m)); cluster i: rows R_i whose target lies in
//   [c_i, c_{i+1}), P = X_R Wp_i^T, O = P Wo_i^T; log-softmax / logsumexp / softmax of the rows
//   come from the library's row ops. Backward (g = grad_scale / N): G_Z = g (softmax(Z) -
//   onehot(gather)); G_O = g (softmax(O) - onehot(target - c_i)); G_P = G_O Wo; the weight
//   gradients are G^T (layer input) and the input gradient sums G_Z Wh and G_P Wp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "softmax/adaptive_softmax.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/gemm.hpp"
#include "src/core/large_vocab_util.hpp"

namespace softmax {
namespace {

inline std::size_t us(int64_t i) { return static_cast<std::size_t>(i); }

struct Model {
  detail::MatF32 x, head;
  std::vector<float> head_bias;
  std::vector<detail::MatF32> proj, out;
  std::vector<int64_t> bounds;  // c_0, ..., c_m = n_classes
  int64_t n = 0, d = 0, shortlist = 0, clusters = 0, head_size = 0, n_classes = 0;
};

Model check_model(const char* op, ConstTensorView input, ConstTensorView head_weight,
                  std::span<const AdaptiveTail> tails, std::span<const int64_t> cutoffs,
                  const std::optional<ConstTensorView>& head_bias) {
  Model m;
  if (cutoffs.empty()) {
    throw Error(ErrorKind::kInvalidArgument, op, "cutoffs", "[]", "must hold at least one cutoff");
  }
  for (std::size_t i = 0; i < cutoffs.size(); ++i) {
    const bool bad = i == 0 ? cutoffs[0] <= 0 : cutoffs[i] <= cutoffs[i - 1];
    if (bad) {
      throw Error(ErrorKind::kInvalidArgument, op, "cutoffs[" + std::to_string(i) + "]",
                  std::to_string(cutoffs[i]),
                  i == 0 ? "must be > 0" : "cutoffs must be strictly increasing (sorted, unique)");
    }
  }
  if (tails.size() != cutoffs.size()) {
    throw Error(ErrorKind::kShapeMismatch, op, "tail_weights",
                std::to_string(tails.size()) + " pairs",
                "must hold one (projection, output) pair per cutoff (" +
                    std::to_string(cutoffs.size()) + ")");
  }
  m.x = detail::check_f32_matrix(op, "input", input, -1, -1);
  m.n = m.x.rows;
  m.d = m.x.cols;
  m.shortlist = cutoffs[0];
  m.clusters = static_cast<int64_t>(cutoffs.size());
  m.head_size = m.shortlist + m.clusters;
  m.head = detail::check_f32_matrix(op, "head_weight", head_weight, m.head_size, m.d);
  if (head_bias) m.head_bias = detail::read_f32_vector(op, "head_bias", *head_bias, m.head_size);
  m.bounds.assign(cutoffs.begin(), cutoffs.end());
  for (std::size_t i = 0; i < tails.size(); ++i) {
    const std::string k = "tail_weights[" + std::to_string(i) + "]";
    m.proj.push_back(
        detail::check_f32_matrix(op, (k + ".projection").c_str(), tails[i].projection, -1, m.d));
    const int64_t rows = i + 1 < cutoffs.size() ? cutoffs[i + 1] - cutoffs[i] : -1;
    m.out.push_back(detail::check_f32_matrix(op, (k + ".output").c_str(), tails[i].output, rows,
                                             m.proj.back().rows));
    if (m.proj.back().rows < 1 || m.out.back().rows < 1) {
      throw Error(ErrorKind::kShapeMismatch, op, k,
                  "shapes (" + std::to_string(m.proj.back().rows) + ", " + std::to_string(m.d) +
                      ") and (" + std::to_string(m.out.back().rows) + ", " +
                      std::to_string(m.out.back().cols) + ")",
                  "each tail needs >= 1 hidden unit and >= 1 class");
    }
  }
  m.n_classes = cutoffs.back() + m.out.back().rows;
  m.bounds.push_back(m.n_classes);
  return m;
}

// Y (rows x cols) = A (rows x k) B^T with B (cols x k) + bias; Y contiguous.
void linear(const char* op, const float* a, int64_t lda, int64_t rows, const detail::MatF32& b,
            const std::vector<float>& bias, float* y) {
  cpu::sgemm(op, 'N', 'T', rows, b.rows, b.cols, a, lda, b.p, b.ld, 0.0f, y, b.rows);
  if (bias.empty()) return;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < b.rows; ++j) y[i * b.rows + j] += bias[us(j)];
  }
}

SoftmaxOptions row_opts(int threads) {
  SoftmaxOptions o;
  o.threads = threads;
  return o;
}

// G (rows x c) = g (softmax(G) - onehot(t)) in place, from logits.
void softmax_grad(float* z, int64_t rows, int64_t c, const std::vector<int64_t>& t, double g,
                  int threads) {
  if (rows == 0) return;
  softmax::softmax(ConstTensorView(z, {rows, c}), TensorView(z, {rows, c}), row_opts(threads));
  const auto gf = static_cast<float>(g);
  for (int64_t i = 0; i < rows; ++i) {
    float* r = z + i * c;
    r[t[us(i)]] -= 1.0f;
    for (int64_t j = 0; j < c; ++j) r[j] *= gf;
  }
}

}  // namespace

AdaptiveSoftmaxResult adaptive_log_softmax_with_loss(ConstTensorView input, ConstTensorView target,
                                                     ConstTensorView head_weight,
                                                     std::span<const AdaptiveTail> tails,
                                                     std::span<const int64_t> cutoffs,
                                                     std::optional<ConstTensorView> head_bias,
                                                     const AdaptiveSoftmaxOptions& o) {
  const char* op = "adaptive_log_softmax_with_loss";
  const Model m = check_model(op, input, head_weight, tails, cutoffs, head_bias);
  const std::vector<int64_t> t = detail::read_class_ids(op, "target", target, {m.n}, m.n_classes);
  detail::check_finite(op, "grad_scale", o.grad_scale);
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(o.threads));
  const int64_t n = m.n, d = m.d, hs = m.head_size;
  const double g = o.grad_scale / static_cast<double>(n);
  AdaptiveSoftmaxResult r;
  r.output.assign(us(n), 0.0f);
  std::vector<double> outd(us(n), 0.0);
  std::vector<int64_t> gather(us(n));
  if (o.compute_grad) {
    r.grad_input.assign(us(n * d), 0.0f);
    r.grad_tail_projection.resize(us(m.clusters));
    r.grad_tail_output.resize(us(m.clusters));
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c =
        std::upper_bound(m.bounds.begin(), m.bounds.end(), t[us(i)]) - m.bounds.begin();
    gather[us(i)] = c == 0 ? t[us(i)] : m.shortlist + c - 1;
  }
  // Tails: the rows of each cluster, in increasing row order (torch's nonzero()).
  for (int64_t c = 0; c < m.clusters; ++c) {
    const detail::MatF32& wp = m.proj[us(c)];
    const detail::MatF32& wo = m.out[us(c)];
    if (o.compute_grad) {
      r.grad_tail_projection[us(c)].assign(us(wp.rows * d), 0.0f);
      r.grad_tail_output[us(c)].assign(us(wo.rows * wo.cols), 0.0f);
    }
    std::vector<int64_t> rows, rel;
    for (int64_t i = 0; i < n; ++i) {
      if (gather[us(i)] == m.shortlist + c) {
        rows.push_back(i);
        rel.push_back(t[us(i)] - m.bounds[us(c)]);
      }
    }
    const auto nr = static_cast<int64_t>(rows.size());
    if (nr == 0) continue;
    std::vector<float> xr(us(nr * d)), pr(us(nr * wp.rows)), z(us(nr * wo.rows)), lse(us(nr));
    for (int64_t q = 0; q < nr; ++q)
      std::copy(m.x.row(rows[us(q)]), m.x.row(rows[us(q)]) + d, xr.begin() + q * d);
    linear(op, xr.data(), d, nr, wp, {}, pr.data());
    linear(op, pr.data(), wp.rows, nr, wo, {}, z.data());
    logsumexp(ConstTensorView(z.data(), {nr, wo.rows}), TensorView(lse.data(), {nr}),
              row_opts(o.threads));
    for (int64_t q = 0; q < nr; ++q) {
      outd[us(rows[us(q)])] = static_cast<double>(z[us(q * wo.rows + rel[us(q)])]) - lse[us(q)];
    }
    if (!o.compute_grad) continue;
    softmax_grad(z.data(), nr, wo.rows, rel, g, o.threads);
    std::vector<float> gp(us(nr * wp.rows)), gx(us(nr * d));
    cpu::sgemm(op, 'T', 'N', wo.rows, wo.cols, nr, z.data(), wo.rows, pr.data(), wp.rows, 0.0f,
               r.grad_tail_output[us(c)].data(), wo.cols);
    cpu::sgemm(op, 'N', 'N', nr, wp.rows, wo.rows, z.data(), wo.rows, wo.p, wo.ld, 0.0f, gp.data(),
               wp.rows);
    cpu::sgemm(op, 'T', 'N', wp.rows, d, nr, gp.data(), wp.rows, xr.data(), d, 0.0f,
               r.grad_tail_projection[us(c)].data(), d);
    cpu::sgemm(op, 'N', 'N', nr, d, wp.rows, gp.data(), wp.rows, wp.p, wp.ld, 0.0f, gx.data(), d);
    for (int64_t q = 0; q < nr; ++q) {
      float* dst = r.grad_input.data() + rows[us(q)] * d;
      for (int64_t k = 0; k < d; ++k) dst[k] += gx[us(q * d + k)];
    }
  }
  // Head.
  std::vector<float> z(us(n * hs)), lse(us(n));
  linear(op, m.x.p, m.x.ld, n, m.head, m.head_bias, z.data());
  logsumexp(ConstTensorView(z.data(), {n, hs}), TensorView(lse.data(), {n}), row_opts(o.threads));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    outd[us(i)] += static_cast<double>(z[us(i * hs + gather[us(i)])]) - lse[us(i)];
    r.output[us(i)] = static_cast<float>(outd[us(i)]);
    sum -= outd[us(i)];
  }
  r.loss = sum / static_cast<double>(n);
  if (!o.compute_grad) return r;
  softmax_grad(z.data(), n, hs, gather, g, o.threads);
  r.grad_head_weight.assign(us(hs * d), 0.0f);
  cpu::sgemm(op, 'T', 'N', hs, d, n, z.data(), hs, m.x.p, m.x.ld, 0.0f, r.grad_head_weight.data(),
             d);
  cpu::sgemm(op, 'N', 'N', n, d, hs, z.data(), hs, m.head.p, m.head.ld, 1.0f, r.grad_input.data(),
             d);
  if (head_bias) {
    r.grad_head_bias.assign(us(hs), 0.0f);
    const std::vector<float> ones(us(n), 1.0f);
    cpu::sgemm(op, 'T', 'N', hs, 1, n, z.data(), hs, ones.data(), 1, 0.0f, r.grad_head_bias.data(),
               1);
  }
  return r;
}

namespace {

// Full log-probs of the rows `rows` of the model's input (all rows when empty), (nr, V).
std::vector<float> full_log_prob(const char* op, const Model& m, const std::vector<int64_t>& rows,
                                 int threads) {
  const int64_t nr = static_cast<int64_t>(rows.size()), d = m.d, hs = m.head_size, v = m.n_classes;
  std::vector<float> xr(us(nr * d));
  for (int64_t q = 0; q < nr; ++q)
    std::copy(m.x.row(rows[us(q)]), m.x.row(rows[us(q)]) + d, xr.begin() + q * d);
  std::vector<float> head(us(nr * hs)), out(us(nr * v));
  linear(op, xr.data(), d, nr, m.head, m.head_bias, head.data());
  if (nr == 0) return out;
  log_softmax(ConstTensorView(head.data(), {nr, hs}), TensorView(head.data(), {nr, hs}),
              row_opts(threads));
  for (int64_t q = 0; q < nr; ++q)
    std::copy(head.begin() + q * hs, head.begin() + q * hs + m.shortlist, out.begin() + q * v);
  for (int64_t c = 0; c < m.clusters; ++c) {
    const detail::MatF32& wp = m.proj[us(c)];
    const detail::MatF32& wo = m.out[us(c)];
    std::vector<float> pr(us(nr * wp.rows)), z(us(nr * wo.rows));
    linear(op, xr.data(), d, nr, wp, {}, pr.data());
    linear(op, pr.data(), wp.rows, nr, wo, {}, z.data());
    log_softmax(ConstTensorView(z.data(), {nr, wo.rows}), TensorView(z.data(), {nr, wo.rows}),
                row_opts(threads));
    for (int64_t q = 0; q < nr; ++q) {
      const float lh = head[us(q * hs + m.shortlist + c)];
      float* dst = out.data() + q * v + m.bounds[us(c)];
      for (int64_t k = 0; k < wo.rows; ++k) dst[k] = z[us(q * wo.rows + k)] + lh;
    }
  }
  return out;
}

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> r(us(n));
  for (int64_t i = 0; i < n; ++i) r[us(i)] = i;
  return r;
}

}  // namespace

std::vector<float> adaptive_log_prob(ConstTensorView input, ConstTensorView head_weight,
                                     std::span<const AdaptiveTail> tails,
                                     std::span<const int64_t> cutoffs,
                                     std::optional<ConstTensorView> head_bias, int threads) {
  const char* op = "adaptive_log_prob";
  const Model m = check_model(op, input, head_weight, tails, cutoffs, head_bias);
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(threads));
  return full_log_prob(op, m, all_rows(m.n), threads);
}

std::vector<int64_t> adaptive_predict(ConstTensorView input, ConstTensorView head_weight,
                                      std::span<const AdaptiveTail> tails,
                                      std::span<const int64_t> cutoffs,
                                      std::optional<ConstTensorView> head_bias, int threads) {
  const char* op = "adaptive_predict";
  const Model m = check_model(op, input, head_weight, tails, cutoffs, head_bias);
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(threads));
  const int64_t n = m.n, hs = m.head_size;
  std::vector<float> head(us(n * hs));
  linear(op, m.x.p, m.x.ld, n, m.head, m.head_bias, head.data());
  std::vector<int64_t> pred(us(n)), tail_rows;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = head.data() + i * hs;
    pred[us(i)] = std::max_element(z, z + hs) - z;
    if (pred[us(i)] >= m.shortlist) tail_rows.push_back(i);
  }
  const std::vector<float> lp = full_log_prob(op, m, tail_rows, threads);
  for (std::size_t q = 0; q < tail_rows.size(); ++q) {
    const float* z = lp.data() + q * us(m.n_classes);
    pred[us(tail_rows[q])] = std::max_element(z, z + m.n_classes) - z;
  }
  return pred;
}

}  // namespace softmax
