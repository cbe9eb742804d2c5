// src/core/row_stats.hpp: the row statistics of the softmax family (max, exp-sum, log-sum) as
// one implementation: per-chunk partials (src/cpu kernels) and their merge in chunk order.
// softmax, log_softmax and logsumexp (src/core/softmax_ops.cc) and the vocabulary-parallel ops
// (src/dist) compute their statistics here, so a row split across processes on the chunk grid
// gets the same bits as the unsplit row.
//
// The chunk grid: a row of n elements is cut at multiples of cpu::kChunkElems (32768) from its
// first element; chunk c covers [c * kChunkElems, min(n, (c + 1) * kChunkElems)). A partial of
// a chunk depends only on that chunk's elements (and the known max, when given), so partials
// computed anywhere (another thread, another process) merge to the same result.
#pragma once

#include <cstdint>
#include <limits>

#include "softmax/tensor.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax::detail {

// A row's merged statistics.
struct RowStats {
  double max;   // max of x over the row (not scaled by 1/T)
  double sum;   // sum exp((x - max) / T)
  double ones;  // log modes: sum = ones + rest, ones = the terms exactly 1 (see ChunkStats)
  double rest;
  bool has_nan;
  // NaN, +inf max, or an all -inf (or empty) row: no sum.
  bool special() const {
    return has_nan || !(max > -std::numeric_limits<double>::infinity() &&
                        max < std::numeric_limits<double>::infinity());
  }
  double log_sum() const { return cpu::LogOfSum(ones, rest); }
};

// Chunks of a row of n elements (1 for n == 0).
inline int64_t num_chunks(int64_t n) {
  return n == 0 ? 1 : (n + cpu::kChunkElems - 1) / cpu::kChunkElems;
}

// What a partial holds: the max only (f64 rows' first pass), the plain (max, sum) with optional
// stored exps, or the log modes' split sum (ones, rest).
enum class PartialKind : uint8_t { kMax, kPlain, kLog };

// The partial of chunk c of the contiguous row x (n elements of dtype t). known: the row's max
// when the caller has it (NaN: not known; kMax ignores it). kPlain with e_out (the row's n
// elements of the compute type) and block_max (the row's ceil(n / kBlockElems) entries) stores
// that chunk's exps for scale_blocks.
cpu::ChunkStats chunk_partial(const cpu::KernelTable& k, const void* x, DType t, int64_t n,
                              int64_t c, PartialKind kind, const cpu::Temperature& temp,
                              double known, void* e_out = nullptr, double* block_max = nullptr);

// Merges `count` partials in the given order (chunk order: the only order ever used).
RowStats merge_chunks(const cpu::KernelTable& k, const cpu::ChunkStats* parts, int64_t count,
                      const cpu::Temperature& temp);

// Statistics of one contiguous row, chunk partials computed by `threads` threads. With e_out and
// block_max the exps are stored for scale_blocks (see chunk_partial). log_mode: split sums
// (PartialKind::kLog), `known` the row's max when the caller has it (NaN: not known).
// f64 rows of more than one chunk find their max first (so no chunk's sum needs rescaling).
// `parts`: num_chunks(n) records of caller scratch for rows of more than one chunk (null: the
// function allocates them).
RowStats row_stats(const cpu::KernelTable& k, const void* x, DType t, int64_t n,
                   const cpu::Temperature& temp, int threads, bool log_mode, void* e_out = nullptr,
                   double* block_max = nullptr,
                   double known = std::numeric_limits<double>::quiet_NaN(),
                   cpu::ChunkStats* parts = nullptr);

// Statistics for the log modes: f32 compute sums plainly and redoes the sum (kLog, with the
// plain max as the known max) only for a near-certain row (rest < kSplitOnesBelow), exactly as
// the short-row kernel does; f64 always splits.
RowStats row_stats_log(const cpu::KernelTable& k, const void* x, DType t, int64_t n,
                       const cpu::Temperature& temp, int threads, cpu::ChunkStats* parts = nullptr);

// Whether row_stats_log redoes the sum of an f32-computed row whose plain statistics are `plain`.
inline bool needs_log_pass(const RowStats& plain) {
  return !plain.special() && plain.rest < cpu::kSplitOnesBelow;
}

// logsumexp of one row from its (log-mode) statistics (cpu::LogSumExpOf, as the short-row
// kernel): NaN for a NaN row, +inf for a +inf max, -inf for an all -inf or empty row.
double logsumexp_value(const RowStats& st, const cpu::Temperature& temp, DType t);

}  // namespace softmax::detail
