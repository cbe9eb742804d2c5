// tools/softmax_cli/main.cc: the `softmax` tool's entry point. Builds one CLI::App from every
// registered subcommand (command.hpp), parses, runs, and turns every error into one line
// "softmax: error: <message>" on stderr with exit status 2.
#include <algorithm>
#include <clocale>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

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

int fail(const std::string& message) {
  std::string m = message;
  // The library prefixes its messages with "softmax::"; the tool's own prefix says that already.
  if (m.rfind("softmax::", 0) == 0) m = m.substr(9);
  for (char& c : m) {
    if (c == '\n') c = ' ';  // one line, always
  }
  std::fflush(stdout);
  std::fprintf(stderr, "softmax: error: %s\n", m.c_str());
  return kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  std::setlocale(LC_ALL, "C");
  CLI::App app{
      "softmax: the softmax family (softmax, log-softmax, logsumexp, argmax, hardmax, sigmoid)\n"
      "on numbers, .npy and CSV files. With no arguments: a worked example.",
      "softmax"};
  app.require_subcommand(0, 1);
  try {
    for (softmax::cli::Setup setup : softmax::cli::registry()) setup(app);
    std::vector<std::string> args = softmax::cli::normalize_numeric_args(argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(std::move(args));
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return fail(e.what());
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
