// src/core/hierarchical_softmax.cc: loss, all log-probs and best-first top-k over a
// HierarchicalTree (see softmax/hierarchical_softmax.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <string>

#include "softmax/error.hpp"
#include "softmax/hierarchical_softmax.hpp"
#include "src/cpu/gemm.hpp"
#include "src/core/large_vocab_util.hpp"
#include "src/core/rows.hpp"

namespace softmax {
namespace {

inline std::size_t us(int64_t i) { return static_cast<std::size_t>(i); }

struct Nodes {
  detail::MatF32 h, w;
  std::vector<float> b;  // empty: no bias
  int64_t n = 0, d = 0;
  double score(int64_t i, int64_t j) const {
    return detail::dot_f64(h.row(i), w.row(j), d) + (b.empty() ? 0.0 : b[us(j)]);
  }
};

Nodes check_nodes(const char* op, ConstTensorView hidden, const HierarchicalTree& tree,
                  ConstTensorView node_weights, const std::optional<ConstTensorView>& node_bias) {
  Nodes p;
  p.w = detail::check_f32_matrix(op, "node_weights", node_weights, tree.num_internal(), -1);
  p.d = p.w.cols;
  p.h = detail::check_f32_matrix(op, "hidden", hidden, -1, p.d);
  p.n = p.h.rows;
  if (node_bias) p.b = detail::read_f32_vector(op, "node_bias", *node_bias, tree.num_internal());
  return p;
}

}  // namespace

HierarchicalLossResult hierarchical_softmax_loss(ConstTensorView hidden, ConstTensorView targets,
                                                 const HierarchicalTree& tree,
                                                 ConstTensorView node_weights,
                                                 std::optional<ConstTensorView> node_bias,
                                                 const HierarchicalOptions& o) {
  const char* op = "hierarchical_softmax_loss";
  const Nodes p = check_nodes(op, hidden, tree, node_weights, node_bias);
  const std::vector<int64_t> t =
      detail::read_class_ids(op, "targets", targets, {p.n}, tree.num_classes());
  detail::check_finite(op, "grad_scale", o.grad_scale);
  const int64_t n = p.n, d = p.d;
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(o.threads));
  const int threads = detail::resolve_threads(o.threads);
  // Item (i, step) of the flattened paths: offsets per example.
  std::vector<int64_t> first(us(n + 1), 0);
  for (int64_t i = 0; i < n; ++i) first[us(i + 1)] = first[us(i)] + tree.depth(t[us(i)]);
  const double g =
      o.reduction == Reduction::kMean ? o.grad_scale / static_cast<double>(n) : o.grad_scale;
  std::vector<double> loss(us(n)), coef(o.compute_grad ? us(first.back()) : 0);
  HierarchicalLossResult r;
  if (o.compute_grad) r.grad_hidden.assign(us(n * d), 0.0f);
  const int par = n * tree.max_depth() * d >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(n, par, [&](int64_t b, int64_t e) {
    std::vector<double> gh(us(d));
    for (int64_t i = b; i < e; ++i) {
      const auto path = tree.paths(t[us(i)]);
      const auto code = tree.codes(t[us(i)]);
      double lp = 0;
      std::fill(gh.begin(), gh.end(), 0.0);
      for (std::size_t q = 0; q < path.size(); ++q) {
        const double s = p.score(i, path[q]);
        lp += detail::log_sigmoid(code[q] ? s : -s);
        if (!o.compute_grad) continue;
        const double c = g * (detail::sigmoid(s) - code[q]);
        coef[us(first[us(i)]) + q] = c;
        const float* w = p.w.row(path[q]);
        for (int64_t k = 0; k < d; ++k) gh[us(k)] += c * w[k];
      }
      loss[us(i)] = -lp;
      if (o.compute_grad) {
        for (int64_t k = 0; k < d; ++k)
          r.grad_hidden[us(i * d + k)] = static_cast<float>(gh[us(k)]);
      }
    }
  });
  if (o.reduction == Reduction::kNone) {
    r.loss.assign(loss.begin(), loss.end());
  } else {
    double sum = 0;
    for (double l : loss) sum += l;
    r.loss = {
        static_cast<float>(o.reduction == Reduction::kMean ? sum / static_cast<double>(n) : sum)};
  }
  if (!o.compute_grad) return r;
  std::vector<int64_t> row_of(us(first.back()));
  for (int64_t i = 0; i < n; ++i) {
    const auto path = tree.paths(t[us(i)]);
    for (std::size_t q = 0; q < path.size(); ++q) row_of[us(first[us(i)]) + q] = path[q];
  }
  const detail::RowGroups gr = detail::group_by_row(row_of);
  SparseRowGrad& out = r.grad_nodes;
  const auto nr = static_cast<int64_t>(gr.rows.size());
  out.rows = gr.rows;
  out.dim = d;
  out.values.assign(us(nr * d), 0.0f);
  if (node_bias) out.bias.assign(us(nr), 0.0f);
  // The example of each item, by binary search on `first`.
  detail::parallel_for(
      nr, nr * d >= detail::kMinParallelElems ? threads : 1, [&](int64_t b, int64_t e) {
        std::vector<double> acc(us(d));
        for (int64_t q = b; q < e; ++q) {
          std::fill(acc.begin(), acc.end(), 0.0);
          double bias = 0;
          for (int64_t k = gr.offsets[us(q)]; k < gr.offsets[us(q + 1)]; ++k) {
            const int64_t item = gr.items[us(k)];
            const int64_t i =
                std::upper_bound(first.begin(), first.end(), item) - first.begin() - 1;
            const double c = coef[us(item)];
            const float* h = p.h.row(i);
            for (int64_t z = 0; z < d; ++z) acc[us(z)] += c * h[z];
            bias += c;
          }
          for (int64_t z = 0; z < d; ++z)
            out.values[us(q * d + z)] = static_cast<float>(acc[us(z)]);
          if (node_bias) out.bias[us(q)] = static_cast<float>(bias);
        }
      });
  return r;
}

std::vector<float> hierarchical_log_prob(ConstTensorView hidden, const HierarchicalTree& tree,
                                         ConstTensorView node_weights,
                                         std::optional<ConstTensorView> node_bias,
                                         int threads_req) {
  const char* op = "hierarchical_log_prob";
  const Nodes p = check_nodes(op, hidden, tree, node_weights, node_bias);
  const int64_t n = p.n, v = tree.num_classes(), ni = tree.num_internal();
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(threads_req));
  const int threads = detail::resolve_threads(threads_req);
  std::vector<float> scores(us(n * ni));
  cpu::sgemm(op, 'N', 'T', n, ni, p.d, p.h.p, p.h.ld, p.w.p, p.w.ld, 0.0f, scores.data(), ni);
  std::vector<float> out(us(n * v));
  detail::parallel_for(
      n, n * v >= detail::kMinParallelElems ? threads : 1, [&](int64_t b, int64_t e) {
        std::vector<double> node_lp(us(ni));
        for (int64_t i = b; i < e; ++i) {
          const float* s = scores.data() + i * ni;
          node_lp[us(tree.root())] = 0;
          for (int64_t j = ni - 1; j >= 0; --j) {  // parents have larger ids than their children
            const double sj = static_cast<double>(s[j]) + (p.b.empty() ? 0.0 : p.b[us(j)]);
            for (int c = 0; c < 2; ++c) {
              const double lp = node_lp[us(j)] + detail::log_sigmoid(c ? sj : -sj);
              const int32_t ch = tree.child(j, c);
              if (ch >= 0)
                node_lp[us(ch)] = lp;
              else
                out[us(i * v - ch - 1)] = static_cast<float>(lp);
            }
          }
        }
      });
  return out;
}

TopKClasses hierarchical_predict(ConstTensorView hidden, const HierarchicalTree& tree,
                                 ConstTensorView node_weights,
                                 std::optional<ConstTensorView> node_bias, int64_t k,
                                 int threads_req) {
  const char* op = "hierarchical_predict";
  const Nodes p = check_nodes(op, hidden, tree, node_weights, node_bias);
  if (k < 1 || k > tree.num_classes()) {
    throw Error(ErrorKind::kInvalidArgument, op, "k", std::to_string(k),
                "must be in [1, " + std::to_string(tree.num_classes()) + "] (the classes)");
  }
  const int64_t n = p.n;
  const cpu::GemmThreads gemm_threads(detail::resolve_threads(threads_req));
  const int threads = detail::resolve_threads(threads_req);
  TopKClasses r;
  r.log_probs.resize(us(n * k));
  r.classes.resize(us(n * k));
  // Larger log-prob first; on equal log-probs internal nodes before leaves (a descendant may
  // tie), leaves by lower class id.
  struct Entry {
    double lp;
    int32_t node;
  };
  auto worse = [](const Entry& a, const Entry& b) {
    if (a.lp != b.lp) return a.lp < b.lp;
    if ((a.node < 0) != (b.node < 0)) return a.node < 0;
    return a.node < b.node;  // leaves -(id + 1): the lower id has the larger code
  };
  detail::parallel_for(
      n, n * k * p.d >= detail::kMinParallelElems / 8 ? threads : 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
          heap.push({0.0, static_cast<int32_t>(tree.root())});
          int64_t found = 0;
          while (found < k) {
            const Entry top = heap.top();
            heap.pop();
            if (top.node < 0) {
              r.log_probs[us(i * k + found)] = static_cast<float>(top.lp);
              r.classes[us(i * k + found)] = -static_cast<int64_t>(top.node) - 1;
              ++found;
              continue;
            }
            const double s = p.score(i, top.node);
            heap.push({top.lp + detail::log_sigmoid(-s), tree.child(top.node, 0)});
            heap.push({top.lp + detail::log_sigmoid(s), tree.child(top.node, 1)});
          }
        }
      });
  return r;
}

}  // namespace softmax
