// src/cpu/target.cc: the usable SIMD targets and name lookup (see target.hpp).
#include "src/cpu/target.hpp"

#include "softmax/error.hpp"

namespace softmax::cpu {

std::vector<int64_t> usable_targets() {
  // Inline in Highway's header: it sees this library's HWY_TARGETS (the targets compiled here),
  // filtered by what the CPU supports, best first.
  return hwy::SupportedAndGeneratedTargets();
}

int64_t resolve_target(const char* op, const std::string& name) {
  const std::vector<int64_t> targets = usable_targets();
  if (name.empty()) return targets.front();
  std::string names;
  for (int64_t t : targets) {
    if (name == hwy::TargetName(t)) return t;
    names += (names.empty() ? "" : ", ") + std::string(hwy::TargetName(t));
  }
  throw Error(ErrorKind::kInvalidArgument, op, "target", "\"" + name + "\"",
              "must be one of the SIMD targets this build and CPU support: " + names);
}

}  // namespace softmax::cpu
