// Vocabulary-parallel cross_entropy (softmax/dist.hpp) over an in-process group of R ranks:
// loss, lse, gradient and log-probs for hard targets (ignored rows on every rank, class
// weights, label smoothing, z-loss, every reduction) and soft targets, f32 / f64 / bf16
// logits. Aligned layouts must give the single-process bits on every rank; unaligned layouts
// the documented bound 2^-20 (1 + |loss|) against the single-process result (itself tested
// against the long double reference in tests/cpu/cross_entropy_test.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "tests/cpu/test_util.hpp"
#include "tests/dist/thread_comm.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::CrossEntropyOptions;
using softmax::CrossEntropyOutputs;
using softmax::DType;
using softmax::Reduction;
using softmax::TensorView;
using softmax::dist::Shard;
using stest::Buffer;
using stest::ThreadGroup;

struct Variant {
  std::string name;
  bool soft = false;
  bool weights = false;
  double eps = 0.0, z = 0.0;
  Reduction reduction = Reduction::kMean;
};

struct Result {
  std::vector<double> loss, lse;
  Buffer grad, lp;
  Result(DType ct, int64_t n) : grad(ct, n), lp(ct, n) {}
};

std::vector<Shard> cuts(int64_t v, std::vector<int64_t> inner) {
  std::vector<int64_t> c{0};
  c.insert(c.end(), inner.begin(), inner.end());
  c.push_back(v);
  std::vector<Shard> s;
  for (std::size_t i = 0; i + 1 < c.size(); ++i) s.push_back({c[i], c[i + 1] - c[i]});
  return s;
}

// Runs cross_entropy over (rows, v) logits, whole (layout empty) or sharded by `layout`.
Result run(const Buffer& x, const Buffer* q, const std::vector<int64_t>& t,
           const std::vector<double>& w, int64_t rows, int64_t v, const Variant& var,
           const std::vector<Shard>& layout) {
  const DType ct = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Result res(ct, rows * v);
  const int64_t nloss = var.reduction == Reduction::kNone ? rows : 1;
  const std::vector<int64_t> loss_shape =
      var.reduction == Reduction::kNone ? std::vector<int64_t>{rows} : std::vector<int64_t>{};
  auto call = [&](softmax::dist::Communicator* comm, Shard sh, std::vector<double>& loss,
                  std::vector<double>& lse) {
    const auto xes = static_cast<int64_t>(softmax::dtype_size(x.dtype()));
    const auto ces = static_cast<int64_t>(softmax::dtype_size(ct));
    ConstTensorView xs(static_cast<const char*>(x.data()) + sh.offset * xes, x.dtype(),
                       {rows, sh.size}, {v, 1});
    CrossEntropyOutputs out;
    out.loss = TensorView(loss.data(), DType::f64, loss_shape);
    out.lse = TensorView(lse.data(), DType::f64, {rows});
    out.grad = TensorView(static_cast<char*>(res.grad.data()) + sh.offset * ces, ct,
                          {rows, sh.size}, {v, 1});
    out.log_probs = TensorView(static_cast<char*>(res.lp.data()) + sh.offset * ces, ct,
                               {rows, sh.size}, {v, 1});
    CrossEntropyOptions o;
    o.reduction = var.reduction;
    o.label_smoothing = var.eps;
    o.z_loss = var.z;
    if (var.weights) o.weight = ConstTensorView(w.data(), {v});
    ConstTensorView targets =
        var.soft ? ConstTensorView(static_cast<const char*>(q->data()) + sh.offset * xes,
                                   q->dtype(), {rows, sh.size}, {v, 1})
                 : ConstTensorView(t.data(), DType::i64, {rows});
    if (comm) {
      softmax::Context ctx;
      ctx.threads = 1;
      softmax::dist::cross_entropy(*comm, xs, targets, out, sh.offset, o, ctx);
    } else {
      o.threads = 1;
      softmax::cross_entropy(xs, targets, out, o);
    }
  };
  if (layout.empty()) {
    res.loss.assign(static_cast<std::size_t>(nloss), 0.0);
    res.lse.assign(static_cast<std::size_t>(rows), 0.0);
    call(nullptr, Shard{0, v}, res.loss, res.lse);
    return res;
  }
  const int ranks = static_cast<int>(layout.size());
  std::vector<std::vector<double>> loss(ranks, std::vector<double>(nloss)),
      lse(ranks, std::vector<double>(rows));
  ThreadGroup g(ranks);
  g.run([&](softmax::dist::Communicator& comm) {
    const int r = comm.rank();
    call(&comm, layout[static_cast<std::size_t>(r)], loss[r], lse[r]);
  });
  for (int r = 1; r < ranks; ++r) {
    EXPECT_EQ(0, std::memcmp(loss[0].data(), loss[r].data(), 8 * loss[0].size())) << var.name;
    EXPECT_EQ(0, std::memcmp(lse[0].data(), lse[r].data(), 8 * lse[0].size())) << var.name;
  }
  res.loss = loss[0];
  res.lse = lse[0];
  return res;
}

bool same(double a, double b) {
  return std::memcmp(&a, &b, 8) == 0 || (std::isnan(a) && std::isnan(b));
}

TEST(DistCrossEntropy, MatchesSingleProcess) {
  const int64_t A = softmax::dist::kShardAlign;
  std::vector<Variant> variants = {
      {"plain", false, false, 0.0, 0.0, Reduction::kMean},
      {"weights+smoothing", false, true, 0.1, 0.0, Reduction::kMean},
      {"z-loss sum", false, false, 0.0, 1e-4, Reduction::kSum},
      {"none", false, true, 0.2, 1e-3, Reduction::kNone},
      {"soft", true, false, 0.05, 0.0, Reduction::kMean},
      {"soft weights none", true, true, 0.0, 0.0, Reduction::kNone},
  };
  struct Shape {
    int64_t v;
    std::vector<std::vector<Shard>> aligned, unaligned;
  };
  const int64_t big = 3 * A + 1000;
  std::vector<Shape> shapes = {
      {1000,
       {cuts(1000, {0}), cuts(1000, {1000, 1000})},
       {cuts(1000, {1}), cuts(1000, {300, 700})}},
      {big,
       {cuts(big, {A}), cuts(big, {A, 3 * A}), cuts(big, {2 * A, 2 * A, 3 * A})},
       {cuts(big, {A + 17}), cuts(big, {5, 2 * A - 3})}},
  };
  const int64_t rows = 6;
  for (const Shape& sh : shapes) {
    const int64_t v = sh.v;
    for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
      std::mt19937 rng(9);
      std::normal_distribution<double> nd(0.0, 4.0);
      std::vector<double> xv(static_cast<std::size_t>(rows * v)), qv(xv.size());
      for (auto& e : xv) e = nd(rng);
      xv[static_cast<std::size_t>(v + 2)] = 70.0;  // row 1 near-certain
      xv[static_cast<std::size_t>(2 * v + 5)] = -INFINITY;
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t i = 0; i < v; ++i) s += qv[r * v + i] = std::fabs(nd(rng));
        for (int64_t i = 0; i < v; ++i) qv[r * v + i] /= s;
      }
      const Buffer x = stest::MakeBuffer(dt, xv);
      const Buffer q = stest::MakeBuffer(dt, qv);
      // Targets on every rank's classes, one ignored row, one target in the last class.
      std::vector<int64_t> t = {0, 2, -100, v - 1, v / 2, A < v ? A : 3};
      std::vector<double> w(static_cast<std::size_t>(v));
      for (int64_t i = 0; i < v; ++i) w[i] = 0.5 + (i % 7) * 0.25;
      for (const Variant& var : variants) {
        const Result want = run(x, &q, t, w, rows, v, var, {});
        for (int aligned = 1; aligned >= 0; --aligned) {
          const auto& lays = aligned ? sh.aligned : sh.unaligned;
          for (std::size_t l = 0; l < lays.size(); ++l) {
            const std::string what = var.name + " " + softmax::dtype_name(dt) +
                                     " V=" + std::to_string(v) +
                                     (aligned ? " aligned " : " unaligned ") + std::to_string(l);
            const Result got = run(x, &q, t, w, rows, v, var, lays[l]);
            for (std::size_t i = 0; i < want.loss.size(); ++i) {
              if (aligned) {
                EXPECT_TRUE(same(got.loss[i], want.loss[i]))
                    << what << " loss " << i << ": " << got.loss[i] << " vs " << want.loss[i];
              } else if (std::isfinite(want.loss[i])) {
                EXPECT_NEAR(got.loss[i], want.loss[i], 0x1p-20 * (1 + std::fabs(want.loss[i])))
                    << what << " loss " << i;
              }
            }
            for (int64_t r = 0; r < rows; ++r) {
              if (aligned) {
                EXPECT_TRUE(same(got.lse[r], want.lse[r])) << what << " lse " << r;
              } else if (std::isfinite(want.lse[r])) {
                EXPECT_NEAR(got.lse[r], want.lse[r], 0x1p-20 * (1 + std::fabs(want.lse[r])))
                    << what << " lse " << r;
              }
            }
            int bad = 0;
            for (int64_t i = 0; i < rows * v && bad < 3; ++i) {
              const double a = got.grad.get(i), b = want.grad.get(i);
              const double c = got.lp.get(i), d = want.lp.get(i);
              const bool ok =
                  aligned ? (same(a, b) && same(c, d))
                          : ((std::fabs(a - b) <= 0x1p-18 * (std::fabs(b) + 1e-30) + 1e-40 ||
                              same(a, b)) &&
                             (std::fabs(c - d) <= 0x1p-20 * (1 + std::fabs(d)) || same(c, d)));
              if (!ok) {
                ADD_FAILURE() << what << " element " << i << ": grad " << a << " vs " << b
                              << ", log_prob " << c << " vs " << d;
                ++bad;
              }
            }
          }
        }
      }
    }
  }
}

TEST(DistCrossEntropy, FailuresAgree) {
  const int64_t rows = 2, v = 8;
  std::vector<float> x(rows * v, 0.5f);
  auto attempt = [&](std::function<void(softmax::dist::Communicator&, CrossEntropyOptions&,
                                        std::vector<int64_t>&)>
                         tweak,
                     const std::string& needle) {
    ThreadGroup g(2);
    std::vector<std::string> errors;
    float loss = 3.0f;
    g.run(
        [&](softmax::dist::Communicator& comm) {
          const int64_t off = comm.rank() * 4;
          std::vector<int64_t> t = {1, 6};
          CrossEntropyOptions o;
          tweak(comm, o, t);
          float my_loss = 3.0f;
          CrossEntropyOutputs out;
          out.loss = TensorView(&my_loss, DType::f32, {});
          softmax::dist::cross_entropy(
              comm, ConstTensorView(x.data() + off, DType::f32, {rows, 4}, {v, 1}),
              ConstTensorView(t.data(), DType::i64, {rows}), out, off, o);
          loss = my_loss;
        },
        &errors);
    EXPECT_EQ(errors.size(), 2u) << needle;
    for (const auto& e : errors) {
      EXPECT_NE(e.find(needle), std::string::npos) << "'" << e << "' lacks '" << needle << "'";
      EXPECT_EQ(e, errors[0]);
    }
    EXPECT_EQ(loss, 3.0f);
  };
  // A target outside every shard.
  attempt([](auto&, auto&, auto& t) { t[1] = 8; }, "class ids must be in [0, 8)");
  // Targets that differ across ranks.
  attempt(
      [](auto& c, auto&, auto& t) {
        if (c.rank() == 1) t[0] = 2;
      },
      "rank 1 of 2's targets (hard targets: the same on every rank) differs from rank 0's");
  // An option that differs across ranks.
  attempt(
      [](auto& c, auto& o, auto&) {
        if (c.rank() == 1) o.label_smoothing = 0.1;
      },
      "label_smoothing");
  // A bad option on one rank.
  attempt(
      [](auto& c, auto& o, auto&) {
        if (c.rank() == 0) o.label_smoothing = 2.0;
      },
      "rank 0 of 2: argument 'label_smoothing'");
}

}  // namespace
