// softmax::convert: one rounding from the exact value, checked against the definition (the
// nearest representable value, ties to even) by enumerating the neighbours of each result.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "softmax/convert.hpp"
#include "softmax/error.hpp"
#include "softmax/shape.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TensorView;

// Value of a bf16 / f16 bit pattern, computed from the fields (independent of the library).
double bf16_value(uint16_t h) {
  uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
double f16_value(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : s * INFINITY;
  if (e == 0) return s * std::ldexp(m, -24);
  return s * std::ldexp(1024 + m, e - 25);
}

// h is the correctly rounded (nearest, ties to even) image of v among all finite patterns of
// the format, or +-inf when v is at or beyond the rounding boundary of the largest finite value.
template <class ValueFn>
void expect_nearest(double v, uint16_t h, ValueFn value, uint16_t max_finite, const char* fmt) {
  const double hv = value(h);
  const double top = value(max_finite), below = value(static_cast<uint16_t>(max_finite - 1));
  const double boundary = top + (top - below) / 2;  // halfway to the next (unrepresentable) step
  if (std::fabs(v) >= boundary) {
    EXPECT_TRUE(std::isinf(hv) && std::signbit(hv) == std::signbit(v)) << fmt << " " << v;
    return;
  }
  ASSERT_TRUE(std::isfinite(hv)) << fmt << " " << v;
  const double err = std::fabs(hv - v);
  const uint16_t mag = h & 0x7fff;
  for (int d : {-1, 1}) {
    const int nm = mag + d;
    if (nm < 0 || nm > max_finite) continue;
    const double nv = std::copysign(value(static_cast<uint16_t>(nm)), v);
    const double nerr = std::fabs(nv - v);
    EXPECT_LE(err, nerr) << fmt << " " << v << " -> " << hv << " but " << nv << " is nearer";
    if (err == nerr) EXPECT_EQ(mag & 1, 0) << fmt << " tie not to even at " << v;
  }
}

TEST(Convert, F64ToBf16AndF16RoundOnceFromTheExactValue) {
  std::mt19937_64 rng(42);
  std::vector<double> x;
  for (int i = 0; i < 20000; ++i) {
    const double m = std::uniform_real_distribution<double>(1.0, 2.0)(rng);
    const int e = std::uniform_int_distribution<int>(-30, 18)(rng);
    x.push_back((i & 1 ? -1 : 1) * std::ldexp(m, e));
  }
  // Values whose f32 rounding lands exactly on a bf16/f16 tie (double rounding traps).
  x.push_back(1.0 + 0x1p-8 + 0x1p-30);   // just above a bf16 tie: must round up
  x.push_back(1.0 + 0x1p-11 + 0x1p-40);  // just above an f16 tie
  x.push_back(65519.99);
  x.push_back(65520.0);
  x.push_back(3.0e-8);  // f16 subnormal range
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> b(x.size()), h(x.size());
  softmax::convert(ConstTensorView(x.data(), {n}), TensorView(b.data(), DType::bf16, {n}));
  softmax::convert(ConstTensorView(x.data(), {n}), TensorView(h.data(), DType::f16, {n}));
  for (std::size_t i = 0; i < x.size(); ++i) {
    expect_nearest(x[i], b[i], bf16_value, 0x7f7f, "bf16");
    expect_nearest(x[i], h[i], f16_value, 0x7bff, "f16");
  }
  EXPECT_EQ(b[n - 5], 0x3f81);  // 1 + 2^-7: the tie broken by the bits beyond f32
  EXPECT_EQ(h[n - 4], 0x3c01);
}

TEST(Convert, StridedSpecialValuesAndErrors) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> x = {1.5, -inf, inf, std::nan(""), -0.0, 1e300};
  std::vector<float> y(12, 7.0f);
  // y as (3, 2) with a column stride of 2: every other element.
  softmax::convert(ConstTensorView(x.data(), DType::f64, {3, 2}, {2, 1}),
                   TensorView(y.data(), DType::f32, {3, 2}, {4, 2}));
  EXPECT_EQ(y[0], 1.5f);
  EXPECT_EQ(y[1], 7.0f);  // untouched
  EXPECT_EQ(y[2], -INFINITY);
  EXPECT_EQ(y[4], INFINITY);
  EXPECT_TRUE(std::isnan(y[6]));
  EXPECT_TRUE(y[8] == 0.0f && std::signbit(y[8]));
  EXPECT_EQ(y[10], INFINITY);
  std::vector<int64_t> ints(6);
  EXPECT_THROW(
      softmax::convert(ConstTensorView(x.data(), {6}), TensorView(ints.data(), DType::i64, {6})),
      softmax::Error);
  EXPECT_THROW(softmax::convert(ConstTensorView(x.data(), {6}), TensorView(y.data(), {5})),
               softmax::Error);
  std::vector<int32_t> labels = {3, -2};
  std::vector<double> out(2);
  softmax::convert(ConstTensorView(labels.data(), DType::i32, {2}), TensorView(out.data(), {2}));
  EXPECT_EQ(out[0], 3.0);
  EXPECT_EQ(out[1], -2.0);
}

TEST(Shape, AxisAndReducedShape) {
  EXPECT_EQ(softmax::normalize_axis(-1, 3), 2);
  EXPECT_EQ(softmax::normalize_axis(0, 1), 0);
  EXPECT_THROW(softmax::normalize_axis(3, 3), softmax::Error);
  EXPECT_THROW(softmax::normalize_axis(0, 0), softmax::Error);
  const std::vector<int64_t> s = {2, 3, 4};
  EXPECT_EQ(softmax::reduced_shape(s, 1, false), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(softmax::reduced_shape(s, 1, true), (std::vector<int64_t>{2, 1, 4}));
}

}  // namespace
