// bench/bench_util.hpp: helpers shared by the Google Benchmark programs bench/*_bench.cc
// (the softmax / log-softmax / logsumexp comparison is bench/cpu_compare.cc, which times its
// implementations round-robin instead).
//
// - Sizes: the last-level cache size (sysfs), and the rotation footprint that defeats it.
// - Arena / Rotation: out-of-cache cases walk through many input/output buffer pairs whose total
//   size is >= 2x the last-level cache, so every call reads cold memory. One process-wide arena
//   with a cursor that persists across benchmarks means a new benchmark starts on the least
//   recently touched buffers, not on the ones the previous benchmark left in cache.
//   In-cache cases (rotate = false) reuse one pair of buffers.
// - Fill: deterministic pseudo-random logits (f32 or bf16) in [-8, 8).
// - Copy baseline: memcpy of the same bytes with the same rotation and thread count, measured
//   once per (bytes, threads, rotate) in this process and cached, so every case can report its
//   ratio to memcpy from the same run.
// - Counters: set_counters() adds "gbps" (bytes read + written by an ideal one-read one-write
//   kernel / real time), "x_memcpy" (gbps / memcpy gbps) and "elems_per_s", and bytes_per_second.
// Buffers, logits, copies and the timing loop are src/base/timing.hpp's (shared with the CLI).
//
// Environment:
//   SOFTMAX_BENCH_LLC_BYTES      override the last-level cache size (bytes)
//   SOFTMAX_BENCH_ROTATE_BYTES   total rotation footprint, inputs + outputs (default 2 x LLC)
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <benchmark/benchmark.h>

#include "src/base/timing.hpp"

namespace softmax_bench {

// ---------------------------------------------------------------------------------------------
// Shapes and dtypes

enum class Dt { f32, bf16 };
inline const char* dt_name(Dt d) { return d == Dt::f32 ? "f32" : "bf16"; }
inline std::size_t dt_size(Dt d) { return d == Dt::f32 ? 4 : 2; }

// ---------------------------------------------------------------------------------------------
// Cache size

inline int64_t env_bytes(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

// Size of the largest cache level in sysfs (cpu0); 32 MiB if unknown.
inline int64_t llc_bytes() {
  static const int64_t bytes =
      env_bytes("SOFTMAX_BENCH_LLC_BYTES", softmax::timing::sysfs_llc_bytes());
  return bytes;
}

// Total bytes (inputs + outputs) one rotation cycle touches.
inline int64_t rotate_footprint() {
  return env_bytes("SOFTMAX_BENCH_ROTATE_BYTES", 2 * llc_bytes());
}

// ---------------------------------------------------------------------------------------------
// Memory

using softmax::timing::Buffer;

// Page-aligned, transparent-huge-page advised, pre-faulted (so page faults are never timed).
inline Buffer alloc_buffer(std::size_t bytes) {
  try {
    return softmax::timing::alloc_buffer(bytes);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "bench: out of memory allocating %zu bytes\n", bytes);
    std::abort();
  }
}

// Deterministic logits in [-8, 8): element i of a buffer of `count` elements.
inline void fill_logits(void* dst, Dt dt, int64_t count, uint64_t seed = 0x5eed) {
  softmax::timing::fill_logits(dst, dt_size(dt), count, seed);
}

// One pair of input/output buffers for a call.
struct Pair {
  void* in;
  void* out;
};

// The process-wide buffers: a rotating input arena and output arena (each half of the rotation
// footprint), plus one small hot pair for in-cache cases. Inputs hold logits of one dtype at a
// time; asking for the other dtype refills them (register cases grouped by dtype).
class Arena {
 public:
  static Arena& get() {
    static Arena a;
    return a;
  }

  // Prepares buffers for calls reading `in_bytes` and writing `out_bytes` each.
  // Returns the number of pairs in rotation (1 when !rotate).
  int64_t prepare(std::size_t in_bytes, std::size_t out_bytes, Dt dt, bool rotate) {
    in_bytes_ = round_up(std::max<std::size_t>(in_bytes, 1));
    out_bytes_ = round_up(std::max<std::size_t>(out_bytes, 1));
    rotate_ = rotate;
    if (!rotate) {
      ensure(hot_in_, hot_in_cap_, in_bytes_, dt, hot_dt_, true);
      ensure(hot_out_, hot_out_cap_, out_bytes_, dt, hot_dt_, false);
      return 1;
    }
    const auto footprint = static_cast<std::size_t>(rotate_footprint());
    pairs_ = std::max<int64_t>(2, static_cast<int64_t>((footprint + in_bytes_ + out_bytes_ - 1) /
                                                       (in_bytes_ + out_bytes_)));
    // Reserve enough for every case at once (inputs up to the whole footprint for reductions,
    // outputs half of it), so the arena is allocated and filled once per dtype, not per case.
    constexpr std::size_t kSlack = std::size_t{64} << 20;
    ensure(in_, in_cap_, std::max(in_bytes_ * pairs_, footprint + kSlack), dt, in_dt_, true);
    ensure(out_, out_cap_, std::max(out_bytes_ * pairs_, footprint / 2 + kSlack), dt, in_dt_,
           false);
    cursor_ = cursor_ % pairs_;
    return pairs_;
  }

  // The next pair: the least recently used one when rotating.
  Pair next() {
    if (!rotate_) return {hot_in_.get(), hot_out_.get()};
    const int64_t i = cursor_;
    cursor_ = cursor_ + 1 == pairs_ ? 0 : cursor_ + 1;
    return {in_.get() + i * in_bytes_, out_.get() + i * out_bytes_};
  }
  // The i-th pair (for peers that bind buffers ahead of time, e.g. oneDNN memory objects).
  Pair pair(int64_t i) const {
    if (!rotate_) return {hot_in_.get(), hot_out_.get()};
    return {in_.get() + i * in_bytes_, out_.get() + i * out_bytes_};
  }
  int64_t cursor() const { return rotate_ ? cursor_ : 0; }
  void advance() { cursor_ = rotate_ ? (cursor_ + 1 == pairs_ ? 0 : cursor_ + 1) : 0; }

 private:
  static constexpr std::size_t kPairAlign = 4096;
  static std::size_t round_up(std::size_t b) {
    return (b + kPairAlign - 1) / kPairAlign * kPairAlign;
  }

  // Grows `buf` to at least `bytes`; input buffers are (re)filled with logits of dtype dt.
  static void ensure(Buffer& buf, std::size_t& cap, std::size_t bytes, Dt dt, int& filled_dt,
                     bool is_input) {
    bool fresh = false;
    if (cap < bytes) {
      buf.reset();
      buf = alloc_buffer(bytes);
      cap = bytes;
      fresh = true;
    }
    if (is_input && (fresh || filled_dt != static_cast<int>(dt))) {
      fill_logits(buf.get(), dt, static_cast<int64_t>(cap / dt_size(dt)));
      filled_dt = static_cast<int>(dt);
    }
  }

  Buffer in_, out_, hot_in_, hot_out_;
  std::size_t in_cap_ = 0, out_cap_ = 0, hot_in_cap_ = 0, hot_out_cap_ = 0;
  int in_dt_ = -1, hot_dt_ = -1;
  std::size_t in_bytes_ = 0, out_bytes_ = 0;
  bool rotate_ = false;
  int64_t pairs_ = 1;
  int64_t cursor_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Copy baseline

// Median seconds per memcpy of `bytes` (rotated like the case it is compared with), measured
// once per (bytes, threads, rotate, dtype) in this process: >= 15 calls and >= 0.1 s.
inline double memcpy_seconds(std::size_t bytes, int threads, bool rotate, Dt dt) {
  static std::map<std::tuple<std::size_t, int, bool, int>, double> cache;
  const auto key = std::make_tuple(bytes, threads, rotate, static_cast<int>(dt));
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  Arena& a = Arena::get();
  const int64_t pairs = a.prepare(bytes, bytes, dt, rotate);
  softmax::timing::InterleaveOptions o;
  o.pairs = pairs;
  o.min_rounds = 15;
  o.max_rounds = 100000;
  o.min_seconds = 0.1;
  const softmax::timing::Impl copy{[&](int64_t i) {
                                     const Pair p = a.pair(i);
                                     softmax::timing::parallel_copy(p.out, p.in, bytes, threads);
                                   },
                                   {},
                                   {}};
  return cache[key] = softmax::timing::interleave({copy}, o)[0].median;
}

// ---------------------------------------------------------------------------------------------
// Counters

// Sets bytes_per_second and the user counters from the bytes an ideal kernel moves per call
// (bytes_read + bytes_written) and the memcpy baseline for `copy_bytes` per call with the same
// rotation and thread count. Call after the timing loop. Cases must use ->UseRealTime().
inline void set_counters(benchmark::State& state, std::size_t bytes_read, std::size_t bytes_written,
                         int64_t elems, std::size_t copy_bytes, int threads, bool rotate, Dt dt) {
  const double iters = static_cast<double>(state.iterations());
  const double moved = static_cast<double>(bytes_read + bytes_written);
  state.SetBytesProcessed(static_cast<int64_t>(moved * iters));
  state.counters["gbps"] = benchmark::Counter(moved * iters * 1e-9, benchmark::Counter::kIsRate);
  state.counters["elems_per_s"] =
      benchmark::Counter(static_cast<double>(elems) * iters, benchmark::Counter::kIsRate);
  // memcpy of copy_bytes moves 2 * copy_bytes (one read, one write).
  const double copy_gbps = 2.0 * static_cast<double>(copy_bytes) * 1e-9 /
                           memcpy_seconds(copy_bytes, threads, rotate, dt);
  state.counters["memcpy_gbps"] = copy_gbps;
  // x_memcpy = gbps / memcpy_gbps, as a rate counter so Google Benchmark divides by the time.
  state.counters["x_memcpy"] =
      benchmark::Counter(moved * iters * 1e-9 / copy_gbps, benchmark::Counter::kIsRate);
}

// "VmRSS:" / "VmHWM:" of this process in KiB (-1 when absent).
inline int64_t status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k(key);
  while (std::getline(f, line)) {
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
  }
  return -1;
}
// Resets the peak RSS (VmHWM) so a following step's peak can be read.
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace softmax_bench
