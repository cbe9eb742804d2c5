// tests/cpu/sampled_softmax_test.cc: candidate samplers against TensorFlow's published
// probabilities and expected-count formulas (log-uniform P(k) = log((k+2)/(k+1)) / log(V+1);
// expected count num_sampled * P without unique, 1 - (1 - P)^num_tries with unique) and
// chi-square goodness of fit; sampled_softmax_loss against a long double reference of its
// formula, its gradients against long double finite differences, accidental-hit removal, and
// the convergence of the sampled gradient to the full-softmax gradient as num_sampled grows
// (and its bias without the log Q correction).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "large_vocab_test_util.hpp"
#include "softmax/error.hpp"
#include "softmax/sampled_softmax.hpp"
#include "src/ref/large_vocab_reference.hpp"

namespace {

using lvtest::LD;
using lvtest::Mat;
using softmax::CandidateSampler;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::SampledSoftmaxOptions;

SampledSoftmaxOptions opts(int64_t ns, int64_t v, int64_t nt = 1, bool unique = false) {
  SampledSoftmaxOptions o;
  o.num_sampled = ns;
  o.num_classes = v;
  o.num_true = nt;
  o.unique = unique;
  return o;
}

ConstTensorView ids_view(const std::vector<int64_t>& ids, int64_t n, int64_t nt) {
  return {ids.data(), DType::i64, {n, nt}};
}

TEST(CandidateSampler, ExpectedCountsFollowTensorFlowFormulas) {
  const int64_t v = 1000;
  const std::vector<int64_t> labels{0, 1, 7, 999, 500, 3};
  for (bool unique : {false, true}) {
    SampledSoftmaxOptions o = opts(64, v, 2, unique);
    o.seed = 11;
    const auto s = softmax::sample_candidates(ids_view(labels, 3, 2), o);
    ASSERT_EQ(s.sampled.size(), 64u);
    if (!unique) EXPECT_EQ(s.num_tries, 64);
    if (unique) {
      EXPECT_EQ(std::set<int64_t>(s.sampled.begin(), s.sampled.end()).size(), 64u);
      EXPECT_GT(s.num_tries, 64);  // log-uniform repeats its head classes at once
    }
    auto expected = [&](int64_t k) {
      const LD p = softmax::ref::log_uniform_probability(k, v);
      return s.num_tries == 64 ? 64 * p : 1 - std::pow(1 - p, static_cast<LD>(s.num_tries));
    };
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const LD e = expected(labels[i]);
      EXPECT_NEAR(s.true_expected_count[i], static_cast<double>(e), 4e-7 * static_cast<double>(e))
          << "label " << labels[i] << " unique " << unique;
    }
    for (std::size_t i = 0; i < s.sampled.size(); ++i) {
      ASSERT_GE(s.sampled[i], 0);
      ASSERT_LT(s.sampled[i], v);
      const LD e = expected(s.sampled[i]);
      EXPECT_NEAR(s.sampled_expected_count[i], static_cast<double>(e),
                  4e-7 * static_cast<double>(e));
    }
    EXPECT_NEAR(softmax::candidate_probability(7, o),
                static_cast<double>(softmax::ref::log_uniform_probability(7, v)), 1e-15);
  }
}

// Chi-square goodness of fit of 200,000 draws (without unique) for each sampler.
TEST(CandidateSampler, DrawsFitTheirDistribution) {
  const int64_t v = 40, draws = 200000;
  const std::vector<int64_t> label{0};
  for (auto kind :
       {CandidateSampler::kLogUniform, CandidateSampler::kUniform, CandidateSampler::kUnigram}) {
    SampledSoftmaxOptions o = opts(draws, v);
    o.sampler = kind;
    o.seed = 5;
    o.offset = 77;
    if (kind == CandidateSampler::kUnigram) {
      for (int64_t k = 0; k < v; ++k) o.unigrams.push_back(static_cast<double>((k * 7) % 13));
      o.distortion = 0.75;
    }
    const auto s = softmax::sample_candidates(ids_view(label, 1, 1), o);
    std::vector<double> count(static_cast<std::size_t>(v), 0);
    for (int64_t k : s.sampled) count[static_cast<std::size_t>(k)] += 1;
    double chi2 = 0, df = -1;
    for (int64_t k = 0; k < v; ++k) {
      double p;
      if (kind == CandidateSampler::kLogUniform)
        p = static_cast<double>(softmax::ref::log_uniform_probability(k, v));
      else if (kind == CandidateSampler::kUniform)
        p = 1.0 / static_cast<double>(v);
      else {
        double tot = 0;
        for (double u : o.unigrams) tot += u == 0 ? 0 : std::pow(u, 0.75);
        p = o.unigrams[static_cast<std::size_t>(k)] == 0
                ? 0
                : std::pow(o.unigrams[static_cast<std::size_t>(k)], 0.75) / tot;
      }
      EXPECT_NEAR(softmax::candidate_probability(k, o), p, 1e-12);
      if (p == 0) {
        EXPECT_EQ(count[static_cast<std::size_t>(k)], 0) << "class of probability 0 drawn";
        continue;
      }
      const double e = p * static_cast<double>(draws);
      chi2 +=
          (count[static_cast<std::size_t>(k)] - e) * (count[static_cast<std::size_t>(k)] - e) / e;
      df += 1;
    }
    EXPECT_LT(chi2, lvtest::chi2_critical(df)) << "sampler " << static_cast<int>(kind);
  }
}

TEST(CandidateSampler, SameSeedSameSamplesAnyThreadCount) {
  const std::vector<int64_t> label{3, 4};
  SampledSoftmaxOptions o = opts(500, 5000, 1, true);
  o.seed = 99;
  const auto a = softmax::sample_candidates(ids_view(label, 2, 1), o);
  o.threads = 2;
  const auto b = softmax::sample_candidates(ids_view(label, 2, 1), o);
  EXPECT_EQ(a.sampled, b.sampled);
  o.offset = 1;
  const auto c = softmax::sample_candidates(ids_view(label, 2, 1), o);
  EXPECT_NE(a.sampled, c.sampled);
}

struct Case {
  Mat w, x;
  std::vector<float> b;
  std::vector<int64_t> labels;
  int64_t n, d, v, nt;
};

Case make_case(uint64_t seed, int64_t n, int64_t d, int64_t v, int64_t nt) {
  std::mt19937_64 rng(seed);
  Case c{
      lvtest::random_mat(rng, v, d, 0.7), lvtest::random_mat(rng, n, d, 1.0), {}, {}, n, d, v, nt};
  std::normal_distribution<double> nd(0, 0.3);
  for (int64_t k = 0; k < v; ++k) c.b.push_back(static_cast<float>(nd(rng)));
  for (int64_t i = 0; i < n * nt; ++i)
    c.labels.push_back(static_cast<int64_t>(rng() % static_cast<uint64_t>(v / 4)));
  return c;
}

softmax::SampledSoftmaxResult run(const Case& c, const SampledSoftmaxOptions& o) {
  return softmax::sampled_softmax_loss(c.w.view(), ConstTensorView(c.b.data(), {c.v}),
                                       ids_view(c.labels, c.n, c.nt), c.x.view(), o);
}

// Reference loss of example i given the library's samples.
LD ref_loss(const Case& c, const softmax::SampledSoftmaxResult& r, int64_t i,
            const SampledSoftmaxOptions& o, const softmax::ref::LMat& w, const std::vector<LD>& b,
            const std::vector<LD>& x) {
  const std::vector<int64_t> lab(c.labels.begin() + i * c.nt, c.labels.begin() + (i + 1) * c.nt);
  const std::vector<LD> te(r.samples.true_expected_count.begin() + i * c.nt,
                           r.samples.true_expected_count.begin() + (i + 1) * c.nt);
  return softmax::ref::sampled_softmax_loss(w, b, x, lab, r.samples.sampled, te,
                                            lvtest::exact(r.samples.sampled_expected_count),
                                            o.remove_accidental_hits, o.subtract_log_q);
}

// The header's bound: 2^-21 (1 + |lse|) plus twice the largest logit error, (D + 2) 2^-24
// (sum |w x| + |b| + |log Q|) over the columns; |lse| <= |loss| + max |logit|.
double documented_bound(const Case& c, const softmax::SampledSoftmaxResult& r, int64_t i, LD loss) {
  double max_logit = 0, max_err = 0;
  auto column = [&](int64_t k, double q) {
    double mag = std::fabs(c.b[static_cast<std::size_t>(k)]) + std::fabs(std::log(q)), dot = 0;
    for (int64_t j = 0; j < c.d; ++j) {
      const double p = static_cast<double>(c.w.f[static_cast<std::size_t>(k * c.d + j)]) *
                       c.x.f[static_cast<std::size_t>(i * c.d + j)];
      mag += std::fabs(p);
      dot += p;
    }
    max_logit = std::max(max_logit, std::fabs(dot) + mag);
    max_err = std::max(max_err, static_cast<double>(c.d + 2) * 0x1p-24 * mag);
  };
  for (int64_t j = 0; j < c.nt; ++j) {
    column(c.labels[static_cast<std::size_t>(i * c.nt + j)],
           r.samples.true_expected_count[static_cast<std::size_t>(i * c.nt + j)]);
  }
  for (std::size_t s = 0; s < r.samples.sampled.size(); ++s) {
    column(r.samples.sampled[s], r.samples.sampled_expected_count[s]);
  }
  const double lse = std::fabs(static_cast<double>(loss)) + max_logit;
  return 0x1p-21 * (1 + lse) + 2 * max_err;
}

TEST(SampledSoftmaxLoss, MatchesLongDoubleReferenceAndFiniteDifferences) {
  const Case c = make_case(3, 5, 8, 40, 2);
  const softmax::ref::LMat w = c.w.exact();
  const std::vector<LD> b = lvtest::exact(c.b);
  for (int variant = 0; variant < 4; ++variant) {
    SampledSoftmaxOptions o = opts(12, c.v, c.nt, variant == 3);
    o.remove_accidental_hits = variant != 1;
    o.subtract_log_q = variant != 2;
    o.sampler = CandidateSampler::kUniform;  // hits on the labels (ids < 10) are common
    o.seed = 1 + static_cast<uint64_t>(variant);
    o.compute_grad = true;
    const auto r = run(c, o);
    SCOPED_TRACE("variant " + std::to_string(variant));
    for (int64_t i = 0; i < c.n; ++i) {
      const std::vector<LD> x = c.x.row(i);
      const LD e = ref_loss(c, r, i, o, w, b, x);
      EXPECT_NEAR(r.loss[static_cast<std::size_t>(i)], static_cast<double>(e),
                  documented_bound(c, r, i, e));
      // d loss_i / d x_i
      for (int64_t k = 0; k < c.d; ++k) {
        const LD fd = lvtest::central_diff(
            [&](LD t) {
              std::vector<LD> xx = x;
              xx[static_cast<std::size_t>(k)] = t;
              return ref_loss(c, r, i, o, w, b, xx);
            },
            x[static_cast<std::size_t>(k)]);
        EXPECT_NEAR(r.grad_inputs[static_cast<std::size_t>(i * c.d + k)], static_cast<double>(fd),
                    2e-5);
      }
    }
    // Sparse weight / bias gradients of sum_i loss_i: exactly the sampled and true rows.
    std::set<int64_t> touched(r.samples.sampled.begin(), r.samples.sampled.end());
    touched.insert(c.labels.begin(), c.labels.end());
    ASSERT_EQ(std::vector<int64_t>(touched.begin(), touched.end()), r.grad_weights.rows);
    auto total = [&](const softmax::ref::LMat& ww, const std::vector<LD>& bb) {
      LD s = 0;
      for (int64_t i = 0; i < c.n; ++i) s += ref_loss(c, r, i, o, ww, bb, c.x.row(i));
      return s;
    };
    for (std::size_t q = 0; q < r.grad_weights.rows.size(); ++q) {
      const int64_t row = r.grad_weights.rows[q];
      const LD fb = lvtest::central_diff(
          [&](LD t) {
            std::vector<LD> bb = b;
            bb[static_cast<std::size_t>(row)] = t;
            return total(w, bb);
          },
          b[static_cast<std::size_t>(row)]);
      EXPECT_NEAR(r.grad_weights.bias[q], static_cast<double>(fb), 2e-5) << "row " << row;
      for (int64_t k = 0; k < c.d; k += 3) {
        const LD fw = lvtest::central_diff(
            [&](LD t) {
              softmax::ref::LMat ww = w;
              ww.v[static_cast<std::size_t>(row * c.d + k)] = t;
              return total(ww, b);
            },
            w.at(row, k));
        EXPECT_NEAR(
            r.grad_weights.values[q * static_cast<std::size_t>(c.d) + static_cast<std::size_t>(k)],
            static_cast<double>(fw), 2e-5)
            << "row " << row;
      }
    }
  }
}

// A sampled class equal to the example's label gets probability 0 (the right column is
// masked), and the loss differs from keeping it.
TEST(SampledSoftmaxLoss, RemovesAccidentalHitsOfTheRightRow) {
  Case c = make_case(8, 2, 4, 6, 1);
  c.labels = {2, 5};
  SampledSoftmaxOptions o = opts(6, c.v, 1, true);  // unique: every class is sampled once
  o.compute_grad = true;
  const auto r = run(c, o);
  const softmax::ref::LMat w = c.w.exact();
  const std::vector<LD> b = lvtest::exact(c.b);
  for (int64_t i = 0; i < 2; ++i) {
    const LD e = ref_loss(c, r, i, o, w, b, c.x.row(i));
    EXPECT_NEAR(r.loss[static_cast<std::size_t>(i)], static_cast<double>(e), 1e-5);
  }
  o.remove_accidental_hits = false;
  const auto kept = run(c, o);
  EXPECT_GT(kept.loss[0], r.loss[0] + 1e-3);  // the duplicate true column adds mass
}

double rel_err(const std::vector<LD>& a, const std::vector<LD>& b) {
  LD num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return static_cast<double>(std::sqrt(num / den));
}

// The average sampled gradient d loss / d x over many seeds approaches the full-softmax
// gradient as num_sampled grows (log Q corrected, no accidental-hit removal); without the
// log Q correction it stays biased towards the sampler's distribution.
TEST(SampledSoftmaxLoss, GradientConvergesToFullSoftmaxGradient) {
  const Case c = make_case(21, 1, 6, 300, 1);
  std::vector<LD> full;
  softmax::ref::full_softmax_loss(c.w.exact(), lvtest::exact(c.b), c.x.row(0), c.labels[0], &full);
  auto avg_err = [&](int64_t ns, bool subtract) {
    std::vector<LD> avg(static_cast<std::size_t>(c.d), 0);
    const int reps = 200;
    for (int rep = 0; rep < reps; ++rep) {
      SampledSoftmaxOptions o = opts(ns, c.v);
      o.remove_accidental_hits = false;
      o.subtract_log_q = subtract;
      o.compute_grad = true;
      o.seed = static_cast<uint64_t>(rep);
      o.threads = 1;
      const auto r = run(c, o);
      for (int64_t k = 0; k < c.d; ++k)
        avg[static_cast<std::size_t>(k)] +=
            r.grad_inputs[static_cast<std::size_t>(k)] / static_cast<LD>(reps);
    }
    return rel_err(avg, full);
  };
  const double e10 = avg_err(10, true), e100 = avg_err(100, true), e2000 = avg_err(2000, true);
  const double biased = avg_err(2000, false);
  std::printf(
      "[measured] sampled-gradient error vs full: S=10 %.4f  S=100 %.4f  S=2000 %.4f;"
      " without log Q at S=2000: %.4f\n",
      e10, e100, e2000, biased);
  EXPECT_LT(e2000, e100);
  EXPECT_LT(e100, e10);
  EXPECT_LT(e2000, 0.05);
  EXPECT_GT(biased, 5 * e2000);
}

TEST(SampledSoftmaxLoss, ThreadCountDoesNotChangeSamplesOrLoss) {
  const Case c = make_case(4, 64, 16, 500, 1);
  SampledSoftmaxOptions o = opts(50, c.v);
  o.compute_grad = true;
  o.threads = 1;
  const auto a = run(c, o);
  o.threads = 2;
  const auto b = run(c, o);
  EXPECT_EQ(a.samples.sampled, b.samples.sampled);
  for (std::size_t i = 0; i < a.loss.size(); ++i) EXPECT_NEAR(a.loss[i], b.loss[i], 1e-6);
  EXPECT_EQ(a.grad_weights.rows, b.grad_weights.rows);
}

TEST(SampledSoftmaxLoss, Errors) {
  const Case c = make_case(5, 3, 4, 10, 1);
  auto expect_error = [&](SampledSoftmaxOptions o, const std::string& needle, const Case& cc) {
    try {
      run(cc, o);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const softmax::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(opts(11, 10, 1, true), "'num_sampled' = 11", c);
  expect_error(opts(0, 10), "'num_sampled' = 0", c);
  expect_error(opts(3, 11), "'weights'", c);
  expect_error(opts(3, 10, 2), "'labels'", c);
  Case bad = c;
  bad.labels[1] = 10;
  expect_error(opts(3, 10), "'labels[1, 0]' = 10", bad);
  SampledSoftmaxOptions u = opts(3, 10);
  u.sampler = CandidateSampler::kUnigram;
  u.unigrams.assign(9, 1.0);
  expect_error(u, "'unigrams'", c);
  u.unigrams.assign(10, 1.0);
  u.unigrams[4] = -1;
  expect_error(u, "'unigrams[4]' = -1", c);
  u.unigrams.assign(10, 0.0);
  u.unigrams[2] = 1;
  u.unique = true;
  expect_error(u, "nonzero unigram probability", c);
}

}  // namespace
