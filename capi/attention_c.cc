// capi/attention_c.cc: C ABI of masked_softmax (forward and backward) and attention (forward and
// backward) (softmax/attention.hpp).
#include "capi/capi.hpp"
#include "softmax/attention.hpp"

namespace softmax::detail::capi {
namespace {

// `lead`: the tensor whose dim rank - 3 is the head axis H (scores, dy or q), named `lead_arg`.
MaskOptions to_options(const char* op, const softmax_mask_options_t* in,
                       const softmax_tensor_t* lead, const char* lead_arg) {
  const MaskOptions d;
  const softmax_mask_options_t defaults{sizeof(softmax_mask_options_t),
                                        nullptr,
                                        d.softcap,
                                        d.causal ? 1 : 0,
                                        static_cast<int64_t>(d.align),
                                        d.window_left,
                                        d.window_right,
                                        nullptr,
                                        0,
                                        nullptr,
                                        nullptr};
  const softmax_mask_options_t c = read_struct(op, "options", in, defaults);
  if (c.align != SOFTMAX_ALIGN_TOP_LEFT && c.align != SOFTMAX_ALIGN_BOTTOM_RIGHT) {
    throw Error(ErrorKind::kInvalidArgument, op, "options.align", std::to_string(c.align),
                "must be a softmax_align_t (0 = top left, 1 = bottom right)");
  }
  if (c.alibi_slopes ? c.alibi_slopes_count <= 0 : c.alibi_slopes_count != 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "options.alibi_slopes_count",
                std::to_string(c.alibi_slopes_count),
                c.alibi_slopes ? "must be the number of heads H (> 0) when alibi_slopes is set"
                               : "must be 0 when alibi_slopes is NULL (ALiBi off)");
  }
  if (c.alibi_slopes) {
    // The slopes are copied: their count must be the heads before anything is read.
    if (lead == nullptr || lead->shape == nullptr || lead->rank < 3 ||
        lead->rank > SOFTMAX_MAX_RANK) {
      throw Error(
          ErrorKind::kShapeMismatch, op, "options.alibi_slopes",
          std::to_string(c.alibi_slopes_count) + " slopes",
          std::string("ALiBi needs a head axis: ") + lead_arg + " of rank >= 3 (..., H, Sq, ...)");
    }
    const int64_t h = lead->shape[lead->rank - 3];
    if (c.alibi_slopes_count != h) {
      throw Error(ErrorKind::kShapeMismatch, op, "options.alibi_slopes_count",
                  std::to_string(c.alibi_slopes_count),
                  "must have one slope per head (" + std::to_string(h) + ", " + lead_arg +
                      ".shape[rank - 3])");
    }
  }
  MaskOptions o;
  if (c.scale) o.scale = *c.scale;
  o.softcap = c.softcap;
  o.causal = c.causal != 0;
  o.align = static_cast<Align>(c.align);
  o.window_left = c.window_left;
  o.window_right = c.window_right;
  if (c.alibi_slopes) o.alibi_slopes.assign(c.alibi_slopes, c.alibi_slopes + c.alibi_slopes_count);
  if (c.bias) o.bias = to_view(op, "options.bias", c.bias);
  if (c.mask) o.mask = to_view(op, "options.mask", c.mask);
  return o;
}

}  // namespace
}  // namespace softmax::detail::capi

using softmax::detail::capi::guarded;
using softmax::detail::capi::to_options;
using softmax::detail::capi::to_view;

extern "C" {

softmax_status_t softmax_masked_softmax(softmax_context_t* ctx, const softmax_tensor_t* scores,
                                        const softmax_tensor_t* y, const softmax_tensor_t* lse,
                                        const softmax_mask_options_t* options) {
  const char* op = "masked_softmax";
  return guarded([&] {
    const softmax::MaskOptions o = to_options(op, options, scores, "scores");
    if (lse) {
      softmax::masked_softmax(to_view(op, "scores", scores), to_view(op, "y", y),
                              to_view(op, "lse", lse), o, softmax::detail::capi::context_of(ctx));
    } else {
      softmax::masked_softmax(to_view(op, "scores", scores), to_view(op, "y", y), o,
                              softmax::detail::capi::context_of(ctx));
    }
  });
}

softmax_status_t softmax_masked_softmax_backward(softmax_context_t* ctx, const softmax_tensor_t* dy,
                                                 const softmax_tensor_t* y,
                                                 const softmax_tensor_t* scores,
                                                 const softmax_tensor_t* dscores,
                                                 const softmax_mask_options_t* options) {
  const char* op = "masked_softmax_backward";
  return guarded([&] {
    const softmax::ConstTensorView s = scores
                                           ? softmax::ConstTensorView(to_view(op, "scores", scores))
                                           : softmax::ConstTensorView();
    softmax::masked_softmax_backward(
        to_view(op, "dy", dy), to_view(op, "y", y), s, to_view(op, "dscores", dscores),
        to_options(op, options, dy, "dy"), softmax::detail::capi::context_of(ctx));
  });
}

softmax_status_t softmax_attention(softmax_context_t* ctx, const softmax_tensor_t* q,
                                   const softmax_tensor_t* k, const softmax_tensor_t* v,
                                   const softmax_tensor_t* out, const softmax_tensor_t* lse,
                                   const softmax_mask_options_t* options) {
  const char* op = "attention";
  return guarded([&] {
    const softmax::MaskOptions o = to_options(op, options, q, "q");
    if (lse) {
      softmax::attention(to_view(op, "q", q), to_view(op, "k", k), to_view(op, "v", v),
                         to_view(op, "out", out), to_view(op, "lse", lse), o,
                         softmax::detail::capi::context_of(ctx));
    } else {
      softmax::attention(to_view(op, "q", q), to_view(op, "k", k), to_view(op, "v", v),
                         to_view(op, "out", out), o, softmax::detail::capi::context_of(ctx));
    }
  });
}

softmax_status_t softmax_attention_backward(
    softmax_context_t* ctx, const softmax_tensor_t* q, const softmax_tensor_t* k,
    const softmax_tensor_t* v, const softmax_tensor_t* out, const softmax_tensor_t* lse,
    const softmax_tensor_t* dout, const softmax_tensor_t* dq, const softmax_tensor_t* dk,
    const softmax_tensor_t* dv, const softmax_mask_options_t* options) {
  const char* op = "attention_backward";
  return guarded([&] {
    softmax::MaskOptions o = to_options(op, options, q, "q");
    o.threads = softmax::detail::capi::threads_of(ctx);  // it takes no Context: threads only
    softmax::attention_backward(to_view(op, "q", q), to_view(op, "k", k), to_view(op, "v", v),
                                to_view(op, "out", out), to_view(op, "lse", lse),
                                to_view(op, "dout", dout), to_view(op, "dq", dq),
                                to_view(op, "dk", dk), to_view(op, "dv", dv), o);
  });
}

}  // extern "C"
