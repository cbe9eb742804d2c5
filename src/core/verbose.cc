// src/core/verbose.cc
#include "src/core/verbose.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace softmax::detail {

bool verbose_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SOFTMAX_VERBOSE");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

void verbose_log(const char* op, const std::string& message) {
  const std::string line = std::string("softmax_verbose: ") + op + ": " + message + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace softmax::detail
