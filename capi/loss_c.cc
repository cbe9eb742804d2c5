// capi/loss_c.cc: C ABI of cross_entropy, nll_loss and linear_cross_entropy
// (softmax/cross_entropy.hpp).
#include "capi/capi.hpp"
#include "softmax/cross_entropy.hpp"

namespace softmax::detail::capi {
namespace {

CrossEntropyOptions to_options(const char* op, const softmax_cross_entropy_options_t* in) {
  const CrossEntropyOptions d;
  const softmax_cross_entropy_options_t defaults{sizeof(softmax_cross_entropy_options_t),
                                                 nullptr,
                                                 d.ignore_index,
                                                 static_cast<int64_t>(d.reduction),
                                                 d.label_smoothing,
                                                 d.z_loss,
                                                 d.normalizer,
                                                 d.grad_scale,
                                                 nullptr,
                                                 d.vocab_chunk};
  const softmax_cross_entropy_options_t c = read_struct(op, "options", in, defaults);
  if (c.reduction < SOFTMAX_REDUCTION_NONE || c.reduction > SOFTMAX_REDUCTION_MEAN) {
    throw Error(ErrorKind::kInvalidArgument, op, "options.reduction", std::to_string(c.reduction),
                "must be a softmax_reduction_t (0 = none, 1 = sum, 2 = mean)");
  }
  CrossEntropyOptions o;
  if (auto w = to_optional_view(op, "options.weight", c.weight)) o.weight = *w;
  o.ignore_index = c.ignore_index;
  o.reduction = static_cast<Reduction>(c.reduction);
  o.label_smoothing = c.label_smoothing;
  o.z_loss = c.z_loss;
  o.normalizer = c.normalizer;
  o.grad_scale = c.grad_scale;
  if (auto g = to_optional_view(op, "options.grad_output", c.grad_output)) o.grad_output = *g;
  o.vocab_chunk = c.vocab_chunk;
  return o;
}

}  // namespace
}  // namespace softmax::detail::capi

using softmax::detail::capi::guarded;
using softmax::detail::capi::to_optional_view;
using softmax::detail::capi::to_options;
using softmax::detail::capi::to_view;

extern "C" {

softmax_status_t softmax_cross_entropy(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                       const softmax_tensor_t* targets,
                                       const softmax_tensor_t* loss, const softmax_tensor_t* grad,
                                       const softmax_tensor_t* lse,
                                       const softmax_tensor_t* log_probs,
                                       const softmax_cross_entropy_options_t* options) {
  const char* op = "cross_entropy";
  return guarded([&] {
    softmax::CrossEntropyOutputs out;
    out.loss = to_view(op, "loss", loss);
    out.grad = to_optional_view(op, "grad", grad);
    out.lse = to_optional_view(op, "lse", lse);
    out.log_probs = to_optional_view(op, "log_probs", log_probs);
    softmax::cross_entropy(to_view(op, "logits", logits), to_view(op, "targets", targets), out,
                           to_options(op, options), softmax::detail::capi::context_of(ctx));
  });
}

softmax_status_t softmax_nll_loss(softmax_context_t* ctx, const softmax_tensor_t* log_probs,
                                  const softmax_tensor_t* targets, const softmax_tensor_t* loss,
                                  const softmax_tensor_t* grad,
                                  const softmax_cross_entropy_options_t* options) {
  const char* op = "nll_loss";
  return guarded([&] {
    softmax::CrossEntropyOutputs out;
    out.loss = to_view(op, "loss", loss);
    out.grad = to_optional_view(op, "grad", grad);
    softmax::nll_loss(to_view(op, "log_probs", log_probs), to_view(op, "targets", targets), out,
                      to_options(op, options), softmax::detail::capi::context_of(ctx));
  });
}

softmax_status_t softmax_linear_cross_entropy(
    softmax_context_t* ctx, const softmax_tensor_t* hidden, const softmax_tensor_t* weight,
    const softmax_tensor_t* targets, const softmax_tensor_t* loss,
    const softmax_tensor_t* grad_hidden, const softmax_tensor_t* grad_weight,
    const softmax_tensor_t* lse, const softmax_cross_entropy_options_t* options) {
  const char* op = "linear_cross_entropy";
  return guarded([&] {
    softmax::LinearCrossEntropyOutputs out;
    out.loss = to_view(op, "loss", loss);
    out.grad_hidden = to_optional_view(op, "grad_hidden", grad_hidden);
    out.grad_weight = to_optional_view(op, "grad_weight", grad_weight);
    out.lse = to_optional_view(op, "lse", lse);
    softmax::linear_cross_entropy(to_view(op, "hidden", hidden), to_view(op, "weight", weight),
                                  to_view(op, "targets", targets), out, to_options(op, options),
                                  softmax::detail::capi::context_of(ctx));
  });
}

softmax_status_t softmax_linear_cross_entropy_workspace_bytes(
    int64_t n, int64_t d, int64_t v, const softmax_cross_entropy_options_t* options,
    int64_t* bytes) {
  const char* op = "linear_cross_entropy_workspace_bytes";
  return guarded([&] {
    softmax::detail::capi::require(op, "bytes", bytes);
    *bytes = softmax::linear_cross_entropy_workspace_bytes(n, d, v, to_options(op, options));
  });
}

}  // extern "C"
