// src/core/exec.cc: ExecScope and the per-thread current execution (see exec.hpp).
#include "src/core/exec.hpp"

#include <string>

#include "softmax/error.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/target.hpp"

namespace softmax::detail {
namespace {

thread_local const Exec* t_current = nullptr;

const Exec& default_exec() {
  static const Exec e = [] {
    Exec d;
    d.threads = resolve_threads(0);
    d.target = cpu::active_target_or_best();
    return d;
  }();
  return e;
}

}  // namespace

const Exec& current_exec() { return t_current != nullptr ? *t_current : default_exec(); }

ExecScope::ExecScope(const char* op, const Context& c, int options_threads, bool sized_workspace)
    : saved_(t_current) {
  if (saved_ != nullptr) return;  // nested public call: the outer context rules
  check_threads(op, c.threads);
  check_threads(op, options_threads);
  const int requested = c.threads != 0 ? c.threads : options_threads;
  exec_.parallel_for = c.parallel_for;
  exec_.workspace = sized_workspace ? c.workspace : nullptr;
  exec_.workspace_bytes = sized_workspace && c.workspace != nullptr ? c.workspace_bytes : 0;
  exec_.cuda_stream = c.cuda_stream;
  exec_.pool = c.pool;
  exec_.threads = c.parallel_for != nullptr && !in_forked_child()
                      ? (requested > 0 ? requested : resolve_threads(0))
                      : resolve_threads(requested);
  exec_.target =
      c.target.empty() ? cpu::active_target_or_best() : cpu::resolve_target(op, "target", c.target);
  saved_target_ = cpu::active_target();
  cpu::set_thread_target(exec_.target);
  t_current = &exec_;
}

ExecScope::~ExecScope() {
  if (saved_ != nullptr) return;
  t_current = nullptr;
  cpu::set_thread_target(saved_target_);
}

}  // namespace softmax::detail
