// src/core/philox.hpp: the Philox-4x32-10 counter-based random number generator.
//
// Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011 (the
// Random123 library). A bijection of a 128-bit counter under a 64-bit key: ten rounds of two
// 32x32->64 multiplications, a xor with the key, and a Weyl increment of the key. Output is a
// pure function of (counter, key), so any stream position is reached in O(1) and results do not
// depend on threads or call order. Checked against Random123's known-answer vectors
// (tests/cpu/philox_test.cc).
#pragma once

#include <array>
#include <cstdint>

namespace softmax::detail {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // round multipliers
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // key increments (golden ratio, sqrt(3)-1)
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
inline constexpr int kPhiloxRounds = 10;

// Philox-4x32-10: the 128-bit block for `counter` under `key`.
constexpr PhiloxCounter philox4x32_10(PhiloxCounter c, PhiloxKey k) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) {
      k[0] += kPhiloxW0;
      k[1] += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c[2];
    const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  }
  return c;
}

// Draw word that no sampling call uses (token ids are < 2^32 - 1): it derives stream keys.
inline constexpr uint32_t kPhiloxKeyDraw = 0xFFFFFFFFu;

// The sampling key layout (documented in softmax/sampling.hpp): key = seed when stream < 2^32,
// else the first 64 bits of the block of counter (2^32 - 1, stream high 32 bits, 0, 0) under
// key seed (distinct for distinct high words, as the block is a bijection of the counter);
// counter = (draw, stream low 32 bits, offset low 32 bits, offset high 32 bits). Returns the
// first 64 bits of the block, word 1 high: a uniform 64-bit integer.
inline uint64_t philox_u64(uint64_t seed, uint64_t offset, uint64_t stream, uint32_t draw) {
  PhiloxKey key{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  if (const auto hi = static_cast<uint32_t>(stream >> 32); hi != 0) {
    const PhiloxCounter k = philox4x32_10({kPhiloxKeyDraw, hi, 0, 0}, key);
    key = {k[0], k[1]};
  }
  const PhiloxCounter out =
      philox4x32_10({draw, static_cast<uint32_t>(stream), static_cast<uint32_t>(offset),
                     static_cast<uint32_t>(offset >> 32)},
                    key);
  return (static_cast<uint64_t>(out[1]) << 32) | out[0];
}

// A uniform double in the open interval (0, 1): (top 53 bits + 1/2) * 2^-53.
inline double philox_open01(uint64_t seed, uint64_t offset, uint64_t stream, uint32_t draw) {
  const uint64_t u = philox_u64(seed, offset, stream, draw) >> 11;
  return (static_cast<double>(u) + 0.5) * 0x1.0p-53;
}

}  // namespace softmax::detail
