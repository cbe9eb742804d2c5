// src/ref/reference.cc
#include "src/ref/reference.hpp"

#include <cmath>
#include <limits>

namespace softmax::ref {
namespace {
constexpr LD kInf = std::numeric_limits<LD>::infinity();
constexpr LD kNaN = std::numeric_limits<LD>::quiet_NaN();

struct Stats {
  LD max, sum;
  LD rest;  // sum - 1: the terms other than one maximal element (log(sum) = log1p(rest))
  bool special, nan;
};
Stats stats(const std::vector<LD>& x, LD t) {
  Stats s{-kInf, 0, 0, false, false};
  for (LD v : x) {
    if (std::isnan(v))
      s.nan = true;
    else if (v > s.max)
      s.max = v;
  }
  s.special = s.nan || !std::isfinite(s.max);
  if (s.special) return s;
  bool skipped = false;  // one element equal to the max contributes exactly 1
  for (LD v : x) {
    if (!skipped && v == s.max) {
      skipped = true;
      continue;
    }
    s.rest += std::exp((v - s.max) / t);
  }
  s.sum = 1 + s.rest;
  return s;
}
}  // namespace

std::vector<LD> softmax(const std::vector<LD>& x, LD t) {
  const Stats s = stats(x, t);
  std::vector<LD> y(x.size(), kNaN);
  if (s.special) return y;
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = std::exp((x[i] - s.max) / t) / s.sum;
  return y;
}

std::vector<LD> log_softmax(const std::vector<LD>& x, LD t) {
  const Stats s = stats(x, t);
  std::vector<LD> y(x.size(), kNaN);
  if (s.special) return y;
  // log1p of the other terms: log(sum) keeps its full relative accuracy when sum is near 1
  // (e.g. {0, -87}: log(1 + 1.6e-38), which is 0 if 1 + rest is rounded first).
  const LD l = std::log1p(s.rest);
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - s.max) / t - l;
  return y;
}

LD logsumexp(const std::vector<LD>& x, LD t) {
  const Stats s = stats(x, t);
  if (s.nan) return kNaN;
  if (x.empty() || s.max == -kInf) return -kInf;
  if (s.max == kInf) return kInf;
  return s.max / t + std::log1p(s.rest);
}

int64_t argmax(const std::vector<LD>& x) {
  int64_t best = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) return static_cast<int64_t>(i);
    if (x[i] > x[best]) best = static_cast<int64_t>(i);
  }
  return best;
}

std::vector<LD> softmax_backward(const std::vector<LD>& y, const std::vector<LD>& dy,
                                 LD temperature) {
  LD s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += dy[i] * y[i];
  std::vector<LD> dx(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) dx[i] = y[i] * (dy[i] - s) / temperature;
  return dx;
}

std::vector<LD> log_softmax_backward(const std::vector<LD>& y, const std::vector<LD>& dy,
                                     LD temperature) {
  LD s = 0;
  for (LD v : dy) s += v;
  std::vector<LD> dx(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) dx[i] = (dy[i] - std::exp(y[i]) * s) / temperature;
  return dx;
}

LD sigmoid(LD x) {
  if (std::isnan(x)) return x;
  if (x >= 0) return 1 / (1 + std::exp(-x));
  const LD e = std::exp(x);
  return e / (1 + e);
}

namespace {
double ulp_error_fmt(LD got, LD exact, int digits, int min_e) {
  if (std::isnan(got) || std::isnan(exact)) {
    return std::isnan(got) && std::isnan(exact) ? 0.0 : std::numeric_limits<double>::infinity();
  }
  if (std::isinf(exact) || std::isinf(got)) {
    return got == exact ? 0.0 : std::numeric_limits<double>::infinity();
  }
  const LD a = std::fabs(exact);
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  const int ulp_exp = (a == 0 || e < min_e ? min_e : e) - digits;
  const LD ulp = std::ldexp(static_cast<LD>(1), ulp_exp);
  return static_cast<double>(std::fabs(got - exact) / ulp);
}

template <typename T>
double ulp_error_t(T got, LD exact) {
  if (std::isnan(got) || std::isnan(exact)) {
    return std::isnan(got) && std::isnan(exact) ? 0.0 : std::numeric_limits<double>::infinity();
  }
  if (std::isinf(exact) || std::isinf(got)) {
    return static_cast<LD>(got) == exact ? 0.0 : std::numeric_limits<double>::infinity();
  }
  const LD a = std::fabs(exact);
  int e;
  std::frexp(a, &e);                                       // a in [2^(e-1), 2^e)
  const int min_e = std::numeric_limits<T>::min_exponent;  // 2^(min_e-1) smallest normal
  const int digits = std::numeric_limits<T>::digits;
  const int ulp_exp = (a == 0 || e < min_e ? min_e : e) - digits;
  const LD ulp = std::ldexp(static_cast<LD>(1), ulp_exp);
  return static_cast<double>(std::fabs(static_cast<LD>(got) - exact) / ulp);
}
}  // namespace

double ulp_error(float got, LD exact) { return ulp_error_t(got, exact); }
double ulp_error(double got, LD exact) { return ulp_error_t(got, exact); }
double ulp_error(LD got, LD exact, int digits, int min_exponent) {
  return ulp_error_fmt(got, exact, digits, min_exponent);
}

}  // namespace softmax::ref
