// capi/capi.cc: the shared glue of the C ABI (capi.hpp), library information, last error and
// the execution context.
#include "capi/capi.hpp"

#include "src/cpu/target.hpp"

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "softmax/dispatch.hpp"
#include "softmax/version.hpp"
#include "src/base/extent.hpp"
#include "src/core/checks.hpp"
#include "src/core/rows.hpp"

namespace softmax::detail::capi {
namespace {

thread_local std::string t_last_error;

softmax_status_t status_of(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return SOFTMAX_STATUS_INVALID_ARGUMENT;
    case ErrorKind::kShapeMismatch: return SOFTMAX_STATUS_SHAPE_MISMATCH;
    case ErrorKind::kDTypeMismatch: return SOFTMAX_STATUS_DTYPE_MISMATCH;
    case ErrorKind::kOverlap: return SOFTMAX_STATUS_OVERLAP;
    case ErrorKind::kOverflow: return SOFTMAX_STATUS_OVERFLOW;
    case ErrorKind::kUnsupported: return SOFTMAX_STATUS_UNSUPPORTED;
    case ErrorKind::kIO: return SOFTMAX_STATUS_IO;
  }
  return SOFTMAX_STATUS_INTERNAL;
}

}  // namespace

void set_last_error(const char* message) noexcept {
  try {
    t_last_error.assign(message);
  } catch (...) {
    // No memory for the message: keep what fits in the existing capacity.
    const std::size_t n = std::min(std::strlen(message), t_last_error.capacity());
    t_last_error.assign(message, n);  // no reallocation: n <= capacity
  }
}

softmax_status_t status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const Error& e) {
    set_last_error(e.what());
    return status_of(e.kind());
  } catch (const std::bad_alloc&) {
    set_last_error("softmax: out of memory");
    return SOFTMAX_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(e.what());
    return SOFTMAX_STATUS_INTERNAL;
  } catch (...) {
    set_last_error("softmax: unknown internal error");
    return SOFTMAX_STATUS_INTERNAL;
  }
}

void require(const char* op, const char* arg, const void* p) {
  if (p == nullptr) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, "NULL", "must not be NULL");
  }
}

namespace {

// Checks a descriptor; messages are built only when a check fails (a valid one allocates
// nothing here).
void check_descriptor(const char* op, const char* arg, const softmax_tensor_t* t) {
  require(op, arg, t);
  const auto field = [&](const char* name) { return std::string(arg) + "." + name; };
  if (t->rank < 0 || t->rank > SOFTMAX_MAX_RANK) {
    throw Error(ErrorKind::kInvalidArgument, op, field("rank"), std::to_string(t->rank),
                "must be in [0, " + std::to_string(SOFTMAX_MAX_RANK) + "]");
  }
  if (t->rank > 0 && t->shape == nullptr) require(op, field("shape").c_str(), t->shape);
  if (t->dtype < SOFTMAX_DTYPE_F32 || t->dtype > SOFTMAX_DTYPE_I64) {
    throw Error(ErrorKind::kDTypeMismatch, op, field("dtype"), std::to_string(t->dtype),
                "must be a softmax_dtype_t (0 to 5)");
  }
  if (t->device != SOFTMAX_DEVICE_CPU && t->device != SOFTMAX_DEVICE_CUDA) {
    throw Error(ErrorKind::kInvalidArgument, op, field("device"), std::to_string(t->device),
                "must be a softmax_device_t (0 = CPU, 1 = CUDA)");
  }
  // NULL strides: C order, for which the element count must fit int64 (a zero dimension makes
  // it 0, whatever the others are). Given strides are the op's to check.
  if (t->strides != nullptr) return;
  int64_t n = 0;
  const CountError e = element_count(t->shape, static_cast<std::size_t>(t->rank), n);
  if (e != CountError::kNone) {
    const std::string shape =
        "shape " + shape_str(std::vector<int64_t>(t->shape, t->shape + t->rank));
    if (e == CountError::kNegativeDim) {
      throw Error(ErrorKind::kInvalidArgument, op, field("shape"), shape,
                  "dimensions must be >= 0");
    }
    throw Error(ErrorKind::kOverflow, op, field("shape"), shape,
                "the element count overflows int64");
  }
}

template <class View>
void fill_view_impl(const char* op, const char* arg, const softmax_tensor_t* t, View& v) {
  check_descriptor(op, arg, t);
  const auto rank = static_cast<std::size_t>(t->rank);
  v.shape.assign(t->shape, t->shape + rank);
  if (t->strides != nullptr) {
    v.strides.assign(t->strides, t->strides + rank);
  } else {
    v.strides.resize(rank);
    c_order_strides(t->shape, rank, v.strides.data());
  }
  v.data = t->data;
  v.dtype = static_cast<DType>(t->dtype);
  v.device = static_cast<Device>(t->device);
}

template <class View>
View& thread_view() {
  thread_local View view = [] {
    View v;
    v.shape.reserve(SOFTMAX_MAX_RANK);
    v.strides.reserve(SOFTMAX_MAX_RANK);
    return v;
  }();
  return view;
}

}  // namespace

void fill_view(const char* op, const char* arg, const softmax_tensor_t* t, TensorView& view) {
  fill_view_impl(op, arg, t, view);
}

void fill_view(const char* op, const char* arg, const softmax_tensor_t* t, ConstTensorView& view) {
  fill_view_impl(op, arg, t, view);
}

ConstTensorView& thread_input_view() { return thread_view<ConstTensorView>(); }
TensorView& thread_output_view() { return thread_view<TensorView>(); }

int64_t rows_of(const softmax_tensor_t* t) noexcept {
  return t != nullptr && t->rank == 2 && t->shape != nullptr ? t->shape[0] : 0;
}

void check_given_length(const char* op, const char* length_arg, int64_t length, int64_t rows,
                        const char* array_arg, const void* array) {
  if (array != nullptr && length == 0 && rows > 0) {
    throw Error(
        ErrorKind::kShapeMismatch, op, length_arg, "0",
        "must be the batch size B (" + std::to_string(rows) + ") when " + array_arg + " is set");
  }
}

TensorView to_view(const char* op, const char* arg, const softmax_tensor_t* t) {
  TensorView v;
  fill_view_impl(op, arg, t, v);
  return v;
}

std::optional<TensorView> to_optional_view(const char* op, const char* arg,
                                           const softmax_tensor_t* t) {
  if (t == nullptr) return std::nullopt;
  return to_view(op, arg, t);
}

const Context& context_of(const softmax_context_t* ctx) noexcept {
  static const Context defaults;
  return ctx ? ctx->cpp : defaults;
}

int threads_of(const softmax_context_t* ctx) noexcept { return ctx ? ctx->cpp.threads : 0; }

SoftmaxOptions to_softmax_options(const char* op, const softmax_options_t* in,
                                  const softmax_context_t* ctx) {
  const SoftmaxOptions d;
  const softmax_options_t defaults{sizeof(softmax_options_t), d.axis, d.temperature,
                                   d.keepdims ? 1 : 0};
  const softmax_options_t c = read_struct(op, "options", in, defaults);
  SoftmaxOptions o;
  o.axis = c.axis;
  o.temperature = c.temperature;
  o.keepdims = c.keepdims != 0;
  o.threads = threads_of(ctx);
  return o;
}

void check_result_output(const char* op, const char* arg, const TensorView& out, DType dtype,
                         const std::vector<int64_t>& shape) {
  if (out.dtype != dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(out.dtype),
                std::string("must be ") + dtype_name(dtype));
  }
  check_same_shape(op, arg, shape, out.shape);
  check_output_view(op, arg, out);
}

void check_disjoint(const char* op,
                    const std::vector<std::pair<const char*, const TensorView*>>& outputs,
                    const std::vector<std::pair<const char*, ConstTensorView>>& inputs) {
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const TensorView& out = *outputs[i].second;
    for (const auto& [name, in] : inputs) {
      check_no_overlap(op, in, out, false, outputs[i].first, name);
    }
    for (std::size_t j = 0; j < i; ++j) {
      check_no_overlap(op, *outputs[j].second, out, false, outputs[i].first, outputs[j].first);
    }
  }
}

void check_struct_size(const char* op, const char* arg, const void* options, std::size_t size,
                       std::size_t known) {
  const auto a = [arg] { return std::string(arg) + ".struct_size"; };  // built only to throw
  if (size < 8 || size > 1024 || size % 8 != 0) {
    throw Error(ErrorKind::kInvalidArgument, op, a(), std::to_string(size),
                "must be sizeof the options struct (a multiple of 8 in [8, 1024]; " +
                    std::to_string(known) + " for this library)");
  }
  const auto* bytes = static_cast<const unsigned char*>(options);
  for (std::size_t i = known; i < size; ++i) {
    if (bytes[i] != 0) {
      throw Error(ErrorKind::kInvalidArgument, op, a(), std::to_string(size),
                  "fields past byte " + std::to_string(known) +
                      " are unknown to this library (version " SOFTMAX_VERSION_STRING
                      ") and must be zero");
    }
  }
}

}  // namespace softmax::detail::capi

using softmax::detail::capi::guarded;

extern "C" {

const char* softmax_version(void) { return SOFTMAX_VERSION_STRING; }

int softmax_abi_version(void) { return SOFTMAX_ABI_VERSION; }

const char* softmax_last_error(void) { return softmax::detail::capi::t_last_error.c_str(); }

const char* softmax_status_name(softmax_status_t status) {
  switch (status) {
    case SOFTMAX_STATUS_OK: return "ok";
    case SOFTMAX_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case SOFTMAX_STATUS_SHAPE_MISMATCH: return "shape mismatch";
    case SOFTMAX_STATUS_DTYPE_MISMATCH: return "dtype mismatch";
    case SOFTMAX_STATUS_OVERLAP: return "overlap";
    case SOFTMAX_STATUS_OVERFLOW: return "overflow";
    case SOFTMAX_STATUS_UNSUPPORTED: return "unsupported";
    case SOFTMAX_STATUS_IO: return "I/O error";
    case SOFTMAX_STATUS_OUT_OF_MEMORY: return "out of memory";
    case SOFTMAX_STATUS_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* softmax_available_targets(void) {
  static const std::string names = [] {
    std::string out;
    try {
      for (const std::string& t : softmax::available_targets()) {
        if (!out.empty()) out += ",";
        out += t;
      }
    } catch (...) {
      out.clear();  // out of memory: no list
    }
    return out;
  }();
  return names.c_str();
}

softmax_status_t softmax_context_create(softmax_context_t** ctx) {
  return guarded([&] {
    softmax::detail::capi::require("context_create", "ctx", ctx);
    *ctx = new softmax_context;
  });
}

void softmax_context_destroy(softmax_context_t* ctx) { delete ctx; }

softmax_status_t softmax_context_set_threads(softmax_context_t* ctx, int threads) {
  return guarded([&] {
    softmax::detail::capi::require("context_set_threads", "ctx", ctx);
    softmax::detail::check_threads("context_set_threads", threads);
    ctx->cpp.threads = threads;
  });
}

softmax_status_t softmax_context_set_parallel_for(softmax_context_t* ctx,
                                                  softmax_parallel_for_fn parallel_for,
                                                  void* pool) {
  return guarded([&] {
    softmax::detail::capi::require("context_set_parallel_for", "ctx", ctx);
    ctx->cpp.parallel_for = parallel_for;
    ctx->cpp.pool = pool;
  });
}

softmax_status_t softmax_context_set_target(softmax_context_t* ctx, const char* target) {
  return guarded([&] {
    softmax::detail::capi::require("context_set_target", "ctx", ctx);
    const std::string name = target ? target : "";
    if (!name.empty()) softmax::cpu::resolve_target("context_set_target", "target", name);
    ctx->cpp.target = name;
  });
}

softmax_status_t softmax_context_set_workspace(softmax_context_t* ctx, void* workspace,
                                               size_t bytes) {
  return guarded([&] {
    softmax::detail::capi::require("context_set_workspace", "ctx", ctx);
    ctx->cpp.workspace = workspace;
    ctx->cpp.workspace_bytes = workspace != nullptr ? bytes : 0;
  });
}

softmax_status_t softmax_context_set_cuda_stream(softmax_context_t* ctx, void* stream) {
  return guarded([&] {
    softmax::detail::capi::require("context_set_cuda_stream", "ctx", ctx);
    ctx->cpp.cuda_stream = stream;
  });
}

int softmax_device_available(softmax_device_t device) {
  if (device == SOFTMAX_DEVICE_CPU) return softmax::device_available(softmax::Device::cpu) ? 1 : 0;
  if (device == SOFTMAX_DEVICE_CUDA)
    return softmax::device_available(softmax::Device::cuda) ? 1 : 0;
  return 0;
}

}  // extern "C"
