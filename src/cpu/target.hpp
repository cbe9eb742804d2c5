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
// Throws softmax::Error (kInvalidArgument) naming `op` for a name that is not usable.
int64_t resolve_target(const char* op, const std::string& name);

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
