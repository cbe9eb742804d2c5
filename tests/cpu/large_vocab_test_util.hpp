// tests/cpu/large_vocab_test_util.hpp: helpers of the sampled / hierarchical / adaptive softmax
// tests: random f32 matrices with their exact long double copies, central finite differences
// in long double, and the chi-square critical value.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "softmax/tensor.hpp"
#include "src/ref/large_vocab_reference.hpp"

namespace lvtest {

using LD = long double;
using softmax::ref::LMat;

// An f32 matrix and the exact long double values it stores.
struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<float> f;
  softmax::ConstTensorView view() const { return {f.data(), {rows, cols}}; }
  LMat exact() const {
    LMat m{rows, cols, {}};
    m.v.assign(f.begin(), f.end());
    return m;
  }
  std::vector<LD> row(int64_t i) const {
    return {f.begin() + i * cols, f.begin() + (i + 1) * cols};
  }
};

inline Mat random_mat(std::mt19937_64& rng, int64_t rows, int64_t cols, double sigma) {
  std::normal_distribution<double> nd(0, sigma);
  Mat m{rows, cols, std::vector<float>(static_cast<std::size_t>(rows * cols))};
  for (auto& x : m.f) x = static_cast<float>(nd(rng));
  return m;
}

inline std::vector<LD> exact(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Central difference (f(x + h) - f(x - h)) / 2h of a long double function of one coordinate.
inline LD central_diff(const std::function<LD(LD)>& f, LD x0, LD h = 1e-6L) {
  return (f(x0 + h) - f(x0 - h)) / (2 * h);
}

// Upper critical value of the chi-square distribution with `df` degrees of freedom at tail
// probability 1e-6 (Wilson-Hilferty; z = 4.753).
inline double chi2_critical(double df) {
  const double z = 4.753, a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

}  // namespace lvtest
