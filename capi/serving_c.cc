// capi/serving_c.cc: C ABI of the serving ops (issue 16): apply_penalties
// (softmax/logit_processors.hpp), filtered_probs, token_logprobs, sample_without_replacement
// (softmax/sampling.hpp), speculative_verify (softmax/speculative.hpp) and beam_search_step
// (softmax/beam_search.hpp).
#include <span>

#include "capi/capi.hpp"
#include "capi/sampling_params.hpp"
#include "softmax/beam_search.hpp"
#include "softmax/logit_processors.hpp"
#include "softmax/sampling.hpp"
#include "softmax/speculative.hpp"

namespace softmax::detail::capi {
namespace {

LogprobsMode to_mode(const char* op, int64_t mode) {
  if (mode != SOFTMAX_LOGPROBS_RAW && mode != SOFTMAX_LOGPROBS_PROCESSED) {
    throw Error(ErrorKind::kInvalidArgument, op, "mode", std::to_string(mode),
                "must be a softmax_logprobs_mode_t (0 = raw, 1 = processed)");
  }
  return static_cast<LogprobsMode>(mode);
}

}  // namespace
}  // namespace softmax::detail::capi

using softmax::detail::capi::guarded;
using softmax::detail::capi::SamplingParamsHolder;
using softmax::detail::capi::threads_of;
using softmax::detail::capi::to_params;
using softmax::detail::capi::to_view;

extern "C" {

softmax_status_t softmax_apply_penalties(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                         const softmax_tensor_t* out,
                                         const softmax_logit_processors_t* processors) {
  const char* op = "apply_penalties";
  return guarded([&] {
    softmax::LogitProcessors p;
    softmax::detail::capi::to_processors(op, "processors", processors, p);
    softmax::apply_penalties(to_view(op, "logits", logits), to_view(op, "out", out), p,
                             threads_of(ctx));
  });
}

softmax_status_t softmax_filtered_probs(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                        const softmax_tensor_t* probs,
                                        const softmax_sampling_params_t* params) {
  const char* op = "filtered_probs";
  return guarded([&] {
    SamplingParamsHolder p;
    to_params(op, ctx, params, logits, p);
    softmax::filtered_probs(to_view(op, "logits", logits), to_view(op, "probs", probs), p.params);
  });
}

softmax_status_t softmax_token_logprobs(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                        const softmax_tensor_t* tokens,
                                        const softmax_tensor_t* logprobs,
                                        const softmax_sampling_params_t* params, int64_t mode) {
  const char* op = "token_logprobs";
  return guarded([&] {
    SamplingParamsHolder p;
    to_params(op, ctx, params, logits, p);
    softmax::token_logprobs(to_view(op, "logits", logits), to_view(op, "tokens", tokens),
                            to_view(op, "logprobs", logprobs), p.params,
                            softmax::detail::capi::to_mode(op, mode));
  });
}

softmax_status_t softmax_sample_without_replacement(softmax_context_t* ctx,
                                                    const softmax_tensor_t* logits,
                                                    const softmax_tensor_t* tokens,
                                                    const softmax_sampling_params_t* params,
                                                    uint64_t seed, uint64_t offset) {
  const char* op = "sample_without_replacement";
  return guarded([&] {
    SamplingParamsHolder p;
    to_params(op, ctx, params, logits, p);
    softmax::sample_without_replacement(to_view(op, "logits", logits),
                                        to_view(op, "tokens", tokens), p.params, seed, offset);
  });
}

softmax_status_t softmax_speculative_verify(
    softmax_context_t* ctx, const softmax_tensor_t* draft_tokens,
    const softmax_tensor_t* draft_probs, const softmax_tensor_t* target_probs,
    const softmax_tensor_t* num_accepted, const softmax_tensor_t* tokens, uint64_t seed,
    uint64_t offset, const uint64_t* streams, int64_t streams_count) {
  const char* op = "speculative_verify";
  return guarded([&] {
    const std::span<const uint64_t> s =
        softmax::detail::capi::to_span(op, "streams", "streams_count", streams, streams_count);
    softmax::detail::capi::check_given_length(op, "streams_count", streams_count,
                                              softmax::detail::capi::rows_of(draft_tokens),
                                              "streams", streams);
    softmax::speculative_verify(
        to_view(op, "draft_tokens", draft_tokens), to_view(op, "draft_probs", draft_probs),
        to_view(op, "target_probs", target_probs), to_view(op, "num_accepted", num_accepted),
        to_view(op, "tokens", tokens), seed, offset, s, threads_of(ctx));
  });
}

softmax_status_t softmax_beam_search_step(softmax_context_t* ctx, const softmax_tensor_t* log_probs,
                                          const softmax_tensor_t* beam_scores, int64_t beam_width,
                                          const softmax_tensor_t* beam_indices,
                                          const softmax_tensor_t* tokens,
                                          const softmax_tensor_t* scores) {
  (void)ctx;  // beam_search_step runs on the calling thread
  const char* op = "beam_search_step";
  return guarded([&] {
    softmax::beam_search_step(to_view(op, "log_probs", log_probs),
                              to_view(op, "beam_scores", beam_scores), beam_width,
                              to_view(op, "beam_indices", beam_indices),
                              to_view(op, "tokens", tokens), to_view(op, "scores", scores));
  });
}

softmax_status_t softmax_top_logprobs_mode(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                           int64_t n, const softmax_sampling_params_t* params,
                                           int64_t mode, const softmax_tensor_t* ids,
                                           const softmax_tensor_t* logprobs) {
  const char* op = "top_logprobs";
  using namespace softmax::detail::capi;
  return guarded([&] {
    const softmax::ConstTensorView x = to_view(op, "logits", logits);
    const softmax::TensorView ids_view = to_view(op, "ids", ids);
    const softmax::TensorView lp_view = to_view(op, "logprobs", logprobs);
    SamplingParamsHolder p;
    to_params(op, ctx, params, logits, p);
    const softmax::TopLogprobs res = softmax::top_logprobs(x, n, p.params, to_mode(op, mode));
    check_result_output(op, "ids", ids_view, softmax::DType::i64, {res.rows, res.n});
    check_result_output(op, "logprobs", lp_view, softmax::DType::f64, {res.rows, res.n});
    check_disjoint(op, {{"ids", &ids_view}, {"logprobs", &lp_view}}, {{"logits", x}});
    store(ids_view, res.ids.data());
    store(lp_view, res.logprobs.data());
  });
}

}  // extern "C"
