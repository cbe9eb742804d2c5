// src/core/cpu_runner.cc: the CPU backend (src/core/backend.hpp): runs the plans of the axis
// ops and the backward passes on the Highway kernels of src/cpu. Rows are walked, gathered when
// strided, split across threads, and handed to the per-target kernels. Long rows are cut into
// fixed chunks (kChunkElems) whose (max, sum) partials merge in chunk order, so the result never
// depends on the thread count.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "src/core/backend.hpp"
#include "src/base/half.hpp"
#include "src/core/row_stats.hpp"
#include "src/core/rows.hpp"
#include "src/core/verbose.hpp"
#include "src/cpu/kernels.hpp"
#include "src/cpu/training_kernels.hpp"

namespace softmax::detail {
namespace {

using cpu::kChunkElems;
using cpu::KernelTable;
using cpu::RowMode;
using cpu::Temperature;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Bytes of the per-row chunk records (row statistics or argmax partials).
std::size_t parts_bytes(int64_t n) {
  return static_cast<std::size_t>(std::max<int64_t>(num_chunks(n), 1)) *
         std::max(sizeof(cpu::ChunkStats), sizeof(cpu::ArgmaxResult));
}
std::size_t block_max_bytes(int64_t n) {
  return static_cast<std::size_t>((n + cpu::kBlockElems - 1) / cpu::kBlockElems) * sizeof(double);
}

// Scratch for the chunk statistics of a row of n elements: null for a one-chunk row (row_stats
// needs none then).
cpu::ChunkStats* chunk_records(GatherScratch& s, int64_t n) {
  if (num_chunks(n) <= 1) return nullptr;
  return static_cast<cpu::ChunkStats*>(s.get(GatherScratch::kParts, parts_bytes(n)));
}

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

  void row(const char* xrow, char* yrow, GatherScratch& s, int row_threads) const {
    const int64_t n = g.n;
    const void* src = xrow;
    if (g.x_step != 1) {
      void* buf = s.get(GatherScratch::kX, static_cast<std::size_t>(n) * xes);
      gather(xrow, g.x_step, n, xes, buf);
      src = buf;
    }
    void* dst = g.y_step == 1 ? static_cast<void*>(yrow)
                              : s.get(GatherScratch::kY, static_cast<std::size_t>(n) * yes);
    auto* parts = chunk_records(s, n);
    const int64_t chunks = num_chunks(n);
    if (mode == RowMode::kSoftmax) {
      // Pass 1 stores exp((x - m_block) / T) in the compute type (into y itself when it has
      // that type), pass 2 scales each block once: one exp per element, and the row is read
      // from memory once.
      const DType ct = xt == DType::f64 ? DType::f64 : DType::f32;
      const std::size_t cs = dtype_size(ct);
      void* work = yt == ct ? dst : s.get(GatherScratch::kWork, static_cast<std::size_t>(n) * cs);
      auto* bm = static_cast<double*>(s.get(GatherScratch::kBlockMax, block_max_bytes(n)));
      const RowStats st =
          row_stats(*k, src, xt, n, temp, row_threads, false, work, bm, kNaN, parts);
      if (st.special()) {
        for (int64_t i = 0; i < n; ++i) store_from_double(dst, yt, i, kNaN);
      } else {
        parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
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
      const RowStats st = row_stats_log(*k, src, xt, n, temp, row_threads, parts);
      if (st.special()) {
        for (int64_t i = 0; i < n; ++i) store_from_double(dst, yt, i, kNaN);
      } else {
        const double log_sum = st.log_sum();
        parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c) {
            const int64_t off = c * kChunkElems;
            k->normalize(static_cast<const char*>(src) + off * static_cast<int64_t>(xes), xt,
                         static_cast<char*>(dst) + off * static_cast<int64_t>(yes), yt,
                         std::min(kChunkElems, n - off), st.max, temp, log_sum, mode);
          }
        });
      }
    }
    if (g.y_step != 1) scatter(dst, n, yes, yrow, g.y_step);
  }
};

// SOFTMAX_VERBOSE=1: which path runs and why.
void log_path(const char* op, const KernelTable& k, const RowGeometry& g, DType xt, DType yt,
              int threads, const char* path, const char* why) {
  if (!verbose_enabled()) return;
  verbose_log(op, std::string("rows=") + std::to_string(g.rows) + " n=" + std::to_string(g.n) +
                      " " + dtype_name(xt) + "->" + dtype_name(yt) + " target=" + k.target_name +
                      " threads=" + std::to_string(threads) + " path=" + path + " (" + why + ")");
}

// Whether the short-rows path serves rows of geometry g: contiguous rows of at most one block
// with a constant row stride.
bool short_rows_apply(const RowGeometry& g, bool reduction) {
  return g.n <= cpu::kBlockElems && g.x_step == 1 && (reduction || g.y_step == 1) &&
         g.dims.size() <= 1;
}

// Fast path for many short contiguous rows with a constant row stride: whole ranges of rows go
// to one kernel call (bit-identical to the per-row path). Returns false when not applicable.
bool run_short_rows(const KernelTable& k, const RowGeometry& g, const char* x, DType xt, char* y,
                    DType yt, const Temperature& temp, RowMode mode, int threads) {
  const bool reduction = mode == RowMode::kLogSumExp;
  if (!short_rows_apply(g, reduction)) return false;
  const int64_t xs = g.dims.empty() ? 0 : g.x_strides[0];
  const int64_t ys = g.dims.empty() ? 0 : g.y_strides[0];
  log_path(reduction                   ? "logsumexp"
           : mode == RowMode::kSoftmax ? "softmax"
                                       : "log_softmax",
           k, g, xt, yt, threads, "short-rows",
           "contiguous rows of <= 2048 elements with a constant stride: one block per row kept "
           "in L1, batches of rows per kernel call, rows split across threads");
  const auto xes = static_cast<int64_t>(dtype_size(xt)), yes = static_cast<int64_t>(dtype_size(yt));
  const int outer = g.rows * std::max<int64_t>(g.n, 1) >= kMinParallelElems ? threads : 1;
  parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    k.rows(x + b * xs * xes, xt, xs, y + b * ys * yes, yt, ys, e - b, g.n, temp, mode);
  });
  return true;
}

// Runs job.row over every row: rows split across threads, or, when there are fewer rows than
// threads and rows are long, each row's chunks split across threads.
// Where each scratch slot of one worker range lies in its slice of the caller's workspace.
struct RangeLayout {
  std::size_t offset[GatherScratch::kSlots] = {};
  std::size_t bytes = 0;  // per range
};

RangeLayout axis_layout(const AxisPlan& p) {
  const int64_t n = p.g.n;
  const bool normalize = !p.reduction();
  const bool softmax = p.op_kind == AxisOp::kSoftmax;
  const DType ct = p.x_dtype == DType::f64 ? DType::f64 : DType::f32;
  std::size_t size[GatherScratch::kSlots] = {};
  const auto un = static_cast<std::size_t>(n);
  if (p.g.x_step != 1) size[GatherScratch::kX] = un * dtype_size(p.x_dtype);
  if (normalize && p.g.y_step != 1) size[GatherScratch::kY] = un * dtype_size(p.y_dtype);
  if (softmax && p.y_dtype != ct) size[GatherScratch::kWork] = un * dtype_size(ct);
  if (softmax) size[GatherScratch::kBlockMax] = block_max_bytes(n);
  if (p.op_kind == AxisOp::kArgmax || num_chunks(n) > 1)
    size[GatherScratch::kParts] = parts_bytes(n);
  RangeLayout l;
  for (int s = 0; s < GatherScratch::kSlots; ++s) {
    l.offset[s] = l.bytes;
    l.bytes += (size[s] + 63) / 64 * 64;
  }
  return l;
}

// The scratch the CPU runner takes for a plan: one slice per worker range (at most exec.threads
// ranges), none on the short-rows path.
std::size_t axis_workspace(const AxisPlan& p, const Exec& exec) {
  if (p.op_kind != AxisOp::kArgmax && short_rows_apply(p.g, p.reduction())) return 0;
  return axis_layout(p).bytes * static_cast<std::size_t>(std::max(exec.threads, 1));
}

template <class Job>
void run_rows(const Job& job, int threads, unsigned char* ws = nullptr,
              const RangeLayout& layout = {}) {
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
      (split_rows && g.rows * std::max<int64_t>(g.n, 1) >= kMinParallelElems) ? threads : 1;
  std::atomic<int> next_slice{0};  // ranges take slices of the workspace in any order
  parallel_for(g.rows, outer, [&](int64_t b, int64_t e) {
    GatherScratch s;
    if (ws != nullptr) {
      s.arena = ws + static_cast<std::size_t>(next_slice.fetch_add(1)) * layout.bytes;
      std::copy(layout.offset, layout.offset + GatherScratch::kSlots, s.offset);
    }
    for_each_row(g, b, e, [&](int64_t, int64_t xo, int64_t yo) {
      job.row(job.x + xo * static_cast<int64_t>(job.xes),
              job.y + yo * static_cast<int64_t>(job.yes), s, row_threads);
    });
  });
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

  void row(const char* xrow, char* yrow, GatherScratch& s, int row_threads) const {
    const int64_t n = g.n;
    const void* src = xrow;
    if (g.x_step != 1 && n > 0) {
      void* buf = s.get(GatherScratch::kX, static_cast<std::size_t>(n) * xes);
      gather(xrow, g.x_step, n, xes, buf);
      src = buf;
    }
    if (!argmax) {
      auto* parts = chunk_records(s, n);
      const RowStats st = row_stats_log(*k, src, xt, n, temp, row_threads, parts);
      store_from_double(yrow, yt, 0, logsumexp_value(st, temp, xt));
      return;
    }
    const int64_t chunks = num_chunks(n);
    auto* parts = static_cast<cpu::ArgmaxResult*>(s.get(GatherScratch::kParts, parts_bytes(n)));
    parallel_for(chunks, chunks > 1 ? row_threads : 1, [&](int64_t b, int64_t e) {
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

// softmax / log_softmax / logsumexp / argmax.
void run_axis(const AxisPlan& p, const Exec& exec) {
  const KernelTable* k = &cpu::kernels();
  const int threads = exec.threads;
  const auto* x = static_cast<const char*>(p.x);
  auto* y = static_cast<char*>(p.y);
  const std::size_t xes = dtype_size(p.x_dtype), yes = dtype_size(p.y_dtype);
  auto* ws = static_cast<unsigned char*>(caller_workspace(p.op, exec, axis_workspace(p, exec)));
  const RangeLayout layout = axis_layout(p);
  if (p.op_kind == AxisOp::kArgmax) {
    const ReduceJob job{k, p.g, x, y, p.x_dtype, p.y_dtype, xes, yes, Temperature{}, true};
    run_rows(job, threads, ws, layout);
    return;
  }
  const Temperature temp = cpu::MakeTemperature(p.temperature);
  const RowMode mode = p.row_mode();
  if (p.op_kind == AxisOp::kLogSumExp) {
    const ReduceJob job{k, p.g, x, y, p.x_dtype, p.y_dtype, xes, yes, temp, false};
    if (run_short_rows(*k, p.g, x, p.x_dtype, y, p.y_dtype, temp, mode, threads)) return;
    run_rows(job, threads, ws, layout);
    return;
  }
  const NormalizeJob job{k, p.g, x, y, p.x_dtype, p.y_dtype, xes, yes, temp, mode, threads};
  if (run_short_rows(*k, p.g, x, p.x_dtype, y, p.y_dtype, temp, mode, threads)) return;
  run_rows(job, threads, ws, layout);
}

// softmax_backward / log_softmax_backward: one reduction over the row, then one elementwise pass
// (src/cpu/backward_kernels.cc).
void run_backward(const BackwardPlan& p, const Exec& exec) {
  const RowGeometry& gy = p.gy;
  const RowGeometry& gd = p.gd;
  const cpu::BackwardKernels& k = cpu::backward_kernels();
  const cpu::BackwardMode mode =
      p.mode == RowMode::kSoftmax ? cpu::BackwardMode::kSoftmax : cpu::BackwardMode::kLogSoftmax;
  // The kernels multiply by 1/T in the compute type (f32 for f32/bf16/f16, f64). Where 1/T is
  // not a normal number of that type (f32: T < 1/FLT_MAX or T > 2^126; f64: 1/T overflows or is
  // subnormal) that multiply would saturate or lose bits; there the kernel writes the unscaled
  // row into compute-type scratch and dx = that / T is divided in f64 and rounded once (an
  // exact dx beyond the range gives +-inf, as IEEE).
  const DType ct = p.dtype == DType::f64 ? DType::f64 : DType::f32;
  const double t = p.temperature, inv_t = 1.0 / t;
  const bool divide = ct == DType::f64 ? !(inv_t >= DBL_MIN && inv_t <= DBL_MAX)
                                       : !(inv_t >= FLT_MIN && inv_t <= FLT_MAX);
  const int64_t n = gy.n;
  const auto es = static_cast<int64_t>(dtype_size(p.dtype));
  const auto os = static_cast<int64_t>(dtype_size(p.dx_dtype));
  const bool contiguous = gy.x_step == 1 && gd.x_step == 1 && gy.y_step == 1;
  const auto* yb = static_cast<const char*>(p.y);
  const auto* db = static_cast<const char*>(p.dy);
  auto* xb = static_cast<char*>(p.dx);
  const int outer = gy.rows * n >= kMinParallelElems ? exec.threads : 1;
  // Offsets of dy rows follow the same row order as y's (same shape, row-major over the
  // non-axis dims), so walk dy's geometry alongside by row index.
  parallel_for(gy.rows, outer, [&](int64_t b, int64_t e) {
    std::vector<int64_t> dy_off(static_cast<std::size_t>(e - b));
    for_each_row(gd, b, e, [&](int64_t r, int64_t xo, int64_t) { dy_off[r - b] = xo; });
    std::vector<unsigned char> sy, sd, sx;
    if (!contiguous || divide) {
      sy.resize(static_cast<std::size_t>(n * es));
      sd.resize(static_cast<std::size_t>(n * es));
      sx.resize(static_cast<std::size_t>(n * std::max<int64_t>(os, 8)));
    }
    for_each_row(gy, b, e, [&](int64_t r, int64_t yo, int64_t xo) {
      const char* yr = yb + yo * es;
      const char* dr = db + dy_off[r - b] * es;
      char* xr = xb + xo * os;
      if (contiguous && !divide) {
        const double s = k.row_sum(yr, dr, p.dtype, n, mode);
        k.apply(yr, dr, p.dtype, xr, p.dx_dtype, n, s, inv_t, mode);
        return;
      }
      gather(yr, gy.x_step, n, static_cast<std::size_t>(es), sy.data());
      gather(dr, gd.x_step, n, static_cast<std::size_t>(es), sd.data());
      const double s = k.row_sum(sy.data(), sd.data(), p.dtype, n, mode);
      if (divide) {  // y and dy are in scratch, so dx may alias either
        k.apply(sy.data(), sd.data(), p.dtype, sx.data(), ct, n, s, 1.0, mode);
        for (int64_t i = 0; i < n; ++i) {
          double v = load_as_double(sx.data(), ct, i) / t;
          if (ct == DType::f32) v = static_cast<float>(v);  // the f32 result (bf16/f16: from it)
          store_from_double(xr, p.dx_dtype, i * gy.y_step, v);
        }
        return;
      }
      k.apply(sy.data(), sd.data(), p.dtype, sx.data(), p.dx_dtype, n, s, inv_t, mode);
      scatter(sx.data(), n, static_cast<std::size_t>(os), xr, gy.y_step);
    });
  });
}

std::size_t no_backward_workspace(const BackwardPlan&, const Exec&) { return 0; }

}  // namespace

const Backend& cpu_backend() {
  static const Backend b{"cpu", axis_workspace, run_axis, no_backward_workspace, run_backward};
  return b;
}

}  // namespace softmax::detail
