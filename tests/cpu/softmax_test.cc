// tests/cpu/softmax_test.cc: softmax against the long double reference (src/ref) on every SIMD
// target, every dtype pair, lengths 0..200 and around the kernels' lane (64), block (2048) and
// chunk (32768) sizes, the adversarial rows of docs/accuracy.md, edge semantics (section 7) and
// property tests (sum to 1, shift invariance, two classes = sigmoid, T -> 0, temperature used).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

// Lengths around every boundary of the kernels: vectors (4..16 f32 lanes), 64 logical lanes,
// 2048-element blocks, 32768-element chunks (and two chunks: the thread-split threshold).
std::vector<int64_t> BoundaryLengths() {
  std::vector<int64_t> n;
  for (int64_t i = 0; i <= 200; ++i) n.push_back(i);
  for (int64_t b : {255, 256, 257, 2047, 2048, 2049, 2111, 4095, 4096, 4097, 32767, 32768, 32769,
                    65535, 65536, 65537, 98304 + 77}) {
    n.push_back(b);
  }
  return n;
}

TEST(Softmax, AllLengthsAllTargetsAllDtypes) {
  std::mt19937_64 rng(1);
  std::vector<std::vector<double>> rows;
  const auto lengths = BoundaryLengths();
  for (int64_t n : lengths) rows.push_back(Normal(rng, n, 4.0));
  for (DTypePair p : AllPairs()) {
    Acc acc(std::string("softmax ") + PairName(p) + " lengths 0..98k");
    ForEachTarget([&](const std::string&) {
      for (std::size_t k = 0; k < lengths.size(); ++k) {
        const int64_t n = lengths[k];
        CheckRows(Op::kSoftmax, p, 1, n, rows[k], 1.0, n > 4096 ? 2 : 1, &acc);
      }
    });
  }
}

// Rows of docs/accuracy.md that break naive implementations.
std::vector<std::pair<std::string, std::vector<double>>> AdversarialRows() {
  std::mt19937_64 rng(2);
  std::vector<std::pair<std::string, std::vector<double>>> r;
  r.push_back({"[90,100] n=37", Uniform(rng, 37, 90, 100)});
  r.push_back({"[90,100] n=3000", Uniform(rng, 3000, 90, 100)});
  r.push_back({"{1000,1001,1002}", {1000, 1001, 1002}});
  r.push_back({"{-1000,-1001,-1002}", {-1000, -1001, -1002}});
  r.push_back({"all negative [-1e4,-9e3] n=129", Uniform(rng, 129, -1e4, -9e3)});
  r.push_back({"all negative [-100,-50] n=2100", Uniform(rng, 2100, -100, -50)});
  r.push_back({"wide range [-200,200] n=999", Uniform(rng, 999, -200, 200)});
  r.push_back({"huge f32 3e38", {3e38, 3e38, -3e38, 1e38, 3e38}});
  r.push_back({"near underflow", {0, -87, -87.5, -88, -100, -103.9, -104, -110, -150}});
  r.push_back({"single element", {42.5}});
  r.push_back({"single huge", {-3e38}});
  r.push_back({"two equal", {7, 7}});
  std::vector<double> inf_entries = Normal(rng, 70, 3);
  for (std::size_t i = 0; i < inf_entries.size(); i += 3) inf_entries[i] = -kInf;
  r.push_back({"-inf entries n=70", inf_entries});
  r.push_back({"-inf first, one finite", {-kInf, -kInf, -kInf, 5, -kInf}});
  r.push_back({"all -inf n=5", {-kInf, -kInf, -kInf, -kInf, -kInf}});
  r.push_back({"all -inf n=1", {-kInf}});
  r.push_back({"+inf row", {1, kInf, 3}});
  r.push_back({"+inf and -inf", {-kInf, kInf}});
  r.push_back({"-inf block then finite n=4200", [&] {
                 std::vector<double> v(4200, -kInf);
                 v[4150] = 1;
                 v[4199] = 0.5;
                 return v;
               }()});
  r.push_back({"increasing max over blocks n=8192", [&] {
                 std::vector<double> v(8192);
                 for (int i = 0; i < 8192; ++i) v[i] = i * 0.01;
                 return v;
               }()});
  r.push_back({"decreasing n=8192", [&] {
                 std::vector<double> v(8192);
                 for (int i = 0; i < 8192; ++i) v[i] = -i * 0.01;
                 return v;
               }()});
  return r;
}

TEST(Softmax, AdversarialRows) {
  const auto rows = AdversarialRows();
  for (DTypePair p : AllPairs()) {
    Acc acc(std::string("softmax ") + PairName(p) + " adversarial");
    ForEachTarget([&](const std::string&) {
      for (const auto& [name, v] : rows) {
        SCOPED_TRACE(name);
        CheckRows(Op::kSoftmax, p, 1, static_cast<int64_t>(v.size()), v, 1.0, 1, &acc);
      }
    });
  }
}

// The row of docs/kernel_bugs.md K3 (f16 input, f32 output, n = 109; 4.31 ulp with the first
// kernels) against the documented 4 ulp.
TEST(Softmax, DocumentedBoundRepro) {
  const uint16_t bits[] = {
      0x3d11, 0x3ccb, 0x42bc, 0xc640, 0x42d9, 0xc50a, 0xc4f0, 0x3867, 0xc342, 0x4196, 0x2e94,
      0x39b7, 0x36cd, 0x4035, 0x435a, 0xc051, 0x4400, 0xca5b, 0xbdc8, 0xc1ce, 0xbd44, 0x49b9,
      0xc187, 0xbe74, 0xc040, 0xc853, 0xbc7c, 0x423a, 0x410a, 0x3c90, 0x44de, 0xc584, 0xc01e,
      0x3fca, 0x44ea, 0x3cb5, 0xc43e, 0x41f2, 0x427e, 0xc477, 0x365e, 0xc1c7, 0xc224, 0x48b1,
      0xbc58, 0x43e4, 0xc700, 0x4407, 0xc2fd, 0xc438, 0xc9da, 0xbc80, 0x452c, 0xbdb4, 0xc85e,
      0xc4f9, 0x4408, 0x4389, 0x3f76, 0xc376, 0xc7aa, 0x40e2, 0xb00c, 0xbabd, 0x41cd, 0xb30f,
      0xb83b, 0x44a9, 0x3edc, 0xbc71, 0x40ee, 0x3b4d, 0x4080, 0xc7e5, 0x48e9, 0x402f, 0x3ae5,
      0xbcdf, 0x334d, 0xc37b, 0x4425, 0xa83c, 0xc475, 0x3bc5, 0x400c, 0xc4f0, 0xaf86, 0xb9de,
      0x422e, 0xc4da, 0xc4a6, 0xbf03, 0xbfba, 0x35cf, 0xbd24, 0x4886, 0x42d7, 0x3fd2, 0x46ef,
      0xb155, 0xc045, 0x48b3, 0xbf36, 0x4734, 0xb683, 0x39ad, 0xbcf3, 0xbf67, 0x4190};
  constexpr int64_t n = 109;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = softmax::detail::f16_to_f32(bits[i]);
  const double saved = g_softmax_slack;
  g_softmax_slack = 1.0;
  ForEachTarget([&](const std::string&) {
    CheckRows(Op::kSoftmax, {DType::f16, DType::f32}, 1, n, v, 1.0, 1, nullptr);
  });
  g_softmax_slack = saved;
}

TEST(Softmax, EdgeSemanticsExact) {
  ForEachTarget([&](const std::string&) {
    for (DTypePair p : AllPairs()) {
      SCOPED_TRACE(PairName(p));
      auto run = [&](const std::vector<double>& v) {
        Buffer x = MakeBuffer(p.x, v);
        Buffer y(p.y, static_cast<int64_t>(v.size()));
        const auto n = static_cast<int64_t>(v.size());
        softmax::softmax(x.cview({n}), y.view({n}), Opts());
        std::vector<double> out(v.size());
        for (int64_t i = 0; i < n; ++i) out[i] = y.get(i);
        return out;
      };
      // All -inf, NaN, +inf rows give NaN everywhere (never a uniform row).
      for (const auto& v : std::vector<std::vector<double>>{
               {-kInf, -kInf, -kInf}, {0, kInf, 1}, {kInf, kInf}, {-kInf, kInf}}) {
        for (double o : run(v)) EXPECT_TRUE(std::isnan(o));
      }
      // -inf entries with a finite max are exactly 0; the single finite entry is exactly 1.
      auto o = run({-kInf, 3, -kInf});
      EXPECT_EQ(o[0], 0.0);
      EXPECT_EQ(o[1], 1.0);
      EXPECT_EQ(o[2], 0.0);
      EXPECT_FALSE(std::signbit(o[0]));
      // A single element is exactly 1, however large.
      for (double v : {0.0, 65504.0, -65504.0, 1e-30}) EXPECT_EQ(run({v})[0], 1.0);
      // Equal entries give exactly 1/n for n a power of two.
      for (double w : run(std::vector<double>(64, 11.0))) EXPECT_EQ(w, 1.0 / 64);
    }
  });
}

// Rows holding NaN give NaN everywhere (softmax and log_softmax), on every target.
TEST(Softmax, NaNRows) {
  std::mt19937_64 rng(10);
  std::vector<std::vector<double>> rows = {
      {kNaN}, {1, 2, kNaN, 4}, {kNaN, kInf}, {kInf, kNaN}, {-kInf, kNaN}};
  for (int64_t n : {67, 4100, 40000}) {
    auto v = Normal(rng, n, 1);
    v[n - 1] = kNaN;  // in the last vector / a later block / a later chunk
    rows.push_back(v);
  }
  ForEachTarget([&](const std::string&) {
    for (DTypePair p : AllPairs()) {
      for (const auto& v : rows) {
        const auto n = static_cast<int64_t>(v.size());
        Buffer x = MakeBuffer(p.x, v);
        for (Op op : {Op::kSoftmax, Op::kLogSoftmax}) {
          for (int threads : {1, 2}) {
            Buffer y(p.y, n);
            RunOp(op, x.cview({n}), y.view({n}), Opts(-1, 1.0, threads));
            for (int64_t i = 0; i < n; ++i) {
              ASSERT_TRUE(std::isnan(y.get(i)))
                  << OpName(op) << " " << PairName(p) << " n=" << n << " i=" << i;
            }
          }
        }
      }
    }
  });
}

TEST(Softmax, EmptyShapesAreNoOps) {
  for (DTypePair p : AllPairs()) {
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{0}, {3, 0}, {0, 5}, {2, 0, 3}, {0, 0}}) {
      Buffer x(p.x, 0);
      Buffer y(p.y, 0, 8);
      const auto before = y.raw();
      for (int64_t axis : {0, -1}) {
        ASSERT_NO_THROW(softmax::softmax(x.cview(shape), y.view(shape), Opts(axis)));
        ASSERT_NO_THROW(softmax::log_softmax(x.cview(shape), y.view(shape), Opts(axis)));
      }
      EXPECT_EQ(y.raw(), before);
    }
  }
}

// Sums of 1 and 2 threads; 1,048,576-wide rows sum to 1 within 1e-6 (f32), per-element 4 ulp.
TEST(Softmax, MillionWideRowSumsToOne) {
  constexpr int64_t n = 1 << 20;
  std::mt19937_64 rng(3);
  for (double sigma : {1.0, 10.0}) {
    const auto v = Normal(rng, n, sigma);
    for (DTypePair p : {DTypePair{DType::f32, DType::f32}, DTypePair{DType::bf16, DType::f32},
                        DTypePair{DType::f64, DType::f64}}) {
      std::vector<LD> ex;
      Buffer x = MakeBuffer(p.x, v, &ex);
      const auto ref = softmax::ref::softmax(ex);
      MaxErr ulps("softmax " + PairName(p) + " 1x1048576 sigma " + Str(sigma));
      MaxErr sum_err("softmax " + PairName(p) + " 1x1048576 |sum-1|");
      for (int threads : {1, 2}) {
        Buffer y(p.y, n);
        softmax::softmax(x.cview({n}), y.view({n}), Opts(-1, 1.0, threads));
        LD s = 0;
        double worst = 0;
        for (int64_t i = 0; i < n; ++i) {
          s += y.get(i);
          worst = std::max(worst, Ulp(p.y, y.get(i), ref[i]));
        }
        ulps.add(worst);
        sum_err.add(static_cast<double>(std::fabs(s - 1)));
        EXPECT_LE(std::fabs(s - 1), p.y == DType::f64 ? 1e-14 : 1e-6) << threads << " threads";
        // Documented 4 ulp for f32 and f64 (f64 row sums are compensated: docs/kernel_bugs.md K5).
        EXPECT_LE(worst, 4.0) << threads << " threads";
      }
    }
  }
}

TEST(Softmax, RowsSumToOneWithinBound) {
  // Each element within 4 ulp (relative 4 * 2^-23) => |sum - 1| <= 4 * 2^-23 for f32.
  std::mt19937_64 rng(4);
  MaxErr sum_err("softmax f32 |sum-1| random rows");
  ForEachTarget([&](const std::string&) {
    for (int k = 0; k < 200; ++k) {
      const int64_t n = 1 + static_cast<int64_t>(rng() % 3000);
      const auto v = Normal(rng, n, 1 + static_cast<double>(rng() % 20));
      Buffer x = MakeBuffer(DType::f32, v);
      Buffer y(DType::f32, n);
      softmax::softmax(x.cview({n}), y.view({n}), Opts());
      LD s = 0;
      for (int64_t i = 0; i < n; ++i) s += y.get(i);
      sum_err.add(static_cast<double>(std::fabs(s - 1)));
      EXPECT_LE(std::fabs(s - 1), 4 * 0x1p-23) << "n=" << n;
    }
  });
}

TEST(Softmax, ShiftInvarianceIsExactForExactShifts) {
  // x on a 2^-10 grid in [-8, 8]; x + c is exact in f32 for c = +-1024 and +-2^20 * 2^-10 ...,
  // so x - max is the same and the outputs are bitwise identical.
  std::mt19937_64 rng(5);
  ForEachTarget([&](const std::string&) {
    for (int64_t n : {1, 5, 64, 100, 3000}) {
      std::vector<double> v(n);
      for (auto& e : v)
        e = std::ldexp(static_cast<double>(static_cast<int>(rng() % 16384) - 8192), -10);
      for (double c : {1024.0, -1024.0, 4096.0, -8000.0}) {
        std::vector<double> w(v);
        for (auto& e : w) e += c;
        for (DType t : {DType::f32, DType::f64}) {
          Buffer x0 = MakeBuffer(t, v), x1 = MakeBuffer(t, w);
          Buffer y0(t, n), y1(t, n);
          softmax::softmax(x0.cview({n}), y0.view({n}), Opts());
          softmax::softmax(x1.cview({n}), y1.view({n}), Opts());
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y0.bits(i), y1.bits(i)) << n << " " << c;
        }
      }
    }
  });
}

TEST(Softmax, ShiftInvarianceApproximate) {
  // Random (inexact) shifts: both results within the bound of their own exact values, which
  // differ only by the rounding of the shifted inputs.
  std::mt19937_64 rng(6);
  Acc acc("softmax f32 shifted rows");
  for (int k = 0; k < 50; ++k) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 500);
    auto v = Normal(rng, n, 3);
    const double c = Uniform(rng, 1, -1e4, 1e4)[0];
    for (auto& e : v) e += c;
    CheckRows(Op::kSoftmax, {DType::f32, DType::f32}, 1, n, v, 1.0, 1, &acc);
  }
}

TEST(Softmax, TwoClassesEqualSigmoidOfDifference) {
  // softmax([a, b])[0] = sigmoid(a - b); a - b exact (a, b on a 2^-12 grid in [-64, 64]).
  std::mt19937_64 rng(7);
  MaxErr diff("softmax([a,b])[0] vs sigmoid(a-b) f32 (ulp)");
  ForEachTarget([&](const std::string&) {
    for (int k = 0; k < 2000; ++k) {
      const double a =
          std::ldexp(static_cast<double>(static_cast<int64_t>(rng() % 524288) - 262144), -12);
      const double b =
          std::ldexp(static_cast<double>(static_cast<int64_t>(rng() % 524288) - 262144), -12);
      float x[2] = {static_cast<float>(a), static_cast<float>(b)}, y[2];
      softmax::softmax(std::span<const float>(x, 2), std::span<float>(y, 2));
      const float d = static_cast<float>(a - b);
      float s;
      softmax::sigmoid(ConstTensorView(&d, {}), TensorView(&s, {}), {});
      const LD exact = softmax::ref::sigmoid(static_cast<LD>(a) - b);
      diff.add(Ulp(DType::f32, y[0], exact));
      // softmax <= 4 ulp, sigmoid <= 3 ulp of the same exact value.
      EXPECT_LE(Ulp(DType::f32, y[0], exact), 4.0) << a << " " << b;
      EXPECT_LE(Ulp(DType::f32, s, exact), 3.0) << a << " " << b;
      EXPECT_LE(std::fabs(static_cast<LD>(y[0]) - s), 7 * UlpSize(DType::f32, exact));
    }
  });
}

TEST(Softmax, SmallTemperatureApproachesOneHotArgmax) {
  std::mt19937_64 rng(8);
  for (int k = 0; k < 50; ++k) {
    const int64_t n = 2 + static_cast<int64_t>(rng() % 300);
    const auto v = Normal(rng, n, 2);
    Buffer x = MakeBuffer(DType::f32, v);
    const int64_t am =
        softmax::argmax(std::span<const float>(static_cast<const float*>(x.data()), n));
    double prev_max = 0;
    for (double t : {10.0, 1.0, 0.1, 1e-2, 1e-3}) {
      Buffer y(DType::f32, n);
      softmax::softmax(x.cview({n}), y.view({n}), Opts(-1, t));
      EXPECT_GE(y.get(am), prev_max) << "T=" << t;  // the argmax mass grows as T decreases
      prev_max = y.get(am);
    }
    // Far below the gap to the runner-up every other entry underflows: exactly one-hot.
    Buffer y(DType::f32, n), h(DType::f32, n);
    softmax::softmax(x.cview({n}), y.view({n}), Opts(-1, 1e-30));
    softmax::hardmax(x.cview({n}), h.view({n}), Opts());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y.get(i), h.get(i)) << i;
  }
  // Ties at the max share the mass equally as T -> 0.
  std::vector<float> x{1, 3, 3, -2}, y(4);
  softmax::softmax(x, y, 1e-20);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.5f);
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(y[3], 0.0f);
}

TEST(Softmax, TemperatureIsApplied) {
  // Fails if the option were ignored: softmax(x, T) must match the reference of x / T and
  // differ from softmax(x, 1).
  std::mt19937_64 rng(9);
  const auto v = Normal(rng, 100, 2);
  for (DTypePair p : AllPairs()) {
    Acc acc("softmax " + PairName(p) + " T in {0.5,1.5,2,7}");
    ForEachTarget([&](const std::string&) {
      for (double t : {0.5, 1.5, 2.0, 7.0}) {
        CheckRows(Op::kSoftmax, p, 1, 100, v, t, 1, &acc);
        Buffer x = MakeBuffer(p.x, v);
        Buffer y1(p.y, 100), yt(p.y, 100);
        softmax::softmax(x.cview({100}), y1.view({100}), Opts(-1, 1.0));
        softmax::softmax(x.cview({100}), yt.view({100}), Opts(-1, t));
        int differ = 0;
        for (int64_t i = 0; i < 100; ++i) differ += y1.get(i) != yt.get(i);
        EXPECT_GT(differ, 50) << "T=" << t;
      }
    });
  }
  // The worked example of the seed: T = 0.5, 1, 1.5 on {2, 1, 0.1}.
  std::vector<float> x{2.0f, 1.0f, 0.1f}, y(3);
  softmax::softmax(x, y, 1.0);
  EXPECT_NEAR(y[0], 0.659, 5e-4);
  EXPECT_NEAR(y[1], 0.242, 5e-4);
  EXPECT_NEAR(y[2], 0.099, 5e-4);
  softmax::softmax(x, y, 0.5);
  EXPECT_NEAR(y[0], 0.86377, 1e-4);
  softmax::softmax(x, y, 1.5);
  EXPECT_NEAR(y[0], 0.5570, 1e-3);
}

TEST(Softmax, ExtremeTemperatures) {
  // Very large T: the output is uniform to within rounding; very small T (1/T saturates):
  // still one-hot, never NaN.
  std::vector<float> x{1, 2, 3, 4}, y(4);
  softmax::softmax(x, y, 1e30);
  for (float v : y) EXPECT_EQ(v, 0.25f);
  softmax::softmax(x, y, 1e-300);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[0] + y[1] + y[2], 0.0f);
  std::vector<double> xd{1, 2, 3, 4}, yd(4);
  softmax::softmax(xd, yd, 1e-300);
  EXPECT_EQ(yd[3], 1.0);
  EXPECT_EQ(yd[0], 0.0);
}

TEST(Softmax, SpanConveniences) {
  std::vector<float> x{1000, 1001, 1002}, y(3);
  softmax::softmax(x, y);
  EXPECT_NEAR(y[0], 0.0900306, 1e-6);
  EXPECT_NEAR(y[1], 0.2447285, 1e-6);
  EXPECT_NEAR(y[2], 0.6652410, 1e-6);
  std::vector<double> xd{1000, 1001, 1002}, yd(3);
  softmax::softmax(xd, yd);
  const auto ref = softmax::ref::softmax({1000, 1001, 1002});
  for (int i = 0; i < 3; ++i) EXPECT_LE(softmax::ref::ulp_error(yd[i], ref[i]), 4.0);
  std::vector<float> empty_in, empty_out;
  EXPECT_NO_THROW(softmax::softmax(empty_in, empty_out));
}

}  // namespace
}  // namespace stest
