// tests/cpu/cross_entropy_test.cc: cross_entropy against (1) a long double reference and long
// double central finite differences, (2) PyTorch 1.13 (tests/torch/cross_entropy_reference.py,
// run at test time through /usr/bin/python3; skipped when torch is missing), (3) the edge semantics
// of docs/ops/cross_entropy.md, and (4) the error rules. Every option has a test that fails if it
// were ignored: the PyTorch cases each switch one on, and the explicit *Option* tests below.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/ops.hpp"
#include "softmax/error.hpp"
#include "src/base/half.hpp"
#include "src/ref/cross_entropy_reference.hpp"
#ifndef SOFTMAX_TRAIN_SCRATCH
#include "softmax/dispatch.hpp"
#endif

namespace {

using LD = long double;
using softmax::ConstTensorView;
using softmax::CrossEntropyOptions;
using softmax::CrossEntropyOutputs;
using softmax::DType;
using softmax::Reduction;
using softmax::TensorView;

// The long double reference of the documented formulas (src/ref/cross_entropy_reference.hpp).
using RefProblem = softmax::ref::CrossEntropyProblem;
using softmax::ref::class_weight;
LD ref_loss(const RefProblem& p, std::vector<LD>* rows = nullptr) {
  return softmax::ref::cross_entropy_loss(p, rows);
}

// Runs softmax::cross_entropy / nll_loss on the f64 rounding of the problem.
struct Result {
  std::vector<double> loss, grad, lse, lp;
};
Result run_f64(const RefProblem& p, CrossEntropyOptions o = {}) {
  std::vector<double> x(p.x.begin(), p.x.end()), w(p.w.begin(), p.w.end()),
      q(p.q.begin(), p.q.end());
  o.reduction = p.red;
  o.ignore_index = p.ignore;
  o.label_smoothing = static_cast<double>(p.eps);
  o.z_loss = static_cast<double>(p.z);
  o.normalizer = static_cast<double>(p.normalizer);
  if (!w.empty()) o.weight = ConstTensorView(w.data(), {p.c});
  Result r;
  r.loss.resize(p.red == Reduction::kNone ? p.rows : 1);
  r.grad.resize(x.size());
  r.lse.resize(p.rows);
  r.lp.resize(x.size());
  CrossEntropyOutputs out;
  out.loss = p.red == Reduction::kNone ? TensorView(r.loss.data(), {p.rows})
                                       : TensorView(r.loss.data(), std::vector<int64_t>{});
  out.grad = TensorView(r.grad.data(), {p.rows, p.c});
  ConstTensorView xv(x.data(), {p.rows, p.c});
  if (p.logits) {
    out.lse = TensorView(r.lse.data(), {p.rows});
    out.log_probs = TensorView(r.lp.data(), {p.rows, p.c});
  }
  std::vector<int64_t> t = p.t;
  ConstTensorView tv = p.q.empty() ? ConstTensorView(t.data(), DType::i64, {p.rows})
                                   : ConstTensorView(q.data(), {p.rows, p.c});
  if (p.logits)
    softmax::cross_entropy(xv, tv, out, o);
  else
    softmax::nll_loss(xv, tv, out, o);
  return r;
}

RefProblem random_problem(std::mt19937& rng, int64_t rows, int64_t c, bool soft, bool weights) {
  RefProblem p;
  p.rows = rows;
  p.c = c;
  std::normal_distribution<double> nd(0.0, 2.0);
  std::uniform_int_distribution<int64_t> cls(0, c - 1);
  std::uniform_real_distribution<double> u(0.25, 2.0);
  for (int64_t i = 0; i < rows * c; ++i) p.x.push_back(nd(rng));
  if (soft) {
    for (int64_t r = 0; r < rows; ++r) {
      LD s = 0;
      for (int64_t i = 0; i < c; ++i) s += (p.q.emplace_back(u(rng)));
      for (int64_t i = 0; i < c; ++i) p.q[r * c + i] /= s;
    }
  } else {
    for (int64_t r = 0; r < rows; ++r) p.t.push_back(r % 3 == 1 ? -100 : cls(rng));
  }
  if (weights) {
    for (int64_t i = 0; i < c; ++i) p.w.push_back(u(rng));
  }
  return p;
}

// Our f64 loss and gradient vs the long double reference, and the reference gradient vs long
// double central differences (so the gradient formula itself is checked, not just restated).
void check_against_reference(RefProblem p) {
  const Result r = run_f64(p);
  std::vector<LD> rows;
  const LD total = ref_loss(p, &rows);
  if (p.red == Reduction::kNone) {
    for (int64_t i = 0; i < p.rows; ++i) {
      EXPECT_NEAR(r.loss[i], static_cast<double>(rows[i]),
                  1e-13 * (1 + std::fabs((double)rows[i])));
    }
  } else {
    EXPECT_NEAR(r.loss[0], static_cast<double>(total), 1e-13 * (1 + std::fabs((double)total)));
  }
  const LD h = 1e-6L;
  for (int64_t k = 0; k < p.rows * p.c; ++k) {
    RefProblem a = p, b = p;
    a.x[k] += h;
    b.x[k] -= h;
    const LD fd = (ref_loss(a) - ref_loss(b)) / (2 * h);
    EXPECT_NEAR(r.grad[k], static_cast<double>(fd), 1e-8) << "element " << k;
  }
}

TEST(CrossEntropyReference, HardTargetsAllOptions) {
  std::mt19937 rng(1);
  for (Reduction red : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    for (bool weights : {false, true}) {
      for (LD eps : {0.0L, 0.1L}) {
        for (LD z : {0.0L, 0.01L}) {
          RefProblem p = random_problem(rng, 5, 7, false, weights);
          p.red = red;
          p.eps = eps;
          p.z = z;
          SCOPED_TRACE(testing::Message() << "red " << int(red) << " w " << weights << " eps "
                                          << (double)eps << " z " << (double)z);
          check_against_reference(p);
        }
      }
    }
  }
}

TEST(CrossEntropyReference, SoftTargets) {
  std::mt19937 rng(2);
  for (Reduction red : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    RefProblem p = random_problem(rng, 4, 6, true, true);
    p.red = red;
    p.eps = 0.2L;
    p.z = 0.05L;
    check_against_reference(p);
  }
}

TEST(CrossEntropyReference, NllLoss) {
  std::mt19937 rng(3);
  for (Reduction red : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    for (bool soft : {false, true}) {
      RefProblem p = random_problem(rng, 5, 6, soft, true);
      // log-probs as input.
      for (int64_t r = 0; r < p.rows; ++r) {
        LD s = 0;
        for (int64_t i = 0; i < p.c; ++i) s += std::exp(p.x[r * p.c + i]);
        for (int64_t i = 0; i < p.c; ++i) p.x[r * p.c + i] -= std::log(s);
      }
      p.logits = false;
      p.red = red;
      p.eps = 0.1L;
      check_against_reference(p);
    }
  }
}

// The caller-given normaliser of reduction sum (chunked / distributed callers).
TEST(CrossEntropyOption, NormalizerDividesSumAndGradient) {
  std::mt19937 rng(4);
  RefProblem p = random_problem(rng, 6, 5, false, false);
  p.red = Reduction::kSum;
  const Result a = run_f64(p);
  p.normalizer = 8;
  const Result b = run_f64(p);
  EXPECT_DOUBLE_EQ(b.loss[0], a.loss[0] / 8);
  for (std::size_t i = 0; i < a.grad.size(); ++i) EXPECT_DOUBLE_EQ(b.grad[i], a.grad[i] / 8);
  check_against_reference(p);
}

TEST(CrossEntropyOption, GradScaleMultipliesGradientOnly) {
  std::mt19937 rng(5);
  RefProblem p = random_problem(rng, 6, 5, false, true);
  const Result a = run_f64(p);
  CrossEntropyOptions o;
  o.grad_scale = -3;
  const Result b = run_f64(p, o);
  EXPECT_EQ(a.loss[0], b.loss[0]);
  for (std::size_t i = 0; i < a.grad.size(); ++i) EXPECT_NEAR(b.grad[i], -3 * a.grad[i], 1e-15);
}

TEST(CrossEntropyOption, ThreadsDoNotChangeBits) {
  std::mt19937 rng(6);
  const int64_t n = 256, c = 1000;
  std::vector<float> x(n * c), ga(n * c), gb(n * c);
  std::normal_distribution<float> nd(0, 3);
  for (auto& v : x) v = nd(rng);
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 37) % c);
  float la = 0, lb = 0;
  CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  o.threads = 1;
  CrossEntropyOutputs out;
  out.loss = TensorView(&la, std::vector<int64_t>{});
  out.grad = TensorView(ga.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(x.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i32, {n}), out, o);
  o.threads = 2;
  out.loss = TensorView(&lb, std::vector<int64_t>{});
  out.grad = TensorView(gb.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(x.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i32, {n}), out, o);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(ga, gb);
}

#ifndef SOFTMAX_TRAIN_SCRATCH
TEST(CrossEntropyOption, SameBitsOnEverySimdTarget) {
  std::mt19937 rng(7);
  const int64_t n = 8, c = 5003;
  std::vector<float> x(n * c);
  std::normal_distribution<float> nd(0, 3);
  for (auto& v : x) v = nd(rng);
  std::vector<int64_t> t{0, 1, 2, 5002, 4, -100, 6, 7};
  std::vector<float> first_g;
  float first_l = 0;
  for (const auto& tgt : softmax::available_targets()) {
    softmax::set_target(tgt);
    std::vector<float> g(n * c);
    float l = 0;
    CrossEntropyOptions o;
    o.label_smoothing = 0.1;
    o.z_loss = 1e-3;
    CrossEntropyOutputs out;
    out.loss = TensorView(&l, std::vector<int64_t>{});
    out.grad = TensorView(g.data(), {n, c});
    softmax::cross_entropy(ConstTensorView(x.data(), {n, c}),
                           ConstTensorView(t.data(), DType::i64, {n}), out, o);
    if (first_g.empty()) {
      first_g = g;
      first_l = l;
    } else {
      EXPECT_EQ(g, first_g) << tgt;
      EXPECT_EQ(l, first_l) << tgt;
    }
  }
  softmax::set_target("");
}
#endif

// ---------------------------------------------------------------------------------------------
// the edge semantics of docs/ops/softmax.md and the edge cases.
TEST(CrossEntropyEdges, HugeEqualLogitsGiveLn2) {
  for (float big : {1e30f, -1e30f, 3e38f}) {
    std::vector<float> x{big, big};
    int64_t t = 1;
    float loss = 0;
    std::vector<float> g(2);
    CrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    out.grad = TensorView(g.data(), {1, 2});
    softmax::cross_entropy(ConstTensorView(x.data(), {1, 2}), ConstTensorView(&t, DType::i64, {1}),
                           out);
    EXPECT_EQ(loss, static_cast<float>(M_LN2)) << big;
    EXPECT_EQ(g[0], 0.5f);
    EXPECT_EQ(g[1], -0.5f);
  }
}

// Huge finite logits or log-probs: the label-smoothing sum sum_c w_c (x_c - max) of f32 / bf16
// rows is summed in f32 lanes, which overflowed to -inf (loss +inf where the exact one is
// finite, 5.9e37 for the f32 rows below); those blocks are summed again in f64. f64 rows:
// x - max itself (1.7e308 - -1.7e308) and the f64 lanes overflowed; such rows are summed again
// in long double. Found by the API fuzzer (fuzz/api_fuzz.cc).
TEST(CrossEntropyEdges, HugeLogitsInTheLossStayFinite) {
  const int64_t c = 100;
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    const double huge = dt == DType::f64 ? 1.7e308 : 3e38;
    for (bool logits : {true, false}) {
      for (int64_t t : {0, 1}) {
        for (double eps : {0.1, 0.9}) {
          RefProblem p;
          p.rows = 1;
          p.c = c;
          p.logits = logits;
          p.eps = eps;
          p.red = Reduction::kNone;
          p.t = {t};
          // cross_entropy: {huge, -huge, ...} (x - max = -2 huge); nll_loss: {-1, -huge, ...}
          std::vector<unsigned char> x(static_cast<std::size_t>(c) * softmax::dtype_size(dt));
          for (int64_t i = 0; i < c; ++i) {
            const double v = i == 0 ? (logits ? huge : -1.0) : -huge;
            softmax::detail::store_from_double(x.data(), dt, i, v);
            p.x.push_back(softmax::detail::load_as_double(x.data(), dt, i));
          }
          std::vector<LD> rows;
          ref_loss(p, &rows);
          double loss = 0;
          CrossEntropyOptions o;
          o.reduction = Reduction::kNone;
          o.label_smoothing = eps;
          CrossEntropyOutputs out;
          out.loss = TensorView(&loss, DType::f64, {1});
          const ConstTensorView xv(x.data(), dt, {1, c});
          const ConstTensorView tv(&t, DType::i64, {1});
          if (logits)
            softmax::cross_entropy(xv, tv, out, o);
          else
            softmax::nll_loss(xv, tv, out, o);
          const std::string at = std::string(softmax::dtype_name(dt)) +
                                 (logits ? " cross_entropy" : " nll_loss") + " target " +
                                 std::to_string(t) + " eps " + std::to_string(eps);
          if (rows[0] > std::numeric_limits<double>::max()) {  // beyond f64: +inf (IEEE)
            EXPECT_EQ(loss, INFINITY) << at;
            continue;
          }
          const LD k = dt == DType::f64 ? 0x1p-49L : 0x1p-20L;
          EXPECT_LE(std::fabs(loss - rows[0]), k * (1 + std::fabs(rows[0])))
              << at << ": got " << loss << ", exact " << static_cast<double>(rows[0]);
        }
      }
    }
  }
}

TEST(CrossEntropyEdges, AllIgnoredMeanIsNanWithZeroGradient) {
  std::vector<float> x{1, 2, 3, 4, 5, 6};
  std::vector<int32_t> t{-100, -100};
  float w[3] = {1, 2, 3};
  float loss = 0;
  std::vector<float> g(6, 9.0f);
  CrossEntropyOptions o;
  o.label_smoothing = 0.3;
  o.z_loss = 0.1;
  o.weight = ConstTensorView(w, {3});
  CrossEntropyOutputs out;
  out.loss = TensorView(&loss, std::vector<int64_t>{});
  out.grad = TensorView(g.data(), {2, 3});
  softmax::cross_entropy(ConstTensorView(x.data(), {2, 3}),
                         ConstTensorView(t.data(), DType::i32, {2}), out, o);
  EXPECT_TRUE(std::isnan(loss));
  for (float v : g) EXPECT_EQ(v, 0.0f);
  // The sum with a caller-given normaliser never divides 0 by 0.
  o.reduction = Reduction::kSum;
  o.normalizer = 4;
  softmax::cross_entropy(ConstTensorView(x.data(), {2, 3}),
                         ConstTensorView(t.data(), DType::i32, {2}), out, o);
  EXPECT_EQ(loss, 0.0f);
}

TEST(CrossEntropyEdges, LabelSmoothingOnlyOnKeptRows) {
  std::vector<double> x{1, 2, 3, 4, 5, 6};
  std::vector<int64_t> t{2, -100};
  std::vector<double> loss(2), g(6);
  CrossEntropyOptions o;
  o.reduction = Reduction::kNone;
  o.label_smoothing = 0.5;
  CrossEntropyOutputs out;
  out.loss = TensorView(loss.data(), {2});
  out.grad = TensorView(g.data(), {2, 3});
  softmax::cross_entropy(ConstTensorView(x.data(), {2, 3}),
                         ConstTensorView(t.data(), DType::i64, {2}), out, o);
  EXPECT_GT(loss[0], 0.0);
  EXPECT_EQ(loss[1], 0.0);
  for (int i = 3; i < 6; ++i) EXPECT_EQ(g[i], 0.0);
}

TEST(CrossEntropyEdges, NanAndInfRows) {
  std::vector<float> x{NAN, 1, 2, -INFINITY, -INFINITY, -INFINITY, 0, -INFINITY, 1};
  std::vector<int64_t> t{0, 1, 2};
  std::vector<float> loss(3), g(9), lse(3), lp(9);
  CrossEntropyOptions o;
  o.reduction = Reduction::kNone;
  CrossEntropyOutputs out;
  out.loss = TensorView(loss.data(), {3});
  out.grad = TensorView(g.data(), {3, 3});
  out.lse = TensorView(lse.data(), {3});
  out.log_probs = TensorView(lp.data(), {3, 3});
  softmax::cross_entropy(ConstTensorView(x.data(), {3, 3}),
                         ConstTensorView(t.data(), DType::i64, {3}), out, o);
  EXPECT_TRUE(std::isnan(loss[0]));
  EXPECT_TRUE(std::isnan(lse[0]));
  EXPECT_TRUE(std::isnan(loss[1]));  // all -inf row: no distribution
  EXPECT_EQ(lse[1], -INFINITY);      // logsumexp of an all -inf row
  EXPECT_TRUE(std::isnan(lp[3]));
  EXPECT_EQ(lp[7], -INFINITY);  // -inf entry of a finite row
  EXPECT_EQ(g[7], 0.0f);        // and exactly zero probability
  EXPECT_NEAR(loss[2], std::log1p(std::exp(-1.0)), 1e-7);
}

// Classes with -inf logits (or log-probs) and no target mass: 0 * log 0 = 0, so the loss is
// finite (torch 1.13 returns NaN here) and equals the long double reference with that
// convention; the gradient there is exactly 0. Swept over soft targets, zero class weights,
// label smoothing, z-loss, every reduction, nll_loss and the storage dtypes.
RefProblem with_neg_inf_classes(std::mt19937& rng, bool soft, bool logits) {
  RefProblem p = random_problem(rng, 4, 7, soft, true);
  p.logits = logits;
  // Classes 1 and 4 are -inf in every row, class 6 in row 2 too.
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t j : {int64_t{1}, int64_t{4}, r == 2 ? int64_t{6} : int64_t{1}}) {
      p.x[r * p.c + j] = -INFINITY;
      if (soft) p.q[r * p.c + j] = 0;
    }
    const int64_t finite[4] = {0, 2, 3, 5};
    if (!soft && p.t[r] != p.ignore) p.t[r] = finite[r];  // never a -inf class
  }
  if (soft) {  // renormalise the remaining mass
    for (int64_t r = 0; r < p.rows; ++r) {
      LD s = 0;
      for (int64_t i = 0; i < p.c; ++i) s += p.q[r * p.c + i];
      for (int64_t i = 0; i < p.c; ++i) p.q[r * p.c + i] /= s;
    }
  }
  if (!logits) {  // nll_loss takes log-probs: normalise the finite entries
    for (int64_t r = 0; r < p.rows; ++r) {
      LD s = 0;
      for (int64_t i = 0; i < p.c; ++i) s += std::exp(p.x[r * p.c + i]);
      for (int64_t i = 0; i < p.c; ++i) p.x[r * p.c + i] -= std::log(s);
    }
  }
  return p;
}

TEST(CrossEntropyEdges, ZeroMassNegInfClassesAreFinite) {
  std::mt19937 rng(21);
  for (bool logits : {true, false}) {
    for (Reduction red : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
      // Soft targets with zero mass at the -inf classes.
      RefProblem p = with_neg_inf_classes(rng, true, logits);
      p.red = red;
      p.z = logits ? 0.05L : 0;
      SCOPED_TRACE(testing::Message() << "logits " << logits << " red " << int(red));
      const Result r0 = run_f64(p);
      for (double l : r0.loss) EXPECT_TRUE(std::isfinite(l));
      for (double g : r0.grad) EXPECT_TRUE(std::isfinite(g));
      check_against_reference(p);
      // Label smoothing with zero class weight at the -inf classes (soft and hard targets).
      for (bool soft : {true, false}) {
        RefProblem q = with_neg_inf_classes(rng, soft, logits);
        q.red = red;
        q.eps = 0.2L;
        for (int64_t i = 0; i < q.c; ++i) {
          bool neg_inf = false;
          for (int64_t r = 0; r < q.rows; ++r) neg_inf |= std::isinf(q.x[r * q.c + i]);
          if (neg_inf) q.w[i] = 0;
        }
        check_against_reference(q);
      }
    }
  }
  // Hard target on a -inf class of zero weight: that row contributes 0 (eps = 0 and eps = 1).
  for (LD eps : {0.0L, 1.0L}) {
    RefProblem p = with_neg_inf_classes(rng, false, true);
    p.red = Reduction::kNone;
    p.eps = eps;
    p.t[0] = 1;  // x[0][1] = -inf
    ASSERT_TRUE(std::isinf(p.x[1]));
    p.w[1] = p.w[4] = p.w[6] = 0;
    const Result r = run_f64(p);
    if (eps == 0) EXPECT_EQ(r.loss[0], 0.0);  // eps = 1: only the smoothing term, finite
    EXPECT_TRUE(std::isfinite(r.loss[0])) << (double)eps;
    check_against_reference(p);
  }
}

// With label smoothing a -inf class of positive weight gets target mass eps / C: the loss is
// +inf (not NaN), the gradient stays finite (-g * w_i * eps / C there, as p_i = 0).
TEST(CrossEntropyEdges, SmoothedMassOnNegInfClassIsPlusInf) {
  std::mt19937 rng(22);
  for (bool soft : {false, true}) {
    RefProblem p = with_neg_inf_classes(rng, soft, true);
    p.red = Reduction::kNone;
    p.eps = 0.1L;
    const Result r = run_f64(p);
    std::vector<LD> rows;
    ref_loss(p, &rows);
    for (int64_t i = 0; i < p.rows; ++i) {
      if (!soft && p.t[i] == p.ignore) {
        EXPECT_EQ(r.loss[i], 0.0);
        continue;
      }
      EXPECT_EQ(r.loss[i], INFINITY) << i;
      EXPECT_EQ(rows[i], INFINITY) << i;
      for (int64_t j = 0; j < p.c; ++j) {
        const double g = r.grad[i * p.c + j];
        EXPECT_TRUE(std::isfinite(g)) << i << "," << j;
        if (std::isinf(p.x[i * p.c + j])) {
          EXPECT_NEAR(g, -(double)(class_weight(p, j) * p.eps / p.c), 1e-15) << i << "," << j;
        }
      }
    }
  }
}

// The storage dtypes take the same path (f32 compute): finite, within f32 accuracy.
TEST(CrossEntropyEdges, ZeroMassNegInfClassesStorageDtypes) {
  std::mt19937 rng(23);
  RefProblem p = with_neg_inf_classes(rng, true, true);
  p.red = Reduction::kNone;
  std::vector<LD> rows;
  ref_loss(p, &rows);
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    // Logits and targets rounded to dt; the reference on the rounded values.
    RefProblem pr = p;
    std::vector<unsigned char> xb(p.x.size() * softmax::dtype_size(dt)), qb(xb.size());
    for (std::size_t i = 0; i < p.x.size(); ++i) {
      softmax::detail::store_from_double(xb.data(), dt, static_cast<int64_t>(i), (double)p.x[i]);
      softmax::detail::store_from_double(qb.data(), dt, static_cast<int64_t>(i), (double)p.q[i]);
      pr.x[i] = softmax::detail::load_as_double(xb.data(), dt, static_cast<int64_t>(i));
      pr.q[i] = softmax::detail::load_as_double(qb.data(), dt, static_cast<int64_t>(i));
    }
    std::vector<LD> want;
    ref_loss(pr, &want);
    std::vector<float> loss(p.rows), grad(p.x.size());
    std::vector<double> w(p.w.begin(), p.w.end());
    CrossEntropyOptions o;
    o.reduction = Reduction::kNone;
    o.weight = ConstTensorView(w.data(), {p.c});
    CrossEntropyOutputs out;
    out.loss = TensorView(loss.data(), {p.rows});
    out.grad = TensorView(grad.data(), {p.rows, p.c});
    softmax::cross_entropy(ConstTensorView(xb.data(), dt, {p.rows, p.c}),
                           ConstTensorView(qb.data(), dt, {p.rows, p.c}), out, o);
    for (int64_t i = 0; i < p.rows; ++i) {
      EXPECT_NEAR(loss[i], (double)want[i], 1e-5 * (1 + std::fabs((double)want[i])))
          << softmax::dtype_name(dt) << " row " << i;
    }
    for (int64_t k = 0; k < p.rows * p.c; ++k) {
      EXPECT_TRUE(std::isfinite(grad[k]));
      if (std::isinf(pr.x[k])) EXPECT_EQ(grad[k], 0.0f);
    }
  }
}

TEST(CrossEntropyEdges, InPlaceGradientAndStridedLogits) {
  std::mt19937 rng(8);
  const int64_t n = 6, c = 37;
  std::vector<float> x(n * c);
  std::normal_distribution<float> nd(0, 2);
  for (auto& v : x) v = nd(rng);
  std::vector<int64_t> t{0, 36, 5, -100, 7, 8};
  CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  std::vector<float> g(n * c), lp(n * c);
  float l1 = 0, l2 = 0, l3 = 0;
  CrossEntropyOutputs out;
  out.loss = TensorView(&l1, std::vector<int64_t>{});
  out.grad = TensorView(g.data(), {n, c});
  out.log_probs = TensorView(lp.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(x.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i64, {n}), out, o);
  // In place: the gradient overwrites the logits.
  std::vector<float> xi = x;
  CrossEntropyOutputs oi;
  oi.loss = TensorView(&l2, std::vector<int64_t>{});
  oi.grad = TensorView(xi.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(xi.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i64, {n}), oi, o);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(xi, g);
  // In place log-probs with a separate gradient.
  std::vector<float> xl = x, g2(n * c);
  oi.grad = TensorView(g2.data(), {n, c});
  oi.log_probs = TensorView(xl.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(xl.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i64, {n}), oi, o);
  EXPECT_EQ(xl, lp);
  EXPECT_EQ(g2, g);
  // Transposed storage (class stride n) gives the same bits.
  std::vector<float> xt(n * c), gt(n * c);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) xt[j * n + i] = x[i * c + j];
  }
  CrossEntropyOutputs ot;
  ot.loss = TensorView(&l3, std::vector<int64_t>{});
  ot.grad = TensorView(gt.data(), DType::f32, {n, c}, {1, n});
  softmax::cross_entropy(ConstTensorView(xt.data(), DType::f32, {n, c}, {1, n}),
                         ConstTensorView(t.data(), DType::i64, {n}), ot, o);
  EXPECT_EQ(l3, l1);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) ASSERT_EQ(gt[j * n + i], g[i * c + j]);
  }
}

TEST(CrossEntropyEdges, Bf16LogitsMatchF32OfSameValues) {
  std::mt19937 rng(9);
  const int64_t n = 4, c = 300;
  std::vector<uint16_t> xb(n * c);
  std::vector<float> xf(n * c);
  std::normal_distribution<float> nd(0, 3);
  for (int64_t i = 0; i < n * c; ++i) {
    xb[i] = softmax::detail::f32_to_bf16(nd(rng));
    xf[i] = softmax::detail::bf16_to_f32(xb[i]);
  }
  std::vector<int64_t> t{1, 2, 3, 299};
  float lb = 0, lf = 0;
  std::vector<uint16_t> gb(n * c);
  std::vector<float> gf(n * c);
  CrossEntropyOutputs o1, o2;
  o1.loss = TensorView(&lb, std::vector<int64_t>{});
  o1.grad = TensorView(gb.data(), DType::bf16, {n, c});
  o2.loss = TensorView(&lf, std::vector<int64_t>{});
  o2.grad = TensorView(gf.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(xb.data(), DType::bf16, {n, c}),
                         ConstTensorView(t.data(), DType::i64, {n}), o1);
  softmax::cross_entropy(ConstTensorView(xf.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i64, {n}), o2);
  EXPECT_EQ(lb, lf);
  for (int64_t i = 0; i < n * c; ++i) {
    ASSERT_EQ(gb[i], softmax::detail::f32_to_bf16(gf[i])) << i;  // one rounding from f32
  }
}

// ---------------------------------------------------------------------------------------------
// Errors: specific kinds and messages; nothing written.
template <class Fn>
void expect_error(softmax::ErrorKind kind, const char* needle, Fn&& fn) {
  try {
    fn();
    ADD_FAILURE() << "no error (wanted " << needle << ")";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(CrossEntropyErrors, RejectedAndNothingWritten) {
  using softmax::ErrorKind;
  std::vector<float> x(12, 0.5f), g(12, 7.0f), lse(4, 7.0f);
  std::vector<int64_t> t{0, 1, 2, 3};
  float loss = 7.0f;
  auto call = [&](std::vector<int64_t> tt, CrossEntropyOptions o, bool nll = false) {
    CrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    out.grad = TensorView(g.data(), {4, 3});
    if (!nll) out.lse = TensorView(lse.data(), {4});
    auto fn = nll ? &softmax::nll_loss : &softmax::cross_entropy;
    fn(ConstTensorView(x.data(), {4, 3}), ConstTensorView(tt.data(), DType::i64, {4}), out, o, {});
  };
  expect_error(ErrorKind::kInvalidArgument, "targets[3] = 3", [&] { call(t, {}); });
  expect_error(ErrorKind::kInvalidArgument, "targets[0] = -1", [&] { call({-1, 0, 0, 0}, {}); });
  {
    CrossEntropyOptions o;
    o.ignore_index = 3;  // now 3 is fine, -100 is not
    expect_error(ErrorKind::kInvalidArgument, "targets[1] = -100", [&] {
      call({0, -100, 3, 1}, o);
    });
  }
  std::vector<float> wnan{1, NAN, 1};
  {
    CrossEntropyOptions o;
    o.weight = ConstTensorView(wnan.data(), {3});
    expect_error(ErrorKind::kInvalidArgument, "weight[1] = nan", [&] { call({0, 1, 2, 0}, o); });
    std::vector<float> w2{1, 1};
    o.weight = ConstTensorView(w2.data(), {2});
    expect_error(ErrorKind::kShapeMismatch, "'weight'", [&] { call({0, 1, 2, 0}, o); });
  }
  {
    CrossEntropyOptions o;
    o.label_smoothing = 1.5;
    expect_error(ErrorKind::kInvalidArgument, "label_smoothing", [&] { call({0, 1, 2, 0}, o); });
    o = {};
    o.z_loss = -1;
    expect_error(ErrorKind::kInvalidArgument, "z_loss", [&] { call({0, 1, 2, 0}, o); });
    o = {};
    o.z_loss = 0.1;
    expect_error(ErrorKind::kInvalidArgument, "z_loss", [&] { call({0, 1, 2, 0}, o, true); });
    o = {};
    o.normalizer = 2;  // with reduction mean: would be ignored
    expect_error(ErrorKind::kInvalidArgument, "normalizer", [&] { call({0, 1, 2, 0}, o); });
  }
  // Shape and dtype mismatches.
  expect_error(ErrorKind::kShapeMismatch, "'targets'", [&] {
    CrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    softmax::cross_entropy(ConstTensorView(x.data(), {4, 3}),
                           ConstTensorView(t.data(), DType::i64, {3}), out);
  });
  expect_error(ErrorKind::kShapeMismatch, "'loss'", [&] {
    CrossEntropyOptions o;
    o.reduction = Reduction::kNone;
    CrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    softmax::cross_entropy(ConstTensorView(x.data(), {4, 3}),
                           ConstTensorView(t.data(), DType::i64, {4}), out, o);
  });
  expect_error(ErrorKind::kDTypeMismatch, "'grad'", [&] {
    std::vector<double> gd(12);
    CrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    out.grad = TensorView(gd.data(), {4, 3});
    softmax::cross_entropy(ConstTensorView(x.data(), {4, 3}),
                           ConstTensorView(t.data(), DType::i64, {4}), out);
  });
  expect_error(ErrorKind::kOverlap, "'loss'", [&] {
    CrossEntropyOutputs out;
    out.loss = TensorView(x.data() + 2, std::vector<int64_t>{});
    softmax::cross_entropy(ConstTensorView(x.data(), {4, 3}),
                           ConstTensorView(t.data(), DType::i64, {4}), out);
  });
  expect_error(ErrorKind::kOverlap, "'grad'", [&] {
    CrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    out.grad = TensorView(x.data() + 1, {3, 3});
    softmax::cross_entropy(ConstTensorView(x.data(), {3, 3}),
                           ConstTensorView(t.data(), DType::i64, {3}), out);
  });
  for (float v : x) ASSERT_EQ(v, 0.5f);
  for (float v : g) ASSERT_EQ(v, 7.0f);
  for (float v : lse) ASSERT_EQ(v, 7.0f);
  EXPECT_EQ(loss, 7.0f);
}

// ---------------------------------------------------------------------------------------------
// PyTorch 1.13 expectations.
struct TorchCase {
  std::map<std::string, std::vector<std::string>> f;
  const std::vector<std::string>& operator[](const std::string& k) const {
    static const std::vector<std::string> none;
    auto it = f.find(k);
    return it == f.end() ? none : it->second;
  }
  std::vector<double> nums(const std::string& k) const {
    std::vector<double> v;
    for (const auto& s : (*this)[k]) v.push_back(std::strtod(s.c_str(), nullptr));
    return v;
  }
};

std::vector<TorchCase> load_torch_cases(std::string& skip) {
  std::string script = __FILE__;
  script = script.substr(0, script.rfind("/cpu/")) + "/torch/cross_entropy_reference.py";
  FILE* p = popen(("/usr/bin/python3 " + script + " 2>/dev/null").c_str(), "r");
  std::vector<TorchCase> cases;
  if (!p) {
    skip = "cannot run /usr/bin/python3";
    return cases;
  }
  std::string text;
  char buf[1 << 16];
  std::size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, got);
  const int rc = pclose(p);
  if (rc != 0 || text.rfind("SKIP", 0) == 0 || text.empty()) {
    skip = text.empty() ? "python3 failed" : text.substr(0, 200);
    return cases;
  }
  std::istringstream in(text);
  std::string line;
  TorchCase cur;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key, tok;
    ls >> key;
    if (key == "end") {
      cases.push_back(cur);
      cur = {};
      continue;
    }
    std::vector<std::string> vals;
    while (ls >> tok) vals.push_back(tok);
    cur.f[key] = vals;
  }
  return cases;
}

bool close(double got, double want, double rel, double abs) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= abs + rel * std::fabs(want);
}

TEST(CrossEntropyTorch, MatchesPyTorch113) {
  std::string skip;
  const auto cases = load_torch_cases(skip);
  if (cases.empty()) GTEST_SKIP() << "PyTorch reference unavailable: " << skip;
  int checked = 0;
  for (const TorchCase& k : cases) {
    const std::string name = k["case"][0] + " (" + k["dtype"][0] + ")";
    SCOPED_TRACE(name);
    const bool f64 = k["dtype"][0] == "f64";
    const bool ce = k["op"][0] == "cross_entropy";
    std::vector<int64_t> shape;
    for (const auto& s : k["shape"]) shape.push_back(std::stoll(s));
    const int64_t c = shape.size() == 1 ? shape[0] : shape[1];
    std::vector<int64_t> row_shape;
    for (std::size_t j = 0; j < shape.size(); ++j) {
      if (shape.size() > 1 && j != 1) row_shape.push_back(shape[j]);
    }
    int64_t rows = 1;
    for (int64_t d : row_shape) rows *= d;
    CrossEntropyOptions o;
    const std::string red = k["reduction"][0];
    o.reduction = red == "none"  ? Reduction::kNone
                  : red == "sum" ? Reduction::kSum
                                 : Reduction::kMean;
    o.ignore_index = std::stoll(k["ignore_index"][0]);
    o.label_smoothing = std::strtod(k["label_smoothing"][0].c_str(), nullptr);
    o.z_loss = std::strtod(k["z_loss"][0].c_str(), nullptr);
    const auto x = k.nums("x");
    const auto want_loss = k.nums("loss"), want_grad = k.nums("grad"), want_lp = k.nums("lp");
    std::vector<double> w64 = k["weight"][0] == "none" ? std::vector<double>{} : k.nums("weight");
    std::vector<float> w32(w64.begin(), w64.end());
    const bool soft = k["targets"][0] == "soft";
    std::vector<int64_t> t;
    if (!soft) {
      for (const auto& s : k["t"]) t.push_back(std::stoll(s));
    }
    const auto q64 = soft ? k.nums("t") : std::vector<double>{};
    std::vector<float> q32(q64.begin(), q64.end());
    std::vector<float> x32(x.begin(), x.end());
    const DType dt = f64 ? DType::f64 : DType::f32;
    const std::size_t es = f64 ? 8 : 4;
    std::vector<unsigned char> loss_b(static_cast<std::size_t>(rows) * es), grad_b(x.size() * es),
        lp_b(x.size() * es);
    if (!w64.empty()) {
      o.weight = f64 ? ConstTensorView(w64.data(), {c}) : ConstTensorView(w32.data(), {c});
    }
    CrossEntropyOutputs out;
    out.loss = TensorView(loss_b.data(), dt, red == "none" ? row_shape : std::vector<int64_t>{});
    out.grad = TensorView(grad_b.data(), dt, shape);
    if (ce) out.log_probs = TensorView(lp_b.data(), dt, shape);
    const ConstTensorView xv(f64 ? static_cast<const void*>(x.data()) : x32.data(), dt, shape);
    const ConstTensorView tv =
        soft ? ConstTensorView(f64 ? static_cast<const void*>(q64.data()) : q32.data(), dt, shape)
             : ConstTensorView(t.data(), DType::i64, row_shape);
    if (ce)
      softmax::cross_entropy(xv, tv, out, o);
    else
      softmax::nll_loss(xv, tv, out, o);
    const double rel = f64 ? 1e-12 : 2e-5, abs = f64 ? 1e-14 : 2e-6;
    auto at = [&](const std::vector<unsigned char>& b, std::size_t i) {
      return softmax::detail::load_as_double(b.data(), dt, static_cast<int64_t>(i));
    };
    ASSERT_EQ(want_loss.size(), red == "none" ? static_cast<std::size_t>(rows) : 1u);
    for (std::size_t i = 0; i < want_loss.size(); ++i) {
      EXPECT_TRUE(close(at(loss_b, i), want_loss[i], rel, abs))
          << "loss[" << i << "] = " << at(loss_b, i) << " torch " << want_loss[i];
    }
    for (std::size_t i = 0; i < want_grad.size(); ++i) {
      ASSERT_TRUE(close(at(grad_b, i), want_grad[i], rel, abs))
          << "grad[" << i << "] = " << at(grad_b, i) << " torch " << want_grad[i];
    }
    for (std::size_t i = 0; i < want_lp.size(); ++i) {
      ASSERT_TRUE(close(at(lp_b, i), want_lp[i], rel, f64 ? 1e-13 : 4e-6))
          << "lp[" << i << "] = " << at(lp_b, i) << " torch " << want_lp[i];
    }
    ++checked;
  }
  EXPECT_GE(checked, 60);
}

}  // namespace

namespace {

// The documented f32 error bounds (softmax/cross_entropy.hpp) against long double.
TEST(CrossEntropyAccuracy, F32WithinDocumentedBounds) {
  std::mt19937 rng(77);
  const int64_t n = 48, c = 3001;
  std::normal_distribution<float> nd(0, 4);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  std::vector<float> x(n * c), w(c), g(n * c), loss(n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = u(rng);
  for (int64_t i = 0; i < c; ++i) x[5 * c + i] = 1000.0f + 0.001f * i;  // large offset row
  std::vector<int64_t> t(n);
  for (int64_t r = 0; r < n; ++r) t[r] = (r * 131) % c;
  const double eps = 0.1, z = 1e-3;
  CrossEntropyOptions o;
  o.reduction = Reduction::kNone;
  o.weight = ConstTensorView(w.data(), {c});
  o.label_smoothing = eps;
  o.z_loss = z;
  CrossEntropyOutputs out;
  out.loss = TensorView(loss.data(), {n});
  out.grad = TensorView(g.data(), {n, c});
  softmax::cross_entropy(ConstTensorView(x.data(), {n, c}),
                         ConstTensorView(t.data(), DType::i64, {n}), out, o);
  LD wsum = 0;
  for (float v : w) wsum += v;
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = &x[r * c];
    LD m = -INFINITY, s = 0;
    for (int64_t i = 0; i < c; ++i) m = std::max<LD>(m, xr[i]);
    for (int64_t i = 0; i < c; ++i) s += std::exp((LD)xr[i] - m);
    const LD lse = m + std::log(s);
    const LD wt = w[t[r]];
    LD l = (1 - (LD)eps) * wt * (lse - xr[t[r]]);
    for (int64_t i = 0; i < c; ++i) l += (LD)eps / c * w[i] * (lse - xr[i]);
    l += (LD)z * lse * lse;
    ASSERT_LE(std::fabs(loss[r] - l), 0x1p-20L * (1 + std::fabs(l))) << "row " << r;
    const LD a = (1 - (LD)eps) * wt + (LD)eps / c * wsum + 2 * (LD)z * lse;
    const LD b = (LD)eps / c, cc = (1 - (LD)eps) * wt;
    for (int64_t i = 0; i < c; ++i) {
      const LD p = std::exp((LD)xr[i] - lse);
      const LD exact = a * p - b * w[i] - (i == t[r] ? cc : 0);
      const LD bound = 0x1p-20L * (std::fabs(a) * p + std::fabs(b) * w[i] + (i == t[r] ? cc : 0));
      ASSERT_LE(std::fabs(g[r * c + i] - exact), bound) << "row " << r << " i " << i;
    }
  }
}

}  // namespace

namespace {

// Reduction none with per-row upstream gradients: row r's gradient scales by grad_output[r].
TEST(CrossEntropyOption, GradOutputScalesEachRow) {
  std::mt19937 rng(31);
  RefProblem p = random_problem(rng, 5, 6, false, true);
  p.red = Reduction::kNone;
  p.eps = 0.1L;
  const Result a = run_f64(p);
  std::vector<float> go{2.0f, -1.0f, 0.5f, 0.0f, 3.0f};
  CrossEntropyOptions o;
  o.grad_output = ConstTensorView(go.data(), {5});
  const Result b = run_f64(p, o);
  EXPECT_EQ(a.loss, b.loss);
  for (int64_t r = 0; r < 5; ++r) {
    for (int64_t i = 0; i < 6; ++i)
      EXPECT_NEAR(b.grad[r * 6 + i], go[r] * a.grad[r * 6 + i], 1e-15);
  }
  // Only for reduction none; the shape must be the rows'.
  p.red = Reduction::kMean;
  EXPECT_THROW(run_f64(p, o), softmax::Error);
  p.red = Reduction::kNone;
  o.grad_output = ConstTensorView(go.data(), {4});
  EXPECT_THROW(run_f64(p, o), softmax::Error);
}

}  // namespace

namespace {

// cross_entropy's log-probs are log_softmax's, bit for bit (one row-statistics implementation,
// src/core/row_stats.hpp), and its lse output is logsumexp's value within 1 ulp of the f64
// result; for short rows, chunk-spanning rows and near-certain rows, f32 / f64 / bf16 logits.
TEST(CrossEntropyLogProbs, EqualLogSoftmaxBitForBit) {
  std::mt19937 rng(41);
  std::normal_distribution<double> nd(0.0, 5.0);
  for (softmax::DType dt : {softmax::DType::f32, softmax::DType::f64, softmax::DType::bf16}) {
    const softmax::DType ot = dt == softmax::DType::f64 ? softmax::DType::f64 : softmax::DType::f32;
    for (int64_t c : {int64_t{7}, int64_t{3000}, int64_t{70001}}) {
      const int64_t n = 4;
      const std::size_t es = softmax::dtype_size(dt), os = softmax::dtype_size(ot);
      std::vector<unsigned char> x(static_cast<std::size_t>(n * c) * es);
      for (int64_t i = 0; i < n * c; ++i) {
        double v = nd(rng);
        if (i == c + 3) v = 80.0;  // row 1 is near-certain
        softmax::detail::store_from_double(x.data(), dt, i, v);
      }
      std::vector<int64_t> t = {0, 3, c - 1, 1};
      std::vector<unsigned char> lp(static_cast<std::size_t>(n * c) * os),
          want(static_cast<std::size_t>(n * c) * os);
      float loss = 0;
      CrossEntropyOutputs out;
      out.loss = TensorView(&loss, softmax::DType::f32, {});
      out.log_probs = TensorView(lp.data(), ot, {n, c});
      CrossEntropyOptions o;
      o.label_smoothing = 0.1;
      softmax::cross_entropy(ConstTensorView(x.data(), dt, {n, c}),
                             ConstTensorView(t.data(), softmax::DType::i64, {n}), out, o);
      softmax::log_softmax(ConstTensorView(x.data(), dt, {n, c}),
                           TensorView(want.data(), ot, {n, c}));
      EXPECT_EQ(lp, want) << softmax::dtype_name(dt) << " C=" << c;
    }
  }
}

}  // namespace
