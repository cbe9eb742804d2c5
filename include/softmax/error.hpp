// softmax/error.hpp: the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

namespace softmax {

// What kind of rule an argument broke.
enum class ErrorKind {
  kInvalidArgument,  // a value outside its domain (axis, temperature, top_p, ...)
  kShapeMismatch,    // shapes of inputs/outputs disagree
  kDTypeMismatch,    // a dtype or dtype combination the op does not support
  kOverlap,          // output partially overlaps an input
  kOverflow,         // a size, stride or byte extent overflows int64
  kUnsupported,      // a valid request this build cannot serve (e.g. a CUDA view)
  kIO,               // malformed, truncated or unreadable file
};

// Thrown by every public function on bad input. what() reads
//   "softmax::log_softmax: argument 'axis' = 3: must be in [-2, 1] for a tensor of rank 2"
// naming the op, the argument, the offending value and the rule it broke.
// Derives from std::invalid_argument so generic handlers catch it.
// When an Error is thrown, no output buffer has been written.
class Error : public std::invalid_argument {
 public:
  Error(ErrorKind kind, const std::string& op, const std::string& argument,
        const std::string& value, const std::string& rule)
      : std::invalid_argument("softmax::" + op + ": argument '" + argument + "' = " + value + ": " +
                              rule),
        kind_(kind) {}
  // For errors that are not about one argument (I/O): "softmax::<op>: <message>".
  Error(ErrorKind kind, const std::string& op, const std::string& message)
      : std::invalid_argument("softmax::" + op + ": " + message), kind_(kind) {}

  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace softmax
