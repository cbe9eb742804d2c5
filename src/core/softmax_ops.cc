// src/core/softmax_ops.cc: the public axis ops. Validation first (nothing is written when it
// fails), then rows are walked, gathered when strided, split across threads, and handed to
// the per-target kernels (src/cpu). Long rows are cut into fixed chunks (kChunkElems) whose
// (max, sum) partials merge in chunk order, so the result never depends on the thread count.
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/core/half.hpp"
#include "src/core/row_stats.hpp"
#include "src/core/rows.hpp"
#include "src/core/verbose.hpp"
#include "src/core/widen.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax {
namespace {

using cpu::kChunkElems;
using cpu::KernelTable;
using cpu::RowMode;
using cpu::Temperature;
using detail::logsumexp_value;
using detail::num_chunks;
using detail::row_stats;
using detail::row_stats_log;
using detail::RowGeometry;
using detail::RowStats;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Scratch buffers for gathering one strided row (per thread).
struct Scratch {
  std::vector<unsigned char> x, y, work;
  std::vector<double> block_max;
  void* ensure(std::vector<unsigned char>& b, std::size_t bytes) {
    if (b.size() < bytes) b.resize(bytes);
    return b.data();
  }
};

// Everything a normalising op (softmax / log_softmax) needs per row.
struct NormalizeJob {
  const KernelTable* k;
  RowGeometry g;
  const char* x;
  char* y;
  DType xt, yt;
  std::size_t xes, yes;
  Temperature temp;
  RowMode mode;
  int threads;  // for the chunks of one long row
  const char* op_name() const { return mode == RowMode::kSoftmax ? "softmax" : "log_softmax"; }

  void row(const char* xrow, char* yrow, Scratch& s, int row_threads) const {
    const int64_t n = g.n;
    const void* src = xrow;
    if (g.x_step != 1) {
      void* buf = s.ensure(s.x, static_cast<std::size_t>(n) * xes);
      detail::gather(xrow, g.x_step, n, xes, buf);
      src = buf;
    }
    void* dst =
        g.y_step == 1 ? static_cast<void*>(yrow) : s.ensure(s.y, static_cast<std::size_t>(n) * yes);
    const int64_t chunks = num_chunks(n);
    if (mode == RowMode::kSoftmax) {
      // Pass 1 stores exp((x - m_block) / T) in the compute type (into y itself when it has
      // that type), pass 2 scales each block once: one exp per element, and the row is read
      // from memory once.
      const DType ct = xt == DType::f64 ? DType::f64 : DType::f32;
      const std::size_t cs = dtype_size(ct);
      void* work = yt == ct ? dst : s.ensure(s.work, static_cast<std::size_t>(n) * cs);
      s.block_max.resize(static_cast<std::size_t>((n + cpu::kBlockElems - 1) / cpu::kBlockElems));
      double* bm = s.block_max.data();
      const RowStats st = row_stats(*k, src, xt, n, temp, row_threads, false, work, bm);
      if (st.special()) {
        for (int64_t i = 0; i < n; ++i) detail::store_from_double(dst, yt, i, kNaN);
      } else {
        detail::parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c) {
            const int64_t off = c * kChunkElems;
            k->scale_blocks(static_cast<const char*>(work) + off * static_cast<int64_t>(cs),
                            static_cast<char*>(dst) + off * static_cast<int64_t>(yes), yt,
                            std::min(kChunkElems, n - off), bm + off / cpu::kBlockElems, st.max,
                            temp, st.sum);
          }
        });
      }
    } else {
      const RowStats st = row_stats_log(*k, src, xt, n, temp, row_threads);
      if (st.special()) {
        for (int64_t i = 0; i < n; ++i) detail::store_from_double(dst, yt, i, kNaN);
      } else {
        const double log_sum = st.log_sum();
        detail::parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c) {
            const int64_t off = c * kChunkElems;
            k->normalize(static_cast<const char*>(src) + off * static_cast<int64_t>(xes), xt,
                         static_cast<char*>(dst) + off * static_cast<int64_t>(yes), yt,
                         std::min(kChunkElems, n - off), st.max, temp, log_sum, mode);
          }
        });
      }
    }
    if (g.y_step != 1) detail::scatter(dst, n, yes, yrow, g.y_step);
  }
};

// SOFTMAX_VERBOSE=1: which path runs and why.
void log_path(const char* op, const KernelTable& k, const RowGeometry& g, DType xt, DType yt,
              int threads, const char* path, const char* why) {
  if (!detail::verbose_enabled()) return;
  detail::verbose_log(
      op, std::string("rows=") + std::to_string(g.rows) + " n=" + std::to_string(g.n) + " " +
              dtype_name(xt) + "->" + dtype_name(yt) + " target=" + k.target_name +
              " threads=" + std::to_string(threads) + " path=" + path + " (" + why + ")");
}

// Fast path for many short contiguous rows with a constant row stride: whole ranges of rows go
// to one kernel call (bit-identical to the per-row path). Returns false when not applicable.
bool run_short_rows(const KernelTable& k, const RowGeometry& g, const char* x, DType xt, char* y,
                    DType yt, const Temperature& temp, RowMode mode, int threads) {
  const bool reduction = mode == RowMode::kLogSumExp;
  if (g.n > cpu::kBlockElems || g.x_step != 1 || (!reduction && g.y_step != 1) ||
      g.dims.size() > 1) {
    return false;
  }
  const int64_t xs = g.dims.empty() ? 0 : g.x_strides[0];
  const int64_t ys = g.dims.empty() ? 0 : g.y_strides[0];
  log_path(reduction                   ? "logsumexp"
           : mode == RowMode::kSoftmax ? "softmax"
                                       : "log_softmax",
           k, g, xt, yt, threads, "short-rows",
           "contiguous rows of <= 2048 elements with a constant stride: one block per row kept "
           "in L1, batches of rows per kernel call, rows split across threads");
  const auto xes = static_cast<int64_t>(dtype_size(xt)), yes = static_cast<int64_t>(dtype_size(yt));
  const int outer = g.rows * std::max<int64_t>(g.n, 1) >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    k.rows(x + b * xs * xes, xt, xs, y + b * ys * yes, yt, ys, e - b, g.n, temp, mode);
  });
  return true;
}

// Runs job.row over every row: rows split across threads, or, when there are fewer rows than
// threads and rows are long, each row's chunks split across threads.
template <class Job>
void run_rows(const Job& job, int threads) {
  const RowGeometry& g = job.g;
  const bool split_rows = g.rows >= threads || g.n <= 2 * kChunkElems;
  const int row_threads = split_rows ? 1 : threads;
  log_path(job.op_name(), *job.k, g, job.xt, job.yt, threads, split_rows ? "rows" : "split-row",
           split_rows ? (g.x_step != 1 ? "strided axis: each row gathered, then chunked online "
                                         "(max, sum) per 32768 elements, rows across threads"
                                       : "long or irregular rows: online (max, sum) per block of "
                                         "2048, fixed chunks of 32768, rows across threads")
                      : "fewer rows than threads: each row's fixed 32768-element chunks split "
                        "across threads, partials merged in chunk order");
  const int outer =
      (split_rows && g.rows * std::max<int64_t>(g.n, 1) >= detail::kMinParallelElems) ? threads : 1;
  detail::parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    Scratch s;
    detail::for_each_row(g, b, e, [&](int64_t, int64_t xo, int64_t yo) {
      job.row(job.x + xo * static_cast<int64_t>(job.xes),
              job.y + yo * static_cast<int64_t>(job.yes), s, row_threads);
    });
  });
}

void normalize_op(const char* op, const ConstTensorView& x, const TensorView& y,
                  const SoftmaxOptions& o, RowMode mode) {
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  const Temperature temp = cpu::MakeTemperature(o.temperature);
  if (x.dtype != DType::f64 && !temp.f32_ok()) {
    detail::run_widened(x, y, [&](const ConstTensorView& xd, const TensorView& yd) {
      normalize_op(op, xd, yd, o, mode);
    });
    return;
  }

  NormalizeJob job{&cpu::kernels(),
                   detail::make_row_geometry(x, y, axis, false),
                   static_cast<const char*>(x.data),
                   static_cast<char*>(y.data),
                   x.dtype,
                   y.dtype,
                   dtype_size(x.dtype),
                   dtype_size(y.dtype),
                   temp,
                   mode,
                   0};
  if (job.g.rows == 0 || job.g.n == 0) return;
  const int threads = detail::current_exec().threads;
  job.threads = threads;
  if (run_short_rows(*job.k, job.g, job.x, job.xt, job.y, job.yt, job.temp, mode, threads)) return;
  run_rows(job, threads);
}

struct ReduceJob {
  const KernelTable* k;
  RowGeometry g;
  const char* x;
  char* y;
  DType xt, yt;
  std::size_t xes, yes;
  Temperature temp;
  bool argmax;  // else logsumexp
  const char* op_name() const { return argmax ? "argmax" : "logsumexp"; }

  void row(const char* xrow, char* yrow, Scratch& s, int row_threads) const {
    const int64_t n = g.n;
    const void* src = xrow;
    if (g.x_step != 1 && n > 0) {
      void* buf = s.ensure(s.x, static_cast<std::size_t>(n) * xes);
      detail::gather(xrow, g.x_step, n, xes, buf);
      src = buf;
    }
    if (!argmax) {
      const RowStats st = row_stats_log(*k, src, xt, n, temp, row_threads);
      detail::store_from_double(yrow, yt, 0, logsumexp_value(st, temp, xt));
      return;
    }
    const int64_t chunks = num_chunks(n);
    std::vector<cpu::ArgmaxResult> parts(static_cast<std::size_t>(chunks));
    detail::parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const int64_t off = c * kChunkElems;
        parts[c] = k->argmax(static_cast<const char*>(src) + off * static_cast<int64_t>(xes), xt,
                             std::min(kChunkElems, n - off));
        parts[c].index += off;
      }
    });
    cpu::ArgmaxResult best = parts[0];
    for (int64_t c = 1; c < chunks && !best.is_nan; ++c) {
      if (parts[c].is_nan || parts[c].value > best.value) best = parts[c];
    }
    if (yt == DType::i64)
      *reinterpret_cast<int64_t*>(yrow) = best.index;
    else
      *reinterpret_cast<int32_t*>(yrow) = static_cast<int32_t>(best.index);
  }
};

}  // namespace

void softmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options,
             const Context& context) {
  const detail::ExecScope exec_scope("softmax", context, options.threads);
  normalize_op("softmax", x, y, options, RowMode::kSoftmax);
}

void log_softmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options,
                 const Context& context) {
  const detail::ExecScope exec_scope("log_softmax", context, options.threads);
  normalize_op("log_softmax", x, y, options, RowMode::kLogSoftmax);
}

void logsumexp(ConstTensorView x, TensorView y, const SoftmaxOptions& o, const Context& context) {
  const detail::ExecScope exec_scope("logsumexp", context, o.threads);
  const char* op = "logsumexp";
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "y", detail::reduced_shape(x.shape, axis, o.keepdims), y.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/false);
  const Temperature temp = cpu::MakeTemperature(o.temperature);
  if (x.dtype != DType::f64 && !temp.f32_ok()) {
    detail::run_widened(
        x, y, [&](const ConstTensorView& xd, const TensorView& yd) { logsumexp(xd, yd, o); });
    return;
  }
  ReduceJob job{&cpu::kernels(),
                detail::make_row_geometry(x, y, axis, true),
                static_cast<const char*>(x.data),
                static_cast<char*>(y.data),
                x.dtype,
                y.dtype,
                dtype_size(x.dtype),
                dtype_size(y.dtype),
                temp,
                false};
  if (job.g.rows == 0) return;
  const int threads = detail::current_exec().threads;
  if (run_short_rows(*job.k, job.g, job.x, job.xt, job.y, job.yt, job.temp, RowMode::kLogSumExp,
                     threads)) {
    return;
  }
  run_rows(job, threads);
}

void argmax(ConstTensorView x, TensorView indices, const SoftmaxOptions& o,
            const Context& context) {
  const detail::ExecScope exec_scope("argmax", context, o.threads);
  const char* op = "argmax";
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "indices", indices);
  detail::check_float_dtype(op, "x", x.dtype);
  if (indices.dtype != DType::i64 && indices.dtype != DType::i32) {
    throw Error(ErrorKind::kDTypeMismatch, op, "indices", dtype_name(indices.dtype),
                "must be i64 or i32");
  }
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "indices", detail::reduced_shape(x.shape, axis, o.keepdims),
                           indices.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, indices, /*allow_alias=*/false, "indices");
  ReduceJob job{&cpu::kernels(),
                detail::make_row_geometry(x, indices, axis, true),
                static_cast<const char*>(x.data),
                static_cast<char*>(indices.data),
                x.dtype,
                indices.dtype,
                dtype_size(x.dtype),
                dtype_size(indices.dtype),
                Temperature{},
                true};
  if (job.g.rows == 0) return;
  if (job.g.n == 0) {
    throw Error(
        ErrorKind::kInvalidArgument, op, "x", "shape " + detail::shape_str(x.shape),
        "argmax of an empty row is undefined (axis " + std::to_string(axis) + " has size 0)");
  }
  if (indices.dtype == DType::i32 && job.g.n > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::kOverflow, op, "indices", "i32",
                "rows of " + std::to_string(job.g.n) + " elements need i64 indices");
  }
  run_rows(job, detail::current_exec().threads);
}

void hardmax(ConstTensorView x, TensorView y, const SoftmaxOptions& o, const Context& context) {
  const detail::ExecScope exec_scope("hardmax", context, o.threads);
  const char* op = "hardmax";
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_float_dtype(op, "x", x.dtype);
  detail::check_float_dtype(op, "y", y.dtype);
  const int64_t axis = detail::normalize_axis(op, o.axis, x.rank());
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_temperature(op, o.temperature);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  const RowGeometry g = detail::make_row_geometry(x, y, axis, false);
  if (g.rows == 0 || g.n == 0) return;
  // Indices first (into scratch), then the one-hot rows: safe in place.
  std::vector<int64_t> idx(static_cast<std::size_t>(g.rows));
  std::vector<int64_t> ishape = detail::reduced_shape(x.shape, axis, false);
  SoftmaxOptions ao = o;
  ao.keepdims = false;
  argmax(x, TensorView(idx.data(), DType::i64, ishape), ao);
  const int threads = detail::current_exec().threads;
  auto* yb = static_cast<char*>(y.data);
  const auto yes = static_cast<int64_t>(dtype_size(y.dtype));
  detail::parallel_for(g.rows, g.rows * g.n >= detail::kMinParallelElems ? threads : 1,
                       [&](int64_t b, int64_t e) {
                         detail::for_each_row(g, b, e, [&](int64_t r, int64_t, int64_t yo) {
                           char* row = yb + yo * yes;
                           for (int64_t i = 0; i < g.n; ++i) {
                             detail::store_from_double(row + i * g.y_step * yes, y.dtype, 0,
                                                       i == idx[r] ? 1.0 : 0.0);
                           }
                         });
                       });
}

void sigmoid(ConstTensorView x, TensorView y, const ElementwiseOptions& o, const Context& context) {
  const detail::ExecScope exec_scope("sigmoid", context, o.threads);
  const char* op = "sigmoid";
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  detail::check_compute_pair(op, x.dtype, "y", y.dtype);
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
  if (x.rank() == 0) {  // one element: view it as (1,)
    x.shape = y.shape = {1};
    x.strides = y.strides = {1};
  }
  RowGeometry g = detail::make_row_geometry(x, y, x.rank() - 1, false);
  if (g.rows == 0 || g.n == 0) return;
  const KernelTable& k = cpu::kernels();
  const int threads = detail::current_exec().threads;
  const auto xes = dtype_size(x.dtype), yes = dtype_size(y.dtype);
  const auto* xb = static_cast<const char*>(x.data);
  auto* yb = static_cast<char*>(y.data);
  const bool split_rows = g.rows >= threads || g.n <= 2 * kChunkElems;
  auto one_row = [&](const char* xrow, char* yrow, Scratch& s, int row_threads) {
    const void* src = xrow;
    if (g.x_step != 1) {
      void* buf = s.ensure(s.x, static_cast<std::size_t>(g.n) * xes);
      detail::gather(xrow, g.x_step, g.n, xes, buf);
      src = buf;
    }
    void* dst = g.y_step == 1 ? static_cast<void*>(yrow) : s.ensure(s.y, g.n * yes);
    const int64_t chunks = num_chunks(g.n);
    detail::parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const int64_t off = c * kChunkElems;
        k.sigmoid(static_cast<const char*>(src) + off * static_cast<int64_t>(xes), x.dtype,
                  static_cast<char*>(dst) + off * static_cast<int64_t>(yes), y.dtype,
                  std::min(kChunkElems, g.n - off));
      }
    });
    if (g.y_step != 1) detail::scatter(dst, g.n, yes, yrow, g.y_step);
  };
  const int outer = split_rows && g.rows * g.n >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    Scratch s;
    detail::for_each_row(g, b, e, [&](int64_t, int64_t xo, int64_t yo) {
      one_row(xb + xo * static_cast<int64_t>(xes), yb + yo * static_cast<int64_t>(yes), s,
              split_rows ? 1 : threads);
    });
  });
}

// ---- one-row conveniences ----
namespace {
template <typename T>
void span_op(const char* op, std::span<const T> x, std::span<T> y, double temperature,
             RowMode mode) {
  if (x.size() != y.size()) {
    throw Error(ErrorKind::kShapeMismatch, op, "y", "size " + std::to_string(y.size()),
                "must have the size of x (" + std::to_string(x.size()) + ")");
  }
  const auto n = static_cast<int64_t>(x.size());
  SoftmaxOptions o;
  o.temperature = temperature;
  o.threads = 1;
  normalize_op(op, ConstTensorView(x.data(), {n}), TensorView(y.data(), {n}), o, mode);
}
template <typename T>
T span_lse(std::span<const T> x, double temperature) {
  T out = 0;
  SoftmaxOptions o;
  o.temperature = temperature;
  o.threads = 1;
  logsumexp(ConstTensorView(x.data(), {static_cast<int64_t>(x.size())}), TensorView(&out, {}), o);
  return out;
}
template <typename T>
int64_t span_argmax(std::span<const T> x) {
  int64_t out = 0;
  SoftmaxOptions o;
  o.threads = 1;
  argmax(ConstTensorView(x.data(), {static_cast<int64_t>(x.size())}),
         TensorView(&out, DType::i64, {}), o);
  return out;
}
}  // namespace

void softmax(std::span<const float> x, std::span<float> y, double t) {
  span_op("softmax", x, y, t, RowMode::kSoftmax);
}
void softmax(std::span<const double> x, std::span<double> y, double t) {
  span_op("softmax", x, y, t, RowMode::kSoftmax);
}
void log_softmax(std::span<const float> x, std::span<float> y, double t) {
  span_op("log_softmax", x, y, t, RowMode::kLogSoftmax);
}
void log_softmax(std::span<const double> x, std::span<double> y, double t) {
  span_op("log_softmax", x, y, t, RowMode::kLogSoftmax);
}
float logsumexp(std::span<const float> x, double t) { return span_lse(x, t); }
double logsumexp(std::span<const double> x, double t) { return span_lse(x, t); }
int64_t argmax(std::span<const float> x) { return span_argmax(x); }
int64_t argmax(std::span<const double> x) { return span_argmax(x); }

}  // namespace softmax
