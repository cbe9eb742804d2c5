// capi/sampling_params.hpp: softmax_sampling_params_t and softmax_logit_processors_t -> the C++
// SamplingParams and LogitProcessors (shared by capi/sampling_c.cc and capi/serving_c.cc).
#pragma once

#include "capi/capi.hpp"
#include "softmax/logit_processors.hpp"
#include "softmax/sampling.hpp"

namespace softmax::detail::capi {

// The C++ parameters of a C call. Not copyable: params.processors points into it.
struct SamplingParamsHolder {
  SamplingParamsHolder() = default;
  SamplingParamsHolder(const SamplingParamsHolder&) = delete;
  SamplingParamsHolder& operator=(const SamplingParamsHolder&) = delete;
  LogitProcessors processors;
  SamplingParams params;
};

// *in (NULL = defaults) -> out.params (threads from the context; out.params.processors =
// &out.processors when in->processors is set). Throws softmax::Error for a bad struct_size, an
// unknown method, a negative length, or streams / seeds / offsets given with per_row_length 0
// while the call's logits (B, V) hold B > 0 rows (the array would be ignored).
void to_params(const char* op, const softmax_context_t* ctx, const softmax_sampling_params_t* in,
               const softmax_tensor_t* logits, SamplingParamsHolder& out);
// *in (NULL = no processors) -> out; `arg` names the struct in messages.
void to_processors(const char* op, const char* arg, const softmax_logit_processors_t* in,
                   LogitProcessors& out);

}  // namespace softmax::detail::capi
