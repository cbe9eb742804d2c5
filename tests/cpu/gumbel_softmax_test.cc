// tests/cpu/gumbel_softmax_test.cc: gumbel_softmax and its backward
// (softmax/gumbel_softmax.hpp): the soft output against softmax((x + g) / tau) in long double
// with the documented noise; the hard output is the one-hot Gumbel-max draw (its argmax follows
// softmax(x): chi-square); the backward pass against the long double Jacobian product, equal
// for hard and soft; seeds, axes, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/gumbel_softmax.hpp"
#include "src/core/philox.hpp"
#include "src/ref/reference.hpp"

namespace {

using softmax::DType;
using softmax::GumbelSoftmaxOptions;
using LD = long double;

// The documented noise of row r, position i.
LD noise(uint64_t seed, uint64_t offset, uint64_t r, uint32_t i) {
  const double u = softmax::detail::philox_open01(seed, offset, r, i);
  return -std::log(-std::log(static_cast<LD>(u)));
}

TEST(GumbelSoftmax, SoftMatchesReference) {
  const int64_t B = 3, V = 40;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(static_cast<std::size_t>(B * V));
  for (auto& e : x) e = nd(rng);
  for (double tau : {1.0, 0.5, 2.0}) {
    GumbelSoftmaxOptions o;
    o.tau = tau;
    std::vector<float> y(x.size());
    softmax::gumbel_softmax(softmax::ConstTensorView(x.data(), DType::f32, {B, V}),
                            softmax::TensorView(y.data(), DType::f32, {B, V}), o, 99, 4);
    for (int64_t r = 0; r < B; ++r) {
      std::vector<LD> z(static_cast<std::size_t>(V));
      for (int64_t i = 0; i < V; ++i) {
        // x + g rounded to f32 as documented.
        z[i] = static_cast<float>(static_cast<double>(x[r * V + i]) +
                                  static_cast<double>(noise(99, 4, r, static_cast<uint32_t>(i))));
      }
      const std::vector<LD> ref = softmax::ref::softmax(z, tau);
      for (int64_t i = 0; i < V; ++i)
        EXPECT_LE(softmax::ref::ulp_error(y[r * V + i], ref[i]), 4.0) << r << "," << i;
    }
  }
}

// Rows with no valid distribution (a NaN or +inf logit, every logit -inf): NaN in the soft
// output, and in the hard one too (never a plausible one-hot); a finite row next to them is
// unaffected.
TEST(GumbelSoftmax, InvalidRowsAreNaNInBothForms) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x{std::nanf(""), 0.0f, inf, 0.0f, -inf, -inf, 1.0f, 0.0f};
  for (bool hard : {false, true}) {
    GumbelSoftmaxOptions o;
    o.hard = hard;
    std::vector<float> y(x.size(), 7.0f);
    softmax::gumbel_softmax(softmax::ConstTensorView(x.data(), DType::f32, {4, 2}),
                            softmax::TensorView(y.data(), DType::f32, {4, 2}), o, 1);
    for (int i = 0; i < 6; ++i) EXPECT_TRUE(std::isnan(y[i])) << "hard " << hard << " " << i;
    EXPECT_FALSE(std::isnan(y[6]) || std::isnan(y[7]));
    EXPECT_NEAR(y[6] + y[7], 1.0f, 1e-6f);
  }
}

TEST(GumbelSoftmax, HardIsGumbelMaxDraw) {
  const std::vector<float> x{0.5f, -1.0f, 2.0f, 0.0f, 1.0f};
  const int64_t V = 5, n = 100000;
  std::vector<float> rows;
  for (int64_t i = 0; i < n; ++i) rows.insert(rows.end(), x.begin(), x.end());
  GumbelSoftmaxOptions o;
  o.hard = true;
  o.tau = 0.3;
  std::vector<float> y(rows.size());
  softmax::gumbel_softmax(softmax::ConstTensorView(rows.data(), DType::f32, {n, V}),
                          softmax::TensorView(y.data(), DType::f32, {n, V}), o, 7);
  std::vector<int64_t> cnt(V, 0);
  for (int64_t r = 0; r < n; ++r) {
    int ones = 0;
    for (int64_t i = 0; i < V; ++i) {
      ASSERT_TRUE(y[r * V + i] == 0.0f || y[r * V + i] == 1.0f);
      if (y[r * V + i] == 1.0f) {
        ++ones;
        ++cnt[i];
      }
    }
    ASSERT_EQ(ones, 1);
  }
  const std::vector<LD> p = softmax::ref::softmax(std::vector<LD>(x.begin(), x.end()));
  double chi2 = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double e = n * static_cast<double>(p[i]);
    chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
  }
  EXPECT_LE(chi2, 4 + 8 * std::sqrt(8.0) + 8);  // df 4, as sampling_test.cc's bound
  // Seeds matter; the same seed repeats.
  std::vector<float> y2(y.size()), y3(y.size());
  softmax::gumbel_softmax(softmax::ConstTensorView(rows.data(), DType::f32, {n, V}),
                          softmax::TensorView(y2.data(), DType::f32, {n, V}), o, 7);
  softmax::gumbel_softmax(softmax::ConstTensorView(rows.data(), DType::f32, {n, V}),
                          softmax::TensorView(y3.data(), DType::f32, {n, V}), o, 8);
  EXPECT_EQ(y, y2);
  EXPECT_NE(y, y3);
}

// dx = y (dy - sum(dy y)) / tau on the soft y; hard (straight-through) gives the same dx.
TEST(GumbelSoftmax, Backward) {
  const int64_t B = 2, V = 16;
  std::mt19937 rng(2);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> x(static_cast<std::size_t>(B * V)), dy(x.size());
  for (auto& e : x) e = nd(rng);
  for (auto& e : dy) e = nd(rng);
  GumbelSoftmaxOptions o;
  o.tau = 0.7;
  std::vector<double> dx(x.size()), dxh(x.size());
  softmax::gumbel_softmax_backward(softmax::ConstTensorView(x.data(), DType::f64, {B, V}),
                                   softmax::ConstTensorView(dy.data(), DType::f64, {B, V}),
                                   softmax::TensorView(dx.data(), DType::f64, {B, V}), o, 3, 1);
  o.hard = true;
  softmax::gumbel_softmax_backward(softmax::ConstTensorView(x.data(), DType::f64, {B, V}),
                                   softmax::ConstTensorView(dy.data(), DType::f64, {B, V}),
                                   softmax::TensorView(dxh.data(), DType::f64, {B, V}), o, 3, 1);
  EXPECT_EQ(dx, dxh);
  for (int64_t r = 0; r < B; ++r) {
    std::vector<LD> z(static_cast<std::size_t>(V));
    for (int64_t i = 0; i < V; ++i)
      z[i] = x[r * V + i] + static_cast<double>(noise(3, 1, r, static_cast<uint32_t>(i)));
    const std::vector<LD> y = softmax::ref::softmax(z, 0.7L);
    LD s = 0;
    for (int64_t i = 0; i < V; ++i) s += dy[r * V + i] * y[i];
    for (int64_t i = 0; i < V; ++i) {
      const LD ref = y[i] * (dy[r * V + i] - s) / 0.7L;
      EXPECT_NEAR(dx[r * V + i], static_cast<double>(ref), 1e-14);
    }
  }
}

// Along axis 0 the rows are the columns: equal to the transposed call.
TEST(GumbelSoftmax, AxisAndErrors) {
  const int64_t R = 3, C = 4;
  std::vector<float> x{1, 2, 3, 4, 0, -1, 2, 5, 3, 3, 3, 3};
  std::vector<float> xt(x.size()), y(x.size()), yt(x.size());
  for (int64_t i = 0; i < R; ++i) {
    for (int64_t j = 0; j < C; ++j) xt[j * R + i] = x[i * C + j];
  }
  GumbelSoftmaxOptions o;
  o.axis = 0;
  softmax::gumbel_softmax(softmax::ConstTensorView(x.data(), DType::f32, {R, C}),
                          softmax::TensorView(y.data(), DType::f32, {R, C}), o, 5);
  o.axis = -1;
  softmax::gumbel_softmax(softmax::ConstTensorView(xt.data(), DType::f32, {C, R}),
                          softmax::TensorView(yt.data(), DType::f32, {C, R}), o, 5);
  for (int64_t i = 0; i < R; ++i) {
    for (int64_t j = 0; j < C; ++j) EXPECT_EQ(y[i * C + j], yt[j * R + i]);
  }
  std::vector<float> out(x.size(), -7);
  for (double bad : {0.0, -1.0, double{INFINITY}, std::nan("")}) {
    o.tau = bad;
    EXPECT_THROW(softmax::gumbel_softmax(softmax::ConstTensorView(x.data(), DType::f32, {R, C}),
                                         softmax::TensorView(out.data(), DType::f32, {R, C}), o, 5),
                 softmax::Error);
  }
  o.tau = 1;
  o.axis = 2;
  EXPECT_THROW(softmax::gumbel_softmax(softmax::ConstTensorView(x.data(), DType::f32, {R, C}),
                                       softmax::TensorView(out.data(), DType::f32, {R, C}), o, 5),
               softmax::Error);
  EXPECT_EQ(out, std::vector<float>(x.size(), -7));
}

}  // namespace
