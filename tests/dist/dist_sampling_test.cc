// The vocabulary-parallel sample (softmax/dist.hpp) over an in-process group of R ranks: every
// rank count 1..4, aligned, uneven, unaligned, one-class, empty and reverse-ordered layouts,
// every dtype, greedy, temperature, top-k, top-p, min-p and their combinations, per-row
// params, streams / seeds / offsets, several draws, both methods, ties across shards, near-
// certain rows, -inf entries and all -inf shards. Every rank's tokens must equal the
// single-process softmax::sample on the whole tensor, id for id. Plus the failure rules and
// the communication volume.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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
using softmax::SamplingMethod;
using softmax::SamplingParams;
using softmax::TensorView;
using softmax::dist::Shard;
using stest::Buffer;
using stest::cut_layout;
using stest::layouts;
using stest::make_logits;
using stest::ThreadGroup;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Runs dist::sample on x (rows, v) split by `layout` (ranks in reverse class order when
// `reverse`); checks every rank wrote the same tokens and returns them.
std::vector<int64_t> run_dist(const Buffer& x, int64_t rows, int64_t v,
                              const std::vector<Shard>& layout, bool reverse,
                              const SamplingParams& p, uint64_t seed, uint64_t offset,
                              int64_t draws) {
  const int ranks = static_cast<int>(layout.size());
  std::vector<std::vector<int64_t>> tok(
      static_cast<std::size_t>(ranks),
      std::vector<int64_t>(static_cast<std::size_t>(rows * draws), -7));
  ThreadGroup g(ranks);
  g.run([&](softmax::dist::Communicator& comm) {
    const int r = comm.rank();
    const Shard sh = layout[static_cast<std::size_t>(reverse ? ranks - 1 - r : r)];
    const auto xes = static_cast<int64_t>(softmax::dtype_size(x.dtype()));
    ConstTensorView xs(static_cast<const char*>(x.data()) + sh.offset * xes, x.dtype(),
                       {rows, sh.size}, {v, 1});
    auto& t = tok[static_cast<std::size_t>(r)];
    TensorView tv = draws == 1 ? TensorView(t.data(), DType::i64, {rows})
                               : TensorView(t.data(), DType::i64, {rows, draws});
    softmax::Context ctx;
    ctx.threads = 1;
    softmax::dist::sample(comm, xs, tv, sh.offset, p, seed, offset, ctx);
  });
  for (int r = 1; r < ranks; ++r) {
    EXPECT_EQ(tok[0], tok[static_cast<std::size_t>(r)]) << "rank " << r;
  }
  return tok[0];
}

std::vector<int64_t> run_single(const Buffer& x, int64_t rows, int64_t v, const SamplingParams& p,
                                uint64_t seed, uint64_t offset, int64_t draws) {
  std::vector<int64_t> t(static_cast<std::size_t>(rows * draws), -7);
  TensorView tv = draws == 1 ? TensorView(t.data(), DType::i64, {rows})
                             : TensorView(t.data(), DType::i64, {rows, draws});
  softmax::sample(x.cview({rows, v}), tv, p, seed, offset);
  return t;
}

struct Filters {
  double t;
  int64_t k;
  double p, m;
};

std::string describe(const Filters& f) {
  return "T=" + std::to_string(f.t) + " k=" + std::to_string(f.k) + " p=" + std::to_string(f.p) +
         " min_p=" + std::to_string(f.m);
}

// Every layout and rank count for one (v, dtype, filters, method).
void check_all(int64_t v, DType dt, const Filters& f, SamplingMethod method, int64_t rows,
               int64_t draws, std::mt19937_64& rng, int64_t& cases) {
  const Buffer x = stest::MakeBuffer(dt, make_logits(rows, v, rng));
  SamplingParams p;
  p.temperature = f.t;
  p.top_k = f.k;
  p.top_p = f.p;
  p.min_p = f.m;
  p.method = method;
  p.threads = 1;
  const uint64_t seed = rng(), offset = rng() % 1000;
  const std::vector<int64_t> want = run_single(x, rows, v, p, seed, offset, draws);
  for (int ranks = 1; ranks <= 4; ++ranks) {
    for (const auto& [name, lay] : layouts(v, ranks, rng)) {
      for (bool reverse : {false, true}) {
        if (reverse && ranks == 1) continue;
        const std::vector<int64_t> got = run_dist(x, rows, v, lay, reverse, p, seed, offset, draws);
        ASSERT_EQ(got, want) << "V=" << v << " " << softmax::dtype_name(dt) << " " << describe(f)
                             << (method == SamplingMethod::kGumbelMax ? " gumbel" : " icdf")
                             << " ranks=" << ranks << " layout=" << name
                             << (reverse ? " reversed" : "") << " draws=" << draws;
        ++cases;
      }
    }
  }
}

TEST(DistSample, MatchesSingleProcess) {
  std::mt19937_64 rng(20261202);
  int64_t cases = 0;
  const std::vector<Filters> filters = {
      {0.0, 0, 1.0, 0.0},  {1.0, 0, 1.0, 0.0},  {0.7, 0, 1.0, 0.05},  {3.0, 5, 1.0, 0.0},
      {1.0, 1, 1.0, 0.0},  {1.0, 50, 0.9, 0.0}, {0.7, 0, 0.9, 0.0},   {1.0, 0, 0.3, 0.05},
      {1.0, -1, 0.3, 0.0}, {0.7, 5, 0.3, 0.05}, {3.0, 50, 1.0, 0.05}, {0.0, 5, 0.3, 0.05},
  };
  for (int64_t v : {int64_t{1}, int64_t{7}, int64_t{1000}}) {
    for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      for (const Filters& f : filters) {
        for (SamplingMethod m : {SamplingMethod::kInverseCdf, SamplingMethod::kGumbelMax}) {
          check_all(v, dt, f, m, 7, dt == DType::f32 ? 3 : 1, rng, cases);
          if (HasFatalFailure()) return;
        }
      }
      // top_k = V - 1 (the largest active k).
      check_all(v, dt, {1.0, std::max<int64_t>(v - 1, 1), 1.0, 0.0}, SamplingMethod::kInverseCdf, 7,
                1, rng, cases);
      check_all(v, dt, {0.7, std::max<int64_t>(v - 1, 1), 0.9, 0.05}, SamplingMethod::kGumbelMax, 7,
                1, rng, cases);
      if (HasFatalFailure()) return;
    }
  }
  std::printf("[ dist sample ] %lld layouts x configurations matched\n",
              static_cast<long long>(cases));
}

TEST(DistSample, LargeVocabulary) {
  std::mt19937_64 rng(7);
  int64_t cases = 0;
  const int64_t v = 70001;
  const std::vector<Filters> filters = {
      {0.0, 0, 1.0, 0.0},  {1.0, 0, 1.0, 0.0},  {1.0, 50, 1.0, 0.0},    {0.7, 0, 0.9, 0.0},
      {1.0, 5, 0.9, 0.05}, {3.0, 0, 0.3, 0.05}, {1.0, v - 1, 1.0, 0.0}, {0.7, 0, 1.0, 0.05},
  };
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Filters& f : filters) {
      check_all(v, dt, f, SamplingMethod::kInverseCdf, 7, 2, rng, cases);
      if (HasFatalFailure()) return;
    }
  }
  for (const Filters& f : {filters[1], filters[3], filters[4]}) {
    check_all(v, DType::f16, f, SamplingMethod::kGumbelMax, 7, 1, rng, cases);
    if (HasFatalFailure()) return;
  }
  std::printf("[ dist sample ] %lld large-vocabulary cases matched\n",
              static_cast<long long>(cases));
}

TEST(DistSample, PerRowParamsStreamsSeeds) {
  std::mt19937_64 rng(99);
  const int64_t rows = 14, v = 1000;
  const std::vector<double> t = {0, 1, 0.7, 3, 1, 1, 0.7, 0, 1, 1, 3, 0.7, 1, 1};
  const std::vector<int64_t> k = {0, 5, 0, 50, 1, 0, 999, 5, -1, 0, 5, 50, 0, 1000};
  const std::vector<double> tp = {1, 0.9, 0.3, 1, 1, 0.9, 1, 0.3, 0.3, 1, 0.9, 1, 0.3, 0.9};
  const std::vector<double> mp = {0, 0, 0.05, 0.05, 0, 0, 0.05, 0, 0, 0.05, 0, 0, 0.05, 0};
  std::vector<uint64_t> streams(rows), seeds(rows), offsets(rows);
  for (int64_t r = 0; r < rows; ++r) {
    streams[r] = rng() | (r % 2 ? uint64_t{1} << 40 : 0);  // some streams >= 2^32
    seeds[r] = rng();
    offsets[r] = rng();
  }
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    const Buffer x = stest::MakeBuffer(dt, make_logits(rows, v, rng));
    for (SamplingMethod m : {SamplingMethod::kInverseCdf, SamplingMethod::kGumbelMax}) {
      for (int variant = 0; variant < 3; ++variant) {
        SamplingParams p;
        p.temperature = t;
        p.top_k = k;
        p.top_p = tp;
        p.min_p = mp;
        p.method = m;
        if (variant >= 1) p.streams = streams;
        if (variant >= 2) {
          p.seeds = seeds;
          p.offsets = offsets;
        }
        const std::vector<int64_t> want = run_single(x, rows, v, p, 5, 77, 3);
        for (int ranks = 2; ranks <= 4; ++ranks) {
          for (const auto& [name, lay] : layouts(v, ranks, rng)) {
            ASSERT_EQ(run_dist(x, rows, v, lay, ranks == 3, p, 5, 77, 3), want)
                << softmax::dtype_name(dt) << " variant " << variant << " ranks " << ranks << " "
                << name;
          }
        }
      }
    }
  }
}

TEST(DistSample, StridedTokensAndZeroDraws) {
  std::mt19937_64 rng(3);
  const int64_t rows = 5, v = 300;
  const Buffer x = stest::MakeBuffer(DType::f32, make_logits(rows, v, rng));
  SamplingParams p;
  p.top_p = 0.9;
  std::vector<int64_t> want(rows);
  softmax::sample(x.cview({rows, v}), TensorView(want.data(), DType::i64, {rows}), p, 1, 2);
  const auto lay = cut_layout(v, {100, 200});
  ThreadGroup g(3);
  g.run([&](softmax::dist::Communicator& comm) {
    const Shard sh = lay[static_cast<std::size_t>(comm.rank())];
    ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32, {rows, sh.size},
                       {v, 1});
    std::vector<int64_t> t(rows * 2, -1);
    softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows}, {2}), sh.offset, p, 1,
                          2);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(t[r * 2], want[r]);
      EXPECT_EQ(t[r * 2 + 1], -1);
    }
    std::vector<int64_t> none;
    softmax::dist::sample(comm, xs, TensorView(none.data(), DType::i64, {rows, 0}), sh.offset, p, 1,
                          2);
  });
}

TEST(DistSample, NaNOnOneShardThrowsEverywhere) {
  std::mt19937_64 rng(11);
  const int64_t rows = 4, v = 100;
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), kInf}) {
    Buffer x = stest::MakeBuffer(DType::f32, make_logits(rows, v, rng));
    x.set(2 * v + 80, bad);  // row 2, rank 2's shard
    const auto lay = cut_layout(v, {30, 60});
    ThreadGroup g(3);
    std::vector<std::vector<int64_t>> tok(3, std::vector<int64_t>(rows, -5));
    std::vector<std::string> errors;
    g.run(
        [&](softmax::dist::Communicator& comm) {
          const Shard sh = lay[static_cast<std::size_t>(comm.rank())];
          ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                             {rows, sh.size}, {v, 1});
          SamplingParams p;
          p.top_k = 5;
          softmax::dist::sample(comm, xs, TensorView(tok[comm.rank()].data(), DType::i64, {rows}),
                                sh.offset, p, 1);
        },
        &errors);
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(errors[r], errors[0]);
      EXPECT_NE(errors[r].find("row 2"), std::string::npos) << errors[r];
      EXPECT_NE(errors[r].find("dist::sample"), std::string::npos) << errors[r];
      EXPECT_EQ(tok[r], std::vector<int64_t>(rows, -5));
    }
  }
  // A row that is all -inf across every shard.
  Buffer x = stest::MakeBuffer(DType::f32, make_logits(rows, v, rng));
  for (int64_t i = 0; i < v; ++i) x.set(3 * v + i, -kInf);
  const auto lay = cut_layout(v, {50});
  ThreadGroup g(2);
  std::vector<std::string> errors;
  g.run(
      [&](softmax::dist::Communicator& comm) {
        const Shard sh = lay[static_cast<std::size_t>(comm.rank())];
        ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                           {rows, sh.size}, {v, 1});
        std::vector<int64_t> t(rows);
        softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows}), sh.offset, {}, 1);
      },
      &errors);
  EXPECT_EQ(errors[0], errors[1]);
  EXPECT_NE(errors[0].find("row 3 is all -inf"), std::string::npos) << errors[0];
}

TEST(DistSample, DisagreementThrowsEverywhere) {
  std::mt19937_64 rng(12);
  const int64_t rows = 3, v = 64;
  const Buffer x = stest::MakeBuffer(DType::f32, make_logits(rows, v, rng));
  const auto lay = cut_layout(v, {20, 40});
  const std::vector<double> tp0 = {0.9, 0.5, 1.0}, tp1 = {0.9, 0.5, 0.99};
  for (int what = 0; what < 5; ++what) {
    ThreadGroup g(3);
    std::vector<std::string> errors;
    g.run(
        [&](softmax::dist::Communicator& comm) {
          const int r = comm.rank();
          const Shard sh = lay[static_cast<std::size_t>(r)];
          ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                             {rows, sh.size}, {v, 1});
          SamplingParams p;
          uint64_t seed = 1, offset = 0;
          if (what == 0 && r == 1) seed = 2;
          if (what == 1) p.top_p = r == 2 ? tp1 : tp0;
          if (what == 2 && r == 2) p.method = SamplingMethod::kGumbelMax;
          if (what == 3 && r == 0) offset = 9;
          if (what == 4 && r == 1) p.top_k = -2;  // invalid on one rank
          std::vector<int64_t> t(rows);
          softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows}), sh.offset, p,
                                seed, offset);
        },
        &errors);
    for (int r = 0; r < 3; ++r) {
      EXPECT_FALSE(errors[r].empty()) << what;
      EXPECT_EQ(errors[r], errors[0]) << what;
    }
  }
  // Logit processors are refused.
  softmax::LogitProcessors lp;
  ThreadGroup g(2);
  std::vector<std::string> errors;
  g.run(
      [&](softmax::dist::Communicator& comm) {
        const Shard sh = softmax::dist::default_shard(v, comm.rank(), 2);
        ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                           {rows, sh.size}, {v, 1});
        SamplingParams p;
        p.processors = &lp;
        std::vector<int64_t> t(rows);
        softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows}), sh.offset, p, 1);
      },
      &errors);
  EXPECT_NE(errors[0].find("processors"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[0], errors[1]);
}

// Bytes per row of top-k do not grow with V; collectives per mode.
TEST(DistSample, CountsCollectives) {
  std::mt19937_64 rng(13);
  const int64_t rows = 4;
  struct Mode {
    const char* name;
    Filters f;
    SamplingMethod m;
    int64_t collectives;
  };
  const std::vector<Mode> modes = {
      {"greedy", {0.0, 0, 1.0, 0.0}, SamplingMethod::kInverseCdf, 2},
      {"top-k", {1.0, 5, 1.0, 0.0}, SamplingMethod::kInverseCdf, 3},
      {"top-k top-p min-p", {1.0, 5, 0.9, 0.05}, SamplingMethod::kGumbelMax, 3},
      {"top-p", {1.0, 0, 0.9, 0.0}, SamplingMethod::kInverseCdf, 5},
      {"temperature", {1.0, 0, 1.0, 0.0}, SamplingMethod::kInverseCdf, 4},
      {"temperature gumbel", {1.0, 0, 1.0, 0.05}, SamplingMethod::kGumbelMax, 3},
  };
  for (const Mode& mode : modes) {
    std::vector<int64_t> sent;
    for (int64_t v : {int64_t{1000}, int64_t{70001}}) {
      const Buffer x = stest::MakeBuffer(DType::f32, make_logits(rows, v, rng));
      ThreadGroup g(2);
      std::vector<int64_t> per_rank(2);
      g.run([&](softmax::dist::Communicator& comm) {
        const Shard sh{comm.rank() == 0 ? 0 : v / 2, comm.rank() == 0 ? v / 2 : v - v / 2};
        ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                           {rows, sh.size}, {v, 1});
        SamplingParams p;
        p.temperature = mode.f.t;
        p.top_k = mode.f.k;
        p.top_p = mode.f.p;
        p.min_p = mode.f.m;
        p.method = mode.m;
        std::vector<int64_t> t(rows * 2);
        comm.reset_stats();
        softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows, 2}), sh.offset, p,
                              1);
        EXPECT_EQ(comm.stats().collectives, mode.collectives) << mode.name;
        per_rank[static_cast<std::size_t>(comm.rank())] = comm.stats().bytes_sent;
      });
      std::printf("[ dist sample ] %-18s V=%-6lld bytes sent per row per rank: %lld, %lld\n",
                  mode.name, static_cast<long long>(v),
                  static_cast<long long>((per_rank[0] - 512) / rows),
                  static_cast<long long>((per_rank[1] - 512) / rows));
      sent.push_back(per_rank[0] + per_rank[1]);
    }
    if (std::string(mode.name) != "top-p" && std::string(mode.name) != "temperature") {
      EXPECT_EQ(sent[0], sent[1]) << mode.name;  // independent of V
    }
  }
  // top-p on near-certain rows (one token holds almost all the mass, the other shard is
  // spread out): a handful of candidates, not the spread-out shard.
  {
    const int64_t v = 70001;
    std::normal_distribution<double> nd(0.0, 1.0);
    std::vector<double> vals(static_cast<std::size_t>(rows * v));
    for (auto& e : vals) e = nd(rng);
    for (int64_t r = 0; r < rows; ++r) vals[static_cast<std::size_t>(r * v + 17 + r)] = 40.0;
    const Buffer x = stest::MakeBuffer(DType::f32, vals);
    SamplingParams p;
    p.top_p = 0.9;
    std::vector<int64_t> want(rows);
    softmax::sample(x.cview({rows, v}), TensorView(want.data(), DType::i64, {rows}), p, 1);
    ThreadGroup g(2);
    g.run([&](softmax::dist::Communicator& comm) {
      const Shard sh{comm.rank() == 0 ? 0 : v / 2, comm.rank() == 0 ? v / 2 : v - v / 2};
      ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32,
                         {rows, sh.size}, {v, 1});
      std::vector<int64_t> t(rows);
      comm.reset_stats();
      softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows}), sh.offset, p, 1);
      EXPECT_EQ(t, want);
      // ranges 32, masses and bounds 536, a count 8, at most one record of 8 per row.
      EXPECT_LE(comm.stats().bytes_sent, 512 + rows * (32 + 536 + 8 + 8));
    });
  }
  // top-k 5: 512 (agreement) + 32 (ranges) + 5 records of 8 bytes per row.
  const Buffer x = stest::MakeBuffer(DType::f32, make_logits(rows, 70001, rng));
  ThreadGroup g(2);
  g.run([&](softmax::dist::Communicator& comm) {
    const Shard sh = softmax::dist::default_shard(70001, comm.rank(), 2);
    ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32, {rows, sh.size},
                       {70001, 1});
    SamplingParams p;
    p.top_k = 5;
    std::vector<int64_t> t(rows);
    comm.reset_stats();
    softmax::dist::sample(comm, xs, TensorView(t.data(), DType::i64, {rows}), sh.offset, p, 1);
    EXPECT_EQ(comm.stats().bytes_sent, 512 + rows * (32 + 5 * 8));
  });
}

}  // namespace
