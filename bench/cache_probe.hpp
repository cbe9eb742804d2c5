// bench/cache_probe.hpp: the last-level cache size one core can actually use, measured from
// read bandwidth against footprint rather than read from sysfs (a VM can report the host's
// whole L3, e.g. 260 MiB, while a guest core sees far less).
//
// Method: for footprints F from 1 MiB to 256 MiB, copy F/2 bytes into the other F/2 over and
// over on one thread (glibc memcpy; copies show the knee more sharply than reads, since every
// written line that leaves the cache costs a write-back) and take the median GB/s of the copies
// after the first. The reference in-cache bandwidth is the median over the 4-16 MiB footprints
// (past the L2, in the L3 if there is one), the DRAM bandwidth the median over 128-256 MiB; the
// usable L3 is the largest footprint, scanning up from 4 MiB, whose bandwidth is still above the
// geometric mean of the two. When they differ by less than 1.3x no knee can be told and sysfs
// is used.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "src/base/timing.hpp"

namespace softmax_bench {

struct SweepPoint {
  int64_t bytes;
  double gbps;
};

struct CacheProbe {
  int64_t l3_bytes = 0;   // what the benchmarks use
  bool measured = false;  // false: the knee was not visible and sysfs was used
  double cache_gbps = 0;  // copy bandwidth (read + write) at 4-16 MiB
  double dram_gbps = 0;   // copy bandwidth at 128-256 MiB
  std::vector<SweepPoint> sweep;
};

inline double median_gbps(const std::vector<SweepPoint>& pts, int64_t lo, int64_t hi) {
  std::vector<double> v;
  for (const SweepPoint& p : pts) {
    if (p.bytes >= lo && p.bytes <= hi) v.push_back(p.gbps);
  }
  return softmax::timing::median_of(v);
}

// Runs the sweep (about a second).
inline CacheProbe probe_cache() {
  using clock = std::chrono::steady_clock;
  constexpr int64_t kMiB = int64_t{1} << 20;
  const std::vector<int64_t> sizes = {1,  2,  3,  4,  6,  8,  12, 16,  20,  24, 28,
                                      32, 40, 48, 56, 64, 80, 96, 128, 192, 256};
  CacheProbe r;
  const auto half = static_cast<std::size_t>(sizes.back() * kMiB / 2);
  const softmax::timing::Buffer a = softmax::timing::alloc_buffer(half);
  const softmax::timing::Buffer b = softmax::timing::alloc_buffer(half);
  for (int64_t mib : sizes) {
    const auto bytes = static_cast<std::size_t>(mib * kMiB / 2);
    std::memcpy(b.get(), a.get(), bytes);  // bring both halves into the cache as far as they fit
    std::vector<double> gbps;
    double total = 0;
    while (gbps.size() < 3 || (total < 0.03 && gbps.size() < 1000)) {
      const auto t0 = clock::now();
      std::memcpy(b.get(), a.get(), bytes);
      softmax::timing::compiler_barrier();
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      gbps.push_back(static_cast<double>(2 * bytes) * 1e-9 / s);
      total += s;
    }
    r.sweep.push_back({mib * kMiB, softmax::timing::median_of(gbps)});
  }
  r.cache_gbps = median_gbps(r.sweep, 4 * kMiB, 16 * kMiB);
  r.dram_gbps = median_gbps(r.sweep, 128 * kMiB, 256 * kMiB);
  if (r.cache_gbps < 1.3 * r.dram_gbps) {
    r.l3_bytes = softmax::timing::sysfs_llc_bytes();
    return r;
  }
  const double threshold = std::sqrt(r.cache_gbps * r.dram_gbps);
  for (const SweepPoint& p : r.sweep) {
    if (p.bytes < 4 * kMiB) continue;
    if (p.gbps < threshold) break;
    r.l3_bytes = p.bytes;
  }
  r.measured = true;
  return r;
}

}  // namespace softmax_bench
