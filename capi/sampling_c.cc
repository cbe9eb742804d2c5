// capi/sampling_c.cc: C ABI of sample, sample_from_probs and top_logprobs
// (softmax/sampling.hpp).
#include <span>
#include <vector>

#include "capi/capi.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"

namespace softmax::detail::capi {
namespace {

template <class T>
PerRow<T> per_row(T value, const T* values, int64_t length) {
  if (values == nullptr) return PerRow<T>(value);
  return PerRow<T>(std::span<const T>(values, static_cast<std::size_t>(length)));
}

SamplingParams to_params(const char* op, const softmax_context_t* ctx,
                         const softmax_sampling_params_t* in) {
  const SamplingParams d;
  const softmax_sampling_params_t defaults{sizeof(softmax_sampling_params_t),
                                           d.temperature[0],
                                           d.top_k[0],
                                           d.top_p[0],
                                           d.min_p[0],
                                           static_cast<int64_t>(d.method),
                                           0,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr};
  const softmax_sampling_params_t c = read_struct(op, "params", in, defaults);
  if (c.method != SOFTMAX_SAMPLING_INVERSE_CDF && c.method != SOFTMAX_SAMPLING_GUMBEL_MAX) {
    throw Error(ErrorKind::kInvalidArgument, op, "params.method", std::to_string(c.method),
                "must be a softmax_sampling_method_t (0 = inverse CDF, 1 = Gumbel-max)");
  }
  const bool any_array =
      c.temperature_per_row || c.top_k_per_row || c.top_p_per_row || c.min_p_per_row || c.streams;
  if (any_array && c.per_row_length < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "params.per_row_length",
                std::to_string(c.per_row_length), "must be >= 0 (the batch size B)");
  }
  SamplingParams p;
  p.temperature = per_row(c.temperature, c.temperature_per_row, c.per_row_length);
  p.top_k = per_row(c.top_k, c.top_k_per_row, c.per_row_length);
  p.top_p = per_row(c.top_p, c.top_p_per_row, c.per_row_length);
  p.min_p = per_row(c.min_p, c.min_p_per_row, c.per_row_length);
  p.method = static_cast<SamplingMethod>(c.method);
  if (c.streams) p.streams = std::span<const uint64_t>(c.streams, c.per_row_length);
  p.threads = threads_of(ctx);
  return p;
}

using SampleOp = void (*)(ConstTensorView, TensorView, const SamplingParams&, uint64_t, uint64_t);

softmax_status_t sample_op(SampleOp fn, const char* op, const char* in_arg,
                           const softmax_context_t* ctx, const softmax_tensor_t* x,
                           const softmax_tensor_t* tokens, const softmax_sampling_params_t* params,
                           uint64_t seed, uint64_t offset) {
  return guarded([&] {
    fn(to_view(op, in_arg, x), to_view(op, "tokens", tokens), to_params(op, ctx, params), seed,
       offset);
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
