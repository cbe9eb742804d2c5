// src/ref/serving_reference.cc: see serving_reference.hpp.
#include "src/ref/serving_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace softmax::ref {

std::vector<LD> process_logits(std::vector<LD> x, const ProcessorsRef& p) {
  std::map<int64_t, int64_t> count;
  for (int64_t id : p.prev) ++count[id];
  for (const auto& [id, c] : count) {
    LD v = x[id];
    if (p.repetition != 1) v = v > 0 ? v / p.repetition : v * p.repetition;
    v -= static_cast<LD>(c) * p.frequency + (c > 0 ? p.presence : 0);
    x[id] = v;
  }
  for (const auto& [id, b] : p.bias) x[id] += b;
  const LD ninf = -std::numeric_limits<LD>::infinity();
  for (int64_t id : p.banned) x[id] = ninf;
  if (p.generated < p.min_tokens) {
    for (int64_t id : p.eos) x[id] = ninf;
  }
  return x;
}

std::vector<LD> sparsemax(const std::vector<LD>& z) {
  // sum_i max(z_i - tau, 0) is continuous and decreasing in tau: bisect for the value 1.
  LD hi = -std::numeric_limits<LD>::infinity();
  for (LD v : z) hi = std::max(hi, v);
  LD lo = hi - 1;  // the sum is >= 1 here
  auto mass = [&](LD tau) {
    LD s = 0;
    for (LD v : z) s += std::max<LD>(v - tau, 0);
    return s;
  };
  for (int it = 0; it < 200; ++it) {
    const LD mid = (lo + hi) / 2;
    (mass(mid) >= 1 ? lo : hi) = mid;
  }
  // Exact tau on the support found: (sum of support - 1) / |support|.
  LD s = 0;
  int64_t k = 0;
  for (LD v : z) {
    if (v > lo) {
      s += v;
      ++k;
    }
  }
  const LD tau = (s - 1) / static_cast<LD>(k);
  std::vector<LD> y(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) y[i] = std::max<LD>(z[i] - tau, 0);
  return y;
}

std::vector<LD> sparsemax_backward(const std::vector<LD>& y, const std::vector<LD>& dy) {
  LD s = 0;
  int64_t k = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] > 0) {
      s += dy[i];
      ++k;
    }
  }
  std::vector<LD> dx(y.size(), 0);
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] > 0) dx[i] = dy[i] - s / static_cast<LD>(k);
  }
  return dx;
}

}  // namespace softmax::ref
