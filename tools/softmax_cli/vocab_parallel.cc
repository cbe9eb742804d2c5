// tools/softmax_cli/vocab_parallel.cc: the shared pieces of the --vocab-parallel commands
// (vocab_parallel.hpp).
#ifdef SOFTMAX_CLI_MPI
#include "softmax_cli/vocab_parallel.hpp"

#include <fcntl.h>
#include <mpi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace softmax::cli::vp {

void ensure_mpi() {
  int inited = 0;
  MPI_Initialized(&inited);
  if (inited) return;
  MPI_Init(nullptr, nullptr);
  std::atexit([] {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  });
}

namespace {
bool g_agreement_joined = false;  // this rank has taken part in its first agreement

// A message without the library's "softmax::" prefix (the agreed error adds its own).
std::string unprefixed(const std::string& m) {
  return m.rfind("softmax::", 0) == 0 ? m.substr(9) : m;
}
}  // namespace

void run_ranks(const std::function<void()>& body) {
  ensure_mpi();
  try {
    body();
  } catch (const std::exception& e) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (!g_agreement_joined) {
      // Failed before this rank's first agreement (a usage check): join it as a failing rank,
      // so the other ranks, waiting there, fail with the same error instead of hanging.
      const auto* err = dynamic_cast<const Error*>(&e);
      try {
        agree_or_throw(e.what(), err != nullptr ? err->kind() : ErrorKind::kInvalidArgument);
      } catch (const Error&) {
        if (rank != 0) std::exit(2);
        throw;
      }
    }
    if (rank != 0) std::exit(2);
    throw;
  }
}

std::string agree_early_failure(const std::string& message) {
  ensure_mpi();
  if (g_agreement_joined) return message;
  try {
    agree_or_throw(message, ErrorKind::kInvalidArgument);
  } catch (const Error& e) {
    return e.what();
  }
  return message;
}

void agree_or_throw(const std::string& local_error, ErrorKind kind) {
  g_agreement_joined = true;
  constexpr int kMsg = 480;
  char mine[kMsg + 8] = {};
  mine[0] = local_error.empty() ? 0 : 1;
  mine[1] = static_cast<char>(kind);
  std::strncpy(mine + 8, unprefixed(local_error).c_str(), kMsg - 1);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<char> all(static_cast<std::size_t>(size) * (kMsg + 8));
  MPI_Allgather(mine, kMsg + 8, MPI_CHAR, all.data(), kMsg + 8, MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < size; ++r) {
    const char* rec = all.data() + static_cast<std::size_t>(r) * (kMsg + 8);
    if (rec[0] != 0) {
      std::string msg(rec + 8, strnlen(rec + 8, kMsg));
      if (msg.rfind("vocab-parallel: ", 0) == 0) msg = msg.substr(16);  // said once, below
      throw Error(static_cast<ErrorKind>(rec[1]), "vocab-parallel",
                  "rank " + std::to_string(r) + " of " + std::to_string(size) + ": " + msg);
    }
  }
}

void agreed(const std::function<void()>& check) {
  std::string err;
  ErrorKind kind = ErrorKind::kIO;
  try {
    check();
  } catch (const Error& e) {
    err = e.what();
    kind = e.kind();
  } catch (const std::exception& e) {
    err = e.what();
  }
  agree_or_throw(err, kind);
}

ShardedNpy::~ShardedNpy() {
  if (data != nullptr && size > 0) munmap(const_cast<unsigned char*>(data), size);
}

void map_sharded(const std::string& path, const std::string& what, int rank, int ranks,
                 ShardedNpy& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(ErrorKind::kIO, "vocab-parallel",
                "cannot open '" + path + "': " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorKind::kIO, "vocab-parallel", "'" + path + "' is not a regular file");
  }
  out.size = static_cast<std::size_t>(st.st_size);
  if (out.size > 0) {
    void* p = mmap(nullptr, out.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      out.size = 0;
      throw Error(ErrorKind::kIO, "vocab-parallel",
                  "cannot map '" + path + "': " + std::strerror(errno));
    }
    out.data = static_cast<const unsigned char*>(p);
  }
  ::close(fd);
  const io::NpyHeader h = io::parse_npy_header(out.data, out.size, path);
  if (h.fortran || h.swap) {
    throw Error(ErrorKind::kUnsupported, "vocab-parallel",
                "'" + path + "' is " + (h.fortran ? "in Fortran order" : "big-endian") +
                    ": --vocab-parallel maps C-order little-endian .npy files in place "
                    "(rewrite it with numpy.ascontiguousarray(x).astype('<f4'))");
  }
  if (h.shape.empty()) {
    throw Error(ErrorKind::kShapeMismatch, "vocab-parallel", what, "a 0-d array",
                "--vocab-parallel shards the last axis: the input needs one");
  }
  out.header = h;
  out.vocab = h.shape.back();
  out.shard = softmax::dist::default_shard(out.vocab, rank, ranks);
  out.rows = out.vocab == 0 ? 0 : h.numel / out.vocab;
  out.shard_shape = h.shape;
  out.shard_shape.back() = out.shard.size;
  std::vector<int64_t> strides(h.shape.size(), 1);
  for (std::size_t j = h.shape.size() - 1; j-- > 0;) strides[j] = strides[j + 1] * h.shape[j + 1];
  const auto es = static_cast<int64_t>(dtype_size(h.dtype));
  out.view = ConstTensorView(out.data + h.data_offset + out.shard.offset * es, h.dtype,
                             out.shard_shape, strides);
}

io::Array gather_columns(const io::Array& part, const std::vector<int64_t>& full_shape, DType t,
                         int rank, int ranks) {
  const int64_t vocab = full_shape.empty() ? 1 : full_shape.back();
  int64_t rows = 1;
  for (std::size_t j = 0; j + 1 < full_shape.size(); ++j) rows *= full_shape[j];
  const auto es = static_cast<int64_t>(dtype_size(t));
  std::vector<int> counts(static_cast<std::size_t>(ranks)), displs(static_cast<std::size_t>(ranks));
  int64_t total = 0;
  for (int r = 0; r < ranks; ++r) {
    const int64_t b = rows * softmax::dist::default_shard(vocab, r, ranks).size * es;
    if (total + b > INT_MAX) {
      throw Error(ErrorKind::kOverflow, "vocab-parallel",
                  "the output is over 2 GiB: rank 0 cannot gather it in one MPI call");
    }
    counts[r] = static_cast<int>(b);
    displs[r] = static_cast<int>(total);
    total += b;
  }
  std::vector<unsigned char> gathered(
      rank == 0 ? static_cast<std::size_t>(std::max<int64_t>(total, 1)) : 1);
  MPI_Gatherv(part.bytes.data(), counts[rank], MPI_BYTE, gathered.data(), counts.data(),
              displs.data(), MPI_BYTE, 0, MPI_COMM_WORLD);
  if (rank != 0) return io::Array{};
  io::Array y = io::Array::zeros(t, full_shape);
  for (int r = 0; r < ranks; ++r) {
    const softmax::dist::Shard s = softmax::dist::default_shard(vocab, r, ranks);
    for (int64_t row = 0; row < rows && s.size > 0; ++row) {
      std::memcpy(y.bytes.data() + (row * vocab + s.offset) * es,
                  gathered.data() + displs[r] + row * s.size * es,
                  static_cast<std::size_t>(s.size * es));
    }
  }
  return y;
}

}  // namespace softmax::cli::vp
#endif
