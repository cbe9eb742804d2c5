// tools/softmax_cli/main.cc: the `softmax` tool's entry point. Builds one CLI::App from every
// registered subcommand (command.hpp), parses, runs, and turns every error into one line
// "softmax: error: <message>" on stderr with exit status 2 (a failed write to stdout too).
// SIGINT/SIGTERM/SIGHUP/SIGPIPE remove any temporary output file before the process dies.
#include <algorithm>
#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/version.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"
#include "src/io/temp_registry.hpp"
#ifdef SOFTMAX_CLI_MPI
#include "softmax_cli/vocab_parallel.hpp"
#endif

namespace softmax::cli {

namespace {
std::vector<Setup>& registry() {
  static std::vector<Setup> setups;  // constructed on first use: safe during static init
  return setups;
}
}  // namespace

bool register_command(Setup setup) {
  registry().push_back(setup);
  return true;
}

}  // namespace softmax::cli

namespace {

constexpr int kExitBadInput = 2;

// `m` made printable on one line: newlines become spaces, other control bytes and bytes that
// are not valid UTF-8 become \xNN (a file name or excerpt may hold anything).
std::string printable(const std::string& m) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < m.size();) {
    const auto c = static_cast<unsigned char>(m[i]);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
    for (std::size_t k = 1; len > 1 && k < len; ++k) {
      if (i + k >= m.size() || (static_cast<unsigned char>(m[i + k]) & 0xC0) != 0x80) len = 0;
    }
    if (c == '\n') {
      out += ' ';
    } else if (len == 0 || c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      len = 1;
    } else {
      out.append(m, i, len);
    }
    i += len;
  }
  return out;
}

// A --vocab-parallel command: a usage error met while parsing joins the ranks' first agreement
// (vp::agree_early_failure), so ranks given other arguments (MPMD) do not wait for this one;
// only rank 0 (or a process no launcher started) prints the agreed error.
bool g_vocab_parallel = false;
bool g_quiet_errors = false;

int fail(const std::string& message) {
  if (g_quiet_errors) return kExitBadInput;
  std::string m = message;
  // The library prefixes its messages with "softmax::" (or "softmax: "); the tool's own prefix
  // says that already.
  if (m.rfind("softmax::", 0) == 0) m = m.substr(9);
  if (m.rfind("softmax: ", 0) == 0) m = m.substr(9);
  std::fflush(stdout);
  std::fprintf(stderr, "softmax: error: %s\n", printable(m).c_str());
  return kExitBadInput;
}

// Every byte meant for stdout (printf, CLI11's --help on std::cout) must have arrived: a write
// error (a full disk, /dev/full, a closed descriptor) is an error, not a silent exit 0.
int finish(int rc) {
  std::cout.flush();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int e = errno;
  if (rc == 0 && (!flushed || std::ferror(stdout) || !std::cout)) {
    return fail(std::string("cannot write to stdout: ") +
                (e != 0 ? std::strerror(e) : "write error"));
  }
  return rc;
}

// A parse error's message; for a --vocab-parallel command, the one every rank agrees on.
std::string parse_failure(const std::string& what) {
#ifdef SOFTMAX_CLI_MPI
  if (g_vocab_parallel) return softmax::cli::vp::agree_early_failure(what);
#endif
  return what;
}

int run(int argc, char** argv) {
  CLI::App app{
      "softmax: the softmax family (softmax, log-softmax, logsumexp, argmax, hardmax, sigmoid)\n"
      "on numbers, .npy and CSV files. With no arguments: a worked example (or, when stdin is\n"
      "a pipe or a non-empty file, softmax of the numbers it holds).",
      "softmax"};
  app.set_version_flag("--version", "softmax " SOFTMAX_VERSION_STRING);
  app.require_subcommand(0, 1);
  try {
    for (softmax::cli::Setup setup : softmax::cli::registry()) setup(app);
    std::vector<std::string> args = softmax::cli::normalize_numeric_args(argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(std::move(args));
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return fail(parse_failure(e.what()));
  } catch (const softmax::Error& e) {
    return fail(e.what());
  } catch (const softmax::cli::UsageError& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setlocale(LC_ALL, "C");
  softmax::io::install_temp_cleanup_handlers();  // no half-written temp file on ^C
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--vocab-parallel") == 0) g_vocab_parallel = true;
  }
  g_quiet_errors = g_vocab_parallel && softmax::cli::launcher_rank() > 0;
  return finish(run(argc, argv));
}
