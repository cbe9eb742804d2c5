// tools/softmax_cli/vocab_parallel.hpp: what the `softmax` tool's --vocab-parallel commands
// share (built with MPI only, SOFTMAX_CLI_MPI): MPI set-up, a verdict agreed by every rank
// before the op's own collectives, a .npy file mapped read-only with this rank's columns of
// its last axis (softmax::dist::default_shard), and rank 0 gathering every rank's columns back
// into the whole array.
//
// Every rank runs the same command on the same files; nothing assumes one host (each rank maps
// the file by its path on its own machine). Only rank 0 reports an error or writes output; the
// other ranks exit with the same status silently.
#pragma once

#ifdef SOFTMAX_CLI_MPI

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"
#include "softmax/error.hpp"
#include "src/io/npy.hpp"

namespace softmax::cli::vp {

// MPI is initialised on first use and finalised at exit.
void ensure_mpi();

// Runs body on this rank. An error thrown before this rank's first agreement (a usage check)
// first joins that agreement as a failing rank, so no other rank waits for it. On an error
// rank 0 rethrows the agreed error (main prints it and exits 2); every other rank exits 2
// silently, so a failure is printed once.
void run_ranks(const std::function<void()>& body);

// A usage error met before run_ranks (CLI parsing): joins this rank's first agreement as a
// failing rank, so the other ranks do not wait for it, and returns the agreed message (the
// lowest failing rank's, naming it). Under a launcher only rank 0 prints it.
std::string agree_early_failure(const std::string& message);

// Every rank learns whether any rank failed: the failing ranks' messages (local_error, empty =
// fine) are gathered and every rank throws the lowest failing rank's, naming it.
void agree_or_throw(const std::string& local_error, ErrorKind kind);

// Runs check(); a softmax::Error or other exception it throws on any rank is thrown on every
// rank (agree_or_throw) instead.
void agreed(const std::function<void()>& check);

// A read-only mapping of a whole .npy file and this rank's columns of its last axis.
struct ShardedNpy {
  ShardedNpy() = default;
  ShardedNpy(const ShardedNpy&) = delete;
  ShardedNpy& operator=(const ShardedNpy&) = delete;
  ~ShardedNpy();

  const unsigned char* data = nullptr;
  std::size_t size = 0;
  io::NpyHeader header;
  softmax::dist::Shard shard{0, 0};
  int64_t vocab = 0;  // the last axis
  int64_t rows = 0;   // the product of the other axes
  std::vector<int64_t> shard_shape;
  ConstTensorView view;  // this rank's columns: shard_shape, the file's strides
};

// Maps `path` (a C-order, little-endian .npy of rank >= 1) and selects rank `rank` of `ranks`'s
// columns. Throws softmax::Error (kIO, kUnsupported, kShapeMismatch) naming `what` otherwise;
// the dtype is the caller's to check.
void map_sharded(const std::string& path, const std::string& what, int rank, int ranks,
                 ShardedNpy& out);

// Rank 0: the whole (rows..., vocab) array of `full_shape` from every rank's `part` (its
// default_shard columns, C order, dtype t); other ranks: an empty array. Collective.
io::Array gather_columns(const io::Array& part, const std::vector<int64_t>& full_shape, DType t,
                         int rank, int ranks);

}  // namespace softmax::cli::vp

#endif
