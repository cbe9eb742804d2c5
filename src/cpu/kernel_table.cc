// src/cpu/kernel_table.cc: one softmax-family KernelTable per usable SIMD target, assembled
// from the kernel files of each family (each compiled once per target, see kernels.hpp).
#include <array>
#include <cstddef>
#include <cstdint>

#include <hwy/targets.h>

#include "src/cpu/kernels.hpp"
#include "src/cpu/target.hpp"

namespace softmax::cpu {
namespace {

// Indexed by dispatch_index(target) (< 64: a bit position of Highway's target mask).
using Tables = std::array<KernelTable, 64>;

Tables build_tables() {
  Tables tables{};
  for (int64_t target : usable_targets()) {
    KernelTable& t = tables[dispatch_index(target)];
    t.target_name = hwy::TargetName(target);
    detail::fill_stats_kernels(target, &t);
    detail::fill_normalize_kernels(target, &t);
    detail::fill_rows_kernels(target, &t);
    detail::fill_argmax_sigmoid_kernels(target, &t);
  }
  return tables;
}

}  // namespace

const KernelTable& kernels() {
  static const Tables tables = build_tables();
  return tables[dispatch_index(active_target_or_best())];
}

}  // namespace softmax::cpu
