// softmax/context.hpp: how an op runs (threads, a caller's thread pool, the SIMD target, a caller
// workspace, a CUDA stream), kept apart from what it computes (the options structs).
//
// Every op takes a `const Context&` last, defaulting to Context{} (all cores through OpenMP,
// the best SIMD target). Results never depend on the context: the thread count, the pool's
// way of splitting ranges and the SIMD target change only speed
// (see docs/design.md, "Execution context"). The context holds no global state: two threads may
// call ops with different contexts at the same time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "softmax/tensor.hpp"

namespace softmax {

// A caller's parallel-for, e.g. an inference engine's own thread pool. It must call
// task(task_ctx, begin, end) for disjoint ranges that together cover [0, count) exactly once,
// in any order and on any threads (concurrently), and return only when every call has returned.
// `max_tasks` is the number of ranges the library would make for the context's thread count
// (a hint; one range [0, count) on the calling thread is always correct). Tasks do not throw.
using ParallelForFn = void (*)(void* pool, int64_t count, int64_t max_tasks,
                               void (*task)(void* task_ctx, int64_t begin, int64_t end),
                               void* task_ctx);

struct Context {
  // Worker threads. 0 = the OpenMP default (OMP_NUM_THREADS, or all online CPUs); n > 0 is
  // clamped to the number of online CPUs (more cannot run faster; it only oversubscribes).
  // Negative: softmax::Error. In a process forked after the library was loaded, ops run on the
  // calling thread only (the OpenMP pool does not survive fork()).
  int threads = 0;
  // When set, parallel work goes to parallel_for(pool, ...) instead of OpenMP; `threads` is
  // then only the hint passed as max_tasks (0 = the number of online CPUs).
  ParallelForFn parallel_for = nullptr;
  void* pool = nullptr;
  // SIMD target for the CPU kernels: one of available_targets() (softmax/dispatch.hpp), or ""
  // for the best this CPU supports. An unknown name is an error.
  std::string target;
  // Caller scratch memory for the ops that report a size (softmax_workspace_bytes and the other
  // *_workspace_bytes functions): on CPU views host memory, on CUDA views device memory, aligned
  // to 256 bytes. When `workspace_bytes` is at least what the op reports for the same arguments
  // and context, the op takes all its scratch from it and makes no heap allocation (no
  // cudaMalloc on CUDA); null (the default) lets the op allocate its own; a non-null workspace
  // that is too small or misaligned is an error (kInvalidArgument) raised before anything is
  // written. The op uses it only during the call (on CUDA: until the enqueued work completes on
  // `cuda_stream`), so one workspace serves calls that do not run at the same time. Ops without a
  // *_workspace_bytes function (argmax, hardmax, masked_softmax, the backward passes, ...) ignore
  // it and allocate their own scratch.
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  // The CUDA stream (a cudaStream_t) that ops on CUDA views enqueue their kernels on; null = the
  // legacy default stream. The ops do not synchronise it. Ignored for CPU views.
  void* cuda_stream = nullptr;
};

// Whether this build on this machine runs ops on views of `device`: always for Device::cpu; for
// Device::cuda when the library was built with the CUDA backend and a CUDA device answers.
// Never throws.
bool device_available(Device device) noexcept;

}  // namespace softmax
