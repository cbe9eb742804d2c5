// src/core/sampled_softmax.cc: tf.nn.sampled_softmax_loss (see softmax/sampled_softmax.hpp).
//
//   1. Draw the shared sample set S (candidate_sampler.cc) and gather W_S, b_S.
//   2. Sampled logits C = X W_S^T (sgemm) + b_S - log Q_S, accidental hits -> -inf; true logits
//      a_ij = x_i . w_t + b_t - log Q_t (f64-accumulated dots).
//   3. lse_i = logaddexp(logsumexp(C_i), logsumexp(a_i)), loss_i = lse_i - mean_j a_ij.
//   4. Gradient: G = g_i softmax over the n + S columns minus g_i / n on the true columns;
//      grad_inputs = G_S W_S + sum_j G_ij w_tij; the touched rows of W get G_S^T X and
//      G_ij x_i, summed per row in a fixed order.
#include "softmax/sampled_softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "softmax/ops.hpp"
#include "src/core/candidate_sampler.hpp"
#include "src/cpu/gemm.hpp"
#include "src/core/large_vocab_util.hpp"
#include "src/core/rows.hpp"

namespace softmax {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double logaddexp(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

struct Problem {
  detail::MatF32 w, x;
  std::vector<float> b;
  std::vector<int64_t> labels;  // (N, nt)
  std::vector<double> go;       // (N) or empty
  int64_t n = 0, d = 0, nt = 1, s = 0;
};

Problem check_problem(const char* op, ConstTensorView weights, ConstTensorView biases,
                      ConstTensorView labels, ConstTensorView inputs,
                      const SampledSoftmaxOptions& o) {
  detail::check_sampled_counts(op, o);
  Problem p;
  p.w = detail::check_f32_matrix(op, "weights", weights, o.num_classes, -1);
  p.d = p.w.cols;
  p.b = detail::read_f32_vector(op, "biases", biases, o.num_classes);
  p.x = detail::check_f32_matrix(op, "inputs", inputs, -1, p.d);
  p.n = p.x.rows;
  p.nt = o.num_true;
  p.s = o.num_sampled;
  p.labels = detail::read_class_ids(op, "labels", labels, {p.n, p.nt}, o.num_classes);
  if (o.grad_output) p.go = detail::read_floats(op, "grad_output", *o.grad_output, {p.n});
  return p;
}

}  // namespace

SampledSoftmaxResult sampled_softmax_loss(ConstTensorView weights, ConstTensorView biases,
                                          ConstTensorView labels, ConstTensorView inputs,
                                          const SampledSoftmaxOptions& o) {
  const char* op = "sampled_softmax_loss";
  const Problem p = check_problem(op, weights, biases, labels, inputs, o);
  SampledSoftmaxResult r;
  r.samples = detail::draw_candidates(op, p.labels, o);
  const CandidateSample& cs = r.samples;
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(o.threads));
  const int threads = detail::resolve_threads(o.threads);
  const int64_t n = p.n, d = p.d, nt = p.nt, ns = p.s;
  const auto us = [](int64_t i) { return static_cast<std::size_t>(i); };

  // Sampled rows, their logit offsets, and (id, column) pairs for the accidental hits.
  std::vector<float> ws(us(ns * d)), off(us(ns));
  std::vector<std::pair<int64_t, int64_t>> by_id(us(ns));
  for (int64_t s = 0; s < ns; ++s) {
    const int64_t id = cs.sampled[us(s)];
    std::copy(p.w.row(id), p.w.row(id) + d, ws.begin() + s * d);
    const double lq =
        o.subtract_log_q ? std::log(static_cast<double>(cs.sampled_expected_count[us(s)])) : 0.0;
    off[us(s)] = static_cast<float>(p.b[us(id)] - lq);
    by_id[us(s)] = {id, s};
  }
  std::sort(by_id.begin(), by_id.end());

  std::vector<float> c(us(n * ns));
  cpu::sgemm(op, 'N', 'T', n, ns, d, p.x.p, p.x.ld, ws.data(), d, 0.0f, c.data(), ns);
  std::vector<double> a(us(n * nt));
  const bool par = n * ns >= detail::kMinParallelElems;
  detail::parallel_for(n, par ? threads : 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* row = c.data() + i * ns;
      for (int64_t s = 0; s < ns; ++s) row[s] += off[us(s)];
      for (int64_t j = 0; j < nt; ++j) {
        const int64_t t = p.labels[us(i * nt + j)];
        const double lq =
            o.subtract_log_q ? std::log(static_cast<double>(cs.true_expected_count[us(i * nt + j)]))
                             : 0.0;
        a[us(i * nt + j)] = detail::dot_f64(p.x.row(i), p.w.row(t), d) + p.b[us(t)] - lq;
        if (!o.remove_accidental_hits) continue;
        auto it = std::lower_bound(by_id.begin(), by_id.end(), std::make_pair(t, int64_t{-1}));
        for (; it != by_id.end() && it->first == t; ++it) row[it->second] = -INFINITY;
      }
    }
  });

  // Normalisers and losses.
  std::vector<float> lse_s(us(n));
  SoftmaxOptions so;
  so.threads = o.threads;
  logsumexp(ConstTensorView(c.data(), {n, ns}), TensorView(lse_s.data(), {n}), so);
  std::vector<double> lse(us(n));
  r.loss.resize(us(n));
  for (int64_t i = 0; i < n; ++i) {
    double lt = -kInf, mean = 0;
    for (int64_t j = 0; j < nt; ++j) {
      lt = logaddexp(lt, a[us(i * nt + j)]);
      mean += a[us(i * nt + j)];
    }
    lse[us(i)] = logaddexp(lse_s[us(i)], lt);
    r.loss[us(i)] = static_cast<float>(lse[us(i)] - mean / static_cast<double>(nt));
  }
  if (!o.compute_grad) return r;

  // G_S = g_i softmax(C_i) exp(lse_s - lse) in place; G_t for the true columns.
  softmax::softmax(ConstTensorView(c.data(), {n, ns}), TensorView(c.data(), {n, ns}), so);
  std::vector<double> gt(us(n * nt));
  detail::parallel_for(n, par ? threads : 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const double g = p.go.empty() ? 1.0 : p.go[us(i)];
      const double scale = g * std::exp(static_cast<double>(lse_s[us(i)]) - lse[us(i)]);
      float* row = c.data() + i * ns;
      if (lse_s[us(i)] == -INFINITY)
        std::fill(row, row + ns, 0.0f);
      else
        for (int64_t s = 0; s < ns; ++s) row[s] = static_cast<float>(row[s] * scale);
      for (int64_t j = 0; j < nt; ++j) {
        gt[us(i * nt + j)] =
            g * (std::exp(a[us(i * nt + j)] - lse[us(i)]) - 1.0 / static_cast<double>(nt));
      }
    }
  });
  r.grad_inputs.assign(us(n * d), 0.0f);
  cpu::sgemm(op, 'N', 'N', n, d, ns, c.data(), ns, ws.data(), d, 0.0f, r.grad_inputs.data(), d);
  detail::parallel_for(n, n * nt * d >= detail::kMinParallelElems ? threads : 1,
                       [&](int64_t b, int64_t e) {
                         for (int64_t i = b; i < e; ++i) {
                           for (int64_t j = 0; j < nt; ++j) {
                             detail::axpy(r.grad_inputs.data() + i * d, gt[us(i * nt + j)],
                                          p.w.row(p.labels[us(i * nt + j)]), d);
                           }
                         }
                       });

  // Sparse weight / bias gradients: sampled columns (items 0..S-1), then true pairs.
  std::vector<float> gws(us(ns * d)), colsum(us(ns)), ones(us(n), 1.0f);
  cpu::sgemm(op, 'T', 'N', ns, d, n, c.data(), ns, p.x.p, p.x.ld, 0.0f, gws.data(), d);
  cpu::sgemm(op, 'T', 'N', ns, 1, n, c.data(), ns, ones.data(), 1, 0.0f, colsum.data(), 1);
  std::vector<int64_t> row_of(cs.sampled);
  row_of.insert(row_of.end(), p.labels.begin(), p.labels.end());
  const detail::RowGroups gr = detail::group_by_row(row_of);
  SparseRowGrad& out = r.grad_weights;
  const auto nr = static_cast<int64_t>(gr.rows.size());
  out.rows = gr.rows;
  out.dim = d;
  out.values.assign(us(nr * d), 0.0f);
  out.bias.assign(us(nr), 0.0f);
  detail::parallel_for(nr, nr * d >= detail::kMinParallelElems ? threads : 1,
                       [&](int64_t b, int64_t e) {
                         for (int64_t g = b; g < e; ++g) {
                           float* v = out.values.data() + g * d;
                           double bias = 0;
                           for (int64_t k = gr.offsets[us(g)]; k < gr.offsets[us(g + 1)]; ++k) {
                             const int64_t item = gr.items[us(k)];
                             if (item < ns) {
                               for (int64_t q = 0; q < d; ++q) v[q] += gws[us(item * d + q)];
                               bias += colsum[us(item)];
                             } else {
                               const int64_t pair = item - ns;
                               detail::axpy(v, gt[us(pair)], p.x.row(pair / nt), d);
                               bias += gt[us(pair)];
                             }
                           }
                           out.bias[us(g)] = static_cast<float>(bias);
                         }
                       });
  return r;
}

}  // namespace softmax
