// tests/cpu/log_softmax_test.cc: log_softmax against the long double reference on every target
// and dtype pair; the bound of ops.hpp (|err| <= eps * (|y| + 2)); n equal huge logits give
// exactly -log(n); -inf entries give -inf; NaN rows; temperature.
#include <cmath>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

TEST(LogSoftmax, AllLengthsAllTargetsAllDtypes) {
  std::mt19937_64 rng(11);
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i <= 200; ++i) lengths.push_back(i);
  for (int64_t b : {2047, 2048, 2049, 32767, 32768, 32769, 65537}) lengths.push_back(b);
  std::vector<std::vector<double>> rows;
  for (int64_t n : lengths) rows.push_back(Normal(rng, n, 5.0));
  for (DTypePair p : AllPairs()) {
    Acc acc("log_softmax " + PairName(p) + " lengths 0..65k");
    ForEachTarget([&](const std::string&) {
      for (std::size_t k = 0; k < lengths.size(); ++k) {
        CheckRows(Op::kLogSoftmax, p, 1, lengths[k], rows[k], 1.0, lengths[k] > 4096 ? 2 : 1, &acc);
      }
    });
  }
}

// docs/kernel_bugs.md K4: the documented bound eps * (|y| + 2) on random rows.
TEST(LogSoftmax, DocumentedBoundRepro) {
  const double saved = g_log_softmax_slack;
  g_log_softmax_slack = 1.0;
  std::mt19937_64 rng(15);
  for (DTypePair p : {DTypePair{DType::f32, DType::f32}, DTypePair{DType::f64, DType::f64}}) {
    for (int k = 0; k < 20; ++k) {
      CheckRows(Op::kLogSoftmax, p, 1, 200, Normal(rng, 200, 5.0), 1.0, 1, nullptr);
    }
  }
  g_log_softmax_slack = saved;
}

TEST(LogSoftmax, AdversarialRows) {
  std::mt19937_64 rng(12);
  std::vector<std::vector<double>> rows = {
      Uniform(rng, 37, 90, 100),
      Uniform(rng, 3000, 90, 100),
      {1000, 1001, 1002},
      Uniform(rng, 200, -1e4, -9e3),
      Uniform(rng, 999, -200, 200),
      {3e38, -3e38, 1e38},
      {0, -87, -88, -104, -150, -1e6},
      {42.5},
      {-kInf, 2, -kInf, 1},
      {-kInf, -kInf},
      {kInf, 1},
  };
  for (DTypePair p : AllPairs()) {
    Acc acc("log_softmax " + PairName(p) + " adversarial");
    ForEachTarget([&](const std::string&) {
      for (const auto& v : rows) {
        CheckRows(Op::kLogSoftmax, p, 1, static_cast<int64_t>(v.size()), v, 1.0, 1, &acc);
      }
    });
  }
}

TEST(LogSoftmax, EqualHugeLogitsGiveExactlyMinusLogN) {
  ForEachTarget([&](const std::string&) {
    for (int64_t n : {1, 2, 3, 7, 64, 100, 1000, 50000}) {
      for (double v : {0.0, 1e30, -1e30, 3e38, 65504.0}) {
        for (DTypePair p : AllPairs()) {
          Buffer x = MakeBuffer(p.x, std::vector<double>(n, v));
          if (!std::isfinite(x.get(0))) continue;  // 3e38 overflows f16/bf16
          Buffer y(p.y, n);
          softmax::log_softmax(x.cview({n}), y.view({n}), Opts());
          const LD exact = -std::log(static_cast<LD>(n));
          Buffer want(p.y, 1);
          want.set(0, static_cast<double>(exact));  // correctly rounded (via f32 for halves)
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(y.get(i), want.get(0)) << PairName(p) << " n=" << n << " v=" << v;
          }
        }
      }
    }
  });
}

TEST(LogSoftmax, EdgeSemantics) {
  ForEachTarget([&](const std::string&) {
    for (DTypePair p : AllPairs()) {
      auto run = [&](const std::vector<double>& v) {
        const auto n = static_cast<int64_t>(v.size());
        Buffer x = MakeBuffer(p.x, v);
        Buffer y(p.y, n);
        softmax::log_softmax(x.cview({n}), y.view({n}), Opts());
        std::vector<double> o(v.size());
        for (int64_t i = 0; i < n; ++i) o[i] = y.get(i);
        return o;
      };
      for (const auto& v : std::vector<std::vector<double>>{
               {-kInf, -kInf}, {0, kInf}, {-kInf, kInf}}) {  // NaN rows: Softmax.NaNRows
        for (double o : run(v)) EXPECT_TRUE(std::isnan(o)) << PairName(p);
      }
      auto o = run({-kInf, 3, -kInf, 3});
      EXPECT_EQ(o[0], -kInf);
      EXPECT_EQ(o[2], -kInf);
      EXPECT_EQ(o[1], o[3]);
      EXPECT_EQ(run({-7.0})[0], 0.0);  // single element: exactly 0
    }
  });
}

TEST(LogSoftmax, TemperatureIsApplied) {
  std::mt19937_64 rng(13);
  const auto v = Normal(rng, 300, 3);
  for (DTypePair p : AllPairs()) {
    Acc acc("log_softmax " + PairName(p) + " T in {0.25,3}");
    for (double t : {0.25, 3.0}) {
      CheckRows(Op::kLogSoftmax, p, 1, 300, v, t, 1, &acc);
      Buffer x = MakeBuffer(p.x, v);
      Buffer y1(p.y, 300), yt(p.y, 300);
      softmax::log_softmax(x.cview({300}), y1.view({300}), Opts(-1, 1.0));
      softmax::log_softmax(x.cview({300}), yt.view({300}), Opts(-1, t));
      int differ = 0;
      for (int64_t i = 0; i < 300; ++i) differ += y1.get(i) != yt.get(i);
      EXPECT_GT(differ, 250);
    }
  }
}

TEST(LogSoftmax, ConsistentWithSoftmaxAndLogsumexp) {
  // log_softmax(x) = x - logsumexp(x) and exp(log_softmax) = softmax, within the bounds.
  std::mt19937_64 rng(14);
  for (int k = 0; k < 20; ++k) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 5000);
    const auto v = Normal(rng, n, 4);
    std::vector<double> x(v), ls(n), sm(n);
    softmax::log_softmax(x, ls);
    softmax::softmax(x, sm);
    const double lse = softmax::logsumexp(std::span<const double>(x));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(ls[i], x[i] - lse, 4e-15 * (std::fabs(ls[i]) + 2));
      EXPECT_NEAR(std::exp(ls[i]), sm[i], 1e-14 * sm[i] * (std::fabs(ls[i]) + 2));
    }
  }
}

}  // namespace
}  // namespace stest
