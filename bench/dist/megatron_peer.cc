// bench/dist/megatron_peer.cc: the Megatron-LM-style peer of dist_bench, written from the
// published algorithm (Shoeybi et al., "Megatron-LM", 2019; its vocab_parallel_cross_entropy).
// Compiled with -O3 -march=native -ffast-math so the loops vectorise (expf through glibc's
// libmvec): the peer's local passes are as fast as a compiler makes plain C++, and the
// comparison is about the algorithm and its communication, not scalar code.
#include "bench/dist/megatron_peer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

// Megatron-style: 2 all-reduces of one f32 per row.
void megatron(MPI_Comm comm, const float* x, float* y, int64_t rows, int64_t n, int op) {
  std::vector<float> m(static_cast<std::size_t>(rows)), s(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float v = std::numeric_limits<float>::lowest();  // finite: -ffast-math
    for (int64_t i = 0; i < n; ++i) v = std::max(v, x[r * n + i]);
    m[r] = v;
  }
  MPI_Allreduce(MPI_IN_PLACE, m.data(), static_cast<int>(rows), MPI_FLOAT, MPI_MAX, comm);
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; ++i) acc += std::exp(x[r * n + i] - m[r]);
    s[r] = acc;
  }
  MPI_Allreduce(MPI_IN_PLACE, s.data(), static_cast<int>(rows), MPI_FLOAT, MPI_SUM, comm);
  for (int64_t r = 0; r < rows; ++r) {
    if (op == 2) {
      y[r] = m[r] + std::log(s[r]);
      continue;
    }
    const float inv = 1.0f / s[r], ls = std::log(s[r]);
    for (int64_t i = 0; i < n; ++i) {
      const float z = x[r * n + i] - m[r];
      y[r * n + i] = op == 0 ? std::exp(z) * inv : z - ls;
    }
  }
}

// Megatron-style fused vocab-parallel cross-entropy (mean over rows): 2 all-reduces.
double megatron_ce(MPI_Comm comm, const float* x, const int64_t* t, int64_t rows, int64_t n,
                   int64_t offset) {
  std::vector<float> m(static_cast<std::size_t>(rows)), ts(static_cast<std::size_t>(2 * rows));
  for (int64_t r = 0; r < rows; ++r) {
    float v = std::numeric_limits<float>::lowest();  // finite: -ffast-math
    for (int64_t i = 0; i < n; ++i) v = std::max(v, x[r * n + i]);
    m[r] = v;
  }
  MPI_Allreduce(MPI_IN_PLACE, m.data(), static_cast<int>(rows), MPI_FLOAT, MPI_MAX, comm);
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; ++i) acc += std::exp(x[r * n + i] - m[r]);
    const int64_t j = t[r] - offset;
    ts[2 * r] = j >= 0 && j < n ? x[r * n + j] - m[r] : 0.0f;
    ts[2 * r + 1] = acc;
  }
  MPI_Allreduce(MPI_IN_PLACE, ts.data(), static_cast<int>(2 * rows), MPI_FLOAT, MPI_SUM, comm);
  double loss = 0.0;
  for (int64_t r = 0; r < rows; ++r) loss += std::log(ts[2 * r + 1]) - ts[2 * r];
  return loss / static_cast<double>(rows);
}
