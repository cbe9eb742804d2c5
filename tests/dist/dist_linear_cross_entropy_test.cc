// Vocabulary-parallel linear_cross_entropy (softmax/dist.hpp) over an in-process group of R
// ranks, each holding some rows of the (V, D) classifier: loss, lse, grad_weight and grad_hidden
// against the single-process call (itself tested against a long double reference in
// tests/cpu/linear_cross_entropy_test.cc). Layouts on multiples of 32768: loss, lse and
// grad_weight bit for bit, grad_hidden bit for bit with one rank and within 2^-20 of its scale
// otherwise; other layouts within the single-process test's tolerances.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/dist.hpp"
#include "tests/dist/thread_comm.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::CrossEntropyOptions;
using softmax::DType;
using softmax::LinearCrossEntropyOutputs;
using softmax::Reduction;
using softmax::TensorView;
using softmax::dist::Shard;
using stest::ThreadGroup;

struct Problem {
  int64_t n, d, v;
  std::vector<float> h, w, cw, go;
  std::vector<int64_t> t;
};

Problem make(int64_t n, int64_t d, int64_t v, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  Problem p{n, d, v, {}, {}, {}, {}, {}};
  for (int64_t i = 0; i < n * d; ++i) p.h.push_back(nd(rng));
  for (int64_t i = 0; i < v * d; ++i) p.w.push_back(nd(rng) * 0.5f);
  for (int64_t i = 0; i < v; ++i) p.cw.push_back(0.5f + static_cast<float>(i % 5) * 0.25f);
  for (int64_t i = 0; i < n; ++i) p.go.push_back(0.5f + static_cast<float>(i));
  // Targets in the first, a middle and the last class; one ignored row.
  const int64_t picks[] = {0, v / 2, v - 1, -100, 32768 < v ? 32768 : 1};
  for (int64_t i = 0; i < n; ++i) p.t.push_back(picks[i % 5]);
  return p;
}

struct Variant {
  std::string name;
  bool weights = false;
  double eps = 0.0, z = 0.0;
  Reduction reduction = Reduction::kMean;
  bool go = false;
  int64_t chunk = 0;
};

struct Result {
  std::vector<float> loss, lse, gh, gw;
};

Result run(const Problem& p, const Variant& var, const std::vector<Shard>& layout) {
  Result res;
  const int64_t nl = var.reduction == Reduction::kNone ? p.n : 1;
  res.gw.assign(static_cast<std::size_t>(p.v * p.d), 7.0f);
  CrossEntropyOptions o;
  o.reduction = var.reduction;
  o.label_smoothing = var.eps;
  o.z_loss = var.z;
  o.vocab_chunk = var.chunk;
  if (var.weights) o.weight = ConstTensorView(p.cw.data(), {p.v});
  if (var.go) o.grad_output = ConstTensorView(p.go.data(), {p.n});
  auto outputs = [&](std::vector<float>& loss, std::vector<float>& lse, std::vector<float>& gh,
                     Shard s) {
    loss.assign(static_cast<std::size_t>(nl), 9.0f);
    lse.assign(static_cast<std::size_t>(p.n), 9.0f);
    gh.assign(static_cast<std::size_t>(p.n * p.d), 9.0f);
    LinearCrossEntropyOutputs out;
    out.loss = var.reduction == Reduction::kNone ? TensorView(loss.data(), {p.n})
                                                 : TensorView(loss.data(), std::vector<int64_t>{});
    out.lse = TensorView(lse.data(), {p.n});
    out.grad_hidden = TensorView(gh.data(), {p.n, p.d});
    out.grad_weight = TensorView(res.gw.data() + s.offset * p.d, {s.size, p.d});
    return out;
  };
  const ConstTensorView hidden(p.h.data(), {p.n, p.d});
  const ConstTensorView targets(p.t.data(), DType::i64, {p.n});
  if (layout.empty()) {
    o.threads = 1;
    const LinearCrossEntropyOutputs out = outputs(res.loss, res.lse, res.gh, Shard{0, p.v});
    softmax::linear_cross_entropy(hidden, ConstTensorView(p.w.data(), {p.v, p.d}), targets, out, o);
    return res;
  }
  const int ranks = static_cast<int>(layout.size());
  std::vector<std::vector<float>> loss(ranks), lse(ranks), gh(ranks);
  std::vector<LinearCrossEntropyOutputs> outs;
  for (int r = 0; r < ranks; ++r) outs.push_back(outputs(loss[r], lse[r], gh[r], layout[r]));
  ThreadGroup g(ranks);
  g.run([&](softmax::dist::Communicator& comm) {
    const int r = comm.rank();
    const Shard s = layout[static_cast<std::size_t>(r)];
    softmax::Context ctx;
    ctx.threads = 1;
    softmax::dist::linear_cross_entropy(
        comm, hidden, ConstTensorView(p.w.data() + s.offset * p.d, {s.size, p.d}), targets,
        outs[static_cast<std::size_t>(r)], s.offset, o, ctx);
  });
  for (int r = 1; r < ranks; ++r) {
    EXPECT_EQ(loss[0], loss[r]) << var.name << " rank " << r;
    EXPECT_EQ(0, std::memcmp(lse[0].data(), lse[r].data(), 4 * lse[0].size())) << var.name;
    EXPECT_EQ(0, std::memcmp(gh[0].data(), gh[r].data(), 4 * gh[0].size())) << var.name;
  }
  res.loss = loss[0];
  res.lse = lse[0];
  res.gh = gh[0];
  return res;
}

std::vector<Shard> cuts(int64_t v, std::vector<int64_t> inner) {
  std::vector<int64_t> c{0};
  c.insert(c.end(), inner.begin(), inner.end());
  c.push_back(v);
  std::vector<Shard> s;
  for (std::size_t i = 0; i + 1 < c.size(); ++i) s.push_back({c[i], c[i + 1] - c[i]});
  return s;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), 4 * a.size()) == 0;
}

float scale(const std::vector<float>& a) {
  float m = 0;
  for (float x : a) m = std::max(m, std::fabs(x));
  return m;
}

TEST(DistLinearCrossEntropy, MatchesSingleProcess) {
  const int64_t A = softmax::dist::kShardAlign;
  const std::vector<Variant> variants = {
      {"plain", false, 0.0, 0.0, Reduction::kMean, false, 0},
      {"weights+smoothing+z", true, 0.1, 1e-3, Reduction::kMean, false, 0},
      {"none+grad_output, chunk 5000", true, 0.2, 0.0, Reduction::kNone, true, 5000},
      {"sum", false, 0.0, 1e-4, Reduction::kSum, false, 777},
  };
  struct Case {
    int64_t v;
    std::vector<std::vector<Shard>> aligned, unaligned;
  };
  const int64_t big = 2 * A + 500;
  const std::vector<Case> cases = {
      {1000, {cuts(1000, {}), cuts(1000, {0, 1000})}, {cuts(1000, {1}), cuts(1000, {300, 700})}},
      {big,
       {cuts(big, {}), cuts(big, {A}), cuts(big, {A, 2 * A}), cuts(big, {A, A, 2 * A})},
       {cuts(big, {A + 17}), cuts(big, {5, 2 * A - 3})}},
  };
  for (const Case& c : cases) {
    const Problem p = make(5, 12, c.v, 4);
    for (const Variant& var : variants) {
      const Result want = run(p, var, {});
      for (int aligned = 1; aligned >= 0; --aligned) {
        const auto& lays = aligned ? c.aligned : c.unaligned;
        for (std::size_t l = 0; l < lays.size(); ++l) {
          const std::string what = var.name + " V=" + std::to_string(c.v) +
                                   (aligned ? " aligned " : " unaligned ") + std::to_string(l) +
                                   " R=" + std::to_string(lays[l].size());
          const Result got = run(p, var, lays[l]);
          const float gs = scale(want.gh), ws = scale(want.gw);
          if (aligned) {
            EXPECT_TRUE(same(got.loss, want.loss))
                << what << ": " << got.loss[0] << " vs " << want.loss[0];
            EXPECT_TRUE(same(got.lse, want.lse)) << what;
            EXPECT_TRUE(same(got.gw, want.gw)) << what;
            if (lays[l].size() == 1) EXPECT_TRUE(same(got.gh, want.gh)) << what;
          } else {
            for (std::size_t i = 0; i < want.loss.size(); ++i) {
              EXPECT_NEAR(got.loss[i], want.loss[i], 2e-5 * (1 + std::fabs(want.loss[i]))) << what;
            }
            for (std::size_t i = 0; i < want.lse.size(); ++i) {
              EXPECT_NEAR(got.lse[i], want.lse[i], 2e-5 * (1 + std::fabs(want.lse[i]))) << what;
            }
            for (std::size_t i = 0; i < want.gw.size(); ++i) {
              ASSERT_NEAR(got.gw[i], want.gw[i], 1e-5 * ws + 1e-7) << what << " gw " << i;
            }
          }
          for (std::size_t i = 0; i < want.gh.size(); ++i) {
            ASSERT_NEAR(got.gh[i], want.gh[i], 1e-5 * gs + 1e-7) << what << " gh " << i;
          }
        }
      }
    }
  }
}

TEST(DistLinearCrossEntropy, CountsCollectives) {
  const Problem p = make(4, 8, 3000, 2);
  ThreadGroup g(2);
  std::vector<float> loss(2), gh0(32), gh1(32), gw(3000 * 8);
  std::vector<softmax::dist::CommStats> stats(2);
  g.run([&](softmax::dist::Communicator& comm) {
    const int r = comm.rank();
    const Shard s{r == 0 ? 0 : 1000, r == 0 ? 1000 : 2000};
    LinearCrossEntropyOutputs out;
    out.loss = TensorView(&loss[r], DType::f32, {});
    out.grad_hidden = TensorView(r == 0 ? gh0.data() : gh1.data(), {4, 8});
    out.grad_weight = TensorView(gw.data() + s.offset * 8, {s.size, 8});
    comm.reset_stats();
    softmax::dist::linear_cross_entropy(comm, ConstTensorView(p.h.data(), {4, 8}),
                                        ConstTensorView(p.w.data() + s.offset * 8, {s.size, 8}),
                                        ConstTensorView(p.t.data(), DType::i64, {4}), out,
                                        s.offset);
    stats[r] = comm.stats();
  });
  // Agreement, statistics, reduce-scatter and all-gather of grad_hidden.
  EXPECT_EQ(stats[0].collectives, 4);
  EXPECT_EQ(stats[1].collectives, 4);
  EXPECT_EQ(loss[0], loss[1]);
  EXPECT_EQ(gh0, gh1);
}

TEST(DistLinearCrossEntropy, FailuresAgree) {
  const Problem p = make(2, 4, 8, 1);
  auto attempt =
      [&](const std::function<void(int, std::vector<float>&, std::vector<int64_t>&)>& tweak,
          const std::string& needle) {
        ThreadGroup g(2);
        std::vector<std::string> errors;
        std::vector<float> loss{3.0f, 3.0f};
        g.run(
            [&](softmax::dist::Communicator& comm) {
              const int r = comm.rank();
              std::vector<float> h = p.h;
              std::vector<int64_t> t = {1, 6};
              tweak(r, h, t);
              LinearCrossEntropyOutputs out;
              out.loss = TensorView(&loss[r], DType::f32, {});
              softmax::dist::linear_cross_entropy(comm, ConstTensorView(h.data(), {2, 4}),
                                                  ConstTensorView(p.w.data() + r * 16, {4, 4}),
                                                  ConstTensorView(t.data(), DType::i64, {2}), out,
                                                  r * 4);
            },
            &errors);
        for (const auto& e : errors) {
          EXPECT_NE(e.find(needle), std::string::npos) << "'" << e << "' lacks '" << needle << "'";
          EXPECT_EQ(e, errors[0]);
        }
        EXPECT_EQ(loss[0], 3.0f);
        EXPECT_EQ(loss[1], 3.0f);
      };
  attempt([](int, auto&, auto& t) { t[1] = 8; }, "class ids must be in [0, 8)");
  attempt(
      [](int r, auto& h, auto&) {
        if (r == 1) h[3] += 1.0f;
      },
      "rank 1 of 2's hidden (the same (N, D) states on every rank) differs");
  attempt(
      [](int r, auto&, auto& t) {
        if (r == 0) t[0] = 2;
      },
      "rank 1 of 2's targets (the same on every rank) differs");
}

}  // namespace
