// src/dist/softmax_ops.cc: softmax, log_softmax, logsumexp and argmax on a class axis sharded
// across ranks (softmax/dist.hpp). Every rank computes the chunk partials of its shard with the
// single-process kernels (src/core/row_stats.hpp), the partials of all rows travel in one
// all-gather, and every rank merges each row's partials in class order: the single-process
// merge, on the single-process partials when shards sit on the chunk grid.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/row_stats.hpp"
#include "src/core/rows.hpp"
#include "src/core/widen.hpp"
#include "src/cpu/kernels.hpp"
#include "src/dist/agree.hpp"

namespace softmax::dist {
namespace {

using cpu::ChunkStats;
using cpu::kBlockElems;
using cpu::kChunkElems;
using cpu::RowMode;
using cpu::Temperature;
using softmax::detail::PartialKind;
using softmax::detail::RowStats;
using softmax::detail::dist::agree;
using softmax::detail::dist::Layout;
using softmax::detail::dist::LocalInfo;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A chunk partial on the wire: five doubles (has_nan as 0 or 1).
struct WirePartial {
  double max, sum, has_nan, ones, rest;
};
WirePartial to_wire(const ChunkStats& c) {
  return WirePartial{c.max, c.sum, c.has_nan ? 1.0 : 0.0, c.ones, c.rest};
}
ChunkStats from_wire(const WirePartial& w) {
  return ChunkStats{w.max, w.sum, w.has_nan != 0.0, w.ones, w.rest};
}

// The values every rank must agree on, for the agreement record: x's rank, the class axis,
// x's other dimensions, x's and the output's dtypes (the caller adds the rest).
LocalInfo shard_info(const ConstTensorView& x, int64_t axis, int64_t class_offset,
                     const char* out_name, DType out_dtype) {
  LocalInfo info;
  info.offset = class_offset;
  info.n = x.shape[static_cast<std::size_t>(axis)];
  info.add("the rank of x", x.rank());
  info.add("axis (the sharded class axis)", axis);  // before the shape, which skips it
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (d != axis)
      info.add("x.shape[" + std::to_string(d) + "]", x.shape[static_cast<std::size_t>(d)]);
  }
  info.add_dtype("the dtype of x", x.dtype);
  info.add_dtype(std::string("the dtype of ") + out_name, out_dtype);
  return info;
}

void check_offset(const char* op, int64_t class_offset) {
  if (class_offset < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "class_offset", std::to_string(class_offset),
                "must be >= 0");
  }
}

// This rank's rows as contiguous runs: x rows (gathered when the axis is strided).
struct LocalRows {
  softmax::detail::RowGeometry g;
  std::vector<const char*> x;  // per row: n contiguous elements of x's dtype
  std::vector<unsigned char> x_copy;
  std::vector<int64_t> y_off;  // per row: y offset (elements)
};

LocalRows local_rows(const ConstTensorView& x, const ConstTensorView& y, int64_t axis,
                     bool y_reduced) {
  LocalRows L;
  L.g = softmax::detail::make_row_geometry(x, y, axis, y_reduced);
  const auto es = static_cast<int64_t>(dtype_size(x.dtype));
  const int64_t rows = L.g.rows, n = L.g.n;
  L.x.resize(static_cast<std::size_t>(rows));
  L.y_off.resize(static_cast<std::size_t>(rows));
  const auto* xb = static_cast<const char*>(x.data);
  if (L.g.x_step != 1 && n > 1) {
    L.x_copy.resize(static_cast<std::size_t>(rows * n * es));
  }
  softmax::detail::for_each_row(L.g, 0, rows, [&](int64_t r, int64_t xo, int64_t yo) {
    L.y_off[r] = yo;
    if (L.x_copy.empty()) {
      L.x[r] = xb + xo * es;
    } else {
      char* dst = reinterpret_cast<char*>(L.x_copy.data()) + r * n * es;
      softmax::detail::gather(xb + xo * es, L.g.x_step, n, static_cast<std::size_t>(es), dst);
      L.x[r] = dst;
    }
  });
  return L;
}

// Chunk partials of every row (or of the rows in `subset`) on this rank, gathered from every
// rank, merged per row in class order. `partial(row, chunk)` computes one local partial.
template <class Partial>
std::vector<RowStats> gather_stats(Communicator& comm, const Layout& lay, int64_t rows,
                                   const std::vector<int64_t>* subset, int threads,
                                   const Temperature& temp, Partial&& partial) {
  const cpu::KernelTable& k = cpu::kernels();
  const int me = comm.rank(), size = comm.size();
  const int64_t count = subset ? static_cast<int64_t>(subset->size()) : rows;
  const int64_t mine = lay.chunks[static_cast<std::size_t>(me)];
  std::vector<WirePartial> local(static_cast<std::size_t>(count * mine));
  const int64_t tasks = count * mine;
  const int outer =
      tasks * kChunkElems >= softmax::detail::kMinParallelElems && tasks > 1 ? threads : 1;
  softmax::detail::parallel_for(tasks, outer, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t i = t / mine, c = t % mine;
      const int64_t row = subset ? (*subset)[static_cast<std::size_t>(i)] : i;
      local[static_cast<std::size_t>(t)] = to_wire(partial(row, c));
    }
  });
  std::vector<std::size_t> counts(static_cast<std::size_t>(size));
  std::vector<int64_t> first(static_cast<std::size_t>(size) + 1, 0);
  for (int r = 0; r < size; ++r) {
    counts[r] = static_cast<std::size_t>(count * lay.chunks[r]) * sizeof(WirePartial);
    first[r + 1] = first[r] + count * lay.chunks[r];
  }
  std::vector<WirePartial> all(static_cast<std::size_t>(first[size]));
  comm.all_gather(local.data(), all.data(), counts.data());
  int64_t total_chunks = 0;
  for (int r : lay.order) total_chunks += lay.chunks[r];
  std::vector<RowStats> out(static_cast<std::size_t>(count));
  softmax::detail::parallel_for(
      count, count * total_chunks >= 4096 ? threads : 1, [&](int64_t b, int64_t e) {
        std::vector<ChunkStats> parts(static_cast<std::size_t>(total_chunks));
        for (int64_t i = b; i < e; ++i) {
          int64_t j = 0;
          for (int r : lay.order) {
            const WirePartial* p = all.data() + first[r] + i * lay.chunks[r];
            for (int64_t c = 0; c < lay.chunks[r]; ++c) parts[j++] = from_wire(p[c]);
          }
          out[static_cast<std::size_t>(i)] =
              softmax::detail::merge_chunks(k, parts.data(), j, temp);
        }
      });
  return out;
}

// The statistics of every row, as the single-process row_stats / row_stats_log compute them.
// softmax mode stores the exps (work[r]: row r's n elements of the compute type) and block
// maxima (block_max: ceil(n / kBlockElems) per row).
}  // namespace
}  // namespace softmax::dist

namespace softmax::detail::dist {

std::vector<RowStats> all_row_stats(Communicator& comm, const Layout& lay,
                                    const std::vector<const char*>& xrows, int64_t n, DType xt,
                                    const cpu::Temperature& temp, cpu::RowMode mode, int threads,
                                    const std::vector<char*>* work, double* block_max) {
  using cpu::kBlockElems;
  using cpu::RowMode;
  using softmax::dist::gather_stats;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const cpu::KernelTable& k = cpu::kernels();
  const int64_t rows = static_cast<int64_t>(xrows.size());
  struct {
    const std::vector<const char*>& x;
  } L{xrows};
  const int64_t blocks = (n + kBlockElems - 1) / kBlockElems;
  const bool log_mode = mode != RowMode::kSoftmax;
  std::vector<double> known(static_cast<std::size_t>(rows), kNaN);
  std::vector<RowStats> st;
  std::vector<int64_t> live;  // rows still to compute
  const std::vector<int64_t>* subset = nullptr;
  // f64 rows of more than one chunk: the max first (row_stats' pre-pass).
  if (xt == DType::f64 && softmax::detail::num_chunks(lay.vocab) > 1) {
    const std::vector<RowStats> pre =
        gather_stats(comm, lay, rows, nullptr, threads, temp, [&](int64_t r, int64_t c) {
          return softmax::detail::chunk_partial(k, L.x[r], xt, n, c, PartialKind::kMax, temp, kNaN);
        });
    st = pre;
    for (int64_t r = 0; r < rows; ++r) {
      if (pre[r].special()) continue;
      known[r] = pre[r].max;
      live.push_back(r);
    }
    subset = &live;
  }
  const PartialKind kind = log_mode && xt == DType::f64 ? PartialKind::kLog : PartialKind::kPlain;
  std::vector<RowStats> main =
      gather_stats(comm, lay, rows, subset, threads, temp, [&](int64_t r, int64_t c) {
        return softmax::detail::chunk_partial(k, L.x[r], xt, n, c, kind, temp, known[r],
                                              work ? (*work)[r] : nullptr,
                                              block_max ? block_max + r * blocks : nullptr);
      });
  if (subset) {
    for (std::size_t i = 0; i < live.size(); ++i) st[live[i]] = main[i];
  } else {
    st = std::move(main);
  }
  if (!log_mode || xt == DType::f64) return st;
  // f32 log modes: near-certain rows summed again with the max known (row_stats_log).
  std::vector<int64_t> again;
  for (int64_t r = 0; r < rows; ++r) {
    if (softmax::detail::needs_log_pass(st[r])) again.push_back(r);
  }
  if (again.empty()) return st;  // the same on every rank: every rank skips the collective
  const std::vector<RowStats> redo =
      gather_stats(comm, lay, rows, &again, threads, temp, [&](int64_t r, int64_t c) {
        return softmax::detail::chunk_partial(k, L.x[r], xt, n, c, PartialKind::kLog, temp,
                                              st[r].max);
      });
  for (std::size_t i = 0; i < again.size(); ++i) st[again[i]] = redo[i];
  return st;
}

}  // namespace softmax::detail::dist

namespace softmax::dist {
namespace {
using softmax::detail::dist::all_row_stats;

void normalize(Communicator& comm, const char* op, const ConstTensorView& x, const TensorView& y,
               int64_t class_offset, const SoftmaxOptions& o, const Context& ctx, RowMode mode) {
  std::optional<softmax::detail::ExecScope> scope;
  int64_t axis = 0;
  const Layout lay = agree(comm, op, [&] {
    scope.emplace(op, ctx, o.threads);
    softmax::detail::check_view(op, "x", x);
    softmax::detail::check_output_view(op, "y", y);
    softmax::detail::check_compute_pair(op, x.dtype, "y", y.dtype);
    axis = softmax::detail::normalize_axis(op, o.axis, x.rank());
    softmax::detail::check_same_shape(op, "y", x.shape, y.shape);
    softmax::detail::check_temperature(op, o.temperature);
    softmax::detail::check_no_overlap(op, x, y, /*allow_alias=*/true);
    check_offset(op, class_offset);
    LocalInfo info = shard_info(x, axis, class_offset, "y", y.dtype);
    info.add_double("temperature", o.temperature);
    return info;
  });
  const Temperature temp = cpu::MakeTemperature(o.temperature);
  if (x.dtype != DType::f64 && !temp.f32_ok()) {
    // As the single-process ops: computed in f64 and rounded (every rank takes this branch).
    softmax::detail::run_widened(x, y, [&](const ConstTensorView& xd, const TensorView& yd) {
      normalize(comm, op, xd, yd, class_offset, o, ctx, mode);
    });
    return;
  }
  LocalRows L = local_rows(x, y, axis, false);
  const int64_t rows = L.g.rows, n = L.g.n;
  if (rows == 0) return;
  const int threads = softmax::detail::current_exec().threads;
  const DType xt = x.dtype, yt = y.dtype;
  const DType ct = xt == DType::f64 ? DType::f64 : DType::f32;
  const auto cs = static_cast<int64_t>(dtype_size(ct));
  const auto yes = static_cast<int64_t>(dtype_size(yt));
  auto* yb = static_cast<char*>(y.data);
  // Softmax stores the exps: into y itself when it has the compute type and unit steps.
  const bool y_direct = L.g.y_step == 1 || n <= 1;
  const bool work_in_y = mode == RowMode::kSoftmax && yt == ct && y_direct;
  std::vector<unsigned char> work_buf;
  std::vector<double> block_max;
  std::vector<char*> work;
  if (mode == RowMode::kSoftmax) {
    if (!work_in_y) work_buf.resize(static_cast<std::size_t>(std::max<int64_t>(rows * n * cs, 1)));
    work.resize(static_cast<std::size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      work[r] =
          work_in_y ? yb + L.y_off[r] * yes : reinterpret_cast<char*>(work_buf.data()) + r * n * cs;
    }
    block_max.resize(static_cast<std::size_t>(rows * ((n + kBlockElems - 1) / kBlockElems)) + 1);
  }
  const std::vector<RowStats> st = all_row_stats(comm, lay, L.x, n, xt, temp, mode, threads,
                                                 work.empty() ? nullptr : &work, block_max.data());
  if (n == 0) return;
  const cpu::KernelTable& k = cpu::kernels();
  const int64_t chunks = (n + kChunkElems - 1) / kChunkElems;
  const int64_t blocks = (n + kBlockElems - 1) / kBlockElems;
  const auto xes = static_cast<int64_t>(dtype_size(xt));
  // Results go straight to y when its rows are unit-stride; otherwise to a row buffer, then
  // scattered.
  std::vector<unsigned char> out_buf;
  if (!y_direct) out_buf.resize(static_cast<std::size_t>(rows * n * yes));
  auto dst_row = [&](int64_t r) -> char* {
    return y_direct ? yb + L.y_off[r] * yes : reinterpret_cast<char*>(out_buf.data()) + r * n * yes;
  };
  const int64_t tasks = rows * chunks;
  const int outer = rows * n >= softmax::detail::kMinParallelElems ? threads : 1;
  softmax::detail::parallel_for(tasks, outer, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t r = t / chunks, c = t % chunks;
      const int64_t off = c * kChunkElems, len = std::min(kChunkElems, n - off);
      char* dst = dst_row(r) + off * yes;
      const RowStats& s = st[r];
      if (s.special()) {
        for (int64_t i = 0; i < len; ++i) softmax::detail::store_from_double(dst, yt, i, kNaN);
      } else if (mode == RowMode::kSoftmax) {
        k.scale_blocks(work[r] + off * cs, dst, yt, len,
                       block_max.data() + r * blocks + off / kBlockElems, s.max, temp, s.sum);
      } else {
        k.normalize(L.x[r] + off * xes, xt, dst, yt, len, s.max, temp, s.log_sum(), mode);
      }
    }
  });
  if (!y_direct) {
    for (int64_t r = 0; r < rows; ++r) {
      softmax::detail::scatter(dst_row(r), n, static_cast<std::size_t>(yes), yb + L.y_off[r] * yes,
                               L.g.y_step);
    }
  }
}

}  // namespace

void softmax(Communicator& comm, ConstTensorView x, TensorView y, int64_t class_offset,
             const SoftmaxOptions& options, const Context& context) {
  normalize(comm, "dist::softmax", x, y, class_offset, options, context, RowMode::kSoftmax);
}

void log_softmax(Communicator& comm, ConstTensorView x, TensorView y, int64_t class_offset,
                 const SoftmaxOptions& options, const Context& context) {
  normalize(comm, "dist::log_softmax", x, y, class_offset, options, context, RowMode::kLogSoftmax);
}

void logsumexp(Communicator& comm, ConstTensorView x, TensorView y, int64_t class_offset,
               const SoftmaxOptions& o, const Context& context) {
  const char* op = "dist::logsumexp";
  std::optional<softmax::detail::ExecScope> scope;
  int64_t axis = 0;
  const Layout lay = agree(comm, op, [&] {
    scope.emplace(op, context, o.threads);
    softmax::detail::check_view(op, "x", x);
    softmax::detail::check_output_view(op, "y", y);
    softmax::detail::check_compute_pair(op, x.dtype, "y", y.dtype);
    axis = softmax::detail::normalize_axis(op, o.axis, x.rank());
    softmax::detail::check_same_shape(
        op, "y", softmax::detail::reduced_shape(x.shape, axis, o.keepdims), y.shape);
    softmax::detail::check_temperature(op, o.temperature);
    softmax::detail::check_no_overlap(op, x, y, /*allow_alias=*/false);
    check_offset(op, class_offset);
    LocalInfo info = shard_info(x, axis, class_offset, "y", y.dtype);
    info.add_flag("keepdims", o.keepdims);
    info.add_double("temperature", o.temperature);
    return info;
  });
  const Temperature temp = cpu::MakeTemperature(o.temperature);
  if (x.dtype != DType::f64 && !temp.f32_ok()) {
    softmax::detail::run_widened(x, y, [&](const ConstTensorView& xd, const TensorView& yd) {
      logsumexp(comm, xd, yd, class_offset, o, context);
    });
    return;
  }
  LocalRows L = local_rows(x, y, axis, true);
  if (L.g.rows == 0) return;
  const std::vector<RowStats> st =
      all_row_stats(comm, lay, L.x, L.g.n, x.dtype, temp, RowMode::kLogSumExp,
                    softmax::detail::current_exec().threads, nullptr, nullptr);
  for (int64_t r = 0; r < L.g.rows; ++r) {
    softmax::detail::store_from_double(y.data, y.dtype, L.y_off[r],
                                       softmax::detail::logsumexp_value(st[r], temp, x.dtype));
  }
}

void argmax(Communicator& comm, ConstTensorView x, TensorView indices, int64_t class_offset,
            const SoftmaxOptions& o, const Context& context) {
  const char* op = "dist::argmax";
  std::optional<softmax::detail::ExecScope> scope;
  int64_t axis = 0;
  const Layout lay = agree(comm, op, [&] {
    scope.emplace(op, context, o.threads);
    softmax::detail::check_view(op, "x", x);
    softmax::detail::check_output_view(op, "indices", indices);
    softmax::detail::check_float_dtype(op, "x", x.dtype);
    if (indices.dtype != DType::i64 && indices.dtype != DType::i32) {
      throw Error(ErrorKind::kDTypeMismatch, op, "indices", dtype_name(indices.dtype),
                  "must be i64 or i32");
    }
    axis = softmax::detail::normalize_axis(op, o.axis, x.rank());
    softmax::detail::check_same_shape(
        op, "indices", softmax::detail::reduced_shape(x.shape, axis, o.keepdims), indices.shape);
    softmax::detail::check_temperature(op, o.temperature);
    softmax::detail::check_no_overlap(op, x, indices, /*allow_alias=*/false, "indices");
    check_offset(op, class_offset);
    LocalInfo info = shard_info(x, axis, class_offset, "indices", indices.dtype);
    info.add_flag("keepdims", o.keepdims);
    return info;
  });
  LocalRows L = local_rows(x, indices, axis, true);
  const int64_t rows = L.g.rows, n = L.g.n;
  if (rows == 0) return;
  if (lay.vocab == 0) {  // the same verdict on every rank
    throw Error(ErrorKind::kInvalidArgument, op, "x",
                "shape " + softmax::detail::shape_str(x.shape),
                "argmax of an empty row is undefined (every shard is empty)");
  }
  if (indices.dtype == DType::i32 && lay.vocab > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::kOverflow, op, "indices", "i32",
                "rows of " + std::to_string(lay.vocab) + " classes need i64 indices");
  }
  // Local: the single-process chunk rule (first strictly greater; the first NaN wins) over this
  // rank's chunks, as (global index, value, is_nan).
  struct Wire {
    int64_t index;
    double value;
    int64_t is_nan;
  };
  const cpu::KernelTable& k = cpu::kernels();
  const auto xes = static_cast<int64_t>(dtype_size(x.dtype));
  std::vector<Wire> local(static_cast<std::size_t>(n > 0 ? rows : 0));
  const int threads = softmax::detail::current_exec().threads;
  if (n > 0) {
    softmax::detail::parallel_for(
        rows, rows * n >= softmax::detail::kMinParallelElems ? threads : 1,
        [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            cpu::ArgmaxResult best{};
            for (int64_t off = 0; off < n; off += kChunkElems) {
              cpu::ArgmaxResult p =
                  k.argmax(L.x[r] + off * xes, x.dtype, std::min(kChunkElems, n - off));
              p.index += off;
              if (off == 0 || (!best.is_nan && (p.is_nan || p.value > best.value))) best = p;
              if (best.is_nan) break;
            }
            local[static_cast<std::size_t>(r)] =
                Wire{best.index + class_offset, best.value, best.is_nan};
          }
        });
  }
  const int size = comm.size();
  std::vector<std::size_t> counts(static_cast<std::size_t>(size));
  std::vector<int64_t> first(static_cast<std::size_t>(size) + 1, 0);
  for (int r = 0; r < size; ++r) {
    const bool has = lay.shards[r].size > 0;
    counts[r] = has ? static_cast<std::size_t>(rows) * sizeof(Wire) : 0;
    first[r + 1] = first[r] + (has ? rows : 0);
  }
  std::vector<Wire> all(static_cast<std::size_t>(first[size]));
  comm.all_gather(local.data(), all.data(), counts.data());
  for (int64_t row = 0; row < rows; ++row) {
    bool have = false;
    Wire best{};
    for (int r : lay.order) {
      const Wire& p = all[static_cast<std::size_t>(first[r] + row)];
      if (!have) {
        best = p;
        have = true;
      } else if (!best.is_nan && (p.is_nan || p.value > best.value)) {
        best = p;
      }
      if (best.is_nan) break;
    }
    char* dst = static_cast<char*>(indices.data);
    if (indices.dtype == DType::i64) {
      reinterpret_cast<int64_t*>(dst)[L.y_off[row]] = best.index;
    } else {
      reinterpret_cast<int32_t*>(dst)[L.y_off[row]] = static_cast<int32_t>(best.index);
    }
  }
}

}  // namespace softmax::dist
