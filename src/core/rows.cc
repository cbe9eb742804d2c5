// src/core/rows.cc
#include "src/core/rows.hpp"

#include "src/core/exec.hpp"
#include "src/cpu/target.hpp"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "softmax/error.hpp"

namespace softmax::detail {

namespace {
template <class YView>
RowGeometry make_row_geometry_impl(const ConstTensorView& x, const YView& y, int64_t axis,
                                   bool y_reduced) {
  RowGeometry g;
  const auto rank = static_cast<int64_t>(x.shape.size());
  g.n = x.shape[axis];
  g.x_step = x.strides[axis];
  g.y_step = y_reduced ? 0 : y.strides[axis];
  g.rows = 1;
  // A non-axis dim of 0: no row (the product of the others may exceed int64).
  for (int64_t j = 0; j < rank; ++j) {
    if (j != axis && x.shape[j] == 0) {
      g.rows = 0;
      return g;
    }
  }
  const bool y_keeps_axis = static_cast<int64_t>(y.shape.size()) == rank;
  int64_t yj = 0;
  for (int64_t j = 0; j < rank; ++j) {
    if (j == axis) {
      if (y_keeps_axis) ++yj;
      continue;
    }
    if (x.shape[j] == 1) {  // dropped below anyway; skipping it keeps short lists inline
      ++yj;
      continue;
    }
    g.dims.push_back(x.shape[j]);
    g.x_strides.push_back(x.strides[j]);
    g.y_strides.push_back(y.strides[yj++]);
    // Fits whenever x or y holds elements (their checks bounded the count). It can overflow only
    // for an empty axis with y shaped like x: no element anywhere, so no row to visit.
    if (__builtin_mul_overflow(g.rows, x.shape[j], &g.rows)) {
      RowGeometry none;
      none.n = g.n;
      return none;
    }
  }
  // Merge adjacent dims that both views step through uniformly (dims of size 1 are dropped), so a
  // contiguous batch becomes one dim with a constant row stride (fast paths rely on it).
  RowGeometry m = g;
  m.dims.clear();
  m.x_strides.clear();
  m.y_strides.clear();
  for (std::size_t j = 0; j < g.dims.size(); ++j) {
    if (g.dims[j] == 1) continue;
    if (!m.dims.empty() && m.x_strides.back() == g.x_strides[j] * g.dims[j] &&
        m.y_strides.back() == g.y_strides[j] * g.dims[j]) {
      m.dims.back() *= g.dims[j];
      m.x_strides.back() = g.x_strides[j];
      m.y_strides.back() = g.y_strides[j];
      continue;
    }
    m.dims.push_back(g.dims[j]);
    m.x_strides.push_back(g.x_strides[j]);
    m.y_strides.push_back(g.y_strides[j]);
  }
  return m;
}
}  // namespace

RowGeometry make_row_geometry(const ConstTensorView& x, const ConstTensorView& y, int64_t axis,
                              bool y_reduced) {
  return make_row_geometry_impl(x, y, axis, y_reduced);
}

RowGeometry make_row_geometry(const ConstTensorView& x, const TensorView& y, int64_t axis,
                              bool y_reduced) {
  return make_row_geometry_impl(x, y, axis, y_reduced);
}

namespace {
std::atomic<bool> g_forked_child{false};
void on_fork_child() noexcept { g_forked_child.store(true, std::memory_order_relaxed); }
// Registered when the library is loaded, so the child of every later fork() is marked.
[[maybe_unused]] const int g_atfork_registered = pthread_atfork(nullptr, nullptr, on_fork_child);
}  // namespace

bool in_forked_child() noexcept { return g_forked_child.load(std::memory_order_relaxed); }

// omp_get_num_procs() asks the kernel for the affinity mask on every call: read it once.
int cpu_count() {
  static const int procs = std::max(1, omp_get_num_procs());
  return procs;
}

void check_threads(const char* op, int threads) {
  if (threads < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "threads", std::to_string(threads),
                "must be >= 0 (0 = the OpenMP default; counts above the number of CPUs are "
                "clamped to it)");
  }
}

int resolve_threads(int requested) {
  check_threads("threads", requested);
  if (in_forked_child()) return 1;
  const int t = requested > 0 ? requested : omp_get_max_threads();
  return std::clamp(t, 1, cpu_count());
}

void parallel_ranges(int64_t count, int threads, void (*fn)(int64_t, int64_t, void*), void* ctx) {
  if (threads <= 1 || count <= 1 || in_forked_child()) {
    fn(0, count, ctx);
    return;
  }
  const Exec& ex = current_exec();
  if (ex.parallel_for != nullptr) {
    // The caller's pool runs exactly t tasks, task i doing our static range i, so the ranges
    // (and any per-range scratch) are the same whatever granularity the pool chooses.
    const int64_t t = count < threads ? count : threads;
    struct Split {
      int64_t count, t, target;
      void (*fn)(int64_t, int64_t, void*);
      void* ctx;
    } split{count, t, cpu::active_target(), fn, ctx};
    ex.parallel_for(
        ex.pool, t, t,
        [](void* c, int64_t begin, int64_t end) {
          const auto& sp = *static_cast<const Split*>(c);
          const cpu::ActiveTargetScope target_scope(sp.target);
          for (int64_t i = begin; i < end; ++i)
            sp.fn(sp.count * i / sp.t, sp.count * (i + 1) / sp.t, sp.ctx);
        },
        &split);
    return;
  }
  threads = std::min(threads, cpu_count());  // for callers that did not resolve their count
  const int t = static_cast<int>(count < threads ? count : threads);
  const int64_t target = cpu::active_target();  // the call's SIMD target, on every worker
#pragma omp parallel num_threads(t)
  {
    const cpu::ActiveTargetScope target_scope(target);
    const int64_t id = omp_get_thread_num();
    const int64_t nt = omp_get_num_threads();
    const int64_t b = count * id / nt;
    const int64_t e = count * (id + 1) / nt;
    fn(b, e, ctx);
  }
}

}  // namespace softmax::detail
