// The vocabulary-parallel ops over real MPI (run by CTest under mpiexec -np 1..4, loopback):
// every rank builds the same full logits, keeps its shard, and checks the result against the
// single-process call on the whole tensor: bit for bit on the default (aligned) layout, within
// the documented bounds on an uneven unaligned layout; then that an invalid argument on one
// rank makes every rank throw the same error. Exit status 0 on every rank = pass.
//   mpi_dist_test            the checks above
//   mpi_dist_test --die      rank 1 kills itself inside the run (tests/dist/mpi/killed_rank.sh
//                            checks that the job exits non-zero instead of hanging)
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TensorView;
using softmax::dist::Shard;

int g_failures = 0;
int g_rank = 0;

void fail(const std::string& what) {
  if (g_failures++ < 10) std::fprintf(stderr, "rank %d: FAIL %s\n", g_rank, what.c_str());
}

std::vector<float> logits(int64_t rows, int64_t v) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * v));
  for (auto& e : x) e = nd(rng);
  x[5] = 50.0f;          // row 0 near-certain
  x[v + 3] = -INFINITY;  // row 1 has a -inf
  return x;
}

// Rank r's shard of a row-major (rows, v) tensor, copied out (no rank sees another's classes).
std::vector<float> shard_of(const std::vector<float>& x, int64_t rows, int64_t v, Shard s) {
  std::vector<float> out(static_cast<std::size_t>(rows * s.size));
  for (int64_t r = 0; r < rows && s.size > 0; ++r) {
    std::memcpy(out.data() + r * s.size, x.data() + r * v + s.offset, sizeof(float) * s.size);
  }
  return out;
}

void check_layout(softmax::dist::Communicator& comm, int64_t rows, int64_t v, Shard s, bool exact) {
  const std::vector<float> x = logits(rows, v);
  const std::vector<float> xs = shard_of(x, rows, v, s);
  const ConstTensorView xv(xs.data(), {rows, s.size});
  softmax::SoftmaxOptions o;
  o.temperature = 0.8;
  // softmax / log_softmax: this rank's columns of the single-process result.
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<float> full(x.size()), mine(xs.size());
    if (mode == 0) {
      softmax::softmax(ConstTensorView(x.data(), {rows, v}), TensorView(full.data(), {rows, v}), o);
      softmax::dist::softmax(comm, xv, TensorView(mine.data(), {rows, s.size}), s.offset, o);
    } else {
      softmax::log_softmax(ConstTensorView(x.data(), {rows, v}), TensorView(full.data(), {rows, v}),
                           o);
      softmax::dist::log_softmax(comm, xv, TensorView(mine.data(), {rows, s.size}), s.offset, o);
    }
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < s.size; ++i) {
        const float want = full[r * v + s.offset + i], got = mine[r * s.size + i];
        const bool ok =
            exact ? std::memcmp(&want, &got, 4) == 0
                  : (want == got || std::fabs(got - want) <= 16 * 0x1p-24f * std::fabs(want) +
                                                                 (mode ? 0x1p-21f : 0x1p-140f));
        if (!ok)
          fail((mode ? "log_softmax" : "softmax") + std::string(" row ") + std::to_string(r) +
               " class " + std::to_string(s.offset + i) + " got " + std::to_string(got) + " want " +
               std::to_string(want));
      }
    }
  }
  // logsumexp and argmax: the whole result on every rank.
  std::vector<float> lse(rows), lse_want(rows);
  softmax::logsumexp(ConstTensorView(x.data(), {rows, v}), TensorView(lse_want.data(), {rows}), o);
  softmax::dist::logsumexp(comm, xv, TensorView(lse.data(), {rows}), s.offset, o);
  std::vector<int64_t> am(rows), am_want(rows);
  softmax::argmax(ConstTensorView(x.data(), {rows, v}),
                  TensorView(am_want.data(), DType::i64, {rows}));
  softmax::dist::argmax(comm, xv, TensorView(am.data(), DType::i64, {rows}), s.offset);
  for (int64_t r = 0; r < rows; ++r) {
    const bool ok =
        exact ? std::memcmp(&lse[r], &lse_want[r], 4) == 0
              : std::fabs(lse[r] - lse_want[r]) <= 4 * 0x1p-24f * (std::fabs(lse_want[r]) + 1);
    if (!ok) fail("logsumexp row " + std::to_string(r));
    if (am[r] != am_want[r]) fail("argmax row " + std::to_string(r));
  }
}

void check_failure(softmax::dist::Communicator& comm) {
  const int64_t rows = 2, v = 8 * comm.size();
  const Shard s{8 * comm.rank(), 8};
  std::vector<float> x(rows * 8, 1.0f), y(rows * 8, 3.0f);
  softmax::SoftmaxOptions o;
  // The last rank passes an output of the wrong shape.
  const int64_t yn = comm.rank() == comm.size() - 1 ? 7 : 8;
  std::string what;
  try {
    softmax::dist::softmax(comm, ConstTensorView(x.data(), {rows, 8}),
                           TensorView(y.data(), {rows, yn}), s.offset, o);
  } catch (const softmax::Error& e) {
    what = e.what();
  }
  const std::string want = "rank " + std::to_string(comm.size() - 1) + " of " +
                           std::to_string(comm.size()) + ": argument 'y'";
  if (what.find(want) == std::string::npos)
    fail("expected an error naming '" + want + "', got '" + what + "'");
  for (float e : y) {
    if (e != 3.0f) fail("output written after an error");
  }
  (void)v;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  g_rank = rank;
  softmax::dist::MpiCommunicator comm(MPI_COMM_WORLD);
  const bool die = argc > 1 && std::strcmp(argv[1], "--die") == 0;
  if (die) {
    // Rank 1 dies before the first collective; the others wait in it.
    if (rank == 1) raise(SIGKILL);
    std::vector<float> x(8, 1.0f), y(8);
    softmax::dist::softmax(comm, ConstTensorView(x.data(), {1, 8}), TensorView(y.data(), {1, 8}),
                           8 * rank);
    std::fprintf(stderr, "rank %d: returned although rank 1 died\n", rank);
    MPI_Finalize();
    return 3;
  }
  const int64_t rows = 5;
  for (int64_t v : {int64_t{1000}, int64_t{3 * 32768 + 777}}) {
    check_layout(comm, rows, v, softmax::dist::default_shard(v, rank, size), true);
    // Uneven, unaligned: rank r gets (r + 1) parts of v / (1 + 2 + ... + R).
    const int64_t parts = static_cast<int64_t>(size) * (size + 1) / 2;
    const int64_t begin = v * (static_cast<int64_t>(rank) * (rank + 1) / 2) / parts;
    const int64_t end = v * (static_cast<int64_t>(rank + 1) * (rank + 2) / 2) / parts;
    check_layout(comm, rows, v, Shard{begin, end - begin}, size == 1);
  }
  check_failure(comm);
  int local = g_failures, total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("mpi_dist_test: %d ranks, %d failures\n", size, total);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
