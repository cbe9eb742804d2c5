// src/dist/nccl/nccl_communicator.cc: softmax::dist::NcclCommunicator (softmax/dist_nccl.hpp).
#include "softmax/dist_nccl.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "softmax/error.hpp"
#include "src/base/format.hpp"

namespace softmax::dist {
namespace {

const char* kOp = "dist::NcclCommunicator";

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) {
    throw Error(ErrorKind::kIO, kOp, std::string(what) + " failed: " + ncclGetErrorString(r));
  }
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw Error(ErrorKind::kIO, kOp, std::string(what) + " failed: " + cudaGetErrorString(e));
  }
}

}  // namespace

NcclCommunicator::NcclCommunicator(ncclComm_t comm, cudaStream_t stream, double timeout_seconds)
    : comm_(comm), stream_(stream), timeout_(timeout_seconds) {
  check_nccl(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
  check_nccl(ncclCommCount(comm_, &size_), "ncclCommCount");
}

NcclCommunicator::~NcclCommunicator() {
  if (d_send_ != nullptr) cudaFree(d_send_);
  if (d_recv_ != nullptr) cudaFree(d_recv_);
}

void NcclCommunicator::reserve(std::size_t send_bytes, std::size_t recv_bytes) {
  send_bytes = std::max<std::size_t>(send_bytes, 1);
  recv_bytes = std::max<std::size_t>(recv_bytes, 1);
  if (send_bytes > send_cap_) {
    if (d_send_ != nullptr) check_cuda(cudaFree(d_send_), "cudaFree");
    d_send_ = nullptr;
    send_cap_ = 0;
    check_cuda(cudaMalloc(&d_send_, send_bytes), "cudaMalloc (staging buffer)");
    send_cap_ = send_bytes;
  }
  if (recv_bytes > recv_cap_) {
    if (d_recv_ != nullptr) check_cuda(cudaFree(d_recv_), "cudaFree");
    d_recv_ = nullptr;
    recv_cap_ = 0;
    check_cuda(cudaMalloc(&d_recv_, recv_bytes), "cudaMalloc (staging buffer)");
    recv_cap_ = recv_bytes;
  }
}

// Waits for the stream, polling NCCL's asynchronous error state (a dead peer) and the timeout.
void NcclCommunicator::wait(const char* what) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t q = cudaStreamQuery(stream_);
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) check_cuda(q, what);
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (async != ncclSuccess && async != ncclInProgress) {
      ncclCommAbort(comm_);
      throw Error(ErrorKind::kIO, kOp,
                  std::string(what) + ": NCCL reported " + ncclGetErrorString(async) +
                      " (a peer failed); the NCCL communicator was aborted");
    }
    if (timeout_ > 0 && waited > timeout_) {
      ncclCommAbort(comm_);
      throw Error(ErrorKind::kIO, kOp,
                  std::string(what) + " did not finish in " + softmax::detail::num_str(timeout_) +
                      " s; the NCCL communicator was aborted");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void NcclCommunicator::do_all_gather(const void* in, void* out, const std::size_t* counts) {
  std::size_t block = 0;
  for (int r = 0; r < size_; ++r) block = std::max(block, counts[r]);
  if (block == 0) return;
  reserve(block, block * static_cast<std::size_t>(size_));
  if (counts[rank_] > 0) {
    check_cuda(cudaMemcpyAsync(d_send_, in, counts[rank_], cudaMemcpyHostToDevice, stream_),
               "cudaMemcpyAsync");
  }
  check_nccl(ncclAllGather(d_send_, d_recv_, block, ncclChar, comm_, stream_), "ncclAllGather");
  std::size_t at = 0;
  for (int r = 0; r < size_; ++r) {
    if (counts[r] > 0) {
      check_cuda(
          cudaMemcpyAsync(static_cast<char*>(out) + at,
                          static_cast<const char*>(d_recv_) + static_cast<std::size_t>(r) * block,
                          counts[r], cudaMemcpyDeviceToHost, stream_),
          "cudaMemcpyAsync");
    }
    at += counts[r];
  }
  wait("ncclAllGather");
}

void NcclCommunicator::do_all_to_all(const void* in, const std::size_t* send_counts, void* out,
                                     const std::size_t* recv_counts) {
  std::size_t st = 0, rt = 0;
  for (int r = 0; r < size_; ++r) {
    st += send_counts[r];
    rt += recv_counts[r];
  }
  if (st == 0 && rt == 0) return;
  reserve(st, rt);
  if (st > 0) {
    check_cuda(cudaMemcpyAsync(d_send_, in, st, cudaMemcpyHostToDevice, stream_),
               "cudaMemcpyAsync");
  }
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  std::size_t so = 0, ro = 0;
  for (int q = 0; q < size_; ++q) {
    if (send_counts[q] > 0) {
      check_nccl(ncclSend(static_cast<const char*>(d_send_) + so, send_counts[q], ncclChar, q,
                          comm_, stream_),
                 "ncclSend");
    }
    if (recv_counts[q] > 0) {
      check_nccl(
          ncclRecv(static_cast<char*>(d_recv_) + ro, recv_counts[q], ncclChar, q, comm_, stream_),
          "ncclRecv");
    }
    so += send_counts[q];
    ro += recv_counts[q];
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  if (rt > 0) {
    check_cuda(cudaMemcpyAsync(out, d_recv_, rt, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync");
  }
  wait("ncclSend/ncclRecv");
}

}  // namespace softmax::dist
