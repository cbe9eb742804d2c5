// tests/cpu/nll_loss_test.cc: nll_loss against ONNX NegativeLogLikelihoodLoss-13's reference
// semantics (onnx/backend/test/case/node/negativeloglikelihoodloss.py: loss[n, d] =
// -input[n, target[n, d], d] * weight[target[n, d]], 0 where target == ignore_index; "mean"
// divides by the sum of the gathered weights of the kept targets), on (N, C, d1) inputs with
// weights and ignore_index together, every reduction, and the gradient that follows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::CrossEntropyOptions;
using softmax::CrossEntropyOutputs;
using softmax::DType;
using softmax::Reduction;
using softmax::TensorView;

TEST(NllLoss, OnnxNCd1WeightIgnoreIndex) {
  const int64_t n = 3, c = 5, d1 = 2;
  std::mt19937 rng(21);
  std::normal_distribution<double> nd(-2, 1);
  std::vector<double> x(n * c * d1), w{0.2, 0.3, 0.6, 0.1, 0.5};
  for (auto& v : x) v = nd(rng);
  std::vector<int32_t> t{2, 1, 0, 2, 1, 1};  // (N, d1)
  const int64_t ignore = 1;
  auto at = [&](int64_t i, int64_t k, int64_t j) { return x[(i * c + k) * d1 + j]; };
  // ONNX reference.
  std::vector<double> per(n * d1);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d1; ++j) {
      const int32_t tt = t[i * d1 + j];
      if (tt == ignore) continue;
      per[i * d1 + j] = -at(i, tt, j) * w[tt];
      num += per[i * d1 + j];
      den += w[tt];
    }
  }
  for (Reduction red : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    CrossEntropyOptions o;
    o.weight = ConstTensorView(w.data(), {c});
    o.ignore_index = ignore;
    o.reduction = red;
    std::vector<double> loss(red == Reduction::kNone ? n * d1 : 1), g(x.size());
    CrossEntropyOutputs out;
    out.loss = red == Reduction::kNone ? TensorView(loss.data(), {n, d1})
                                       : TensorView(loss.data(), std::vector<int64_t>{});
    out.grad = TensorView(g.data(), {n, c, d1});
    softmax::nll_loss(ConstTensorView(x.data(), {n, c, d1}),
                      ConstTensorView(t.data(), DType::i32, {n, d1}), out, o);
    if (red == Reduction::kNone) {
      for (int64_t r = 0; r < n * d1; ++r) EXPECT_DOUBLE_EQ(loss[r], per[r]);
    } else {
      EXPECT_DOUBLE_EQ(loss[0], red == Reduction::kSum ? num : num / den);
    }
    const double scale = red == Reduction::kMean ? 1 / den : 1;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t k = 0; k < c; ++k) {
        for (int64_t j = 0; j < d1; ++j) {
          const int32_t tt = t[i * d1 + j];
          const double want = (tt != ignore && k == tt) ? -w[tt] * scale : 0.0;
          EXPECT_DOUBLE_EQ(g[(i * c + k) * d1 + j], want);
        }
      }
    }
  }
}

TEST(NllLoss, Bf16LogProbsAndNoLseOutputs) {
  std::vector<uint16_t> lp(6, 0xBF80);  // -1.0 in bf16
  std::vector<int64_t> t{0, 2};
  float loss = 0;
  CrossEntropyOutputs out;
  out.loss = TensorView(&loss, std::vector<int64_t>{});
  softmax::nll_loss(ConstTensorView(lp.data(), DType::bf16, {2, 3}),
                    ConstTensorView(t.data(), DType::i64, {2}), out);
  EXPECT_EQ(loss, 1.0f);
  std::vector<float> lse(2);
  out.lse = TensorView(lse.data(), {2});
  EXPECT_THROW(softmax::nll_loss(ConstTensorView(lp.data(), DType::bf16, {2, 3}),
                                 ConstTensorView(t.data(), DType::i64, {2}), out),
               softmax::Error);
}

}  // namespace
