// bench/softmax_bench.cc: softmax, log-softmax and logsumexp, ours against oneDNN, XNNPACK and
// memcpy of the same bytes, all in one process and run (issue 3).
//
// Cases: impl/op/shape/dtype/tN (see bench_util.hpp), for every shape of standard_shapes(),
// f32 and bf16 (in and out of the same dtype), 1 and 2 threads:
//   memcpy/copy          memcpy of the input's bytes (same rotation, N OpenMP threads)
//   ours/softmax|log_softmax|logsumexp   the public API, SoftmaxOptions::threads = N
//   onednn/softmax|log_softmax   dnnl::softmax_forward / logsoftmax_forward, forward_inference,
//                        primitive created outside the timing loop, omp_set_num_threads(N);
//                        the label holds oneDNN's implementation name (e.g. jit:avx512_core)
//   xnnpack/softmax      xnn_create_softmax_nc_f32 (f32 only), t2 on a 2-thread pthreadpool
// Counters: gbps, x_memcpy, memcpy_gbps, elems_per_s (bench_util.hpp: set_counters).
// Out-of-cache shapes rotate buffers totalling >= 2x the last-level cache; 64x1024 stays hot.
//
// Run: build-bench/bench/softmax_bench --benchmark_filter=f32/t1 --benchmark_min_time=0.1
//      (bench/run_cpu.py runs everything and adds PyTorch and NumPy).
#include <omp.h>

#include <functional>
#include <unordered_map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_util.hpp"
#include "softmax/softmax.hpp"

#if defined(SOFTMAX_BENCH_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if defined(SOFTMAX_BENCH_HAVE_XNNPACK)
#include <pthreadpool.h>
#include <xnnpack.h>
#endif

namespace {

using namespace softmax_bench;

enum class Op { softmax, log_softmax, logsumexp };
const char* op_name(Op op) {
  switch (op) {
    case Op::softmax: return "softmax";
    case Op::log_softmax: return "log_softmax";
    case Op::logsumexp: return "logsumexp";
  }
  return "?";
}

std::size_t out_bytes_of(Op op, const Shape& s, Dt dt) {
  return static_cast<std::size_t>(op == Op::logsumexp ? s.rows : s.numel()) * dt_size(dt);
}

void finish(benchmark::State& st, Op op, const Shape& s, Dt dt, int threads) {
  const std::size_t in = static_cast<std::size_t>(s.numel()) * dt_size(dt);
  set_counters(st, in, out_bytes_of(op, s, dt), s.numel(), in, threads, s.rotate, dt);
}

// ---- memcpy of the same bytes ----
void bm_memcpy(benchmark::State& st, Shape s, Dt dt, int threads) {
  const std::size_t bytes = static_cast<std::size_t>(s.numel()) * dt_size(dt);
  Arena& a = Arena::get();
  a.prepare(bytes, bytes, dt, s.rotate);
  for (auto _ : st) {
    const Pair p = a.next();
    parallel_memcpy(p.out, p.in, bytes, threads);
    benchmark::ClobberMemory();
  }
  set_counters(st, bytes, bytes, s.numel(), bytes, threads, s.rotate, dt);
}

// ---- ours ----
void bm_ours(benchmark::State& st, Op op, Shape s, Dt dt, int threads) {
  Arena& a = Arena::get();
  const std::size_t in_bytes = static_cast<std::size_t>(s.numel()) * dt_size(dt);
  const int64_t pairs = a.prepare(in_bytes, out_bytes_of(op, s, dt), dt, s.rotate);
  const softmax::DType t = dt == Dt::f32 ? softmax::DType::f32 : softmax::DType::bf16;
  softmax::SoftmaxOptions o;
  o.threads = threads;
  // Views built ahead of time: the loop times the op call only.
  std::vector<softmax::ConstTensorView> xs;
  std::vector<softmax::TensorView> ys;
  for (int64_t i = 0; i < pairs; ++i) {
    const Pair p = a.pair(i);
    xs.emplace_back(p.in, t, std::vector<int64_t>{s.rows, s.n});
    ys.emplace_back(p.out, t,
                    op == Op::logsumexp ? std::vector<int64_t>{s.rows}
                                        : std::vector<int64_t>{s.rows, s.n});
  }
  auto call = [&](int64_t i) {
    switch (op) {
      case Op::softmax: softmax::softmax(xs[i], ys[i], o); break;
      case Op::log_softmax: softmax::log_softmax(xs[i], ys[i], o); break;
      case Op::logsumexp: softmax::logsumexp(xs[i], ys[i], o); break;
    }
  };
  try {
    call(a.cursor());  // validation and thread-pool start-up, outside the timing
    a.advance();
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }
  for (auto _ : st) {
    const int64_t i = a.cursor();
    a.advance();
    call(i);
    benchmark::ClobberMemory();
  }
  finish(st, op, s, dt, threads);
}

#if defined(SOFTMAX_BENCH_HAVE_DNNL)
// ---- oneDNN ----
void bm_onednn(benchmark::State& st, Op op, Shape s, Dt dt, int threads) {
  omp_set_num_threads(threads);  // oneDNN's OpenMP runtime follows the calling thread's ICV
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const auto mdt = dt == Dt::f32 ? dnnl::memory::data_type::f32 : dnnl::memory::data_type::bf16;
  const dnnl::memory::desc md({s.rows, s.n}, mdt, dnnl::memory::format_tag::ab);
  dnnl::primitive prim;
  std::string impl;
  try {
    if (op == Op::softmax) {
      dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md, 1);
      dnnl::softmax_forward::primitive_desc pd(d, eng);
      impl = pd.impl_info_str();
      prim = dnnl::softmax_forward(pd);
    } else {
      dnnl::logsoftmax_forward::desc d(dnnl::prop_kind::forward_inference, md, 1);
      dnnl::logsoftmax_forward::primitive_desc pd(d, eng);
      impl = pd.impl_info_str();
      prim = dnnl::logsoftmax_forward(pd);
    }
  } catch (const dnnl::error& e) {
    st.SkipWithError((std::string("oneDNN: ") + e.what()).c_str());
    return;
  }
  st.SetLabel(impl);
  Arena& a = Arena::get();
  const std::size_t bytes = static_cast<std::size_t>(s.numel()) * dt_size(dt);
  const int64_t pairs = a.prepare(bytes, bytes, dt, s.rotate);
  std::vector<std::unordered_map<int, dnnl::memory>> args;
  for (int64_t i = 0; i < pairs; ++i) {
    const Pair p = a.pair(i);
    args.push_back({{DNNL_ARG_SRC, dnnl::memory(md, eng, p.in)},
                    {DNNL_ARG_DST, dnnl::memory(md, eng, p.out)}});
  }
  prim.execute(strm, args[a.cursor()]);  // warm-up (JIT, threads), outside the timing
  strm.wait();
  a.advance();
  for (auto _ : st) {
    const int64_t i = a.cursor();
    a.advance();
    prim.execute(strm, args[i]);
    strm.wait();
  }
  finish(st, op, s, dt, threads);
}
#endif

#if defined(SOFTMAX_BENCH_HAVE_XNNPACK)
// ---- XNNPACK ----
void bm_xnnpack(benchmark::State& st, Shape s, int threads) {
  static const bool ok = xnn_initialize(nullptr) == xnn_status_success;
  if (!ok) {
    st.SkipWithError("xnn_initialize failed");
    return;
  }
  pthreadpool_t pool = threads > 1 ? pthreadpool_create(static_cast<size_t>(threads)) : nullptr;
  Arena& a = Arena::get();
  const std::size_t bytes = static_cast<std::size_t>(s.numel()) * 4;
  const int64_t pairs = a.prepare(bytes, bytes, Dt::f32, s.rotate);
  // One operator per buffer pair, set up ahead of time: the loop only runs them.
  std::vector<xnn_operator_t> ops(static_cast<std::size_t>(pairs), nullptr);
  bool failed = false;
  const auto n = static_cast<size_t>(s.n);
  for (int64_t i = 0; i < pairs && !failed; ++i) {
    const Pair p = a.pair(i);
    failed = xnn_create_softmax_nc_f32(n, n, n, 0, &ops[i]) != xnn_status_success ||
             xnn_setup_softmax_nc_f32(ops[i], static_cast<size_t>(s.rows),
                                      static_cast<const float*>(p.in), static_cast<float*>(p.out),
                                      pool) != xnn_status_success;
  }
  if (!failed) {
    xnn_run_operator(ops[a.cursor()], pool);  // warm-up
    a.advance();
    for (auto _ : st) {
      const int64_t i = a.cursor();
      a.advance();
      xnn_run_operator(ops[i], pool);
      benchmark::ClobberMemory();
    }
  }
  for (xnn_operator_t op : ops) {
    if (op != nullptr) xnn_delete_operator(op);
  }
  if (pool != nullptr) pthreadpool_destroy(pool);
  if (failed) {
    st.SkipWithError("XNNPACK softmax_nc_f32 create/setup failed");
    return;
  }
  finish(st, Op::softmax, s, Dt::f32, threads);
}
#endif

// Registers every case, grouped by dtype (the input arena is refilled on a dtype change).
const bool registered = [] {
  benchmark::AddCustomContext("softmax_simd_target", softmax::current_target());
  benchmark::AddCustomContext("llc_bytes", std::to_string(llc_bytes()));
  benchmark::AddCustomContext("rotate_bytes", std::to_string(rotate_footprint()));
#if defined(SOFTMAX_BENCH_HAVE_DNNL)
  {
    const dnnl_version_t* v = dnnl_version();
    benchmark::AddCustomContext("onednn_version", std::to_string(v->major) + "." +
                                                      std::to_string(v->minor) + "." +
                                                      std::to_string(v->patch));
  }
#endif
  auto reg = [](const std::string& name, auto&& fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  for (Dt dt : {Dt::f32, Dt::bf16}) {
    for (const Shape& s : standard_shapes()) {
      for (int t : {1, 2}) {
        reg(case_name("memcpy", "copy", s, dt, t),
            [=](benchmark::State& st) { bm_memcpy(st, s, dt, t); });
        for (Op op : {Op::softmax, Op::log_softmax, Op::logsumexp}) {
          reg(case_name("ours", op_name(op), s, dt, t),
              [=](benchmark::State& st) { bm_ours(st, op, s, dt, t); });
        }
#if defined(SOFTMAX_BENCH_HAVE_DNNL)
        for (Op op : {Op::softmax, Op::log_softmax}) {
          reg(case_name("onednn", op_name(op), s, dt, t),
              [=](benchmark::State& st) { bm_onednn(st, op, s, dt, t); });
        }
#endif
#if defined(SOFTMAX_BENCH_HAVE_XNNPACK)
        if (dt == Dt::f32) {
          reg(case_name("xnnpack", "softmax", s, dt, t),
              [=](benchmark::State& st) { bm_xnnpack(st, s, t); });
        }
#endif
      }
    }
  }
  return true;
}();

}  // namespace
