// src/cpu/target.cc: the usable SIMD targets and name lookup (see target.hpp).
#include "src/cpu/target.hpp"

#include "softmax/dispatch.hpp"
#include "softmax/error.hpp"

namespace softmax::cpu {

std::vector<int64_t> usable_targets() {
  // Inline in Highway's header: it sees this library's HWY_TARGETS (the targets compiled here),
  // filtered by what the CPU supports, best first.
  return hwy::SupportedAndGeneratedTargets();
}

namespace {
thread_local int64_t t_active = 0;
}  // namespace

int64_t active_target() noexcept { return t_active; }

int64_t active_target_or_best() noexcept {
  if (t_active != 0) return t_active;
  static const int64_t best = usable_targets().front();
  return best;
}

void set_thread_target(int64_t target) noexcept { t_active = target; }

ActiveTargetScope::ActiveTargetScope(int64_t target) noexcept : saved_(t_active) {
  t_active = target;
}
ActiveTargetScope::~ActiveTargetScope() { t_active = saved_; }

int64_t resolve_target(const char* op, const char* arg, const std::string& name) {
  const std::vector<int64_t> targets = usable_targets();
  if (name.empty()) return targets.front();
  std::string names;
  for (int64_t t : targets) {
    if (name == hwy::TargetName(t)) return t;
    names += (names.empty() ? "" : ", ") + std::string(hwy::TargetName(t));
  }
  throw Error(ErrorKind::kInvalidArgument, op, arg, "\"" + name + "\"",
              "must be one of the SIMD targets this build and CPU support: " + names);
}

}  // namespace softmax::cpu

namespace softmax {

std::vector<std::string> available_targets() {
  std::vector<std::string> names;
  for (int64_t t : cpu::usable_targets()) names.emplace_back(hwy::TargetName(t));
  return names;
}

std::string current_target() { return hwy::TargetName(cpu::active_target_or_best()); }

void set_target(const std::string& name) {
  cpu::set_thread_target(name.empty() ? 0 : cpu::resolve_target("set_target", "name", name));
}

}  // namespace softmax
