// tests/cpu/speculative_test.cc: speculative_verify (softmax/speculative.hpp). The emitted
// tokens follow the target distributions for arbitrary drafts, including drafts with q = 0
// where p > 0 and p = 0 where q > 0 (chi-square against the exact p, bound as in
// sampling_test.cc: chi2 <= df + 8 sqrt(2 df) + 8, deterministic with fixed seeds); the
// acceptance rate is sum_i min(p_i, q_i); determinism, batch invariance and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/speculative.hpp"

namespace {

using softmax::DType;

struct Verified {
  std::vector<int64_t> accepted, tokens;
};

// n rows with the same p (k + 1, V) and q (k, V); drafts drawn from q by a separate generator.
Verified verify(const std::vector<double>& p, const std::vector<double>& q, int64_t k, int64_t v,
                int64_t n, uint64_t seed, std::vector<int64_t>* drafts_out = nullptr) {
  std::mt19937_64 rng(seed * 7 + 1);
  std::vector<int64_t> drafts(static_cast<std::size_t>(n * k));
  for (int64_t j = 0; j < k; ++j) {
    std::discrete_distribution<int64_t> d(q.begin() + j * v, q.begin() + (j + 1) * v);
    for (int64_t r = 0; r < n; ++r) drafts[r * k + j] = d(rng);
  }
  std::vector<double> qq, pp;
  for (int64_t r = 0; r < n; ++r) {
    qq.insert(qq.end(), q.begin(), q.end());
    pp.insert(pp.end(), p.begin(), p.end());
  }
  Verified out{std::vector<int64_t>(static_cast<std::size_t>(n)),
               std::vector<int64_t>(static_cast<std::size_t>(n * (k + 1)))};
  softmax::speculative_verify(softmax::ConstTensorView(drafts.data(), DType::i64, {n, k}),
                              softmax::ConstTensorView(qq.data(), DType::f64, {n, k, v}),
                              softmax::ConstTensorView(pp.data(), DType::f64, {n, k + 1, v}),
                              softmax::TensorView(out.accepted.data(), DType::i64, {n}),
                              softmax::TensorView(out.tokens.data(), DType::i64, {n, k + 1}), seed);
  if (drafts_out) *drafts_out = drafts;
  return out;
}

void expect_fits(const std::vector<int64_t>& draws, const double* dist, int64_t v,
                 const char* what) {
  std::vector<int64_t> cnt(static_cast<std::size_t>(v), 0);
  for (int64_t t : draws) ++cnt[t];
  const double n = static_cast<double>(draws.size());
  double chi2 = 0;
  int df = -1;
  for (int64_t i = 0; i < v; ++i) {
    if (dist[i] == 0) {
      EXPECT_EQ(cnt[i], 0) << what << ": token " << i << " has target probability 0";
      continue;
    }
    const double e = n * dist[i];
    chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
    ++df;
  }
  EXPECT_LE(chi2, df + 8 * std::sqrt(2.0 * df) + 8) << what << " (df " << df << ", n " << n << ")";
}

TEST(Speculative, OutputFollowsTarget) {
  const int64_t k = 3, v = 6, n = 200000;
  // Target rows (k + 1): token 4 has p = 0 at position 0 while the draft proposes it.
  const std::vector<double> p{0.30, 0.20, 0.25, 0.15, 0.00, 0.10, 0.05, 0.05,
                              0.40, 0.10, 0.20, 0.20, 0.50, 0.10, 0.10, 0.10,
                              0.10, 0.10, 0.10, 0.20, 0.30, 0.15, 0.05, 0.20};
  // Draft rows (k): q = 0 where p > 0 (tokens 1, 5 at position 0), q far from p elsewhere.
  const std::vector<double> q{0.50, 0.00, 0.10, 0.20, 0.20, 0.00, 0.30, 0.30, 0.10,
                              0.10, 0.10, 0.10, 0.50, 0.10, 0.10, 0.10, 0.10, 0.10};
  const Verified r = verify(p, q, k, v, n, 2024);
  for (int64_t j = 0; j <= k; ++j) {
    // Position j is emitted exactly when j <= num_accepted; it then follows p_j.
    std::vector<int64_t> at;
    for (int64_t b = 0; b < n; ++b) {
      ASSERT_GE(r.accepted[b], 0);
      ASSERT_LE(r.accepted[b], k);
      if (j <= r.accepted[b])
        at.push_back(r.tokens[b * (k + 1) + j]);
      else
        ASSERT_EQ(r.tokens[b * (k + 1) + j], -1);
    }
    ASSERT_GT(at.size(), 1000u) << j;
    expect_fits(at, p.data() + j * v, v, ("position " + std::to_string(j)).c_str());
  }
  // Acceptance at position 0: P = sum_i min(p_i, q_i) = 0.3 + 0.1 + 0.15 = 0.55.
  int64_t acc0 = 0;
  for (int64_t b = 0; b < n; ++b) acc0 += r.accepted[b] >= 1;
  EXPECT_NEAR(static_cast<double>(acc0) / n, 0.55, 6 * std::sqrt(0.55 * 0.45 / n));
  // Position 2 has q == p: always accepted once reached.
  for (int64_t b = 0; b < n; ++b) {
    if (r.accepted[b] >= 2) EXPECT_EQ(r.accepted[b], 3);
  }
}

// Random draft and target rows (f32 inputs, many seeds): the first token follows p_0.
TEST(Speculative, RandomDistributionsF32) {
  const int64_t k = 2, v = 12, n = 60000;
  std::mt19937 rng(5);
  std::gamma_distribution<double> g(0.5);
  std::vector<float> p(static_cast<std::size_t>((k + 1) * v)), q(static_cast<std::size_t>(k * v));
  auto fill = [&](std::vector<float>& x, int64_t rows) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      std::vector<double> row(static_cast<std::size_t>(v));
      for (auto& e : row) s += e = (g(rng) < 0.2 ? 0.0 : g(rng));
      for (int64_t i = 0; i < v; ++i) x[r * v + i] = static_cast<float>(row[i] / s);
    }
  };
  fill(p, k + 1);
  fill(q, k);
  std::vector<double> pd(p.begin(), p.end()), qd(q.begin(), q.end());
  std::vector<int64_t> drafts(static_cast<std::size_t>(n * k));
  std::mt19937_64 r2(9);
  for (int64_t j = 0; j < k; ++j) {
    std::discrete_distribution<int64_t> d(qd.begin() + j * v, qd.begin() + (j + 1) * v);
    for (int64_t b = 0; b < n; ++b) drafts[b * k + j] = d(r2);
  }
  std::vector<float> pp, qq;
  for (int64_t b = 0; b < n; ++b) {
    pp.insert(pp.end(), p.begin(), p.end());
    qq.insert(qq.end(), q.begin(), q.end());
  }
  std::vector<int64_t> acc(static_cast<std::size_t>(n)), tok(static_cast<std::size_t>(n * (k + 1)));
  softmax::speculative_verify(softmax::ConstTensorView(drafts.data(), DType::i64, {n, k}),
                              softmax::ConstTensorView(qq.data(), DType::f32, {n, k, v}),
                              softmax::ConstTensorView(pp.data(), DType::f32, {n, k + 1, v}),
                              softmax::TensorView(acc.data(), DType::i64, {n}),
                              softmax::TensorView(tok.data(), DType::i64, {n, k + 1}), 77);
  std::vector<int64_t> first(static_cast<std::size_t>(n));
  for (int64_t b = 0; b < n; ++b) first[b] = tok[b * (k + 1)];
  std::vector<double> p0(pd.begin(), pd.begin() + v);
  double s = 0;
  for (double e : p0) s += e;
  for (double& e : p0) e /= s;
  expect_fits(first, p0.data(), v, "first token, f32 rows");
}

TEST(Speculative, DeterministicAndBatchInvariant) {
  const int64_t k = 4, v = 5, n = 64;
  std::vector<double> p, q;
  for (int64_t j = 0; j <= k; ++j) p.insert(p.end(), {0.1, 0.2, 0.3, 0.2, 0.2});
  for (int64_t j = 0; j < k; ++j) q.insert(q.end(), {0.4, 0.1, 0.1, 0.3, 0.1});
  std::vector<int64_t> drafts;
  const Verified a = verify(p, q, k, v, n, 3, &drafts);
  const Verified b = verify(p, q, k, v, n, 3);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.accepted, b.accepted);
  // Row 10 alone with stream 10 gives row 10's result.
  std::vector<double> pr(p), qr(q);
  const uint64_t stream = 10;
  std::vector<int64_t> acc(1), tok(static_cast<std::size_t>(k + 1));
  softmax::speculative_verify(softmax::ConstTensorView(drafts.data() + 10 * k, DType::i64, {1, k}),
                              softmax::ConstTensorView(qr.data(), DType::f64, {1, k, v}),
                              softmax::ConstTensorView(pr.data(), DType::f64, {1, k + 1, v}),
                              softmax::TensorView(acc.data(), DType::i64, {1}),
                              softmax::TensorView(tok.data(), DType::i64, {1, k + 1}), 3, 0,
                              std::span<const uint64_t>(&stream, 1));
  EXPECT_EQ(acc[0], a.accepted[10]);
  EXPECT_EQ(tok,
            std::vector<int64_t>(a.tokens.begin() + 10 * (k + 1), a.tokens.begin() + 11 * (k + 1)));
  // Accepted tokens are the drafts.
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < a.accepted[r]; ++j)
      EXPECT_EQ(a.tokens[r * (k + 1) + j], drafts[r * k + j]);
  }
}

TEST(Speculative, Errors) {
  const int64_t k = 1, v = 3;
  std::vector<int64_t> drafts{1};
  std::vector<double> q{0.2, 0.3, 0.5}, p{0.2, 0.3, 0.5, 0.1, 0.1, 0.8};
  std::vector<int64_t> acc{-7}, tok{-7, -7};
  auto call = [&](const std::vector<int64_t>& d, const std::vector<double>& qq,
                  const std::vector<double>& pp) {
    softmax::speculative_verify(softmax::ConstTensorView(d.data(), DType::i64, {1, k}),
                                softmax::ConstTensorView(qq.data(), DType::f64, {1, k, v}),
                                softmax::ConstTensorView(pp.data(), DType::f64, {1, k + 1, v}),
                                softmax::TensorView(acc.data(), DType::i64, {1}),
                                softmax::TensorView(tok.data(), DType::i64, {1, k + 1}), 0);
  };
  auto expect = [&](auto fn, const char* needle) {
    try {
      fn();
      ADD_FAILURE() << "no error: " << needle;
    } catch (const softmax::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(acc[0], -7);
    EXPECT_EQ(tok, (std::vector<int64_t>{-7, -7}));
  };
  expect([&] { call({3}, q, p); }, "'draft_tokens'");
  expect([&] { call({-1}, q, p); }, "'draft_tokens'");
  expect([&] { call(drafts, {0.2, 0.3, 0.6}, p); }, "'draft_probs'");
  expect([&] { call(drafts, {-0.2, 0.7, 0.5}, p); }, "negative, NaN or inf");
  expect([&] { call(drafts, q, {0.2, 0.3, 0.5, 0.1, std::nan(""), 0.8}); }, "'target_probs'");
  expect(
      [&] {
        softmax::speculative_verify(softmax::ConstTensorView(drafts.data(), DType::i64, {1, k}),
                                    softmax::ConstTensorView(q.data(), DType::f64, {1, k, v}),
                                    softmax::ConstTensorView(p.data(), DType::f64, {1, k, v}),
                                    softmax::TensorView(acc.data(), DType::i64, {1}),
                                    softmax::TensorView(tok.data(), DType::i64, {1, k + 1}), 0);
      },
      "'target_probs'");
  call(drafts, q, p);  // valid: written
  EXPECT_GE(acc[0], 0);
}

// Pinned results: a digest of num_accepted and tokens over many rows at V = 128256 and 1000,
// f32 and f64, contiguous and strided probability rows, k = 0, 1, 4, 8, drafts that are the
// target plus noise (partial acceptance) and rows with zeros (q = 0 where p > 0, p = 0 where
// q > 0). The value was recorded before the speculative_verify speed-up (validation and the
// residual draw rewritten): it must draw the same tokens, bit for bit, on every machine.
uint64_t fnv(uint64_t h, int64_t v) {
  for (int i = 0; i < 8; ++i)
    h = (h ^ ((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF)) * 1099511628211u;
  return h;
}

template <class T>
uint64_t digest_case(int64_t b, int64_t k, int64_t v, int64_t stride, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 3.0), noise(0.0, 1.0);
  std::uniform_real_distribution<double> un(0.0, 1.0);
  // Rows of logits -> softmax in f64, stored in T with the last-axis stride.
  auto row = [&](const std::vector<double>& logits) {
    std::vector<double> out(logits.size());
    double m = -1e300, s = 0;
    for (double x : logits) m = std::max(m, x);
    for (std::size_t i = 0; i < logits.size(); ++i) out[i] = std::exp(logits[i] - m);
    // Zeros: a few tokens get probability 0 in one of the two models.
    for (int z = 0; z < 3; ++z) out[rng() % out.size()] = 0;
    for (double x : out) s += x;
    for (double& x : out) x /= s;
    return out;
  };
  std::vector<T> p(static_cast<std::size_t>(b * (k + 1) * v * stride)),
      q(static_cast<std::size_t>(std::max<int64_t>(b * k * v * stride, 1)));
  std::vector<int64_t> drafts(static_cast<std::size_t>(std::max<int64_t>(b * k, 1)));
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t j = 0; j <= k; ++j) {
      std::vector<double> lt(static_cast<std::size_t>(v));
      for (double& x : lt) x = nd(rng);
      const std::vector<double> pt = row(lt);
      for (int64_t i = 0; i < v; ++i)
        p[((r * (k + 1) + j) * v + i) * stride] = static_cast<T>(pt[i]);
      if (j == k) continue;
      for (double& x : lt) x += noise(rng);
      const std::vector<double> qt = row(lt);
      for (int64_t i = 0; i < v; ++i) q[((r * k + j) * v + i) * stride] = static_cast<T>(qt[i]);
      // The draft token: from q (inverse CDF in f64), sometimes a token with q = 0.
      double u = un(rng), acc = 0;
      int64_t t = v - 1;
      for (int64_t i = 0; i < v; ++i) {
        acc += qt[i];
        if (acc > u) {
          t = i;
          break;
        }
      }
      if (rng() % 10 == 0) {
        for (int64_t i = 0; i < v; ++i) {
          if (qt[i] == 0) t = i;
        }
      }
      drafts[r * k + j] = t;
    }
  }
  const DType dt = sizeof(T) == 4 ? DType::f32 : DType::f64;
  std::vector<int64_t> acc(static_cast<std::size_t>(b)), tok(static_cast<std::size_t>(b * (k + 1)));
  softmax::speculative_verify(
      softmax::ConstTensorView(drafts.data(), DType::i64, {b, k}),
      softmax::ConstTensorView(q.data(), dt, {b, k, v}, {k * v * stride, v * stride, stride}),
      softmax::ConstTensorView(p.data(), dt, {b, k + 1, v},
                               {(k + 1) * v * stride, v * stride, stride}),
      softmax::TensorView(acc.data(), DType::i64, {b}),
      softmax::TensorView(tok.data(), DType::i64, {b, k + 1}), seed, 3);
  uint64_t h = 14695981039346656037u;
  for (int64_t x : acc) h = fnv(h, x);
  for (int64_t x : tok) h = fnv(h, x);
  return h;
}

TEST(Speculative, PinnedDraws) {
  uint64_t h = 0;
  for (int64_t k : {0, 1, 4, 8}) {
    h ^= digest_case<float>(6, k, 128256, 1, 100 + k) * 3;
    h ^= digest_case<double>(6, k, 128256, 1, 200 + k) * 5;
    h ^= digest_case<float>(24, k, 1000, 2, 300 + k) * 7;
    h ^= digest_case<double>(24, k, 1000, 3, 400 + k) * 11;
  }
  EXPECT_EQ(h, uint64_t{530435324589036074u});
}

}  // namespace
