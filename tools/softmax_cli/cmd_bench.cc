// tools/softmax_cli/cmd_bench.cc: `softmax bench`, the speed of our kernels against a memcpy of
// the same bytes, for users and scripts (the peer comparison lives in bench/, see
// docs/benchmarks.md).
//
//   softmax bench --op softmax|log-softmax|logsumexp --shape 4096x1024 --dtype f32|bf16
//                 --threads N [--cache cold|hot] [--min-time S] [--json]
//
// Measures our op (impl "softmax") and memcpy of the input's bytes (impl "memcpy", same thread
// count and buffers) taking turns, one batch of about 1 ms of calls each per round
// (src/base/timing.hpp: interleave), and reports the median over rounds of seconds per call.
// GB/s = (bytes read + bytes written by an ideal one-read one-write kernel) / seconds:
// 2 x the input's bytes for softmax, log-softmax and memcpy; input + one value per row for
// logsumexp. --cache cold (default) rotates buffer pairs totalling >= 2x the last-level cache so
// every call reads cold memory; hot reuses one pair (in-cache speed).
//
// --json prints one JSON object per line; these keys are a contract (scripts depend on them):
//   impl ("softmax" | "memcpy"), op, shape ("4096x1024"), dtype, threads, seconds (median per
//   call), gbps; also: reps (timed calls), bytes (moved per call), ratio_to_memcpy, cache,
//   target, min_seconds / max_seconds (fastest / slowest round, per call), rounds.
// Without --json: a readable table on stdout and a progress line on stderr while it runs.
// Bad --op/--shape/--dtype/--threads/--cache/--min-time: UsageError (exit 2).
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
#include "src/base/timing.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {
namespace {

struct BenchArgs {
  std::string op = "softmax";
  std::string shape = "4096x1024";
  std::string dtype = "f32";
  int threads = 1;
  std::string cache = "cold";
  double min_time = 0.5;
  bool json = false;
};

constexpr int kMinRounds = 5;
constexpr int kMaxRounds = 1000000;
constexpr int kMaxThreads = 4096;
constexpr double kBatchSeconds = 1e-3;

std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> dims;
  std::size_t pos = 0;
  const auto bad = [&](const std::string& why) {
    return UsageError("bench: --shape '" + s + "': " + why +
                      " (expected positive sizes joined by 'x', e.g. 4096x1024)");
  };
  if (s.empty()) throw bad("empty");
  while (pos <= s.size()) {
    const std::size_t end = std::min(s.find('x', pos), s.size());
    const std::string tok = s.substr(pos, end - pos);
    if (tok.empty() || tok.size() > 18 ||
        !std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw bad("'" + tok + "' is not a positive integer");
    }
    const int64_t d = std::stoll(tok);
    if (d <= 0) throw bad("sizes must be > 0");
    dims.push_back(d);
    pos = end + 1;
  }
  int64_t total = 1;
  for (int64_t d : dims) {
    if (total > std::numeric_limits<int64_t>::max() / 8 / d) throw bad("too many elements");
    total *= d;
  }
  return dims;
}

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

// Timed calls in total.
long long calls(const timing::Stats& s) {
  return static_cast<long long>(s.rounds) * static_cast<long long>(s.calls_per_round);
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void run_bench(const BenchArgs& a) {
  // ---- validate everything before any work ----
  if (a.op != "softmax" && a.op != "log-softmax" && a.op != "logsumexp") {
    throw UsageError("bench: --op '" + a.op + "': must be softmax, log-softmax or logsumexp");
  }
  DType t;
  if (a.dtype == "f32")
    t = DType::f32;
  else if (a.dtype == "bf16")
    t = DType::bf16;
  else
    throw UsageError("bench: --dtype '" + a.dtype + "': must be f32 or bf16");
  const std::vector<int64_t> dims = parse_shape(a.shape);
  if (a.threads < 0 || a.threads > kMaxThreads) {
    throw UsageError("bench: --threads " + std::to_string(a.threads) + ": must be in [0, " +
                     std::to_string(kMaxThreads) + "] (0 = the OpenMP default)");
  }
  if (a.cache != "cold" && a.cache != "hot") {
    throw UsageError("bench: --cache '" + a.cache + "': must be cold or hot");
  }
  if (!(a.min_time >= 0 && a.min_time <= 3600)) {
    throw UsageError("bench: --min-time " + json_number(a.min_time) + ": must be in [0, 3600]");
  }
  const int threads = a.threads == 0 ? omp_get_max_threads() : a.threads;
  const bool lse = a.op == "logsumexp";
  const std::vector<int64_t> out_dims(dims.begin(), dims.end() - (lse ? 1 : 0));
  int64_t numel = 1, out_numel = 1;
  for (int64_t d : dims) numel *= d;
  for (int64_t d : out_dims) out_numel *= d;
  const std::size_t es = dtype_size(t);
  const std::size_t in_bytes = static_cast<std::size_t>(numel) * es;
  const std::size_t out_bytes = static_cast<std::size_t>(out_numel) * es;
  const std::size_t moved_op = in_bytes + out_bytes;
  const std::size_t moved_copy = 2 * in_bytes;

  // ---- buffers: pairs totalling >= 2x the sysfs cache size (cold) or one pair (hot) ----
  constexpr std::size_t kAlign = 4096;
  const std::size_t stride = (in_bytes + kAlign - 1) / kAlign * kAlign;  // memcpy writes in_bytes
  int64_t pairs = 1;
  if (a.cache == "cold") {
    const auto footprint = static_cast<std::size_t>(2 * timing::sysfs_llc_bytes());
    pairs = std::max<int64_t>(2, static_cast<int64_t>((footprint + 2 * stride - 1) / (2 * stride)));
  }
  const std::size_t arena = stride * static_cast<std::size_t>(pairs);
  const timing::Buffer in = timing::alloc_buffer(arena), out = timing::alloc_buffer(arena);
  timing::fill_logits(in.get(), es, static_cast<int64_t>(arena / es));
  const auto x = [&](int64_t i) { return in.get() + static_cast<std::size_t>(i) * stride; };
  const auto y = [&](int64_t i) { return out.get() + static_cast<std::size_t>(i) * stride; };

  SoftmaxOptions o;
  o.threads = threads;
  std::vector<ConstTensorView> xs;
  std::vector<TensorView> ys;
  for (int64_t i = 0; i < pairs; ++i) {
    xs.emplace_back(x(i), t, dims);
    ys.emplace_back(y(i), t, out_dims);
  }
  const timing::Impl ours{[&](int64_t i) {
                            if (a.op == "softmax")
                              softmax::softmax(xs[i], ys[i], o);
                            else if (a.op == "log-softmax")
                              softmax::log_softmax(xs[i], ys[i], o);
                            else
                              softmax::logsumexp(xs[i], ys[i], o);
                          },
                          {},
                          {}};
  const timing::Impl copy{
      [&](int64_t i) { timing::parallel_copy(y(i), x(i), in_bytes, threads); }, {}, {}};

  const bool tty = isatty(STDERR_FILENO) != 0;
  const std::string what = a.op + " " + shape_str(dims) + " " + a.dtype + " threads " +
                           std::to_string(threads) + " (" + a.cache + ")";
  timing::InterleaveOptions io;
  io.pairs = pairs;
  io.min_rounds = kMinRounds;
  io.max_rounds = kMaxRounds;
  io.min_seconds = a.min_time;
  io.batch_seconds = kBatchSeconds;
  io.progress = [&](int rounds, double timed) {
    if (a.json || !tty) return;
    std::fprintf(stderr, "\rsoftmax bench: %s: %d rounds, %.1f s each   ", what.c_str(), rounds,
                 timed);
    std::fflush(stderr);
  };
  if (!a.json) {
    std::fprintf(stderr, "%ssoftmax bench: %s: measuring softmax and memcpy, taking turns...%s",
                 tty ? "\r" : "", what.c_str(), tty ? "" : "\n");
    std::fflush(stderr);
  }
  const std::vector<timing::Stats> m = timing::interleave({ours, copy}, io);
  if (!a.json && tty) std::fprintf(stderr, "\r\033[K");

  const double gbps_ours = static_cast<double>(moved_op) * 1e-9 / m[0].median;
  const double gbps_copy = static_cast<double>(moved_copy) * 1e-9 / m[1].median;
  struct Row {
    const char* impl;
    timing::Stats m;
    double gbps;
    std::size_t bytes;
  };
  const Row rows[] = {{"softmax", m[0], gbps_ours, moved_op},
                      {"memcpy", m[1], gbps_copy, moved_copy}};
  const std::string target = current_target();
  if (a.json) {
    for (const Row& r : rows) {
      std::printf(
          "{\"impl\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"dtype\": \"%s\", "
          "\"threads\": %d, \"seconds\": %s, \"gbps\": %s, \"reps\": %lld, \"bytes\": %zu, "
          "\"ratio_to_memcpy\": %s, \"cache\": \"%s\", \"target\": \"%s\", "
          "\"min_seconds\": %s, \"max_seconds\": %s, \"rounds\": %d}\n",
          r.impl, a.op.c_str(), shape_str(dims).c_str(), a.dtype.c_str(), threads,
          json_number(r.m.median).c_str(), json_number(r.gbps).c_str(), calls(r.m), r.bytes,
          json_number(r.gbps / gbps_copy).c_str(), a.cache.c_str(), target.c_str(),
          json_number(r.m.min).c_str(), json_number(r.m.max).c_str(), r.m.rounds);
    }
  } else {
    std::printf("softmax bench: %s %s %s, threads %d, cache %s (%lld buffer pair%s), target %s\n",
                a.op.c_str(), shape_str(dims).c_str(), a.dtype.c_str(), threads, a.cache.c_str(),
                static_cast<long long>(pairs), pairs == 1 ? "" : "s", target.c_str());
    std::printf("%-8s %14s %20s %10s %10s %8s\n", "impl", "median s/call", "min-max s/call", "GB/s",
                "x memcpy", "calls");
    for (const Row& r : rows) {
      std::printf("%-8s %14.4g %9.4g-%-10.4g %10.2f %10.3f %8lld\n", r.impl, r.m.median, r.m.min,
                  r.m.max, r.gbps, r.gbps / gbps_copy, calls(r.m));
    }
    std::printf(
        "GB/s counts bytes read + written by an ideal one-pass kernel (%zu per call for "
        "%s, %zu for memcpy).\n",
        moved_op, a.op.c_str(), moved_copy);
  }
  std::fflush(stdout);
}

const bool registered = register_command([](CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand(
      "bench", "Measure our kernel against memcpy of the same bytes (median seconds, GB/s)");
  sub->add_option("--op", args->op, "softmax | log-softmax | logsumexp")->capture_default_str();
  sub->add_option("--shape", args->shape, "Tensor shape, the op runs along the last axis")
      ->capture_default_str();
  sub->add_option("--dtype", args->dtype, "f32 | bf16 (input and output)")->capture_default_str();
  sub->add_option("--threads", args->threads, "Threads (0 = the OpenMP default)")
      ->transform(strict_integer<int>())
      ->capture_default_str();
  sub->add_option("--cache", args->cache,
                  "cold: rotate buffers totalling 2x the last-level cache; hot: reuse one")
      ->capture_default_str();
  sub->add_option("--min-time", args->min_time,
                  "Seconds of calls per implementation (at least "
                  "5 calls)")
      ->capture_default_str();
  sub->add_flag("--json", args->json,
                "One JSON object per line (impl, op, shape, dtype, "
                "threads, seconds, gbps, ...)");
  sub->callback([args] { run_bench(*args); });
});

}  // namespace
}  // namespace softmax::cli
