// tests/cpu/philox_test.cc: Philox-4x32-10 (src/core/philox.hpp) against Random123's published
// known-answer vectors (Salmon et al. 2011, Random123 tests/kat_vectors), and the counter layout
// used by sampling.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "src/core/philox.hpp"

namespace {
using softmax::detail::philox4x32_10;
using softmax::detail::PhiloxCounter;

TEST(Philox, Random123KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}),
            (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Philox, CompileTimeEvaluable) {
  constexpr PhiloxCounter c = philox4x32_10({0, 0, 0, 0}, {0, 0});
  static_assert(c[0] == 0x6627e8d5u);
}

// Every field of the sampling key layout reaches the output: (seed, offset, stream, draw) each
// changed alone gives a new value, and the documented word layout holds.
TEST(Philox, SamplingLayout) {
  using softmax::detail::philox_u64;
  const uint64_t seed = 0x0123456789abcdefULL, offset = 0xfedcba9876543210ULL;
  const PhiloxCounter block =
      philox4x32_10({7, 5, static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  EXPECT_EQ(philox_u64(seed, offset, 5, 7), (uint64_t{block[1]} << 32) | block[0]);
  std::set<uint64_t> seen;
  seen.insert(philox_u64(seed, offset, 5, 7));
  seen.insert(philox_u64(seed ^ (uint64_t{1} << 40), offset, 5, 7));
  seen.insert(philox_u64(seed, offset ^ (uint64_t{1} << 40), 5, 7));
  seen.insert(philox_u64(seed, offset, 6, 7));
  seen.insert(philox_u64(seed, offset, 5, 8));
  EXPECT_EQ(seen.size(), 5u);
}

// Uniform (0, 1) doubles: strictly inside, and the mean and the 16-bin histogram of 2^20 draws
// within 6 standard deviations (a false failure has probability < 1e-8).
TEST(Philox, OpenUniform) {
  using softmax::detail::philox_open01;
  constexpr int kN = 1 << 20;
  int bins[16] = {};
  double sum = 0;
  for (int i = 0; i < kN; ++i) {
    const double u = philox_open01(42, 0, static_cast<uint32_t>(i >> 10), static_cast<uint32_t>(i));
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ++bins[static_cast<int>(u * 16)];
  }
  EXPECT_NEAR(sum / kN, 0.5, 6 * std::sqrt(1.0 / 12 / kN));
  const double expect = kN / 16.0, sd = std::sqrt(kN * (1.0 / 16) * (15.0 / 16));
  for (int b = 0; b < 16; ++b) EXPECT_NEAR(bins[b], expect, 6 * sd) << "bin " << b;
}
}  // namespace
