// softmax/dispatch.hpp: which SIMD target the CPU kernels run on.
#pragma once

#include <string>
#include <vector>

namespace softmax {

// Names of the SIMD targets compiled into this build that this CPU supports, best first,
// e.g. {"AVX3_ZEN4", "AVX3", "AVX2", "SSE4", "EMU128"} (Highway's names).
std::vector<std::string> available_targets();

// The target ops called from this thread use when their Context::target is empty.
std::string current_target();

// Sets the calling thread's default target: ops called from THIS thread with an empty
// Context::target run on `name` (one of available_targets()); "" = back to the best. Other
// threads, and other Highway users in the process, are not affected (no Highway global state
// is touched). For a single call prefer Context::target (softmax/context.hpp).
// Results do not change with the target (see ops.hpp, Determinism).
// Throws softmax::Error (kInvalidArgument) for an unknown or unsupported name.
void set_target(const std::string& name);

}  // namespace softmax
