// tests/cpu/exp_test.cc: the kernels' own exp (ExpNonPositive in src/cpu/row_ops-inl.h) against
// the long double reference. It is reached through the per-target kernel table: normalize()
// with max = 0, 1/T = 1, scale = 1 writes exp(x) * 1 = exp(x) exactly (the product by 1 and
// x - 0 are exact), so the f32 exp is measured directly on every SIMD target. The same exp
// is then checked through the public softmax of rows {0, a} with a <= -17.5, where the f32 row
// sum rounds to 1 and softmax(...)[1] is exp(a) itself.
#include <cmath>

#include "src/cpu/kernels.hpp"
#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

// ExpNonPositive's comment states 1 ulp (the first kernels measured 1.033 / 1.08: K7 in
// docs/kernel_bugs.md, fixed in the current ones: 0.886 / 0.843).
constexpr double kExpUlpBound = 1.0;

// f32 values in [-104, 0]: every `step`-th bit pattern, plus -104 and a value near the
// subnormal limit.
std::vector<float> SweepF32(uint32_t step) {
  std::vector<float> a;
  const uint32_t hi = softmax::detail::f32_bits(104.0f);
  for (uint32_t b = 0; b <= hi; b += step) a.push_back(-softmax::detail::bits_f32(b));
  a.push_back(-104.0f);
  a.push_back(-103.97208f);  // exp(a) near half the least subnormal
  return a;
}

std::vector<float> KernelExpF32(const std::vector<float>& a) {
  std::vector<float> y(a.size());
  softmax::cpu::kernels().normalize(
      a.data(), DType::f32, y.data(), DType::f32, static_cast<int64_t>(a.size()), 0.0,
      softmax::cpu::Temperature{}, 1.0, softmax::cpu::RowMode::kSoftmax);
  return y;
}

TEST(Exp, F32DenseSweepMaxUlp) {
  const auto a = SweepF32(211);    // ~5 million values; a step of 61 gave the same maximum
  const auto y = KernelExpF32(a);  // best target
  MaxErr all("exp f32 kernel, every 211th f32 in [-104, 0] (ulp)");
  MaxErr normal("exp f32 kernel, normal results a >= -87.33 (ulp)");
  for (std::size_t i = 0; i < a.size(); ++i) {
    const LD exact = std::exp(static_cast<LD>(a[i]));
    const double u = softmax::ref::ulp_error(y[i], exact);
    all.add(u, "a=" + Str(a[i]));
    if (a[i] >= -87.33f) normal.add(u, "a=" + Str(a[i]));
    // ExpNonPositive's comment: <= 1 ulp on [-104, 0] (subnormal results in subnormal ulps).
    if (u > kExpUlpBound) {
      ADD_FAILURE() << "a=" << a[i] << " got " << y[i] << " exact " << static_cast<double>(exact)
                    << " ulp " << u;
      break;
    }
  }
  EXPECT_EQ(y.back() >= 0.0f, true);
}

TEST(Exp, F32SameBitsOnEveryTarget) {
  const auto a = SweepF32(997);
  const auto want = KernelExpF32(a);
  ForEachTarget([&](const std::string&) {
    const auto y = KernelExpF32(a);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(y[i], want[i]) << "a=" << a[i];
  });
}

TEST(Exp, F32EdgeValues) {
  ForEachTarget([&](const std::string&) {
    const std::vector<float> a{
        0.0f, -0.0f, -104.0f, -105.0f, -1e30f, -3e38f, -std::numeric_limits<float>::infinity()};
    const auto y = KernelExpF32(a);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], 1.0f);
    EXPECT_EQ(y[2], 0.0f);  // exp(-104) < 2^-150: rounds to 0
    for (std::size_t i = 3; i < a.size(); ++i) EXPECT_EQ(y[i], 0.0f) << a[i];
  });
}

TEST(Exp, F64SampledMaxUlp) {
  std::mt19937_64 rng(51);
  auto a = Uniform(rng, 400000, -746, 0);
  auto b = Uniform(rng, 200000, -1, 0);
  a.insert(a.end(), b.begin(), b.end());
  MaxErr all("exp f64 kernel, sampled [-746, 0] (ulp)");
  const auto& k = softmax::cpu::kernels();
  std::vector<double> y(a.size());
  k.normalize(a.data(), DType::f64, y.data(), DType::f64, static_cast<int64_t>(a.size()), 0.0,
              softmax::cpu::Temperature{}, 1.0, softmax::cpu::RowMode::kSoftmax);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double u = softmax::ref::ulp_error(y[i], std::exp(static_cast<LD>(a[i])));
    all.add(u, "a=" + Str(a[i]));
    ASSERT_LE(u, kExpUlpBound) << "a=" << a[i];
    // exp_f64 (one lane of the same code) gives the same bits.
    if (i % 64 == 0) ASSERT_EQ(k.exp_f64(a[i]), y[i]);
  }
}

TEST(Exp, ThroughPublicSoftmaxOfTwoElementRows) {
  // Rows {0, a} with a in [-104, -17.5]: 1 + exp(a) rounds to 1 in f32, so p1 = exp(a) exactly
  // as the kernel computes it; and p0 = 1.
  const auto all = SweepF32(4099);
  MaxErr ulps("softmax f32 {0, a}[1] = exp(a), a in [-104, -17.5] (ulp)");
  ForEachTarget([&](const std::string&) {
    std::vector<float> rows, a;
    for (float v : all) {
      if (v > -17.5f) continue;
      a.push_back(v);
      rows.push_back(0.0f);
      rows.push_back(v);
    }
    const auto m = static_cast<int64_t>(a.size());
    std::vector<float> y(rows.size());
    softmax::softmax(ConstTensorView(rows.data(), {m, 2}), TensorView(y.data(), {m, 2}), Opts());
    const auto direct = KernelExpF32(a);
    for (int64_t i = 0; i < m; ++i) {
      ASSERT_EQ(y[2 * i], 1.0f);
      ASSERT_EQ(y[2 * i + 1], direct[i]) << "a=" << a[i];
      const double u = softmax::ref::ulp_error(y[2 * i + 1], std::exp(static_cast<LD>(a[i])));
      ulps.add(u, "a=" + Str(a[i]));
      ASSERT_LE(u, kExpUlpBound) << "a=" << a[i];
    }
  });
}

}  // namespace
}  // namespace stest
