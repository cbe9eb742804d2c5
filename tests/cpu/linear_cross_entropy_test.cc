// tests/cpu/linear_cross_entropy_test.cc: linear_cross_entropy against the materialised path
// (logits = H W^T in f64, then a long double cross-entropy and its gradient pushed through the
// product), for every option and several vocabulary chunk sizes (chunk boundaries inside and
// at the target, a chunk of 1 column, one chunk for the whole vocabulary).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"

namespace {

using LD = long double;
using softmax::ConstTensorView;
using softmax::CrossEntropyOptions;
using softmax::DType;
using softmax::LinearCrossEntropyOutputs;
using softmax::Reduction;
using softmax::TensorView;

struct Problem {
  int64_t n, d, v;
  std::vector<float> h, w;
  std::vector<int64_t> t;
  std::vector<float> cw;  // class weights (empty: none)
};

Problem make(int64_t n, int64_t d, int64_t v, unsigned seed, bool weights) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  Problem p{n, d, v, {}, {}, {}, {}};
  for (int64_t i = 0; i < n * d; ++i) p.h.push_back(nd(rng));
  for (int64_t i = 0; i < v * d; ++i) p.w.push_back(nd(rng) * 0.5f);
  std::uniform_int_distribution<int64_t> cls(0, v - 1);
  for (int64_t i = 0; i < n; ++i) p.t.push_back(i % 4 == 3 ? -100 : cls(rng));
  if (weights) {
    std::uniform_real_distribution<float> u(0.5f, 2.0f);
    for (int64_t i = 0; i < v; ++i) p.cw.push_back(u(rng));
  }
  return p;
}

// Materialised reference in long double: loss (reduced, or per row) and gradients.
void reference(const Problem& p, const CrossEntropyOptions& o, std::vector<LD>& loss,
               std::vector<LD>& gh, std::vector<LD>& gw) {
  const int64_t n = p.n, d = p.d, v = p.v;
  std::vector<LD> x(n * v), g(n * v, 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < v; ++j) {
      LD s = 0;
      for (int64_t k = 0; k < d; ++k) s += (LD)p.h[i * d + k] * p.w[j * d + k];
      x[i * v + j] = s;
    }
  }
  auto wt = [&](int64_t c) -> LD { return p.cw.empty() ? 1 : p.cw[c]; };
  LD wsum = 0;
  for (int64_t c = 0; c < v; ++c) wsum += wt(c);
  const LD eps = o.label_smoothing, z = o.z_loss;
  std::vector<LD> rows(n, 0);
  LD denom = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (p.t[i] == o.ignore_index) continue;
    LD m = -INFINITY, s = 0;
    for (int64_t j = 0; j < v; ++j) m = std::max(m, x[i * v + j]);
    for (int64_t j = 0; j < v; ++j) s += std::exp(x[i * v + j] - m);
    const LD lse = m + std::log(s);
    const int64_t t = p.t[i];
    denom += wt(t);
    LD l = (1 - eps) * wt(t) * (lse - x[i * v + t]);
    for (int64_t j = 0; j < v; ++j) l += eps / v * wt(j) * (lse - x[i * v + j]);
    rows[i] = l + z * lse * lse;
    for (int64_t j = 0; j < v; ++j) {
      const LD pj = std::exp(x[i * v + j] - lse);
      g[i * v + j] = ((1 - eps) * wt(t) + eps / v * wsum + 2 * z * lse) * pj - eps / v * wt(j) -
                     (j == t ? (1 - eps) * wt(t) : 0);
    }
  }
  LD scale = 1;
  loss.clear();
  if (o.reduction == Reduction::kNone) {
    loss = rows;
  } else {
    LD tot = 0;
    for (LD r : rows) tot += r;
    scale = o.reduction == Reduction::kMean ? 1 / denom : 1 / (LD)o.normalizer;
    loss.push_back(tot * scale);
  }
  gh.assign(n * d, 0);
  gw.assign(v * d, 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < v; ++j) {
      const LD gij = g[i * v + j] * scale;
      for (int64_t k = 0; k < d; ++k) {
        gh[i * d + k] += gij * p.w[j * d + k];
        gw[j * d + k] += gij * p.h[i * d + k];
      }
    }
  }
}

void check(const Problem& p, const CrossEntropyOptions& o) {
  std::vector<LD> rl, rgh, rgw;
  reference(p, o, rl, rgh, rgw);
  std::vector<float> loss(o.reduction == Reduction::kNone ? p.n : 1), gh(p.n * p.d, 123.0f),
      gw(p.v * p.d, 123.0f), lse(p.n);
  LinearCrossEntropyOutputs out;
  out.loss = o.reduction == Reduction::kNone ? TensorView(loss.data(), {p.n})
                                             : TensorView(loss.data(), std::vector<int64_t>{});
  out.grad_hidden = TensorView(gh.data(), {p.n, p.d});
  out.grad_weight = TensorView(gw.data(), {p.v, p.d});
  out.lse = TensorView(lse.data(), {p.n});
  CrossEntropyOptions oo = o;
  if (!p.cw.empty()) oo.weight = ConstTensorView(p.cw.data(), {p.v});
  softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {p.n, p.d}),
                                ConstTensorView(p.w.data(), {p.v, p.d}),
                                ConstTensorView(p.t.data(), DType::i64, {p.n}), out, oo);
  for (std::size_t i = 0; i < loss.size(); ++i) {
    EXPECT_NEAR(loss[i], (double)rl[i], 2e-5 * (1 + std::fabs((double)rl[i]))) << "loss " << i;
  }
  LD gmax = 0;
  for (LD v : rgh) gmax = std::max(gmax, std::fabs(v));
  for (LD v : rgw) gmax = std::max(gmax, std::fabs(v));
  const double tol = 1e-5 * (double)gmax + 1e-7;
  for (std::size_t i = 0; i < gh.size(); ++i) ASSERT_NEAR(gh[i], (double)rgh[i], tol) << "gh " << i;
  for (std::size_t i = 0; i < gw.size(); ++i) ASSERT_NEAR(gw[i], (double)rgw[i], tol) << "gw " << i;
}

TEST(LinearCrossEntropy, MatchesMaterialisedForEveryOptionAndChunk) {
  for (int64_t chunk : {0, 1, 7, 64, 1000}) {
    for (Reduction red : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
      for (bool weights : {false, true}) {
        SCOPED_TRACE(testing::Message()
                     << "chunk " << chunk << " red " << int(red) << " w " << weights);
        const Problem p = make(9, 13, 150, 11, weights);
        CrossEntropyOptions o;
        o.vocab_chunk = chunk;
        o.reduction = red;
        check(p, o);
        o.label_smoothing = 0.1;
        o.z_loss = 1e-2;
        if (red == Reduction::kSum) o.normalizer = 3;
        check(p, o);
      }
    }
  }
}

// V over two 32768-class blocks: chunks restart at each block (a chunk size that does not
// divide the block), block partials merged in order.
TEST(LinearCrossEntropy, AcrossBlocks) {
  for (int64_t chunk : {0, 5000}) {
    for (bool weights : {false, true}) {
      SCOPED_TRACE(testing::Message() << "chunk " << chunk << " w " << weights);
      const Problem p = make(4, 8, 2 * 32768 + 100, 21, weights);
      CrossEntropyOptions o;
      o.vocab_chunk = chunk;
      o.label_smoothing = 0.1;
      o.z_loss = 1e-3;
      check(p, o);
    }
  }
}

TEST(LinearCrossEntropy, IgnoreIndexOption) {
  Problem p = make(6, 8, 40, 12, false);
  CrossEntropyOptions o;
  o.ignore_index = p.t[0];  // a real class id now means "skip this row"
  for (auto& t : p.t) {
    if (t == -100) t = 5;
  }
  check(p, o);
}

TEST(LinearCrossEntropy, GradOutputScalesRows) {
  const Problem p = make(4, 6, 30, 15, false);
  auto grads = [&](const CrossEntropyOptions& o, std::vector<float>& gh) {
    std::vector<float> loss(4);
    gh.assign(24, 0.0f);
    LinearCrossEntropyOutputs out;
    out.loss = TensorView(loss.data(), {4});
    out.grad_hidden = TensorView(gh.data(), {4, 6});
    softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {4, 6}),
                                  ConstTensorView(p.w.data(), {30, 6}),
                                  ConstTensorView(p.t.data(), DType::i64, {4}), out, o);
  };
  CrossEntropyOptions o;
  o.reduction = Reduction::kNone;
  std::vector<float> a, b;
  grads(o, a);
  std::vector<double> go{2, 0, -1, 4};
  o.grad_output = ConstTensorView(go.data(), {4});
  grads(o, b);
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(b[i], go[i / 6] * a[i], 1e-6) << i;
}

TEST(LinearCrossEntropy, WorkspaceFollowsChunkAndStaysSmall) {
  CrossEntropyOptions o;
  const int64_t n = 4096, d = 512;
  for (int64_t v : {32000, 128256}) {
    const int64_t ws = softmax::linear_cross_entropy_workspace_bytes(n, d, v, o);
    EXPECT_LT(ws, n * v * 4 / 20) << v;  // under 5% of the materialised f32 logits
  }
  o.vocab_chunk = 64;
  const int64_t a = softmax::linear_cross_entropy_workspace_bytes(n, d, 32000, o);
  o.vocab_chunk = 128;
  EXPECT_GT(softmax::linear_cross_entropy_workspace_bytes(n, d, 32000, o), a);
}

TEST(LinearCrossEntropy, LossOnlyAndEdges) {
  // Loss without gradients; a row whose target is the last column of the last chunk.
  Problem p = make(3, 4, 10, 13, false);
  p.t = {9, 0, 4};
  CrossEntropyOptions o;
  o.vocab_chunk = 3;
  o.reduction = Reduction::kNone;
  std::vector<float> loss(3);
  LinearCrossEntropyOutputs out;
  out.loss = TensorView(loss.data(), {3});
  softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {3, 4}),
                                ConstTensorView(p.w.data(), {10, 4}),
                                ConstTensorView(p.t.data(), DType::i64, {3}), out, o);
  std::vector<LD> rl, a, b;
  reference(p, o, rl, a, b);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(loss[i], (double)rl[i], 1e-5);
  // All ignored with mean: NaN and zero gradients.
  p.t = {-100, -100, -100};
  o.reduction = Reduction::kMean;
  float l = 0;
  std::vector<float> gh(12, 5.0f), gw(40, 5.0f);
  out.loss = TensorView(&l, std::vector<int64_t>{});
  out.grad_hidden = TensorView(gh.data(), {3, 4});
  out.grad_weight = TensorView(gw.data(), {10, 4});
  softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {3, 4}),
                                ConstTensorView(p.w.data(), {10, 4}),
                                ConstTensorView(p.t.data(), DType::i64, {3}), out, o);
  EXPECT_TRUE(std::isnan(l));
  for (float v : gh) EXPECT_EQ(v, 0.0f);
  for (float v : gw) EXPECT_EQ(v, 0.0f);
}

template <class Fn>
void expect_error(softmax::ErrorKind kind, const char* needle, Fn&& fn) {
  try {
    fn();
    ADD_FAILURE() << "no error (wanted " << needle << ")";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LinearCrossEntropy, ErrorsWriteNothing) {
  using softmax::ErrorKind;
  Problem p = make(3, 4, 10, 14, false);
  p.t = {0, 1, 2};
  float l = 7;
  std::vector<float> gh(12, 7.0f);
  LinearCrossEntropyOutputs out;
  out.loss = TensorView(&l, std::vector<int64_t>{});
  out.grad_hidden = TensorView(gh.data(), {3, 4});
  std::vector<double> hd(12);
  expect_error(ErrorKind::kDTypeMismatch, "'hidden'", [&] {
    softmax::linear_cross_entropy(ConstTensorView(hd.data(), {3, 4}),
                                  ConstTensorView(p.w.data(), {10, 4}),
                                  ConstTensorView(p.t.data(), DType::i64, {3}), out);
  });
  expect_error(ErrorKind::kShapeMismatch, "'weight'", [&] {
    softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {3, 4}),
                                  ConstTensorView(p.w.data(), {8, 5}),
                                  ConstTensorView(p.t.data(), DType::i64, {3}), out);
  });
  std::vector<int64_t> bad{0, 10, 1};
  expect_error(ErrorKind::kInvalidArgument, "targets[1] = 10", [&] {
    softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {3, 4}),
                                  ConstTensorView(p.w.data(), {10, 4}),
                                  ConstTensorView(bad.data(), DType::i64, {3}), out);
  });
  expect_error(ErrorKind::kInvalidArgument, "'hidden'", [&] {  // column stride 2: not BLAS-able
    softmax::linear_cross_entropy(ConstTensorView(p.h.data(), DType::f32, {3, 2}, {4, 2}),
                                  ConstTensorView(p.w.data(), {10, 2}),
                                  ConstTensorView(p.t.data(), DType::i64, {3}), out);
  });
  std::vector<float> q(30);
  expect_error(ErrorKind::kDTypeMismatch, "'targets'", [&] {
    softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {3, 4}),
                                  ConstTensorView(p.w.data(), {10, 4}),
                                  ConstTensorView(q.data(), {3, 10}), out);
  });
  expect_error(ErrorKind::kOverlap, "'grad_hidden'", [&] {
    LinearCrossEntropyOutputs o2 = out;
    o2.grad_hidden = TensorView(p.h.data(), {3, 4});
    softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {3, 4}),
                                  ConstTensorView(p.w.data(), {10, 4}),
                                  ConstTensorView(p.t.data(), DType::i64, {3}), o2);
  });
  EXPECT_EQ(l, 7.0f);
  for (float v : gh) EXPECT_EQ(v, 7.0f);
}

}  // namespace
