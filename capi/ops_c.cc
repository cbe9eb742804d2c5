// capi/ops_c.cc: C ABI of the axis ops, sigmoid, the backward passes and convert
// (softmax/ops.hpp, softmax/backward.hpp, softmax/convert.hpp).
#include "capi/capi.hpp"
#include "softmax/backward.hpp"
#include "softmax/convert.hpp"
#include "softmax/ops.hpp"
#include "src/core/axis_ops.hpp"

namespace softmax::detail::capi {
namespace {

SoftmaxOptions to_options(const char* op, const softmax_options_t* in) {
  return to_softmax_options(op, in, nullptr);  // the axis ops take threads from the Context
}

using BackwardOp = void (*)(ConstTensorView, ConstTensorView, TensorView, const SoftmaxOptions&,
                            const Context&);
using ViewOp = void (*)(ConstTensorView, TensorView, const SoftmaxOptions&, const Context&);

// argmax and hardmax: their views built for the call.
softmax_status_t view_op(ViewOp fn, const char* op, const char* out_arg,
                         const softmax_context_t* ctx, const softmax_tensor_t* x,
                         const softmax_tensor_t* y, const softmax_options_t* options) {
  return guarded([&] {
    fn(to_view(op, "x", x), to_view(op, out_arg, y), to_options(op, options), context_of(ctx));
  });
}

// The axis ops and their workspace queries run on this thread's views (capi.hpp), passed by
// reference: with a large enough context workspace such a call allocates nothing.
softmax_status_t axis_op(softmax::detail::AxisOp kind, const char* op, const char* out_arg,
                         const softmax_context_t* ctx, const softmax_tensor_t* x,
                         const softmax_tensor_t* y, const softmax_options_t* options) {
  return guarded([&] {
    ConstTensorView& xv = thread_input_view();
    TensorView& yv = thread_output_view();
    fill_view(op, "x", x, xv);
    fill_view(op, out_arg, y, yv);
    softmax::detail::run_axis_op(kind, xv, yv, to_options(op, options), context_of(ctx));
  });
}

softmax_status_t workspace_query(softmax::detail::AxisOp kind, const char* op,
                                 const softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y, const softmax_options_t* options,
                                 std::size_t* bytes) {
  return guarded([&] {
    require(op, "bytes", bytes);
    ConstTensorView& xv = thread_input_view();
    TensorView& yv = thread_output_view();
    fill_view(op, "x", x, xv);
    fill_view(op, "y", y, yv);
    *bytes = softmax::detail::axis_op_workspace_bytes(kind, xv, yv, to_options(op, options),
                                                      context_of(ctx));
  });
}

softmax_status_t backward_op(BackwardOp fn, const char* op, const softmax_context_t* ctx,
                             const softmax_tensor_t* y, const softmax_tensor_t* dy,
                             const softmax_tensor_t* dx, const softmax_options_t* options) {
  return guarded([&] {
    fn(to_view(op, "y", y), to_view(op, "dy", dy), to_view(op, "dx", dx), to_options(op, options),
       context_of(ctx));
  });
}

}  // namespace
}  // namespace softmax::detail::capi

using softmax::detail::capi::axis_op;
using softmax::detail::capi::backward_op;
using softmax::detail::capi::view_op;
using softmax::detail::capi::workspace_query;
using AxisKind = softmax::detail::AxisOp;

extern "C" {

softmax_status_t softmax_softmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y, const softmax_options_t* options) {
  return axis_op(AxisKind::kSoftmax, "softmax", "y", ctx, x, y, options);
}

softmax_status_t softmax_softmax_workspace_bytes(softmax_context_t* ctx, const softmax_tensor_t* x,
                                                 const softmax_tensor_t* y,
                                                 const softmax_options_t* options, size_t* bytes) {
  return workspace_query(AxisKind::kSoftmax, "softmax_workspace_bytes", ctx, x, y, options, bytes);
}

softmax_status_t softmax_log_softmax_workspace_bytes(softmax_context_t* ctx,
                                                     const softmax_tensor_t* x,
                                                     const softmax_tensor_t* y,
                                                     const softmax_options_t* options,
                                                     size_t* bytes) {
  return workspace_query(AxisKind::kLogSoftmax, "log_softmax_workspace_bytes", ctx, x, y, options,
                         bytes);
}

softmax_status_t softmax_logsumexp_workspace_bytes(softmax_context_t* ctx,
                                                   const softmax_tensor_t* x,
                                                   const softmax_tensor_t* y,
                                                   const softmax_options_t* options,
                                                   size_t* bytes) {
  return workspace_query(AxisKind::kLogSumExp, "logsumexp_workspace_bytes", ctx, x, y, options,
                         bytes);
}

softmax_status_t softmax_log_softmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                     const softmax_tensor_t* y, const softmax_options_t* options) {
  return axis_op(AxisKind::kLogSoftmax, "log_softmax", "y", ctx, x, y, options);
}

softmax_status_t softmax_logsumexp(softmax_context_t* ctx, const softmax_tensor_t* x,
                                   const softmax_tensor_t* y, const softmax_options_t* options) {
  return axis_op(AxisKind::kLogSumExp, "logsumexp", "y", ctx, x, y, options);
}

softmax_status_t softmax_argmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                const softmax_tensor_t* indices, const softmax_options_t* options) {
  return view_op(softmax::argmax, "argmax", "indices", ctx, x, indices, options);
}

softmax_status_t softmax_hardmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y, const softmax_options_t* options) {
  return view_op(softmax::hardmax, "hardmax", "y", ctx, x, y, options);
}

softmax_status_t softmax_sigmoid(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y) {
  using softmax::detail::capi::to_view;
  return softmax::detail::capi::guarded([&] {
    softmax::sigmoid(to_view("sigmoid", "x", x), to_view("sigmoid", "y", y), {},
                     softmax::detail::capi::context_of(ctx));
  });
}

softmax_status_t softmax_softmax_backward(softmax_context_t* ctx, const softmax_tensor_t* y,
                                          const softmax_tensor_t* dy, const softmax_tensor_t* dx,
                                          const softmax_options_t* options) {
  return backward_op(softmax::softmax_backward, "softmax_backward", ctx, y, dy, dx, options);
}

softmax_status_t softmax_log_softmax_backward(softmax_context_t* ctx, const softmax_tensor_t* y,
                                              const softmax_tensor_t* dy,
                                              const softmax_tensor_t* dx,
                                              const softmax_options_t* options) {
  return backward_op(softmax::log_softmax_backward, "log_softmax_backward", ctx, y, dy, dx,
                     options);
}

softmax_status_t softmax_convert(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y) {
  using softmax::detail::capi::to_view;
  return softmax::detail::capi::guarded([&] {
    softmax::convert(to_view("convert", "x", x), to_view("convert", "y", y),
                     softmax::detail::capi::context_of(ctx));
  });
}

}  // extern "C"
