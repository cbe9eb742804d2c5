// tests/dist/layouts.hpp: shard layouts and mixed logit rows shared by the in-process
// vocabulary-parallel tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "softmax/dist.hpp"

namespace stest {

using softmax::dist::Shard;

// Shards of v classes cut at the sorted inner points.
inline std::vector<Shard> cut_layout(int64_t v, std::vector<int64_t> inner) {
  std::vector<int64_t> cuts{0};
  cuts.insert(cuts.end(), inner.begin(), inner.end());
  cuts.push_back(v);
  std::vector<Shard> s;
  for (std::size_t r = 0; r + 1 < cuts.size(); ++r) s.push_back({cuts[r], cuts[r + 1] - cuts[r]});
  return s;
}

// Whether every non-empty shard starts on a multiple of kShardAlign (the layouts on which the
// ops promise the single-process bits).
inline bool aligned(const std::vector<Shard>& layout) {
  for (const Shard& sh : layout) {
    if (sh.size > 0 && sh.offset % softmax::dist::kShardAlign != 0) return false;
  }
  return true;
}

// Named layouts of v classes over `ranks` ranks.
inline std::vector<std::pair<std::string, std::vector<Shard>>> layouts(int64_t v, int ranks,
                                                                       std::mt19937_64& rng) {
  std::vector<std::pair<std::string, std::vector<Shard>>> out;
  std::vector<Shard> def;
  for (int r = 0; r < ranks; ++r) def.push_back(softmax::dist::default_shard(v, r, ranks));
  out.emplace_back("default", def);
  if (ranks == 1) return out;
  std::vector<int64_t> even, random, one, empty;
  for (int r = 1; r < ranks; ++r) even.push_back(v * r / ranks);
  out.emplace_back("even", cut_layout(v, even));
  std::uniform_int_distribution<int64_t> cut(0, v);
  for (int r = 1; r < ranks; ++r) random.push_back(cut(rng));
  std::sort(random.begin(), random.end());
  out.emplace_back("random", cut_layout(v, random));
  for (int r = 1; r < ranks; ++r) one.push_back(std::min<int64_t>(r, v));  // one-class shards
  out.emplace_back("one-class", cut_layout(v, one));
  for (int r = 1; r < ranks; ++r) empty.push_back(r == 1 ? 0 : v / 2);  // rank 0 empty
  out.emplace_back("empty", cut_layout(v, empty));
  return out;
}

// Rows of several kinds: plain, ties across shards, near-certain, -inf entries, the first half
// all -inf (a shard of -inf), a wide spread, a flat row.
inline std::vector<double> make_logits(int64_t rows, int64_t v, std::mt19937_64& rng) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::normal_distribution<double> nd(0.0, 1.0);
  std::uniform_int_distribution<int> small(0, 3);
  std::vector<double> x(static_cast<std::size_t>(rows * v));
  for (int64_t r = 0; r < rows; ++r) {
    double* row = x.data() + r * v;
    const int kind = static_cast<int>(r % 7);
    for (int64_t i = 0; i < v; ++i) {
      switch (kind) {
        case 0: row[i] = 3.0 * nd(rng); break;
        case 1: row[i] = -static_cast<double>(small(rng)); break;  // many ties
        case 2: row[i] = nd(rng); break;
        case 3: row[i] = (i % 5 == 1) ? -kInf : 2.0 * nd(rng); break;
        case 4: row[i] = i < v / 2 ? -kInf : 1.5 * nd(rng); break;
        case 5: row[i] = 12.0 * nd(rng); break;
        default: row[i] = 0.25; break;  // flat
      }
    }
    if (kind == 2) row[(r * 7919) % v] = 30.0;  // near-certain
  }
  return x;
}

}  // namespace stest
