// bench/attention_bench.cc: fused attention (softmax::attention: tiled online softmax,
// FlashAttention-2 style) against materialise-then-softmax (oneDNN batched matmul q k^T ->
// our masked_softmax (causal, scale) -> oneDNN matmul P v), f32, B = 1, H = 8, causal
// (top-left), S in {512, 2048, 8192}, D in {64, 128}; and decode (Sq = 1, Sk = 8192).
//
// Names: impl/attention/B1xH8xSqxSkxD/f32/tN (impl = fused | materialised; see bench_util.hpp).
// Counters: gflops (useful causal flops 2 * 2 * H * D * kept pairs / time), extra_mib (scratch
// beyond inputs and output: fused O(tile) per thread, materialised H * Sq * Sk * 4 bytes).
// The materialised S = 8192 case needs 2 GiB of scores: it runs only with
// SOFTMAX_BENCH_BIG=1. The PyTorch 1.13 peer (matmul + masked_fill + softmax + matmul) is
// bench/attention_torch.py.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "softmax/attention.hpp"
#include "src/cpu/attention_kernels.hpp"
#include "src/ref/attention_reference.hpp"

#if defined(SOFTMAX_BENCH_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

struct Case {
  int64_t H, Sq, Sk, D;
  std::vector<float> q, k, v, out;
  Case(int64_t h, int64_t sq, int64_t sk, int64_t d) : H(h), Sq(sq), Sk(sk), D(d) {
    q = attn_ref::random_floats(static_cast<size_t>(H * Sq * D), 1);
    k = attn_ref::random_floats(static_cast<size_t>(H * Sk * D), 2);
    v = attn_ref::random_floats(static_cast<size_t>(H * Sk * D), 3);
    out.assign(static_cast<size_t>(H * Sq * D), 0.0f);
  }
  // Kept (query, key) pairs under top-left causal masking (bottom-right for decode).
  double kept_pairs() const {
    if (Sq == 1) return static_cast<double>(Sk);
    double n = 0;
    for (int64_t i = 0; i < Sq; ++i) n += static_cast<double>(std::min(i + 1, Sk));
    return n;
  }
  softmax::MaskOptions options(int threads) const {
    softmax::MaskOptions o;
    o.causal = true;
    o.align = Sq == 1 ? softmax::Align::kBottomRight : softmax::Align::kTopLeft;
    o.threads = threads;
    return o;
  }
};

std::string name(const char* impl, int64_t H, int64_t sq, int64_t sk, int64_t d, int t) {
  return std::string(impl) + "/attention/B1xH" + std::to_string(H) + "x" + std::to_string(sq) +
         "x" + std::to_string(sk) + "x" + std::to_string(d) + "/f32/t" + std::to_string(t);
}

void set_counters(benchmark::State& st, const Case& c, double extra_bytes) {
  st.counters["gflops"] = benchmark::Counter(
      4.0 * c.H * c.D * c.kept_pairs() * 1e-9 * static_cast<double>(st.iterations()),
      benchmark::Counter::kIsRate);
  st.counters["extra_mib"] = extra_bytes / (1 << 20);
}

void fused(benchmark::State& st, int64_t H, int64_t sq, int64_t sk, int64_t d, int threads) {
  Case c(H, sq, sk, d);
  const auto o = c.options(threads);
  for (auto _ : st) {
    softmax::attention(softmax::ConstTensorView(c.q.data(), {1, H, sq, d}),
                       softmax::ConstTensorView(c.k.data(), {1, H, sk, d}),
                       softmax::ConstTensorView(c.v.data(), {1, H, sk, d}),
                       softmax::TensorView(c.out.data(), {1, H, sq, d}), o);
    benchmark::DoNotOptimize(c.out.data());
  }
  // Per thread: q tile, score tile, output tile, state (see src/core/attention.cc).
  const double tile =
      4.0 * (softmax::cpu::kAttnQueryTile * (2 * d + softmax::cpu::kAttnKeyTile) * 2);
  set_counters(st, c, tile * threads);
}

#if defined(SOFTMAX_BENCH_HAVE_DNNL)
void materialised(benchmark::State& st, int64_t H, int64_t sq, int64_t sk, int64_t d, int threads) {
  using dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  omp_set_num_threads(threads);
  Case c(H, sq, sk, d);
  std::vector<float> s(static_cast<size_t>(H * sq * sk)), p(s.size());
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const memory::desc q_md({H, sq, d}, dt::f32, tag::abc);
  const memory::desc kt_md({H, d, sk}, dt::f32, memory::dims{sk * d, 1, d});  // k^T, no copy
  const memory::desc s_md({H, sq, sk}, dt::f32, tag::abc);
  const memory::desc v_md({H, sk, d}, dt::f32, tag::abc);
  const memory::desc o_md({H, sq, d}, dt::f32, tag::abc);
  dnnl::matmul qk(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, s_md), eng));
  dnnl::matmul pv(dnnl::matmul::primitive_desc(dnnl::matmul::desc(s_md, v_md, o_md), eng));
  memory qm(q_md, eng, c.q.data()), km(kt_md, eng, c.k.data()), sm(s_md, eng, s.data()),
      pm(s_md, eng, p.data()), vm(v_md, eng, c.v.data()), om(o_md, eng, c.out.data());
  auto o = c.options(threads);
  o.scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (auto _ : st) {
    qk.execute(strm, {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}});
    strm.wait();
    softmax::masked_softmax(softmax::ConstTensorView(s.data(), {1, H, sq, sk}),
                            softmax::TensorView(p.data(), {1, H, sq, sk}), o);
    pv.execute(strm, {{DNNL_ARG_SRC, pm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, om}});
    strm.wait();
    benchmark::DoNotOptimize(c.out.data());
  }
  set_counters(st, c, 2.0 * 4.0 * static_cast<double>(s.size()));
}
#endif

int register_all() {
  const char* big = std::getenv("SOFTMAX_BENCH_BIG");
  const bool run_big = big && std::string(big) == "1";
  for (int t : {1, 2}) {
    for (int64_t S : {512, 2048, 8192}) {
      for (int64_t D : {64, 128}) {
        benchmark::RegisterBenchmark(name("fused", 8, S, S, D, t).c_str(), fused, 8, S, S, D, t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(S >= 8192 ? 0.01 : 0.2);
#if defined(SOFTMAX_BENCH_HAVE_DNNL)
        if (S < 8192 || run_big) {
          benchmark::RegisterBenchmark(name("materialised", 8, S, S, D, t).c_str(), materialised, 8,
                                       S, S, D, t)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime()
              ->MinTime(S >= 8192 ? 0.01 : 0.2);
        }
#endif
      }
    }
    // Decode: one query against an 8192-key cache.
    for (int64_t D : {64, 128}) {
      benchmark::RegisterBenchmark(name("fused", 8, 1, 8192, D, t).c_str(), fused, 8, 1, 8192, D, t)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
#if defined(SOFTMAX_BENCH_HAVE_DNNL)
      benchmark::RegisterBenchmark(name("materialised", 8, 1, 8192, D, t).c_str(), materialised, 8,
                                   1, 8192, D, t)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
#endif
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
