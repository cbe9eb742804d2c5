// softmax/dispatch.hpp: which SIMD target the CPU kernels run on.
#pragma once

#include <string>
#include <vector>

namespace softmax {

// Names of the SIMD targets compiled into this build that this CPU supports, best first,
// e.g. {"AVX3_ZEN4", "AVX3", "AVX2", "SSE4", "EMU128"} (Highway's names).
std::vector<std::string> available_targets();

// The target the kernels use now.
std::string current_target();

// Restricts the kernels to `name` (one of available_targets()), or back to the best with "".
// Results do not change with the target (see ops.hpp, Determinism); this exists for tests
// and benchmarks. Not thread-safe with concurrent op calls.
// Throws softmax::Error (kInvalidArgument) for an unknown or unsupported name.
void set_target(const std::string& name);

}  // namespace softmax
