// src/core/row_stats_api.cc: the public row-statistics API (softmax/row_stats.hpp). The records
// are the single-process chunk partials (src/core/row_stats.hpp: chunk_partial), merged with the
// single-process merge (merge_chunks) and finished with the single-process kernels
// (scale_blocks, normalize, logsumexp_value), exactly as src/core/softmax_ops.cc and the
// vocabulary-parallel ops (src/dist/softmax_ops.cc) do with theirs.
#include "softmax/row_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/row_stats.hpp"
#include "src/core/rows.hpp"
#include "src/core/widen.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax {
namespace {

using cpu::ChunkStats;
using cpu::kBlockElems;
using cpu::kChunkElems;
using cpu::Temperature;
using detail::PartialKind;
using detail::RowStats;

constexpr int64_t K = kStatsFields;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
static_assert(kStatsChunk == kChunkElems, "records are the single-process chunks");

std::string num_str(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

uint64_t bits_of(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

// The values of a statistics view, row-major (rows..., C, K).
std::vector<double> load(const ConstTensorView& s) {
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  std::size_t i = 0;
  const auto* p = static_cast<const double*>(s.data);
  detail::for_each_element(s.shape, s.strides, [&](int64_t off) { v[i++] = p[off]; });
  return v;
}

void store(const TensorView& s, const std::vector<double>& v) {
  std::size_t i = 0;
  auto* p = static_cast<double*>(s.data);
  detail::for_each_element(s.shape, s.strides, [&](int64_t off) { p[off] = v[i++]; });
}

// What every record of a statistics tensor agrees on.
struct StatsInfo {
  bool any = false;  // holds at least one record
  double temperature = 1.0;
  bool f64 = false;
};

// A statistics view: f64, rank >= 2, (..., C >= 1, kStatsFields).
void check_stats_view(const char* op, const char* arg, const ConstTensorView& s) {
  detail::check_view(op, arg, s);
  if (s.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(s.dtype),
                "statistics are f64 (rows..., C, " + std::to_string(K) + ")");
  }
  if (s.rank() < 2 || s.shape.back() != K || s.shape[s.shape.size() - 2] < 1) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + detail::shape_str(s.shape),
                "statistics have shape (rows..., C, " + std::to_string(K) + ") with C >= 1");
  }
}

// The rows... of a statistics shape.
std::vector<int64_t> rows_of(const std::vector<int64_t>& s) {
  return std::vector<int64_t>(s.begin(), s.end() - 2);
}

// Every record: temperature finite > 0 and the same, flags in [0, 3] with one compute type,
// count an integer in [0, kStatsChunk].
StatsInfo check_stats_values(const char* op, const char* arg, const std::vector<double>& v,
                             StatsInfo info = {}) {
  for (std::size_t r = 0; r + K <= v.size(); r += K) {
    const double t = v[r + kStatTemperature], f = v[r + kStatFlags], n = v[r + kStatCount];
    const std::string at = "record " + std::to_string(r / K) + ": ";
    if (!(t > 0.0 && t < std::numeric_limits<double>::infinity())) {
      throw Error(ErrorKind::kInvalidArgument, op, arg, at + "temperature " + num_str(t),
                  "must be finite and > 0 (not statistics from softmax_stats)");
    }
    if (!(f == 0.0 || f == 1.0 || f == 2.0 || f == 3.0)) {
      throw Error(ErrorKind::kInvalidArgument, op, arg, at + "flags " + num_str(f),
                  "must be 0, 1, 2 or 3 (not statistics from softmax_stats)");
    }
    if (!(n >= 0.0 && n <= static_cast<double>(kStatsChunk) && n == std::floor(n))) {
      throw Error(ErrorKind::kInvalidArgument, op, arg, at + "count " + num_str(n),
                  "must be an integer in [0, " + std::to_string(kStatsChunk) + "]");
    }
    const bool f64 = (static_cast<int>(f) & kStatFlagF64) != 0;
    if (!info.any) {
      info = StatsInfo{true, t, f64};
    } else if (bits_of(t) != bits_of(info.temperature)) {
      throw Error(ErrorKind::kInvalidArgument, op, arg, at + "temperature " + num_str(t),
                  "every record must have the same temperature (others have " +
                      num_str(info.temperature) + ")");
    } else if (f64 != info.f64) {
      throw Error(ErrorKind::kInvalidArgument, op, arg, at + (f64 ? "f64 compute" : "f32 compute"),
                  "every record must have the same compute type (flag bit 1)");
    }
  }
  return info;
}

// The two views of a record: the plain partial (softmax) and the log-mode partial.
ChunkStats plain_view(const double* r) {
  const bool nan = (static_cast<int>(r[kStatFlags]) & kStatFlagNaN) != 0;
  return ChunkStats{r[kStatMax], r[kStatSum], nan, 0.0, r[kStatSum]};
}
ChunkStats log_view(const double* r) {
  const bool nan = (static_cast<int>(r[kStatFlags]) & kStatFlagNaN) != 0;
  return ChunkStats{r[kStatLogMax], r[kStatOnes] + r[kStatRest], nan, r[kStatOnes], r[kStatRest]};
}

// A row's records merged (the single-process merge, in class order), and its class count.
struct Merged {
  RowStats plain, log;
  int64_t count;
};
Merged merge_row(const cpu::KernelTable& k, const double* rec, int64_t c, const Temperature& temp,
                 std::vector<ChunkStats>& scratch) {
  Merged m{};
  scratch.resize(static_cast<std::size_t>(c));
  m.count = 0;
  for (int64_t i = 0; i < c; ++i) {
    scratch[i] = plain_view(rec + i * K);
    m.count += static_cast<int64_t>(rec[i * K + kStatCount]);
  }
  m.plain = detail::merge_chunks(k, scratch.data(), c, temp);
  for (int64_t i = 0; i < c; ++i) scratch[i] = log_view(rec + i * K);
  m.log = detail::merge_chunks(k, scratch.data(), c, temp);
  return m;
}

// x as a contiguous f64 copy (f32/bf16/f16 input whose T leaves the f32 range).
std::vector<double> widen(const ConstTensorView& x) {
  std::vector<double> xd(static_cast<std::size_t>(std::max<int64_t>(x.numel(), 1)));
  std::size_t i = 0;
  detail::for_each_element(x.shape, x.strides, [&](int64_t off) {
    xd[i++] = detail::load_as_double(x.data, x.dtype, off);
  });
  return xd;
}

// The records of every row of x (validated; f64 when !temp.f32_ok()), row-major.
void compute_stats(const ConstTensorView& x, int64_t axis, const Temperature& temp, double t_value,
                   const std::vector<double>* refine, int64_t refine_c, std::vector<double>& out) {
  const cpu::KernelTable& k = cpu::kernels();
  const std::vector<int64_t> rows_shape = detail::reduced_shape(x.shape, axis, false);
  const std::vector<double> dummy(1);
  const ConstTensorView yv(dummy.data(), DType::f64, rows_shape);
  const detail::RowGeometry g = detail::make_row_geometry(x, yv, axis, true);
  const int64_t n = g.n, chunks = detail::num_chunks(n);
  const bool f64 = x.dtype == DType::f64;
  const double flag64 = f64 ? static_cast<double>(kStatFlagF64) : 0.0;
  const auto xes = dtype_size(x.dtype);
  const int threads = detail::current_exec().threads;
  const int outer = g.rows * std::max<int64_t>(n, 1) >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    std::vector<unsigned char> buf;
    std::vector<ChunkStats> scratch;
    detail::for_each_row(g, b, e, [&](int64_t r, int64_t xo, int64_t) {
      const char* src = static_cast<const char*>(x.data) + xo * static_cast<int64_t>(xes);
      if (g.x_step != 1 && n > 1) {
        buf.resize(static_cast<std::size_t>(n) * xes);
        detail::gather(src, g.x_step, n, xes, buf.data());
        src = reinterpret_cast<const char*>(buf.data());
      }
      // What the single-process ops know of the row before summing this chunk.
      double known = kNaN;    // f64: the row's max (rows of more than one chunk)
      bool log_redo = false;  // f32: a near-certain row, summed again with its max known
      double log_known = kNaN;
      if (refine) {
        const Merged m = merge_row(k, refine->data() + r * refine_c * K, refine_c, temp, scratch);
        if (f64) {
          if (m.count > kChunkElems && !m.plain.special()) known = m.plain.max;
        } else if (detail::needs_log_pass(m.plain)) {
          log_redo = true;
          log_known = m.plain.max;
        }
      }
      double* rec = out.data() + r * chunks * K;
      for (int64_t c = 0; c < chunks; ++c, rec += K) {
        const ChunkStats p =
            detail::chunk_partial(k, src, x.dtype, n, c, PartialKind::kPlain, temp, known);
        ChunkStats q = p;
        if (f64) {
          q = detail::chunk_partial(k, src, x.dtype, n, c, PartialKind::kLog, temp, known);
        } else if (log_redo) {
          q = detail::chunk_partial(k, src, x.dtype, n, c, PartialKind::kLog, temp, log_known);
        }
        rec[kStatMax] = p.max;
        rec[kStatSum] = p.sum;
        rec[kStatLogMax] = q.max;
        rec[kStatOnes] = q.ones;
        rec[kStatRest] = q.rest;
        rec[kStatCount] = static_cast<double>(std::min(kChunkElems, n - c * kChunkElems));
        rec[kStatFlags] = ((p.has_nan || q.has_nan) ? 1.0 : 0.0) + flag64;
        rec[kStatTemperature] = t_value;
      }
    });
  });
}

void stats_op(const char* op, const ConstTensorView& x, const ConstTensorView* refine,
              const TensorView& stats, const SoftmaxOptions& o) {
  detail::check_view(op, "x", x);
  detail::check_float_dtype(op, "x", x.dtype);
  detail::check_output_view(op, "stats", stats);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  if (stats.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "stats", dtype_name(stats.dtype),
                "statistics are f64");
  }
  detail::check_same_shape(op, "stats", softmax_stats_shape(x.shape, axis), stats.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, stats, /*allow_alias=*/false, "stats", "x");
  const Temperature temp = cpu::MakeTemperature(o.temperature);
  const bool f64 = x.dtype == DType::f64 || !temp.f32_ok();
  std::vector<double> ref;
  int64_t refine_c = 0;
  if (refine) {
    check_stats_view(op, "refine", *refine);
    detail::check_same_shape(op, "refine", rows_of(stats.shape), rows_of(refine->shape));
    detail::check_no_overlap(op, *refine, stats, /*allow_alias=*/false, "stats", "refine");
    ref = load(*refine);
    const StatsInfo info = check_stats_values(op, "refine", ref);
    if (info.any && bits_of(info.temperature) != bits_of(o.temperature)) {
      throw Error(ErrorKind::kInvalidArgument, op, "refine",
                  "temperature " + num_str(info.temperature),
                  "must be the temperature of this call (" + num_str(o.temperature) + ")");
    }
    if (info.any && info.f64 != f64) {
      throw Error(ErrorKind::kInvalidArgument, op, "refine",
                  info.f64 ? "f64 compute" : "f32 compute",
                  std::string("must have this call's compute type (") + (f64 ? "f64" : "f32") +
                      " for x " + dtype_name(x.dtype) + ")");
    }
    refine_c = refine->shape[refine->shape.size() - 2];
  }
  std::vector<double> out(static_cast<std::size_t>(stats.numel()));
  if (!out.empty()) {
    if (x.dtype != DType::f64 && !temp.f32_ok()) {
      std::vector<double> xd = widen(x);
      compute_stats(ConstTensorView(xd.data(), DType::f64, x.shape), axis, temp, o.temperature,
                    refine ? &ref : nullptr, refine_c, out);
    } else {
      compute_stats(x, axis, temp, o.temperature, refine ? &ref : nullptr, refine_c, out);
    }
  }
  store(stats, out);
}

// Validates stats against x (rows, compute type, class count) for the finishing ops; returns
// the loaded values and their info.
struct LoadedStats {
  std::vector<double> v;
  StatsInfo info;
  int64_t c = 1;
};
LoadedStats load_for(const char* op, const ConstTensorView& stats,
                     const std::vector<int64_t>& rows_shape) {
  check_stats_view(op, "stats", stats);
  detail::check_same_shape(op, "stats", rows_shape, rows_of(stats.shape));
  LoadedStats L;
  L.v = load(stats);
  L.info = check_stats_values(op, "stats", L.v);
  L.c = stats.shape[stats.shape.size() - 2];
  return L;
}

// softmax / log_softmax of the slice x (validated; f64 or f32-range T) into y.
void finish_rows(const ConstTensorView& x, const TensorView& y, int64_t axis,
                 const Temperature& temp, const LoadedStats& L, bool log_mode) {
  const cpu::KernelTable& k = cpu::kernels();
  const detail::RowGeometry g = detail::make_row_geometry(x, y, axis, false);
  if (g.rows == 0 || g.n == 0) return;
  const int64_t n = g.n, chunks = detail::num_chunks(n);
  const DType xt = x.dtype, yt = y.dtype;
  const DType ct = xt == DType::f64 ? DType::f64 : DType::f32;
  const auto xes = static_cast<int64_t>(dtype_size(xt)), yes = static_cast<int64_t>(dtype_size(yt));
  const auto cs = static_cast<int64_t>(dtype_size(ct));
  const int threads = detail::current_exec().threads;
  const int outer = g.rows * n >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    std::vector<unsigned char> xbuf, ybuf, work_buf;
    std::vector<double> block_max;
    std::vector<ChunkStats> scratch;
    detail::for_each_row(g, b, e, [&](int64_t r, int64_t xo, int64_t yo) {
      const Merged m = merge_row(k, L.v.data() + r * L.c * K, L.c, temp, scratch);
      const char* src = static_cast<const char*>(x.data) + xo * xes;
      if (g.x_step != 1) {
        xbuf.resize(static_cast<std::size_t>(n * xes));
        detail::gather(src, g.x_step, n, static_cast<std::size_t>(xes), xbuf.data());
        src = reinterpret_cast<const char*>(xbuf.data());
      }
      char* yrow = static_cast<char*>(y.data) + yo * yes;
      char* dst = yrow;
      if (g.y_step != 1) {
        ybuf.resize(static_cast<std::size_t>(n * yes));
        dst = reinterpret_cast<char*>(ybuf.data());
      }
      const RowStats& st = log_mode ? m.log : m.plain;
      if (st.special()) {
        for (int64_t i = 0; i < n; ++i) detail::store_from_double(dst, yt, i, kNaN);
      } else if (log_mode) {
        const double log_sum = st.log_sum();
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t off = c * kChunkElems;
          k.normalize(src + off * xes, xt, dst + off * yes, yt, std::min(kChunkElems, n - off),
                      st.max, temp, log_sum, cpu::RowMode::kLogSoftmax);
        }
      } else {
        // The single-process softmax: the chunk's exps stored with their block maxima (known:
        // an f64 row of more than one chunk sums relative to the row's max), then scaled.
        char* work = dst;
        if (yt != ct) {
          work_buf.resize(static_cast<std::size_t>(n * cs));
          work = reinterpret_cast<char*>(work_buf.data());
        }
        block_max.resize(static_cast<std::size_t>((n + kBlockElems - 1) / kBlockElems));
        const double known = xt == DType::f64 && m.count > kChunkElems ? st.max : kNaN;
        for (int64_t c = 0; c < chunks; ++c) {
          detail::chunk_partial(k, src, xt, n, c, PartialKind::kPlain, temp, known, work,
                                block_max.data());
        }
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t off = c * kChunkElems;
          k.scale_blocks(work + off * cs, dst + off * yes, yt, std::min(kChunkElems, n - off),
                         block_max.data() + off / kBlockElems, st.max, temp, st.sum);
        }
      }
      if (g.y_step != 1) detail::scatter(dst, n, static_cast<std::size_t>(yes), yrow, g.y_step);
    });
  });
}

void from_stats_op(const char* op, const ConstTensorView& x, const ConstTensorView& stats,
                   const TensorView& y, const SoftmaxOptions& o, bool log_mode) {
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  const LoadedStats L = load_for(op, stats, detail::reduced_shape(x.shape, axis, false));
  detail::check_no_overlap(op, stats, y, /*allow_alias=*/false, "y", "stats");
  const int64_t n = x.shape[static_cast<std::size_t>(axis)];
  if (!L.info.any) return;  // no rows
  const Temperature temp = cpu::MakeTemperature(L.info.temperature);
  const bool f64 = x.dtype == DType::f64 || !temp.f32_ok();
  if (f64 != L.info.f64) {
    throw Error(ErrorKind::kInvalidArgument, op, "stats",
                L.info.f64 ? "f64 compute" : "f32 compute",
                std::string("must have x's compute type (") + (f64 ? "f64" : "f32") + " for x " +
                    dtype_name(x.dtype) + " at temperature " + num_str(L.info.temperature) + ")");
  }
  for (std::size_t r = 0; r * static_cast<std::size_t>(L.c * K) < L.v.size(); ++r) {
    int64_t total = 0;
    for (int64_t c = 0; c < L.c; ++c) {
      total += static_cast<int64_t>(L.v[(r * static_cast<std::size_t>(L.c) + c) * K + kStatCount]);
    }
    if (total < n) {
      throw Error(ErrorKind::kShapeMismatch, op, "stats",
                  "row " + std::to_string(r) + ": " + std::to_string(total) + " classes",
                  "must cover the whole row, at least x's " + std::to_string(n) +
                      " classes along axis " + std::to_string(axis));
    }
  }
  if (x.dtype != DType::f64 && !temp.f32_ok()) {
    detail::run_widened(x, y, [&](const ConstTensorView& xd, const TensorView& yd) {
      finish_rows(xd, yd, axis, temp, L, log_mode);
    });
    return;
  }
  finish_rows(x, y, axis, temp, L, log_mode);
}

}  // namespace

std::vector<int64_t> softmax_stats_shape(const std::vector<int64_t>& x_shape, int64_t axis) {
  const int64_t a =
      detail::normalize_axis("softmax_stats_shape", axis, static_cast<int64_t>(x_shape.size()));
  std::vector<int64_t> s = detail::reduced_shape(x_shape, a, false);
  s.push_back(detail::num_chunks(x_shape[static_cast<std::size_t>(a)]));
  s.push_back(K);
  return s;
}

void softmax_stats(ConstTensorView x, TensorView stats, const SoftmaxOptions& options,
                   const Context& context) {
  const detail::ExecScope scope("softmax_stats", context, options.threads);
  stats_op("softmax_stats", x, nullptr, stats, options);
}

void softmax_stats(ConstTensorView x, ConstTensorView refine, TensorView stats,
                   const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope scope("softmax_stats", context, options.threads);
  stats_op("softmax_stats", x, &refine, stats, options);
}

void merge_stats(ConstTensorView a, ConstTensorView b, TensorView out, const Context& context) {
  const char* op = "merge_stats";
  const detail::ExecScope scope(op, context, 0);
  check_stats_view(op, "a", a);
  check_stats_view(op, "b", b);
  detail::check_same_shape(op, "b", rows_of(a.shape), rows_of(b.shape));
  detail::check_output_view(op, "out", out);
  if (out.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "out", dtype_name(out.dtype), "statistics are f64");
  }
  const int64_t ca = a.shape[a.shape.size() - 2], cb = b.shape[b.shape.size() - 2];
  std::vector<int64_t> want = rows_of(a.shape);
  want.push_back(ca + cb);
  want.push_back(K);
  detail::check_same_shape(op, "out", want, out.shape);
  detail::check_no_overlap(op, a, out, /*allow_alias=*/false, "out", "a");
  detail::check_no_overlap(op, b, out, /*allow_alias=*/false, "out", "b");
  const std::vector<double> va = load(a), vb = load(b);
  const StatsInfo ia = check_stats_values(op, "a", va);
  check_stats_values(op, "b", vb, ia);  // b's records must agree with a's
  std::vector<double> v(va.size() + vb.size());
  const auto rows = static_cast<std::size_t>(ca == 0 ? 0 : va.size() / (ca * K));
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(va.begin() + r * ca * K, ca * K, v.begin() + r * (ca + cb) * K);
    std::copy_n(vb.begin() + r * cb * K, cb * K, v.begin() + r * (ca + cb) * K + ca * K);
  }
  store(out, v);
}

void softmax_from_stats(ConstTensorView x, ConstTensorView stats, TensorView y,
                        const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope scope("softmax_from_stats", context, options.threads);
  from_stats_op("softmax_from_stats", x, stats, y, options, false);
}

void log_softmax_from_stats(ConstTensorView x, ConstTensorView stats, TensorView y,
                            const SoftmaxOptions& options, const Context& context) {
  const detail::ExecScope scope("log_softmax_from_stats", context, options.threads);
  from_stats_op("log_softmax_from_stats", x, stats, y, options, true);
}

void logsumexp_from_stats(ConstTensorView stats, TensorView y, const SoftmaxOptions& options,
                          const Context& context) {
  const char* op = "logsumexp_from_stats";
  const detail::ExecScope scope(op, context, options.threads);
  check_stats_view(op, "stats", stats);
  detail::check_output_view(op, "y", y);
  detail::check_float_dtype(op, "y", y.dtype);
  detail::check_same_shape(op, "y", rows_of(stats.shape), y.shape);
  detail::check_no_overlap(op, stats, y, /*allow_alias=*/false, "y", "stats");
  const std::vector<double> v = load(stats);
  const StatsInfo info = check_stats_values(op, "stats", v);
  if (!info.any) return;
  const Temperature temp = cpu::MakeTemperature(info.temperature);
  if (info.f64 && temp.f32_ok() && y.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "y", dtype_name(y.dtype),
                "must be f64 for f64-computed statistics (as logsumexp of f64 x)");
  }
  if (!info.f64 && y.dtype == DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "y", "f64",
                "must be f32, bf16 or f16 for f32-computed statistics (as logsumexp of "
                "f32/bf16/f16 x)");
  }
  const cpu::KernelTable& k = cpu::kernels();
  const int64_t c = stats.shape[stats.shape.size() - 2];
  std::vector<ChunkStats> scratch;
  std::size_t r = 0;
  detail::for_each_element(y.shape, y.strides, [&](int64_t off) {
    const Merged m = merge_row(k, v.data() + r * c * K, c, temp, scratch);
    ++r;
    detail::store_from_double(
        y.data, y.dtype, off,
        detail::logsumexp_value(m.log, temp, info.f64 ? DType::f64 : DType::f32));
  });
}

}  // namespace softmax
