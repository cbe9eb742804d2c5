// Tests of src/base/timing.hpp, the measuring loop of `softmax bench` and bench/cpu_compare:
// both copies move exactly the bytes asked for (every length and misalignment around a vector),
// the logits are in range and the bf16 ones are the f32 ones rounded, and interleave() runs
// every implementation the stated number of times in shuffled turns over one shared cursor and
// reports statistics that order a slower implementation after a faster one.
#include "src/base/timing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace {

namespace tm = softmax::timing;

TEST(Timing, CopiesMoveExactlyTheBytesAskedFor) {
  std::vector<unsigned char> src(600), dst(600);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 7 + 3);
  for (tm::CopyKind kind : {tm::CopyKind::libc, tm::CopyKind::streaming}) {
    for (int threads : {1, 2}) {
      for (std::size_t off : {0, 1, 13, 63}) {
        for (std::size_t len : {0, 1, 15, 64, 65, 127, 200, 511}) {
          std::fill(dst.begin(), dst.end(), 0xAB);
          tm::parallel_copy(dst.data() + off, src.data() + 5, len, threads, kind);
          for (std::size_t i = 0; i < dst.size(); ++i) {
            const bool inside = i >= off && i < off + len;
            ASSERT_EQ(dst[i], inside ? src[5 + i - off] : 0xAB)
                << "kind " << static_cast<int>(kind) << " threads " << threads << " off " << off
                << " len " << len << " byte " << i;
          }
        }
      }
    }
  }
}

TEST(Timing, LogitsAreInRangeAndBf16IsTheRoundedF32) {
  constexpr int64_t n = 4096;
  std::vector<float> f(n);
  std::vector<uint16_t> h(n);
  tm::fill_logits(f.data(), 4, n);
  tm::fill_logits(h.data(), 2, n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_GE(f[i], -8.0f);
    ASSERT_LT(f[i], 8.0f);
    ASSERT_EQ(h[i], tm::f32_to_bf16(f[i])) << i;
  }
  EXPECT_EQ(tm::f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(tm::f32_to_bf16(1.00390625f), 0x3F80);  // a tie: to even
  EXPECT_EQ(tm::f32_to_bf16(1.01171875f), 0x3F82);  // a tie: to even, upwards
}

TEST(Timing, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(tm::median_of({3, 1, 2}), 2);
  EXPECT_EQ(tm::median_of({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(tm::median_of({}), 0);
}

TEST(Timing, InterleaveRunsEveryImplementationInSharedTurns) {
  constexpr int kRounds = 7;
  constexpr int64_t kPairs = 5;
  std::vector<int64_t> pairs_seen;  // every call of every impl, in order
  std::vector<int> calls(3, 0), befores(3, 0), afters(3, 0);
  std::vector<int> order;  // which impl ran each batch
  std::vector<tm::Impl> impls;
  for (int k = 0; k < 3; ++k) {
    impls.push_back({[&, k](int64_t p) {
                       pairs_seen.push_back(p);
                       ++calls[k];
                       if (k == 2) std::this_thread::sleep_for(std::chrono::microseconds(300));
                     },
                     [&, k] {
                       ++befores[k];
                       order.push_back(k);
                     },
                     [&, k] { ++afters[k]; }});
  }
  tm::InterleaveOptions o;
  o.pairs = kPairs;
  o.min_rounds = o.max_rounds = kRounds;
  o.batch_seconds = 1e-3;
  o.warmup_calls = 2;
  const std::vector<tm::Stats> st = tm::interleave(impls, o);
  ASSERT_EQ(st.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(st[k].rounds, kRounds);
    EXPECT_GE(st[k].calls_per_round, 1);
    // warm-up calls, one sizing call, then kRounds batches
    EXPECT_EQ(calls[k], o.warmup_calls + 1 + kRounds * st[k].calls_per_round) << k;
    EXPECT_EQ(befores[k], o.warmup_calls + 1 + kRounds) << k;
    EXPECT_EQ(afters[k], befores[k]) << k;
    EXPECT_LE(st[k].min, st[k].median);
    EXPECT_LE(st[k].median, st[k].max);
  }
  // The sleeping impl is slower per call, and its batches are sized down to about 1 ms.
  EXPECT_GT(st[2].median, st[0].median);
  EXPECT_GE(st[2].median, 300e-6);
  EXPECT_LE(st[2].calls_per_round, 4);
  // One cursor for everyone: consecutive calls walk 0, 1, ..., kPairs - 1, 0, ...
  for (std::size_t i = 0; i < pairs_seen.size(); ++i) {
    ASSERT_EQ(pairs_seen[i], static_cast<int64_t>(i % kPairs)) << i;
  }
  // Each timed round runs every impl once, and the order is not the same in every round.
  const std::size_t first_round = 3 * static_cast<std::size_t>(o.warmup_calls + 1);
  ASSERT_EQ(order.size(), first_round + 3 * kRounds);
  bool orders_differ = false;
  for (int r = 0; r < kRounds; ++r) {
    std::vector<int> round(order.begin() + first_round + 3 * r,
                           order.begin() + first_round + 3 * (r + 1));
    std::vector<int> sorted = round;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2})) << "round " << r;
    const auto first =
        std::vector<int>(order.begin() + first_round, order.begin() + first_round + 3);
    orders_differ = orders_differ || round != first;
  }
  EXPECT_TRUE(orders_differ);
}

TEST(Timing, InterleaveKeepsGoingUntilMinSeconds) {
  int calls = 0;
  tm::InterleaveOptions o;
  o.min_rounds = 2;
  o.min_seconds = 0.05;
  o.batch_seconds = 1e-3;
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = tm::interleave({{[&](int64_t) {
                                     ++calls;
                                     std::this_thread::sleep_for(std::chrono::microseconds(200));
                                   },
                                   {},
                                   {}}},
                                 o);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(wall, 0.05);
  EXPECT_GT(st[0].rounds, 2);  // min_seconds, not min_rounds, ended it
  EXPECT_EQ(calls, o.warmup_calls + 1 + st[0].rounds * st[0].calls_per_round);
}

}  // namespace
