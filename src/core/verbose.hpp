// src/core/verbose.hpp: SOFTMAX_VERBOSE=1 logs, for every op call, the implementation path
// chosen and why (as oneDNN's ONEDNN_VERBOSE does), one line on stderr.
#pragma once

#include <string>

namespace softmax::detail {

// True when the environment variable SOFTMAX_VERBOSE is set to a non-zero value (read once).
bool verbose_enabled();

// Writes "softmax_verbose: <op>: <message>" to stderr (one write, so lines do not interleave).
void verbose_log(const char* op, const std::string& message);

}  // namespace softmax::detail
