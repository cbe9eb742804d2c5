// src/ref/cross_entropy_reference.cc: see cross_entropy_reference.hpp.
#include "src/ref/cross_entropy_reference.hpp"

#include <algorithm>
#include <cmath>

namespace softmax::ref {

LD class_weight(const CrossEntropyProblem& p, int64_t c) { return p.w.empty() ? 1 : p.w[c]; }

namespace {

// -a * lp with the convention 0 * log 0 = 0: a class without mass contributes 0 even at lp = -inf.
LD xlogp(LD a, LD lp) { return a == 0 ? 0 : -a * lp; }

}  // namespace

LD cross_entropy_loss(const CrossEntropyProblem& p, std::vector<LD>* rows) {
  LD total = 0, denom = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    const LD* x = &p.x[r * p.c];
    LD lse = 0;
    if (p.logits) {
      LD m = -INFINITY;
      for (int64_t i = 0; i < p.c; ++i) m = std::max(m, x[i]);
      LD s = 0;
      for (int64_t i = 0; i < p.c; ++i) s += std::exp(x[i] - m);
      lse = m + std::log(s);
    }
    auto lp = [&](int64_t i) { return x[i] - lse; };
    LD l = 0;
    if (p.q.empty()) {
      const int64_t t = p.t[r];
      if (t != p.ignore) {
        denom += class_weight(p, t);
        l = xlogp((1 - p.eps) * class_weight(p, t), lp(t));
        LD sm = 0;
        for (int64_t i = 0; i < p.c; ++i) sm += xlogp(class_weight(p, i), lp(i));
        l += (p.eps == 0 ? 0 : p.eps / p.c * sm) + p.z * lse * lse;
      }
    } else {
      denom += 1;
      for (int64_t i = 0; i < p.c; ++i) {
        l += xlogp(class_weight(p, i) * ((1 - p.eps) * p.q[r * p.c + i] + p.eps / p.c), lp(i));
      }
      l += p.z * lse * lse;
    }
    if (rows) rows->push_back(l);
    total += l;
  }
  if (p.red == Reduction::kMean) return total / denom;
  if (p.red == Reduction::kSum) return total / p.normalizer;
  return total;
}

}  // namespace softmax::ref
