// src/io/file_util.cc: whole-file reads (bounded by what the file holds) and atomic writes.
#include "src/io/file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "softmax/error.hpp"

namespace softmax::io::detail {

namespace {

[[noreturn]] void io_fail(const char* op, const std::string& path, const std::string& what) {
  throw Error(ErrorKind::kIO, op, "'" + path + "': " + what);
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads until EOF; the buffer grows with what actually arrives, never with a claimed size.
void read_all(int fd, std::vector<unsigned char>& out, const char* op, const std::string& path) {
  constexpr std::size_t kChunk = 1 << 16;
  for (;;) {
    const std::size_t old = out.size();
    out.resize(old + kChunk);
    const ssize_t got = ::read(fd, out.data() + old, kChunk);
    if (got < 0) {
      if (errno == EINTR) {
        out.resize(old);
        continue;
      }
      const int e = errno;
      out.resize(old);
      io_fail(op, path, std::string("cannot read: ") + std::strerror(e));
    }
    out.resize(old + static_cast<std::size_t>(got));
    if (got == 0) return;
  }
}

void write_all(int fd, const std::string& content, const char* op, const std::string& path) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_fail(op, path, std::string("cannot write: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::vector<unsigned char> read_file_bytes(const std::string& path, const char* op) {
  std::vector<unsigned char> out;
  if (path == "-") {
    read_all(STDIN_FILENO, out, op, "<stdin>");
    return out;
  }
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) io_fail(op, path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) io_fail(op, path, std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) io_fail(op, path, "is a directory");
  if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size) + 1);
  read_all(f.fd, out, op, path);
  return out;
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
  if (path == "-") {
    std::fflush(stdout);
    write_all(STDOUT_FILENO, content, op, "<stdout>");
    return;
  }
  if (path.empty()) io_fail(op, path, "empty file name");
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) io_fail(op, path, "names a directory, not a file");
  std::string tmpl = dir + "/." + base + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) io_fail(op, path, std::string("cannot create a file in '") + dir + "': " + std::strerror(errno));
  Fd f;
  f.fd = fd;
  try {
    // mkstemp creates 0600; give the file the permissions a plain open() would.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
    write_all(fd, content, op, path);
    if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
      io_fail(op, path, std::string("cannot flush: ") + std::strerror(errno));
    }
    if (::close(fd) != 0) {
      f.fd = -1;
      io_fail(op, path, std::string("cannot close: ") + std::strerror(errno));
    }
    f.fd = -1;
    if (::rename(tmpl.c_str(), path.c_str()) != 0) {
      io_fail(op, path, std::string("cannot rename the temporary file: ") + std::strerror(errno));
    }
  } catch (...) {
    ::unlink(tmpl.c_str());
    throw;
  }
}

}  // namespace softmax::io::detail
