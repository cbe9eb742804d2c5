// src/cpu/kernels.hpp: the per-target CPU kernel table (no SIMD types).
//
// The core layer (src/core) validates views, walks rows, splits work across threads and
// merges per-chunk partials; these functions do the arithmetic on contiguous runs.
// One table per SIMD target; softmax::cpu::kernels() returns the one for the chosen target,
// fetched once per public call (the dispatch is hoisted above the row loop).
#pragma once

#include <cmath>
#include <cstring>
#include <cstdint>

#include "softmax/tensor.hpp"

namespace softmax::cpu {

// Partial statistics of a contiguous run of one row ("chunk").
//   max:  the largest non-NaN element (-inf if none or if the run is empty).
//   sum:  sum_i exp((x_i - max) / T), accumulated in f64; meaningful only when max is
//         finite and has_nan is false.
//   has_nan: some element is NaN.
//   ones, rest: (chunk_stats_log only) sum = ones + rest, where `ones` counts the terms that are
//         exactly 1 and `rest` sums the others (0, 0 from chunk_stats).
struct ChunkStats {
  double max;
  double sum;
  bool has_nan;
  double ones;
  double rest;
};

// log(s_hi + s_lo) for a finite s_hi >= 0.5 and |s_lo| <= ulp(s_hi) / 2 (an unevaluated pair),
// within about 0.8 ulp: s = m 2^e, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(f) = 2 (f + f^3/3 +
// f^5/5 + ...) with f = (m - 1) / (m + 1), |f| <= 0.1716, the series to f^23 (truncation
// < 2^-56), f itself to ~2^-106 (its quotient corrected by the exact FMA remainder), and e ln2
// with ln2 split so e * kLn2Hi is exact. With `m_minus_1` (s in [1, sqrt(2)), e = 0) the series
// runs on m - 1 given directly: log1p without rounding 1 + rest first.
// With `lo_out` the result is returned as an unevaluated pair (return value + *lo_out) accurate
// to about 2^-59 absolute (the rounding of the series tail), for sums that cancel.
// Plain IEEE double arithmetic with std::fma, inline: the same bits on every SIMD target.
inline double LogPair(double s_hi, double s_lo, const double* m_minus_1, double* lo_out = nullptr) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 significant bits
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  double num;
  int e = 0;
  if (m_minus_1 != nullptr) {
    num = *m_minus_1;
  } else {
    uint64_t bits;
    std::memcpy(&bits, &s_hi, 8);
    e = static_cast<int>((bits >> 52) & 0x7FF) - 1022;  // s = m' 2^e, m' in [0.5, 1)
    bits = (bits & 0x000FFFFFFFFFFFFFull) | (uint64_t{1022} << 52);
    double m;
    std::memcpy(&m, &bits, 8);
    if (m < 0.70710678118654752440) {
      m *= 2.0;
      e -= 1;
    }
    const uint64_t scale_bits = static_cast<uint64_t>(1023 - e) << 52;  // 2^-e, exact
    double scale;
    std::memcpy(&scale, &scale_bits, 8);
    num = (m - 1.0) + s_lo * scale;  // m - 1 exact (Sterbenz); one rounding
  }
  // f = num / (2 + num): the denominator as an exact pair (Fast2Sum: 2 > |num|), the quotient
  // corrected by its exact remainder.
  const double den = 2.0 + num;
  const double den_lo = (2.0 - den) + num;
  const double f = num / den;
  const double f_lo = (std::fma(-f, den, num) - f * den_lo) / den;
  const double t = f * f;
  // 2/(2j+1) for j = 11..1 (Horner in t).
  constexpr double kC[] = {2.0 / 23, 2.0 / 21, 2.0 / 19, 2.0 / 17, 2.0 / 15, 2.0 / 13,
                           2.0 / 11, 2.0 / 9,  2.0 / 7,  2.0 / 5,  2.0 / 3};
  double p = kC[0];
  for (int i = 1; i < 11; ++i) p = std::fma(p, t, kC[i]);
  const double de = static_cast<double>(e);
  const double tail = std::fma(f * t, p, std::fma(de, kLn2Lo, 2.0 * f_lo));
  if (lo_out == nullptr) return std::fma(de, kLn2Hi, 2.0 * f + tail);
  // de * kLn2Hi and 2f are exact; their sum as an exact pair (TwoSum), then the tail (Fast2Sum:
  // |s| >= |c| since |2f| < 0.35 < ln2 when e != 0, and |tail| < |2f| when e == 0).
  const double a = de * kLn2Hi, b = 2.0 * f;
  const double s = a + b;
  const double bb = s - a;
  const double c = ((a - (s - bb)) + (b - bb)) + tail;
  const double hi = s + c;
  *lo_out = c - (hi - s);
  return hi;
}

// f32 log modes sum a row plainly first and only when the plain sum is below this (a
// near-certain row, where log(sum) must keep relative accuracy) sum it again, in f64 with the
// terms equal to 1 kept apart (f64: always split).
inline constexpr double kSplitOnesBelow = 1.0 + 0x1.0p-20;

// log(ones + rest) for a row sum split as in ChunkStats (ones >= 1 integer-valued, rest >= 0).
// When ones == 1 and the sum is below sqrt(2): log1p(rest), so a sum just above 1 keeps its
// relative accuracy (logsumexp and log-softmax near 0). Otherwise the sum is formed as an exact
// pair: libm's log when the pair is a single double (so n equal logits give exactly -log(n)),
// LogPair when rounding ones + rest would cost up to 2 ulp of the log.
inline double LogOfSum(double ones, double rest) {
  if (ones == 1.0 && rest < 0.41421356237309504880) return std::log1p(rest);
  const double hi = ones + rest;  // TwoSum: the pair (hi, lo) is exactly ones + rest
  const double bb = hi - ones;
  const double lo = (ones - (hi - bb)) + (rest - bb);
  return lo == 0.0 ? std::log(hi) : LogPair(hi, lo, nullptr);
}

// LogOfSum as an unevaluated pair (return value + lo), to about 2^-59 absolute (LogPair).
inline double LogOfSumPair(double ones, double rest, double& lo) {
  if (ones == 1.0 && rest < 0.41421356237309504880) return LogPair(1.0 + rest, 0.0, &rest, &lo);
  const double hi = ones + rest;
  const double bb = hi - ones;
  return LogPair(hi, (ones - (hi - bb)) + (rest - bb), nullptr, &lo);
}

// The temperature as the kernels use it. 1/T is carried as an unevaluated pair inv + inv_lo
// (inv = fl(1/T), inv_lo = (1 - T inv) / T with the remainder exact by FMA: 1/T to ~2^-106
// relative), so (x - max) / T does not depend on the rounding of 1/T. Where that pair is not
// available (1/T overflows, or is below 2^-960 so inv_lo would lose bits) `divide` is set and the
// kernels divide by T. f32 compute keeps 1/T as an f32 pair, valid for 1/T in [2^-100, 2^100];
// outside that range (f32_ok() false) f32/bf16/f16 rows are computed in f64 by the caller.
struct Temperature {
  double t = 1.0;
  double inv = 1.0;
  double inv_lo = 0.0;
  bool divide = false;
  bool scaled() const { return t != 1.0; }
  bool f32_ok() const { return inv >= 0x1.0p-100 && inv <= 0x1.0p100; }
  // The kernels' variant: 0 (T == 1), 1 (multiply by the pair), 2 (divide by T).
  int mode() const { return !scaled() ? 0 : divide ? 2 : 1; }
};
// For a finite T > 0 (validated by the caller).
inline Temperature MakeTemperature(double t) {
  Temperature r;
  r.t = t;
  if (t == 1.0) return r;
  r.inv = 1.0 / t;
  r.divide = !(r.inv <= 0x1.0p1000 && r.inv >= 0x1.0p-960);
  r.inv_lo = r.divide ? 0.0 : std::fma(-t, r.inv, 1.0) / t;
  return r;
}
// v / T as an unevaluated pair hi + lo (hi = fl(v / T), lo its rounding error, exact up to the
// final rounding of lo unless v / T is subnormal or overflows, where lo is 0).
inline double DivideByT(double v, const Temperature& t, double& lo) {
  if (!t.scaled()) {
    lo = 0.0;
    return v;
  }
  const double hi = v / t.t;
  lo = std::isfinite(hi) && std::fabs(hi) >= 0x1.0p-960 ? std::fma(-hi, t.t, v) / t.t : 0.0;
  return hi;
}

// logsumexp(x / T) = max / T + log(sum) of a row with finite max and sum = ones + rest (split as
// in ChunkStats), with max / T as a pair (DivideByT), so the rounding of 1/T does not enter.
// `careful` (f64 compute): where the two terms cancel (|result| < |max / T| / 2, i.e. max < 0 and
// sum near exp(-max / T)) log(sum) is taken as a pair too and the terms added exactly, so the
// error is that of the sum (its exps: about 2^-52 (1 - 1/sum) absolute), not ulp(max / T).
// (f32 compute rounds the f64 result to f32: the f64 cancellation error is far below that.)
inline double LogSumExpOf(double max, double ones, double rest, const Temperature& t,
                          bool careful) {
  double m_lo;
  const double m = DivideByT(max, t, m_lo);
  const double v = m + (m_lo + LogOfSum(ones, rest));
  if (!careful || !(std::fabs(v) < 0.5 * std::fabs(m))) return v;
  double l_lo;
  const double l = LogOfSumPair(ones, rest, l_lo);
  const double s = m + l;  // TwoSum
  const double bb = s - m;
  const double e = (m - (s - bb)) + (l - bb);
  return s + (e + (m_lo + l_lo));
}

// Result of argmax over a run: index of the first maximum (first NaN if any), and its value.
struct ArgmaxResult {
  int64_t index;
  double value;
  bool is_nan;
};

enum class RowMode : uint8_t { kSoftmax = 0, kLogSoftmax = 1, kLogSumExp = 2 };

struct KernelTable {
  const char* target_name;
  // x: (n) contiguous, dtype in {f32, bf16, f16} (computed in f32; needs t.f32_ok()) or f64.
  // n >= 0. Two passes over the chunk: its max, then sum exp((x_i - max) / T); with
  // known_max (not NaN: the row's max, found by the caller, NaN-free) the first pass is skipped
  // and the sum is relative to known_max. When e_out is non-null (n elements of the compute type:
  // f32, or f64 for f64 input) it receives the exps, and block_max[b] (ceil(n / kBlockElems)
  // entries) the max they are relative to. e_out may be x itself when x is f32/f64 (in place).
  ChunkStats (*chunk_stats)(const void* x, DType dtype, int64_t n, const Temperature& t,
                            void* e_out, double* block_max, double known_max);
  // As chunk_stats without stored exps, filling ones/rest (for log-softmax and logsumexp).
  // f32/bf16/f16 input is computed here in f64 (f64 exps, so exps below the f32 subnormal
  // range keep their value): callers use it for near-certain rows (see kSplitOnesBelow).
  ChunkStats (*chunk_stats_log)(const void* x, DType dtype, int64_t n, const Temperature& t,
                                double known_max);
  // Max and NaN flag only (sum, ones, rest 0).
  ChunkStats (*chunk_max)(const void* x, DType dtype, int64_t n);
  // y_i = e_i * exp((block_max[b] - max) / T) / sum for i in block b; e is the compute
  // type (f32 for y in {f32, bf16, f16}; f64 for y f64); y may be e exactly.
  void (*scale_blocks)(const void* e, void* y, DType y_dtype, int64_t n, const double* block_max,
                       double max, const Temperature& t, double sum);
  // y[i] = exp((x[i] - max) / T) * scale              (kSoftmax; scale = 1 / sum)
  // y[i] = (x[i] - max) / T - scale                    (kLogSoftmax; scale = log(sum))
  // x: (n) contiguous of x_dtype, y: (n) contiguous of y_dtype; y may equal x exactly.
  // Supported pairs: {f32, bf16, f16} x {f32, bf16, f16}, and f64 -> f64.
  void (*normalize)(const void* x, DType x_dtype, void* y, DType y_dtype, int64_t n, double max,
                    const Temperature& t, double scale, RowMode mode);
  // Whole rows of n <= kBlockElems contiguous elements, `rows` of them at x + r * x_stride and
  // y + r * y_stride (elements): kSoftmax, kLogSoftmax (y rows of n), kLogSumExp (one value per
  // row at y + r * y_stride). Same results, bit for bit, as the general path; special
  // rows (NaN, +inf, all -inf) handled as the ops document. x_dtype/y_dtype pairs as normalize.
  void (*rows)(const void* x, DType x_dtype, int64_t x_stride, void* y, DType y_dtype,
               int64_t y_stride, int64_t rows, int64_t n, const Temperature& t, RowMode mode);
  // Elementwise sigmoid over n contiguous elements, same dtype pairs as normalize.
  void (*sigmoid)(const void* x, DType x_dtype, void* y, DType y_dtype, int64_t n);
  // Argmax of n >= 1 contiguous elements (any floating dtype).
  ArgmaxResult (*argmax)(const void* x, DType dtype, int64_t n);
  // exp(a) for a <= 0 with the same f64 code the vector kernels use (one lane of it).
  double (*exp_f64)(double a);
  // exp((a - b) / T) for a <= b with a - b carried exactly (merging partial maxima).
  double (*exp_diff)(double a, double b, const Temperature& t);
};

// The table for the current target (see softmax/dispatch.hpp).
const KernelTable& kernels();

namespace detail {
// Each kernel file fills its entries of `table` with its functions for `target` (one usable
// target bit); kernels() assembles one table per target from them (src/cpu/kernel_table.cc).
void fill_stats_kernels(int64_t target, KernelTable* table);      // softmax_stats_kernels.cc
void fill_normalize_kernels(int64_t target, KernelTable* table);  // softmax_normalize_kernels.cc
void fill_rows_kernels(int64_t target, KernelTable* table);       // softmax_rows_kernels.cc
void fill_argmax_sigmoid_kernels(int64_t target, KernelTable* table);  // argmax_sigmoid_kernels.cc
}  // namespace detail

// Elements per chunk of a row: rows longer than this are split into fixed chunks whose
// partials merge in chunk order, whether or not threads work on them in parallel.
inline constexpr int64_t kChunkElems = 32768;
// Elements per block inside a chunk (see chunk_stats); kChunkElems is a multiple of it.
inline constexpr int64_t kBlockElems = 2048;

}  // namespace softmax::cpu
