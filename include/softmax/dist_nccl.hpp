// softmax/dist_nccl.hpp: the NCCL communicator for the vocabulary-parallel ops
// (softmax/dist.hpp), for ranks that are GPUs. Link softmax::softmax_nccl (built with the CUDA
// backend when CMake finds NCCL: CUDA 13 in /usr/local/cuda ships it).
//
// The dist ops run on host memory; this transport moves their per-row buffers over NCCL (NVLink,
// InfiniBand, sockets) through device staging buffers: host -> device copy, ncclAllGather (each
// rank's block padded to the largest) or grouped ncclSend / ncclRecv (all_to_all), device ->
// host copy, all on the caller's stream, then a wait for the stream. The staging buffers are
// allocated on the communicator's current device on first use and grow as needed (kept until
// the communicator is destroyed).
//
// Failures: while it waits, the communicator polls ncclCommGetAsyncError; an error (a peer that
// died, a network failure) aborts the NCCL communicator (ncclCommAbort, as NCCL documents for
// that case) and throws softmax::Error (ErrorKind::kIO) naming the NCCL error, so no rank hangs
// in a collective that can never complete. timeout_seconds > 0 also aborts and throws when one
// collective has not finished after that long (0: no limit).
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>

#include "softmax/dist.hpp"

namespace softmax::dist {

class NcclCommunicator final : public Communicator {
 public:
  // comm: the user's NCCL communicator (not owned; aborted only on a failure as above);
  // stream: the stream the collectives run on (the copies are ordered on it).
  // Throws softmax::Error if NCCL cannot report the rank or size.
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, double timeout_seconds = 0.0);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

 protected:
  void do_all_gather(const void* in, void* out, const std::size_t* counts) override;
  void do_all_to_all(const void* in, const std::size_t* send_counts, void* out,
                     const std::size_t* recv_counts) override;

 private:
  void reserve(std::size_t send_bytes, std::size_t recv_bytes);
  void wait(const char* what);

  ncclComm_t comm_;
  cudaStream_t stream_;
  double timeout_;
  int rank_ = 0;
  int size_ = 1;
  void* d_send_ = nullptr;
  void* d_recv_ = nullptr;
  std::size_t send_cap_ = 0, recv_cap_ = 0;
};

}  // namespace softmax::dist
