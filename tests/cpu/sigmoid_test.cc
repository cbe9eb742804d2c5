// tests/cpu/sigmoid_test.cc: elementwise sigmoid against the long double reference: <= 3 ulp
// (ops.hpp) over a dense f32 sweep and sampled f64, every target; special values; bf16/f16
// outputs rounded once; any rank, strided and in place.
#include <cmath>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

TEST(Sigmoid, DenseF32SweepAllTargets) {
  // Every 997th f32 in [-120, 120] (about 2.3 million values) plus both infinities.
  std::vector<float> x;
  const uint32_t hi = softmax::detail::f32_bits(120.0f);
  for (uint32_t b = 0; b <= hi; b += 997) {
    x.push_back(softmax::detail::bits_f32(b));
    x.push_back(-softmax::detail::bits_f32(b));
  }
  const auto n = static_cast<int64_t>(x.size());
  std::vector<float> y(x.size()), y0(x.size());
  MaxErr ulps("sigmoid f32 every 997th float in [-120, 120] (ulp)");
  bool first = true;
  ForEachTarget([&](const std::string&) {
    softmax::ElementwiseOptions o;
    o.threads = 1;
    softmax::sigmoid(ConstTensorView(x.data(), {n}), TensorView(y.data(), {n}), o);
    if (first) {
      for (int64_t i = 0; i < n; ++i) {
        const double u = softmax::ref::ulp_error(y[i], softmax::ref::sigmoid(x[i]));
        ulps.add(u, "x=" + Str(x[i]));
        if (u > 3) ADD_FAILURE() << "x=" << x[i] << " got " << y[i] << " ulp " << u;
      }
      y0 = y;
      first = false;
    } else {
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], y0[i]) << "x=" << x[i];  // bitwise
    }
  });
}

TEST(Sigmoid, SampledF64AndHalves) {
  std::mt19937_64 rng(41);
  auto v = Uniform(rng, 200000, -750, 750);
  auto w = Normal(rng, 200000, 5);
  v.insert(v.end(), w.begin(), w.end());
  const auto n = static_cast<int64_t>(v.size());
  MaxErr u64("sigmoid f64 sampled [-750, 750] (ulp)");
  std::vector<double> y(v.size());
  softmax::sigmoid(ConstTensorView(v.data(), {n}), TensorView(y.data(), {n}), {});
  for (int64_t i = 0; i < n; ++i) {
    const double u = softmax::ref::ulp_error(y[i], softmax::ref::sigmoid(v[i]));
    u64.add(u, "x=" + Str(v[i]));
    ASSERT_LE(u, 3.0) << "x=" << v[i];
  }
  // bf16/f16 in and out: f32 result rounded once.
  for (DTypePair p : AllPairs()) {
    if (p.x == DType::f64) continue;
    Buffer x = MakeBuffer(p.x, w);
    Buffer y32(DType::f32, static_cast<int64_t>(w.size())), yo(p.y, static_cast<int64_t>(w.size()));
    const int64_t m = static_cast<int64_t>(w.size());
    softmax::sigmoid(x.cview({m}), y32.view({m}), {});
    softmax::sigmoid(x.cview({m}), yo.view({m}), {});
    for (int64_t i = 0; i < m; ++i) {
      Buffer want(p.y, 1);
      want.set(0, y32.get(i));
      ASSERT_EQ(want.bits(0), yo.bits(i)) << PairName(p) << " x=" << x.get(i);
      ASSERT_LE(Ulp(DType::f32, y32.get(i), softmax::ref::sigmoid(x.get(i))), 3.0);
    }
  }
}

TEST(Sigmoid, SpecialValues) {
  ForEachTarget([&](const std::string&) {
    for (DTypePair p : AllPairs()) {
      const std::vector<double> v{0.0, kInf, -kInf, 0.0, -0.0, 1e30, -1e30, 88, -88, 17, -17};
      Buffer x = MakeBuffer(p.x, v);
      const auto n = static_cast<int64_t>(v.size());
      Buffer y(p.y, n);
      softmax::sigmoid(x.cview({n}), y.view({n}), {});
      EXPECT_EQ(y.get(1), 1.0) << PairName(p);
      EXPECT_EQ(y.get(2), 0.0) << PairName(p);
      EXPECT_EQ(y.get(3), 0.5) << PairName(p);
      EXPECT_EQ(y.get(4), 0.5) << PairName(p);
      if (std::isfinite(x.get(5))) {
        EXPECT_EQ(y.get(5), 1.0) << PairName(p);
        EXPECT_EQ(y.get(6), 0.0) << PairName(p);
      }
    }
  });
}

TEST(Sigmoid, NaNGivesNaN) {
  ForEachTarget([&](const std::string&) {
    for (DTypePair p : AllPairs()) {
      Buffer x = MakeBuffer(p.x, {kNaN, 1, -kNaN});
      Buffer y(p.y, 3);
      softmax::sigmoid(x.cview({3}), y.view({3}), {});
      EXPECT_TRUE(std::isnan(y.get(0))) << PairName(p);
      EXPECT_TRUE(std::isnan(y.get(2))) << PairName(p);
    }
  });
}

TEST(Sigmoid, RankZeroStridedInPlace) {
  float s = -1.5f, out = 0;
  softmax::sigmoid(ConstTensorView(&s, {}), TensorView(&out, {}), {});
  EXPECT_LE(softmax::ref::ulp_error(out, softmax::ref::sigmoid(-1.5L)), 3.0);
  // (3, 4) view of every other column of a (3, 8) buffer, negative row stride, into a
  // contiguous output; compare with the contiguous computation bitwise.
  std::mt19937_64 rng(42);
  const auto v = Normal(rng, 24, 4);
  std::vector<float> buf(v.begin(), v.end());
  std::vector<float> y(12), want(12), dense(12);
  ConstTensorView xv(buf.data() + 16, DType::f32, {3, 4}, {-8, 2});
  softmax::sigmoid(xv, TensorView(y.data(), {3, 4}), {});
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) dense[r * 4 + c] = buf[16 - 8 * r + 2 * c];
  }
  softmax::sigmoid(ConstTensorView(dense.data(), {3, 4}), TensorView(want.data(), {3, 4}), {});
  EXPECT_EQ(y, want);
  softmax::sigmoid(ConstTensorView(dense.data(), {12}), TensorView(dense.data(), {12}), {});
  EXPECT_EQ(dense, want);  // in place
  // Empty: no-op.
  EXPECT_NO_THROW(
      softmax::sigmoid(ConstTensorView(dense.data(), {0, 3}), TensorView(want.data(), {0, 3}), {}));
}

}  // namespace
}  // namespace stest
