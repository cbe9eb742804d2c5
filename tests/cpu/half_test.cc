// tests/cpu/half_test.cc: bf16 and f16 storage. Conversions (src/base/half.hpp, bit-identical to
// the kernels' vector conversions) against exact round-to-nearest-even in long double,
// exhaustively over all 2^16 values and every halfway point; fp32 accumulation (a 1000-wide
// uniform bf16 row gives 1/1000 rounded once, not 1/256); overflow of f16 outputs.
#include <cmath>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

using softmax::detail::bf16_to_f32;
using softmax::detail::bits_f32;
using softmax::detail::f16_to_f32;
using softmax::detail::f32_bits;
using softmax::detail::f32_to_bf16;
using softmax::detail::f32_to_f16;

// Exact round-to-nearest-even of v to a binary format (digits, min_exponent, largest finite).
LD RoundTo(LD v, int digits, int min_exp, LD max_finite) {
  if (std::isnan(v) || std::isinf(v) || v == 0) return v;
  const LD a = std::fabs(v);
  int e;
  std::frexp(a, &e);
  const int ue = std::max(e, min_exp) - digits;
  LD r = std::ldexp(std::nearbyint(std::ldexp(a, -ue)), ue);  // ties to even (default mode)
  // Overflow: rounds to inf when a >= max_finite + half an ulp of max_finite.
  if (r > max_finite) r = INFINITY;
  return v < 0 ? -r : r;
}
const LD kF16Max = 65504.0L;
const LD kBF16Max = std::ldexp(static_cast<LD>(255), 120);  // (2 - 2^-7) * 2^127

TEST(Half, F16ToF32AllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    const uint32_t e = (h >> 10) & 31, m = h & 1023;
    const double sign = (h & 0x8000) ? -1 : 1;
    if (e == 31) {
      if (m == 0)
        ASSERT_EQ(f, sign * INFINITY) << h;
      else
        ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    const double want = sign * (e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, int(e) - 25));
    ASSERT_EQ(f, want) << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
    // Round trip.
    ASSERT_EQ(f32_to_f16(f), h) << h;
  }
}

TEST(Half, BF16RoundTripAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(f32_bits(f), h << 16);
    if (!std::isnan(f))
      ASSERT_EQ(f32_to_bf16(f), h) << h;
    else
      ASSERT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f)))) << h;
  }
}

// Every halfway point between consecutive values (ties go to even), and its two neighbours.
TEST(Half, F16RoundingAtEveryHalfway) {
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float lo = f16_to_f32(static_cast<uint16_t>(h));
    const float hi = h + 1 < 0x7C00 ? f16_to_f32(static_cast<uint16_t>(h + 1)) : 65536.0f;
    const float mid = (lo + hi) / 2;  // exact in f32
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), -mid}) {
      const LD want = RoundTo(v, 11, -13, kF16Max);
      const float got = f16_to_f32(f32_to_f16(v));
      ASSERT_EQ(static_cast<LD>(got), want) << "v=" << v << " h=" << h;
    }
  }
  // Beyond the largest finite: 65520 (the halfway to 2^16) and above round to inf.
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(1e30f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e30f), 0xFC00);
  EXPECT_EQ(f32_to_f16(1e-30f), 0x0000);
  EXPECT_EQ(f32_to_f16(-1e-30f), 0x8000);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(Half, BF16RoundingAtEveryHalfway) {
  for (uint32_t h = 0; h < 0x7F80; ++h) {
    const uint32_t mid_bits = (h << 16) | 0x8000u;  // exactly halfway to the next bf16
    const float mid = bits_f32(mid_bits);
    for (float v : {mid, bits_f32(mid_bits - 1), bits_f32(mid_bits + 1), -mid}) {
      const LD want = RoundTo(v, 8, -125, kBF16Max);
      const float got = bf16_to_f32(f32_to_bf16(v));
      ASSERT_EQ(static_cast<LD>(got), want) << "v=" << v << " h=" << h;
    }
  }
}

TEST(Half, Bf16UniformThousandWideRowIsOneThousandthRoundedOnce) {
  // fp32 accumulation: the sum is exactly 1000, so each output is 1/1000 rounded once to bf16
  // (not 1/256, as a bf16 accumulator that stops growing at 256 would give).
  const LD exact = 1.0L / 1000;
  const auto want_bf16 = static_cast<float>(RoundTo(exact, 8, -125, kBF16Max));
  const auto want_f16 = static_cast<float>(RoundTo(exact, 11, -13, kF16Max));
  ForEachTarget([&](const std::string&) {
    for (double v : {0.0, 5.0, -300.0, 1e30}) {
      for (DTypePair p : {DTypePair{DType::bf16, DType::bf16}, DTypePair{DType::bf16, DType::f32},
                          DTypePair{DType::f16, DType::f16}, DTypePair{DType::f32, DType::bf16}}) {
        Buffer x = MakeBuffer(p.x, std::vector<double>(1000, v));
        if (!std::isfinite(x.get(0))) continue;
        Buffer y(p.y, 1000);
        softmax::softmax(x.cview({1000}), y.view({1000}), Opts());
        const double want = p.y == DType::bf16 ? want_bf16 : p.y == DType::f16 ? want_f16 : 0.001f;
        for (int64_t i = 0; i < 1000; ++i) {
          ASSERT_EQ(y.get(i), want) << PairName(p) << " v=" << v << " i=" << i;
        }
      }
    }
  });
  EXPECT_NE(want_bf16, 1.0f / 256);
}

TEST(Half, F16OutputOverflowAndUnderflow) {
  // log_softmax of {65504, -65504} in f16: -131008 overflows f16 and rounds to -inf; its
  // softmax is exactly {1, 0}. f16 inputs at the subnormal limit are read exactly.
  ForEachTarget([&](const std::string&) {
    Buffer x = MakeBuffer(DType::f16, {65504, -65504, std::ldexp(1.0, -24)});
    Buffer y(DType::f16, 3), y32(DType::f32, 3);
    softmax::log_softmax(x.cview({3}), y.view({3}), Opts());
    softmax::log_softmax(x.cview({3}), y32.view({3}), Opts());
    EXPECT_EQ(y.get(0), 0.0);
    EXPECT_EQ(y.get(1), -kInf);
    EXPECT_EQ(y32.get(1), -131008.0);
    EXPECT_EQ(y.get(2), -65504.0);  // 2^-24 - 65504 rounds to -65504 (f32, then f16)
    softmax::softmax(x.cview({3}), y.view({3}), Opts());
    EXPECT_EQ(y.get(0), 1.0);
    EXPECT_EQ(y.get(1), 0.0);
    EXPECT_EQ(y.get(2), 0.0);
    // Tiny probabilities become f16 subnormals, rounded once.
    Buffer x2 = MakeBuffer(DType::f32, {0, -10, -16, -17.5});
    Buffer y2(DType::f16, 4), y2w(DType::f32, 4);
    softmax::softmax(x2.cview({4}), y2.view({4}), Opts());
    softmax::softmax(x2.cview({4}), y2w.view({4}), Opts());
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_EQ(static_cast<uint16_t>(y2.bits(i)), f32_to_f16(static_cast<float>(y2w.get(i))));
    }
    EXPECT_GT(y2.get(2), 0.0);
    EXPECT_LT(y2.get(2), std::ldexp(1.0, -14));  // subnormal
  });
}

}  // namespace
}  // namespace stest
