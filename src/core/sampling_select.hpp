// src/core/sampling_select.hpp: the exact, sort-free filters and draws of sampling
// (softmax/sampling.hpp) on one row of weights. Scalar integer code, so every SIMD target and
// thread count gives the same bits.
//
// Shapes: w: (n) weights of one row, W = float (f32/bf16/f16 rows) or double (f64 rows), every
// w_i finite and >= 0 (-0 counts as 0), w_max = max_i w_i > 0. 1 <= n < 2^32.
//
// Order: tokens sorted by (weight desc, id asc). The weight's bit pattern (sign cleared) is an
// order-preserving integer key. Every filter keeps a prefix of that order, described by a
// threshold key tau and a tie count c: {key > tau} + the c lowest ids with key == tau.
//
// Masses: q_i = floor(w_i * 2^(62 - e)), 2^(e-1) <= w_max < 2^e, so 2^61 <= q_max < 2^62 and
// any sum over n < 2^32 tokens fits in 128 bits exactly. Exact integer sums make the outcome of
// every comparison independent of summation order: the radix select below returns exactly the
// set a sort + prefix sum over the same q would.
//
// Algorithm (after FlashInfer's sort-free top-k / top-p sampling, which replaces sorting by
// threshold searches over the weights; here the search is a radix select on the float bits):
//  1. Level 1 (one pass over the row): histogram of the top 12 key bits, with counts and (for
//     top-p alone) masses. Walking it from the top locates the bucket B holding the first
//     filter's boundary.
//  2. One pass gathers the tokens with bucket >= B and w > 0 (id order): the candidate list,
//     which holds the whole kept set (usually a few hundred tokens).
//  3. Radix select on the list (8 key bits a level, from the top, narrowing to the boundary
//     digit; stops as soon as all survivors share one key) by count (top-k) or mass (top-p),
//     then a walk of the tied survivors in id order gives (tau, c).
//  4. A walk of the list applies the prefix and min-p, producing the kept tokens (id order)
//     and their mass S.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "src/core/philox.hpp"

namespace softmax::detail {

using u128 = unsigned __int128;

// What to filter; normalised: top_k 0 = off (and top_k >= n is off), top_p 1 = off, min_p 0 = off.
struct FilterSpec {
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
};

template <class W>
struct WeightTraits;
template <>
struct WeightTraits<float> {
  using Key = uint32_t;
  static constexpr int kBits = 32;
};
template <>
struct WeightTraits<double> {
  using Key = uint64_t;
  static constexpr int kBits = 64;
};

// Order-preserving key of a weight >= 0 (the sign bit of -0 cleared).
template <class W>
inline typename WeightTraits<W>::Key weight_key(W w) {
  typename WeightTraits<W>::Key k;
  std::memcpy(&k, &w, sizeof(k));
  return k & (std::numeric_limits<typename WeightTraits<W>::Key>::max() >> 1);
}

// Fixed-point scale of a row: q(w) = floor(w * s1 * s2), s1 * s2 = 2^(62 - e), split in two
// powers of two so neither overflows; both products are exact (or < 1 when they lose bits).
struct MassScale {
  double s1, s2;
  static MassScale for_max(double w_max) {
    const int e = std::ilogb(w_max) + 1;
    const int k = 62 - e;
    return MassScale{std::ldexp(1.0, k / 2), std::ldexp(1.0, k - k / 2)};
  }
  uint64_t q(double w) const { return static_cast<uint64_t>(w * s1 * s2); }
};

// ceil(p * m) exactly, for p in (0, 1) and m < 2^100.
inline u128 ceil_mul(double p, u128 m) {
  int ex = 0;
  const double f = std::frexp(p, &ex);  // p = f * 2^ex, f in [0.5, 1)
  const auto P = static_cast<uint64_t>(std::ldexp(f, 53));
  const int E = 53 - ex;  // p = P / 2^E, E >= 53
  const u128 a = static_cast<u128>(P) * static_cast<uint64_t>(m);
  const u128 b = static_cast<u128>(P) * static_cast<uint64_t>(m >> 64);
  const u128 hi = b + (a >> 64);  // P * m = hi * 2^64 + lo
  const auto lo = static_cast<uint64_t>(a);
  u128 q;
  bool rem;
  if (E >= 64) {
    const int s = E - 64;
    q = s >= 128 ? 0 : hi >> s;
    rem = lo != 0 || (s >= 128 ? hi != 0 : (hi & ((static_cast<u128>(1) << s) - 1)) != 0);
  } else {
    q = (hi << (64 - E)) | (lo >> E);
    rem = (lo & ((uint64_t{1} << E) - 1)) != 0;
  }
  return q + (rem ? 1 : 0);
}

// floor(s * u / 2^64) for s < 2^126: a uniform integer in [0, s) from a 64-bit uniform u.
inline u128 scale_uniform(u128 s, uint64_t u) {
  const u128 lo = static_cast<u128>(static_cast<uint64_t>(s)) * u;
  return static_cast<u128>(static_cast<uint64_t>(s >> 64)) * u + (lo >> 64);
}

// The Gumbel-max key of token `id` of weight wi > 0: log(w_i) - log(-log(u_i)) with
// u_i = philox_open01(seed, offset, stream, id) (draw_gumbel; the vocabulary-parallel sample).
inline double gumbel_key(double wi, uint64_t seed, uint64_t offset, uint64_t stream, uint32_t id) {
  const double u = philox_open01(seed, offset, stream, id);
  return std::log(wi) - std::log(-std::log(u));
}

// A prefix of the (key desc, id asc) order: {key > tau} + the first `ties` ids with key == tau.
template <class Key>
struct Prefix {
  bool all = true;  // the whole candidate list
  Key tau = 0;
  uint64_t ties = 0;
  u128 mass = 0;  // its mass
};

// The per-row engine, with its scratch (reused across rows by one thread).
template <class W>
class RowFilter {
 public:
  using Key = typename WeightTraits<W>::Key;
  static constexpr int kBits = WeightTraits<W>::kBits;
  static constexpr int kLevel1Bits = 12;
  static constexpr int kLevel1Shift = kBits - kLevel1Bits;
  static constexpr int kDigitBits = 8;

  // Kept tokens after filter(), in id order, with their masses; kept_mass = their sum (> 0).
  std::vector<uint32_t> kept_ids;
  std::vector<uint64_t> kept_q;
  u128 kept_mass = 0;

  // Applies the filters of `f` to w (n) whose maximum is w_max > 0 (see the file comment).
  void filter(const W* w, int64_t n, W w_max, const FilterSpec& f) {
    scale_ = MassScale::for_max(static_cast<double>(w_max));
    const bool top_k = f.top_k > 0 && f.top_k < n;
    const bool top_p = f.top_p < 1.0;
    const bool min_p = f.min_p > 0.0;
    const double t_min = f.min_p * static_cast<double>(w_max);

    // 1. Level 1: the bucket B of the first filter's boundary.
    uint32_t bucket = 0;
    u128 total = 0;
    if (top_k || top_p) {
      level1(w, n, /*with_mass=*/!top_k, total);
      const u128 goal = top_k ? static_cast<u128>(f.top_k) : ceil_mul(f.top_p, total);
      u128 acc = 0;
      for (uint32_t b = kLevel1Buckets; b-- > 0;) {
        acc += top_k ? static_cast<u128>(cnt_[b]) : mass_[b];
        if (acc >= goal) {
          bucket = b;
          break;
        }
      }
    } else if (min_p) {
      // Every kept w satisfies w >= t_min >= floor_W(t_min).
      W t = static_cast<W>(t_min);
      if (static_cast<double>(t) > t_min) t = std::nextafter(t, W(0));
      bucket = static_cast<uint32_t>(weight_key(t) >> kLevel1Shift);
    }
    // 2. The candidate list.
    gather(w, n, bucket);
    // 3, 4.
    finish(n, w_max, f, total, [&](std::size_t j) { return w[ids_[j]]; });
  }

  // filter() on an explicit candidate list instead of a whole row (the vocabulary-parallel
  // sample, src/dist/sampling.cc): ids (ascending, < 2^32) with their weights wl (each > 0)
  // of a row of n tokens whose maximum weight is w_max; `total`: the whole row's mass (read by
  // top-p without top-k only). The kept set is filter()'s on the row when the list holds the
  // row's first min(k, P) tokens in the (key desc, id asc) order (top-k; P: the tokens of
  // weight > 0), or the row's top-p prefix (top-p alone), or every kept token (neither): that
  // prefix of the row's order is then a prefix of the list's, and steps 3 and 4 depend on
  // nothing else.
  void filter_list(const uint32_t* ids, const W* wl, std::size_t len, int64_t n, W w_max,
                   const FilterSpec& f, u128 total) {
    scale_ = MassScale::for_max(static_cast<double>(w_max));
    ids_.assign(ids, ids + len);
    keys_.resize(len);
    q_.resize(len);
    list_mass_ = 0;
    for (std::size_t j = 0; j < len; ++j) {
      keys_[j] = weight_key(wl[j]);
      q_[j] = scale_.q(static_cast<double>(wl[j]));
      list_mass_ += q_[j];
    }
    finish(n, w_max, f, total, [&](std::size_t j) { return wl[j]; });
  }

  // Inverse-CDF draw from the kept tokens with a 64-bit uniform u: the first kept token whose
  // running mass exceeds floor(S * u / 2^64). Never a token with q = 0.
  int64_t draw(uint64_t u) const {
    const u128 r = scale_uniform(kept_mass, u);
    u128 acc = 0;
    for (std::size_t j = 0; j < kept_ids.size(); ++j) {
      acc += kept_q[j];
      if (acc > r) return kept_ids[j];
    }
    return kept_ids.back();  // unreachable: acc reaches S > r
  }

  // Gumbel-max draw: argmax over kept tokens with w > 0 of log(w_i) - log(-log(u_i)),
  // u_i = philox_open01(seed, offset, stream, id); the lowest id wins ties.
  int64_t draw_gumbel(const W* w, uint64_t seed, uint64_t offset, uint64_t stream) const {
    int64_t best = -1;
    double best_g = -std::numeric_limits<double>::infinity();
    for (uint32_t id : kept_ids) {
      const double wi = static_cast<double>(w[id]);
      if (!(wi > 0)) continue;
      const double g = gumbel_key(wi, seed, offset, stream, id);
      if (best < 0 || g > best_g) {
        best = id;
        best_g = g;
      }
    }
    return best;
  }

  // The candidate list of the last filter() (tests): ids in id order.
  const std::vector<uint32_t>& candidates() const { return ids_; }

 private:
  static constexpr uint32_t kLevel1Buckets = 1u << kLevel1Bits;
  static constexpr uint32_t kDigitBuckets = 1u << kDigitBits;

  // Steps 3 and 4 of filter() on the candidate list (ids_, keys_, q_, list_mass_); weight(j):
  // the weight of list entry j.
  template <class WeightAt>
  void finish(int64_t n, W w_max, const FilterSpec& f, u128 total, WeightAt weight) {
    const bool top_k = f.top_k > 0 && f.top_k < n;
    const bool top_p = f.top_p < 1.0;
    const bool min_p = f.min_p > 0.0;
    const double t_min = f.min_p * static_cast<double>(w_max);
    // 3. Exact boundary.
    Prefix<Key> pre;
    if (top_k) {
      pre = select<false>(static_cast<u128>(f.top_k));
      if (top_p) pre = select<true>(ceil_mul(f.top_p, pre.all ? list_mass_ : pre.mass));
    } else if (top_p) {
      pre = select<true>(ceil_mul(f.top_p, total));
    }
    // 4. Apply.
    kept_ids.clear();
    kept_q.clear();
    kept_mass = 0;
    uint64_t tie_seen = 0;
    for (std::size_t j = 0; j < ids_.size(); ++j) {
      const Key k = keys_[j];
      bool in = pre.all || k > pre.tau || (k == pre.tau && tie_seen++ < pre.ties);
      if (in && min_p) in = static_cast<double>(weight(j)) >= t_min;
      if (in) {
        kept_ids.push_back(ids_[j]);
        kept_q.push_back(q_[j]);
        kept_mass += q_[j];
      }
    }
  }

  void level1(const W* w, int64_t n, bool with_mass, u128& total) {
    cnt_.assign(kLevel1Buckets, 0);
    if (with_mass) {
      // Masses split in 32-bit halves summed in u64 (n < 2^32 terms of < 2^32 each: no
      // overflow), so the loop has no carry chain; recombined exactly per bucket below.
      lo_.assign(kLevel1Buckets, 0);
      hi_.assign(kLevel1Buckets, 0);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t b = static_cast<uint32_t>(weight_key(w[i]) >> kLevel1Shift);
        const uint64_t q = scale_.q(static_cast<double>(w[i]));
        ++cnt_[b];
        lo_[b] += q & 0xFFFFFFFFu;
        hi_[b] += q >> 32;
      }
      mass_.resize(kLevel1Buckets);
      for (uint32_t b = 0; b < kLevel1Buckets; ++b) {
        mass_[b] = (static_cast<u128>(hi_[b]) << 32) + lo_[b];
        total += mass_[b];
      }
    } else {
      for (int64_t i = 0; i < n; ++i) ++cnt_[weight_key(w[i]) >> kLevel1Shift];
    }
  }

  void gather(const W* w, int64_t n, uint32_t bucket) {
    ids_.clear();
    keys_.clear();
    q_.clear();
    list_mass_ = 0;
    const Key lo = std::max<Key>(static_cast<Key>(bucket) << kLevel1Shift, 1);  // w > 0
    for (int64_t i = 0; i < n; ++i) {
      const Key k = weight_key(w[i]);
      if (k >= lo) {
        const uint64_t q = scale_.q(static_cast<double>(w[i]));
        ids_.push_back(static_cast<uint32_t>(i));
        keys_.push_back(k);
        q_.push_back(q);
        list_mass_ += q;
      }
    }
  }

  // The shortest prefix of the list (key desc, id asc) whose measure (count, or mass when
  // kMass) reaches goal >= 1. `all` when the whole list falls short (top-k beyond the list).
  template <bool kMass>
  Prefix<Key> select(u128 goal) {
    Prefix<Key> out;
    const std::size_t L = ids_.size();
    if (!kMass && static_cast<u128>(L) < goal) {
      out.all = true;
      out.mass = list_mass_;
      return out;
    }
    out.all = false;
    cand_.resize(L);
    Key kmin = std::numeric_limits<Key>::max(), kmax = 0;
    for (std::size_t j = 0; j < L; ++j) {
      cand_[j] = static_cast<uint32_t>(j);
      kmin = std::min(kmin, keys_[j]);
      kmax = std::max(kmax, keys_[j]);
    }
    u128 rem = goal;      // measure still needed inside the current candidates
    u128 above_mass = 0;  // mass of tokens ranked above every candidate
    for (int shift = kBits - kDigitBits; shift >= 0 && kmin != kmax; shift -= kDigitBits) {
      uint32_t dcnt[kDigitBuckets] = {};
      u128 dmass[kDigitBuckets] = {};
      for (uint32_t j : cand_) {
        const auto dg = static_cast<uint32_t>((keys_[j] >> shift) & (kDigitBuckets - 1));
        ++dcnt[dg];
        dmass[dg] += q_[j];
      }
      u128 acc = 0;
      uint32_t bnd = 0;
      for (uint32_t b = kDigitBuckets; b-- > 0;) {
        const u128 m = kMass ? dmass[b] : static_cast<u128>(dcnt[b]);
        if (acc + m >= rem) {
          bnd = b;
          break;
        }
        acc += m;
        above_mass += dmass[b];
      }
      rem -= acc;
      next_.clear();
      kmin = std::numeric_limits<Key>::max();
      kmax = 0;
      for (uint32_t j : cand_) {
        if (static_cast<uint32_t>((keys_[j] >> shift) & (kDigitBuckets - 1)) == bnd) {
          next_.push_back(j);
          kmin = std::min(kmin, keys_[j]);
          kmax = std::max(kmax, keys_[j]);
        }
      }
      cand_.swap(next_);
    }
    // Every candidate now has key tau; take ties in id order until the goal is met.
    out.tau = keys_[cand_.front()];
    u128 acc = 0, tie_mass = 0;
    uint64_t c = 0;
    for (uint32_t j : cand_) {
      ++c;
      tie_mass += q_[j];
      acc += kMass ? static_cast<u128>(q_[j]) : 1;
      if (acc >= rem) break;
    }
    out.ties = c;
    out.mass = above_mass + tie_mass;
    return out;
  }

  MassScale scale_{1, 1};
  std::vector<uint32_t> cnt_;
  std::vector<u128> mass_;
  std::vector<uint64_t> lo_, hi_;
  std::vector<uint32_t> ids_;
  std::vector<Key> keys_;
  std::vector<uint64_t> q_;
  u128 list_mass_ = 0;
  std::vector<uint32_t> cand_, next_;
};

// RowFilter<double>::filter(w, n, w_max, FilterSpec{}) followed by draw(u), without building
// the candidate list: the same token (the kept tokens are then every w_i > 0 in id order, and a
// token with q_i = 0 cannot end the walk). weight(i) returns w_i (f64, >= 0; it is called
// several times per token, so it must return the same value each time). Two passes: the exact
// mass S (32-bit halves summed in u64 as level1 does; n < 2^32), then the walk to the first
// running mass > r.
template <class WeightAt>
int64_t draw_unfiltered(int64_t n, double w_max, uint64_t u, WeightAt weight) {
  const MassScale scale = MassScale::for_max(w_max);
  // q = floor(w * s1 * s2) < 2^62: the signed conversion is exact and cheaper than unsigned.
  auto q_of = [&](double w) {
    return static_cast<uint64_t>(static_cast<int64_t>(w * scale.s1 * scale.s2));
  };
  uint64_t lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t q = q_of(weight(i));
    lo += q & 0xFFFFFFFFu;
    hi += q >> 32;
  }
  const u128 r = scale_uniform((static_cast<u128>(hi) << 32) + lo, u);
  u128 acc = 0;
  int64_t last = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double wi = weight(i);
    if (!(wi > 0)) continue;
    last = i;
    acc += q_of(wi);
    if (acc > r) return i;
  }
  return last;  // unreachable: acc reaches S > r
}

}  // namespace softmax::detail
