// tests/cpu/adaptive_softmax_test.cc: adaptive softmax log-probs, output / loss and predict
// against a long double evaluation of PyTorch's definition, gradients of the loss against long
// double finite differences, and the argument errors. (tests/python/test_large_vocab.py
// compares with torch.nn.AdaptiveLogSoftmaxWithLoss itself.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "large_vocab_test_util.hpp"
#include "softmax/adaptive_softmax.hpp"
#include "softmax/error.hpp"
#include "src/ref/large_vocab_reference.hpp"

namespace {

using lvtest::LD;
using lvtest::Mat;
using softmax::AdaptiveTail;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::ref::LMat;

struct Model {
  Mat x, head;
  std::vector<float> bias;
  std::vector<Mat> proj, out;
  std::vector<int64_t> cutoffs;
  int64_t n_classes;
  std::vector<AdaptiveTail> tails() const {
    std::vector<AdaptiveTail> t;
    for (std::size_t i = 0; i < proj.size(); ++i) t.push_back({proj[i].view(), out[i].view()});
    return t;
  }
};

// torch's layout: cutoffs {5, 12}, n_classes 30, D 8, div_value 2 -> tail dims 4 and 2.
Model make_model(uint64_t seed, int64_t n) {
  std::mt19937_64 rng(seed);
  Model m;
  m.cutoffs = {5, 12};
  m.n_classes = 30;
  const int64_t d = 8;
  m.x = lvtest::random_mat(rng, n, d, 1.0);
  m.head = lvtest::random_mat(rng, 5 + 2, d, 0.5);
  std::normal_distribution<double> nd(0, 0.3);
  for (int i = 0; i < 7; ++i) m.bias.push_back(static_cast<float>(nd(rng)));
  const std::vector<int64_t> bounds{5, 12, 30};
  for (int i = 0; i < 2; ++i) {
    const int64_t h = d >> (i + 1);
    m.proj.push_back(lvtest::random_mat(rng, h, d, 0.6));
    m.out.push_back(lvtest::random_mat(
        rng, bounds[static_cast<std::size_t>(i) + 1] - bounds[static_cast<std::size_t>(i)], h,
        0.8));
  }
  return m;
}

std::vector<LD> ref_row(const Model& m, const std::vector<LD>& x, const LMat& head,
                        const std::vector<LD>& bias, const std::vector<LMat>& proj,
                        const std::vector<LMat>& out) {
  return softmax::ref::adaptive_log_prob(x, head, bias, proj, out, m.cutoffs);
}

struct Exact {
  LMat head;
  std::vector<LD> bias;
  std::vector<LMat> proj, out;
};
Exact exact(const Model& m) {
  Exact e{m.head.exact(), lvtest::exact(m.bias), {}, {}};
  for (const Mat& p : m.proj) e.proj.push_back(p.exact());
  for (const Mat& o : m.out) e.out.push_back(o.exact());
  return e;
}

TEST(AdaptiveSoftmax, LogProbOutputLossAndPredictMatchReference) {
  const Model m = make_model(1, 9);
  const Exact e = exact(m);
  const auto tails = m.tails();
  const ConstTensorView bias(m.bias.data(), {7});
  const auto lp = softmax::adaptive_log_prob(m.x.view(), m.head.view(), tails, m.cutoffs, bias);
  const auto pred = softmax::adaptive_predict(m.x.view(), m.head.view(), tails, m.cutoffs, bias);
  std::vector<int64_t> target;
  for (int64_t i = 0; i < m.x.rows; ++i) target.push_back((i * 7 + 3) % m.n_classes);
  const auto r = softmax::adaptive_log_softmax_with_loss(
      m.x.view(), {target.data(), DType::i64, {m.x.rows}}, m.head.view(), tails, m.cutoffs, bias);
  LD loss = 0;
  for (int64_t i = 0; i < m.x.rows; ++i) {
    const std::vector<LD> ref = ref_row(m, m.x.row(i), e.head, e.bias, e.proj, e.out);
    ASSERT_EQ(static_cast<int64_t>(ref.size()), m.n_classes);
    LD sum = 0;
    for (int64_t k = 0; k < m.n_classes; ++k) {
      sum += std::exp(ref[static_cast<std::size_t>(k)]);
      EXPECT_NEAR(lp[static_cast<std::size_t>(i * m.n_classes + k)],
                  static_cast<double>(ref[static_cast<std::size_t>(k)]),
                  2e-6 * (1 + std::fabs(static_cast<double>(ref[static_cast<std::size_t>(k)]))));
    }
    EXPECT_NEAR(static_cast<double>(sum), 1.0, 1e-15);
    const LD want = ref[static_cast<std::size_t>(target[static_cast<std::size_t>(i)])];
    EXPECT_NEAR(r.output[static_cast<std::size_t>(i)], static_cast<double>(want),
                2e-6 * (1 + std::fabs(static_cast<double>(want))));
    loss -= want / static_cast<LD>(m.x.rows);
    const auto best = std::max_element(ref.begin(), ref.end()) - ref.begin();
    EXPECT_EQ(pred[static_cast<std::size_t>(i)], best) << "row " << i;
  }
  EXPECT_NEAR(r.loss, static_cast<double>(loss), 2e-6 * (1 + std::fabs(static_cast<double>(loss))));
}

TEST(AdaptiveSoftmax, GradientsMatchFiniteDifferences) {
  Model m = make_model(2, 6);
  const std::vector<int64_t> target{0, 4, 5, 11, 12, 29};  // head, both cluster edges
  softmax::AdaptiveSoftmaxOptions o;
  o.compute_grad = true;
  o.grad_scale = 2.0;
  const auto tails = m.tails();
  const auto r = softmax::adaptive_log_softmax_with_loss(
      m.x.view(), {target.data(), DType::i64, {6}}, m.head.view(), tails, m.cutoffs,
      ConstTensorView(m.bias.data(), {7}), o);
  const Exact e0 = exact(m);
  // 2 * mean(-log p(target)) as a function of the exact parameters.
  auto objective = [&](const Exact& e, const LMat& x) {
    LD s = 0;
    for (int64_t i = 0; i < x.rows; ++i) {
      const std::vector<LD> row(x.v.begin() + i * x.cols, x.v.begin() + (i + 1) * x.cols);
      s -= ref_row(m, row, e.head, e.bias, e.proj,
                   e.out)[static_cast<std::size_t>(target[static_cast<std::size_t>(i)])];
    }
    return 2 * s / static_cast<LD>(x.rows);
  };
  const LMat x0 = m.x.exact();
  auto check = [&](const std::vector<float>& got, std::size_t count,
                   const std::function<LD&(Exact&, LMat&, std::size_t)>& slot, const char* what) {
    ASSERT_EQ(got.size(), count) << what;
    for (std::size_t q = 0; q < count; ++q) {
      Exact e = e0;
      LMat x = x0;
      const LD v0 = slot(e, x, q);
      const LD fd = lvtest::central_diff(
          [&](LD v) {
            slot(e, x, q) = v;
            return objective(e, x);
          },
          v0);
      EXPECT_NEAR(got[q], static_cast<double>(fd), 2e-6) << what << "[" << q << "]";
    }
  };
  check(
      r.grad_input, x0.v.size(), [](Exact&, LMat& x, std::size_t q) -> LD& { return x.v[q]; },
      "grad_input");
  check(
      r.grad_head_weight, e0.head.v.size(),
      [](Exact& e, LMat&, std::size_t q) -> LD& { return e.head.v[q]; }, "grad_head_weight");
  check(
      r.grad_head_bias, e0.bias.size(),
      [](Exact& e, LMat&, std::size_t q) -> LD& { return e.bias[q]; }, "grad_head_bias");
  for (std::size_t c = 0; c < 2; ++c) {
    check(
        r.grad_tail_projection[c], e0.proj[c].v.size(),
        [c](Exact& e, LMat&, std::size_t q) -> LD& { return e.proj[c].v[q]; },
        "grad_tail_projection");
    check(
        r.grad_tail_output[c], e0.out[c].v.size(),
        [c](Exact& e, LMat&, std::size_t q) -> LD& { return e.out[c].v[q]; }, "grad_tail_output");
  }
}

TEST(AdaptiveSoftmax, Errors) {
  const Model m = make_model(3, 2);
  const auto tails = m.tails();
  std::vector<int64_t> target{0, 30};
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const softmax::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(
      [&] {
        softmax::adaptive_log_softmax_with_loss(m.x.view(), {target.data(), DType::i64, {2}},
                                                m.head.view(), tails, m.cutoffs, std::nullopt);
      },
      "'target[1]' = 30");
  const std::vector<int64_t> unsorted{12, 5}, zero{0, 12}, one{5};
  expect_error(
      [&] { softmax::adaptive_log_prob(m.x.view(), m.head.view(), tails, unsorted, std::nullopt); },
      "'cutoffs[1]' = 5");
  expect_error(
      [&] { softmax::adaptive_log_prob(m.x.view(), m.head.view(), tails, zero, std::nullopt); },
      "'cutoffs[0]' = 0");
  expect_error(
      [&] { softmax::adaptive_log_prob(m.x.view(), m.head.view(), tails, one, std::nullopt); },
      "'tail_weights'");
  expect_error(
      [&] {
        softmax::adaptive_predict(m.x.view(), m.proj[0].view(), tails, m.cutoffs, std::nullopt);
      },
      "'head_weight'");
  std::vector<AdaptiveTail> swapped{tails[1], tails[0]};
  expect_error(
      [&] {
        softmax::adaptive_log_prob(m.x.view(), m.head.view(), swapped, m.cutoffs, std::nullopt);
      },
      "'tail_weights[0].output'");
}

}  // namespace
