// bench/dist/dist_bench.cc: the vocabulary-parallel softmax family under MPI (run it with
// mpiexec -np R; bench/results/dist.md). Per shape and op, interleaved in one process per rank
// on the same buffers, round-robin over rounds:
//   ours      softmax::dist::{softmax, log_softmax, logsumexp} (one all-gather of per-chunk
//             statistics after the agreement all-gather)
//   megatron  the published Megatron-LM vocab-parallel algorithm, written here: per-row local max,
//             MPI_Allreduce(MAX), local sum of exp(x - max) in f32, MPI_Allreduce(SUM), then the
//             normalisation (2 all-reduces; its cross-entropy adds a third for the target logit)
//   memcpy    copying the shard's bytes (the hardware yardstick of one pass over the shard)
// A call's time is the slowest rank's (MPI_Allreduce MAX of the per-rank time); the report is
// the median over rounds and the min..max spread, plus bytes each rank put on the wire per call.
// Output: one JSON object per line on rank 0.
//   mpiexec -np R dist_bench [rounds]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::TensorView;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Megatron-style: 2 all-reduces of one f32 per row.
void megatron(MPI_Comm comm, const float* x, float* y, int64_t rows, int64_t n, int op) {
  std::vector<float> m(static_cast<std::size_t>(rows)), s(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float v = -INFINITY;
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

struct Result {
  std::vector<double> t;
  int64_t bytes = 0;
  int64_t collectives = 0;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  softmax::dist::MpiCommunicator comm(MPI_COMM_WORLD);
  const struct {
    int64_t rows, v;
  } shapes[] = {{32, 131072}, {8, 128256}, {1, 262144}};
  const char* ops[] = {"softmax", "log_softmax", "logsumexp"};
  softmax::Context ctx;
  ctx.threads = 1;
  for (const auto& sh : shapes) {
    const softmax::dist::Shard s = softmax::dist::default_shard(sh.v, rank, size);
    std::vector<float> x(static_cast<std::size_t>(std::max<int64_t>(sh.rows * s.size, 1)));
    std::mt19937 rng(static_cast<unsigned>(rank + 1));
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (auto& e : x) e = nd(rng);
    std::vector<float> y(x.size()), y2(x.size()), copy(x.size());
    for (int op = 0; op < 3; ++op) {
      Result ours, peer, mem;
      const ConstTensorView xv(x.data(), {sh.rows, s.size});
      std::vector<float> lse(static_cast<std::size_t>(sh.rows));
      auto run_ours = [&] {
        if (op == 0) softmax::dist::softmax(comm, xv, TensorView(y.data(), {sh.rows, s.size}), s.offset, {}, ctx);
        else if (op == 1) softmax::dist::log_softmax(comm, xv, TensorView(y.data(), {sh.rows, s.size}), s.offset, {}, ctx);
        else softmax::dist::logsumexp(comm, xv, TensorView(lse.data(), {sh.rows}), s.offset, {}, ctx);
      };
      auto run_peer = [&] {
        megatron(MPI_COMM_WORLD, x.data(), op == 2 ? lse.data() : y2.data(), sh.rows, s.size, op);
      };
      auto run_mem = [&] { std::memcpy(copy.data(), x.data(), x.size() * sizeof(float)); };
      run_ours();
      run_peer();  // warm-up
      for (int rd = 0; rd < rounds; ++rd) {
        for (int impl = 0; impl < 3; ++impl) {
          MPI_Barrier(MPI_COMM_WORLD);
          comm.reset_stats();
          const double t0 = now();
          if (impl == 0) run_ours();
          else if (impl == 1) run_peer();
          else run_mem();
          double dt = now() - t0;
          MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
          Result& r = impl == 0 ? ours : impl == 1 ? peer : mem;
          r.t.push_back(dt);
          if (impl == 0) {
            r.bytes = comm.stats().bytes_sent;
            r.collectives = comm.stats().collectives;
          }
          if (impl == 1) {
            r.bytes = 2 * sh.rows * 4;
            r.collectives = 2;
          }
        }
      }
      if (rank == 0) {
        std::sort(ours.t.begin(), ours.t.end());
        for (int impl = 0; impl < 3; ++impl) {
          Result& r = impl == 0 ? ours : impl == 1 ? peer : mem;
          std::sort(r.t.begin(), r.t.end());
          const double med = r.t[r.t.size() / 2];
          std::printf("{\"impl\": \"%s\", \"op\": \"%s\", \"shape\": \"%lldx%lld\", \"ranks\": %d, "
                      "\"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
                      "\"bytes_sent_per_rank\": %lld, \"collectives\": %d, "
                      "\"ratio_to_ours\": %.3f}\n",
                      impl == 0 ? "ours" : impl == 1 ? "megatron" : "memcpy", ops[op],
                      static_cast<long long>(sh.rows), static_cast<long long>(sh.v), size,
                      med * 1e3, r.t.front() * 1e3, r.t.back() * 1e3,
                      static_cast<long long>(r.bytes), static_cast<int>(r.collectives),
                      med / ours.t[ours.t.size() / 2]);
        }
      }
    }
  }
  MPI_Finalize();
  return 0;
}
