// tests/cpu/sparsemax_test.cc: sparsemax and its backward (softmax/sparsemax.hpp) against the
// long double bisection reference (src/ref/serving_reference.cc) within the documented bound;
// exact zeros, sum 1, temperature, -inf, NaN rows, axes and strides, in place; the backward pass
// against the reference Jacobian product and central differences; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sparsemax.hpp"
#include "src/ref/serving_reference.hpp"

namespace {

using softmax::DType;
using LD = long double;

std::vector<double> run(const std::vector<double>& x, int64_t b, int64_t n, double t = 1.0) {
  std::vector<double> y(x.size());
  softmax::SoftmaxOptions o;
  o.temperature = t;
  softmax::sparsemax(softmax::ConstTensorView(x.data(), DType::f64, {b, n}),
                     softmax::TensorView(y.data(), DType::f64, {b, n}), o);
  return y;
}

TEST(Sparsemax, MatchesReference) {
  std::mt19937 rng(3);
  for (double scale : {0.1, 1.0, 10.0}) {
    std::normal_distribution<double> nd(0.0, scale);
    const int64_t b = 4, n = 50;
    std::vector<double> x(static_cast<std::size_t>(b * n));
    for (auto& e : x) e = nd(rng);
    x[5] = -INFINITY;
    for (double t : {1.0, 0.5}) {
      const std::vector<double> y = run(x, b, n, t);
      std::vector<float> xf(x.begin(), x.end()), yf(x.size());
      softmax::SoftmaxOptions o;
      o.temperature = t;
      softmax::sparsemax(softmax::ConstTensorView(xf.data(), DType::f32, {b, n}),
                         softmax::TensorView(yf.data(), DType::f32, {b, n}), o);
      for (int64_t r = 0; r < b; ++r) {
        std::vector<LD> z(static_cast<std::size_t>(n)), zf(static_cast<std::size_t>(n));
        LD zmax = 0;
        for (int64_t i = 0; i < n; ++i) {
          z[i] = static_cast<LD>(x[r * n + i]) / t;
          zf[i] = static_cast<LD>(xf[r * n + i]) / t;
          if (std::isfinite(z[i])) zmax = std::max(zmax, std::fabs(z[i]));
        }
        const std::vector<LD> ref = softmax::ref::sparsemax(z), reff = softmax::ref::sparsemax(zf);
        double sum = 0;
        int zeros = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double bound = 0x1p-53 * std::fabs(static_cast<double>(ref[i])) +
                               n * 0x1p-52 * static_cast<double>(zmax);
          EXPECT_NEAR(y[r * n + i], static_cast<double>(ref[i]), bound) << r << "," << i;
          const double bf = 0x1p-24 * std::fabs(static_cast<double>(reff[i])) +
                            n * 0x1p-52 * static_cast<double>(zmax);
          EXPECT_NEAR(yf[r * n + i], static_cast<double>(reff[i]), bf) << r << "," << i;
          if (ref[i] == 0) EXPECT_EQ(y[r * n + i], 0.0);
          sum += y[r * n + i];
          zeros += y[r * n + i] == 0;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
        if (scale >= 1.0) EXPECT_GT(zeros, 0) << "sparse for spread-out logits";
      }
      EXPECT_EQ(y[5], 0.0);  // -inf
    }
  }
}

TEST(Sparsemax, SpecialRowsAxisInPlace) {
  // Two-point case: sparsemax([a, b]) = [(1 + a - b) / 2, ...] when |a - b| < 1, else one-hot.
  EXPECT_EQ(run({0.25, 0.0}, 1, 2), (std::vector<double>{0.625, 0.375}));
  EXPECT_EQ(run({3.0, 0.0}, 1, 2), (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(run({1.0, 1.0, 1.0, 1.0}, 1, 4), (std::vector<double>{0.25, 0.25, 0.25, 0.25}));
  const std::vector<double> nan_row = run({1.0, NAN, 0.0, INFINITY, -INFINITY, -INFINITY}, 3, 2);
  EXPECT_TRUE(std::isnan(nan_row[0]) && std::isnan(nan_row[1]));
  EXPECT_TRUE(std::isnan(nan_row[2]) && std::isnan(nan_row[3]));
  EXPECT_TRUE(std::isnan(nan_row[4]) && std::isnan(nan_row[5]));
  // axis 0 of (3, 2) == axis -1 of its transpose; in place.
  std::vector<double> x{0.1, 2.0, 0.5, -1.0, 0.3, 1.5};
  std::vector<double> xt{0.1, 0.5, 0.3, 2.0, -1.0, 1.5};
  std::vector<double> y(6);
  softmax::SoftmaxOptions o;
  o.axis = 0;
  softmax::sparsemax(softmax::ConstTensorView(x.data(), DType::f64, {3, 2}),
                     softmax::TensorView(y.data(), DType::f64, {3, 2}), o);
  const std::vector<double> yt = run(xt, 2, 3);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) EXPECT_EQ(y[i * 2 + j], yt[j * 3 + i]);
  }
  softmax::sparsemax(softmax::ConstTensorView(xt.data(), DType::f64, {2, 3}),
                     softmax::TensorView(xt.data(), DType::f64, {2, 3}));
  EXPECT_EQ(xt, yt);
}

TEST(Sparsemax, Backward) {
  std::mt19937 rng(9);
  std::normal_distribution<double> nd(0.0, 1.0);
  const int64_t n = 30;
  std::vector<double> x(n), dy(n), dx(n);
  for (auto& e : x) e = nd(rng);
  for (auto& e : dy) e = nd(rng);
  const double t = 0.8;
  const std::vector<double> y = run(x, 1, n, t);
  softmax::SoftmaxOptions o;
  o.temperature = t;
  softmax::sparsemax_backward(softmax::ConstTensorView(y.data(), DType::f64, {1, n}),
                              softmax::ConstTensorView(dy.data(), DType::f64, {1, n}),
                              softmax::TensorView(dx.data(), DType::f64, {1, n}), o);
  const std::vector<LD> ref = softmax::ref::sparsemax_backward(
      std::vector<LD>(y.begin(), y.end()), std::vector<LD>(dy.begin(), dy.end()));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(dx[i], static_cast<double>(ref[i] / t), 1e-14);
  // Central differences of sum(dy * sparsemax(x / t)) (piecewise linear: exact away from kinks).
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> xp = x, xm = x;
    const double h = 1e-7;
    xp[i] += h;
    xm[i] -= h;
    const std::vector<double> yp = run(xp, 1, n, t), ym = run(xm, 1, n, t);
    double fd = 0;
    for (int64_t j = 0; j < n; ++j) fd += dy[j] * (yp[j] - ym[j]) / (2 * h);
    EXPECT_NEAR(dx[i], fd, 1e-6) << i;
  }
}

TEST(Sparsemax, Errors) {
  std::vector<double> x{1, 2, 3, 4}, y(4, -7);
  softmax::SoftmaxOptions o;
  o.temperature = 0;
  EXPECT_THROW(softmax::sparsemax(softmax::ConstTensorView(x.data(), DType::f64, {2, 2}),
                                  softmax::TensorView(y.data(), DType::f64, {2, 2}), o),
               softmax::Error);
  o.temperature = 1;
  o.axis = 3;
  EXPECT_THROW(softmax::sparsemax(softmax::ConstTensorView(x.data(), DType::f64, {2, 2}),
                                  softmax::TensorView(y.data(), DType::f64, {2, 2}), o),
               softmax::Error);
  EXPECT_THROW(softmax::sparsemax(softmax::ConstTensorView(x.data(), DType::f64, {2, 2}),
                                  softmax::TensorView(y.data(), DType::f64, {4})),
               softmax::Error);
  EXPECT_THROW(softmax::sparsemax(softmax::ConstTensorView(x.data(), DType::f64, {2, 2}),
                                  softmax::TensorView(y.data(), DType::f32, {2, 2})),
               softmax::Error);
  std::vector<float> dyf(4);
  EXPECT_THROW(softmax::sparsemax_backward(softmax::ConstTensorView(x.data(), DType::f64, {2, 2}),
                                           softmax::ConstTensorView(dyf.data(), DType::f32, {2, 2}),
                                           softmax::TensorView(y.data(), DType::f64, {2, 2})),
               softmax::Error);
  EXPECT_EQ(y, std::vector<double>(4, -7));
}

}  // namespace
