// The vocabulary-parallel top_logprobs (softmax/dist.hpp) over an in-process group of R ranks:
// rank counts 1..4, the default, even, random, one-class, empty, 32768-aligned and reverse-
// ordered layouts, every dtype, several temperatures and n (0, 1, 5, V), ties across shards,
// -inf entries and all -inf shards, strided shards. Every rank must return the same result; the
// ids must equal the single-process softmax::top_logprobs on the whole tensor exactly, the
// log-probabilities bit for bit when every shard starts on a multiple of 32768 and within a
// summation-order bound otherwise, and within the documented bound of a long double reference.
// Plus the failure rules (the same error on every rank, nothing returned).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "tests/cpu/test_util.hpp"
#include "tests/dist/layouts.hpp"
#include "tests/dist/thread_comm.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TopLogprobs;
using softmax::dist::Shard;
using stest::Buffer;
using stest::ThreadGroup;
using LD = long double;

constexpr int64_t kPiece = softmax::dist::kShardAlign;
constexpr double kInf = std::numeric_limits<double>::infinity();

// dist::top_logprobs on x (rows, v) split by `layout` (ranks in reverse class order when
// `reverse`, every shard a strided view into x); checks every rank returned the same result.
TopLogprobs run_dist(const Buffer& x, int64_t rows, int64_t v, const std::vector<Shard>& layout,
                     bool reverse, int64_t n, double t) {
  const int ranks = static_cast<int>(layout.size());
  std::vector<TopLogprobs> got(static_cast<std::size_t>(ranks));
  ThreadGroup g(ranks);
  g.run([&](softmax::dist::Communicator& comm) {
    const int r = comm.rank();
    const Shard sh = layout[static_cast<std::size_t>(reverse ? ranks - 1 - r : r)];
    const auto es = static_cast<int64_t>(softmax::dtype_size(x.dtype()));
    ConstTensorView xs(static_cast<const char*>(x.data()) + sh.offset * es, x.dtype(),
                       {rows, sh.size}, {v, 1});
    softmax::Context ctx;
    ctx.threads = 1 + r % 2;
    got[static_cast<std::size_t>(r)] = softmax::dist::top_logprobs(comm, xs, n, sh.offset, t, ctx);
  });
  for (int r = 1; r < ranks; ++r) {
    EXPECT_EQ(got[0].ids, got[static_cast<std::size_t>(r)].ids) << "rank " << r;
    const auto& a = got[0].logprobs;
    const auto& b = got[static_cast<std::size_t>(r)].logprobs;
    // (n = 0: empty vectors, whose null data memcmp must not see)
    EXPECT_TRUE(a.size() == b.size() &&
                (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0))
        << "rank " << r;
  }
  return got[0];
}

// log p of class i of row r in long double, from the values x holds.
LD reference_logprob(const Buffer& x, int64_t r, int64_t v, int64_t i, double t) {
  LD m = -std::numeric_limits<LD>::infinity();
  for (int64_t j = 0; j < v; ++j) m = std::max<LD>(m, x.get(r * v + j));
  LD s = 0;
  for (int64_t j = 0; j < v; ++j) s += std::exp((static_cast<LD>(x.get(r * v + j)) - m) / t);
  return (static_cast<LD>(x.get(r * v + i)) - m) / t - std::log(s);
}

void check_all(int64_t v, DType dt, int64_t n, double t, int64_t rows, std::mt19937_64& rng,
               int64_t& cases) {
  const Buffer x = stest::MakeBuffer(dt, stest::make_logits(rows, v, rng));
  const TopLogprobs want = softmax::top_logprobs(x.cview({rows, v}), n, t, 1);
  // The single-process result against long double (the documented bounds).
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      const LD ref = reference_logprob(x, r, v, want.ids[static_cast<std::size_t>(r * n + j)], t);
      const double got = want.logprobs[static_cast<std::size_t>(r * n + j)];
      if (std::isinf(static_cast<double>(ref))) {  // a -inf logit
        ASSERT_EQ(got, static_cast<double>(ref)) << "row " << r << " entry " << j;
        continue;
      }
      const double a = std::fabs(static_cast<double>(ref));
      const double bound =
          dt == DType::f64
              ? std::ldexp(1.0, -50) * (a + 1) + static_cast<double>(v) * std::ldexp(1.0, -53)
              : std::ldexp(1.0, -22) * (a + std::log(static_cast<double>(v)) + 1);
      ASSERT_LE(std::fabs(static_cast<double>(got - ref)), bound) << "row " << r << " entry " << j;
    }
  }
  std::vector<std::pair<std::string, std::vector<Shard>>> lays = stest::layouts(v, 1, rng);
  for (int ranks = 2; ranks <= 4; ++ranks) {
    for (auto& l : stest::layouts(v, ranks, rng)) lays.push_back(std::move(l));
    if (v > kPiece) {  // shards on multiples of 32768, the last one taking the rest
      std::vector<int64_t> cuts;
      for (int r = 1; r < ranks; ++r) cuts.push_back(std::min<int64_t>(v, r * kPiece));
      lays.emplace_back("aligned", stest::cut_layout(v, cuts));
    }
  }
  for (const auto& [name, lay] : lays) {
    for (bool reverse : {false, true}) {
      if (reverse && lay.size() == 1) continue;
      const TopLogprobs got = run_dist(x, rows, v, lay, reverse, n, t);
      const std::string what = "V=" + std::to_string(v) + " " + softmax::dtype_name(dt) +
                               " n=" + std::to_string(n) + " T=" + std::to_string(t) +
                               " ranks=" + std::to_string(lay.size()) + " layout=" + name +
                               (reverse ? " reversed" : "");
      ASSERT_EQ(got.rows, rows) << what;
      ASSERT_EQ(got.n, n) << what;
      ASSERT_EQ(got.ids, want.ids) << what;
      const bool bitwise = stest::aligned(lay);
      for (std::size_t k = 0; k < want.logprobs.size(); ++k) {
        const double a = got.logprobs[k], b = want.logprobs[k];
        if (bitwise) {
          ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0)
              << what << " entry " << k << ": " << a << " vs " << b;
        } else {
          // Only the f64 sum's order differs: relative error of the sum <= (V + R) 2^-53.
          const bool same_inf = std::isinf(a) && a == b;
          ASSERT_TRUE(same_inf ||
                      std::fabs(a - b) <= static_cast<double>(v + 8) * std::ldexp(1.0, -52))
              << what << " entry " << k;
        }
      }
      ++cases;
    }
  }
}

TEST(DistTopLogprobs, MatchesSingleProcess) {
  std::mt19937_64 rng(20261203);
  int64_t cases = 0;
  for (int64_t v : {int64_t{1}, int64_t{7}, int64_t{1000}}) {
    for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{5}, v}) {
        for (double t : {1.0, 0.7, 3.0}) {
          check_all(v, dt, std::min(n, v), t, 7, rng, cases);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
  std::printf("[ dist top_logprobs ] %lld layouts x configurations matched\n",
              static_cast<long long>(cases));
}

TEST(DistTopLogprobs, LargeVocabularyAlignedIsBitwise) {
  std::mt19937_64 rng(8);
  int64_t cases = 0;
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    check_all(100003, dt, 20, dt == DType::f32 ? 0.8 : 1.0, 7, rng, cases);
    if (HasFatalFailure()) return;
  }
  std::printf("[ dist top_logprobs ] %lld large-vocabulary cases matched\n",
              static_cast<long long>(cases));
}

// A row with NaN or +inf on one shard, or -inf on every shard, names that row on every rank.
TEST(DistTopLogprobs, BadRowThrowsEverywhere) {
  std::mt19937_64 rng(12);
  const int64_t rows = 4, v = 100;
  const auto lay = stest::cut_layout(v, {30, 60});
  for (int kind = 0; kind < 3; ++kind) {
    Buffer x = stest::MakeBuffer(DType::f32, stest::make_logits(rows, v, rng));
    x.set(0, 1.0);  // row 0 must not be all -inf
    if (kind == 0) x.set(2 * v + 80, std::numeric_limits<double>::quiet_NaN());
    if (kind == 1) x.set(2 * v + 10, kInf);
    if (kind == 2) {
      for (int64_t i = 0; i < v; ++i) x.set(2 * v + i, -kInf);
    }
    ThreadGroup g(3);
    std::vector<std::string> errors;
    std::vector<int> returned(3, 0);
    g.run(
        [&](softmax::dist::Communicator& comm) {
          const Shard sh = lay[static_cast<std::size_t>(comm.rank())];
          ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                             {rows, sh.size}, {v, 1});
          (void)softmax::dist::top_logprobs(comm, xs, 3, sh.offset);
          returned[static_cast<std::size_t>(comm.rank())] = 1;
        },
        &errors);
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(errors[r], errors[0]);
      EXPECT_NE(errors[r].find("dist::top_logprobs"), std::string::npos) << errors[r];
      EXPECT_NE(errors[r].find("row 2"), std::string::npos) << errors[r];
      EXPECT_EQ(returned[r], 0);
    }
  }
}

// Arguments that break the rules on one rank fail on every rank with the same message.
TEST(DistTopLogprobs, ArgumentErrorsAgree) {
  const int64_t rows = 2, v = 10;
  std::vector<float> x(rows * v, 0.5f);
  struct Args {
    int64_t rows, n;
    double t;
  };
  struct Case {
    const char* want;  // in the message
    Args rank0, rank1;
  };
  const Args ok{rows, 2, 1.0};
  const std::vector<Case> cases = {
      {"n", {rows, 11, 1.0}, {rows, 11, 1.0}},  // n > V
      {"n", ok, {rows, -1, 1.0}},               // n < 0 on one rank
      {"temperature", {rows, 2, 0.0}, ok},      // T = 0 on one rank
      {"temperature", {rows, 2, kInf}, {rows, 2, kInf}},
      {"rows", ok, {1, 2, 1.0}},            // a different batch on one rank
      {"n", ok, {rows, 3, 1.0}},            // a different n on one rank
      {"temperature", ok, {rows, 2, 0.5}},  // a different temperature on one rank
  };
  for (const Case& c : cases) {
    ThreadGroup g(2);
    std::vector<std::string> errors;
    g.run(
        [&](softmax::dist::Communicator& comm) {
          const int r = comm.rank();
          const Args& a = r == 0 ? c.rank0 : c.rank1;
          const int64_t off = r == 0 ? 0 : 4, len = r == 0 ? 4 : 6;
          ConstTensorView xs(x.data() + off, DType::f32, {a.rows, len}, {v, 1});
          (void)softmax::dist::top_logprobs(comm, xs, a.n, off, a.t);
        },
        &errors);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_FALSE(errors[0].empty()) << c.want;
    EXPECT_EQ(errors[0], errors[1]) << c.want;
    EXPECT_NE(errors[0].find(c.want), std::string::npos) << c.want << ": " << errors[0];
  }
}

// An empty batch and n = 0 return empty results without touching the data.
TEST(DistTopLogprobs, EmptyBatchAndZeroN) {
  ThreadGroup g(3);
  g.run([&](softmax::dist::Communicator& comm) {
    const int64_t off = comm.rank() * 5;
    ConstTensorView none(nullptr, DType::f32, {0, 5});
    const TopLogprobs a = softmax::dist::top_logprobs(comm, none, 4, off);
    EXPECT_EQ(a.rows, 0);
    EXPECT_EQ(a.n, 4);
    EXPECT_TRUE(a.ids.empty());
    std::vector<float> x(2 * 5, 1.0f);
    const TopLogprobs b =
        softmax::dist::top_logprobs(comm, ConstTensorView(x.data(), DType::f32, {2, 5}), 0, off);
    EXPECT_EQ(b.rows, 2);
    EXPECT_TRUE(b.ids.empty());
    EXPECT_TRUE(b.logprobs.empty());
  });
}

}  // namespace
