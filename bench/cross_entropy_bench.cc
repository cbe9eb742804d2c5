// bench/cross_entropy_bench.cc: the training path of issue 4.
//
// 1. Fused cross-entropy forward + backward (loss and d loss / d logits in one call, reduction
//    mean, 1 thread) at (4096, 32000) and (512, 128256), f32 and bf16:
//      ours/cross_entropy_fwd_bwd/<rows>x<C>/<dt>/t1
//    GB/s counts one read of the logits and one write of the gradient. The PyTorch peer
//    (log_softmax + nll_loss + backward, torch.set_num_threads(1)) is timed by
//    bench/cross_entropy_torch.py on the same shapes.
// 2. linear_cross_entropy (N=4096, D=512, V=32000 and 128256, loss + both gradients, 1 thread)
//    against the materialised path (sgemm to the (N, V) logits, fused cross-entropy with the
//    gradient in place, two sgemms for the gradients), both with oneDNN's sgemm:
//      ours/linear_cross_entropy/4096x512x<V>/f32/t1, materialised/linear_cross_entropy/...
//    Counter peak_extra_mb: the peak resident memory the call adds on top of its inputs and
//    outputs (VmHWM reset through /proc/self/clear_refs before the call, minus VmRSS before),
//    i.e. what getrusage's ru_maxrss would show for the call alone.
// Filter with --benchmark_filter (e.g. 'fwd_bwd' or 'linear.*32000').
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.h>

#include "bench_util.hpp"
#include "softmax/cross_entropy.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::CrossEntropyOptions;
using softmax::CrossEntropyOutputs;
using softmax::DType;
using softmax::TensorView;
using softmax_bench::Dt;

using softmax_bench::reset_peak_rss;
using softmax_bench::status_kb;

std::vector<int64_t> make_targets(int64_t n, int64_t c) {
  std::mt19937_64 rng(42);
  std::vector<int64_t> t(static_cast<std::size_t>(n));
  for (auto& v : t) v = static_cast<int64_t>(rng() % static_cast<uint64_t>(c));
  return t;
}

void BM_FusedCe(benchmark::State& state, int64_t rows, int64_t c, Dt dt) {
  const std::size_t es = softmax_bench::dt_size(dt);
  const std::size_t bytes = static_cast<std::size_t>(rows * c) * es;
  auto x = softmax_bench::alloc_buffer(bytes);
  auto g = softmax_bench::alloc_buffer(bytes);
  softmax_bench::fill_logits(x.get(), dt, rows * c);
  const auto t = make_targets(rows, c);
  const DType dtype = dt == Dt::f32 ? DType::f32 : DType::bf16;
  float loss = 0;
  CrossEntropyOutputs out;
  out.loss = TensorView(&loss, std::vector<int64_t>{});
  out.grad = TensorView(g.get(), dtype, {rows, c});
  CrossEntropyOptions o;
  o.threads = 1;
  const ConstTensorView xv(x.get(), dtype, {rows, c});
  const ConstTensorView tv(t.data(), DType::i64, {rows});
  for (auto _ : state) {
    softmax::cross_entropy(xv, tv, out, o);
    benchmark::DoNotOptimize(loss);
  }
  softmax_bench::set_counters(state, bytes, bytes, rows * c, bytes, 1, false, dt);
}

struct LinearProblem {
  int64_t n, d, v;
  std::vector<float> h, w, gh, gw;
  std::vector<int64_t> t;
  LinearProblem(int64_t n_, int64_t d_, int64_t v_) : n(n_), d(d_), v(v_) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    h.resize(static_cast<std::size_t>(n * d));
    w.resize(static_cast<std::size_t>(v * d));
    for (auto& x : h) x = nd(rng);
    for (auto& x : w) x = nd(rng) * 0.05f;
    gh.assign(h.size(), 0.0f);
    gw.assign(w.size(), 0.0f);
    t = make_targets(n, v);
  }
};

void run_linear(LinearProblem& p, float& loss) {
  CrossEntropyOptions o;
  o.threads = 1;
  softmax::LinearCrossEntropyOutputs out;
  out.loss = TensorView(&loss, std::vector<int64_t>{});
  out.grad_hidden = TensorView(p.gh.data(), {p.n, p.d});
  out.grad_weight = TensorView(p.gw.data(), {p.v, p.d});
  softmax::linear_cross_entropy(ConstTensorView(p.h.data(), {p.n, p.d}),
                                ConstTensorView(p.w.data(), {p.v, p.d}),
                                ConstTensorView(p.t.data(), DType::i64, {p.n}), out, o);
}

void run_materialised(LinearProblem& p, float& loss) {
  std::vector<float> logits(static_cast<std::size_t>(p.n * p.v));  // the (N, V) block
  dnnl_sgemm('N', 'T', p.n, p.v, p.d, 1.0f, p.h.data(), p.d, p.w.data(), p.d, 0.0f, logits.data(),
             p.v);
  CrossEntropyOptions o;
  o.threads = 1;
  CrossEntropyOutputs out;
  out.loss = TensorView(&loss, std::vector<int64_t>{});
  out.grad = TensorView(logits.data(), {p.n, p.v});  // in place: the gradient overwrites it
  softmax::cross_entropy(ConstTensorView(logits.data(), {p.n, p.v}),
                         ConstTensorView(p.t.data(), DType::i64, {p.n}), out, o);
  dnnl_sgemm('N', 'N', p.n, p.d, p.v, 1.0f, logits.data(), p.v, p.w.data(), p.d, 0.0f, p.gh.data(),
             p.d);
  dnnl_sgemm('T', 'N', p.v, p.d, p.n, 1.0f, logits.data(), p.v, p.h.data(), p.d, 0.0f, p.gw.data(),
             p.d);
}

void BM_Linear(benchmark::State& state, int64_t v, bool materialised) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);  // oneDNN's sgemm and our loops on one thread
  LinearProblem p(4096, 512, v);
  float loss = 0;
  double peak_mb = 0;
  for (auto _ : state) {
    const int64_t before = status_kb("VmRSS:");
    reset_peak_rss();
    if (materialised)
      run_materialised(p, loss);
    else
      run_linear(p, loss);
    const int64_t peak = status_kb("VmHWM:");
    peak_mb = std::max(peak_mb, static_cast<double>(peak - before) / 1024.0);
    benchmark::DoNotOptimize(loss);
  }
  omp_set_num_threads(saved);
  state.counters["peak_extra_mb"] = peak_mb;
  state.counters["logits_mb"] = static_cast<double>(p.n * v) * 4.0 / (1 << 20);
  state.counters["loss"] = loss;
}

const bool registered = [] {
  for (const auto& [rows, c] : {std::pair<int64_t, int64_t>{4096, 32000}, {512, 128256}}) {
    for (Dt dt : {Dt::f32, Dt::bf16}) {
      const std::string name = "ours/cross_entropy_fwd_bwd/" + std::to_string(rows) + "x" +
                               std::to_string(c) + "/" + softmax_bench::dt_name(dt) + "/t1";
      benchmark::RegisterBenchmark(name.c_str(), BM_FusedCe, rows, c, dt)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5);
    }
  }
  for (int64_t v : {32000, 128256}) {
    for (bool mat : {false, true}) {
      const std::string name = std::string(mat ? "materialised" : "ours") +
                               "/linear_cross_entropy/4096x512x" + std::to_string(v) + "/f32/t1";
      benchmark::RegisterBenchmark(name.c_str(), BM_Linear, v, mat)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->Iterations(1);
    }
  }
  return true;
}();

}  // namespace
