// The vocabulary-parallel softmax family (softmax/dist.hpp) over an in-process group of R ranks:
// every rank count 1..4, the default layout, uneven aligned layouts, unaligned and one-class
// shards, every dtype pair, temperatures, special values, strided axes, and the failure rules.
// Aligned layouts must give the single-process bits; every layout must meet the documented
// bounds against the long double reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "src/ref/reference.hpp"
#include "tests/cpu/test_util.hpp"
#include "tests/dist/layouts.hpp"
#include "tests/dist/thread_comm.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::SoftmaxOptions;
using softmax::TensorView;
using softmax::dist::Shard;
using stest::Buffer;
using stest::ThreadGroup;
using LD = long double;

enum class Op { kSoftmax, kLogSoftmax, kLogSumExp, kArgmax };
const char* name(Op op) {
  switch (op) {
    case Op::kSoftmax: return "softmax";
    case Op::kLogSoftmax: return "log_softmax";
    case Op::kLogSumExp: return "logsumexp";
    case Op::kArgmax: return "argmax";
  }
  return "?";
}

std::vector<Shard> default_layout(int64_t v, int ranks) {
  std::vector<Shard> s;
  for (int r = 0; r < ranks; ++r) s.push_back(softmax::dist::default_shard(v, r, ranks));
  return s;
}
using stest::aligned;
using stest::cut_layout;

// Runs op on x (rows, v) split by `layout` (rank r's shard: a strided view of x's columns), the
// ranks in reverse offset order when `reverse` (rank order need not follow class order).
// Returns the gathered result as the single-process call would write it.
Buffer run_dist(Op op, const Buffer& x, int64_t rows, int64_t v, DType yt,
                const std::vector<Shard>& layout, double t, bool reverse = false) {
  const int ranks = static_cast<int>(layout.size());
  const bool reduce = op == Op::kLogSumExp || op == Op::kArgmax;
  Buffer y(yt, reduce ? rows : rows * v);
  std::vector<Buffer> reduced;
  for (int r = 0; r < ranks; ++r) reduced.emplace_back(yt, rows);
  ThreadGroup g(ranks);
  g.run([&](softmax::dist::Communicator& comm) {
    const int r = comm.rank();
    const Shard sh = layout[static_cast<std::size_t>(reverse ? ranks - 1 - r : r)];
    const auto xes = static_cast<int64_t>(softmax::dtype_size(x.dtype()));
    const auto yes = static_cast<int64_t>(softmax::dtype_size(yt));
    ConstTensorView xs(static_cast<const char*>(x.data()) + sh.offset * xes, x.dtype(),
                       {rows, sh.size}, {v, 1});
    SoftmaxOptions o;
    o.temperature = t;
    softmax::Context ctx;
    ctx.threads = 1;
    if (op == Op::kSoftmax || op == Op::kLogSoftmax) {
      TensorView ys(static_cast<char*>(y.data()) + sh.offset * yes, yt, {rows, sh.size}, {v, 1});
      if (op == Op::kSoftmax)
        softmax::dist::softmax(comm, xs, ys, sh.offset, o, ctx);
      else
        softmax::dist::log_softmax(comm, xs, ys, sh.offset, o, ctx);
    } else {
      TensorView ys = reduced[static_cast<std::size_t>(r)].view({rows});
      if (op == Op::kLogSumExp)
        softmax::dist::logsumexp(comm, xs, ys, sh.offset, o, ctx);
      else
        softmax::dist::argmax(comm, xs, ys, sh.offset, o, ctx);
    }
  });
  if (reduce) {
    // Every rank holds the whole result, the same bits on each.
    for (int r = 1; r < ranks; ++r) {
      for (int64_t i = 0; i < rows; ++i) {
        EXPECT_EQ(reduced[0].bits(i), reduced[static_cast<std::size_t>(r)].bits(i))
            << name(op) << " rank " << r << " row " << i;
      }
    }
    return std::move(reduced[0]);
  }
  return y;
}

Buffer run_single(Op op, const Buffer& x, int64_t rows, int64_t v, DType yt, double t) {
  const bool reduce = op == Op::kLogSumExp || op == Op::kArgmax;
  Buffer y(yt, reduce ? rows : rows * v);
  SoftmaxOptions o;
  o.temperature = t;
  o.threads = 1;
  const ConstTensorView xv = x.cview({rows, v});
  switch (op) {
    case Op::kSoftmax: softmax::softmax(xv, y.view({rows, v}), o); break;
    case Op::kLogSoftmax: softmax::log_softmax(xv, y.view({rows, v}), o); break;
    case Op::kLogSumExp: softmax::logsumexp(xv, y.view({rows}), o); break;
    case Op::kArgmax: softmax::argmax(xv, y.view({rows}), o); break;
  }
  return y;
}

// Values of row r: a spread of logits with ties, a near-certain row and special rows.
std::vector<double> make_values(int64_t rows, int64_t v, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 4.0);
  std::vector<double> x(static_cast<std::size_t>(rows * v));
  for (auto& e : x) e = nd(rng);
  for (int64_t r = 0; r < rows; ++r) {
    double* row = x.data() + r * v;
    switch (r % 6) {
      case 1: row[(r * 7919) % v] = 60.0; break;  // near-certain (log modes' second pass)
      case 2:
        for (int64_t i = 0; i < v; i += 3) row[i] = -INFINITY;
        break;
      case 3:
        if (specials) row[(r * 31) % v] = NAN;
        break;
      case 4:
        if (specials) row[v - 1] = INFINITY;
        break;
      case 5: row[v / 2] = row[0] = 20.0; break;  // a tie for the max
      default: break;
    }
  }
  return x;
}

void expect_same_bits(const Buffer& a, const Buffer& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  int bad = 0;
  for (int64_t i = 0; i < a.size() && bad < 5; ++i) {
    const bool both_nan = std::isnan(a.get(i)) && std::isnan(b.get(i));
    if (a.bits(i) != b.bits(i) && !both_nan) {
      ADD_FAILURE() << what << " element " << i << ": dist " << a.get(i) << " single " << b.get(i);
      ++bad;
    }
  }
}

// Documented bounds (ops.hpp) against the long double reference, for layouts that are not
// bit-identical: softmax 4 ulp of the compute type; log_softmax 6 eps |y| + 2 eps;
// logsumexp eps |y| + eps.
void expect_within_bounds(Op op, const Buffer& x, const Buffer& y, int64_t rows, int64_t v,
                          double t, const std::string& what) {
  const bool f64 = x.dtype() == DType::f64;
  const LD eps = f64 ? 0x1p-53L : 0x1p-24L;
  int bad = 0;
  for (int64_t r = 0; r < rows && bad < 5; ++r) {
    std::vector<LD> row(static_cast<std::size_t>(v));
    for (int64_t i = 0; i < v; ++i) row[i] = x.get(r * v + i);
    if (op == Op::kArgmax) {
      EXPECT_EQ(static_cast<int64_t>(y.get(r)), softmax::ref::argmax(row)) << what << " row " << r;
      continue;
    }
    if (op == Op::kLogSumExp) {
      LD ex = softmax::ref::logsumexp(row, t);
      const LD got = y.get(r);
      if (!f64 && std::fabs(ex) > std::numeric_limits<float>::max())
        ex = ex > 0 ? INFINITY : -INFINITY;
      if (std::isnan(ex) || std::isinf(ex)) {
        EXPECT_TRUE(std::isnan(ex) ? std::isnan(got) : got == ex) << what << " row " << r;
      } else if (std::fabs(got - ex) > 4 * eps * std::fabs(ex) + 2 * eps) {
        ADD_FAILURE() << what << " row " << r << " got " << (double)got << " exact " << (double)ex;
        ++bad;
      }
      continue;
    }
    const std::vector<LD> ex =
        op == Op::kSoftmax ? softmax::ref::softmax(row, t) : softmax::ref::log_softmax(row, t);
    for (int64_t i = 0; i < v && bad < 5; ++i) {
      const LD got = y.get(r * v + i);
      LD e = ex[static_cast<std::size_t>(i)];
      if (!f64 && std::fabs(e) > std::numeric_limits<float>::max())
        e = e > 0 ? INFINITY : -INFINITY;
      bool ok;
      if (std::isnan(e))
        ok = std::isnan(got);
      else if (std::isinf(e) || e == 0)
        ok = got == e;
      else if (op == Op::kSoftmax)  // 4 ulp; an ulp is 2^-149 (f32) / 2^-1074 (f64) below normal
        ok = std::fabs(got - e) <=
             4 * std::max(2 * eps * std::fabs(e), f64 ? 0x1p-1074L : 0x1p-149L);
      else
        ok = std::fabs(got - e) <= 6 * 2 * eps * std::fabs(e) + 2 * 2 * eps;
      if (!ok) {
        ADD_FAILURE() << what << " row " << r << " i " << i << " got " << (double)got << " exact "
                      << (double)e;
        ++bad;
      }
    }
  }
}

struct Case {
  int64_t rows, v;
  std::vector<std::vector<Shard>> layouts;
};

std::vector<Case> cases() {
  const int64_t A = softmax::dist::kShardAlign;
  std::vector<Case> cs;
  // Short rows (one chunk): the default layout puts the row on one rank; cuts inside the chunk.
  cs.push_back(
      {12,
       1000,
       {default_layout(1000, 1), default_layout(1000, 3), cut_layout(1000, {1}),
        cut_layout(1000, {1, 2, 999}), cut_layout(1000, {500}), cut_layout(1000, {0, 0, 1000})}});
  // One class per rank.
  cs.push_back({6, 4, {cut_layout(4, {1, 2, 3}), default_layout(4, 4)}});
  // Long rows: 3.5 chunks; aligned uneven layouts and unaligned ones.
  const int64_t v = 3 * A + A / 2;
  cs.push_back({6,
                v,
                {default_layout(v, 2), default_layout(v, 3), default_layout(v, 4),
                 cut_layout(v, {3 * A}), cut_layout(v, {A, A, 3 * A}), cut_layout(v, {A + 5}),
                 cut_layout(v, {7, 2 * A - 1, 2 * A + 3})}});
  return cs;
}

TEST(DistSoftmax, MatchesSingleProcessAndBounds) {
  const std::vector<std::pair<DType, DType>> pairs = {{DType::f32, DType::f32},
                                                      {DType::f64, DType::f64},
                                                      {DType::bf16, DType::f32},
                                                      {DType::f16, DType::f16},
                                                      {DType::f32, DType::bf16}};
  for (const Case& c : cases()) {
    for (auto [xt, yt] : pairs) {
      for (double t : {1.0, 0.7, 1e-40}) {
        if (t == 1e-40 && c.v > 5000) continue;  // widened f64 path: slow on long rows
        const Buffer x = stest::MakeBuffer(xt, make_values(c.rows, c.v, 17, true));
        for (Op op : {Op::kSoftmax, Op::kLogSoftmax, Op::kLogSumExp, Op::kArgmax}) {
          const DType ot = op == Op::kArgmax      ? DType::i64
                           : op == Op::kLogSumExp ? (xt == DType::f64 ? DType::f64 : DType::f32)
                                                  : yt;
          const Buffer single = run_single(op, x, c.rows, c.v, ot, t);
          for (std::size_t l = 0; l < c.layouts.size(); ++l) {
            const auto& lay = c.layouts[l];
            const std::string what = std::string(name(op)) + " " + softmax::dtype_name(xt) + "->" +
                                     softmax::dtype_name(ot) + " V=" + std::to_string(c.v) +
                                     " T=" + std::to_string(t) + " layout " + std::to_string(l) +
                                     " R=" + std::to_string(lay.size());
            const Buffer got = run_dist(op, x, c.rows, c.v, ot, lay, t, l % 2 == 1);
            if (aligned(lay) || op == Op::kArgmax) {
              expect_same_bits(got, single, what);
            } else if (ot == DType::f32 || ot == DType::f64 || ot == DType::i64) {
              expect_within_bounds(op, x, got, c.rows, c.v, t, what);
            }
          }
        }
      }
    }
  }
}

TEST(DistSoftmax, StridedAxisAndInPlace) {
  // x of shape (V, rows) reduced over axis 0 (a strided class axis); in-place softmax.
  const int64_t v = 5000, rows = 3;
  const Buffer x = stest::MakeBuffer(DType::f32, make_values(rows, v, 5, false));
  // Transposed copy: xt[i, r] = x[r, i].
  Buffer xt(DType::f32, v * rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < v; ++i) xt.set(i * rows + r, x.get(r * v + i));
  const Buffer single = run_single(Op::kLogSoftmax, x, rows, v, DType::f32, 0.5);
  const auto layout = cut_layout(v, {1234});
  Buffer y(DType::f32, v * rows);
  ThreadGroup g(2);
  g.run([&](softmax::dist::Communicator& comm) {
    const Shard sh = layout[static_cast<std::size_t>(comm.rank())];
    ConstTensorView xs(static_cast<const float*>(xt.data()) + sh.offset * rows, DType::f32,
                       {sh.size, rows}, {rows, 1});
    TensorView ys(static_cast<float*>(y.data()) + sh.offset * rows, DType::f32, {sh.size, rows},
                  {rows, 1});
    SoftmaxOptions o;
    o.axis = 0;
    o.temperature = 0.5;
    softmax::dist::log_softmax(comm, xs, ys, sh.offset, o);
  });
  Buffer back(DType::f32, rows * v);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < v; ++i) back.set(r * v + i, y.get(i * rows + r));
  expect_within_bounds(Op::kLogSoftmax, x, back, rows, v, 0.5, "strided axis");

  // In place, aligned (one rank holds the row): the single-process bits.
  Buffer inplace = stest::MakeBuffer(DType::f32, make_values(rows, v, 5, false));
  const Buffer want = run_single(Op::kSoftmax, inplace, rows, v, DType::f32, 1.0);
  ThreadGroup g2(2);
  g2.run([&](softmax::dist::Communicator& comm) {
    const Shard sh = softmax::dist::default_shard(v, comm.rank(), 2);
    TensorView ys(static_cast<float*>(inplace.data()) + sh.offset, DType::f32, {rows, sh.size},
                  {v, 1});
    softmax::dist::softmax(comm, ys, ys, sh.offset);
  });
  expect_same_bits(inplace, want, "in place");
}

// Every rank throws the same error, naming the failing rank and the rule; nothing is written.
void expect_all_fail(int ranks, const std::function<void(softmax::dist::Communicator&)>& fn,
                     const std::string& needle) {
  ThreadGroup g(ranks);
  std::vector<std::string> errors;
  g.run(fn, &errors);
  for (int r = 0; r < ranks; ++r) {
    EXPECT_NE(errors[r].find(needle), std::string::npos)
        << "rank " << r << ": '" << errors[r] << "' lacks '" << needle << "'";
    EXPECT_EQ(errors[r], errors[0]);
  }
}

TEST(DistSoftmax, FailuresAgreeOnEveryRank) {
  const int64_t rows = 2, v = 10;
  std::vector<float> x(rows * v, 1.0f);
  std::vector<float> y(rows * v, 7.0f);
  auto shard = [&](int64_t off, int64_t n) {
    return ConstTensorView(x.data() + off, DType::f32, {rows, n}, {v, 1});
  };
  auto out = [&](int64_t off, int64_t n) {
    return TensorView(y.data() + off, DType::f32, {rows, n}, {v, 1});
  };
  // A gap between shards.
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() == 0 ? 0 : 6, n = c.rank() == 0 ? 5 : 4;
        softmax::dist::softmax(c, shard(off, n), out(off, n), off);
      },
      "rank 1 of 2's shard [6, 10) leaves a gap");
  // Overlapping shards.
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() == 0 ? 0 : 4, n = c.rank() == 0 ? 5 : 6;
        softmax::dist::softmax(c, shard(off, n), out(off, n), off);
      },
      "overlaps");
  // A bad argument on one rank only.
  expect_all_fail(
      3,
      [&](softmax::dist::Communicator& c) {
        SoftmaxOptions o;
        o.temperature = c.rank() == 2 ? -1.0 : 1.0;
        const Shard sh = {c.rank() * 3, c.rank() == 2 ? 4 : 3};
        softmax::dist::log_softmax(c, shard(sh.offset, sh.size), out(sh.offset, sh.size), sh.offset,
                                   o);
      },
      "rank 2 of 3: argument 'temperature'");
  // Temperatures that differ across ranks (each valid).
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        SoftmaxOptions o;
        o.temperature = c.rank() == 1 ? 2.0 : 1.0;
        const int64_t off = c.rank() * 5;
        softmax::dist::softmax(c, shard(off, 5), out(off, 5), off, o);
      },
      "rank 1 of 2 has temperature = 2 where rank 0 has 1");
  // Different ops, tensor ranks and dtypes are named as the caller wrote them.
  {  // a different op on one rank
    ThreadGroup g(2);
    std::vector<std::string> errors;
    g.run(
        [&](softmax::dist::Communicator& c) {
          const int64_t off = c.rank() * 5;
          if (c.rank() == 0)
            softmax::dist::softmax(c, shard(off, 5), out(off, 5), off);
          else
            softmax::dist::log_softmax(c, shard(off, 5), out(off, 5), off);
        },
        &errors);
    EXPECT_EQ(errors[0],
              "softmax::dist::softmax: rank 1 of 2 calls softmax::dist::log_softmax where "
              "rank 0 calls softmax::dist::softmax: every rank must call the same op");
    EXPECT_EQ(errors[1], errors[0]);  // under rank 0's op name on every rank
  }
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() * 5;
        if (c.rank() == 0) {
          softmax::dist::softmax(c, shard(off, 5), out(off, 5), off);
        } else {
          softmax::dist::softmax(
              c, ConstTensorView(x.data() + off, DType::f32, {1, rows, 5}, {rows * v, v, 1}),
              TensorView(y.data() + off, DType::f32, {1, rows, 5}, {rows * v, v, 1}), off);
        }
      },
      "rank 1 of 2 has the rank of x = 3 where rank 0 has 2");
  // A different class axis (rank 1 passes its shard transposed, axis 0): the axis is named.
  std::vector<float> xt(rows * v, 1.0f);
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() * 5;
        softmax::SoftmaxOptions o;
        if (c.rank() == 0) {
          softmax::dist::softmax(c, shard(off, 5), out(off, 5), off);
        } else {
          o.axis = 0;
          softmax::dist::softmax(c, ConstTensorView(xt.data(), DType::f32, {5, rows}),
                                 TensorView(xt.data(), DType::f32, {5, rows}), off, o);
        }
      },
      "rank 1 of 2 has axis (the sharded class axis) = 0 where rank 0 has 1");
  std::vector<uint16_t> y16(rows * v, 0);
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() * 5;
        if (c.rank() == 0) {
          softmax::dist::softmax(c, shard(off, 5), out(off, 5), off);
        } else {
          softmax::dist::softmax(c, shard(off, 5),
                                 TensorView(y16.data() + off, DType::bf16, {rows, 5}, {v, 1}), off);
        }
      },
      "rank 1 of 2 has the dtype of y = bf16 where rank 0 has f32");
  // Row counts that differ.
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() * 5;
        const int64_t r = c.rank() == 0 ? 2 : 1;
        softmax::dist::softmax(c, ConstTensorView(x.data() + off, DType::f32, {r, 5}, {v, 1}),
                               TensorView(y.data() + off, DType::f32, {r, 5}, {v, 1}), off);
      },
      "rank 1 of 2 has x.shape[0] = 1 where rank 0 has 2");
  // A negative offset.
  expect_all_fail(
      2,
      [&](softmax::dist::Communicator& c) {
        const int64_t off = c.rank() * 5;
        softmax::dist::argmax(c, shard(off, 5), TensorView(y.data(), DType::i64, {rows}),
                              c.rank() == 1 ? -5 : 0);
      },
      "rank 1 of 2: argument 'class_offset' = -5");
  for (float e : y) EXPECT_EQ(e, 7.0f);  // nothing written
  // default_shard's own rules.
  EXPECT_THROW(softmax::dist::default_shard(10, 2, 2), softmax::Error);
  EXPECT_THROW(softmax::dist::default_shard(-1, 0, 2), softmax::Error);
}

TEST(DistSoftmax, DefaultShardTilesAndAligns) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{32768}, int64_t{32769}, int64_t{128256},
                    int64_t{262144}, int64_t{1} << 20}) {
    for (int ranks = 1; ranks <= 9; ++ranks) {
      int64_t end = 0;
      for (int r = 0; r < ranks; ++r) {
        const Shard s = softmax::dist::default_shard(v, r, ranks);
        EXPECT_EQ(s.offset, end) << v << " " << ranks << " " << r;
        EXPECT_GE(s.size, 0);
        if (s.size > 0) EXPECT_EQ(s.offset % softmax::dist::kShardAlign, 0);
        end = s.offset + s.size;
      }
      EXPECT_EQ(end, v);
    }
  }
  // 128256 classes = 4 chunks (3 full + 29952) over 4 ranks: one chunk each.
  EXPECT_EQ(softmax::dist::default_shard(128256, 3, 4).size, 128256 - 3 * 32768);
}

TEST(DistSoftmax, CountsCollectives) {
  // softmax f32: the agreement plus one all-gather of statistics.
  const int64_t rows = 4, v = 70000;
  const Buffer x = stest::MakeBuffer(DType::f32, make_values(rows, v, 3, false));
  ThreadGroup g(2);
  g.run([&](softmax::dist::Communicator& comm) {
    const Shard sh = softmax::dist::default_shard(v, comm.rank(), 2);
    ConstTensorView xs(static_cast<const float*>(x.data()) + sh.offset, DType::f32, {rows, sh.size},
                       {v, 1});
    std::vector<float> ys(static_cast<std::size_t>(rows * sh.size));
    comm.reset_stats();
    softmax::dist::softmax(comm, xs, TensorView(ys.data(), {rows, sh.size}), sh.offset);
    EXPECT_EQ(comm.stats().collectives, 2);
    // Rank 0 holds chunks 0, 1; rank 1 chunk 2 (70000 = 2 * 32768 + 4464).
    EXPECT_EQ(comm.stats().bytes_sent, 512 + rows * (comm.rank() == 0 ? 2 : 1) * 40);
  });
}

}  // namespace
