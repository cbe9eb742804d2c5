// tests/cuda/row_spec.hpp: the CUDA rows kernels' reduction order (src/cuda/softmax_rows.cuh)
// written as sequential host code over the same arithmetic (src/cuda/numerics.cuh). The GPU
// kernels evaluate exps in parallel but add them in exactly this order; numerics_host_test
// checks this order against the CPU library bit for bit, without a GPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "src/cpu/kernels.hpp"
#include "src/cuda/numerics.cuh"

namespace spec {

namespace num = softmax::cuda::num;
constexpr int kBlock = 2048, kChunk = 32768;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Stats {
  double max = -kInf, sum = 0, ones = 0, rest = 0;
  bool nan = false;
  bool special() const { return nan || !(max > -kInf && max < kInf); }
};

struct Params {
  num::InvT<float> it32;
  num::InvT<double> it64;
  double t;
};
inline Params make_params(double temperature) {
  const auto tp = softmax::cpu::MakeTemperature(temperature);
  Params p;
  p.it64 = {tp.inv, tp.inv_lo, tp.t, tp.mode()};
  const float hi = static_cast<float>(tp.inv);
  const float lo = static_cast<float>((tp.inv - static_cast<double>(hi)) + tp.inv_lo);
  p.it32 = {hi, lo, 0.0f, tp.scaled() ? 1 : 0};
  p.t = tp.t;
  return p;
}
template <class S>
const num::InvT<S>& inv(const Params& p) {
  if constexpr (sizeof(S) == 4)
    return p.it32;
  else
    return p.it64;
}

// One block: 16 lanes, element i into lane i mod 16 in element order.
template <class S, class C>
void block_sum(C* x, int len, double m, const num::InvT<S>& it, bool split, bool store,
               double& rest, double& ones) {
  double acc[16] = {}, comp[16] = {};
  ones = 0;
  for (int i = 0; i < len; ++i) {
    S a, lo;
    num::shifted_arg(static_cast<S>(x[i]), -static_cast<S>(m), it, a, lo);
    S e = num::exp_nonpositive(a, lo);
    if (store) x[i] = static_cast<C>(e);
    if (split && e == S(1)) {
      ones += 1;
      e = 0;
    }
    if constexpr (sizeof(S) == 8) {
      double l;
      acc[i % 16] = num::two_sum(acc[i % 16], static_cast<double>(e), l);
      comp[i % 16] += l;
    } else {
      acc[i % 16] = acc[i % 16] + static_cast<double>(e);
    }
  }
  if constexpr (sizeof(S) == 8) {
    double s = 0, err = 0;
    for (int j = 0; j < 16; ++j) {
      double l;
      const double hi = num::two_sum(s, acc[j], l);
      err += l + comp[j];
      s = hi;
    }
    rest = s + err;
  } else {
    for (int w = 8; w >= 1; w /= 2)
      for (int j = 0; j < w; ++j) acc[j] = acc[j] + acc[j + w];
    rest = acc[0];
  }
}

// One chunk (online over blocks for f32 without a known max); mrun: per block.
template <class S, class C>
Stats chunk(C* x, int len, double known, const Params& p, bool split, bool store,
            std::vector<double>& mrun) {
  const int nb = (len + kBlock - 1) / kBlock;
  const bool online = sizeof(S) == 4 && std::isnan(known);
  std::vector<double> bmax(nb);
  Stats st;
  double m = -kInf;
  for (int b = 0; b < nb; ++b) {
    double bm = -kInf;
    for (int i = b * kBlock; i < std::min(len, (b + 1) * kBlock); ++i) {
      if (x[i] != x[i])
        st.nan = true;
      else if (x[i] > bm)
        bm = x[i];
    }
    bmax[b] = std::isnan(known) ? bm : known;
    m = std::max(m, bmax[b]);
    mrun.push_back(online ? m : 0.0);
  }
  if (st.nan) return st;
  if (!std::isnan(known)) m = known;
  if (!online)
    for (int b = 0; b < nb; ++b) mrun[mrun.size() - nb + b] = m;
  double rest = 0, rest_c = 0, ones = 0, mm = online ? -kInf : m;
  for (int b = 0; b < nb; ++b) {
    const double mb = mrun[mrun.size() - nb + b];
    double br = 0, bo = 0;
    C* xb = x + b * kBlock;
    const int lb = std::min(kBlock, len - b * kBlock);
    if (mb > -kInf && mb < kInf)
      block_sum<S>(xb, lb, mb, inv<S>(p), split, store, br, bo);
    else if (store)
      for (int i = 0; i < lb; ++i) xb[i] = 0;
    if (online) {
      if (bmax[b] > mm) {
        if (ones + rest + rest_c != 0.0) {
          rest = (ones + (rest + rest_c)) * num::exp_diff(mm, bmax[b], p.it64);
          rest_c = 0;
          ones = 0;
        }
        mm = bmax[b];
      }
      if (!(mm > -kInf && mm < kInf)) continue;
    } else if (!(mm > -kInf && mm < kInf)) {
      continue;
    }
    rest = num::two_sum_acc(rest, br, rest_c);
    ones += bo;
  }
  rest += rest_c;
  st.max = mm;
  st.sum = ones + rest;
  st.ones = ones;
  st.rest = rest;
  return st;
}

inline Stats merge(const std::vector<Stats>& parts, const Params& p) {
  Stats r;
  for (const auto& c : parts) {
    r.nan = r.nan || c.nan;
    if (c.max > r.max) r.max = c.max;
  }
  if (r.special()) return r;
  double sc = 0, rc = 0;
  for (const auto& c : parts) {
    if (c.max == -kInf) continue;
    if (c.max == r.max) {
      r.sum = num::two_sum_acc(r.sum, c.sum, sc);
      r.ones += c.ones;
      r.rest = num::two_sum_acc(r.rest, c.rest, rc);
    } else {
      const double f = num::exp_diff(c.max, r.max, p.it64);
      r.sum = num::two_sum_acc(r.sum, c.sum * f, sc);
      r.rest = num::two_sum_acc(r.rest, c.sum * f, rc);
    }
  }
  r.sum += sc;
  r.rest += rc;
  return r;
}

// Row statistics over all chunks. C: compute type of the row (float or double).
template <class S, class C>
Stats row(C* x, int n, double known, const Params& p, bool split, bool store,
          std::vector<double>& mrun) {
  std::vector<Stats> parts;
  for (int c = 0; c == 0 || c * kChunk < n; ++c) {
    parts.push_back(
        chunk<S>(x + c * kChunk, std::min(kChunk, n - c * kChunk), known, p, split, store, mrun));
  }
  return merge(parts, p);
}

// softmax (mode 0) / log_softmax (1) / logsumexp (2) of one row of compute values, in the
// compute type C, as the GPU computes it. Output values of C (logsumexp: out[0], as f64).
template <class C>
std::vector<double> run(std::vector<C> x, int mode, double temperature) {
  const Params p = make_params(temperature);
  const int n = static_cast<int>(x.size());
  const std::vector<C> x0 = x;
  std::vector<double> mrun;
  Stats st;
  constexpr bool kF64 = sizeof(C) == 8;
  if (kF64 && n > kChunk) {  // f64 rows find the row max first
    std::vector<Stats> maxes;
    for (int c = 0; c * kChunk < n; ++c) {
      Stats s;
      for (int i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
        if (x[i] != x[i])
          s.nan = true;
        else if (x[i] > s.max)
          s.max = x[i];
      }
      maxes.push_back(s);
    }
    Stats pre;
    for (const auto& s : maxes) {
      pre.nan = pre.nan || s.nan;
      pre.max = std::max(pre.max, s.max);
    }
    st = pre.special() ? pre : row<double>(x.data(), n, pre.max, p, mode != 0, mode == 0, mrun);
  } else if (kF64) {
    st = row<double>(x.data(), n, std::nan(""), p, mode != 0, mode == 0, mrun);
  } else {
    st = row<float>(x.data(), n, std::nan(""), p, false, mode == 0, mrun);
    if (mode != 0 && !st.special() && st.rest < softmax::cpu::kSplitOnesBelow) {
      std::vector<C> xx = x0;
      std::vector<double> unused;
      st = row<double>(xx.data(), n, st.max, p, true, false, unused);
    }
  }
  std::vector<double> out;
  if (mode == 2) {
    double v = st.nan ? std::nan("")
               : !(st.max > -kInf && st.max < kInf)
                   ? st.max
                   : num::logsumexp_of(st.max, st.ones, st.rest, p.t, kF64);
    out.push_back(v);
    return out;
  }
  out.resize(n);
  if (st.special()) {
    for (auto& v : out) v = std::nan("");
    return out;
  }
  if (mode == 0) {
    for (int i = 0; i < n; ++i) {
      const double mb = mrun[i / kBlock];
      const double rescale = mb == st.max ? 1.0 : num::exp_diff(mb, st.max, p.it64);
      const C e = x[i];
      out[i] = kF64 && rescale == 1.0 ? e / static_cast<C>(st.sum)
                                      : e * static_cast<C>(rescale / st.sum);
    }
    return out;
  }
  const C l = static_cast<C>(num::log_of_sum(st.ones, st.rest));
  const auto& it = inv<C>(p);
  for (int i = 0; i < n; ++i) {
    C v;
    if (it.variant == 0) {
      v = (x0[i] + -static_cast<C>(st.max)) - l;
    } else {
      C a, lo;
      num::shifted_arg(x0[i], -static_cast<C>(st.max), it, a, lo);
      if (a == -static_cast<C>(kInf)) lo = 0;
      v = (a - l) + lo;
    }
    out[i] = v;
  }
  return out;
}

}  // namespace spec
