// src/core/sampling.cc: the public sampling ops sample, sample_from_probs and top_logprobs
// (softmax/sampling.hpp). Validation first (nothing is written when it fails), then rows are
// split across threads; each row is prepared by src/core/sampling_rows.hpp (gathered when
// strided, logit processors, checks, SIMD weights from src/cpu/sampling_kernels.cc), then
// filtered and drawn by the exact integer engine (src/core/sampling_select.hpp). Row errors found
// while computing (NaN, +inf, all -inf) are collected and the first failing row is reported
// after the parallel loop, before any output is written.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/philox.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/sampling_kernels.hpp"
#include "src/core/sampling_rows.hpp"
#include "src/core/sampling_select.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using detail::PreparedRow;
using detail::RowError;
using detail::RowScratch;

// tokens: i64 of shape (B) or (B, D). Returns D.
int64_t check_tokens(const char* op, const ConstTensorView& x, const TensorView& tokens) {
  detail::check_output_view(op, "tokens", tokens);
  if (tokens.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "tokens", dtype_name(tokens.dtype), "must be i64");
  }
  const int64_t b = x.shape[0];
  if (!((tokens.rank() == 1 && tokens.shape[0] == b) ||
        (tokens.rank() == 2 && tokens.shape[0] == b))) {
    throw Error(
        ErrorKind::kShapeMismatch, op, "tokens", detail::shape_str(tokens.shape),
        "must have shape (" + std::to_string(b) + ",) or (" + std::to_string(b) + ", draws)");
  }
  detail::check_no_overlap(op, x, tokens, /*allow_alias=*/false);
  return tokens.rank() == 2 ? tokens.shape[1] : 1;
}

// Draws `draws` tokens of one prepared row into out (draw d uses the row's offset + d).
template <class W>
void draw_row(detail::RowFilter<W>& f, const W* w, int64_t n, W w_max, const PreparedRow& pr,
              const SamplingParams& p, int64_t r, int64_t draws, int64_t* out) {
  f.filter(w, n, w_max, detail::filter_spec(p, r));
  for (int64_t d = 0; d < draws; ++d) {
    const uint64_t off = pr.offset + static_cast<uint64_t>(d);
    out[d] = p.method == SamplingMethod::kGumbelMax
                 ? f.draw_gumbel(w, pr.seed, off, pr.stream)
                 : f.draw(detail::philox_u64(pr.seed, off, pr.stream, 0));
  }
}

void sample_impl(const char* op, const char* arg, const ConstTensorView& x,
                 const TensorView& tokens, const SamplingParams& p, uint64_t seed, uint64_t offset,
                 bool probs) {
  detail::check_sampling_rows(op, arg, x);
  const int64_t draws = check_tokens(op, x, tokens);
  const int64_t rows = x.shape[0], n = x.shape[1];
  detail::check_sampling_params(op, p, rows, n, probs);
  if (rows == 0 || draws == 0) return;

  std::vector<int64_t> out(static_cast<std::size_t>(rows * draws));
  std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
  const detail::RowPreparer prep(x, p, probs, seed, offset);
  detail::parallel_for(rows, detail::sampling_threads(p.threads, rows, n),
                       [&](int64_t b, int64_t e) {
                         RowScratch& s = detail::thread_scratch();
                         for (int64_t r = b; r < e; ++r) {
                           const PreparedRow pr = prep.prepare(r, s);
                           int64_t* o = out.data() + r * draws;
                           if (pr.error != RowError::kNone)
                             errors[r] = pr.error;
                           else if (pr.greedy)
                             std::fill(o, o + draws, pr.argmax);
                           else if (pr.f64)
                             draw_row(s.fd, pr.wd, n, pr.wd_max, pr, p, r, draws, o);
                           else
                             draw_row(s.ff, pr.wf, n, pr.wf_max, pr, p, r, draws, o);
                         }
                       });
  detail::throw_first_row_error(op, arg, errors);
  auto* dst = static_cast<int64_t*>(tokens.data);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < draws; ++d) {
      const int64_t o = r * tokens.strides[0] + (tokens.rank() == 2 ? d * tokens.strides[1] : 0);
      dst[o] = out[r * draws + d];
    }
  }
}

// ---- top_logprobs ----

// Order-preserving key of a non-NaN float / double (for ranking by logit).
uint32_t logit_key(float v) {
  v += 0.0f;  // -0 -> +0: equal values, equal keys
  const uint32_t b = detail::f32_bits(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
uint64_t logit_key(double v) {
  v += 0.0;
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return (b >> 63) ? ~b : (b | (uint64_t{1} << 63));
}

// Top n of z (by value desc, id asc) for one row, n <= len. Exact: a radix select on the keys
// finds the n-th key, then the survivors are sorted (n entries, not the row).
template <class T, class Key>
void top_n(const T* v, int64_t len, int64_t n, std::vector<std::pair<Key, uint32_t>>& sel) {
  sel.clear();
  if (n == 0) return;
  constexpr int kBits = 8 * sizeof(Key);
  // Threshold key tau: the n-th largest key, found digit by digit (8 bits a level) with counts.
  Key prefix = 0, mask = 0;
  int64_t rem = n;
  for (int shift = kBits - 8; shift >= 0; shift -= 8) {
    int64_t cnt[256] = {};
    for (int64_t i = 0; i < len; ++i) {
      const Key k = logit_key(v[i]);
      if ((k & mask) == prefix) ++cnt[(k >> shift) & 0xFF];
    }
    int64_t acc = 0;
    int b = 255;
    for (; b > 0; --b) {
      if (acc + cnt[b] >= rem) break;
      acc += cnt[b];
    }
    rem -= acc;
    prefix |= static_cast<Key>(b) << shift;
    mask |= static_cast<Key>(0xFF) << shift;
  }
  const Key tau = prefix;
  for (int64_t i = 0; i < len; ++i) {
    const Key k = logit_key(v[i]);
    if (k > tau || (k == tau && rem-- > 0)) sel.emplace_back(k, static_cast<uint32_t>(i));
  }
  std::sort(sel.begin(), sel.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
}

// One slice of a row (classes [offset, offset + len) of it; the whole row: offset 0):
// weights with the row's max, their sums in f64 per piece between multiples of kLogprobChunk
// (4 lanes, element i of a piece to lane i % 4, lanes added (0 + 1) + (2 + 3)), and the slice's
// top n (by value desc, id asc) with z = (x - max) / T.
template <class T>
void logprobs_slice(const T* x, int64_t len, int64_t n, int64_t offset, double max,
                    double temperature, const cpu::SamplingKernelTable& sk, std::vector<T>& w,
                    std::vector<double>& piece_sums, std::vector<detail::LogprobCandidate>& top) {
  using Key = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
  w.resize(static_cast<std::size_t>(len));
  T t;
  if constexpr (std::is_same_v<T, float>) {
    t = detail::kernel_temperature(temperature);
    sk.weights_f32(x, DType::f32, len, static_cast<float>(max), t, w.data());
  } else {
    t = temperature;
    sk.weights_f64(x, len, max, t, w.data());
  }
  piece_sums.clear();
  for (int64_t p0 = 0; p0 < len;) {
    const int64_t g = offset + p0;
    const int64_t p1 = std::min(len, p0 + (detail::kLogprobChunk - g % detail::kLogprobChunk));
    double acc[4] = {0, 0, 0, 0};
    int64_t i = p0;
    for (; i + 4 <= p1; i += 4) {
      for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(w[i + j]);
    }
    for (; i < p1; ++i) acc[0] += static_cast<double>(w[i]);
    piece_sums.push_back((acc[0] + acc[1]) + (acc[2] + acc[3]));
    p0 = p1;
  }
  std::vector<std::pair<Key, uint32_t>> sel;
  top_n<T, Key>(x, len, std::min(n, len), sel);
  const T m = static_cast<T>(max);
  top.clear();
  for (const auto& [key, id] : sel) {
    T z = x[id] - m;
    if (t != T(1)) z = z / t;
    top.push_back(
        {static_cast<uint64_t>(key), static_cast<int64_t>(id) + offset, static_cast<double>(z)});
  }
}

// The whole row: the pieces added in order.
template <class T>
void logprobs_row(const T* x, int64_t len, int64_t n, double max, double temperature,
                  const cpu::SamplingKernelTable& sk, std::vector<T>& w, int64_t* ids, double* lp) {
  std::vector<double> sums;
  std::vector<detail::LogprobCandidate> top;
  logprobs_slice(x, len, n, 0, max, temperature, sk, w, sums, top);
  double total = 0.0;
  for (double v : sums) total += v;
  const double log_sum = std::log(total);
  for (int64_t j = 0; j < n; ++j) {
    ids[j] = top[static_cast<std::size_t>(j)].id;
    lp[j] = top[static_cast<std::size_t>(j)].z - log_sum;
  }
}

}  // namespace

void sample(ConstTensorView logits, TensorView tokens, const SamplingParams& params, uint64_t seed,
            uint64_t offset) {
  sample_impl("sample", "logits", logits, tokens, params, seed, offset, /*probs=*/false);
}

std::vector<int64_t> sample(ConstTensorView logits, const SamplingParams& params, uint64_t seed,
                            uint64_t offset) {
  detail::check_sampling_rows("sample", "logits", logits);
  std::vector<int64_t> out(static_cast<std::size_t>(logits.shape[0]));
  sample(logits, TensorView(out.data(), DType::i64, {logits.shape[0]}), params, seed, offset);
  return out;
}

int64_t sample(std::span<const float> logits, const SamplingParams& params, uint64_t seed,
               uint64_t offset) {
  int64_t out = 0;
  sample(ConstTensorView(logits.data(), DType::f32, {1, static_cast<int64_t>(logits.size())}),
         TensorView(&out, DType::i64, {1}), params, seed, offset);
  return out;
}

void sample_from_probs(ConstTensorView probs, TensorView tokens, const SamplingParams& params,
                       uint64_t seed, uint64_t offset) {
  sample_impl("sample_from_probs", "probs", probs, tokens, params, seed, offset, /*probs=*/true);
}

std::vector<int64_t> sample_from_probs(ConstTensorView probs, const SamplingParams& params,
                                       uint64_t seed, uint64_t offset) {
  detail::check_sampling_rows("sample_from_probs", "probs", probs);
  std::vector<int64_t> out(static_cast<std::size_t>(probs.shape[0]));
  sample_from_probs(probs, TensorView(out.data(), DType::i64, {probs.shape[0]}), params, seed,
                    offset);
  return out;
}

TopLogprobs top_logprobs(ConstTensorView logits, int64_t n, double temperature, int threads) {
  const char* op = "top_logprobs";
  detail::check_sampling_rows(op, "logits", logits);
  const int64_t rows = logits.shape[0], len = logits.shape[1];
  if (n < 0 || n > len) {
    throw Error(ErrorKind::kInvalidArgument, op, "n", std::to_string(n),
                "must be in [0, " + std::to_string(len) + "] (the vocabulary size)");
  }
  detail::check_temperature(op, temperature);
  detail::check_threads(op, threads);
  TopLogprobs res;
  res.rows = rows;
  res.n = n;
  res.ids.resize(static_cast<std::size_t>(rows * n));
  res.logprobs.resize(static_cast<std::size_t>(rows * n));
  std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
  const cpu::SamplingKernelTable& sk = cpu::sampling_kernels();
  detail::parallel_for(
      rows, detail::sampling_threads(threads, rows, len), [&](int64_t b, int64_t e) {
        RowScratch& s = detail::thread_scratch();
        std::vector<float> xf;
        for (int64_t r = b; r < e; ++r) {
          const void* xr = detail::row_ptr(logits, r, s);
          const cpu::RowRange range = sk.row_range(xr, logits.dtype, len);
          if (range.has_nan)
            errors[r] = RowError::kNaN;
          else if (range.max == kInf)
            errors[r] = RowError::kPosInf;
          else if (range.max == -kInf)
            errors[r] = RowError::kAllNegInf;
          if (errors[r] != RowError::kNone) continue;
          int64_t* ids = res.ids.data() + r * n;
          double* lp = res.logprobs.data() + r * n;
          if (logits.dtype == DType::f64) {
            logprobs_row(static_cast<const double*>(xr), len, n, range.max, temperature, sk, s.wd,
                         ids, lp);
            continue;
          }
          const float* xf32 = static_cast<const float*>(xr);
          if (logits.dtype != DType::f32) {
            xf.resize(static_cast<std::size_t>(len));
            for (int64_t i = 0; i < len; ++i) {
              xf[i] = static_cast<float>(detail::load_as_double(xr, logits.dtype, i));
            }
            xf32 = xf.data();
          }
          logprobs_row(xf32, len, n, range.max, temperature, sk, s.wf, ids, lp);
        }
      });
  detail::throw_first_row_error(op, "logits", errors);
  return res;
}

namespace detail {

void top_logprobs_slice(const void* x, DType dtype, int64_t len, int64_t n, int64_t offset,
                        double max, double temperature, std::vector<double>& piece_sums,
                        std::vector<LogprobCandidate>& top) {
  const cpu::SamplingKernelTable& sk = cpu::sampling_kernels();
  RowScratch& s = thread_scratch();
  if (dtype == DType::f64) {
    logprobs_slice(static_cast<const double*>(x), len, n, offset, max, temperature, sk, s.wd,
                   piece_sums, top);
    return;
  }
  std::vector<float> xf;
  const float* xf32 = static_cast<const float*>(x);
  if (dtype != DType::f32) {
    xf.resize(static_cast<std::size_t>(len));
    for (int64_t i = 0; i < len; ++i) xf[i] = static_cast<float>(load_as_double(x, dtype, i));
    xf32 = xf.data();
  }
  logprobs_slice(xf32, len, n, offset, max, temperature, sk, s.wf, piece_sums, top);
}

}  // namespace detail

}  // namespace softmax
