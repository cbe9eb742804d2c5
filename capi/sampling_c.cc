// capi/sampling_c.cc: C ABI of sample, sample_from_probs and top_logprobs
// (softmax/sampling.hpp), and the conversion of the C sampling parameters and logit processors.
#include <span>
#include <string>
#include <vector>

#include "capi/capi.hpp"
#include "capi/sampling_params.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"

namespace softmax::detail::capi {
namespace {

template <class T>
PerRow<T> per_row(T value, const T* values, int64_t length) {
  if (values == nullptr) return PerRow<T>(value);
  return PerRow<T>(std::span<const T>(values, static_cast<std::size_t>(length)));
}

void check_length(const char* op, const char* arg, int64_t length, bool any_array) {
  if (any_array && length < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, std::to_string(length),
                "must be >= 0 (the batch size B)");
  }
}

// A CSR token list of the C struct: ids (count), offsets (offsets_count).
TokenLists token_lists(const char* op, const std::string& arg, const int64_t* ids, int64_t count,
                       const int64_t* offsets, int64_t offsets_count) {
  TokenLists t;
  t.ids = to_span(op, arg.c_str(), (arg + "_count").c_str(), ids, count);
  t.offsets = to_span(op, (arg + "_offsets").c_str(), (arg + "_offsets_count").c_str(), offsets,
                      offsets_count);
  return t;
}

}  // namespace

void to_processors(const char* op, const char* arg, const softmax_logit_processors_t* in,
                   LogitProcessors& out) {
  out = LogitProcessors();
  if (in == nullptr) return;
  const LogitProcessors d;
  softmax_logit_processors_t defaults{};
  defaults.struct_size = sizeof(softmax_logit_processors_t);
  defaults.repetition_penalty = d.repetition_penalty[0];
  defaults.presence_penalty = d.presence_penalty[0];
  defaults.frequency_penalty = d.frequency_penalty[0];
  defaults.min_tokens = d.min_tokens[0];
  defaults.num_generated = d.num_generated[0];
  const softmax_logit_processors_t c = read_struct(op, arg, in, defaults);
  const std::string a(arg);
  const bool any_array = c.repetition_penalty_per_row || c.presence_penalty_per_row ||
                         c.frequency_penalty_per_row || c.min_tokens_per_row ||
                         c.num_generated_per_row;
  check_length(op, (a + ".per_row_length").c_str(), c.per_row_length, any_array);
  out.prev_tokens = token_lists(op, a + ".prev_tokens", c.prev_tokens, c.prev_tokens_count,
                                c.prev_tokens_offsets, c.prev_tokens_offsets_count);
  out.repetition_penalty =
      per_row(c.repetition_penalty, c.repetition_penalty_per_row, c.per_row_length);
  out.presence_penalty = per_row(c.presence_penalty, c.presence_penalty_per_row, c.per_row_length);
  out.frequency_penalty =
      per_row(c.frequency_penalty, c.frequency_penalty_per_row, c.per_row_length);
  out.logit_bias = token_lists(op, a + ".logit_bias", c.logit_bias_ids, c.logit_bias_count,
                               c.logit_bias_offsets, c.logit_bias_offsets_count);
  out.logit_bias_values =
      to_span(op, (a + ".logit_bias_values").c_str(), (a + ".logit_bias_count").c_str(),
              c.logit_bias_values, c.logit_bias_count);
  out.banned_tokens = token_lists(op, a + ".banned_tokens", c.banned_tokens, c.banned_tokens_count,
                                  c.banned_tokens_offsets, c.banned_tokens_offsets_count);
  out.eos_token_ids =
      to_span(op, (a + ".eos_token_ids").c_str(), (a + ".eos_token_ids_count").c_str(),
              c.eos_token_ids, c.eos_token_ids_count);
  out.min_tokens = per_row(c.min_tokens, c.min_tokens_per_row, c.per_row_length);
  out.num_generated = per_row(c.num_generated, c.num_generated_per_row, c.per_row_length);
}

void to_params(const char* op, const softmax_context_t* ctx, const softmax_sampling_params_t* in,
               const softmax_tensor_t* logits, SamplingParamsHolder& out) {
  const SamplingParams d;
  softmax_sampling_params_t defaults{};
  defaults.struct_size = sizeof(softmax_sampling_params_t);
  defaults.temperature = d.temperature[0];
  defaults.top_k = d.top_k[0];
  defaults.top_p = d.top_p[0];
  defaults.min_p = d.min_p[0];
  defaults.method = static_cast<int64_t>(d.method);
  const softmax_sampling_params_t c = read_struct(op, "params", in, defaults);
  if (c.method != SOFTMAX_SAMPLING_INVERSE_CDF && c.method != SOFTMAX_SAMPLING_GUMBEL_MAX) {
    throw Error(ErrorKind::kInvalidArgument, op, "params.method", std::to_string(c.method),
                "must be a softmax_sampling_method_t (0 = inverse CDF, 1 = Gumbel-max)");
  }
  const bool any_array = c.temperature_per_row || c.top_k_per_row || c.top_p_per_row ||
                         c.min_p_per_row || c.streams || c.seeds || c.offsets;
  check_length(op, "params.per_row_length", c.per_row_length, any_array);
  const int64_t rows = rows_of(logits);
  check_given_length(op, "params.per_row_length", c.per_row_length, rows, "params.streams",
                     c.streams);
  check_given_length(op, "params.per_row_length", c.per_row_length, rows, "params.seeds", c.seeds);
  check_given_length(op, "params.per_row_length", c.per_row_length, rows, "params.offsets",
                     c.offsets);
  SamplingParams& p = out.params;
  p = SamplingParams();
  p.temperature = per_row(c.temperature, c.temperature_per_row, c.per_row_length);
  p.top_k = per_row(c.top_k, c.top_k_per_row, c.per_row_length);
  p.top_p = per_row(c.top_p, c.top_p_per_row, c.per_row_length);
  p.min_p = per_row(c.min_p, c.min_p_per_row, c.per_row_length);
  p.method = static_cast<SamplingMethod>(c.method);
  const auto length = static_cast<std::size_t>(c.per_row_length);
  if (c.streams) p.streams = std::span<const uint64_t>(c.streams, length);
  if (c.seeds) p.seeds = std::span<const uint64_t>(c.seeds, length);
  if (c.offsets) p.offsets = std::span<const uint64_t>(c.offsets, length);
  p.threads = threads_of(ctx);
  if (c.processors) {
    to_processors(op, "params.processors", c.processors, out.processors);
    p.processors = &out.processors;
  }
}

namespace {

using SampleOp = void (*)(ConstTensorView, TensorView, const SamplingParams&, uint64_t, uint64_t);

softmax_status_t sample_op(SampleOp fn, const char* op, const char* in_arg,
                           const softmax_context_t* ctx, const softmax_tensor_t* x,
                           const softmax_tensor_t* tokens, const softmax_sampling_params_t* params,
                           uint64_t seed, uint64_t offset) {
  return guarded([&] {
    SamplingParamsHolder p;
    to_params(op, ctx, params, x, p);
    fn(to_view(op, in_arg, x), to_view(op, "tokens", tokens), p.params, seed, offset);
  });
}

// Checks an output of top_logprobs: dtype `dtype`, shape (rows, n), no overlap with logits.
void check_top_output(const char* op, const char* arg, const TensorView& out, DType dtype,
                      const TopLogprobs& res, const ConstTensorView& logits) {
  if (out.dtype != dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(out.dtype),
                std::string("must be ") + dtype_name(dtype));
  }
  detail::check_same_shape(op, arg, {res.rows, res.n}, out.shape);
  detail::check_output_view(op, arg, out);
  detail::check_no_overlap(op, logits, out, false, arg, "logits");
}

template <class T>
void store_rows(const TensorView& out, const std::vector<T>& values, int64_t rows, int64_t n) {
  T* base = static_cast<T*>(out.data);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j)
      base[r * out.strides[0] + j * out.strides[1]] = values[r * n + j];
  }
}

}  // namespace
}  // namespace softmax::detail::capi

using softmax::detail::capi::sample_op;

extern "C" {

softmax_status_t softmax_sample(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                const softmax_tensor_t* tokens,
                                const softmax_sampling_params_t* params, uint64_t seed,
                                uint64_t offset) {
  return sample_op(softmax::sample, "sample", "logits", ctx, logits, tokens, params, seed, offset);
}

softmax_status_t softmax_sample_from_probs(softmax_context_t* ctx, const softmax_tensor_t* probs,
                                           const softmax_tensor_t* tokens,
                                           const softmax_sampling_params_t* params, uint64_t seed,
                                           uint64_t offset) {
  return sample_op(softmax::sample_from_probs, "sample_from_probs", "probs", ctx, probs, tokens,
                   params, seed, offset);
}

softmax_status_t softmax_top_logprobs(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                      int64_t n, double temperature, const softmax_tensor_t* ids,
                                      const softmax_tensor_t* logprobs) {
  using namespace softmax::detail::capi;
  const char* op = "top_logprobs";
  return guarded([&] {
    const softmax::ConstTensorView x = to_view(op, "logits", logits);
    const softmax::TensorView ids_view = to_view(op, "ids", ids);
    const softmax::TensorView lp_view = to_view(op, "logprobs", logprobs);
    const softmax::TopLogprobs res = softmax::top_logprobs(x, n, temperature, threads_of(ctx));
    check_top_output(op, "ids", ids_view, softmax::DType::i64, res, x);
    check_top_output(op, "logprobs", lp_view, softmax::DType::f64, res, x);
    softmax::detail::check_no_overlap(op, ids_view, lp_view, false, "logprobs", "ids");
    store_rows(ids_view, res.ids, res.rows, res.n);
    store_rows(lp_view, res.logprobs, res.rows, res.n);
  });
}

}  // extern "C"
