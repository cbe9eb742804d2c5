// src/cuda/softmax_rows.cuh: device code of softmax / log_softmax / logsumexp rows.
//
// Reduction order (the CPU's, src/cpu/softmax_blocks-inl.h and softmax_stats_kernels.cc, so results
// are bit-identical): a row is cut into chunks of 32768 elements and each chunk into blocks of
// 2048; a block's exps are summed in f64 in 16 logical lanes (element j into lane j mod 16, each
// lane in element order) folded by a fixed tree; f32 rows combine blocks online in block order
// (running max, rescale when it grows), f64 rows relative to the row max; chunks merge in chunk
// order. The device evaluates the exps in parallel and only the f64 additions follow that order: in
// a warp, lane L owns elements L + 32 s of its block, and lane j < 16 adds its own exp and then
// lane j + 16's, which is lane j's chain j, j + 16, j + 32, ... of the CPU.
#pragma once

#include <cstdint>

#include "src/cuda/numerics.cuh"
#include "src/cuda/row_io.cuh"

namespace softmax::cuda::dev {

using num::InvT;
constexpr int kBlock = 2048;
constexpr int kChunk = 32768;
constexpr int kBlocksPerChunk = kChunk / kBlock;
constexpr unsigned kFull = 0xFFFFFFFFu;
constexpr double kInf = __builtin_huge_val();
constexpr double kSplitOnesBelow = 1.0 + 0x1.0p-20;  // cpu::kSplitOnesBelow

// Statistics of one chunk (cpu::ChunkStats) and of a merged row.
struct ChunkStatsD {
  double max, sum, ones, rest;
  int has_nan;
};

// Launch-wide parameters.
struct RowParams {
  InvT<float> it32;   // 1/T for f32 compute (the f32 pair of SplitInvT)
  InvT<double> it64;  // 1/T for f64 compute and for the rescale factors
  double t;           // T
  int mode;           // cpu::RowMode
  int y_kind;         // output storage: 0 f32, 1 f64, 2 bf16, 3 f16
};

template <class C>
__device__ __forceinline__ const InvT<C>& inv_t(const RowParams& p);
template <>
__device__ __forceinline__ const InvT<float>& inv_t<float>(const RowParams& p) {
  return p.it32;
}
template <>
__device__ __forceinline__ const InvT<double>& inv_t<double>(const RowParams& p) {
  return p.it64;
}

// Scratch of one chunk in shared memory (per chunk group).
struct ChunkScratch {
  double bmax[kBlocksPerChunk];  // each block's own max
  double mrun[kBlocksPerChunk];  // the max its exps are relative to
  double rest[kBlocksPerChunk];
  double ones[kBlocksPerChunk];
  int bnan[kBlocksPerChunk];
  ChunkStatsD stats;  // this chunk
  ChunkStatsD row;    // the merged row (filled by the strategies)
};

// A group of warps sharing one chunk: a single warp or the whole block.
struct WarpGroup {
  __device__ void sync() const { __syncwarp(); }
  __device__ int warp() const { return 0; }
  __device__ int warps() const { return 1; }
  __device__ bool leader() const { return (threadIdx.x & 31) == 0; }
};
struct BlockGroup {
  __device__ void sync() const { __syncthreads(); }
  __device__ int warp() const { return static_cast<int>(threadIdx.x >> 5); }
  __device__ int warps() const { return static_cast<int>(blockDim.x >> 5); }
  __device__ bool leader() const { return threadIdx.x == 0; }
};

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x & 31); }

// Max of the non-NaN elements of one block, and whether it holds a NaN (warp-wide result).
template <class Src, class C = typename Src::Value>
__device__ C warp_block_max(Src xs, int len, bool& has_nan) {
  C m = -static_cast<C>(kInf);
  bool nan = false;
  for (int i = lane_id(); i < len; i += 32) {
    const C v = xs[i];
    nan |= v != v;
    m = v > m ? v : m;
  }
  for (int off = 16; off >= 1; off >>= 1) {
    const C o = __shfl_xor_sync(kFull, m, off);
    m = o > m ? o : m;
  }
  has_nan = __any_sync(kFull, nan) != 0;
  return m;
}

struct BlockSum {
  double rest, ones;
};

// sum of exp((x - m) / T) over one block in the CPU's lane order (BlockExpSum). S: the exp's
// type (float: plain f64 lanes and a tree fold; double: compensated lanes and a sequential
// compensated fold). kSplitOnes: terms exactly 1 are counted apart. store_e: the exps replace
// the block's elements (as C). Every lane returns the result.
template <class S, bool kSplitOnes, class Src>
__device__ BlockSum warp_block_sum(Src xs, int len, double m, const InvT<S>& it, bool store_e) {
  using C = typename Src::Value;
  const int lane = lane_id();
  const S neg_m = -static_cast<S>(m);
  double acc = 0.0, comp = 0.0, ones = 0.0;
  auto add = [&](S e) {
    if constexpr (sizeof(S) == 8) {
      double lo;
      acc = num::two_sum(acc, static_cast<double>(e), lo);
      comp += lo;
    } else {
      acc = acc + static_cast<double>(e);
    }
  };
  for (int base = 0; base < len; base += 32) {
    const int i = base + lane;
    S e = S(0);
    if (i < len) {
      S a, lo;
      num::shifted_arg(static_cast<S>(xs[i]), neg_m, it, a, lo);
      e = num::exp_nonpositive(a, lo);
      if (store_e) xs.set(i, static_cast<C>(e));
      if (kSplitOnes && e == S(1)) {
        ones += 1.0;
        e = S(0);
      }
    }
    const S e_hi = __shfl_down_sync(kFull, e, 16);
    if (lane < 16) {
      add(e);
      add(e_hi);
    }
  }
  double rest;
  if constexpr (sizeof(S) == 8) {
    double s = 0.0, err = 0.0;
    for (int j = 0; j < 16; ++j) {
      const double a = __shfl_sync(kFull, acc, j);
      const double c = __shfl_sync(kFull, comp, j);
      double lo;
      const double hi = num::two_sum(s, a, lo);
      err += lo + c;
      s = hi;
    }
    rest = s + err;
  } else {
    for (int off = 8; off >= 1; off >>= 1) acc = acc + __shfl_down_sync(kFull, acc, off);
    rest = __shfl_sync(kFull, acc, 0);
  }
  for (int off = 16; off >= 1; off >>= 1) ones += __shfl_xor_sync(kFull, ones, off);
  return BlockSum{rest, ones};
}

// Statistics of one chunk held in shared memory (ChunkStatsT). S == float without a known max:
// online over blocks; otherwise relative to known_max (NaN: the chunk's own max). Results in
// s.stats and s.mrun[] (what each block's exps are relative to).
template <class S, bool kSplitOnes, class G, class Src>
__device__ void chunk_stats(G g, Src xs, int len, double known_max, const InvT<S>& it,
                            const InvT<double>& it64, bool store_e, ChunkScratch& s) {
  const int nb = (len + kBlock - 1) / kBlock;
  const bool online = sizeof(S) == 4 && num::is_nan(known_max);
  if (num::is_nan(known_max)) {
    for (int b = g.warp(); b < nb; b += g.warps()) {
      bool nan;
      const auto m = warp_block_max(xs.offset(b * kBlock), min(kBlock, len - b * kBlock), nan);
      if (lane_id() == 0) {
        s.bmax[b] = static_cast<double>(m);
        s.bnan[b] = nan;
      }
    }
    g.sync();
    if (g.leader()) {
      double mr = -kInf;
      int nan = 0;
      for (int b = 0; b < nb; ++b) {
        if (s.bnan[b]) {
          nan = 1;
          break;
        }
        mr = s.bmax[b] > mr ? s.bmax[b] : mr;
        s.mrun[b] = mr;
      }
      if (!online) {
        for (int b = 0; b < nb; ++b) s.mrun[b] = mr;
      }
      s.stats = ChunkStatsD{mr, 0.0, 0.0, 0.0, nan};
    }
  } else if (g.leader()) {
    for (int b = 0; b < nb; ++b) {
      s.mrun[b] = known_max;
      s.bmax[b] = known_max;
    }
    s.stats = ChunkStatsD{known_max, 0.0, 0.0, 0.0, 0};
  }
  g.sync();
  if (s.stats.has_nan) return;
  for (int b = g.warp(); b < nb; b += g.warps()) {
    const double mb = s.mrun[b];
    const Src xb = xs.offset(b * kBlock);
    const int lb = min(kBlock, len - b * kBlock);
    BlockSum bs{0.0, 0.0};
    if (mb > -kInf && mb < kInf) {
      bs = warp_block_sum<S, kSplitOnes>(xb, lb, mb, it, store_e);
    } else if (store_e) {
      for (int i = lane_id(); i < lb; i += 32) xb.set(i, 0);
    }
    if (lane_id() == 0) {
      s.rest[b] = bs.rest;
      s.ones[b] = bs.ones;
    }
  }
  g.sync();
  if (g.leader()) {
    double rest = 0.0, rest_c = 0.0, ones = 0.0, m = s.stats.max;
    if (online) {
      m = -kInf;
      for (int b = 0; b < nb; ++b) {
        const double bm = s.bmax[b];
        if (bm > m) {
          if (ones + rest + rest_c != 0.0) {
            const double f = num::exp_diff(m, bm, it64);
            rest = (ones + (rest + rest_c)) * f;
            rest_c = 0.0;
            ones = 0.0;
          }
          m = bm;
        }
        if (!(m > -kInf && m < kInf)) continue;
        rest = num::two_sum_acc(rest, s.rest[b], rest_c);
        ones += s.ones[b];
      }
    } else if (m > -kInf && m < kInf) {
      for (int b = 0; b < nb; ++b) {
        rest = num::two_sum_acc(rest, s.rest[b], rest_c);
        ones += s.ones[b];
      }
    }
    rest += rest_c;
    s.stats = ChunkStatsD{m, ones + rest, ones, rest, 0};
  }
  g.sync();
}

__device__ __forceinline__ bool row_special(const ChunkStatsD& r) {
  return r.has_nan || !(r.max > -kInf && r.max < kInf);
}

// Merges chunk partials in chunk order (merge_chunks in src/core/softmax_ops.cc). One thread.
template <class Get>
__device__ ChunkStatsD merge_chunks(Get part, int count, const InvT<double>& it64) {
  ChunkStatsD r{-kInf, 0.0, 0.0, 0.0, 0};
  for (int c = 0; c < count; ++c) {
    const ChunkStatsD p = part(c);
    r.has_nan = r.has_nan || p.has_nan;
    if (p.max > r.max) r.max = p.max;
  }
  if (row_special(r)) return r;
  double sum_c = 0.0, rest_c = 0.0;
  for (int c = 0; c < count; ++c) {
    const ChunkStatsD p = part(c);
    if (p.max == -kInf) continue;
    if (p.max == r.max) {
      r.sum = num::two_sum_acc(r.sum, p.sum, sum_c);
      r.ones += p.ones;
      r.rest = num::two_sum_acc(r.rest, p.rest, rest_c);
    } else {
      const double f = num::exp_diff(p.max, r.max, it64);
      r.sum = num::two_sum_acc(r.sum, p.sum * f, sum_c);
      r.rest = num::two_sum_acc(r.rest, p.sum * f, rest_c);
    }
  }
  r.sum += sum_c;
  r.rest += rest_c;
  return r;
}

// Writes one chunk's y from its shared-memory tile. softmax: the tile holds the exps (when
// have_e) or x (recomputed here); log_softmax: the tile holds x. `row` is the merged row.
template <class YS, class G, class Src>
__device__ void write_chunk(G g, Src xs, int len, const ChunkScratch& s, const ChunkStatsD& row,
                            double log_sum, bool have_e, const RowParams& p, typename YS::Mem* y) {
  using C = typename Src::Value;
  const InvT<C>& it = inv_t<C>(p);
  const int tid = g.warp() * 32 + lane_id();
  const int nt = g.warps() * 32;
  if (row_special(row)) {
    for (int i = tid; i < len; i += nt) y[i] = num::narrow_scalar(YS(), __builtin_nan(""));
    return;
  }
  if (p.mode == 0) {
    for (int i = tid; i < len; i += nt) {
      const int b = i / kBlock;
      const double mb = s.mrun[b];
      C e;
      if (have_e) {
        e = xs[i];
      } else if (mb > -kInf && mb < kInf) {
        C a, lo;
        num::shifted_arg(xs[i], -static_cast<C>(mb), it, a, lo);
        e = num::exp_nonpositive(a, lo);
      } else {
        e = C(0);
      }
      const double rescale = mb == row.max ? 1.0 : num::exp_diff(mb, row.max, p.it64);
      C v;
      if (sizeof(C) == 8 && rescale == 1.0)
        v = e / static_cast<C>(row.sum);
      else
        v = e * static_cast<C>(rescale / row.sum);
      y[i] = num::narrow(YS(), v);
    }
    return;
  }
  const C neg_m = -static_cast<C>(row.max);
  const C l = static_cast<C>(log_sum);
  for (int i = tid; i < len; i += nt) {
    C v;
    if (it.variant == 0) {
      v = (xs[i] + neg_m) - l;
    } else {
      C a, lo;
      num::shifted_arg(xs[i], neg_m, it, a, lo);
      if (a == -static_cast<C>(kInf)) lo = C(0);
      v = (a - l) + lo;
    }
    y[i] = num::narrow(YS(), v);
  }
}

}  // namespace softmax::cuda::dev

namespace softmax::cuda::dev {

// The merged statistics of a row held in one chunk; log modes of f32 rows redo the sum in f64
// with the terms equal to 1 kept apart when the row is near-certain (row_stats_log).
template <class G, class Src>
__device__ ChunkStatsD one_chunk_row_stats(G g, Src tile, int n, ChunkScratch& s,
                                           const RowParams& p) {
  using C = typename Src::Value;
  const bool softmax = p.mode == 0;
  if (sizeof(C) == 8 && !softmax) {
    chunk_stats<double, true>(g, tile, n, __builtin_nan(""), p.it64, p.it64, false, s);
  } else {
    chunk_stats<C, false>(g, tile, n, __builtin_nan(""), inv_t<C>(p), p.it64, softmax, s);
  }
  ChunkStatsD row = merge_chunks([&](int) { return s.stats; }, 1, p.it64);
  if (sizeof(C) == 4 && !softmax && !row_special(row) && row.rest < kSplitOnesBelow) {
    g.sync();
    chunk_stats<double, true>(g, tile, n, row.max, p.it64, p.it64, false, s);
    row = merge_chunks([&](int) { return s.stats; }, 1, p.it64);
  }
  return row;
}

// logsumexp of a row from its merged statistics, rounded once to the output storage.
template <class YS, class C>
__device__ typename YS::Mem logsumexp_value(const ChunkStatsD& row, const RowParams& p) {
  double v;
  if (row.has_nan)
    v = __builtin_nan("");
  else if (!(row.max > -kInf && row.max < kInf))
    v = row.max;
  else
    v = num::logsumexp_of(row.max, row.ones, row.rest, p.t, sizeof(C) == 8);
  return num::narrow_scalar(YS(), v);
}

// A whole row in one tile: statistics, then y (or the logsumexp value at y[0]).
template <class YS, class G, class C>
__device__ void one_chunk_row(G g, C* tile, int n, ChunkScratch& s, const RowParams& p,
                              typename YS::Mem* y) {
  const SmemRow<C> src{tile};
  const ChunkStatsD row = one_chunk_row_stats(g, src, n, s, p);
  if (p.mode == 2) {
    if (g.leader()) y[0] = logsumexp_value<YS, C>(row, p);
    return;
  }
  const double log_sum =
      p.mode == 1 && !row_special(row) ? num::log_of_sum(row.ones, row.rest) : 0.0;
  write_chunk<YS>(g, src, n, s, row, log_sum, p.mode == 0, p, y);
}

}  // namespace softmax::cuda::dev
