// tests/cpu/row_stats_test.cc: the public row-statistics API (softmax/row_stats.hpp). Rows of
// lengths 7, 1000, 70001 and 3 * 32768 + 5 are split into 1..4 slices (empty and one-class
// slices included) at multiples of 32768 and elsewhere; every slice's statistics are computed,
// merged in class order, refined, merged again, and the slices finished. Aligned splits must
// reproduce softmax / log_softmax / logsumexp of the whole row bit for bit; other splits must
// stay within the bounds of include/softmax/ops.hpp against the long double reference.
#include "softmax/row_stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/cpu/test_util.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::SoftmaxOptions;
using softmax::TensorView;
using stest::Buffer;
using stest::kInf;
using stest::kNaN;
using stest::LD;
using stest::Opts;

constexpr int64_t K = softmax::kStatsFields;
constexpr int64_t kC = softmax::kStatsChunk;

struct Stats {
  std::vector<double> v;
  int64_t rows = 0, c = 0;
  std::vector<int64_t> shape() const { return {rows, c, K}; }
  ConstTensorView view() const { return ConstTensorView(v.data(), DType::f64, shape()); }
};

// x: `rows` rows of n classes, row-major in `b`; the slice [a, e) of every row.
ConstTensorView Slice(const Buffer& b, int64_t rows, int64_t n, int64_t a, int64_t e) {
  return ConstTensorView(static_cast<const char*>(b.data()) + a * b.es(), b.dtype(), {rows, e - a},
                         {n, 1});
}
TensorView SliceOut(Buffer& b, int64_t rows, int64_t n, int64_t a, int64_t e) {
  return TensorView(static_cast<char*>(b.data()) + a * b.es(), b.dtype(), {rows, e - a}, {n, 1});
}

Stats StatsOf(ConstTensorView x, double t, const Stats* refine = nullptr) {
  Stats s;
  const auto shape = softmax::softmax_stats_shape(x.shape, -1);
  s.rows = shape[0];
  s.c = shape[1];
  s.v.assign(static_cast<std::size_t>(s.rows * s.c * K), -12345.0);
  TensorView out(s.v.data(), DType::f64, shape);
  if (refine) {
    softmax::softmax_stats(x, refine->view(), out, Opts(-1, t, 2));
  } else {
    softmax::softmax_stats(x, out, Opts(-1, t, 2));
  }
  return s;
}

Stats Merge(const Stats& a, const Stats& b) {
  Stats m;
  m.rows = a.rows;
  m.c = a.c + b.c;
  m.v.assign(static_cast<std::size_t>(m.rows * m.c * K), 0.0);
  softmax::merge_stats(a.view(), b.view(), TensorView(m.v.data(), DType::f64, m.shape()));
  return m;
}

// The split protocol: per-slice statistics, merged in class order, refined, merged again.
Stats RowStatsOfSplit(const Buffer& x, int64_t rows, int64_t n, const std::vector<int64_t>& cuts,
                      double t, bool refine = true) {
  std::vector<int64_t> b = {0};
  b.insert(b.end(), cuts.begin(), cuts.end());
  b.push_back(n);
  Stats m;
  for (std::size_t i = 0; i + 1 < b.size(); ++i) {
    Stats s = StatsOf(Slice(x, rows, n, b[i], b[i + 1]), t);
    m = i == 0 ? s : Merge(m, s);
  }
  if (!refine) return m;
  Stats m2;
  for (std::size_t i = 0; i + 1 < b.size(); ++i) {
    Stats s = StatsOf(Slice(x, rows, n, b[i], b[i + 1]), t, &m);
    m2 = i == 0 ? s : Merge(m2, s);
  }
  return m2;
}

struct Outputs {
  Buffer sm, lsm, lse;
};

// The three results of the whole rows from split statistics.
Outputs FromSplit(const Buffer& x, int64_t rows, int64_t n, const std::vector<int64_t>& cuts,
                  double t, DType yt, bool refine = true) {
  const Stats m = RowStatsOfSplit(x, rows, n, cuts, t, refine);
  Outputs o{Buffer(yt, rows * n), Buffer(yt, rows * n), Buffer(yt, rows)};
  std::vector<int64_t> b = {0};
  b.insert(b.end(), cuts.begin(), cuts.end());
  b.push_back(n);
  for (std::size_t i = 0; i + 1 < b.size(); ++i) {
    softmax::softmax_from_stats(Slice(x, rows, n, b[i], b[i + 1]), m.view(),
                                SliceOut(o.sm, rows, n, b[i], b[i + 1]), Opts(-1, 1.0, 2));
    softmax::log_softmax_from_stats(Slice(x, rows, n, b[i], b[i + 1]), m.view(),
                                    SliceOut(o.lsm, rows, n, b[i], b[i + 1]), Opts(-1, 1.0, 2));
  }
  softmax::logsumexp_from_stats(m.view(), o.lse.view({rows}), Opts(-1, 1.0, 2));
  return o;
}

Outputs Whole(const Buffer& x, int64_t rows, int64_t n, double t, DType yt, DType lse_t) {
  Outputs o{Buffer(yt, rows * n), Buffer(yt, rows * n), Buffer(lse_t, rows)};
  softmax::softmax(x.cview({rows, n}), o.sm.view({rows, n}), Opts(-1, t, 2));
  softmax::log_softmax(x.cview({rows, n}), o.lsm.view({rows, n}), Opts(-1, t, 2));
  softmax::logsumexp(x.cview({rows, n}), o.lse.view({rows}), Opts(-1, t, 2));
  return o;
}

// Index of the first differing element (-1: all bits equal).
int64_t FirstDiff(const Buffer& a, const Buffer& b) {
  for (int64_t i = 0; i < a.size(); ++i) {
    if (a.bits(i) != b.bits(i)) return i;
  }
  return -1;
}

// Test rows: row 0 random normal, row 1 one of the special families.
enum class Family { kNormal, kNaN, kPosInf, kAllNegInf, kNearCertain, kNegInfEntries, kWide };
const char* FamilyName(Family f) {
  switch (f) {
    case Family::kNormal: return "normal";
    case Family::kNaN: return "nan";
    case Family::kPosInf: return "+inf";
    case Family::kAllNegInf: return "all -inf";
    case Family::kNearCertain: return "near-certain";
    case Family::kNegInfEntries: return "-inf entries";
    case Family::kWide: return "wide";
  }
  return "?";
}

std::vector<double> MakeRows(int64_t n, Family f, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> v = stest::Normal(rng, 2 * n, 3.0);
  double* r1 = v.data() + n;
  const int64_t late = n - 1 - n / 3;  // a position in a late chunk
  switch (f) {
    case Family::kNormal: break;
    case Family::kNaN: r1[late] = kNaN; break;
    case Family::kPosInf: r1[late] = kInf; break;
    case Family::kAllNegInf:
      for (int64_t i = 0; i < n; ++i) r1[i] = -kInf;
      break;
    case Family::kNearCertain:
      for (int64_t i = 0; i < n; ++i) r1[i] = -40.0 - static_cast<double>(i % 7);
      r1[late] = 0.0;
      break;
    case Family::kNegInfEntries:
      for (int64_t i = 0; i < n; i += 3) r1[i] = -kInf;
      break;
    case Family::kWide:
      for (int64_t i = 0; i < n; ++i) r1[i] *= 30.0;
      break;
  }
  return v;
}

const std::vector<int64_t> kLengths = {7, 1000, 70001, 3 * kC + 5};
const std::vector<DType> kDTypes = {DType::f32, DType::f64, DType::bf16, DType::f16};
const std::vector<Family> kFamilies = {Family::kNormal,      Family::kNaN,
                                       Family::kPosInf,      Family::kAllNegInf,
                                       Family::kNearCertain, Family::kNegInfEntries};

// Aligned splits of n classes (cuts at multiples of kC, empty slices included).
std::vector<std::vector<int64_t>> AlignedSplits(int64_t n) {
  std::vector<std::vector<int64_t>> s = {{}, {0}, {n}, {0, n, n}};
  if (n > kC) s.push_back({kC});
  if (n > 2 * kC) {
    s.push_back({kC, 2 * kC});
    s.push_back({0, kC, 2 * kC});
  }
  if (n > 3 * kC) s.push_back({kC, 2 * kC, 3 * kC});
  return s;
}

// Other splits: anywhere, one-class and empty slices.
std::vector<std::vector<int64_t>> OtherSplits(int64_t n) {
  return {{n / 2}, {1, n - 1}, {n / 3, n / 3, 2 * n / 3}, {3, 4}, {n - 5, n - 4}};
}

std::string Ctx(int64_t n, DType t, double temp, Family f, const std::vector<int64_t>& cuts) {
  std::string s = "n=" + std::to_string(n) + " " + softmax::dtype_name(t) +
                  " T=" + stest::Str(temp) + " row1=" + FamilyName(f) + " cuts={";
  for (int64_t c : cuts) s += std::to_string(c) + ",";
  return s + "}";
}

TEST(RowStats, AlignedSplitsAreBitIdentical) {
  for (int64_t n : kLengths) {
    for (DType t : kDTypes) {
      const DType lse_t = t;
      for (double temp : {1.0, 0.7}) {
        for (Family f : kFamilies) {
          Buffer x(t, 2 * n);
          stest::Fill(x, MakeRows(n, f, static_cast<uint64_t>(n) * 31 + static_cast<int>(f)));
          const Outputs w = Whole(x, 2, n, temp, t, lse_t);
          for (const auto& cuts : AlignedSplits(n)) {
            if (cuts.size() > 3) continue;  // at most 4 slices
            SCOPED_TRACE(Ctx(n, t, temp, f, cuts));
            // temperature is taken from the statistics: pass it to softmax_stats only.
            std::vector<int64_t> b = {0};
            const Stats m = RowStatsOfSplit(x, 2, n, cuts, temp);
            Outputs o{Buffer(t, 2 * n), Buffer(t, 2 * n), Buffer(lse_t, 2)};
            b.insert(b.end(), cuts.begin(), cuts.end());
            b.push_back(n);
            for (std::size_t i = 0; i + 1 < b.size(); ++i) {
              softmax::softmax_from_stats(Slice(x, 2, n, b[i], b[i + 1]), m.view(),
                                          SliceOut(o.sm, 2, n, b[i], b[i + 1]));
              softmax::log_softmax_from_stats(Slice(x, 2, n, b[i], b[i + 1]), m.view(),
                                              SliceOut(o.lsm, 2, n, b[i], b[i + 1]));
            }
            softmax::logsumexp_from_stats(m.view(), o.lse.view({2}));
            EXPECT_EQ(FirstDiff(o.sm, w.sm), -1) << "softmax";
            EXPECT_EQ(FirstDiff(o.lsm, w.lsm), -1) << "log_softmax";
            EXPECT_EQ(FirstDiff(o.lse, w.lse), -1) << "logsumexp";
          }
        }
      }
    }
  }
}

// Refining is a no-op where the single-process op takes no second look (f32 compute softmax
// statistics, f64 rows of one chunk): one pass is then already exact.
TEST(RowStats, OnePassIsExactWithoutSecondLook) {
  for (int64_t n : {int64_t{1000}, 3 * kC + 5}) {
    for (DType t : {DType::f32, DType::bf16}) {
      Buffer x(t, 2 * n);
      stest::Fill(x, MakeRows(n, Family::kNormal, 7));
      const Outputs w = Whole(x, 2, n, 1.0, t, t);
      const std::vector<int64_t> cuts =
          n > kC ? std::vector<int64_t>{kC, 2 * kC} : std::vector<int64_t>{};
      SCOPED_TRACE(Ctx(n, t, 1.0, Family::kNormal, cuts));
      const Outputs o = FromSplit(x, 2, n, cuts, 1.0, t, /*refine=*/false);
      EXPECT_EQ(FirstDiff(o.sm, w.sm), -1);
      EXPECT_EQ(FirstDiff(o.lsm, w.lsm), -1);
      EXPECT_EQ(FirstDiff(o.lse, w.lse), -1);
    }
  }
}

// Bounds of include/softmax/ops.hpp against the long double reference.
struct Bounds {
  double worst_sm = 0, worst_lsm = 0, worst_lse = 0;  // fraction of the bound
};

// The long double reference of every row.
struct RowRef {
  std::vector<LD> row, sm, lsm;
  LD lse, mx;
};
std::vector<RowRef> References(const std::vector<LD>& exact, int64_t rows, int64_t n, double temp) {
  std::vector<RowRef> out;
  for (int64_t r = 0; r < rows; ++r) {
    RowRef f;
    f.row.assign(exact.begin() + r * n, exact.begin() + (r + 1) * n);
    f.sm = softmax::ref::softmax(f.row, temp);
    f.lsm = softmax::ref::log_softmax(f.row, temp);
    f.lse = softmax::ref::logsumexp(f.row, temp);
    f.mx = -INFINITY;
    for (LD v : f.row) f.mx = std::max(f.mx, v);
    out.push_back(std::move(f));
  }
  return out;
}

void CheckBounds(const Outputs& o, const std::vector<RowRef>& refs, int64_t n, double temp,
                 bool f64c, Bounds& bd, const std::string& ctx,
                 bool skip_near_certain_log = false) {
  const double eps = f64c ? 0x1p-53 : 0x1p-24;
  const double tiny = f64c ? 0x1p-1074 : 0x1p-149;
  for (int64_t r = 0; r < static_cast<int64_t>(refs.size()); ++r) {
    const std::vector<LD>& row = refs[r].row;
    const std::vector<LD>& sm = refs[r].sm;
    const std::vector<LD>& lsm = refs[r].lsm;
    const LD lse = refs[r].lse, mx = refs[r].mx;
    // A near-certain row (sum < 1 + 2^-20, with margin): its log modes need refining.
    const bool skip_log = skip_near_certain_log && std::isfinite(static_cast<double>(lse)) &&
                          lse - mx / temp < 0x1.1p-20L;
    for (int64_t i = 0; i < n; ++i) {
      const double got = o.sm.get(r * n + i), gl = o.lsm.get(r * n + i);
      if (std::isnan(static_cast<double>(sm[i]))) {
        ASSERT_TRUE(std::isnan(got)) << ctx << " softmax row " << r << " i " << i;
        ASSERT_TRUE(std::isnan(gl)) << ctx << " log_softmax row " << r << " i " << i;
        continue;
      }
      // softmax: 4 ulp of the compute type (f64, T != 1: plus |x - max| / T * 2^-53 relative).
      const LD ulp = stest::UlpSize(f64c ? DType::f64 : DType::f32, sm[i]);
      LD bound = 4 * ulp;
      if (f64c && temp != 1.0 && sm[i] > 0) {
        bound += std::fabs((row[i] - mx) / temp) * 0x1p-53L * sm[i];
      }
      const LD e = std::fabs(static_cast<LD>(got) - sm[i]);
      ASSERT_LE(e, bound) << ctx << " softmax row " << r << " i " << i;
      bd.worst_sm = std::max(bd.worst_sm, static_cast<double>(e / bound));
      if (skip_log) continue;
      if (std::isinf(static_cast<double>(lsm[i]))) {
        ASSERT_EQ(gl, static_cast<double>(lsm[i])) << ctx << " log_softmax row " << r;
        continue;
      }
      LD lb = 6 * eps * std::fabs(lsm[i]) + tiny / 2;
      if (f64c && temp != 1.0) lb += std::fabs((row[i] - mx) / temp) * 0x1p-53L;  // finite here
      const LD le = std::fabs(static_cast<LD>(gl) - lsm[i]);
      ASSERT_LE(le, lb) << ctx << " log_softmax row " << r << " i " << i << " got " << gl;
      bd.worst_lsm = std::max(bd.worst_lsm, static_cast<double>(le / lb));
    }
    const double gs = o.lse.get(r);
    if (skip_log) continue;
    if (std::isnan(static_cast<double>(lse)) || std::isinf(static_cast<double>(lse))) {
      if (std::isnan(static_cast<double>(lse))) {
        ASSERT_TRUE(std::isnan(gs)) << ctx << " logsumexp row " << r;
      } else {
        ASSERT_EQ(gs, static_cast<double>(lse)) << ctx << " logsumexp row " << r;
      }
      continue;
    }
    const LD a = f64c ? 0x1p-51L : 0x1p-23L, b2 = f64c ? 0x1p-52L : 0x1p-23L;
    const LD sb = a * std::fabs(lse) + b2 * std::min<LD>(1, std::fabs(mx) / temp) + tiny / 2;
    const LD se = std::fabs(static_cast<LD>(gs) - lse);
    ASSERT_LE(se, sb) << ctx << " logsumexp row " << r << " got " << gs;
    bd.worst_lse = std::max(bd.worst_lse, static_cast<double>(se / sb));
  }
}

TEST(RowStats, OtherSplitsWithinBounds) {
  Bounds bd;
  for (int64_t n : kLengths) {
    for (DType t : kDTypes) {
      // bf16/f16 inputs write f32 (the f32 result is what the bounds are stated for).
      const DType yt = t == DType::f64 ? DType::f64 : DType::f32;
      for (double temp : {1.0, 0.7}) {
        for (Family f : {Family::kNormal, Family::kNaN, Family::kPosInf, Family::kAllNegInf,
                         Family::kNearCertain, Family::kNegInfEntries, Family::kWide}) {
          Buffer x(t, 2 * n);
          const std::vector<LD> exact =
              stest::Fill(x, MakeRows(n, f, static_cast<uint64_t>(n) * 17 + static_cast<int>(f)));
          const std::vector<RowRef> refs = References(exact, 2, n, temp);
          for (const auto& cuts : OtherSplits(n)) {
            const std::string ctx = Ctx(n, t, temp, f, cuts);
            const Outputs o = FromSplit(x, 2, n, cuts, temp, yt);
            CheckBounds(o, refs, n, temp, t == DType::f64, bd, ctx);
            if (HasFatalFailure()) return;
          }
          // One pass without refining: within bounds too, except the log modes of a
          // near-certain f32-compute row (documented).
          {
            const std::vector<int64_t> cuts = {n / 2};
            const Outputs o = FromSplit(x, 2, n, cuts, temp, yt, /*refine=*/false);
            CheckBounds(o, refs, n, temp, t == DType::f64, bd, Ctx(n, t, temp, f, cuts) + " 1-pass",
                        t != DType::f64);
            if (HasFatalFailure()) return;
          }
        }
      }
    }
  }
  std::printf(
      "[measured] row_stats other splits: softmax %.3f, log_softmax %.3f, logsumexp %.3f of "
      "the bound\n",
      bd.worst_sm, bd.worst_lsm, bd.worst_lse);
}

// Aligned splits over a strided axis (axis 0 of a (n, 3) tensor), extreme temperatures (the
// widened f64 path of f32 input), and a rank-1 x.
TEST(RowStats, StridedAxisAndExtremeTemperature) {
  const int64_t n = 70001;
  for (DType t : {DType::f32, DType::f64, DType::f16}) {
    for (double temp : {1.0, 0.7, 1e-40, 1e35}) {
      SCOPED_TRACE(std::string(softmax::dtype_name(t)) + " T=" + stest::Str(temp));
      std::mt19937_64 rng(5);
      Buffer x(t, n * 3);
      stest::Fill(x, stest::Normal(rng, n * 3, 2.0));
      const ConstTensorView xv = x.cview({n, 3});
      // Whole.
      Buffer ys(t, n * 3), yl(t, n * 3), ylse(t, 3);
      softmax::softmax(xv, ys.view({n, 3}), Opts(0, temp));
      softmax::log_softmax(xv, yl.view({n, 3}), Opts(0, temp));
      softmax::logsumexp(xv, ylse.view({3}), Opts(0, temp));
      // Split at kC and 2 kC along axis 0.
      const std::vector<int64_t> b = {0, kC, 2 * kC, n};
      auto slice = [&](const Buffer& buf, int64_t a, int64_t e) {
        return ConstTensorView(static_cast<const char*>(buf.data()) + a * 3 * buf.es(), buf.dtype(),
                               {e - a, 3}, {3, 1});
      };
      auto slice_out = [&](Buffer& buf, int64_t a, int64_t e) {
        return TensorView(static_cast<char*>(buf.data()) + a * 3 * buf.es(), buf.dtype(),
                          {e - a, 3}, {3, 1});
      };
      auto stats_of = [&](int64_t a, int64_t e, const Stats* ref) {
        Stats s;
        const auto shape = softmax::softmax_stats_shape({e - a, 3}, 0);
        EXPECT_EQ(shape, (std::vector<int64_t>{3, (e - a + kC - 1) / kC, K}));
        s.rows = 3;
        s.c = shape[1];
        s.v.assign(static_cast<std::size_t>(3 * s.c * K), 0.0);
        TensorView out(s.v.data(), DType::f64, shape);
        if (ref)
          softmax::softmax_stats(slice(x, a, e), ref->view(), out, Opts(0, temp));
        else
          softmax::softmax_stats(slice(x, a, e), out, Opts(0, temp));
        return s;
      };
      Stats m;
      for (int i = 0; i < 3; ++i)
        m = i == 0 ? stats_of(b[i], b[i + 1], nullptr)
                   : Merge(m, stats_of(b[i], b[i + 1], nullptr));
      Stats m2;
      for (int i = 0; i < 3; ++i)
        m2 = i == 0 ? stats_of(b[i], b[i + 1], &m) : Merge(m2, stats_of(b[i], b[i + 1], &m));
      Buffer os(t, n * 3), ol(t, n * 3), olse(t, 3);
      for (int i = 0; i < 3; ++i) {
        softmax::softmax_from_stats(slice(x, b[i], b[i + 1]), m2.view(),
                                    slice_out(os, b[i], b[i + 1]), Opts(0));
        softmax::log_softmax_from_stats(slice(x, b[i], b[i + 1]), m2.view(),
                                        slice_out(ol, b[i], b[i + 1]), Opts(0));
      }
      softmax::logsumexp_from_stats(m2.view(), olse.view({3}));
      EXPECT_EQ(FirstDiff(os, ys), -1);
      EXPECT_EQ(FirstDiff(ol, yl), -1);
      EXPECT_EQ(FirstDiff(olse, ylse), -1);
    }
  }
}

TEST(RowStats, RecordsAndMerge) {
  // Fields of a small f32 row at T = 1: max, sum relative to it, count, flags, temperature.
  const std::vector<float> x = {1.0f, 3.0f, 2.0f};
  std::vector<double> s(K);
  softmax::softmax_stats(ConstTensorView(x.data(), {3}), TensorView(s.data(), {1, K}));
  EXPECT_EQ(s[softmax::kStatMax], 3.0);
  EXPECT_NEAR(s[softmax::kStatSum], 1.0 + std::exp(-1.0) + std::exp(-2.0), 1e-7);
  EXPECT_EQ(s[softmax::kStatLogMax], 3.0);
  EXPECT_EQ(s[softmax::kStatCount], 3.0);
  EXPECT_EQ(s[softmax::kStatFlags], 0.0);
  EXPECT_EQ(s[softmax::kStatTemperature], 1.0);
  // Empty slice: one record, count 0, max -inf.
  std::vector<double> e(K);
  softmax::softmax_stats(ConstTensorView(x.data(), {0}), TensorView(e.data(), {1, K}));
  EXPECT_EQ(e[softmax::kStatMax], -kInf);
  EXPECT_EQ(e[softmax::kStatCount], 0.0);
  // f64: the compute flag; NaN: the NaN flag.
  const std::vector<double> xd = {1.0, kNaN};
  softmax::softmax_stats(ConstTensorView(xd.data(), {2}), TensorView(e.data(), {1, K}));
  EXPECT_EQ(e[softmax::kStatFlags], 3.0);
  // Merge: concatenation in order, exactly associative, not commutative.
  std::mt19937_64 rng(3);
  std::vector<Stats> parts;
  Buffer xb(DType::f32, 3 * 100);
  stest::Fill(xb, stest::Normal(rng, 300, 1.0));
  for (int i = 0; i < 3; ++i)
    parts.push_back(StatsOf(Slice(xb, 1, 300, 100 * i, 100 * i + 100), 1.0));
  const Stats ab_c = Merge(Merge(parts[0], parts[1]), parts[2]);
  const Stats a_bc = Merge(parts[0], Merge(parts[1], parts[2]));
  ASSERT_EQ(ab_c.v.size(), a_bc.v.size());
  EXPECT_EQ(std::memcmp(ab_c.v.data(), a_bc.v.data(), ab_c.v.size() * 8), 0);
  const Stats ba = Merge(parts[1], parts[0]);
  EXPECT_EQ(std::memcmp(ba.v.data(), parts[1].v.data(), K * 8), 0);
  EXPECT_EQ(ab_c.c, 3);
}

// Every rule throws softmax::Error naming the op and argument, and writes nothing.
TEST(RowStats, Errors) {
  std::vector<float> x(10, 1.0f);
  std::vector<double> s(K, 0.0), sentinel(K, 7.0);
  auto expect_error = [](auto&& fn, const char* op, const char* arg) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << op << " " << arg;
    } catch (const softmax::Error& e) {
      const std::string w = e.what();
      EXPECT_NE(w.find(op), std::string::npos) << w;
      EXPECT_NE(w.find(std::string("'") + arg + "'"), std::string::npos) << w;
    }
  };
  const ConstTensorView xv(x.data(), {10});
  // softmax_stats: stats dtype, shape, temperature, axis.
  std::vector<float> sf(K);
  expect_error(
      [&] {
        softmax::softmax_stats(xv, TensorView(sf.data(), {1, K}));
      },
      "softmax_stats", "stats");
  expect_error([&] { softmax::softmax_stats(xv, TensorView(s.data(), {K})); }, "softmax_stats",
               "stats");
  expect_error(
      [&] {
        softmax::softmax_stats(xv, TensorView(s.data(), {1, K}), Opts(-1, 0.0));
      },
      "softmax_stats", "temperature");
  expect_error(
      [&] {
        softmax::softmax_stats(xv, TensorView(s.data(), {1, K}), Opts(1));
      },
      "softmax_stats", "axis");
  EXPECT_EQ(s, std::vector<double>(K, 0.0));
  // Good statistics at T = 1 and T = 2.
  std::vector<double> s1(K), s2(K);
  softmax::softmax_stats(xv, TensorView(s1.data(), {1, K}));
  softmax::softmax_stats(xv, TensorView(s2.data(), {1, K}), Opts(-1, 2.0));
  // refine: temperature and compute type must match.
  expect_error(
      [&] {
        softmax::softmax_stats(xv, ConstTensorView(s2.data(), {1, K}),
                               TensorView(s.data(), {1, K}));
      },
      "softmax_stats", "refine");
  EXPECT_EQ(s, std::vector<double>(K, 0.0));
  // merge_stats: mixed temperatures, rows mismatch, out shape.
  std::vector<double> m(2 * K, 7.0);
  expect_error(
      [&] {
        softmax::merge_stats(ConstTensorView(s1.data(), {1, K}), ConstTensorView(s2.data(), {1, K}),
                             TensorView(m.data(), {2, K}));
      },
      "merge_stats", "b");
  expect_error(
      [&] {
        softmax::merge_stats(ConstTensorView(s1.data(), {1, K}), ConstTensorView(s1.data(), {1, K}),
                             TensorView(m.data(), {1, K}));
      },
      "merge_stats", "out");
  EXPECT_EQ(m, std::vector<double>(2 * K, 7.0));
  // from_stats: compute type (f32 statistics for f64 x), too few classes, rows mismatch.
  std::vector<double> xd(10, 1.0), yd(10, 7.0);
  expect_error(
      [&] {
        softmax::softmax_from_stats(ConstTensorView(xd.data(), {10}),
                                    ConstTensorView(s1.data(), {1, K}),
                                    TensorView(yd.data(), {10}));
      },
      "softmax_from_stats", "stats");
  std::vector<float> x11(11, 1.0f), y11(11, 7.0f);
  expect_error(
      [&] {
        softmax::log_softmax_from_stats(ConstTensorView(x11.data(), {11}),
                                        ConstTensorView(s1.data(), {1, K}),
                                        TensorView(y11.data(), {11}));
      },
      "log_softmax_from_stats", "stats");
  EXPECT_EQ(y11, std::vector<float>(11, 7.0f));
  std::vector<float> x2(20, 1.0f), y2(20, 7.0f);
  expect_error(
      [&] {
        softmax::softmax_from_stats(ConstTensorView(x2.data(), {2, 10}),
                                    ConstTensorView(s1.data(), {1, K}),
                                    TensorView(y2.data(), {2, 10}));
      },
      "softmax_from_stats", "stats");
  EXPECT_EQ(y2, std::vector<float>(20, 7.0f));
  // Corrupt records.
  std::vector<double> bad = s1;
  bad[softmax::kStatFlags] = 5.0;
  std::vector<float> yl(1, 7.0f);
  expect_error(
      [&] {
        softmax::logsumexp_from_stats(ConstTensorView(bad.data(), {1, K}),
                                      TensorView(yl.data(), {}));
      },
      "logsumexp_from_stats", "stats");
  // logsumexp_from_stats: f64 output of f32 statistics, wrong shape.
  std::vector<double> yl64(1, 7.0);
  expect_error(
      [&] {
        softmax::logsumexp_from_stats(ConstTensorView(s1.data(), {1, K}),
                                      TensorView(yl64.data(), {}));
      },
      "logsumexp_from_stats", "y");
  expect_error(
      [&] {
        softmax::logsumexp_from_stats(ConstTensorView(s1.data(), {1, K}),
                                      TensorView(yl.data(), {1}));
      },
      "logsumexp_from_stats", "y");
  EXPECT_EQ(yl, std::vector<float>(1, 7.0f));
  EXPECT_EQ(yl64, std::vector<double>(1, 7.0));
  // The good path still works.
  softmax::logsumexp_from_stats(ConstTensorView(s1.data(), {1, K}), TensorView(yl.data(), {}));
  EXPECT_FLOAT_EQ(yl[0], 1.0f + std::log(10.0f));
}

}  // namespace
