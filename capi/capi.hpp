// capi/capi.hpp: the glue every C ABI wrapper (capi/*.cc) shares: the status boundary (no
// exception crosses it), tensor descriptors -> views, struct_size handling, the context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "softmax/context.hpp"
#include "softmax/error.hpp"
#include "softmax/options.hpp"
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
// device, NULL strides = C order, whose element count must fit int64); the op itself checks
// everything else. Errors name `arg` of `op` (x.rank, y.shape, ...).
TensorView to_view(const char* op, const char* arg, const softmax_tensor_t* t);
// The same into `view`, reusing its vectors' capacity: with SOFTMAX_MAX_RANK reserved (the
// per-thread views below), a successful call allocates nothing.
void fill_view(const char* op, const char* arg, const softmax_tensor_t* t, TensorView& view);
void fill_view(const char* op, const char* arg, const softmax_tensor_t* t, ConstTensorView& view);
// This thread's input and output view for the allocation-free paths (the axis ops,
// softmax_*_workspace_bytes), capacity SOFTMAX_MAX_RANK reserved when the thread first uses
// them. A call finishes with them before it returns (no op calls back into the C layer).
ConstTensorView& thread_input_view();
TensorView& thread_output_view();
// B of a (B, ...) rank-2 descriptor (logits, draft tokens); 0 when it is not one (the op's own
// checks report that).
int64_t rows_of(const softmax_tensor_t* t) noexcept;
// An array given (non-NULL) with length 0 while the batch has rows: C++ would read the empty span
// as "not given", so it is a forgotten length; throws kShapeMismatch naming `length_arg`.
void check_given_length(const char* op, const char* length_arg, int64_t length, int64_t rows,
                        const char* array_arg, const void* array);
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

// softmax_options_t -> SoftmaxOptions (NULL = defaults), threads from the context.
SoftmaxOptions to_softmax_options(const char* op, const softmax_options_t* in,
                                  const softmax_context_t* ctx);

// A C array of `count` values as a span: NULL with count 0 is empty; NULL with count > 0, or a
// negative count, throws softmax::Error naming `arg` (and `count_arg`).
template <class T>
std::span<const T> to_span(const char* op, const char* arg, const char* count_arg, const T* p,
                           int64_t count) {
  if (count < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, count_arg, std::to_string(count), "must be >= 0");
  }
  // No array of more bytes than PTRDIFF_MAX exists: such a count is garbage (its end would wrap).
  if (static_cast<uint64_t>(count) > static_cast<uint64_t>(PTRDIFF_MAX) / sizeof(T)) {
    throw Error(ErrorKind::kInvalidArgument, op, count_arg, std::to_string(count),
                std::string("is not the length of an array (") + arg +
                    " would span more than PTRDIFF_MAX bytes)");
  }
  if (count > 0) require(op, arg, p);
  return p ? std::span<const T>(p, static_cast<std::size_t>(count)) : std::span<const T>();
}

// ---- Ops whose C++ form returns its results (vectors): the C function checks the caller's
// output views against the results, then stores them (nothing is written when a check fails).

// out must be a valid output view of dtype `dtype` and shape `shape`.
void check_result_output(const char* op, const char* arg, const TensorView& out, DType dtype,
                         const std::vector<int64_t>& shape);
// No output overlaps an input or another output (names for the messages).
void check_disjoint(const char* op,
                    const std::vector<std::pair<const char*, const TensorView*>>& outputs,
                    const std::vector<std::pair<const char*, ConstTensorView>>& inputs);
// Stores row-major `values` (out's element count of them) into the strided view out, whose
// dtype holds T (f32 float, f64 double, i64 int64_t).
template <class T>
void store(const TensorView& out, const T* values) {
  const std::size_t rank = out.shape.size();
  int64_t count = 1;
  for (int64_t d : out.shape) count *= d;
  if (count == 0) return;
  std::vector<int64_t> index(rank, 0);
  T* base = static_cast<T*>(out.data);
  for (int64_t i = 0; i < count; ++i) {
    int64_t offset = 0;
    for (std::size_t d = 0; d < rank; ++d) offset += index[d] * out.strides[d];
    base[offset] = values[i];
    for (std::size_t d = rank; d-- > 0;) {
      if (++index[d] < out.shape[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace softmax::detail::capi
