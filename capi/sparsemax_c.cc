// capi/sparsemax_c.cc: C ABI of the softmax alternatives of docs/ops/sparsemax.md: sparsemax and
// its backward (softmax/sparsemax.hpp), gumbel_softmax and its backward
// (softmax/gumbel_softmax.hpp).
#include "capi/capi.hpp"
#include "softmax/gumbel_softmax.hpp"
#include "softmax/sparsemax.hpp"

namespace softmax::detail::capi {
namespace {

GumbelSoftmaxOptions to_gumbel_options(const char* op, const softmax_gumbel_softmax_options_t* in,
                                       const softmax_context_t* ctx) {
  const GumbelSoftmaxOptions d;
  const softmax_gumbel_softmax_options_t defaults{sizeof(softmax_gumbel_softmax_options_t), d.axis,
                                                  d.tau, d.hard ? 1 : 0};
  const softmax_gumbel_softmax_options_t c = read_struct(op, "options", in, defaults);
  GumbelSoftmaxOptions o;
  o.axis = c.axis;
  o.tau = c.tau;
  o.hard = c.hard != 0;
  o.threads = threads_of(ctx);
  return o;
}

}  // namespace
}  // namespace softmax::detail::capi

using softmax::detail::capi::guarded;
using softmax::detail::capi::to_gumbel_options;
using softmax::detail::capi::to_softmax_options;
using softmax::detail::capi::to_view;

extern "C" {

softmax_status_t softmax_sparsemax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                   const softmax_tensor_t* y, const softmax_options_t* options) {
  const char* op = "sparsemax";
  return guarded([&] {
    softmax::sparsemax(to_view(op, "x", x), to_view(op, "y", y),
                       to_softmax_options(op, options, ctx));
  });
}

softmax_status_t softmax_sparsemax_backward(softmax_context_t* ctx, const softmax_tensor_t* y,
                                            const softmax_tensor_t* dy, const softmax_tensor_t* dx,
                                            const softmax_options_t* options) {
  const char* op = "sparsemax_backward";
  return guarded([&] {
    softmax::sparsemax_backward(to_view(op, "y", y), to_view(op, "dy", dy), to_view(op, "dx", dx),
                                to_softmax_options(op, options, ctx));
  });
}

softmax_status_t softmax_gumbel_softmax(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                        const softmax_tensor_t* y,
                                        const softmax_gumbel_softmax_options_t* options,
                                        uint64_t seed, uint64_t offset) {
  const char* op = "gumbel_softmax";
  return guarded([&] {
    softmax::gumbel_softmax(to_view(op, "logits", logits), to_view(op, "y", y),
                            to_gumbel_options(op, options, ctx), seed, offset);
  });
}

softmax_status_t softmax_gumbel_softmax_backward(softmax_context_t* ctx,
                                                 const softmax_tensor_t* logits,
                                                 const softmax_tensor_t* dy,
                                                 const softmax_tensor_t* dx,
                                                 const softmax_gumbel_softmax_options_t* options,
                                                 uint64_t seed, uint64_t offset) {
  const char* op = "gumbel_softmax_backward";
  return guarded([&] {
    softmax::gumbel_softmax_backward(to_view(op, "logits", logits), to_view(op, "dy", dy),
                                     to_view(op, "dx", dx), to_gumbel_options(op, options, ctx),
                                     seed, offset);
  });
}

}  // extern "C"
