// bench/large_vocab_bench.cc: one training step (forward + backward) of the large-vocabulary
// approximations against the full fused linear_cross_entropy, at V = 32768, 262144 and
// 1048576, D = 256, batch 1024, f32, 1 and 2 threads, Zipf-distributed targets
// (P(k) proportional to 1 / (k + 1)).
//
//   full          linear_cross_entropy with grad_hidden and the dense (V, D) grad_weight
//   sampled       sampled_softmax_loss, num_sampled = 8192, log-uniform, with gradients
//   hierarchical  hierarchical_softmax_loss over word2vec's Huffman tree of the Zipf counts
//   adaptive      adaptive_log_softmax_with_loss, cutoffs (20000, 200000) scaled by V / 2^20,
//                 tail projections D / 4 and D / 16 (torch's div_value 4), with gradients
//
// Counters: peak_extra_mib: the rise of the process's peak resident set during the step over
// its resident set before it (inputs and the caller's dense gradient buffers are allocated and
// touched beforehand, and allocations over 1 MiB are mapped per allocation and trimmed between
// steps, so this is what the call itself allocates: scratch, sparse gradients, and the BLAS's
// buffers); grad_out_mib: the caller-held gradient outputs (full: grad_hidden +
// grad_weight; the others return theirs inside the call, so they are part of peak_extra).
// Names: <method>/step/V<V>xD256xN1024/f32/t<threads>.
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_util.hpp"
#include "softmax/cross_entropy.hpp"
#include "softmax/large_vocab.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TensorView;

constexpr int64_t kD = 256, kN = 1024, kSampled = 8192;

using softmax_bench::reset_peak_rss;
using softmax_bench::status_kb;

// Inputs of one vocabulary size, shared by every method and thread count.
struct Problem {
  int64_t v;
  std::vector<float> w, h, b, gh, gw;
  std::vector<int64_t> t, counts;
  std::unique_ptr<softmax::HierarchicalTree> tree;
  std::vector<std::vector<float>> tails;  // projection, output, projection, output
  std::vector<float> head;
  std::vector<int64_t> cutoffs;

  explicit Problem(int64_t v_) : v(v_) {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> nd(0, 1);
    auto fill = [&](std::vector<float>& x, std::size_t n, float s) {
      x.resize(n);
      for (auto& e : x) e = nd(rng) * s;
    };
    fill(w, static_cast<std::size_t>(v * kD), 0.05f);
    fill(h, static_cast<std::size_t>(kN * kD), 1.0f);
    b.assign(static_cast<std::size_t>(v), 0.0f);
    std::vector<double> cdf(static_cast<std::size_t>(v));
    double run = 0;
    for (int64_t k = 0; k < v; ++k)
      cdf[static_cast<std::size_t>(k)] = run += 1.0 / static_cast<double>(k + 1);
    std::uniform_real_distribution<double> u(0, run);
    for (int64_t i = 0; i < kN; ++i) {
      t.push_back(
          std::min<int64_t>(std::upper_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin(), v - 1));
    }
    for (int64_t k = 0; k < v; ++k)
      counts.push_back(1 + static_cast<int64_t>(1e9 / static_cast<double>(k + 1)));
    tree = std::make_unique<softmax::HierarchicalTree>(softmax::huffman_tree(counts));
    cutoffs = {std::max<int64_t>(1, 20000 * v / 1048576), 200000 * v / 1048576};
    fill(head, static_cast<std::size_t>((cutoffs[0] + 2) * kD), 0.05f);
    const std::vector<int64_t> hid{kD / 4, kD / 16}, osz{cutoffs[1] - cutoffs[0], v - cutoffs[1]};
    for (std::size_t i = 0; i < 2; ++i) {
      tails.emplace_back();
      fill(tails.back(), static_cast<std::size_t>(hid[i] * kD), 0.05f);
      tails.emplace_back();
      fill(tails.back(), static_cast<std::size_t>(osz[i] * hid[i]), 0.05f);
    }
  }
};

Problem& problem(int64_t v) {
  static std::map<int64_t, std::unique_ptr<Problem>> cache;
  if (cache.find(v) == cache.end()) {
    cache.clear();  // one vocabulary size resident at a time
    cache[v] = std::make_unique<Problem>(v);
  }
  return *cache[v];
}

float step(const std::string& method, Problem& p, int threads) {
  const ConstTensorView hid(p.h.data(), {kN, kD}), tgt(p.t.data(), DType::i64, {kN});
  if (method == "full") {
    float loss = 0;
    softmax::CrossEntropyOptions o;
    o.threads = threads;
    softmax::LinearCrossEntropyOutputs out;
    out.loss = TensorView(&loss, std::vector<int64_t>{});
    out.grad_hidden = TensorView(p.gh.data(), {kN, kD});
    out.grad_weight = TensorView(p.gw.data(), {p.v, kD});
    softmax::linear_cross_entropy(hid, ConstTensorView(p.w.data(), {p.v, kD}), tgt, out, o);
    return loss;
  }
  if (method == "sampled") {
    softmax::SampledSoftmaxOptions o;
    o.num_sampled = kSampled;
    o.num_classes = p.v;
    o.compute_grad = true;
    o.threads = threads;
    const auto r = softmax::sampled_softmax_loss(
        ConstTensorView(p.w.data(), {p.v, kD}), ConstTensorView(p.b.data(), {p.v}),
        ConstTensorView(p.t.data(), DType::i64, {kN, 1}), hid, o);
    return r.loss[0] + r.grad_weights.values[0];
  }
  if (method == "hierarchical") {
    softmax::HierarchicalOptions o;
    o.compute_grad = true;
    o.threads = threads;
    const auto r = softmax::hierarchical_softmax_loss(hid, tgt, *p.tree,
                                                      ConstTensorView(p.w.data(), {p.v - 1, kD}),
                                                      ConstTensorView(p.b.data(), {p.v - 1}), o);
    return r.loss[0] + r.grad_nodes.values[0];
  }
  softmax::AdaptiveSoftmaxOptions o;
  o.compute_grad = true;
  o.threads = threads;
  const std::vector<int64_t> hidn{kD / 4, kD / 16};
  const std::vector<int64_t> osz{p.cutoffs[1] - p.cutoffs[0], p.v - p.cutoffs[1]};
  std::vector<softmax::AdaptiveTail> tails;
  for (std::size_t i = 0; i < 2; ++i) {
    tails.push_back({ConstTensorView(p.tails[2 * i].data(), {hidn[i], kD}),
                     ConstTensorView(p.tails[2 * i + 1].data(), {osz[i], hidn[i]})});
  }
  const auto r = softmax::adaptive_log_softmax_with_loss(
      hid, tgt, ConstTensorView(p.head.data(), {p.cutoffs[0] + 2, kD}), tails, p.cutoffs,
      std::nullopt, o);
  return static_cast<float>(r.loss) + r.grad_input[0];
}

void BM_Step(benchmark::State& state, std::string method, int64_t v, int threads) {
  Problem& p = problem(v);
  if (method == "full") {
    p.gh.assign(static_cast<std::size_t>(kN * kD), 0.0f);
    p.gw.assign(static_cast<std::size_t>(v * kD), 0.0f);
  } else {
    p.gw.clear();
    p.gw.shrink_to_fit();
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  step(method, p, threads);  // warm-up: first-touch of scratch, BLAS kernels chosen
  double peak_mib = 0;
  for (auto _ : state) {
    malloc_trim(0);  // freed scratch of the previous step leaves the resident set
    const int64_t before = status_kb("VmRSS:");
    reset_peak_rss();
    benchmark::DoNotOptimize(step(method, p, threads));
    peak_mib = std::max(peak_mib, static_cast<double>(status_kb("VmHWM:") - before) / 1024.0);
  }
  omp_set_num_threads(saved);
  state.counters["peak_extra_mib"] = peak_mib;
  state.counters["grad_out_mib"] =
      method == "full" ? static_cast<double>((kN + v) * kD) * 4.0 / (1 << 20) : 0.0;
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(kN), benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  // A fixed threshold (no dynamic growth): buffers over 1 MiB are mapped and unmapped per
  // allocation, so each step's scratch shows in the peak resident set.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  for (int64_t v : {int64_t{32768}, int64_t{262144}, int64_t{1048576}}) {
    for (const char* method : {"full", "sampled", "hierarchical", "adaptive"}) {
      for (int threads : {1, 2}) {
        const std::string name = std::string(method) + "/step/V" + std::to_string(v) +
                                 "xD256xN1024/f32/t" + std::to_string(threads);
        auto* b =
            benchmark::RegisterBenchmark(name.c_str(), BM_Step, std::string(method), v, threads)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        if (v >= 262144 && std::string(method) == "full")
          b->Iterations(1);
        else
          b->MinTime(1.0);
      }
    }
  }
  return true;
}();

}  // namespace
