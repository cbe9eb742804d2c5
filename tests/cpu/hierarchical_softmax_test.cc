// tests/cpu/hierarchical_softmax_test.cc: Huffman trees (word2vec's construction) against an
// independent priority-queue Huffman (same optimal weighted path length, Kraft equality),
// balanced trees, the sign convention (code 1 has probability sigma(s)), log-probs against a
// long double product of sigmoids (summing to 1 over a brute-force walk of every class), the
// loss and its sparse gradients against long double finite differences, and best-first top-k
// against the brute-force top-k (ties: lower id first).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "large_vocab_test_util.hpp"
#include "softmax/error.hpp"
#include "softmax/hierarchical_softmax.hpp"
#include "src/ref/large_vocab_reference.hpp"

namespace {

using lvtest::LD;
using lvtest::Mat;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::HierarchicalTree;

std::vector<int32_t> path_of(const HierarchicalTree& t, int64_t k) {
  const auto p = t.paths(k);
  return {p.begin(), p.end()};
}
std::vector<uint8_t> code_of(const HierarchicalTree& t, int64_t k) {
  const auto c = t.codes(k);
  return {c.begin(), c.end()};
}

// Optimal weighted path length by the textbook priority-queue Huffman.
long double huffman_cost(const std::vector<int64_t>& counts) {
  std::priority_queue<long double, std::vector<long double>, std::greater<>> q(counts.begin(),
                                                                               counts.end());
  long double cost = 0;
  while (q.size() > 1) {
    const long double a = q.top();
    q.pop();
    const long double b = q.top();
    q.pop();
    cost += a + b;
    q.push(a + b);
  }
  return cost;
}

TEST(HuffmanTree, OptimalPrefixCodeWithConsistentPaths) {
  std::mt19937_64 rng(7);
  for (int64_t v : {2, 3, 6, 17, 1000}) {
    std::vector<int64_t> counts;
    for (int64_t k = 0; k < v; ++k)
      counts.push_back(1 + static_cast<int64_t>(rng() % 5000) / (1 + k % 7));
    if (v == 6) counts = {5, 9, 12, 13, 16, 45};  // the textbook example
    const HierarchicalTree t = softmax::huffman_tree(counts);
    ASSERT_EQ(t.num_classes(), v);
    ASSERT_EQ(t.num_internal(), v - 1);
    long double cost = 0, kraft = 0;
    std::set<std::string> codes;  // the code words as strings of 0/1 bytes
    for (int64_t k = 0; k < v; ++k) {
      const auto p = path_of(t, k);
      const auto c = code_of(t, k);
      ASSERT_EQ(p.size(), c.size());
      ASSERT_EQ(p.front(), t.root());
      // Walking the codes from the root reaches leaf k through exactly these nodes.
      int32_t node = static_cast<int32_t>(t.root());
      for (std::size_t q = 0; q < p.size(); ++q) {
        ASSERT_EQ(node, p[q]);
        node = t.child(node, c[q]);
      }
      ASSERT_EQ(node, -static_cast<int32_t>(k) - 1);
      cost += static_cast<long double>(counts[static_cast<std::size_t>(k)]) *
              static_cast<long double>(p.size());
      kraft += std::ldexp(1.0L, -static_cast<int>(p.size()));
      codes.insert(std::string(c.begin(), c.end()));
    }
    EXPECT_EQ(cost, huffman_cost(counts)) << "V=" << v;
    EXPECT_EQ(kraft, 1.0L);
    EXPECT_EQ(codes.size(), static_cast<std::size_t>(v));
    if (v == 6) {  // 45 -> 1 bit; 16, 13, 12 -> 3 bits; 9, 5 -> 4 bits
      const std::vector<int64_t> depth{4, 4, 3, 3, 3, 1};
      for (int64_t k = 0; k < 6; ++k)
        EXPECT_EQ(t.depth(k), depth[static_cast<std::size_t>(k)]) << k;
    }
  }
}

TEST(HuffmanTree, EqualCountsGiveBalancedTree) {
  for (int64_t v : {2, 8, 1000, 1024}) {
    const HierarchicalTree t = softmax::balanced_tree(v);
    const int lo = static_cast<int>(std::floor(std::log2(static_cast<double>(v))));
    const int hi = static_cast<int>(std::ceil(std::log2(static_cast<double>(v))));
    for (int64_t k = 0; k < v; ++k) {
      EXPECT_GE(t.depth(k), lo);
      EXPECT_LE(t.depth(k), hi);
    }
    EXPECT_EQ(t.max_depth(), hi);
  }
}

struct Case {
  HierarchicalTree tree;
  Mat h, w;
  std::vector<float> b;
  int64_t n, d;
};

Case make_case(uint64_t seed, int64_t n, int64_t d, int64_t v) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> counts;
  for (int64_t k = 0; k < v; ++k) counts.push_back(1 + static_cast<int64_t>(10000 / (k + 1)));
  Case c{softmax::huffman_tree(counts),
         lvtest::random_mat(rng, n, d, 1.0),
         lvtest::random_mat(rng, v - 1, d, 0.6),
         {},
         n,
         d};
  std::normal_distribution<double> nd(0, 0.5);
  for (int64_t j = 0; j < v - 1; ++j) c.b.push_back(static_cast<float>(nd(rng)));
  return c;
}

ConstTensorView bias_view(const Case& c) { return {c.b.data(), {c.tree.num_internal()}}; }

// Node code 1 has probability sigma(s): one internal node, score s = 2.
TEST(HierarchicalSoftmax, CodeOneChildHasProbabilitySigmoidOfScore) {
  const HierarchicalTree t = softmax::huffman_tree(std::vector<int64_t>{1, 3});
  const std::vector<float> w{2.0f}, h{1.0f};
  const auto lp =
      softmax::hierarchical_log_prob({h.data(), {1, 1}}, t, {w.data(), {1, 1}}, std::nullopt);
  for (int64_t k = 0; k < 2; ++k) {
    const double want = code_of(t, k)[0] ? 1 / (1 + std::exp(-2.0)) : 1 / (1 + std::exp(2.0));
    EXPECT_NEAR(std::exp(lp[static_cast<std::size_t>(k)]), want, 1e-7) << "class " << k;
  }
  const auto top =
      softmax::hierarchical_predict({h.data(), {1, 1}}, t, {w.data(), {1, 1}}, std::nullopt, 1);
  EXPECT_EQ(code_of(t, top.classes[0])[0], 1);  // the sigma(+2) branch wins
}

TEST(HierarchicalSoftmax, LogProbsMatchProductOfSigmoidsAndSumToOne) {
  const Case c = make_case(3, 7, 16, 300);
  const auto lp = softmax::hierarchical_log_prob(c.h.view(), c.tree, c.w.view(), bias_view(c), 2);
  const auto w = c.w.exact();
  const auto b = lvtest::exact(c.b);
  const int64_t v = c.tree.num_classes();
  for (int64_t i = 0; i < c.n; ++i) {
    LD sum = 0;
    const std::vector<LD> h = c.h.row(i);
    for (int64_t k = 0; k < v; ++k) {
      const LD e =
          softmax::ref::hierarchical_log_prob(w, b, h, path_of(c.tree, k), code_of(c.tree, k));
      sum += std::exp(e);
      // score error <= D 2^-24 sum |w h| (sgemm) per node; depth <= 30 here.
      EXPECT_NEAR(lp[static_cast<std::size_t>(i * v + k)], static_cast<double>(e),
                  2e-5 * (1 + std::fabs(static_cast<double>(e))));
    }
    EXPECT_NEAR(static_cast<double>(sum), 1.0, 1e-15);
    double got = 0;
    for (int64_t k = 0; k < v; ++k)
      got += std::exp(static_cast<double>(lp[static_cast<std::size_t>(i * v + k)]));
    EXPECT_NEAR(got, 1.0, static_cast<double>(v) * 0x1p-23);
  }
}

TEST(HierarchicalSoftmax, LossAndSparseGradientsMatchFiniteDifferences) {
  const Case c = make_case(5, 6, 5, 40);
  std::vector<int64_t> t{0, 3, 39, 3, 17, 1};
  const auto w = c.w.exact();
  const auto b = lvtest::exact(c.b);
  softmax::HierarchicalOptions o;
  o.compute_grad = true;
  o.reduction = softmax::Reduction::kSum;
  o.grad_scale = 0.5;
  const auto r = softmax::hierarchical_softmax_loss(c.h.view(), {t.data(), DType::i64, {c.n}},
                                                    c.tree, c.w.view(), bias_view(c), o);
  auto total = [&](const softmax::ref::LMat& ww, const std::vector<LD>& bb, int64_t row,
                   const std::vector<LD>* hrow) {
    LD s = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      const std::vector<LD> h = (hrow && i == row) ? *hrow : c.h.row(i);
      s -= softmax::ref::hierarchical_log_prob(ww, bb, h,
                                               path_of(c.tree, t[static_cast<std::size_t>(i)]),
                                               code_of(c.tree, t[static_cast<std::size_t>(i)]));
    }
    return s;
  };
  ASSERT_EQ(r.loss.size(), 1u);
  EXPECT_NEAR(r.loss[0], static_cast<double>(total(w, b, -1, nullptr)), 1e-5);
  for (int64_t i = 0; i < c.n; ++i) {
    for (int64_t k = 0; k < c.d; ++k) {
      const LD fd = lvtest::central_diff(
          [&](LD x) {
            std::vector<LD> h = c.h.row(i);
            h[static_cast<std::size_t>(k)] = x;
            return total(w, b, i, &h);
          },
          c.h.row(i)[static_cast<std::size_t>(k)]);
      EXPECT_NEAR(r.grad_hidden[static_cast<std::size_t>(i * c.d + k)],
                  0.5 * static_cast<double>(fd), 1e-5);
    }
  }
  std::set<int64_t> touched;
  for (int64_t k : t)
    for (int32_t j : path_of(c.tree, k)) touched.insert(j);
  ASSERT_EQ(std::vector<int64_t>(touched.begin(), touched.end()), r.grad_nodes.rows);
  for (std::size_t q = 0; q < r.grad_nodes.rows.size(); ++q) {
    const int64_t j = r.grad_nodes.rows[q];
    const LD fb = lvtest::central_diff(
        [&](LD x) {
          std::vector<LD> bb = b;
          bb[static_cast<std::size_t>(j)] = x;
          return total(w, bb, -1, nullptr);
        },
        b[static_cast<std::size_t>(j)]);
    EXPECT_NEAR(r.grad_nodes.bias[q], 0.5 * static_cast<double>(fb), 1e-5);
    for (int64_t k = 0; k < c.d; ++k) {
      const LD fw = lvtest::central_diff(
          [&](LD x) {
            softmax::ref::LMat ww = w;
            ww.v[static_cast<std::size_t>(j * c.d + k)] = x;
            return total(ww, b, -1, nullptr);
          },
          w.at(j, k));
      EXPECT_NEAR(
          r.grad_nodes.values[q * static_cast<std::size_t>(c.d) + static_cast<std::size_t>(k)],
          0.5 * static_cast<double>(fw), 1e-5);
    }
  }
  // Reductions and thread counts.
  o.reduction = softmax::Reduction::kNone;
  o.threads = 1;
  const auto none1 = softmax::hierarchical_softmax_loss(c.h.view(), {t.data(), DType::i64, {c.n}},
                                                        c.tree, c.w.view(), bias_view(c), o);
  o.threads = 2;
  const auto none2 = softmax::hierarchical_softmax_loss(c.h.view(), {t.data(), DType::i64, {c.n}},
                                                        c.tree, c.w.view(), bias_view(c), o);
  EXPECT_EQ(none1.loss, none2.loss);
  EXPECT_EQ(none1.grad_hidden, none2.grad_hidden);
  EXPECT_EQ(none1.grad_nodes.values, none2.grad_nodes.values);
  o.reduction = softmax::Reduction::kMean;
  const auto mean = softmax::hierarchical_softmax_loss(c.h.view(), {t.data(), DType::i64, {c.n}},
                                                       c.tree, c.w.view(), bias_view(c), o);
  double s = 0;
  for (float l : none1.loss) s += l;
  EXPECT_NEAR(mean.loss[0], s / static_cast<double>(c.n), 1e-6);
  EXPECT_NEAR(mean.grad_hidden[3], none1.grad_hidden[3] / static_cast<double>(c.n), 1e-7);
}

TEST(HierarchicalSoftmax, PredictIsTheExactTopK) {
  const Case c = make_case(9, 20, 8, 500);
  const int64_t v = c.tree.num_classes(), k = 5;
  const auto lp = softmax::hierarchical_log_prob(c.h.view(), c.tree, c.w.view(), bias_view(c));
  const auto top =
      softmax::hierarchical_predict(c.h.view(), c.tree, c.w.view(), bias_view(c), k, 2);
  for (int64_t i = 0; i < c.n; ++i) {
    std::vector<int64_t> order(static_cast<std::size_t>(v));
    for (int64_t q = 0; q < v; ++q) order[static_cast<std::size_t>(q)] = q;
    const float* row = lp.data() + i * v;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    for (int64_t q = 0; q < k; ++q) {
      const auto got = static_cast<std::size_t>(i * k + q);
      EXPECT_NEAR(top.log_probs[got], row[top.classes[got]], 1e-5);
      // Same class unless two log-probs are within the scores' rounding.
      if (top.classes[got] != order[static_cast<std::size_t>(q)]) {
        EXPECT_NEAR(row[top.classes[got]], row[order[static_cast<std::size_t>(q)]], 1e-5);
      }
      if (q > 0) EXPECT_LE(top.log_probs[got], top.log_probs[got - 1]);
    }
  }
  // All scores 0 on a balanced 8-leaf tree: every class has log-prob -3 ln 2; ties by id.
  const HierarchicalTree bal = softmax::balanced_tree(8);
  const std::vector<float> zw(7 * 2, 0.0f), h(2 * 2, 1.0f);
  const auto tied =
      softmax::hierarchical_predict({h.data(), {2, 2}}, bal, {zw.data(), {7, 2}}, std::nullopt, 3);
  EXPECT_EQ(tied.classes, (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_FLOAT_EQ(tied.log_probs[0], static_cast<float>(-3 * std::log(2.0)));
}

TEST(HierarchicalSoftmax, Errors) {
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const softmax::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([] { softmax::huffman_tree(std::vector<int64_t>{3, 0, 2}); }, "'counts[1]' = 0");
  expect_error([] { softmax::huffman_tree(std::vector<int64_t>{3}); }, "'counts'");
  expect_error([] { softmax::balanced_tree(1); }, "'num_classes' = 1");
  expect_error([] { HierarchicalTree(std::vector<int32_t>{-1, -1}); }, "one parent");
  expect_error([] { HierarchicalTree(std::vector<int32_t>{-1, -2, 0, 0}); }, "one parent");
  const Case c = make_case(1, 2, 3, 10);
  std::vector<int64_t> t{0, 10};
  expect_error(
      [&] {
        softmax::hierarchical_softmax_loss(c.h.view(), {t.data(), DType::i64, {2}}, c.tree,
                                           c.w.view(), std::nullopt);
      },
      "'targets[1]' = 10");
  const std::vector<float> w(8 * 3);
  expect_error(
      [&] {
        softmax::hierarchical_log_prob(c.h.view(), c.tree, {w.data(), {8, 3}}, std::nullopt);
      },
      "'node_weights'");
  expect_error(
      [&] { softmax::hierarchical_predict(c.h.view(), c.tree, c.w.view(), std::nullopt, 11); },
      "'k' = 11");
  expect_error([&] { c.tree.paths(10); }, "'k' = 10");
}

}  // namespace
