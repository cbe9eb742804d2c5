// tests/cpu/bounds_sweep_test.cc: sweeps of the input classes that once broke the documented
// bounds (include/softmax/ops.hpp, softmax/backward.hpp), each against the long double
// reference (src/ref), at the bound as written:
// - logsumexp whose result cancels to near 0 with max < 0 (relative + absolute term);
// - f64 softmax at T = 1 on ordinary rows (N(0, 10^2), length 128) and real attention rows;
// - log_softmax and logsumexp at T != 1 (no term for the rounding of 1/T), near-certain rows;
// - extreme T (1/T overflowing or tiny in f32 and f64): the correctly rounded limits;
// - f32 softmax on the "x - max overflows" fallback with huge T;
// - f32 log_softmax / logsumexp whose normaliser is a sum of exps below the f32 normal range;
// - f64 softmax_backward on long rows (the compensated sum of dy * y).
// Every check prints its maximum as a "[measured]" line (docs/accuracy.md).
#include <cmath>
#include <string>
#include <vector>

#include "softmax/backward.hpp"
#include "src/ref/attention_reference.hpp"
#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

// logsumexp bound of ops.hpp: eps_r |lse| + eps_a min(1, |max| / T) + half the least subnormal.
struct LseBound {
  LD rel, abs, tiny;
};
LseBound LseBoundOf(DType t) {
  return t == DType::f64 ? LseBound{0x1p-51L, 0x1p-52L, 0x1p-1075L}
                         : LseBound{0x1p-23L, 0x1p-23L, 0x1p-150L};
}

// logsumexp of each row of `rows` in dtype t at temperature T against the reference; adds
// err / bound to `acc` and fails above 1.
void CheckLse(DType t, const std::vector<std::vector<double>>& rows, double temperature,
              MaxErr& acc) {
  const LseBound b = LseBoundOf(t);
  int failures = 0;
  for (const auto& v : rows) {
    std::vector<LD> ex;
    Buffer x = MakeBuffer(t, v, &ex);
    Buffer y(t, 1);
    const auto n = static_cast<int64_t>(v.size());
    softmax::logsumexp(x.cview({n}), y.view({}), Opts(-1, temperature));
    const LD want = softmax::ref::logsumexp(ex, temperature);
    LD m = -INFINITY;
    for (LD e : ex) m = std::max(m, e);
    const double big = t == DType::f64 ? 1.7976931348623157e308 : 3.4028234663852886e38;
    const double got = y.get(0);
    if (std::fabs(want) > big) {  // overflows the output: +-inf
      if (static_cast<LD>(got) != (want > 0 ? INFINITY : -INFINITY) && failures++ < 3) {
        ADD_FAILURE() << "lse overflow n=" << n << " got " << got;
      }
      continue;
    }
    const LD bound =
        b.rel * std::fabs(want) + b.abs * std::min<LD>(1, std::fabs(m / temperature)) + b.tiny;
    const LD err = std::fabs(static_cast<LD>(got) - want);
    const std::string at = std::string(softmax::dtype_name(t)) + " n=" + std::to_string(n) +
                           " x0=" + Str(v[0]) + " T=" + Str(temperature) + " got=" + Str(got) +
                           " exact=" + Str(static_cast<double>(want));
    acc.add(static_cast<double>(err / bound), at);
    if (!(err <= bound) && failures++ < 3) ADD_FAILURE() << "logsumexp " << at;
  }
}

// log_softmax bound of ops.hpp: 6 eps |y| + half the least subnormal, for every T.
void CheckLogSoftmax(DType t, const std::vector<std::vector<double>>& rows, double temperature,
                     MaxErr& acc) {
  const LD eps = t == DType::f64 ? 0x1p-53L : 0x1p-24L;
  const LD tiny = t == DType::f64 ? 0x1p-1075L : 0x1p-150L;
  int failures = 0;
  for (const auto& v : rows) {
    std::vector<LD> ex;
    Buffer x = MakeBuffer(t, v, &ex);
    const auto n = static_cast<int64_t>(v.size());
    Buffer y(t, n);
    softmax::log_softmax(x.cview({n}), y.view({n}), Opts(-1, temperature));
    const std::vector<LD> want = softmax::ref::log_softmax(ex, temperature);
    for (int64_t i = 0; i < n; ++i) {
      const double got = y.get(i);
      const double big = t == DType::f64 ? 1.7976931348623157e308 : 3.4028234663852886e38;
      if (std::isinf(static_cast<double>(want[i])) || std::fabs(want[i]) > big) {
        if (static_cast<LD>(got) != (want[i] > 0 ? INFINITY : -INFINITY) && failures++ < 3) {
          ADD_FAILURE() << "log_softmax n=" << n << " i=" << i << " got " << got << " want inf";
        }
        continue;
      }
      const LD bound = 6 * eps * std::fabs(want[i]) + tiny;
      const LD err = std::fabs(static_cast<LD>(got) - want[i]);
      const std::string at = std::string(softmax::dtype_name(t)) + " n=" + std::to_string(n) +
                             " i=" + std::to_string(i) + " T=" + Str(temperature) +
                             " got=" + Str(got) + " exact=" + Str(static_cast<double>(want[i]));
      acc.add(static_cast<double>(err / bound), at);
      if (!(err <= bound) && failures++ < 3) ADD_FAILURE() << "log_softmax " << at;
    }
  }
}

// softmax within `ulps` ulp of the compute type (every element), max ulp into acc.
void CheckSoftmax(DType t, const std::vector<std::vector<double>>& rows, double temperature,
                  double ulps, MaxErr& acc) {
  int failures = 0;
  for (const auto& v : rows) {
    std::vector<LD> ex;
    Buffer x = MakeBuffer(t, v, &ex);
    const auto n = static_cast<int64_t>(v.size());
    Buffer y(t, n);
    softmax::softmax(x.cview({n}), y.view({n}), Opts(-1, temperature));
    const std::vector<LD> want = softmax::ref::softmax(ex, temperature);
    for (int64_t i = 0; i < n; ++i) {
      const double u = Ulp(t, y.get(i), want[i]);
      const std::string at = std::string(softmax::dtype_name(t)) + " n=" + std::to_string(n) +
                             " i=" + std::to_string(i) + " T=" + Str(temperature);
      acc.add(u, at);
      if (!(u <= ulps) && failures++ < 3) {
        ADD_FAILURE() << "softmax " << at << " got " << Str(y.get(i)) << " exact "
                      << Str(static_cast<double>(want[i])) << " (" << u << " ulp)";
      }
    }
  }
}

std::vector<std::vector<double>> RealAttentionRows() {
  std::vector<int64_t> shape;
  std::vector<float> scores;
  std::vector<std::vector<double>> rows;
  if (!attn_ref::read_npy_f32(std::string(SOFTMAX_SHARED_DATA) + "/stories260K_attn_scores.npy",
                              shape, scores) ||
      shape.size() != 4) {
    return rows;
  }
  const int64_t n = shape[3];
  for (std::size_t r = 0; r + static_cast<std::size_t>(n) <= scores.size();
       r += static_cast<std::size_t>(n)) {
    rows.emplace_back(scores.begin() + static_cast<std::ptrdiff_t>(r),
                      scores.begin() + static_cast<std::ptrdiff_t>(r) + n);
  }
  return rows;
}

// ---- logsumexp that cancels to near 0 (max < 0) ----

std::vector<std::vector<double>> CancellingRows(std::mt19937_64& rng, double scale) {
  std::vector<std::vector<double>> rows = {
      {-0.6931, -0.6932},
      {-0.69314718055994529, -0.69314718055994529},
      {-0.6931471805599453, -0.6931471805599454},
      {-1.0986122886681098, -1.0986122886681098, -1.0986122886681098}};
  // n values around -log(n) (lse near 0), perturbed by less and less.
  for (int k = 0; k < 3000; ++k) {
    const int64_t n = 2 + k % 400;
    const double spread = std::ldexp(1.0, -(k % 40));
    std::vector<double> v = Uniform(rng, n, -spread, spread);
    for (auto& x : v) x += -std::log(static_cast<double>(n));
    rows.push_back(v);
  }
  // max < 0 with many smaller terms whose exps sum to about 1.
  for (int k = 0; k < 500; ++k) {
    const int64_t n = 50 + k;
    std::vector<double> v = Uniform(rng, n, -8, -1);
    double s = 0;
    for (double x : v) s += std::exp(x);
    for (auto& x : v) x -= std::log(s) + std::ldexp(1.0, -(k % 50)) * (k % 2 ? 1 : -1);
    rows.push_back(v);
  }
  for (auto& v : rows)
    for (auto& x : v) x *= scale;
  return rows;
}

TEST(BoundsSweep, LogsumexpCancellingNearZero) {
  std::mt19937_64 rng(101);
  for (DType t : {DType::f32, DType::f64}) {
    for (double temperature : {1.0, 0.3, 2.5}) {
      MaxErr acc(std::string("logsumexp ") + softmax::dtype_name(t) +
                 " cancelling, T=" + Str(temperature) + " (err / bound)");
      CheckLse(t, CancellingRows(rng, temperature), temperature, acc);
    }
  }
}

// ---- f64 softmax at T = 1 ----

TEST(BoundsSweep, F64SoftmaxOrdinaryAndAttentionRows) {
  std::mt19937_64 rng(102);
  std::vector<std::vector<double>> rows;
  for (int k = 0; k < 12000; ++k) rows.push_back(Normal(rng, 128, 10.0));
  MaxErr acc("softmax f64 N(0, 10^2) n=128, 12000 rows (ulp)");
  CheckSoftmax(DType::f64, rows, 1.0, 4.0, acc);
  const auto real = RealAttentionRows();
  if (real.empty()) GTEST_SKIP() << "shared data not available";
  MaxErr acc_real("softmax f64 attention rows as f64 (ulp)");
  CheckSoftmax(DType::f64, real, 1.0, 4.0, acc_real);
  MaxErr acc_real32("softmax f32 attention rows (ulp)");
  CheckSoftmax(DType::f32, real, 1.0, 4.0, acc_real32);
}

// ---- T != 1: log_softmax and logsumexp of near-certain and ordinary rows ----

TEST(BoundsSweep, TemperatureDoesNotEnterTheBound) {
  std::mt19937_64 rng(103);
  std::vector<std::vector<double>> rows;
  for (int k = 0; k < 1500; ++k) {
    const int64_t n = 1 + k % 200;
    std::vector<double> v = Normal(rng, n, 1.0);
    v[static_cast<std::size_t>(k % n)] += 10.0 + (k % 40);  // near-certain token
    rows.push_back(v);
    if (k % 3 == 0) rows.push_back(Normal(rng, n, 5.0));
  }
  for (DType t : {DType::f32, DType::f64}) {
    for (double temperature : {0.1, 0.3, 0.7, 1.1, 3.3, 1e-3, 1e3}) {
      const std::string name = std::string(softmax::dtype_name(t)) + " T=" + Str(temperature);
      MaxErr ls("log_softmax " + name + " (err / bound)");
      CheckLogSoftmax(t, rows, temperature, ls);
      MaxErr lse("logsumexp " + name + " (err / bound)");
      CheckLse(t, rows, temperature, lse);
      MaxErr sm("softmax " + name + " (ulp)");
      CheckSoftmax(t, rows, temperature, 4.0, sm);
    }
  }
}

// ---- extreme T ----

TEST(BoundsSweep, ExtremeTemperatures) {
  MaxErr acc("extreme T, all ops (err / bound or ulp)");
  const std::vector<std::vector<double>> rows = {{1.0, 0.0},         {0.0, -1.0, 2.0},
                                                 {3e38, -3e38},      {3e38, -3e38, 1e38, 0.5},
                                                 {-2.5, -2.5, -2.5}, {1e-30, -1e-30, 0.0}};
  for (DType t : {DType::f32, DType::f64}) {
    for (double temperature : {1e-40, 1e-45, 1e-300, 1e-310, 1e30, 1e36, 1e39, 1e300, 1e308}) {
      CheckLogSoftmax(t, rows, temperature, acc);
      CheckLse(t, rows, temperature, acc);
      CheckSoftmax(t, rows, temperature, 4.0, acc);
    }
  }
  // The documented limits, exactly.
  Buffer x = MakeBuffer(DType::f32, {1.0, 0.0});
  Buffer y(DType::f32, 2);
  softmax::log_softmax(x.cview({2}), y.view({2}), Opts(-1, 1e-40));
  EXPECT_EQ(y.get(0), 0.0);
  EXPECT_EQ(y.get(1), -kInf);  // -1e40 rounds to -inf in f32
  softmax::softmax(x.cview({2}), y.view({2}), Opts(-1, 1e-40));
  EXPECT_EQ(y.get(0), 1.0);
  EXPECT_EQ(y.get(1), 0.0);
  Buffer huge = MakeBuffer(DType::f32, {3e38, -3e38});
  softmax::softmax(huge.cview({2}), y.view({2}), Opts(-1, 1e300));
  EXPECT_EQ(y.get(0), 0.5);
  EXPECT_EQ(y.get(1), 0.5);
}

// ---- f32 softmax: x - max overflows, huge T ----

TEST(BoundsSweep, F32OverflowFallbackHugeT) {
  std::mt19937_64 rng(104);
  std::vector<std::vector<double>> rows;
  for (int k = 0; k < 400; ++k) {
    std::vector<double> v = Uniform(rng, 2 + k % 60, -3e38, 3e38);
    v[0] = 3e38;
    v[1] = -3e38;
    rows.push_back(v);
  }
  for (double temperature : {1e30, 1e36, 1e37, 1e38, 3e38, 1e39, 1e50, 1e300}) {
    MaxErr acc("softmax f32 x - max overflows, T=" + Str(temperature) + " (ulp)");
    CheckSoftmax(DType::f32, rows, temperature, 4.0, acc);
    MaxErr ls("log_softmax f32 x - max overflows, T=" + Str(temperature) + " (err / bound)");
    CheckLogSoftmax(DType::f32, rows, temperature, ls);
  }
}

// ---- f32 normaliser made of exps below the normal range ----

TEST(BoundsSweep, F32SubnormalExpSums) {
  std::mt19937_64 rng(105);
  std::vector<std::vector<double>> rows;
  for (int k = 0; k < 300; ++k) {
    // max 0, the rest all below -87.3 (exp subnormal in f32); n up to 40000 (general path) so
    // the sum of the rest reaches the normal range (y_max = -sum, lse = sum).
    const int64_t n = k < 200 ? 2 + k * 10 : 2049 + (k - 200) * 400;
    std::vector<double> v = Uniform(rng, n, -103.5, -87.5);
    v[static_cast<std::size_t>(k % n)] = 0.0;
    rows.push_back(v);
    std::vector<double> w(static_cast<std::size_t>(n), -95.0 - (k % 8));
    w[0] = 0.0;
    rows.push_back(w);
  }
  for (double temperature : {1.0, 0.9}) {
    MaxErr ls("log_softmax f32 subnormal exp sums T=" + Str(temperature) + " (err / bound)");
    CheckLogSoftmax(DType::f32, rows, temperature, ls);
    MaxErr lse("logsumexp f32 subnormal exp sums T=" + Str(temperature) + " (err / bound)");
    CheckLse(DType::f32, rows, temperature, lse);
    MaxErr lse_rel("logsumexp f32 subnormal exp sums, normal results (rel / 2^-23)");
    for (const auto& v : rows) {
      std::vector<LD> ex;
      Buffer x = MakeBuffer(DType::f32, v, &ex);
      Buffer y(DType::f32, 1);
      softmax::logsumexp(x.cview({static_cast<int64_t>(v.size())}), y.view({}),
                         Opts(-1, temperature));
      const LD want = softmax::ref::logsumexp(ex, temperature);
      if (want < 0x1p-126L) continue;
      const double r = static_cast<double>(std::fabs(y.get(0) - want) / want / 0x1p-23L);
      lse_rel.add(r, "n=" + std::to_string(v.size()));
      EXPECT_LE(r, 1.0) << "n=" << v.size() << " got " << y.get(0) << " want "
                        << static_cast<double>(want);
    }
  }
}

// ---- f64 softmax_backward at the stated bound ----

TEST(BoundsSweep, F64SoftmaxBackwardAtTheBound) {
  std::mt19937_64 rng(106);
  MaxErr acc("softmax_backward f64 long rows (err / bound 2^-51 ...)");
  for (int k = 0; k < 40; ++k) {
    const int64_t n = 2000 + 997 * k;
    const double temperature = k % 3 == 0 ? 1.0 : 0.7;
    const std::vector<double> x = Normal(rng, n, k % 2 ? 0.5 : 3.0);
    std::vector<double> dy = Normal(rng, n, 1.0);
    if (k % 4 == 1) {
      for (auto& g : dy) g += 1e3;  // sum(dy * y) large, dy - s cancels
    }
    std::vector<LD> xe;
    Buffer xb = MakeBuffer(DType::f64, x, &xe);
    Buffer y(DType::f64, n), dx(DType::f64, n);
    softmax::softmax(xb.cview({n}), y.view({n}), Opts(-1, temperature));
    Buffer g = MakeBuffer(DType::f64, dy);
    softmax::softmax_backward(y.cview({n}), g.cview({n}), dx.view({n}), Opts(-1, temperature));
    LD s = 0, sabs = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += static_cast<LD>(g.get(i)) * y.get(i);
      sabs += std::fabs(static_cast<LD>(g.get(i)) * y.get(i));
    }
    int failures = 0;
    for (int64_t i = 0; i < n; ++i) {
      const LD yi = y.get(i), gi = g.get(i);
      const LD want = yi * (gi - s) / temperature;
      const LD bound = 0x1p-51L * std::fabs(yi) * (std::fabs(gi) + sabs) / temperature;
      const LD err = std::fabs(static_cast<LD>(dx.get(i)) - want);
      acc.add(static_cast<double>(err / bound),
              "n=" + std::to_string(n) + " i=" + std::to_string(i));
      if (!(err <= bound) && failures++ < 3) {
        ADD_FAILURE() << "n=" << n << " i=" << i << " err/bound "
                      << static_cast<double>(err / bound);
      }
    }
  }
}

}  // namespace
}  // namespace stest
