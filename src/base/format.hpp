// src/base/format.hpp: how messages show a floating-point value.
#pragma once

#include <charconv>
#include <string>

namespace softmax::detail {

// The shortest decimal that reads back as v ("0.25", "1e-300", "inf", "nan"): how every message
// shows a floating-point argument (std::to_string's fixed 6 decimals would print 1e-9 as
// "0.000000").
inline std::string num_str(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

}  // namespace softmax::detail
