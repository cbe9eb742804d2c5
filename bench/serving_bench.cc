// bench/serving_bench.cc: the serving pipeline of sampling (issue 16): per-row parameters and
// seeds plus the logit processors, against our plain sampler with the same per-row filters in
// the same run; and speculative verification. Peer in Python: bench/serving_torch.py (the same
// pipeline in torch ops). Results: bench/results/serving.md.
//
// Shapes: B in {1, 64, 256} x V = 128256 (Llama 3), f32 logits N(0, 3^2), one thread.
// Per-row parameters: temperature 0.6 .. 1.0, top_k 0 / 50 / 100 / 40, top_p 0.9 / 0.95 / 1.0,
// min_p 0 / 0.05 (cycling over rows), one seed and stream per row.
// Processors ("serving"): 256 previous tokens per row (128 distinct ids, each twice),
// repetition penalty 1.1, presence 0.5, frequency 0.3, 16 logit-bias ids, 4 banned ids, one
// EOS id suppressed (min_tokens 512).
// Speculative: k in {4, 8} draft tokens, B in {1, 8}, f32 probabilities (softmax of N(0, 3^2)
// logits; the draft is the target's logits plus N(0, 1) noise, so acceptance is partial).
//
// processors_paired: plain and serving calls alternated within one loop (the same load on
// both), reporting the medians of their thread CPU times and of the per-pair ratio.
//
// Names: impl/<case>/BxV/f32/t1 (bench/bench_util.hpp convention); counter rows_per_s.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "softmax/logit_processors.hpp"
#include "softmax/ops.hpp"
#include "softmax/sampling.hpp"
#include "softmax/speculative.hpp"

namespace {

constexpr int64_t kVocab = 128256;

std::vector<float> gauss(int64_t n, uint64_t seed, float sd = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = nd(rng);
  return x;
}

// Per-row parameters and processors of B rows (owned storage; views in params / lp).
struct Serving {
  std::vector<double> temperature, top_p, min_p;
  std::vector<int64_t> top_k;
  std::vector<uint64_t> seeds, streams;
  std::vector<int64_t> prev, prev_off, bias_ids, banned, eos;
  std::vector<double> bias_vals;
  softmax::LogitProcessors lp;
  softmax::SamplingParams params;

  Serving(int64_t rows, bool processors) {
    std::mt19937_64 rng(rows);
    std::uniform_int_distribution<int64_t> id(0, kVocab - 1);
    prev_off.push_back(0);
    for (int64_t r = 0; r < rows; ++r) {
      temperature.push_back(0.6 + 0.1 * static_cast<double>(r % 5));
      top_k.push_back(std::vector<int64_t>{0, 50, 100, 40}[r % 4]);
      top_p.push_back(std::vector<double>{0.9, 0.95, 1.0}[r % 3]);
      min_p.push_back(r % 2 ? 0.05 : 0.0);
      seeds.push_back(1000 + static_cast<uint64_t>(r));
      streams.push_back((uint64_t{1} << 40) + static_cast<uint64_t>(r));
      for (int j = 0; j < 128; ++j) {
        const int64_t t = id(rng);
        prev.insert(prev.end(), {t, t});
      }
      prev_off.push_back(static_cast<int64_t>(prev.size()));
    }
    for (int j = 0; j < 16; ++j) {
      bias_ids.push_back(id(rng));
      bias_vals.push_back(j % 2 ? 2.0 : -2.0);
    }
    banned = {1, 2, 3, 4};
    eos = {kVocab - 1};
    lp.prev_tokens = {prev, prev_off};
    lp.repetition_penalty = 1.1;
    lp.presence_penalty = 0.5;
    lp.frequency_penalty = 0.3;
    lp.logit_bias = {bias_ids, {}};
    lp.logit_bias_values = bias_vals;
    lp.banned_tokens = {banned, {}};
    lp.eos_token_ids = eos;
    lp.min_tokens = int64_t{512};
    params.temperature = temperature;
    params.top_k = top_k;
    params.top_p = top_p;
    params.min_p = min_p;
    params.seeds = seeds;
    params.streams = streams;
    params.threads = 1;
    if (processors) params.processors = &lp;
  }
};

void BM_sample(benchmark::State& state, int64_t rows, bool processors) {
  const std::vector<float> x = gauss(rows * kVocab, 0x5eed + static_cast<uint64_t>(rows));
  Serving s(rows, processors);
  std::vector<int64_t> out(static_cast<std::size_t>(rows));
  const softmax::ConstTensorView xv(x.data(), softmax::DType::f32, {rows, kVocab});
  const softmax::TensorView ov(out.data(), softmax::DType::i64, {rows});
  uint64_t offset = 0;
  for (auto _ : state) {
    softmax::sample(xv, ov, s.params, 0, offset++);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * rows),
                                                    benchmark::Counter::kIsRate);
}

// Thread CPU time in seconds (the machine is shared: wall time counts other jobs' time).
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The processors' cost, paired: every iteration times one plain call and one serving call on
// the same logits (alternating which goes first), so both see the same machine load; counters:
// the medians of each call's thread CPU time (ms) and of the per-pair ratio serving / plain.
void BM_processors_paired(benchmark::State& state, int64_t rows) {
  const std::vector<float> x = gauss(rows * kVocab, 0x5eed + static_cast<uint64_t>(rows));
  Serving plain(rows, false), serving(rows, true);
  std::vector<int64_t> out(static_cast<std::size_t>(rows));
  const softmax::ConstTensorView xv(x.data(), softmax::DType::f32, {rows, kVocab});
  const softmax::TensorView ov(out.data(), softmax::DType::i64, {rows});
  std::vector<double> tp, ts, ratio;
  uint64_t offset = 0;
  for (auto _ : state) {
    double t[2];
    for (int c = 0; c < 2; ++c) {
      const bool serve = (c == 0) == (offset % 2 == 0);
      const double t0 = thread_cpu_s();
      softmax::sample(xv, ov, serve ? serving.params : plain.params, 0, offset);
      t[serve ? 1 : 0] = thread_cpu_s() - t0;
      benchmark::DoNotOptimize(out.data());
    }
    ++offset;
    tp.push_back(t[0]);
    ts.push_back(t[1]);
    ratio.push_back(t[1] / t[0]);
  }
  state.counters["plain_ms"] = 1e3 * median(tp);
  state.counters["serving_ms"] = 1e3 * median(ts);
  state.counters["serving_over_plain"] = median(ratio);
}

// Target and draft probabilities (B, k + 1, V) and (B, k, V); drafts drawn from the draft rows.
struct Spec {
  std::vector<float> p, q;
  std::vector<int64_t> drafts;
  Spec(int64_t rows, int64_t k) {
    const std::vector<float> lt = gauss(rows * (k + 1) * kVocab, 7);
    std::vector<float> ld = lt, noise = gauss(rows * (k + 1) * kVocab, 8, 1.0f);
    for (std::size_t i = 0; i < ld.size(); ++i) ld[i] += noise[i];
    p.resize(lt.size());
    std::vector<float> qa(ld.size());
    softmax::softmax(
        softmax::ConstTensorView(lt.data(), softmax::DType::f32, {rows * (k + 1), kVocab}),
        softmax::TensorView(p.data(), softmax::DType::f32, {rows * (k + 1), kVocab}));
    softmax::softmax(
        softmax::ConstTensorView(ld.data(), softmax::DType::f32, {rows * (k + 1), kVocab}),
        softmax::TensorView(qa.data(), softmax::DType::f32, {rows * (k + 1), kVocab}));
    for (int64_t b = 0; b < rows; ++b) {
      q.insert(q.end(), qa.begin() + b * (k + 1) * kVocab, qa.begin() + (b * (k + 1) + k) * kVocab);
    }
    softmax::SamplingParams sp;
    sp.threads = 1;
    drafts = softmax::sample_from_probs(
        softmax::ConstTensorView(q.data(), softmax::DType::f32, {rows * k, kVocab}), sp, 3);
  }
};

void BM_speculative(benchmark::State& state, int64_t rows, int64_t k) {
  const Spec s(rows, k);
  std::vector<int64_t> acc(static_cast<std::size_t>(rows)),
      tok(static_cast<std::size_t>(rows * (k + 1)));
  uint64_t offset = 0;
  for (auto _ : state) {
    softmax::speculative_verify(
        softmax::ConstTensorView(s.drafts.data(), softmax::DType::i64, {rows, k}),
        softmax::ConstTensorView(s.q.data(), softmax::DType::f32, {rows, k, kVocab}),
        softmax::ConstTensorView(s.p.data(), softmax::DType::f32, {rows, k + 1, kVocab}),
        softmax::TensorView(acc.data(), softmax::DType::i64, {rows}),
        softmax::TensorView(tok.data(), softmax::DType::i64, {rows, k + 1}), 1, offset++, {}, 1);
    benchmark::DoNotOptimize(tok.data());
  }
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * rows),
                                                    benchmark::Counter::kIsRate);
}

std::string shape(int64_t rows) {
  std::string s = "/";  // appended piece by piece: GCC 12's -Wrestrict misfires on a + chain
  s += std::to_string(rows);
  s += "x";
  s += std::to_string(kVocab);
  s += "/f32/t1";
  return s;
}

const bool registered = [] {
  for (int64_t rows : {int64_t{1}, int64_t{64}, int64_t{256}}) {
    benchmark::RegisterBenchmark(("ours/sample_plain_perrow" + shape(rows)).c_str(), BM_sample,
                                 rows, false)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("ours/sample_serving" + shape(rows)).c_str(), BM_sample, rows,
                                 true)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (int64_t rows : {int64_t{1}, int64_t{64}, int64_t{256}}) {
    benchmark::RegisterBenchmark(("ours/processors_paired" + shape(rows)).c_str(),
                                 BM_processors_paired, rows)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (int64_t k : {int64_t{4}, int64_t{8}}) {
    for (int64_t rows : {int64_t{1}, int64_t{8}}) {
      benchmark::RegisterBenchmark(("ours/speculative_k" + std::to_string(k) + shape(rows)).c_str(),
                                   BM_speculative, rows, k)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace
