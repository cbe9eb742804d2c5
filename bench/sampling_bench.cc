// bench/sampling_bench.cc: next-token sampling (softmax::sample) against a sort-based reference
// in the same run (issue 5). Peer in Python: bench/sampling_torch.py (torch.sort + cumsum).
//
// Shapes: B in {1, 64} x V in {32000, 128256}, f32 logits, one thread.
// Filters: "topk50_topp0.9" (top-k 50, then top-p 0.9) and "topp0.9" (top-p alone), T = 0.8.
// Logits: "gauss" N(0, 3^2) (an LLM-like spread: nucleus of tens to hundreds of tokens) and
// "flat" uniform in [-8, 8) (a nucleus of tens of thousands: the hard case for a sort-free
// sampler). Each case draws one token per row; the seed advances each iteration.
//
// sortref: what samplers without a threshold search do: softmax(x / T) in f32 (max, exp, sum),
// std::sort of (prob, id) by prob desc (id asc on ties), top-k truncation, prefix sum in f64 to
// the top-p cutoff, renormalise, one uniform, walk. Single-threaded like ours here.
//
// Names: impl/sample_<filter>_<dist>/BxV/f32/t1 (bench/bench_util.hpp convention); counters:
// rows_per_s and ns_per_token (per vocabulary entry).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "softmax/sampling.hpp"

namespace {

struct Case {
  int64_t rows, vocab;
  int64_t top_k;
  double top_p;
  bool flat;
  std::string filter() const { return top_k > 0 ? "topk50_topp0.9" : "topp0.9"; }
  std::string name(const char* impl) const {
    return std::string(impl) + "/sample_" + filter() + "_" + (flat ? "flat" : "gauss") + "/" +
           std::to_string(rows) + "x" + std::to_string(vocab) + "/f32/t1";
  }
};

constexpr double kTemperature = 0.8;

std::vector<float> make_logits(const Case& c) {
  std::mt19937_64 rng(0x5eed + static_cast<uint64_t>(c.rows * 7 + c.vocab));
  std::vector<float> x(static_cast<std::size_t>(c.rows * c.vocab));
  if (c.flat) {
    std::uniform_real_distribution<float> u(-8.0f, 8.0f);
    for (auto& v : x) v = u(rng);
  } else {
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (auto& v : x) v = nd(rng);
  }
  return x;
}

void set_counters(benchmark::State& state, const Case& c) {
  const double rows = static_cast<double>(state.iterations()) * static_cast<double>(c.rows);
  state.counters["rows_per_s"] = benchmark::Counter(rows, benchmark::Counter::kIsRate);
  state.counters["ns_per_token"] =
      benchmark::Counter(rows * static_cast<double>(c.vocab) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ours(benchmark::State& state, Case c) {
  const auto x = make_logits(c);
  softmax::SamplingParams p;
  p.temperature = kTemperature;
  p.top_k = c.top_k;
  p.top_p = c.top_p;
  p.threads = 1;
  std::vector<int64_t> out(static_cast<std::size_t>(c.rows));
  const softmax::ConstTensorView xv(x.data(), softmax::DType::f32, {c.rows, c.vocab});
  const softmax::TensorView ov(out.data(), softmax::DType::i64, {c.rows});
  uint64_t seed = 1;
  for (auto _ : state) {
    softmax::sample(xv, ov, p, seed++);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, c);
}

// Sort-based reference for one row.
int64_t sort_sample_row(const float* x, int64_t n, int64_t top_k, double top_p, double u,
                        std::vector<std::pair<float, uint32_t>>& buf) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  const float inv_t = static_cast<float>(1.0 / kTemperature);
  buf.resize(static_cast<std::size_t>(n));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp((x[i] - m) * inv_t);
    buf[i] = {e, static_cast<uint32_t>(i)};
    s += e;
  }
  std::sort(buf.begin(), buf.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  int64_t len = (top_k > 0 && top_k < n) ? top_k : n;
  double mk = 0;
  if (len < n) {
    for (int64_t j = 0; j < len; ++j) mk += buf[j].first;
  } else {
    mk = s;
  }
  double acc = 0;
  int64_t cut = len;
  for (int64_t j = 0; j < len; ++j) {  // prefix sum to the top-p cutoff
    acc += buf[j].first;
    if (acc >= top_p * mk) {
      cut = j + 1;
      break;
    }
  }
  const double r = u * acc;
  double run = 0;
  for (int64_t j = 0; j < cut; ++j) {
    run += buf[j].first;
    if (run > r) return buf[j].second;
  }
  return buf[cut - 1].second;
}

void BM_sortref(benchmark::State& state, Case c) {
  const auto x = make_logits(c);
  std::vector<std::pair<float, uint32_t>> buf;
  std::vector<int64_t> out(static_cast<std::size_t>(c.rows));
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  for (auto _ : state) {
    for (int64_t r = 0; r < c.rows; ++r) {
      out[r] = sort_sample_row(x.data() + r * c.vocab, c.vocab, c.top_k, c.top_p, uni(rng), buf);
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, c);
}

const bool registered = [] {
  for (bool flat : {false, true}) {
    for (int64_t top_k : {int64_t{50}, int64_t{0}}) {
      for (int64_t rows : {int64_t{1}, int64_t{64}}) {
        for (int64_t vocab : {int64_t{32000}, int64_t{128256}}) {
          const Case c{rows, vocab, top_k, 0.9, flat};
          benchmark::RegisterBenchmark(c.name("ours").c_str(), BM_ours, c)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
          benchmark::RegisterBenchmark(c.name("sortref").c_str(), BM_sortref, c)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  return true;
}();

}  // namespace
