// tests/cpu/sampling_test.cc: next-token sampling (softmax/sampling.hpp).
//
// - Exact filter sets: dyadic probabilities at and around every boundary (top-k, top-p, min-p,
//   their order, ties), and the radix-select engine against a sort + prefix-sum reference on
//   random and adversarial rows (must agree exactly).
// - Statistical: frequencies of fixed-seed draws against the tempered, filtered distribution
//   computed in long double (chi-square and a per-token bound, both stated below); tokens of
//   probability 0 never drawn in millions of draws.
// - Greedy == argmax (also on ../shared/data/stories260K_logits.npy when present).
// - Determinism: bitwise across thread counts, SIMD targets, batch compositions; seeds, offsets
//   and streams matter. Errors: every rule of the header, nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "softmax/dispatch.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "softmax/sampling.hpp"
#include "src/base/half.hpp"
#include "src/core/sampling_select.hpp"

namespace {

using softmax::DType;
using softmax::SamplingMethod;
using softmax::SamplingParams;
using softmax::detail::FilterSpec;
using softmax::detail::RowFilter;
using softmax::detail::u128;
using LD = long double;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

softmax::ConstTensorView view2(const std::vector<float>& x, int64_t b, int64_t v) {
  return softmax::ConstTensorView(x.data(), DType::f32, {b, v});
}

// D draws per row, shape (B, D).
std::vector<int64_t> draw_many(const std::vector<float>& x, int64_t b, int64_t v,
                               const SamplingParams& p, uint64_t seed, int64_t d,
                               uint64_t offset = 0) {
  std::vector<int64_t> out(static_cast<std::size_t>(b * d));
  softmax::sample(view2(x, b, v), softmax::TensorView(out.data(), DType::i64, {b, d}), p, seed,
                  offset);
  return out;
}

std::vector<int64_t> kept_of(const std::vector<float>& w, const FilterSpec& f) {
  RowFilter<float> rf;
  const float wmax = *std::max_element(w.begin(), w.end());
  rf.filter(w.data(), static_cast<int64_t>(w.size()), wmax, f);
  return std::vector<int64_t>(rf.kept_ids.begin(), rf.kept_ids.end());
}

using Ids = std::vector<int64_t>;

std::vector<float> random_logits(int64_t b, int64_t v, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(b * v));
  for (auto& e : x) e = nd(rng);
  return x;
}

// ---------------------------------------------------------------------------------------------
// Exact filter sets on dyadic probabilities (weights are the probabilities themselves).

TEST(SamplingFilter, TopPDyadicBoundaries) {
  // p = 1/2, 1/4, 1/8, 1/16, 1/32, 1/32, shuffled over ids.
  const std::vector<float> w{0.0625f, 0.5f, 0.03125f, 0.125f, 0.25f, 0.03125f};
  auto top_p = [&](double p) {
    FilterSpec f;
    f.top_p = p;
    return kept_of(w, f);
  };
  EXPECT_EQ(top_p(0.5), (Ids{1}));  // reaches p exactly with one token
  EXPECT_EQ(top_p(std::nextafter(0.5, 0.0)), (Ids{1}));
  EXPECT_EQ(top_p(std::nextafter(0.5, 1.0)), (Ids{1, 4}));  // just above: needs the next
  EXPECT_EQ(top_p(0.75), (Ids{1, 4}));
  EXPECT_EQ(top_p(std::nextafter(0.75, 1.0)), (Ids{1, 3, 4}));
  EXPECT_EQ(top_p(0.875), (Ids{1, 3, 4}));
  EXPECT_EQ(top_p(0.9375), (Ids{0, 1, 3, 4}));
  EXPECT_EQ(top_p(std::nextafter(0.9375, 1.0)), (Ids{0, 1, 2, 3, 4}));  // tie: lower id first
  EXPECT_EQ(top_p(0.96875), (Ids{0, 1, 2, 3, 4}));
  EXPECT_EQ(top_p(std::nextafter(0.96875, 1.0)), (Ids{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(top_p(1.0), (Ids{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(top_p(1e-300), (Ids{1}));  // tiny p: the top token alone
}

TEST(SamplingFilter, TopKAndTies) {
  const std::vector<float> w{0.125f, 0.25f, 0.125f, 0.25f, 0.125f, 0.125f};
  auto top_k = [&](int64_t k) {
    FilterSpec f;
    f.top_k = k;
    return kept_of(w, f);
  };
  EXPECT_EQ(top_k(1), (Ids{1}));  // equal weights: the lower id
  EXPECT_EQ(top_k(2), (Ids{1, 3}));
  EXPECT_EQ(top_k(3), (Ids{0, 1, 3}));  // ties at the boundary: lower ids first
  EXPECT_EQ(top_k(4), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(top_k(5), (Ids{0, 1, 2, 3, 4}));
  EXPECT_EQ(top_k(6), (Ids{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(top_k(100), (Ids{0, 1, 2, 3, 4, 5}));
  // top-p through a tie: 1/4 + 1/4 = 1/2 exactly, then ties of 1/8 by id.
  auto top_p = [&](double p) {
    FilterSpec f;
    f.top_p = p;
    return kept_of(w, f);
  };
  EXPECT_EQ(top_p(0.25), (Ids{1}));
  EXPECT_EQ(top_p(0.5), (Ids{1, 3}));
  EXPECT_EQ(top_p(0.625), (Ids{0, 1, 3}));
  EXPECT_EQ(top_p(std::nextafter(0.625, 1.0)), (Ids{0, 1, 2, 3}));
}

TEST(SamplingFilter, MinPBoundaries) {
  const std::vector<float> w{0.0625f, 0.5f, 0.03125f, 0.125f, 0.25f, 0.03125f};
  auto min_p = [&](double m) {
    FilterSpec f;
    f.min_p = m;
    return kept_of(w, f);
  };
  EXPECT_EQ(min_p(1.0), (Ids{1}));
  EXPECT_EQ(min_p(0.5), (Ids{1, 4}));  // p >= 0.5 * p_max = 1/4 (equality kept)
  EXPECT_EQ(min_p(std::nextafter(0.5, 1.0)), (Ids{1}));
  EXPECT_EQ(min_p(0.25), (Ids{1, 3, 4}));
  EXPECT_EQ(min_p(std::nextafter(0.25, 0.0)), (Ids{1, 3, 4}));
  EXPECT_EQ(min_p(0.0625), (Ids{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(min_p(std::nextafter(0.0625, 1.0)), (Ids{0, 1, 3, 4}));
}

// Order: temperature, top-k, top-p (renormalised over what top-k kept), min-p.
TEST(SamplingFilter, OrderTopKThenTopPThenMinP) {
  const std::vector<float> w{0.125f, 0.5f, 0.125f, 0.25f};
  FilterSpec f;
  f.top_k = 2;    // keeps {1, 3}, mass 3/4
  f.top_p = 0.6;  // of 3/4 is 0.45 <= 1/2: token 1 alone (of the whole row it would need 3)
  EXPECT_EQ(kept_of(w, f), (Ids{1}));
  f.top_p = std::nextafter(2.0 / 3.0, 1.0);  // > (1/2) / (3/4): needs both
  EXPECT_EQ(kept_of(w, f), (Ids{1, 3}));
  f.top_k = 3;  // {0, 1, 3} (tie at 1/8: lower id), mass 7/8; 2/3 of 7/8 > 1/2 -> {1, 3}
  EXPECT_EQ(kept_of(w, f), (Ids{1, 3}));
  f.top_p = 6.0 / 7.0 + 1e-9;  // needs more than 3/4: all three
  EXPECT_EQ(kept_of(w, f), (Ids{0, 1, 3}));
  f.min_p = 0.5;  // then min-p: p >= 1/2 p_max = 1/4 -> drops 0
  EXPECT_EQ(kept_of(w, f), (Ids{1, 3}));
}

// Zero weights are never kept, whatever the filters.
TEST(SamplingFilter, ZerosNeverKept) {
  const std::vector<float> w{0.0f, 0.5f, -0.0f, 0.5f, 0.0f};
  for (int64_t k : {0, 1, 2, 3, 4}) {
    for (double p : {0.3, 0.5, 0.9, 1.0}) {
      FilterSpec f;
      f.top_k = k;
      f.top_p = p;
      for (int64_t id : kept_of(w, f)) EXPECT_TRUE(id == 1 || id == 3);
    }
  }
}

// Reference: sort by (weight desc, id asc), integer masses q, prefix sums.
Ids reference_kept(const std::vector<float>& w, int64_t k, int p_num /* p = p_num / 1024 */,
                   double min_p) {
  const int64_t n = static_cast<int64_t>(w.size());
  const float wmax = *std::max_element(w.begin(), w.end());
  const int e = std::ilogb(wmax) + 1;
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return w[a] != w[b] ? w[a] > w[b] : a < b; });
  auto q = [&](int64_t i) {
    return static_cast<uint64_t>(std::ldexp(static_cast<LD>(w[i]), 62 - e));
  };
  int64_t len = (k > 0 && k < n) ? k : n;
  if (p_num < 1024) {
    u128 mk = 0;
    for (int64_t j = 0; j < len; ++j) mk += q(order[j]);
    u128 acc = 0;
    int64_t j = 0;
    while (true) {  // smallest prefix with acc / mk >= p_num / 1024
      acc += q(order[j++]);
      if (acc * 1024 >= static_cast<u128>(p_num) * mk) break;
    }
    len = j;
  }
  Ids kept;
  for (int64_t j = 0; j < len; ++j) {
    const int64_t i = order[j];
    if (w[i] > 0 && static_cast<double>(w[i]) >= min_p * static_cast<double>(wmax))
      kept.push_back(i);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

TEST(SamplingFilter, RadixSelectMatchesSortReference) {
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % (trial % 4 == 0 ? 5000 : 300));
    std::vector<float> w(static_cast<std::size_t>(n));
    const int kind = trial % 6;
    for (auto& x : w) {
      switch (kind) {
        case 0: x = static_cast<float>(uni(rng)); break;                  // spread
        case 1: x = static_cast<float>(std::exp(-30 * uni(rng))); break;  // long tail
        case 2: x = static_cast<float>(rng() % 4) * 0.25f; break;         // heavy ties, zeros
        case 3:
          x = std::ldexp(1.0f, -static_cast<int>(rng() % 150));
          break;                  // huge range, subnormals
        case 4: x = 1.0f; break;  // uniform
        default: x = static_cast<float>(std::exp(-8 * uni(rng))) * (rng() % 3 ? 1.0f : 0.0f); break;
      }
    }
    if (*std::max_element(w.begin(), w.end()) == 0) w[rng() % n] = 0.5f;
    for (int rep = 0; rep < 6; ++rep) {
      FilterSpec f;
      f.top_k = rep % 3 == 0 ? 0 : static_cast<int64_t>(rng() % (n + 2));
      const int p_num = rep % 2 == 0 ? 1024 : 1 + static_cast<int>(rng() % 1024);
      f.top_p = p_num / 1024.0;
      f.min_p = rep == 5 ? uni(rng) * 0.3 : 0.0;
      ASSERT_EQ(kept_of(w, f), reference_kept(w, f.top_k, p_num, f.min_p))
          << "trial " << trial << " n " << n << " k " << f.top_k << " p " << f.top_p << " min_p "
          << f.min_p;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2400);
}

TEST(SamplingFilter, CeilMulExact) {
  using softmax::detail::ceil_mul;
  const u128 big = (static_cast<u128>(1) << 93) - 12345;
  for (int j = 1; j < 1024; j += 7) {
    for (u128 m : {u128{1}, u128{3}, u128{1023}, u128{1} << 61, big}) {
      const u128 exact = (static_cast<u128>(j) * m + 1023) / 1024;
      EXPECT_TRUE(ceil_mul(j / 1024.0, m) == exact) << j;
    }
  }
  EXPECT_TRUE(ceil_mul(1e-300, big) == 1);
  EXPECT_TRUE(ceil_mul(std::nextafter(1.0, 0.0), u128{1} << 60) ==
              (u128{1} << 60) - 128);  // (1 - 2^-53) 2^60
  // 0.1 is 3602879701896397 / 2^55: ceil(0.1 * 10) = 2 (0.1 as a double exceeds 1/10).
  EXPECT_TRUE(ceil_mul(0.1, 10) == 2);
  EXPECT_TRUE(ceil_mul(0.5, 10) == 5);
}

// ---------------------------------------------------------------------------------------------
// Through the public API.

// The set of tokens drawn over many draws is exactly the kept set (logits = log of dyadic
// probabilities; p chosen away from the boundaries, which exp's rounding could move).
TEST(Sampling, FiltersThroughLogits) {
  const std::vector<float> probs{0.0625f, 0.5f, 0.03125f, 0.125f, 0.25f, 0.03125f};
  std::vector<float> x;
  for (float p : probs) x.push_back(std::log(p) + 3.0f);
  auto drawn = [&](SamplingParams p) {
    const auto t = draw_many(x, 1, 6, p, 7, 4000);
    std::set<int64_t> s(t.begin(), t.end());
    return Ids(s.begin(), s.end());
  };
  SamplingParams p;
  EXPECT_EQ(drawn(p), (Ids{0, 1, 2, 3, 4, 5}));
  p.top_k = 2;
  EXPECT_EQ(drawn(p), (Ids{1, 4}));
  p = {};
  p.top_p = 0.8;
  EXPECT_EQ(drawn(p), (Ids{1, 3, 4}));
  p = {};
  p.min_p = 0.2;
  EXPECT_EQ(drawn(p), (Ids{1, 3, 4}));
  p.top_k = 1;
  EXPECT_EQ(drawn(p), (Ids{1}));
  // Temperature changes the weights the filters see: at T = 2, p is ~ sqrt(2^-j): min_p 0.4
  // keeps 1/2 (1), 1/4 (0.71) and 1/8 (0.5) relative weights.
  p = {};
  p.temperature = 2.0;
  p.min_p = 0.4;
  EXPECT_EQ(drawn(p), (Ids{1, 3, 4}));
  p.temperature = 0.5;  // relative weights 1, 1/4, 1/16: only 1 and 4 pass 0.2
  p.min_p = 0.2;
  EXPECT_EQ(drawn(p), (Ids{1, 4}));
  // Gumbel-max draws from the same kept set.
  p = {};
  p.top_p = 0.8;
  p.method = SamplingMethod::kGumbelMax;
  EXPECT_EQ(drawn(p), (Ids{1, 3, 4}));
}

TEST(Sampling, FromProbsDyadic) {
  const std::vector<float> probs{0.0625f, 0.5f, 0.03125f, 0.125f, 0.25f, 0.03125f};
  SamplingParams p;
  p.top_p = 0.75;  // exactly reaches 3/4 with {1, 4}
  std::vector<int64_t> out(4000);
  softmax::sample_from_probs(view2(probs, 1, 6),
                             softmax::TensorView(out.data(), DType::i64, {1, 4000}), p, 3);
  std::set<int64_t> s(out.begin(), out.end());
  EXPECT_EQ(Ids(s.begin(), s.end()), (Ids{1, 4}));
  // Frequencies 2/3 and 1/3 within 6 sd.
  const double f1 = std::count(out.begin(), out.end(), 1) / 4000.0;
  EXPECT_NEAR(f1, 2.0 / 3, 6 * std::sqrt(2.0 / 9 / 4000));
  // Unnormalised probabilities are normalised; temperature 0 is the most probable token.
  std::vector<float> scaled;
  for (float q : probs) scaled.push_back(q * 1024.0f);
  p = {};
  p.temperature = 0.0;
  EXPECT_EQ(softmax::sample_from_probs(view2(scaled, 1, 6), p, 1), (std::vector<int64_t>{1}));
  // Same seed, same normalised distribution: the same draws.
  p = {};
  EXPECT_EQ(softmax::sample_from_probs(view2(scaled, 1, 6), p, 9),
            softmax::sample_from_probs(view2(probs, 1, 6), p, 9));
}

// Probabilities in every dtype give the same draws as the same values in f32; -0 counts as 0;
// a single-token vocabulary always returns 0.
TEST(Sampling, FromProbsDtypesAndEdges) {
  const std::vector<float> probs{0.0625f, 0.5f, -0.0f, 0.125f, 0.25f, 0.0625f};
  SamplingParams p;
  p.top_p = 0.9;
  std::vector<int64_t> ref(2000), out(2000);
  softmax::sample_from_probs(view2(probs, 1, 6),
                             softmax::TensorView(ref.data(), DType::i64, {1, 2000}), p, 4);
  for (int64_t t : ref) ASSERT_TRUE(t == 0 || t == 1 || t == 3 || t == 4) << t;  // 5: past 0.9
  std::vector<double> pd(probs.begin(), probs.end());
  softmax::sample_from_probs(softmax::ConstTensorView(pd.data(), {1, 6}),
                             softmax::TensorView(out.data(), DType::i64, {1, 2000}), p, 4);
  EXPECT_EQ(out, ref);  // dyadic values: the same masses in f64
  std::vector<uint16_t> ph(6), pb(6);
  for (int i = 0; i < 6; ++i) {
    ph[i] = softmax::detail::f32_to_f16(probs[i]);
    pb[i] = softmax::detail::f32_to_bf16(probs[i]);
  }
  softmax::sample_from_probs(softmax::ConstTensorView(ph.data(), DType::f16, {1, 6}),
                             softmax::TensorView(out.data(), DType::i64, {1, 2000}), p, 4);
  EXPECT_EQ(out, ref);
  softmax::sample_from_probs(softmax::ConstTensorView(pb.data(), DType::bf16, {1, 6}),
                             softmax::TensorView(out.data(), DType::i64, {1, 2000}), p, 4);
  EXPECT_EQ(out, ref);
  const std::vector<float> one{-3.5f};
  SamplingParams q;
  q.top_k = 5;
  q.top_p = 0.5;
  q.min_p = 1.0;
  EXPECT_EQ(softmax::sample(std::span<const float>(one), q, 1), 0);
  EXPECT_THROW(softmax::sample(std::span<const float>(), q, 1), softmax::Error);
}

// Determinism of top_logprobs across threads; f64 and bf16 rows agree with f32 on shared values.
TEST(Sampling, TopLogprobsDtypesThreads) {
  auto x = random_logits(9, 3000, 21);
  for (auto& e : x) e = softmax::detail::bf16_to_f32(softmax::detail::f32_to_bf16(e));
  const auto a = softmax::top_logprobs(view2(x, 9, 3000), 10, 0.9, 1);
  const auto b = softmax::top_logprobs(view2(x, 9, 3000), 10, 0.9, 3);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.logprobs, b.logprobs);
  std::vector<uint16_t> xb(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) xb[i] = softmax::detail::f32_to_bf16(x[i]);
  const auto c =
      softmax::top_logprobs(softmax::ConstTensorView(xb.data(), DType::bf16, {9, 3000}), 10, 0.9);
  EXPECT_EQ(c.ids, a.ids);
  EXPECT_EQ(c.logprobs, a.logprobs);
  std::vector<double> xd(x.begin(), x.end());
  const auto d = softmax::top_logprobs(softmax::ConstTensorView(xd.data(), {9, 3000}), 10, 0.9);
  EXPECT_EQ(d.ids, a.ids);
  for (std::size_t i = 0; i < d.logprobs.size(); ++i) {
    EXPECT_NEAR(d.logprobs[i], a.logprobs[i], 1e-5 * (std::fabs(d.logprobs[i]) + 10));
  }
}

// Long-double reference of the tempered, filtered distribution (the order of docs/ops/sampling.md).
std::vector<LD> reference_dist(const std::vector<float>& x, double t, int64_t k, double top_p,
                               double min_p) {
  const int64_t n = static_cast<int64_t>(x.size());
  LD m = -INFINITY;
  for (float v : x) m = std::max<LD>(m, v);
  std::vector<LD> p(static_cast<std::size_t>(n));
  LD s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i] = std::exp((static_cast<LD>(x[i]) - m) / t);
  for (auto& v : p) v /= s;
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
  std::vector<bool> keep(static_cast<std::size_t>(n), false);
  const int64_t kk = (k > 0 && k < n) ? k : n;
  LD mk = 0;
  for (int64_t j = 0; j < kk; ++j) mk += p[order[j]];
  LD acc = 0;
  for (int64_t j = 0; j < kk; ++j) {
    keep[order[j]] = true;
    acc += p[order[j]];
    if (acc >= top_p * mk) break;
  }
  const LD pmax = p[order[0]];
  LD kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (keep[i] && p[i] < min_p * pmax) keep[i] = false;
    if (keep[i]) kept += p[i];
  }
  std::vector<LD> out(static_cast<std::size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) out[i] = keep[i] ? p[i] / kept : 0;
  return out;
}

// Chi-square goodness of fit of counts to dist, over the tokens with dist > 0; and no draws
// outside them. Bound: chi2 <= df + 8 sqrt(2 df) + 8 (about 8 standard deviations of the
// chi-square distribution above its mean; with fixed seeds the test is deterministic, and a
// correct sampler exceeds the bound with probability < 1e-9 per seed).
void expect_fits(const std::vector<int64_t>& draws, const std::vector<LD>& dist, const char* what) {
  std::vector<int64_t> cnt(dist.size(), 0);
  for (int64_t t : draws) ++cnt[static_cast<std::size_t>(t)];
  const double n = static_cast<double>(draws.size());
  double chi2 = 0;
  int df = -1;
  for (std::size_t i = 0; i < dist.size(); ++i) {
    if (dist[i] == 0) {
      EXPECT_EQ(cnt[i], 0) << what << ": token " << i << " has probability 0";
      continue;
    }
    const double e = n * static_cast<double>(dist[i]);
    chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
    ++df;
    // Per token: |f - p| <= 6 sd + 1e-6 (the f32 rounding of the weights).
    EXPECT_NEAR(cnt[i] / n, static_cast<double>(dist[i]),
                6 * std::sqrt(static_cast<double>(dist[i]) / n) + 1e-6)
        << what << ": token " << i;
  }
  EXPECT_LE(chi2, df + 8 * std::sqrt(2.0 * df) + 8) << what << " (df " << df << ")";
}

TEST(SamplingStats, MatchesTemperedFilteredDistribution) {
  std::mt19937 rng(2024);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(40);
  for (auto& v : x) v = nd(rng);
  x[7] = kNegInf;
  struct Case {
    double t;
    int64_t k;
    double p, m;
    SamplingMethod method;
    int64_t draws;
  };
  const Case cases[] = {
      {1.0, 0, 1.0, 0.0, SamplingMethod::kInverseCdf, 1 << 21},
      {0.7, 0, 1.0, 0.0, SamplingMethod::kInverseCdf, 1 << 21},
      {1.6, 12, 1.0, 0.0, SamplingMethod::kInverseCdf, 1 << 21},
      {0.8, 0, 0.9, 0.0, SamplingMethod::kInverseCdf, 1 << 21},
      {1.3, 25, 0.85, 0.02, SamplingMethod::kInverseCdf, 1 << 21},
      {1.0, 0, 1.0, 0.1, SamplingMethod::kInverseCdf, 1 << 21},
      {0.7, 20, 0.95, 0.0, SamplingMethod::kGumbelMax, 1 << 17},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    p.temperature = c.t;
    p.top_k = c.k;
    p.top_p = c.p;
    p.min_p = c.m;
    p.method = c.method;
    const auto draws = draw_many(x, 1, 40, p, 1234, c.draws);
    const std::string what = "T " + std::to_string(c.t) + " k " + std::to_string(c.k) + " p " +
                             std::to_string(c.p) + " min_p " + std::to_string(c.m) +
                             (c.method == SamplingMethod::kGumbelMax ? " gumbel" : "");
    expect_fits(draws, reference_dist(x, c.t, c.k, c.p, c.m), what.c_str());
  }
}

// The bound above has teeth: the T = 0.7 draws do not fit the T = 1 distribution.
TEST(SamplingStats, WrongDistributionIsRejected) {
  std::mt19937 rng(2024);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(40);
  for (auto& v : x) v = nd(rng);
  SamplingParams p;
  p.temperature = 0.7;
  const auto draws = draw_many(x, 1, 40, p, 1234, 1 << 18);
  const auto dist = reference_dist(x, 1.0, 0, 1.0, 0.0);
  std::vector<int64_t> cnt(40, 0);
  for (int64_t t : draws) ++cnt[t];
  double chi2 = 0;
  for (int i = 0; i < 40; ++i) {
    const double e = draws.size() * static_cast<double>(dist[i]);
    chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
  }
  EXPECT_GT(chi2, 39 + 8 * std::sqrt(78.0) + 8);
}

// Tokens of probability 0 (-inf logits, exp underflow, filtered out) are never drawn in
// 2^23 draws, some of them with a uniform near 1 (the top of the inverse CDF).
TEST(SamplingStats, ZeroProbabilityNeverDrawn) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) {
    if (i % 3 == 0)
      x[i] = kNegInf;
    else if (i % 3 == 1)
      x[i] = -200.0f;  // exp(-200) underflows f32: weight 0
    else
      x[i] = static_cast<float>(i % 5);
  }
  x[63] = -200.0f;  // the last id (the inverse CDF's top) has weight 0
  SamplingParams p;
  const auto draws = draw_many(x, 1, 64, p, 99, 1 << 23);
  for (int64_t t : draws) ASSERT_EQ(t % 3, 2) << "drew a zero-probability token";
  p.method = SamplingMethod::kGumbelMax;
  const auto g = draw_many(x, 1, 64, p, 99, 1 << 16);
  for (int64_t t : g) ASSERT_EQ(t % 3, 2) << "Gumbel drew a zero-probability token";
  // Probabilities with zeros.
  std::vector<float> probs(64, 0.0f);
  probs[5] = 1.0f;
  probs[40] = 3.0f;
  std::vector<int64_t> out(1 << 22);
  softmax::sample_from_probs(view2(probs, 1, 64),
                             softmax::TensorView(out.data(), DType::i64, {1, 1 << 22}), {}, 5);
  for (int64_t t : out) ASSERT_TRUE(t == 5 || t == 40);
}

// The draw maps the uniform's extremes to the first and last kept tokens.
TEST(SamplingFilter, DrawExtremes) {
  const std::vector<float> w{0.0f, 0.25f, 0.0f, 0.5f, 0.25f, 0.0f};
  RowFilter<float> rf;
  rf.filter(w.data(), 6, 0.5f, FilterSpec{});
  EXPECT_EQ(rf.draw(0), 1);
  EXPECT_EQ(rf.draw(~uint64_t{0}), 4);
  EXPECT_EQ(rf.draw(uint64_t{1} << 62), 3);  // u = 1/4: first token with running mass > S/4
}

// ---------------------------------------------------------------------------------------------
// Greedy.

TEST(Sampling, GreedyIsArgmax) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-3, 3);
  std::vector<float> x(16 * 1000);
  for (auto& v : x) v = static_cast<float>(small(rng));  // many ties
  SamplingParams p;
  p.temperature = 0.0;
  p.top_k = 5;
  p.top_p = 0.1;
  p.min_p = 0.5;
  const auto t = softmax::sample(view2(x, 16, 1000), p, 1);
  for (int r = 0; r < 16; ++r) {
    const auto row = std::span<const float>(x.data() + r * 1000, 1000);
    EXPECT_EQ(t[r], softmax::argmax(row));
  }
  // top_k = 1 with T > 0 is also the argmax (lowest id on ties).
  p = {};
  p.top_k = 1;
  EXPECT_EQ(softmax::sample(view2(x, 16, 1000), p, 1), t);
}

// Tiny .npy reader for the test data: little-endian '<f4', C order.
bool read_npy_f32(const std::string& path, std::vector<float>& data, std::vector<int64_t>& shape) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0) return false;
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, ' ');
  f.read(header.data(), hlen);
  if (header.find("'<f4'") == std::string::npos || header.find("True") != std::string::npos) {
    return false;
  }
  const auto lp = header.find('('), rp = header.find(')');
  shape.clear();
  int64_t numel = 1;
  for (std::size_t i = lp + 1; i < rp;) {
    while (i < rp && !isdigit(static_cast<unsigned char>(header[i]))) ++i;
    if (i >= rp) break;
    int64_t v = 0;
    while (i < rp && isdigit(static_cast<unsigned char>(header[i])))
      v = v * 10 + (header[i++] - '0');
    shape.push_back(v);
    numel *= v;
  }
  data.resize(static_cast<std::size_t>(numel));
  f.read(reinterpret_cast<char*>(data.data()), numel * 4);
  return static_cast<bool>(f);
}

TEST(Sampling, RealLogitsGreedyAndLogprobs) {
  std::vector<float> x;
  std::vector<int64_t> shape;
  const std::string path = std::string(SOFTMAX_SHARED_DATA) + "/stories260K_logits.npy";
  if (!read_npy_f32(path, x, shape)) GTEST_SKIP() << "no " << path;
  ASSERT_EQ(shape.size(), 2u);
  const int64_t b = shape[0], v = shape[1];
  SamplingParams p;
  p.temperature = 0.0;
  const auto greedy = softmax::sample(view2(x, b, v), p, 0);
  for (int64_t r = 0; r < b; ++r) {
    EXPECT_EQ(greedy[r], softmax::argmax(std::span<const float>(x.data() + r * v, v))) << r;
  }
  // The file holds greedy decoding: row r's argmax is the token fed at step r + 1, so the
  // argmax sequence is a real model's output; the sampled tokens at T = 0.8 / top-p 0.9 must lie
  // in each row's nucleus, which the reference computes.
  p = {};
  p.temperature = 0.8;
  p.top_p = 0.9;
  const auto drawn = draw_many(x, b, v, p, 77, 64);
  for (int64_t r = 0; r < b; ++r) {
    std::vector<float> row(x.begin() + r * v, x.begin() + (r + 1) * v);
    const auto dist = reference_dist(row, 0.8, 0, 0.9, 0.0);
    for (int d = 0; d < 64; ++d) {
      const int64_t t = drawn[r * 64 + d];
      // Allow the reference's boundary token to differ only if it is within 1e-6 of p.
      EXPECT_GT(dist[t], 0.0L) << "row " << r << " token " << t;
    }
  }
  // top_logprobs against log_softmax's long double reference.
  const auto lp = softmax::top_logprobs(view2(x, b, v), 5, 1.0);
  for (int64_t r = 0; r < b; ++r) {
    LD m = -INFINITY, s = 0;
    for (int64_t i = 0; i < v; ++i) m = std::max<LD>(m, x[r * v + i]);
    for (int64_t i = 0; i < v; ++i) s += std::exp(static_cast<LD>(x[r * v + i]) - m);
    EXPECT_EQ(lp.ids[r * 5], greedy[r]);
    for (int j = 0; j < 5; ++j) {
      const int64_t id = lp.ids[r * 5 + j];
      const LD ref = static_cast<LD>(x[r * v + id]) - m - std::log(s);
      EXPECT_NEAR(lp.logprobs[r * 5 + j], static_cast<double>(ref),
                  std::ldexp(1.0, -22) * (std::fabs(static_cast<double>(ref)) + std::log(v) + 1));
      if (j > 0) EXPECT_GE(x[r * v + lp.ids[r * 5 + j - 1]], x[r * v + id]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Determinism.

TEST(SamplingDeterminism, ThreadsTargetsBatchesSeeds) {
  const int64_t b = 24, v = 5000;
  const auto x = random_logits(b, v, 1);
  SamplingParams p;
  p.temperature = 0.9;
  p.top_k = 300;
  p.top_p = 0.95;
  p.min_p = 0.001;
  p.threads = 1;
  const auto ref = draw_many(x, b, v, p, 42, 8, 1000);
  for (int threads : {2, 3, 8}) {
    p.threads = threads;
    EXPECT_EQ(draw_many(x, b, v, p, 42, 8, 1000), ref) << threads << " threads";
  }
  for (const auto& target : softmax::available_targets()) {
    softmax::set_target(target);
    EXPECT_EQ(draw_many(x, b, v, p, 42, 8, 1000), ref) << target;
  }
  softmax::set_target("");
  // Batch composition: each row alone (its stream = its row index) gives the same tokens, and
  // changing the other rows changes nothing.
  for (int64_t r : {0, 5, 23}) {
    std::vector<float> row(x.begin() + r * v, x.begin() + (r + 1) * v);
    const uint64_t stream = static_cast<uint64_t>(r);
    SamplingParams q = p;
    q.streams = std::span<const uint64_t>(&stream, 1);
    const auto alone = draw_many(row, 1, v, q, 42, 8, 1000);
    EXPECT_EQ(alone, std::vector<int64_t>(ref.begin() + r * 8, ref.begin() + (r + 1) * 8)) << r;
  }
  auto y = x;
  for (int64_t i = 0; i < v; ++i) y[3 * v + i] = -y[3 * v + i];
  const auto changed = draw_many(y, b, v, p, 42, 8, 1000);
  for (int64_t r = 0; r < b; ++r) {
    if (r == 3) continue;
    EXPECT_TRUE(
        std::equal(ref.begin() + r * 8, ref.begin() + (r + 1) * 8, changed.begin() + r * 8));
  }
  // D draws = D calls with consecutive offsets.
  for (int d = 0; d < 8; ++d) {
    const auto one = draw_many(x, b, v, p, 42, 1, 1000 + d);
    for (int64_t r = 0; r < b; ++r) EXPECT_EQ(one[r], ref[r * 8 + d]);
  }
  // Another seed, another offset, other streams: different tokens (for most rows).
  auto differs = [&](const std::vector<int64_t>& o) {
    int n = 0;
    for (std::size_t i = 0; i < o.size(); ++i) n += o[i] != ref[i];
    return n;
  };
  EXPECT_GT(differs(draw_many(x, b, v, p, 43, 8, 1000)), 100);
  EXPECT_GT(differs(draw_many(x, b, v, p, 42, 8, 1001 + 8)), 100);
  std::vector<uint64_t> streams(b);
  std::iota(streams.begin(), streams.end(), uint64_t{1000});
  SamplingParams q = p;
  q.streams = streams;
  EXPECT_GT(differs(draw_many(x, b, v, q, 42, 8, 1000)), 100);
  q = p;
  q.method = SamplingMethod::kGumbelMax;
  EXPECT_GT(differs(draw_many(x, b, v, q, 42, 8, 1000)), 100);
}

// Streams are 64-bit. Streams below 2^32 keep the tokens they drew when streams were 32-bit
// (recorded from the 32-bit implementation); streams differing only above bit 31 draw
// independently (as often equal as two independent uniform draws over V tokens).
TEST(SamplingStreams, SixtyFourBitStreams) {
  const int64_t b = 4, v = 1000;
  std::vector<float> x(static_cast<std::size_t>(b * v));
  for (int64_t i = 0; i < b * v; ++i) x[i] = static_cast<float>(std::sin(0.37 * i) * 3.0f);
  const std::vector<uint64_t> low{0, 1, 123456789, 4294967295u};
  const std::vector<std::vector<int64_t>> recorded{
      {889, 72, 649, 652, 143, 991, 245, 908, 585, 436, 485, 62},    // inverse CDF
      {192, 600, 326, 871, 670, 873, 312, 702, 94, 469, 488, 127}};  // Gumbel-max
  const std::vector<std::vector<int64_t>> recorded_rows{{358, 276, 658, 417}, {175, 125, 855, 383}};
  for (int m = 0; m < 2; ++m) {
    SamplingParams p;
    p.method = m ? SamplingMethod::kGumbelMax : SamplingMethod::kInverseCdf;
    p.streams = low;
    EXPECT_EQ(draw_many(x, b, v, p, 42, 3, 7), recorded[m]) << m;
    SamplingParams q;
    q.method = p.method;
    EXPECT_EQ(draw_many(x, b, v, q, 0xDEADBEEFCAFEull, 1, uint64_t{1} << 40), recorded_rows[m]);
  }
  // Flat logits: every token has probability 1 / V, so two independent streams agree on a draw
  // with probability 1 / V: about 0.5 of 512 draws (more than 8 fails with p < 1e-6).
  const int64_t vf = 1000, draws = 512;
  const std::vector<float> flat(static_cast<std::size_t>(vf), 0.0f);
  const std::vector<uint64_t> ids{0, uint64_t{1} << 32, uint64_t{1} << 33, (uint64_t{1} << 32) | 1,
                                  1, uint64_t{1} << 63, ~uint64_t{0},      4294967295u};
  for (int m = 0; m < 2; ++m) {
    std::vector<std::vector<int64_t>> tok;
    for (uint64_t id : ids) {
      SamplingParams p;
      p.method = m ? SamplingMethod::kGumbelMax : SamplingMethod::kInverseCdf;
      p.streams = std::span<const uint64_t>(&id, 1);
      tok.push_back(draw_many(flat, 1, vf, p, 9, draws));
      // The same 64-bit stream at a different batch position draws the same tokens.
      const std::vector<uint64_t> two{12345, id};
      p.streams = two;
      const auto both = draw_many(std::vector<float>(2 * vf, 0.0f), 2, vf, p, 9, draws);
      EXPECT_TRUE(std::equal(tok.back().begin(), tok.back().end(), both.begin() + draws)) << id;
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        int same = 0;
        for (int64_t d = 0; d < draws; ++d) same += tok[i][d] == tok[j][d];
        EXPECT_LE(same, 8) << "streams " << ids[i] << " and " << ids[j] << " method " << m;
      }
    }
  }
}

TEST(SamplingDeterminism, StridedAndStorageDtypes) {
  const int64_t b = 6, v = 777;
  auto x = random_logits(b, v, 3);
  // Round to bf16 so the f32, bf16 and f16-free comparisons share values.
  for (auto& e : x) e = softmax::detail::bf16_to_f32(softmax::detail::f32_to_bf16(e));
  SamplingParams p;
  p.temperature = 0.8;
  p.top_p = 0.9;
  const auto ref = draw_many(x, b, v, p, 11, 16);
  // bf16 storage computes on the same f32 values: identical draws.
  std::vector<uint16_t> xb(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) xb[i] = softmax::detail::f32_to_bf16(x[i]);
  std::vector<int64_t> out(b * 16);
  softmax::sample(softmax::ConstTensorView(xb.data(), DType::bf16, {b, v}),
                  softmax::TensorView(out.data(), DType::i64, {b, 16}), p, 11);
  EXPECT_EQ(out, ref);
  // A transposed (column-major) view of the same logits.
  std::vector<float> xt(x.size());
  for (int64_t r = 0; r < b; ++r)
    for (int64_t i = 0; i < v; ++i) xt[i * b + r] = x[r * v + i];
  softmax::sample(softmax::ConstTensorView(xt.data(), DType::f32, {b, v}, {1, b}),
                  softmax::TensorView(out.data(), DType::i64, {b, 16}), p, 11);
  EXPECT_EQ(out, ref);
  // f16 (values exactly representable: small integers / 8).
  std::vector<float> xs(static_cast<std::size_t>(b * v));
  for (std::size_t i = 0; i < xs.size(); ++i)
    xs[i] = static_cast<float>(static_cast<int>(i * 37 % 97) - 48) / 8;
  std::vector<uint16_t> xh(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) xh[i] = softmax::detail::f32_to_f16(xs[i]);
  const auto ref16 = draw_many(xs, b, v, p, 12, 16);
  softmax::sample(softmax::ConstTensorView(xh.data(), DType::f16, {b, v}),
                  softmax::TensorView(out.data(), DType::i64, {b, 16}), p, 12);
  EXPECT_EQ(out, ref16);
  // f64 logits: greedy is the argmax; sampling follows the reference distribution.
  std::vector<double> xd(xs.begin(), xs.end());
  SamplingParams g;
  g.temperature = 0.0;
  const auto gd = softmax::sample(softmax::ConstTensorView(xd.data(), {b, v}), g, 1);
  for (int64_t r = 0; r < b; ++r)
    EXPECT_EQ(gd[r], softmax::argmax(std::span<const double>(xd.data() + r * v, v)));
  std::vector<double> small{0.5, -1.0, 2.0, -std::numeric_limits<double>::infinity(), 1.0};
  std::vector<int64_t> many(1 << 20);
  SamplingParams pd;
  pd.temperature = 1.5;
  pd.top_k = 3;
  softmax::sample(softmax::ConstTensorView(small.data(), {1, 5}),
                  softmax::TensorView(many.data(), DType::i64, {1, 1 << 20}), pd, 8);
  std::vector<float> smallf(small.begin(), small.end());
  expect_fits(many, reference_dist(smallf, 1.5, 3, 1.0, 0.0), "f64");
}

TEST(Sampling, PerRowParameters) {
  const int64_t b = 4, v = 300;
  const auto x = random_logits(b, v, 9);
  const std::vector<double> temps{0.0, 1.0, 0.5, 2.0};
  const std::vector<int64_t> ks{0, 1, 0, 0};
  const std::vector<double> ps{1.0, 1.0, 1.0, 1.0};
  SamplingParams p;
  p.temperature = temps;
  p.top_k = ks;
  p.top_p = ps;
  const auto out = draw_many(x, b, v, p, 5, 32);
  for (int64_t r : {0, 1}) {  // greedy row, top-1 row: always the argmax
    const int64_t am = softmax::argmax(std::span<const float>(x.data() + r * v, v));
    for (int d = 0; d < 32; ++d) EXPECT_EQ(out[r * 32 + d], am);
  }
  // Rows 2 and 3 equal the same rows drawn with scalar parameters (same streams).
  for (int64_t r : {2, 3}) {
    SamplingParams q;
    q.temperature = temps[r];
    const uint64_t stream = static_cast<uint64_t>(r);
    q.streams = std::span<const uint64_t>(&stream, 1);
    std::vector<float> row(x.begin() + r * v, x.begin() + (r + 1) * v);
    EXPECT_EQ(draw_many(row, 1, v, q, 5, 32),
              std::vector<int64_t>(out.begin() + r * 32, out.begin() + (r + 1) * 32));
  }
}

TEST(Sampling, TopLogprobs) {
  // Ties ranked by id; log-probs exact for equal logits: -log(n) pieces.
  const std::vector<float> x{1.0f, 3.0f, 3.0f, kNegInf, 2.0f, 3.0f};
  const auto r = softmax::top_logprobs(view2(x, 1, 6), 6, 1.0);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{1, 2, 5, 4, 0, 3}));
  const LD s = 3 + std::exp(-1.0L) + std::exp(-2.0L);
  EXPECT_NEAR(r.logprobs[0], static_cast<double>(-std::log(s)), 1e-6);
  EXPECT_EQ(r.logprobs[0], r.logprobs[1]);
  EXPECT_EQ(r.logprobs[5], -std::numeric_limits<double>::infinity());
  // Temperature applies: at T = 0.5 the gap doubles.
  const auto h = softmax::top_logprobs(view2(x, 1, 6), 4, 0.5);
  EXPECT_NEAR(h.logprobs[0] - h.logprobs[3], 2.0, 1e-6);
  EXPECT_EQ(softmax::top_logprobs(view2(x, 1, 6), 0).ids.size(), 0u);
  EXPECT_THROW(softmax::top_logprobs(view2(x, 1, 6), 7), softmax::Error);
  EXPECT_THROW(softmax::top_logprobs(view2(x, 1, 6), 2, 0.0), softmax::Error);
  // Larger random rows: the ids are the top n by logit (ties by id), in order.
  const auto y = random_logits(3, 4000, 4);
  const auto t = softmax::top_logprobs(view2(y, 3, 4000), 50, 0.7);
  for (int64_t row = 0; row < 3; ++row) {
    std::vector<int64_t> order(4000);
    std::iota(order.begin(), order.end(), 0);
    const float* xr = y.data() + row * 4000;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return xr[a] > xr[b]; });
    EXPECT_EQ(std::vector<int64_t>(t.ids.begin() + row * 50, t.ids.begin() + (row + 1) * 50),
              std::vector<int64_t>(order.begin(), order.begin() + 50));
  }
}

// ---------------------------------------------------------------------------------------------
// Errors: each rule throws softmax::Error naming the argument; nothing is written.

void expect_error(const std::vector<float>& x, int64_t b, int64_t v, const SamplingParams& p,
                  const char* needle) {
  std::vector<int64_t> out(static_cast<std::size_t>(b), -7);
  try {
    softmax::sample(view2(x, b, v), softmax::TensorView(out.data(), DType::i64, {b}), p, 1);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const softmax::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("softmax::sample"), std::string::npos) << e.what();
  }
  for (int64_t t : out) EXPECT_EQ(t, -7) << "written on failure: " << needle;
}

TEST(SamplingErrors, Parameters) {
  const std::vector<float> x(2 * 8, 0.5f);
  auto with = [](auto set) {
    SamplingParams p;
    set(p);
    return p;
  };
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.temperature = -0.5; }),
               "'temperature' = -0.5");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.temperature = std::nan(""); }),
               "'temperature'");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.temperature = INFINITY; }), "'temperature'");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.top_k = -2; }), "'top_k' = -2");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.top_p = 0.0; }), "'top_p' = 0");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.top_p = 1.5; }), "'top_p' = 1.5");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.top_p = std::nan(""); }), "'top_p'");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.min_p = -0.1; }), "'min_p' = -0.1");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.min_p = 1.1; }), "'min_p' = 1.1");
  static const std::vector<double> three{1, 1, 1};
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.temperature = three; }),
               "one value per row");
  static const std::vector<double> bad_row{1.0, -2.0};
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.temperature = bad_row; }), "(row 1)");
}

TEST(SamplingErrors, Rows) {
  std::vector<float> x(3 * 8, 0.5f);
  auto y = x;
  y[8 + 3] = std::nanf("");
  expect_error(y, 3, 8, {}, "row 1 holds NaN");
  SamplingParams greedy;
  greedy.temperature = 0.0;
  expect_error(y, 3, 8, greedy, "row 1 holds NaN");
  y = x;
  for (int i = 16; i < 24; ++i) y[i] = kNegInf;
  expect_error(y, 3, 8, {}, "row 2 is all -inf");
  expect_error(y, 3, 8, greedy, "row 2 is all -inf");
  y = x;
  y[2] = INFINITY;
  expect_error(y, 3, 8, {}, "row 0 holds +inf");
  // Probabilities.
  std::vector<int64_t> out(2, -7);
  std::vector<float> pr{0.5f, -0.25f, 0.75f, 0.0f, 0.0f, 0.0f};
  EXPECT_THROW(softmax::sample_from_probs(view2(pr, 2, 3),
                                          softmax::TensorView(out.data(), DType::i64, {2}), {}, 1),
               softmax::Error);
  pr[1] = 0.25f;
  EXPECT_THROW(softmax::sample_from_probs(view2(pr, 2, 3),
                                          softmax::TensorView(out.data(), DType::i64, {2}), {}, 1),
               softmax::Error);  // row 1 all zero
  pr[4] = 1.0f;
  SamplingParams t;
  t.temperature = 0.5;
  EXPECT_THROW(softmax::sample_from_probs(view2(pr, 2, 3),
                                          softmax::TensorView(out.data(), DType::i64, {2}), t, 1),
               softmax::Error);
  EXPECT_EQ(out, (std::vector<int64_t>{-7, -7}));
  softmax::sample_from_probs(view2(pr, 2, 3), softmax::TensorView(out.data(), DType::i64, {2}), {},
                             1);
  EXPECT_EQ(out[1], 1);
}

TEST(SamplingErrors, Shapes) {
  const std::vector<float> x(2 * 8, 0.5f);
  std::vector<int64_t> out(4, -7);
  std::vector<int32_t> out32(2, -7);
  EXPECT_THROW(
      softmax::sample(view2(x, 2, 8), softmax::TensorView(out32.data(), DType::i32, {2}), {}, 1),
      softmax::Error);
  EXPECT_THROW(
      softmax::sample(view2(x, 2, 8), softmax::TensorView(out.data(), DType::i64, {3}), {}, 1),
      softmax::Error);
  EXPECT_THROW(softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {16}),
                               softmax::TensorView(out.data(), DType::i64, {1}), {}, 1),
               softmax::Error);
  EXPECT_THROW(softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {2, 0}),
                               softmax::TensorView(out.data(), DType::i64, {2}), {}, 1),
               softmax::Error);
  EXPECT_THROW(softmax::sample(softmax::ConstTensorView(x.data(), DType::i32, {2, 8}),
                               softmax::TensorView(out.data(), DType::i64, {2}), {}, 1),
               softmax::Error);
  std::vector<uint64_t> streams{1, 2, 3};
  SamplingParams p;
  p.streams = streams;
  EXPECT_THROW(
      softmax::sample(view2(x, 2, 8), softmax::TensorView(out.data(), DType::i64, {2}), p, 1),
      softmax::Error);
  EXPECT_EQ(out, (std::vector<int64_t>{-7, -7, -7, -7}));
  // An empty batch is a no-op.
  softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {0, 8}),
                  softmax::TensorView(out.data(), DType::i64, {0}), {}, 1);
  EXPECT_EQ(out[0], -7);
}

// ---------------------------------------------------------------------------------------------
// Serving: per-request seeds and offsets, top_k = -1, batch invariance, processed outputs,
// sampling without replacement.

softmax::ConstTensorView row_view(const std::vector<float>& x, int64_t r, int64_t v) {
  return softmax::ConstTensorView(x.data() + r * v, DType::f32, {1, v});
}

// Row r with seeds[r], offsets[r], streams[r] and its own parameters draws what a one-row call
// with those values draws, wherever it sits in the batch (batch invariance); seeds differing only
// above bit 31 draw independently.
TEST(SamplingServing, PerRowSeedsOffsetsAndBatchInvariance) {
  const int64_t b = 6, v = 500;
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(static_cast<std::size_t>(b * v));
  for (auto& e : x) e = nd(rng);
  const std::vector<uint64_t> seeds{
      1, 1 + (uint64_t{1} << 32), 1 + (uint64_t{1} << 40), 5, 5, ~uint64_t{0}};
  const std::vector<uint64_t> offsets{0, 0, 0, 3, 4, uint64_t{1} << 33};
  const std::vector<uint64_t> streams{9, 9, 9, uint64_t{1} << 35, 2, 3};
  const std::vector<double> temps{1.0, 0.7, 1.3, 0.0, 0.9, 1.1};
  const std::vector<int64_t> ks{0, -1, 40, 0, 5, 100};
  const std::vector<double> tps{1.0, 0.9, 0.8, 1.0, 1.0, 0.5};
  const std::vector<double> mps{0.0, 0.0, 0.05, 0.0, 0.1, 0.0};
  SamplingParams p;
  p.seeds = seeds;
  p.offsets = offsets;
  p.streams = streams;
  p.temperature = temps;
  p.top_k = ks;
  p.top_p = tps;
  p.min_p = mps;
  const int64_t d = 8;
  const std::vector<int64_t> batch = draw_many(x, b, v, p, /*seed=*/12345, d, /*offset=*/999);
  for (int64_t r = 0; r < b; ++r) {
    SamplingParams one;
    one.temperature = temps[r];
    one.top_k = ks[r];
    one.top_p = tps[r];
    one.min_p = mps[r];
    const uint64_t st = streams[r];
    one.streams = std::span<const uint64_t>(&st, 1);
    std::vector<int64_t> out(static_cast<std::size_t>(d));
    softmax::sample(row_view(x, r, v), softmax::TensorView(out.data(), DType::i64, {1, d}), one,
                    seeds[r], offsets[r]);
    EXPECT_EQ(out, std::vector<int64_t>(batch.begin() + r * d, batch.begin() + (r + 1) * d)) << r;
  }
  // Flat rows (every token 1 / V) and one stream: the draws differ by seed alone.
  const std::vector<float> flat(static_cast<std::size_t>(3 * 4096), 0.0f);
  const std::vector<uint64_t> s3{7, 7 + (uint64_t{1} << 32), 7 + (uint64_t{1} << 63)};
  SamplingParams q;
  q.seeds = s3;
  const std::vector<uint64_t> same{0, 0, 0};
  q.streams = same;
  const std::vector<int64_t> t = draw_many(flat, 3, 4096, q, 0, 64);
  int eq01 = 0, eq02 = 0;
  for (int j = 0; j < 64; ++j) {
    eq01 += t[j] == t[64 + j];
    eq02 += t[j] == t[128 + j];
  }
  EXPECT_LE(eq01, 2);  // independent: P(equal) = 1/4096 per draw
  EXPECT_LE(eq02, 2);
}

// top_k = -1 (vLLM's "off") and 0 (Hugging Face's) are the same as no top-k.
TEST(SamplingServing, TopKMinusOneIsOff) {
  std::vector<float> x(1000);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& e : x) e = nd(rng);
  SamplingParams a, off, big;
  off.top_k = -1;
  big.top_k = 1000;
  EXPECT_EQ(draw_many(x, 1, 1000, a, 4, 256), draw_many(x, 1, 1000, off, 4, 256));
  EXPECT_EQ(draw_many(x, 1, 1000, a, 4, 256), draw_many(x, 1, 1000, big, 4, 256));
}

// filtered_probs equals the long double tempered, filtered distribution; token_logprobs and the
// processed top_logprobs agree with it; the raw log-probs are log_softmax(x).
TEST(SamplingServing, ProcessedDistributionAndLogprobs) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const int64_t v = 64;
  std::vector<float> x(static_cast<std::size_t>(v));
  for (auto& e : x) e = nd(rng);
  x[3] = kNegInf;
  struct Case {
    double t;
    int64_t k;
    double p, m;
  };
  for (const Case c : {Case{1.0, 0, 1.0, 0.0}, Case{0.7, 10, 1.0, 0.0}, Case{1.2, 0, 0.8, 0.0},
                       Case{0.9, 20, 0.9, 0.05}}) {
    SamplingParams p;
    p.temperature = c.t;
    p.top_k = c.k;
    p.top_p = c.p;
    p.min_p = c.m;
    const std::vector<LD> ref = reference_dist(x, c.t, c.k, c.p, c.m);
    std::vector<double> fp(static_cast<std::size_t>(v));
    softmax::filtered_probs(view2(x, 1, v), softmax::TensorView(fp.data(), DType::f64, {1, v}), p);
    double sum = 0;
    for (int64_t i = 0; i < v; ++i) {
      // f32 weights: the rounding of z = (x - max) / T moves exp(z) by |z| 2^-24 relative, exp
      // adds 1 ulp, the sum's normalisation as much again: 2^-22 (|log p_i| + 4) relative.
      const double r = static_cast<double>(ref[i]);
      EXPECT_NEAR(fp[i], r, r > 0 ? 0x1p-22 * (std::fabs(std::log(r)) + 4) * r : 0.0)
          << "token " << i << " T " << c.t;
      if (ref[i] == 0) EXPECT_EQ(fp[i], 0.0);
      sum += fp[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
    // token_logprobs of sampled tokens: processed = log(filtered p), raw = log_softmax(x).
    std::vector<int64_t> tok(16);
    softmax::sample(view2(x, 1, v), softmax::TensorView(tok.data(), DType::i64, {1, 16}), p, 42);
    std::vector<double> lp_proc(16), lp_raw(16);
    softmax::token_logprobs(view2(x, 1, v),
                            softmax::ConstTensorView(tok.data(), DType::i64, {1, 16}),
                            softmax::TensorView(lp_proc.data(), DType::f64, {1, 16}), p,
                            softmax::LogprobsMode::kProcessed);
    softmax::token_logprobs(
        view2(x, 1, v), softmax::ConstTensorView(tok.data(), DType::i64, {1, 16}),
        softmax::TensorView(lp_raw.data(), DType::f64, {1, 16}), p, softmax::LogprobsMode::kRaw);
    const std::vector<LD> raw = reference_dist(x, 1.0, 0, 1.0, 0.0);
    for (int j = 0; j < 16; ++j) {
      EXPECT_NEAR(lp_proc[j], std::log(fp[tok[j]]), 1e-12);
      EXPECT_GT(lp_proc[j], -INFINITY) << "a sampled token has processed probability > 0";
      EXPECT_NEAR(lp_raw[j], static_cast<double>(std::log(raw[tok[j]])), 1e-5);
    }
    // A filtered-out token has processed log-prob -inf.
    const int64_t three = 3;
    double lp3 = 0;
    softmax::token_logprobs(view2(x, 1, v), softmax::ConstTensorView(&three, DType::i64, {1}),
                            softmax::TensorView(&lp3, DType::f64, {1}), p,
                            softmax::LogprobsMode::kProcessed);
    EXPECT_EQ(lp3, -INFINITY);
    // Processed top-N: the most probable kept tokens, then probability-0 tokens in id order.
    const softmax::TopLogprobs top =
        softmax::top_logprobs(view2(x, 1, v), v, p, softmax::LogprobsMode::kProcessed);
    std::vector<int64_t> order(static_cast<std::size_t>(v));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return ref[a] > ref[b]; });
    EXPECT_EQ(top.ids, order);
    for (int64_t j = 0; j < v; ++j) {
      if (ref[order[j]] == 0)
        EXPECT_EQ(top.logprobs[j], -INFINITY);
      else
        EXPECT_NEAR(top.logprobs[j], std::log(fp[order[j]]), 1e-12);
    }
  }
  // Greedy: the processed distribution is the point mass at the argmax.
  SamplingParams g;
  g.temperature = 0.0;
  std::vector<float> fp(static_cast<std::size_t>(v));
  softmax::filtered_probs(view2(x, 1, v), softmax::TensorView(fp.data(), DType::f32, {1, v}), g);
  const int64_t am = std::max_element(x.begin(), x.end()) - x.begin();
  for (int64_t i = 0; i < v; ++i) EXPECT_EQ(fp[i], i == am ? 1.0f : 0.0f);
}

// Gumbel-top-k: k distinct tokens; the first is the Gumbel-max draw; the ordered pair
// (first, second) follows p_i p_j / (1 - p_i) (chi-square, as expect_fits).
TEST(SamplingServing, WithoutReplacement) {
  const std::vector<float> x{1.0f, 0.0f, -0.5f, 2.0f, 0.3f, kNegInf};
  const int64_t v = 6, n = 1 << 17;
  const std::vector<float> rows = [&] {
    std::vector<float> r;
    for (int64_t i = 0; i < n; ++i) r.insert(r.end(), x.begin(), x.end());
    return r;
  }();
  SamplingParams p;
  std::vector<int64_t> t(static_cast<std::size_t>(n * 2));
  softmax::sample_without_replacement(view2(rows, n, v),
                                      softmax::TensorView(t.data(), DType::i64, {n, 2}), p, 5);
  SamplingParams gm;
  gm.method = SamplingMethod::kGumbelMax;
  const std::vector<int64_t> first = draw_many(rows, n, v, gm, 5, 1);
  const std::vector<LD> pd = reference_dist(x, 1.0, 0, 1.0, 0.0);
  std::vector<int64_t> pairs(static_cast<std::size_t>(n));
  std::vector<LD> pair_dist(static_cast<std::size_t>(v * v), 0);
  for (int64_t i = 0; i < v; ++i) {
    for (int64_t j = 0; j < v; ++j) {
      if (i != j && pd[i] < 1) pair_dist[i * v + j] = pd[i] * pd[j] / (1 - pd[i]);
    }
  }
  for (int64_t r = 0; r < n; ++r) {
    ASSERT_NE(t[r * 2], t[r * 2 + 1]);
    ASSERT_EQ(t[r * 2], first[r]);
    pairs[r] = t[r * 2] * v + t[r * 2 + 1];
  }
  expect_fits(pairs, pair_dist, "ordered pairs without replacement");
  // Greedy: the k largest logits, lowest id on ties.
  SamplingParams g;
  g.temperature = 0.0;
  const std::vector<float> y{1.0f, 3.0f, 3.0f, -1.0f, 2.0f};
  std::vector<int64_t> top(4);
  softmax::sample_without_replacement(view2(y, 1, 5),
                                      softmax::TensorView(top.data(), DType::i64, {1, 4}), g, 0);
  EXPECT_EQ(top, (std::vector<int64_t>{1, 2, 4, 0}));
  // k beyond the tokens of positive probability: an error, nothing written.
  std::vector<int64_t> six(6, -7);
  EXPECT_THROW(softmax::sample_without_replacement(
                   view2(x, 1, v), softmax::TensorView(six.data(), DType::i64, {1, 6}), p, 0),
               softmax::Error);
  EXPECT_EQ(six, std::vector<int64_t>(6, -7));
  SamplingParams k2;
  k2.top_k = 2;
  std::vector<int64_t> three(3, -7);
  EXPECT_THROW(softmax::sample_without_replacement(
                   view2(x, 1, v), softmax::TensorView(three.data(), DType::i64, {1, 3}), k2, 0),
               softmax::Error);
}

TEST(SamplingServing, Errors) {
  const std::vector<float> x(2 * 8, 0.5f);
  auto with = [](auto set) {
    SamplingParams p;
    set(p);
    return p;
  };
  static const std::vector<uint64_t> three{1, 2, 3};
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.seeds = three; }), "'seeds'");
  expect_error(x, 2, 8, with([](SamplingParams& p) { p.offsets = three; }), "'offsets'");
  std::vector<double> out(16, -7);
  const int64_t bad = 8;
  EXPECT_THROW(
      softmax::token_logprobs(view2(x, 2, 8), softmax::ConstTensorView(&bad, DType::i64, {1}),
                              softmax::TensorView(out.data(), DType::f64, {1}), {},
                              softmax::LogprobsMode::kRaw),
      softmax::Error);
  const std::vector<int64_t> bad2{0, 8};
  EXPECT_THROW(softmax::token_logprobs(view2(x, 2, 8),
                                       softmax::ConstTensorView(bad2.data(), DType::i64, {2}),
                                       softmax::TensorView(out.data(), DType::f64, {2}), {},
                                       softmax::LogprobsMode::kRaw),
               softmax::Error);
  EXPECT_THROW(softmax::filtered_probs(view2(x, 2, 8),
                                       softmax::TensorView(out.data(), DType::f64, {2, 7}), {}),
               softmax::Error);
  EXPECT_EQ(out, std::vector<double>(16, -7));
}

// draw_unfiltered (the residual / bonus draw of speculative_verify) is RowFilter<double>'s
// filter with no filter followed by draw, token for token: rows with zeros, -0, weights whose
// mass rounds to q = 0, one dominant weight, and uniforms at both ends.
TEST(SamplingSelect, DrawUnfilteredEqualsRowFilterDraw) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> nd(0.0, 4.0);
  RowFilter<double> rf;
  int checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 3000);
    std::vector<double> w(static_cast<std::size_t>(n));
    for (auto& x : w) x = std::exp(nd(rng));
    for (int z = 0; z < 5; ++z) w[rng() % n] = (z % 2) ? 0.0 : -0.0;
    if (trial % 7 == 0) w[rng() % n] = 1e30;     // the others' q round to 0
    if (trial % 11 == 0) w[rng() % n] = 1e-300;  // q = 0, w > 0
    double w_max = 0;
    for (double x : w) w_max = std::max(w_max, x);
    if (!(w_max > 0)) continue;
    rf.filter(w.data(), n, w_max, softmax::detail::FilterSpec{});
    for (uint64_t u : {uint64_t{0}, ~uint64_t{0}, rng(), rng(), rng()}) {
      const int64_t want = rf.draw(u);
      const int64_t got =
          softmax::detail::draw_unfiltered(n, w_max, u, [&](int64_t i) { return w[i]; });
      ASSERT_EQ(got, want) << "trial " << trial << " u " << u;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

}  // namespace
