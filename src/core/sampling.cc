// src/core/sampling.cc: the public sampling ops (softmax/sampling.hpp). Validation first
// (nothing is written when it fails), then rows are split across threads; each row is gathered
// when strided, checked, turned into weights by the SIMD kernels (src/cpu/sampling_kernels.cc),
// filtered and drawn by the exact integer engine (src/core/sampling_select.hpp). Row errors found
// while computing (NaN, +inf, all -inf) are collected and the first failing row is reported
// after the parallel loop, before any output is written.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <type_traits>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"
#include "src/core/half.hpp"
#include "src/core/philox.hpp"
#include "src/core/rows.hpp"
#include "src/core/sampling_kernels.hpp"
#include "src/core/sampling_select.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Token ids enter Philox counters as a 32-bit word (2^32 - 1 is reserved for stream keys).
constexpr int64_t kMaxIds = int64_t{1} << 32;

// Shortest decimal that reads back as v.
std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// What went wrong in a row (found during the computation).
enum class RowError : uint8_t { kNone, kNaN, kPosInf, kAllNegInf, kNegative, kAllZero };

[[noreturn]] void throw_row_error(const char* op, const char* arg, int64_t row, RowError e) {
  const std::string where = "row " + std::to_string(row);
  switch (e) {
    case RowError::kNaN:
      throw Error(ErrorKind::kInvalidArgument, op, arg, where + " holds NaN",
                  "a row must not hold NaN");
    case RowError::kPosInf:
      throw Error(ErrorKind::kInvalidArgument, op, arg, where + " holds +inf",
                  "entries must be finite (logits may be -inf): +inf has no probability");
    case RowError::kAllNegInf:
      throw Error(ErrorKind::kInvalidArgument, op, arg, where + " is all -inf",
                  "a row needs at least one finite logit");
    case RowError::kNegative:
      throw Error(ErrorKind::kInvalidArgument, op, arg, where + " holds a negative value",
                  "probabilities must be >= 0");
    case RowError::kAllZero:
      throw Error(ErrorKind::kInvalidArgument, op, arg, where + " is all zero",
                  "a row needs a positive probability");
    case RowError::kNone: break;
  }
  throw Error(ErrorKind::kInvalidArgument, op, arg, where, "invalid row");
}

// Shape checks common to sample / sample_from_probs / top_logprobs. Returns (B, V).
void check_rows(const char* op, const char* arg, const ConstTensorView& x) {
  detail::check_view(op, arg, x);
  detail::check_float_dtype(op, arg, x.dtype);
  if (x.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, detail::shape_str(x.shape),
                "must have rank 2: (batch, vocabulary)");
  }
  if (x.shape[1] == 0) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, detail::shape_str(x.shape),
                "the vocabulary (dimension 1) must not be empty");
  }
  if (x.shape[1] >= kMaxIds) {
    throw Error(ErrorKind::kUnsupported, op, arg, detail::shape_str(x.shape),
                "the vocabulary must be < 2^32 tokens");
  }
}

template <class T>
void check_per_row(const char* op, const char* arg, const PerRow<T>& v, int64_t rows) {
  if (v.per_row() && static_cast<int64_t>(v.size()) != rows) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, std::to_string(v.size()) + " values",
                "a per-row parameter needs one value per row (" + std::to_string(rows) + ")");
  }
}

template <class T, class Pred>
void check_values(const char* op, const char* arg, const PerRow<T>& v, int64_t rows, Pred ok,
                  const char* rule) {
  const int64_t count = v.per_row() ? rows : 1;
  for (int64_t r = 0; r < count; ++r) {
    if (!ok(v[r])) {
      std::string value = num(static_cast<double>(v[r]));
      if (v.per_row()) value += " (row " + std::to_string(r) + ")";
      throw Error(ErrorKind::kInvalidArgument, op, arg, value, rule);
    }
  }
}

void check_params(const char* op, const SamplingParams& p, int64_t rows, bool probs) {
  detail::check_threads(op, p.threads);
  check_per_row(op, "temperature", p.temperature, rows);
  check_per_row(op, "top_k", p.top_k, rows);
  check_per_row(op, "top_p", p.top_p, rows);
  check_per_row(op, "min_p", p.min_p, rows);
  if (!p.streams.empty() && static_cast<int64_t>(p.streams.size()) != rows) {
    throw Error(ErrorKind::kShapeMismatch, op, "streams", std::to_string(p.streams.size()) + " values",
                "needs one stream per row (" + std::to_string(rows) + ") or none");
  }
  if (probs) {
    check_values(op, "temperature", p.temperature, rows,
                 [](double t) { return t == 0.0 || t == 1.0; },
                 "must be 1 (temperature applies to logits; use sample) or 0 (greedy)");
  } else {
    check_values(op, "temperature", p.temperature, rows,
                 [](double t) { return t >= 0.0 && std::isfinite(t); },
                 "must be finite and >= 0 (0 = greedy)");
  }
  check_values(op, "top_k", p.top_k, rows, [](int64_t k) { return k >= 0; },
               "must be >= 0 (0 = off)");
  check_values(op, "top_p", p.top_p, rows, [](double v) { return v > 0.0 && v <= 1.0; },
               "must be in (0, 1] (1 = off)");
  check_values(op, "min_p", p.min_p, rows, [](double v) { return v >= 0.0 && v <= 1.0; },
               "must be in [0, 1] (0 = off)");
  if (p.method != SamplingMethod::kInverseCdf && p.method != SamplingMethod::kGumbelMax) {
    throw Error(ErrorKind::kInvalidArgument, op, "method",
                std::to_string(static_cast<int>(p.method)), "must be kInverseCdf or kGumbelMax");
  }
}

// tokens: i64 of shape (B) or (B, D). Returns D.
int64_t check_tokens(const char* op, const ConstTensorView& x, const TensorView& tokens) {
  detail::check_output_view(op, "tokens", tokens);
  if (tokens.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "tokens", dtype_name(tokens.dtype), "must be i64");
  }
  const int64_t b = x.shape[0];
  if (!((tokens.rank() == 1 && tokens.shape[0] == b) ||
        (tokens.rank() == 2 && tokens.shape[0] == b))) {
    throw Error(ErrorKind::kShapeMismatch, op, "tokens", detail::shape_str(tokens.shape),
                "must have shape (" + std::to_string(b) + ",) or (" + std::to_string(b) +
                    ", draws)");
  }
  detail::check_no_overlap(op, x, tokens, /*allow_alias=*/false);
  return tokens.rank() == 2 ? tokens.shape[1] : 1;
}

// One thread's row scratch.
struct RowScratch {
  std::vector<unsigned char> gathered;
  std::vector<float> wf;
  std::vector<double> wd;
  detail::RowFilter<float> ff;
  detail::RowFilter<double> fd;
};

// A contiguous view of row r (gathered into scratch when strided).
const void* row_ptr(const ConstTensorView& x, int64_t r, RowScratch& s) {
  const auto es = static_cast<int64_t>(dtype_size(x.dtype));
  const char* base = static_cast<const char*>(x.data) + r * x.strides[0] * es;
  if (x.strides[1] == 1) return base;
  const auto n = x.shape[1];
  s.gathered.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(es));
  detail::gather(base, x.strides[1], n, static_cast<std::size_t>(es), s.gathered.data());
  return s.gathered.data();
}

// f32 temperature as the kernel divides by it: never 0 or inf, so (x - max) / t is -inf or
// finite (-inf / t = -inf) and 0 / t = 0 at the maximum.
float kernel_temperature(double t) {
  return static_cast<float>(std::clamp(t, static_cast<double>(FLT_TRUE_MIN),
                                       static_cast<double>(FLT_MAX)));
}

struct SampleJob {
  const char* op;
  ConstTensorView x;
  const SamplingParams* p;
  bool probs;
  uint64_t seed, offset;
  int64_t draws;
  int64_t* out;  // (B, draws)
  RowError* errors;

  template <class W>
  void draw_row(detail::RowFilter<W>& f, const W* w, int64_t n, W w_max, int64_t r,
                uint64_t stream) const {
    detail::FilterSpec spec;
    spec.top_k = p->top_k[r];
    spec.top_p = p->top_p[r];
    spec.min_p = p->min_p[r];
    f.filter(w, n, w_max, spec);
    for (int64_t d = 0; d < draws; ++d) {
      const uint64_t off = offset + static_cast<uint64_t>(d);
      out[r * draws + d] =
          p->method == SamplingMethod::kGumbelMax
              ? f.draw_gumbel(w, seed, off, stream)
              : f.draw(detail::philox_u64(seed, off, stream, 0));
    }
  }

  void row(const cpu::KernelTable& k, const cpu::SamplingKernelTable& sk, int64_t r,
           RowScratch& s) const {
    const int64_t n = x.shape[1];
    const void* xr = row_ptr(x, r, s);
    const double t = p->temperature[r];
    const uint64_t stream = p->streams.empty() ? static_cast<uint64_t>(r) : p->streams[r];
    const cpu::RowRange range = sk.row_range(xr, x.dtype, n);
    if (range.has_nan) return void(errors[r] = RowError::kNaN);
    if (range.max == kInf) return void(errors[r] = RowError::kPosInf);
    if (probs) {
      if (range.min < 0) return void(errors[r] = RowError::kNegative);
      if (range.max == 0) return void(errors[r] = RowError::kAllZero);
    } else if (range.max == -kInf) {
      return void(errors[r] = RowError::kAllNegInf);
    }
    if (t == 0.0) {  // greedy: argmax, lowest id on ties; no randomness, filters irrelevant
      const int64_t id = k.argmax(xr, x.dtype, n).index;
      for (int64_t d = 0; d < draws; ++d) out[r * draws + d] = id;
      return;
    }
    if (x.dtype == DType::f64) {
      const double* w = static_cast<const double*>(xr);
      double w_max = range.max;
      if (!probs) {
        s.wd.resize(static_cast<std::size_t>(n));
        sk.weights_f64(static_cast<const double*>(xr), n, range.max, t, s.wd.data());
        w = s.wd.data();
        w_max = 1.0;
      }
      draw_row(s.fd, w, n, w_max, r, stream);
      return;
    }
    const float* w = nullptr;
    float w_max = static_cast<float>(range.max);
    if (!probs) {
      s.wf.resize(static_cast<std::size_t>(n));
      sk.weights_f32(xr, x.dtype, n, static_cast<float>(range.max), kernel_temperature(t),
                     s.wf.data());
      w = s.wf.data();
      w_max = 1.0f;
    } else if (x.dtype == DType::f32) {
      w = static_cast<const float*>(xr);
    } else {
      s.wf.resize(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        s.wf[i] = static_cast<float>(detail::load_as_double(xr, x.dtype, i));
      }
      w = s.wf.data();
    }
    draw_row(s.ff, w, n, w_max, r, stream);
  }
};

int row_threads(int requested, int64_t rows, int64_t n) {
  if (rows <= 1 || rows * n < detail::kMinParallelElems) return 1;
  return detail::resolve_threads(requested);
}

void sample_impl(const char* op, const char* arg, const ConstTensorView& x,
                 const TensorView& tokens, const SamplingParams& p, uint64_t seed,
                 uint64_t offset, bool probs) {
  check_rows(op, arg, x);
  const int64_t draws = check_tokens(op, x, tokens);
  const int64_t rows = x.shape[0];
  check_params(op, p, rows, probs);
  if (rows == 0 || draws == 0) return;

  std::vector<int64_t> out(static_cast<std::size_t>(rows * draws));
  std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
  const SampleJob job{op, x, &p, probs, seed, offset, draws, out.data(), errors.data()};
  const cpu::KernelTable& k = cpu::kernels();
  const cpu::SamplingKernelTable& sk = cpu::sampling_kernels();
  detail::parallel_for(rows, row_threads(p.threads, rows, x.shape[1]), [&](int64_t b, int64_t e) {
    RowScratch s;
    for (int64_t r = b; r < e; ++r) job.row(k, sk, r, s);
  });
  for (int64_t r = 0; r < rows; ++r) {
    if (errors[r] != RowError::kNone) throw_row_error(op, arg, r, errors[r]);
  }
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

template <class T>
void logprobs_row(const T* x, int64_t len, int64_t n, double max, double temperature,
                  const cpu::SamplingKernelTable& sk, std::vector<T>& w, int64_t* ids,
                  double* lp) {
  using Key = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
  w.resize(static_cast<std::size_t>(len));
  T t;
  if constexpr (std::is_same_v<T, float>) {
    t = kernel_temperature(temperature);
    sk.weights_f32(x, DType::f32, len, static_cast<float>(max), t, w.data());
  } else {
    t = temperature;
    sk.weights_f64(x, len, max, t, w.data());
  }
  double acc[4] = {0, 0, 0, 0};  // fixed order: element i goes to acc[i % 4]
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(w[i + j]);
  }
  for (; i < len; ++i) acc[0] += static_cast<double>(w[i]);
  const double log_sum = std::log((acc[0] + acc[1]) + (acc[2] + acc[3]));
  std::vector<std::pair<Key, uint32_t>> sel;
  top_n<T, Key>(x, len, n, sel);
  const T m = static_cast<T>(max);
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t id = sel[j].second;
    T z = x[id] - m;
    if (t != T(1)) z = z / t;
    ids[j] = id;
    lp[j] = static_cast<double>(z) - log_sum;
  }
}

}  // namespace

void sample(ConstTensorView logits, TensorView tokens, const SamplingParams& params,
            uint64_t seed, uint64_t offset) {
  sample_impl("sample", "logits", logits, tokens, params, seed, offset, /*probs=*/false);
}

std::vector<int64_t> sample(ConstTensorView logits, const SamplingParams& params, uint64_t seed,
                            uint64_t offset) {
  check_rows("sample", "logits", logits);
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
  check_rows("sample_from_probs", "probs", probs);
  std::vector<int64_t> out(static_cast<std::size_t>(probs.shape[0]));
  sample_from_probs(probs, TensorView(out.data(), DType::i64, {probs.shape[0]}), params, seed,
                    offset);
  return out;
}

TopLogprobs top_logprobs(ConstTensorView logits, int64_t n, double temperature, int threads) {
  const char* op = "top_logprobs";
  check_rows(op, "logits", logits);
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
  detail::parallel_for(rows, row_threads(threads, rows, len), [&](int64_t b, int64_t e) {
    RowScratch s;
    std::vector<float> xf;
    for (int64_t r = b; r < e; ++r) {
      const void* xr = row_ptr(logits, r, s);
      const cpu::RowRange range = sk.row_range(xr, logits.dtype, len);
      if (range.has_nan) errors[r] = RowError::kNaN;
      else if (range.max == kInf) errors[r] = RowError::kPosInf;
      else if (range.max == -kInf) errors[r] = RowError::kAllNegInf;
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
  for (int64_t r = 0; r < rows; ++r) {
    if (errors[r] != RowError::kNone) throw_row_error(op, "logits", r, errors[r]);
  }
  return res;
}

}  // namespace softmax
