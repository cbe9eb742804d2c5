// softmax/row_stats.hpp: the partial statistics of a row, or of a slice of a row (a contiguous
// range of its classes), their merge, and softmax / log_softmax / logsumexp finished from
// merged statistics. A caller holding only a slice of every row (a vocabulary-parallel LM head,
// a streamed vocabulary) computes its slice's statistics, merges them with the other slices'
// in class order, and finishes its own slice. docs/ops/row_stats.md has the worked protocol.
//
// Common rules
// - Views, axis, dtypes: as the softmax family (softmax/ops.hpp): x is any strided view of
//   f32, f64, bf16 or f16; the op runs along `options.axis`; a "row" is a 1-d slice along it.
// - Errors: softmax::Error naming the op, the argument, the value and the rule, for every rule
//   below (bad views, axis, temperature, dtypes, shapes, statistics that disagree with each
//   other or with x); when it is thrown nothing has been written.
// - Determinism: as the softmax family (no dependence on threads, batch size, SIMD target).
//
// The statistics. A row of n classes is cut into chunks of kStatsChunk (32768) classes from its
// first class, exactly as the single-process softmax family cuts it; the statistics of a row
// (or slice) are one record per chunk, in class order (a slice of n classes has
// max(1, ceil(n / 32768)) records; an empty slice has one record with count 0). Statistics are
// an f64 tensor of shape (rows..., C, kStatsFields): rows... is x's shape without the axis, C
// the number of records, and each record holds (field: meaning):
//   kStatMax     (0) the chunk's maximum (NaN-free; -inf when empty or all -inf), not scaled
//                    by 1/T (f64 refined records: the row's maximum, see refine below)
//   kStatSum     (1) sum_i exp((x_i - max) / T) over the chunk, in f64 (what softmax uses)
//   kStatLogMax  (2) the maximum the log-mode sum below is relative to
//   kStatOnes    (3) log modes: the sum split as ones + rest, `ones` counting the terms that
//   kStatRest    (4)   are exactly 1 (ones 0 and rest = sum when not split; see ops.hpp:
//                      log(sum) is log1p(rest) for a near-certain row)
//   kStatCount   (5) the chunk's number of classes
//   kStatFlags   (6) bit 0: the chunk holds a NaN; bit 1: computed in f64 (f64 input, or an
//                    f32/bf16/f16 input whose T leaves the f32 range, see ops.hpp)
//   kStatTemperature (7) the temperature T the record was computed with
// Sums are meaningful only where the maximum is finite and no NaN was seen.
//
// The merge rule (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax",
// arXiv:1805.02867): the row's maximum is M = max_c m_c and its sum S = sum_c s_c exp((m_c -
// M) / T), added in class order with compensated (TwoSum) summation; NaN anywhere makes the row
// NaN. merge_stats keeps the records (it concatenates them in class order, so it is exactly
// associative and not commutative: a comes first), and every *_from_stats op applies the rule
// to all records of a row, which is what the single-process ops do to their chunk partials.
//
// Exactness. Slices whose boundaries (class offsets) are multiples of kStatsChunk, their
// statistics merged in class order (empty slices anywhere), give exactly the single-process
// chunk partials, so softmax_from_stats / log_softmax_from_stats of each slice and
// logsumexp_from_stats reproduce softmax / log_softmax / logsumexp of the whole row bit for bit,
// provided the statistics are refined where the single-process op itself takes a second look at
// the row:
//   - f64 compute and a row of more than kStatsChunk classes (the single-process op finds the
//     row's maximum before summing), and
//   - log_softmax / logsumexp with f32 compute of a near-certain row (sum < 1 + 2^-20: the
//     single-process op sums it again with its maximum known).
// Refining is a second softmax_stats call on the same slice, passing the merged statistics of
// the first pass (`refine`); it returns the first-pass records unchanged where no refinement is
// needed, so always running it is always exact. Other splits (any boundaries, with or without
// refining) give results within the error bounds of the single-process op (ops.hpp), except
// that the log modes of a near-certain row with f32 compute need refining to keep their relative
// accuracy (unrefined, log(S) is the log of S rounded to f64: absolute error about 2^-53).
// All slices and the finishing ops must use the same temperature (it is recorded, and checked).
#pragma once

#include <cstdint>
#include <vector>

#include "softmax/context.hpp"
#include "softmax/options.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// Classes per statistics record (the single-process chunk; dist::kShardAlign).
inline constexpr int64_t kStatsChunk = 32768;
// Fields per record and their positions (see the header comment).
inline constexpr int64_t kStatsFields = 8;
inline constexpr int64_t kStatMax = 0;
inline constexpr int64_t kStatSum = 1;
inline constexpr int64_t kStatLogMax = 2;
inline constexpr int64_t kStatOnes = 3;
inline constexpr int64_t kStatRest = 4;
inline constexpr int64_t kStatCount = 5;
inline constexpr int64_t kStatFlags = 6;
inline constexpr int64_t kStatTemperature = 7;
inline constexpr int64_t kStatFlagNaN = 1;
inline constexpr int64_t kStatFlagF64 = 2;

// The statistics shape for x of `x_shape` along `axis`: x's shape without the axis, then
// (max(1, ceil(n / kStatsChunk)), kStatsFields). Throws softmax::Error for a bad axis.
std::vector<int64_t> softmax_stats_shape(const std::vector<int64_t>& x_shape, int64_t axis = -1);

// stats = the statistics of every row of x along options.axis, with options.temperature (finite,
// > 0). x: any shape of rank >= 1, strided, f32/f64/bf16/f16. stats: f64, shape
// softmax_stats_shape(x.shape, axis), strided, not overlapping x. options.keepdims is ignored.
// refine (second overload): the merged first-pass statistics of the whole rows (rows..., C',
// kStatsFields), f64, computed with the same temperature and compute type; the records are
// then recomputed with the whole row's maximum known where the single-process ops do so (see
// "Exactness"); stats may not overlap refine.
// Error bound of the records: sums of the single-process chunk partials (ops.hpp; f32 compute:
// exps within 2 ulp of f32, summed in f64).
// Throws softmax::Error (see the common rules).
void softmax_stats(ConstTensorView x, TensorView stats, const SoftmaxOptions& options = {},
                   const Context& context = {});
void softmax_stats(ConstTensorView x, ConstTensorView refine, TensorView stats,
                   const SoftmaxOptions& options = {}, const Context& context = {});

// out = a followed by b along the record axis (the merge; see the header comment): a (rows...,
// Ca, kStatsFields), b (rows..., Cb, kStatsFields), out (rows..., Ca + Cb, kStatsFields), all
// f64, any strides, out overlapping neither. a and b must have the same temperature and compute
// type (kStatFlagF64) in every record. Exact (no arithmetic); exactly associative.
// Throws softmax::Error (mismatched rows, fields, temperatures or compute types).
void merge_stats(ConstTensorView a, ConstTensorView b, TensorView out, const Context& context = {});

// y = this slice of softmax(row / T), from the merged statistics of the whole rows.
// x: the slice (any shape, strided, f32/f64/bf16/f16), y: x's shape, dtype pairs and in-place
// as softmax (ops.hpp); stats: (rows..., C, kStatsFields) f64 with rows... = x's shape without
// options.axis, holding the whole rows (the counts sum to at least the slice's length), and x's
// compute type (f64 for f64 x, or for any x when T leaves the f32 range). T is the statistics'
// temperature (options.temperature and options.keepdims are ignored).
// Edge semantics as softmax: a row with NaN or +inf anywhere, or all -inf, gives NaN.
// Exactness: bit-identical to the whole row's softmax for a slice starting at a multiple of
// kStatsChunk with exact statistics (see "Exactness"); otherwise within softmax's bound.
// Throws softmax::Error.
void softmax_from_stats(ConstTensorView x, ConstTensorView stats, TensorView y,
                        const SoftmaxOptions& options = {}, const Context& context = {});

// y = this slice of log_softmax(row / T) = (x - M) / T - log(S), from the merged statistics
// (log-mode fields). Shapes, dtypes, edge semantics as softmax_from_stats / log_softmax.
// Exactness: bit-identical to the whole row's log_softmax for any slice (aligned or not) when the
// statistics are exact; otherwise within log_softmax's bound. Throws softmax::Error.
void log_softmax_from_stats(ConstTensorView x, ConstTensorView stats, TensorView y,
                            const SoftmaxOptions& options = {}, const Context& context = {});

// y = logsumexp(row / T) = M / T + log(S) per row, from merged statistics (rows..., C,
// kStatsFields) f64. y: shape rows... (the statistics' shape without its last two dims),
// f64 when the statistics are f64-computed with T in the f32 range, else f32/bf16/f16 (any, for
// f64-computed statistics of an extreme T). Only options.threads is used.
// Edge semantics as logsumexp: all -inf or empty -> -inf, +inf -> +inf, NaN -> NaN.
// Exactness: bit-identical to logsumexp of the whole row with exact statistics (see above);
// otherwise within logsumexp's bound. Throws softmax::Error.
void logsumexp_from_stats(ConstTensorView stats, TensorView y, const SoftmaxOptions& options = {},
                          const Context& context = {});

}  // namespace softmax
