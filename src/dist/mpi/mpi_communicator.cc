// src/dist/mpi/mpi_communicator.cc: MpiCommunicator (softmax/dist_mpi.hpp).
#include <climits>
#include <string>
#include <vector>

#include "softmax/dist_mpi.hpp"
#include "softmax/error.hpp"

namespace softmax::dist {
namespace {
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(ErrorKind::kIO, "dist::MpiCommunicator", std::string(what) + " failed: " + text);
}
}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    throw Error(ErrorKind::kInvalidArgument, "dist::MpiCommunicator",
                "MPI is not initialised: call MPI_Init before creating the communicator");
  }
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

void MpiCommunicator::do_all_gather(const void* in, void* out, const std::size_t* counts) {
  std::vector<int> c(static_cast<std::size_t>(size_)), d(static_cast<std::size_t>(size_));
  std::size_t total = 0;
  for (int r = 0; r < size_; ++r) {
    if (total + counts[r] > static_cast<std::size_t>(INT_MAX)) {
      throw Error(ErrorKind::kOverflow, "dist::MpiCommunicator",
                  "one all-gather would move more than INT_MAX bytes (" +
                      std::to_string(total + counts[r]) + " and more): call with fewer rows");
    }
    d[r] = static_cast<int>(total);
    c[r] = static_cast<int>(counts[r]);
    total += counts[r];
  }
  // MPI wants a valid send buffer even for zero bytes.
  static char dummy = 0;
  check(MPI_Allgatherv(in != nullptr ? in : &dummy, c[rank_], MPI_BYTE, out, c.data(), d.data(),
                       MPI_BYTE, comm_),
        "MPI_Allgatherv");
}

void MpiCommunicator::do_all_to_all(const void* in, const std::size_t* send_counts, void* out,
                                    const std::size_t* recv_counts) {
  std::vector<int> sc(static_cast<std::size_t>(size_)), sd(sc.size()), rc(sc.size()), rd(sc.size());
  std::size_t st = 0, rt = 0;
  for (int r = 0; r < size_; ++r) {
    if (st + send_counts[r] > static_cast<std::size_t>(INT_MAX) ||
        rt + recv_counts[r] > static_cast<std::size_t>(INT_MAX)) {
      throw Error(ErrorKind::kOverflow, "dist::MpiCommunicator",
                  "one all-to-all would move more than INT_MAX bytes: call with fewer rows");
    }
    sd[r] = static_cast<int>(st);
    sc[r] = static_cast<int>(send_counts[r]);
    rd[r] = static_cast<int>(rt);
    rc[r] = static_cast<int>(recv_counts[r]);
    st += send_counts[r];
    rt += recv_counts[r];
  }
  static char dummy_in = 0;
  static char dummy_out = 0;
  check(MPI_Alltoallv(in != nullptr ? in : &dummy_in, sc.data(), sd.data(), MPI_BYTE,
                      out != nullptr ? out : &dummy_out, rc.data(), rd.data(), MPI_BYTE, comm_),
        "MPI_Alltoallv");
}

}  // namespace softmax::dist
