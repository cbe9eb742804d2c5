// softmax/dist_mpi.hpp: the MPI communicator for the vocabulary-parallel ops (softmax/dist.hpp).
// Link softmax::softmax_mpi (built when CMake finds MPI; Debian: libopenmpi-dev).
#pragma once

#include <mpi.h>

#include "softmax/dist.hpp"

namespace softmax::dist {

// Wraps a user's communicator (not owned, not duplicated: the ops' collectives are ordinary
// MPI_Allgatherv / MPI_Alltoallv calls on it, made in the same order on every rank). MPI must be
// initialised (MPI_Init or MPI_Init_thread) before the ops run and finalised after. The
// communicator's error handler is left as the user set it; with MPI's default
// (MPI_ERRORS_ARE_FATAL) a failed collective, e.g. a peer that died, aborts the job instead of
// hanging or returning. With MPI_ERRORS_RETURN a failed collective throws softmax::Error
// (ErrorKind::kIO) naming the MPI error. Collectives pass byte counts as int: one collective moving
// more than INT_MAX bytes in total throws softmax::Error (kOverflow) on every rank (the counts are
// the same everywhere).
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm);
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm comm() const { return comm_; }

 protected:
  void do_all_gather(const void* in, void* out, const std::size_t* counts) override;
  void do_all_to_all(const void* in, const std::size_t* send_counts, void* out,
                     const std::size_t* recv_counts) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace softmax::dist
