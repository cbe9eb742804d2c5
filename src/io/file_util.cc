// src/io/file_util.cc: whole-file reads (bounded by what the file holds) and all-or-nothing
// writes of one or more files.
#include "src/io/file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "src/io/temp_registry.hpp"

namespace softmax::io {

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

// A temporary file beside its target. While it is written it has no name where the
// file system allows (O_TMPFILE: a process killed even by SIGKILL leaves nothing behind); it is
// given a registered ".BASE.tmp.XXXXXX" name only just before the rename. Where O_TMPFILE is
// not supported it is named from the start, registered for removal on a signal.
struct Temp {
  std::string path;  // its name, once it has one
  int slot = -1;
  int fd = -1;  // the open anonymous file, until it is named
  void remove() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (path.empty()) return;
    ::unlink(path.c_str());
    forget();
  }
  void forget() {
    unregister_temp(slot);
    path.clear();
    slot = -1;
  }
};

// 6 characters [0-9a-zA-Z] that differ between calls and processes.
std::string random_suffix() {
  static uint64_t counter = 0;
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t z = (static_cast<uint64_t>(::getpid()) << 40) ^ static_cast<uint64_t>(ts.tv_nsec) ^
               (static_cast<uint64_t>(ts.tv_sec) << 20) ^ (++counter * 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64 finaliser
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  static const char* chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string s;
  for (int i = 0; i < 6; ++i, z /= 62) s += chars[z % 62];
  return s;
}

// "DIR" and "BASE" of `path`; refuses an empty name, a name ending in '/', and a directory.
void split_target(const std::string& path, const char* op, std::string& dir, std::string& base) {
  if (path.empty()) io_fail(op, path, "empty file name");
  const auto slash = path.rfind('/');
  dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) io_fail(op, path, "names a directory, not a file");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) io_fail(op, path, "is a directory");
}

// Gives `t` a fresh registered name "DIR/.BASE.tmp.XXXXXX": creates it (O_EXCL) when `fd` < 0,
// otherwise links the anonymous file `fd` there. Returns the open descriptor of a created file,
// or -1 after a link. Throws (kIO) when no name can be made.
int name_temp(Temp& t, const std::string& path, const std::string& dir, const std::string& base,
              int fd, const char* op) {
  for (int attempt = 0;; ++attempt) {
    std::string name = dir;
    name.append("/.").append(base).append(".tmp.").append(random_suffix());
    const int slot = register_temp(name);  // before the name exists: a signal can remove it
    if (slot < 0) io_fail(op, path, "too many outputs, or too long a name, for a temporary file");
    int made = -1;
    if (fd < 0) {
      made = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);  // umask applies
    } else {
      const std::string proc = "/proc/self/fd/" + std::to_string(fd);
      made =
          ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : -1;
    }
    if (made >= 0) {
      t.path = name;
      t.slot = slot;
      return fd < 0 ? made : -1;
    }
    const int e = errno;
    unregister_temp(slot);
    if (e != EEXIST || attempt == 100) {
      io_fail(op, path, "cannot create a file in '" + dir + "': " + std::strerror(e));
    }
  }
}

// Writes `content` to a new temporary file beside `path`, flushed; anonymous (t.fd open) where
// the file system supports O_TMPFILE, else named and closed.
Temp write_temp(const std::string& path, const std::string& content, const char* op) {
  std::string dir, base;
  split_target(path, op, dir, base);
  Temp t;
  Fd f;
#ifdef O_TMPFILE
  // Naming it later links /proc/self/fd/N, so that must exist too.
  if (::access("/proc/self/fd", X_OK) == 0) {
    f.fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);  // umask applies
  }
#endif
  const bool anonymous = f.fd >= 0;
  if (!anonymous) f.fd = name_temp(t, path, dir, base, -1, op);
  try {
    write_all(f.fd, content, op, path);
    if (::fsync(f.fd) != 0 && errno != EINVAL && errno != EROFS) {
      io_fail(op, path, std::string("cannot flush: ") + std::strerror(errno));
    }
    const int fd = f.fd;
    f.fd = -1;
    if (anonymous) {
      t.fd = fd;
    } else if (::close(fd) != 0) {
      io_fail(op, path, std::string("cannot close: ") + std::strerror(errno));
    }
  } catch (...) {
    t.remove();
    throw;
  }
  return t;
}

// Gives an anonymous temporary its name (a link beside the target) and closes it.
void name_anonymous(Temp& t, const std::string& path, const char* op) {
  if (t.fd < 0) return;
  std::string dir, base;
  split_target(path, op, dir, base);
  name_temp(t, path, dir, base, t.fd, op);
  const int fd = t.fd;
  t.fd = -1;
  if (::close(fd) != 0) io_fail(op, path, std::string("cannot close: ") + std::strerror(errno));
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
  if (::fstat(f.fd, &st) != 0)
    io_fail(op, path, std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) io_fail(op, path, "is a directory");
  if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size) + 1);
  read_all(f.fd, out, op, path);
  return out;
}

void write_files_atomic(const std::vector<PendingWrite>& files, const char* op) {
  std::vector<Temp> temps;
  temps.reserve(files.size());
  try {
    for (const PendingWrite& f : files) {
      if (f.path != "-") temps.push_back(write_temp(f.path, f.content, op));
    }
    for (const PendingWrite& f : files) {
      if (f.path != "-") continue;
      if (std::fflush(stdout) != 0)
        io_fail(op, "<stdout>", std::string("cannot write: ") + std::strerror(errno));
      write_all(STDOUT_FILENO, f.content, op, "<stdout>");
    }
    std::size_t k = 0;  // names last, so they exist for microseconds, not for the whole write
    for (const PendingWrite& f : files) {
      if (f.path != "-") name_anonymous(temps[k++], f.path, op);
    }
  } catch (...) {
    for (Temp& t : temps) t.remove();
    throw;
  }
  begin_commit();  // a signal now waits until every file is in place
  std::size_t k = 0;
  for (const PendingWrite& f : files) {
    if (f.path == "-") continue;
    Temp& t = temps[k++];
    if (::rename(t.path.c_str(), f.path.c_str()) != 0) {
      const int e = errno;
      for (std::size_t j = k - 1; j < temps.size(); ++j) temps[j].remove();
      end_commit();
      io_fail(op, f.path, std::string("cannot rename the temporary file: ") + std::strerror(e));
    }
    t.forget();
  }
  end_commit();
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
  write_files_atomic({PendingWrite{path, content}}, op);
}

}  // namespace softmax::io
