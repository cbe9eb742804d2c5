// bench/dist/dist_bench.cc: the vocabulary-parallel softmax family under MPI (run it with
// mpiexec -np R; bench/results/dist.md). Per shape and op, interleaved in one process per rank
// on the same buffers, round-robin over rounds:
//   ours      softmax::dist::{softmax, log_softmax, logsumexp} (one all-gather of per-chunk
//             statistics after the agreement all-gather)
//   megatron  the published Megatron-LM vocab-parallel algorithm, written in megatron_peer.cc
//             (vectorised: -O3 -march=native -ffast-math, glibc's libmvec expf): per-row local max,
//             MPI_Allreduce(MAX), local sum of exp(x - max) in f32, MPI_Allreduce(SUM), then the
//             normalisation (2 all-reduces; its cross-entropy adds a third for the target logit)
//   memcpy    copying the shard's bytes (the hardware yardstick of one pass over the shard)
//   stream    the same copy with non-temporal (streaming) stores
// and cross_entropy (hard targets, mean): ours softmax::dist::cross_entropy vs Megatron-LM's
// vocab-parallel cross-entropy in its fused form (local max, MPI_Allreduce(MAX), then one
// MPI_Allreduce(SUM) of the (target logit, sum exp) pair per row: 2 all-reduces).
// A call's time is the slowest rank's (MPI_Allreduce MAX of the per-rank time); the report is
// the median over rounds and the min..max spread, plus bytes each rank put on the wire per call.
// Output: one JSON object per line on rank 0.
//   mpiexec -np R dist_bench [rounds]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <emmintrin.h>

#include "softmax/cross_entropy.hpp"
#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"
#include "bench/dist/megatron_peer.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::TensorView;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The Megatron-style peer: bench/dist/megatron_peer.cc.

// Copy with streaming (non-temporal) stores; dst 16-byte aligned.
void stream_copy(float* dst, const float* src, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
  _mm_sfence();
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
  const struct { int64_t rows, v; } shapes[] = {{32, 131072}, {8, 128256}, {1, 262144}};
  const char* ops[] = {"softmax", "log_softmax", "logsumexp", "cross_entropy"};
  softmax::Context ctx;
  ctx.threads = 1;
  for (const auto& sh : shapes) {
    const softmax::dist::Shard s = softmax::dist::default_shard(sh.v, rank, size);
    std::vector<float> x(static_cast<std::size_t>(std::max<int64_t>(sh.rows * s.size, 1)));
    std::mt19937 rng(static_cast<unsigned>(rank + 1));
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (auto& e : x) e = nd(rng);
    std::vector<float> y(x.size()), y2(x.size()), copy(x.size());
    std::vector<float, std::allocator<float>> stream_buf(x.size() + 4);
    float* sdst = reinterpret_cast<float*>(
        (reinterpret_cast<std::uintptr_t>(stream_buf.data()) + 15) & ~std::uintptr_t{15});
    std::vector<int64_t> targets(static_cast<std::size_t>(sh.rows));
    for (int64_t r = 0; r < sh.rows; ++r) targets[r] = (r * 7919) % sh.v;
    for (int op = 0; op < 4; ++op) {
      Result ours, peer, mem, strm;
      const ConstTensorView xv(x.data(), {sh.rows, s.size});
      std::vector<float> lse(static_cast<std::size_t>(sh.rows));
      auto run_ours = [&] {
        if (op == 0)
          softmax::dist::softmax(comm, xv, TensorView(y.data(), {sh.rows, s.size}), s.offset, {},
                                 ctx);
        else if (op == 1)
          softmax::dist::log_softmax(comm, xv, TensorView(y.data(), {sh.rows, s.size}), s.offset,
                                     {}, ctx);
        else if (op == 2)
          softmax::dist::logsumexp(comm, xv, TensorView(lse.data(), {sh.rows}), s.offset, {}, ctx);
        else {
          float loss = 0;
          softmax::CrossEntropyOutputs out;
          out.loss = TensorView(&loss, softmax::DType::f32, {});
          softmax::dist::cross_entropy(
              comm, xv, ConstTensorView(targets.data(), softmax::DType::i64, {sh.rows}), out,
              s.offset, {}, ctx);
        }
      };
      auto run_peer = [&] {
        if (op == 3)
          megatron_ce(MPI_COMM_WORLD, x.data(), targets.data(), sh.rows, s.size, s.offset);
        else
          megatron(MPI_COMM_WORLD, x.data(), op == 2 ? lse.data() : y2.data(), sh.rows, s.size, op);
      };
      auto run_mem = [&] { std::memcpy(copy.data(), x.data(), x.size() * sizeof(float)); };
      auto run_stream = [&] { stream_copy(sdst, x.data(), x.size()); };
      run_ours();
      run_peer();  // warm-up
      for (int rd = 0; rd < rounds; ++rd) {
        for (int impl = 0; impl < 4; ++impl) {
          MPI_Barrier(MPI_COMM_WORLD);
          comm.reset_stats();
          const double t0 = now();
          if (impl == 0)
            run_ours();
          else if (impl == 1)
            run_peer();
          else if (impl == 2)
            run_mem();
          else
            run_stream();
          double dt = now() - t0;
          MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
          Result& r = impl == 0 ? ours : impl == 1 ? peer : impl == 2 ? mem : strm;
          r.t.push_back(dt);
          if (impl == 0) {
            r.bytes = comm.stats().bytes_sent;
            r.collectives = comm.stats().collectives;
          }
          if (impl == 1) {
            r.bytes = (op == 3 ? 3 : 2) * sh.rows * 4;  // one f32 per row, then two for the loss
            r.collectives = 2;
          }
        }
      }
      if (rank == 0) {
        std::sort(ours.t.begin(), ours.t.end());
        for (int impl = 0; impl < 4; ++impl) {
          Result& r = impl == 0 ? ours : impl == 1 ? peer : impl == 2 ? mem : strm;
          std::sort(r.t.begin(), r.t.end());
          const double med = r.t[r.t.size() / 2];
          std::printf(
              "{\"impl\": \"%s\", \"op\": \"%s\", \"shape\": \"%lldx%lld\", \"ranks\": %d, "
              "\"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
              "\"bytes_sent_per_rank\": %lld, \"collectives\": %d, "
              "\"ratio_to_ours\": %.3f}\n",
              impl == 0   ? "ours"
              : impl == 1 ? "megatron"
              : impl == 2 ? "memcpy"
                          : "stream_copy",
              ops[op], static_cast<long long>(sh.rows), static_cast<long long>(sh.v), size,
              med * 1e3, r.t.front() * 1e3, r.t.back() * 1e3, static_cast<long long>(r.bytes),
              static_cast<int>(r.collectives), med / ours.t[ours.t.size() / 2]);
        }
      }
    }
  }
  MPI_Finalize();
  return 0;
}
