// src/core/exec.hpp: the execution of one public call, resolved once from its Context.
//
// A public op opens an ExecScope at entry (after validating its arguments, before any work).
// Everything below it (row walkers, parallel_for, the kernel table lookup)
// asks current_exec() instead of taking threads / pools / targets as arguments, so the maths
// code is the same whatever runs it. The scope is per thread: concurrent calls with different
// contexts do not see each other's. A public op called from inside another (hardmax calls
// argmax) keeps the outer scope.
#pragma once

#include <cstddef>
#include <cstdint>

#include "softmax/context.hpp"

namespace softmax::detail {

struct Exec {
  int threads = 1;                       // resolved: >= 1 (1 in a forked child)
  ParallelForFn parallel_for = nullptr;  // the caller's pool, or OpenMP when null
  void* pool = nullptr;
  int64_t target = 0;         // Highway target bit of the CPU kernels
  void* workspace = nullptr;  // the caller's scratch (Context::workspace), or null
  std::size_t workspace_bytes = 0;
  void* cuda_stream = nullptr;  // Context::cuda_stream
};

// The execution of the public call running on this thread (a default one outside any call:
// OpenMP default threads, the best target, heap scratch).
const Exec& current_exec();

class ExecScope {
 public:
  // Validates the context (threads >= 0, a usable target name) and installs it for this thread,
  // unless an outer scope is active. `options_threads`: the deprecated `threads` field of the op's
  // options struct, used when context.threads is 0 (removed with that field). `sized_workspace`:
  // the op reports its workspace (softmax / log_softmax / logsumexp and their queries); other
  // ops, and the public calls nested in them, run without Context::workspace (their own
  // scratch), since a caller cannot size it for them. Throws softmax::Error naming `op`.
  ExecScope(const char* op, const Context& context, int options_threads = 0,
            bool sized_workspace = false);
  ~ExecScope();
  ExecScope(const ExecScope&) = delete;
  ExecScope& operator=(const ExecScope&) = delete;

 private:
  Exec exec_;
  const Exec* saved_;
  int64_t saved_target_ = 0;
};

}  // namespace softmax::detail
