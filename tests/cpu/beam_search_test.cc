// tests/cpu/beam_search_test.cc: beam_search_step (softmax/beam_search.hpp) against a full
// sort of every (beam, token) candidate (exact equality, ties included), and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "softmax/beam_search.hpp"
#include "softmax/error.hpp"

namespace {

using softmax::DType;

TEST(BeamSearch, MatchesFullSort) {
  std::mt19937 rng(4);
  for (const auto& [B, V, W] :
       {std::tuple<int64_t, int64_t, int64_t>{4, 1000, 4}, {1, 50, 3}, {8, 300, 8}, {3, 7, 10}}) {
    std::vector<float> lp(static_cast<std::size_t>(B * V));
    std::uniform_int_distribution<int> coarse(-40, 0);  // coarse values: many ties
    for (auto& e : lp) e = static_cast<float>(coarse(rng)) * 0.25f;
    lp[0] = -INFINITY;
    std::vector<double> scores(static_cast<std::size_t>(B));
    for (int64_t b = 0; b < B; ++b) scores[b] = -0.5 * static_cast<double>(b % 3);
    const int64_t m = 2 * W;
    if (m > B * V) continue;
    std::vector<int64_t> bi(static_cast<std::size_t>(m)), tk(static_cast<std::size_t>(m));
    std::vector<double> sc(static_cast<std::size_t>(m));
    softmax::beam_search_step(softmax::ConstTensorView(lp.data(), DType::f32, {B, V}),
                              softmax::ConstTensorView(scores.data(), DType::f64, {B}), W,
                              softmax::TensorView(bi.data(), DType::i64, {m}),
                              softmax::TensorView(tk.data(), DType::i64, {m}),
                              softmax::TensorView(sc.data(), DType::f64, {m}));
    std::vector<std::tuple<double, int64_t, int64_t>> all;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t v = 0; v < V; ++v) {
        all.emplace_back(-(scores[b] + static_cast<double>(lp[b * V + v])), b, v);
      }
    }
    std::sort(all.begin(), all.end());
    for (int64_t j = 0; j < m; ++j) {
      EXPECT_EQ(sc[j], -std::get<0>(all[j])) << j;
      EXPECT_EQ(bi[j], std::get<1>(all[j])) << j;
      EXPECT_EQ(tk[j], std::get<2>(all[j])) << j;
    }
  }
}

TEST(BeamSearch, Errors) {
  std::vector<float> lp{-1, -2, -3, -4};
  std::vector<float> s{0, 0};
  std::vector<int64_t> bi(4, -7), tk(4, -7);
  std::vector<float> sc(4, -7);
  auto call = [&](int64_t w, const std::vector<float>& l) {
    softmax::beam_search_step(softmax::ConstTensorView(l.data(), DType::f32, {2, 2}),
                              softmax::ConstTensorView(s.data(), DType::f32, {2}), w,
                              softmax::TensorView(bi.data(), DType::i64, {2 * w}),
                              softmax::TensorView(tk.data(), DType::i64, {2 * w}),
                              softmax::TensorView(sc.data(), DType::f32, {2 * w}));
  };
  EXPECT_THROW(call(0, lp), softmax::Error);
  EXPECT_THROW(call(1, {-1, NAN, -3, -4}), softmax::Error);
  EXPECT_THROW(call(1, {-1, INFINITY, -3, -4}), softmax::Error);
  EXPECT_THROW(call(2, {-1, -INFINITY, -3, -4}), softmax::Error);  // 3 finite < 4
  EXPECT_EQ(bi, std::vector<int64_t>(4, -7));
  call(2, lp);
  EXPECT_EQ(bi, (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(tk, (std::vector<int64_t>{0, 1, 0, 1}));
}

}  // namespace
