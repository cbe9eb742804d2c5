// src/cpu/target.hpp: choosing the SIMD target per call, without Highway's process-wide state.
//
// Each kernel family exports its table getter with HWY_EXPORT (one entry per compiled target).
// Highway's HWY_DYNAMIC_DISPATCH indexes that table by a process-wide "chosen target"; here the
// index is computed from a target passed down by the caller (Context::target), so two calls
// with different targets can run at the same time and nothing global is changed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <hwy/targets.h>

namespace softmax::cpu {

// Highway target bits (HWY_AVX3, HWY_AVX2, ..., HWY_EMU128) compiled into the library and
// supported by this CPU, best first.
std::vector<int64_t> usable_targets();

// The target for `name` (Highway's name, e.g. "AVX3"), or the best usable one for "".
// Throws softmax::Error (kInvalidArgument) naming `op` and its argument `arg` for a name that is
// not usable; the message lists the usable ones. The one name lookup of set_target,
// Context::target and the C ABI.
int64_t resolve_target(const char* op, const char* arg, const std::string& name);

// The target kernel tables are fetched for on this thread: the calling thread's ExecScope
// sets it for a public call (from Context::target) and parallel_ranges carries it to the
// worker threads of that call. 0 outside any call: the best usable target.
int64_t active_target() noexcept;
// active_target(), or the best usable target when it is 0.
int64_t active_target_or_best() noexcept;

// Sets this thread's default target (softmax::set_target); 0 = the best.
void set_thread_target(int64_t target) noexcept;

// Sets active_target() on this thread for the scope's lifetime.
class ActiveTargetScope {
 public:
  explicit ActiveTargetScope(int64_t target) noexcept;
  ~ActiveTargetScope();
  ActiveTargetScope(const ActiveTargetScope&) = delete;
  ActiveTargetScope& operator=(const ActiveTargetScope&) = delete;

 private:
  int64_t saved_;
};

// Index of `target` (one usable target bit) in a HWY_EXPORT table: the layout of Highway's
// ChosenTarget mask (entry 0 is Highway's own initialiser, never used here).
inline std::size_t dispatch_index(int64_t target) {
  const int64_t bits = (target == HWY_SCALAR || target == HWY_EMU128)
                           ? HWY_CHOSEN_TARGET_MASK_SCALAR
                           : HWY_CHOSEN_TARGET_SHIFT(target);
  return hwy::Num0BitsBelowLS1Bit_Nonzero64(
      static_cast<uint64_t>(bits & HWY_CHOSEN_TARGET_MASK_TARGETS));
}

}  // namespace softmax::cpu

// The function FUNC (exported with HWY_EXPORT in this translation unit) for `target`.
#define SOFTMAX_DISPATCH(FUNC, target) \
  (*(HWY_DISPATCH_TABLE(FUNC)[::softmax::cpu::dispatch_index(target)]))
// FUNC for this thread's active target (the replacement of HWY_DYNAMIC_DISPATCH).
#define SOFTMAX_DISPATCH_ACTIVE(FUNC) \
  SOFTMAX_DISPATCH(FUNC, ::softmax::cpu::active_target_or_best())
