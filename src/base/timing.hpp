// src/base/timing.hpp: the measuring loop shared by `softmax bench` (tools/softmax_cli) and the
// benchmarks in bench/: buffers, logits, the two copy baselines and round-robin timing.
// Header-only, no dependency on the library: any layer may include it.
//
// - alloc_buffer: 2 MiB-aligned, transparent-huge-page advised, pre-faulted (no page fault is
//   ever timed).
// - fill_logits: deterministic pseudo-random logits in [-8, 8), f32 or bf16 bits.
// - sysfs_llc_bytes: the largest cache level sysfs reports (an upper bound on a VM, where it can
//   be far larger than the cache a core can use; bench/ measures the usable size instead).
// - parallel_copy: `bytes` from in to out, split into one contiguous range per OpenMP thread,
//   with glibc memcpy (CopyKind::libc) or with streaming (non-temporal) stores that do not read
//   the destination first (CopyKind::streaming; plain memcpy where the CPU has no SSE2).
// - interleave: times several implementations round-robin: every round runs one batch of calls
//   of each implementation, in an order shuffled from round to round (no implementation always
//   follows the same one, whose leftovers — a spinning thread pool, a dirty cache — it would
//   inherit every time), all calls walking one
//   shared cursor through the same buffer pairs, so machine drift hits every implementation
//   alike and ratios taken within a round are fair. Reports the median per-call time and the
//   min-max spread over rounds.
#pragma once

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SOFTMAX_TIMING_X86 1
#endif

namespace softmax::timing {

// ---------------------------------------------------------------------------------------------
// Buffers and logits

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<unsigned char, FreeDeleter>;

// Throws std::bad_alloc when the memory is not there.
inline Buffer alloc_buffer(std::size_t bytes) {
  constexpr std::size_t kAlign = std::size_t{2} << 20;
  bytes = (std::max<std::size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return Buffer(static_cast<unsigned char*>(p));
}

inline uint16_t f32_to_bf16(float f) {  // round to nearest even; the logits here are finite
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

// `count` logits in [-8, 8) into dst: f32 when elem_size == 4, bf16 bits when 2.
inline void fill_logits(void* dst, std::size_t elem_size, int64_t count, uint64_t seed = 0x5eed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < count; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    const float v = static_cast<float>(static_cast<double>(s >> 40) * 0x1p-24 * 16.0 - 8.0);
    if (elem_size == 4)
      static_cast<float*>(dst)[i] = v;
    else
      static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
  }
}

// Largest cache level of cpu0 in sysfs ("491520K" -> bytes); `fallback` if none.
inline int64_t sysfs_llc_bytes(int64_t fallback = int64_t{32} << 20) {
  int64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    int64_t v = std::strtoll(s.c_str(), nullptr, 10);
    if (s.back() == 'K') v <<= 10;
    if (s.back() == 'M') v <<= 20;
    if (s.back() == 'G') v <<= 30;
    best = std::max(best, v);
  }
  return best > 0 ? best : fallback;
}

// Keeps the compiler from moving memory accesses across the timer reads.
inline void compiler_barrier() { asm volatile("" ::: "memory"); }

// ---------------------------------------------------------------------------------------------
// Copies

enum class CopyKind { libc, streaming };

#if defined(SOFTMAX_TIMING_X86)
// Streaming copy: ordinary loads, non-temporal 16-byte stores once the destination is aligned.
inline void streaming_copy(void* out, const void* in, std::size_t bytes) {
  auto* d = static_cast<unsigned char*>(out);
  const auto* s = static_cast<const unsigned char*>(in);
  const std::size_t head = std::min(bytes, (64 - reinterpret_cast<uintptr_t>(d) % 64) % 64);
  std::memcpy(d, s, head);
  std::size_t i = head;
  for (; i + 64 <= bytes; i += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 32));
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 48), e);
  }
  std::memcpy(d + i, s + i, bytes - i);
  _mm_sfence();  // the streamed lines are globally visible before the copy returns
}
#else
inline void streaming_copy(void* out, const void* in, std::size_t bytes) {
  std::memcpy(out, in, bytes);
}
#endif

inline void copy_range(void* out, const void* in, std::size_t bytes, CopyKind kind) {
  if (kind == CopyKind::streaming)
    streaming_copy(out, in, bytes);
  else
    std::memcpy(out, in, bytes);
}

// `bytes` from in to out, one contiguous 64-byte-aligned range per thread.
inline void parallel_copy(void* out, const void* in, std::size_t bytes, int threads,
                          CopyKind kind = CopyKind::libc) {
  if (threads <= 1) {
    copy_range(out, in, bytes, kind);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    const auto nt = static_cast<std::size_t>(omp_get_num_threads());
    const std::size_t chunk = ((bytes + nt - 1) / nt + 63) / 64 * 64;
    const std::size_t b = std::min(bytes, t * chunk);
    const std::size_t e = std::min(bytes, b + chunk);
    if (e > b) {
      copy_range(static_cast<char*>(out) + b, static_cast<const char*>(in) + b, e - b, kind);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Round-robin timing

// One implementation: `call(pair)` runs it once on buffer pair `pair`; `before` and `after` (may
// be empty) run untimed before and after each of its batches (e.g. setting a library's thread
// count, starting and stopping its thread pool).
struct Impl {
  std::function<void(int64_t)> call;
  std::function<void()> before;
  std::function<void()> after;
};

struct InterleaveOptions {
  int64_t pairs = 1;            // buffer pairs the shared cursor walks through
  int min_rounds = 5;           // rounds at least ...
  int max_rounds = 1000000;     // ... and at most
  double min_seconds = 0.0;     // and at least this much timed per implementation
  double batch_seconds = 1e-3;  // calls per batch: about this long (at least 1 call)
  int warmup_calls = 2;         // untimed calls of each implementation first
  // Called after every round with (rounds done, seconds timed so far by the slowest impl).
  std::function<void(int, double)> progress;
};

struct Stats {
  double median = 0;  // seconds per call: median over rounds of (batch time / calls)
  double min = 0;     // fastest round
  double max = 0;     // slowest round
  int rounds = 0;
  int64_t calls_per_round = 0;
};

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Times every impl round-robin (see the file comment). impls must not be empty.
inline std::vector<Stats> interleave(const std::vector<Impl>& impls, const InterleaveOptions& o) {
  using clock = std::chrono::steady_clock;
  const std::size_t n = impls.size();
  int64_t cursor = 0;
  const auto next_pair = [&] {
    const int64_t p = cursor;
    cursor = cursor + 1 == o.pairs ? 0 : cursor + 1;
    return p;
  };
  // One timed batch of `calls` calls of impl i, seconds in total.
  const auto batch = [&](std::size_t i, int64_t calls) {
    if (impls[i].before) impls[i].before();
    const auto t0 = clock::now();
    for (int64_t c = 0; c < calls; ++c) impls[i].call(next_pair());
    compiler_barrier();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (impls[i].after) impls[i].after();
    return s;
  };
  std::vector<int64_t> calls(n, 1);
  for (std::size_t i = 0; i < n; ++i) {  // warm-up, then size the batches from one timed call
    for (int w = 0; w < o.warmup_calls; ++w) batch(i, 1);
    const double one = std::max(batch(i, 1), 1e-9);
    calls[i] = std::max<int64_t>(1, static_cast<int64_t>(o.batch_seconds / one));
  }
  std::vector<std::vector<double>> per_call(n);
  std::vector<double> timed(n, 0.0);
  int rounds = 0;
  const auto done = [&] {
    if (rounds < o.min_rounds) return false;
    if (rounds >= o.max_rounds) return true;
    return *std::min_element(timed.begin(), timed.end()) >= o.min_seconds;
  };
  std::vector<std::size_t> order(n);
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  while (!done()) {
    for (std::size_t k = 0; k < n; ++k) order[k] = k;
    for (std::size_t k = n; k > 1; --k) {  // Fisher-Yates with a fixed-seed xorshift
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      std::swap(order[k - 1], order[rng % k]);
    }
    for (const std::size_t i : order) {
      const double s = batch(i, calls[i]);
      per_call[i].push_back(s / static_cast<double>(calls[i]));
      timed[i] += s;
    }
    ++rounds;
    if (o.progress) o.progress(rounds, *std::min_element(timed.begin(), timed.end()));
  }
  std::vector<Stats> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto [lo, hi] = std::minmax_element(per_call[i].begin(), per_call[i].end());
    out[i] = {median_of(per_call[i]), *lo, *hi, rounds, calls[i]};
  }
  return out;
}

}  // namespace softmax::timing
