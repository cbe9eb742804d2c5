// src/core/sampling_rows.cc: the shared row preparation of the sampling ops
// (src/core/sampling_rows.hpp).
#include "src/core/sampling_rows.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"

namespace softmax::detail {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Token ids enter Philox counters as a 32-bit word (2^32 - 1 is reserved for stream keys).
constexpr int64_t kMaxIds = int64_t{1} << 32;

template <class T>
void check_per_row(const char* op, const char* arg, const PerRow<T>& v, int64_t rows) {
  if (v.per_row() && static_cast<int64_t>(v.size()) != rows) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, std::to_string(v.size()) + " values",
                "a per-row parameter needs one value per row (" + std::to_string(rows) + ")");
  }
}

void check_row_span(const char* op, const char* arg, std::span<const uint64_t> s, int64_t rows) {
  if (!s.empty() && static_cast<int64_t>(s.size()) != rows) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, std::to_string(s.size()) + " values",
                "needs one value per row (" + std::to_string(rows) + ") or none");
  }
}

template <class T, class Pred>
void check_values(const char* op, const char* arg, const PerRow<T>& v, int64_t rows, Pred ok,
                  const char* rule) {
  const int64_t count = v.per_row() ? rows : 1;
  for (int64_t r = 0; r < count; ++r) {
    if (!ok(v[r])) {
      std::string value = num_str(static_cast<double>(v[r]));
      if (v.per_row()) value += " (row " + std::to_string(r) + ")";
      throw Error(ErrorKind::kInvalidArgument, op, arg, value, rule);
    }
  }
}

// Row r's logits in the compute type with the processors applied.
template <class T>
const T* processed_row(const void* xr, DType dtype, int64_t n, const LogitProcessors& lp, int64_t r,
                       std::vector<T>& buf, RowProcessor& proc) {
  buf.resize(static_cast<std::size_t>(n));
  if (dtype == DType::f32 && std::is_same_v<T, float>) {
    std::memcpy(buf.data(), xr, static_cast<std::size_t>(n) * sizeof(float));
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<T>(load_as_double(xr, dtype, i));
  }
  proc.apply(lp, r, buf.data(), n);
  return buf.data();
}

}  // namespace

// f32 temperature as the kernel divides by it: never 0 or inf, so (x - max) / t is -inf or
// finite (-inf / t = -inf) and 0 / t = 0 at the maximum.
float kernel_temperature(double t) {
  return static_cast<float>(
      std::clamp(t, static_cast<double>(FLT_TRUE_MIN), static_cast<double>(FLT_MAX)));
}

// A contiguous view of row r (gathered into scratch when strided).
const void* row_ptr(const ConstTensorView& x, int64_t r, RowScratch& s) {
  const auto es = static_cast<int64_t>(dtype_size(x.dtype));
  const char* base = static_cast<const char*>(x.data) + r * x.strides[0] * es;
  if (x.strides[1] == 1) return base;
  const auto n = x.shape[1];
  s.gathered.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(es));
  gather(base, x.strides[1], n, static_cast<std::size_t>(es), s.gathered.data());
  return s.gathered.data();
}

RowScratch& thread_scratch() {
  thread_local RowScratch s;
  return s;
}

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
                  "a row needs at least one finite logit (after the logit processors)");
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

void throw_first_row_error(const char* op, const char* arg, const std::vector<RowError>& errors) {
  for (std::size_t r = 0; r < errors.size(); ++r) {
    if (errors[r] != RowError::kNone) throw_row_error(op, arg, static_cast<int64_t>(r), errors[r]);
  }
}

void check_sampling_rows(const char* op, const char* arg, const ConstTensorView& x) {
  check_view(op, arg, x);
  check_float_dtype(op, arg, x.dtype);
  if (x.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, shape_str(x.shape),
                "must have rank 2: (batch, vocabulary)");
  }
  if (x.shape[1] == 0) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, shape_str(x.shape),
                "the vocabulary (dimension 1) must not be empty");
  }
  if (x.shape[1] >= kMaxIds) {
    throw Error(ErrorKind::kUnsupported, op, arg, shape_str(x.shape),
                "the vocabulary must be < 2^32 tokens");
  }
}

void check_sampling_params(const char* op, const SamplingParams& p, int64_t rows, int64_t vocab,
                           bool probs) {
  check_threads(op, p.threads);
  check_per_row(op, "temperature", p.temperature, rows);
  check_per_row(op, "top_k", p.top_k, rows);
  check_per_row(op, "top_p", p.top_p, rows);
  check_per_row(op, "min_p", p.min_p, rows);
  check_row_span(op, "streams", p.streams, rows);
  check_row_span(op, "seeds", p.seeds, rows);
  check_row_span(op, "offsets", p.offsets, rows);
  if (probs) {
    check_values(
        op, "temperature", p.temperature, rows, [](double t) { return t == 0.0 || t == 1.0; },
        "must be 1 (temperature applies to logits; use sample) or 0 (greedy)");
    if (p.processors != nullptr) {
      throw Error(ErrorKind::kInvalidArgument, op, "processors", "given",
                  "logit processors apply to logits; use sample");
    }
  } else {
    check_values(
        op, "temperature", p.temperature, rows,
        [](double t) { return t >= 0.0 && std::isfinite(t); },
        "must be finite and >= 0 (0 = greedy)");
  }
  check_values(
      op, "top_k", p.top_k, rows, [](int64_t k) { return k >= -1; },
      "must be >= 0, or -1 (0 and -1 = off)");
  check_values(
      op, "top_p", p.top_p, rows, [](double v) { return v > 0.0 && v <= 1.0; },
      "must be in (0, 1] (1 = off)");
  check_values(
      op, "min_p", p.min_p, rows, [](double v) { return v >= 0.0 && v <= 1.0; },
      "must be in [0, 1] (0 = off)");
  if (p.method != SamplingMethod::kInverseCdf && p.method != SamplingMethod::kGumbelMax) {
    throw Error(ErrorKind::kInvalidArgument, op, "method",
                std::to_string(static_cast<int>(p.method)), "must be kInverseCdf or kGumbelMax");
  }
  if (p.processors != nullptr) check_processors(op, *p.processors, rows, vocab);
}

int sampling_threads(int requested, int64_t rows, int64_t n) {
  if (rows <= 1 || rows * n < kMinParallelElems) return 1;
  return resolve_threads(requested);
}

PreparedRow RowPreparer::prepare(int64_t r, RowScratch& s, bool weights) const {
  PreparedRow out;
  const int64_t n = x.shape[1];
  out.x = row_ptr(x, r, s);
  out.dtype = x.dtype;
  const RowRandom rr = row_random(*p, r, seed, offset);
  out.seed = rr.seed;
  out.offset = rr.offset;
  out.stream = rr.stream;
  if (p->processors != nullptr && processors_active(*p->processors)) {
    if (x.dtype == DType::f64) {
      out.x = processed_row(out.x, x.dtype, n, *p->processors, r, s.pd, s.proc);
      out.dtype = DType::f64;
    } else {
      out.x = processed_row(out.x, x.dtype, n, *p->processors, r, s.pf, s.proc);
      out.dtype = DType::f32;
    }
  }
  const cpu::RowRange range = sk->row_range(out.x, out.dtype, n);
  out.max = range.max;
  if (range.has_nan)
    out.error = RowError::kNaN;
  else if (range.max == kInf)
    out.error = RowError::kPosInf;
  else if (probs && range.min < 0)
    out.error = RowError::kNegative;
  else if (probs && range.max == 0)
    out.error = RowError::kAllZero;
  else if (!probs && range.max == -kInf)
    out.error = RowError::kAllNegInf;
  if (out.error != RowError::kNone) return out;
  const double t = p->temperature[r];
  if (t == 0.0) {  // greedy: argmax, lowest id on ties; no randomness, filters irrelevant
    out.greedy = true;
    out.argmax = k->argmax(out.x, out.dtype, n).index;
    return out;
  }
  if (!weights) return out;
  if (out.dtype == DType::f64) {
    out.f64 = true;
    out.wd = static_cast<const double*>(out.x);
    out.wd_max = range.max;
    if (!probs) {
      s.wd.resize(static_cast<std::size_t>(n));
      sk->weights_f64(static_cast<const double*>(out.x), n, range.max, t, s.wd.data());
      out.wd = s.wd.data();
      out.wd_max = 1.0;
    }
    return out;
  }
  out.wf_max = static_cast<float>(range.max);
  if (!probs) {
    s.wf.resize(static_cast<std::size_t>(n));
    sk->weights_f32(out.x, out.dtype, n, static_cast<float>(range.max), kernel_temperature(t),
                    s.wf.data());
    out.wf = s.wf.data();
    out.wf_max = 1.0f;
  } else if (out.dtype == DType::f32) {
    out.wf = static_cast<const float*>(out.x);
  } else {
    s.wf.resize(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      s.wf[i] = static_cast<float>(load_as_double(out.x, out.dtype, i));
    out.wf = s.wf.data();
  }
  return out;
}

}  // namespace softmax::detail
