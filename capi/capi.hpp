// capi/capi.hpp: the glue every C ABI wrapper (capi/*.cc) shares: the status boundary (no
// exception crosses it), tensor descriptors -> views, struct_size handling, the context.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>

#include "softmax/context.hpp"
#include "softmax/error.hpp"
#include "softmax/softmax.h"
#include "softmax/tensor.hpp"

struct softmax_context {
  softmax::Context cpp;  // threads, caller pool, workspace, SIMD target (softmax/context.hpp)
};

namespace softmax::detail::capi {

// Records the message returned by softmax_last_error() on this thread ("" clears it).
void set_last_error(const char* message) noexcept;
// Status of the exception in flight (call inside a catch block); records its message.
softmax_status_t status_of_current_exception() noexcept;

// Runs fn(): SOFTMAX_STATUS_OK and an empty message when it returns, the mapped status and the
// exception's message when it throws (whatever it throws).
template <class F>
softmax_status_t guarded(F&& fn) noexcept {
  try {
    fn();
  } catch (...) {
    return status_of_current_exception();
  }
  set_last_error("");
  return SOFTMAX_STATUS_OK;
}

// Throws softmax::Error (kInvalidArgument) naming `arg` of `op` when p is NULL.
void require(const char* op, const char* arg, const void* p);

// The view a descriptor describes (rank <= SOFTMAX_MAX_RANK, shape given, a known dtype and
// device, NULL strides = C order); the op itself checks everything else.
TensorView to_view(const char* op, const char* arg, const softmax_tensor_t* t);
// NULL = unset.
std::optional<TensorView> to_optional_view(const char* op, const char* arg,
                                           const softmax_tensor_t* t);

// The C++ context of a C context (NULL = the defaults).
const Context& context_of(const softmax_context_t* ctx) noexcept;
// Threads of a context (NULL = 0, the OpenMP default), for ops that take no Context yet.
int threads_of(const softmax_context_t* ctx) noexcept;

// Checks struct_size (a multiple of 8 in [8, 1024]; bytes past sizeof(T) zero).
void check_struct_size(const char* op, const char* arg, const void* options, std::size_t size,
                       std::size_t known);

// The caller's options with fields past its struct_size (an older header) set to `defaults`.
template <class T>
T read_struct(const char* op, const char* arg, const T* in, const T& defaults) {
  if (in == nullptr) return defaults;
  check_struct_size(op, arg, in, in->struct_size, sizeof(T));
  T out = defaults;
  std::memcpy(&out, in, in->struct_size < sizeof(T) ? in->struct_size : sizeof(T));
  out.struct_size = sizeof(T);
  return out;
}

}  // namespace softmax::detail::capi
