// tools/softmax_cli/cmd_bench.cc: `softmax bench`, the speed of our kernels against a memcpy of
// the same bytes, for users and scripts (the peer comparison lives in bench/, see
// docs/benchmarks.md).
//
//   softmax bench --op softmax|log-softmax|logsumexp --shape 4096x1024 --dtype f32|bf16
//                 --threads N [--cache cold|hot] [--min-time S] [--json]
//
// Measures, one call at a time, our op (impl "softmax") and memcpy of the input's bytes (impl
// "memcpy", with the same thread count and buffers), and reports the median seconds per call.
// GB/s = (bytes read + bytes written by an ideal one-read one-write kernel) / seconds:
// 2 x the input's bytes for softmax, log-softmax and memcpy; input + one value per row for
// logsumexp. --cache cold (default) rotates buffer pairs totalling >= 2x the last-level cache so
// every call reads cold memory; hot reuses one pair (in-cache speed).
//
// --json prints one JSON object per line; these keys are a contract (scripts depend on them):
//   impl ("softmax" | "memcpy"), op, shape ("4096x1024"), dtype, threads, seconds (median per
//   call), gbps; also: reps, bytes (moved per call), ratio_to_memcpy, cache, target.
// Without --json: a readable table on stdout and a progress line on stderr while it runs.
// Bad --op/--shape/--dtype/--threads/--cache/--min-time: UsageError (exit 2).
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
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

constexpr int kMinReps = 5;
constexpr int kMaxReps = 1000000;
constexpr int kWarmupCalls = 2;
constexpr int kMaxThreads = 4096;
constexpr int64_t kDefaultLlcBytes = int64_t{32} << 20;

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

// Largest cache level of cpu0 from sysfs, in bytes.
int64_t llc_bytes() {
  int64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string v;
    if (!(f >> v) || v.empty()) continue;
    int64_t b = std::strtoll(v.c_str(), nullptr, 10);
    if (v.back() == 'K') b <<= 10;
    if (v.back() == 'M') b <<= 20;
    if (v.back() == 'G') b <<= 30;
    best = std::max(best, b);
  }
  return best > 0 ? best : kDefaultLlcBytes;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Page-aligned, pre-faulted storage for `pairs` input/output buffer pairs.
struct Buffers {
  std::unique_ptr<unsigned char, FreeDeleter> in, out;
  std::size_t in_stride = 0, out_stride = 0;
  int64_t pairs = 1;
  void* x(int64_t i) const { return in.get() + static_cast<std::size_t>(i) * in_stride; }
  void* y(int64_t i) const { return out.get() + static_cast<std::size_t>(i) * out_stride; }
};

std::unique_ptr<unsigned char, FreeDeleter> alloc_zeroed(std::size_t bytes) {
  constexpr std::size_t kAlign = 4096;
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);  // fault the pages in now, not while timing
  return std::unique_ptr<unsigned char, FreeDeleter>(static_cast<unsigned char*>(p));
}

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

// Deterministic logits in [-8, 8).
void fill_logits(void* dst, DType t, int64_t count) {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < count; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    const float v = static_cast<float>(static_cast<double>(s >> 40) * 0x1p-24 * 16.0 - 8.0);
    if (t == DType::f32) static_cast<float*>(dst)[i] = v;
    else static_cast<uint16_t*>(dst)[i] = to_bf16(v);
  }
}

void parallel_memcpy(void* out, const void* in, std::size_t bytes, int threads) {
  if (threads <= 1) {
    std::memcpy(out, in, bytes);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    const auto nt = static_cast<std::size_t>(omp_get_num_threads());
    const std::size_t chunk = (bytes / nt + 63) / 64 * 64;
    const std::size_t b = std::min(bytes, t * chunk);
    const std::size_t e = std::min(bytes, b + chunk);
    if (e > b) std::memcpy(static_cast<char*>(out) + b, static_cast<const char*>(in) + b, e - b);
  }
}

struct Measurement {
  double seconds = 0;  // median per call
  int reps = 0;
};

// Times `call(pair)` one call at a time, rotating through the pairs, until >= min_time seconds
// and >= kMinReps calls; returns the median. `progress` is called now and then.
Measurement measure(const std::function<void(int64_t)>& call, int64_t pairs, double min_time,
                    const std::function<void(int, double)>& progress) {
  using clock = std::chrono::steady_clock;
  int64_t next = 0;
  for (int w = 0; w < kWarmupCalls; ++w) {
    call(next);
    next = (next + 1) % pairs;
  }
  std::vector<double> t;
  double total = 0;
  auto last_report = clock::now();
  while (static_cast<int>(t.size()) < kMinReps ||
         (total < min_time && static_cast<int>(t.size()) < kMaxReps)) {
    const auto t0 = clock::now();
    call(next);
    const auto t1 = clock::now();
    next = (next + 1) % pairs;
    t.push_back(std::chrono::duration<double>(t1 - t0).count());
    total += t.back();
    if (t1 - last_report > std::chrono::milliseconds(200)) {
      progress(static_cast<int>(t.size()), total);
      last_report = t1;
    }
  }
  std::sort(t.begin(), t.end());
  const std::size_t m = t.size() / 2;
  Measurement r;
  r.seconds = t.size() % 2 ? t[m] : 0.5 * (t[m - 1] + t[m]);
  r.reps = static_cast<int>(t.size());
  return r;
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
  if (a.dtype == "f32") t = DType::f32;
  else if (a.dtype == "bf16") t = DType::bf16;
  else throw UsageError("bench: --dtype '" + a.dtype + "': must be f32 or bf16");
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

  // ---- buffers: pairs totalling >= 2x LLC (cold) or one pair (hot) ----
  Buffers buf;
  constexpr std::size_t kAlign = 4096;
  buf.in_stride = (in_bytes + kAlign - 1) / kAlign * kAlign;
  buf.out_stride = (in_bytes + kAlign - 1) / kAlign * kAlign;  // memcpy writes in_bytes
  if (a.cache == "cold") {
    const auto footprint = static_cast<std::size_t>(2 * llc_bytes());
    buf.pairs = std::max<int64_t>(
        2, static_cast<int64_t>((footprint + buf.in_stride + buf.out_stride - 1) /
                                (buf.in_stride + buf.out_stride)));
  }
  buf.in = alloc_zeroed(buf.in_stride * static_cast<std::size_t>(buf.pairs));
  buf.out = alloc_zeroed(buf.out_stride * static_cast<std::size_t>(buf.pairs));
  fill_logits(buf.in.get(), t,
              static_cast<int64_t>(buf.in_stride * static_cast<std::size_t>(buf.pairs) / es));

  SoftmaxOptions o;
  o.threads = threads;
  std::vector<ConstTensorView> xs;
  std::vector<TensorView> ys;
  for (int64_t i = 0; i < buf.pairs; ++i) {
    xs.emplace_back(buf.x(i), t, dims);
    ys.emplace_back(buf.y(i), t, out_dims);
  }
  const std::function<void(int64_t)> ours = [&](int64_t i) {
    if (a.op == "softmax") softmax::softmax(xs[i], ys[i], o);
    else if (a.op == "log-softmax") softmax::log_softmax(xs[i], ys[i], o);
    else softmax::logsumexp(xs[i], ys[i], o);
  };
  const std::function<void(int64_t)> copy = [&](int64_t i) {
    parallel_memcpy(buf.y(i), buf.x(i), in_bytes, threads);
  };

  const bool tty = isatty(STDERR_FILENO) != 0;
  const std::string what = a.op + " " + shape_str(dims) + " " + a.dtype + " threads " +
                           std::to_string(threads) + " (" + a.cache + ")";
  auto progress_for = [&](const char* impl) {
    return [&, impl](int reps, double total) {
      if (a.json || !tty) return;
      std::fprintf(stderr, "\rsoftmax bench: %s: %s: %d calls, %.1f s   ", what.c_str(), impl,
                   reps, total);
      std::fflush(stderr);
    };
  };
  if (!a.json) {
    std::fprintf(stderr, "%ssoftmax bench: %s: measuring softmax, then memcpy...%s",
                 tty ? "\r" : "", what.c_str(), tty ? "" : "\n");
    std::fflush(stderr);
  }
  const Measurement m_ours = measure(ours, buf.pairs, a.min_time, progress_for("softmax"));
  const Measurement m_copy = measure(copy, buf.pairs, a.min_time, progress_for("memcpy"));
  if (!a.json && tty) std::fprintf(stderr, "\r\033[K");

  const double gbps_ours = static_cast<double>(moved_op) * 1e-9 / m_ours.seconds;
  const double gbps_copy = static_cast<double>(moved_copy) * 1e-9 / m_copy.seconds;
  struct Row {
    const char* impl;
    Measurement m;
    double gbps;
    std::size_t bytes;
  };
  const Row rows[] = {{"softmax", m_ours, gbps_ours, moved_op},
                      {"memcpy", m_copy, gbps_copy, moved_copy}};
  const std::string target = current_target();
  if (a.json) {
    for (const Row& r : rows) {
      std::printf(
          "{\"impl\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"dtype\": \"%s\", "
          "\"threads\": %d, \"seconds\": %s, \"gbps\": %s, \"reps\": %d, \"bytes\": %zu, "
          "\"ratio_to_memcpy\": %s, \"cache\": \"%s\", \"target\": \"%s\"}\n",
          r.impl, a.op.c_str(), shape_str(dims).c_str(), a.dtype.c_str(), threads,
          json_number(r.m.seconds).c_str(), json_number(r.gbps).c_str(), r.m.reps, r.bytes,
          json_number(r.gbps / gbps_copy).c_str(), a.cache.c_str(), target.c_str());
    }
  } else {
    std::printf("softmax bench: %s %s %s, threads %d, cache %s (%lld buffer pair%s), target %s\n",
                a.op.c_str(), shape_str(dims).c_str(), a.dtype.c_str(), threads, a.cache.c_str(),
                static_cast<long long>(buf.pairs), buf.pairs == 1 ? "" : "s", target.c_str());
    std::printf("%-8s %14s %10s %10s %8s\n", "impl", "median s/call", "GB/s", "x memcpy",
                "calls");
    for (const Row& r : rows) {
      std::printf("%-8s %14.4g %10.2f %10.3f %8d\n", r.impl, r.m.seconds, r.gbps,
                  r.gbps / gbps_copy, r.m.reps);
    }
    std::printf("GB/s counts bytes read + written by an ideal one-pass kernel (%zu per call for "
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
  sub->add_option("--min-time", args->min_time, "Seconds of calls per implementation (at least "
                                                 "5 calls)")
      ->capture_default_str();
  sub->add_flag("--json", args->json, "One JSON object per line (impl, op, shape, dtype, "
                                      "threads, seconds, gbps, ...)");
  sub->callback([args] { run_bench(*args); });
});

}  // namespace
}  // namespace softmax::cli
