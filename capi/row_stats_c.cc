// capi/row_stats_c.cc: C ABI of the row statistics (softmax/row_stats.hpp): softmax_stats (with
// and without refine), merge_stats, the *_from_stats ops and softmax_stats_shape. Statistics
// are plain f64 tensors (rows..., C, SOFTMAX_STATS_FIELDS), as in C++.
#include <vector>

#include "capi/capi.hpp"
#include "softmax/row_stats.hpp"

static_assert(SOFTMAX_STATS_CHUNK == softmax::kStatsChunk);
static_assert(SOFTMAX_STATS_FIELDS == softmax::kStatsFields);
static_assert(SOFTMAX_STAT_MAX == softmax::kStatMax && SOFTMAX_STAT_SUM == softmax::kStatSum &&
              SOFTMAX_STAT_LOG_MAX == softmax::kStatLogMax &&
              SOFTMAX_STAT_ONES == softmax::kStatOnes && SOFTMAX_STAT_REST == softmax::kStatRest &&
              SOFTMAX_STAT_COUNT == softmax::kStatCount &&
              SOFTMAX_STAT_FLAGS == softmax::kStatFlags &&
              SOFTMAX_STAT_TEMPERATURE == softmax::kStatTemperature &&
              SOFTMAX_STAT_FLAG_NAN == softmax::kStatFlagNaN &&
              SOFTMAX_STAT_FLAG_F64 == softmax::kStatFlagF64);

using softmax::detail::capi::context_of;
using softmax::detail::capi::guarded;
using softmax::detail::capi::to_softmax_options;
using softmax::detail::capi::to_view;

extern "C" {

softmax_status_t softmax_softmax_stats_shape(const int64_t* x_shape, int64_t rank, int64_t axis,
                                             int64_t* stats_shape) {
  const char* op = "softmax_stats_shape";
  return guarded([&] {
    if (rank < 1 || rank > SOFTMAX_MAX_RANK) {
      throw softmax::Error(softmax::ErrorKind::kInvalidArgument, op, "rank", std::to_string(rank),
                           "must be in [1, " + std::to_string(SOFTMAX_MAX_RANK) + "]");
    }
    softmax::detail::capi::require(op, "x_shape", x_shape);
    softmax::detail::capi::require(op, "stats_shape", stats_shape);
    const std::vector<int64_t> shape(x_shape, x_shape + rank);
    const std::vector<int64_t> s = softmax::softmax_stats_shape(shape, axis);
    for (std::size_t i = 0; i < s.size(); ++i) stats_shape[i] = s[i];
  });
}

softmax_status_t softmax_softmax_stats(softmax_context_t* ctx, const softmax_tensor_t* x,
                                       const softmax_tensor_t* refine,
                                       const softmax_tensor_t* stats,
                                       const softmax_options_t* options) {
  const char* op = "softmax_stats";
  return guarded([&] {
    const softmax::SoftmaxOptions o = to_softmax_options(op, options, nullptr);
    if (refine) {
      softmax::softmax_stats(to_view(op, "x", x), to_view(op, "refine", refine),
                             to_view(op, "stats", stats), o, context_of(ctx));
    } else {
      softmax::softmax_stats(to_view(op, "x", x), to_view(op, "stats", stats), o, context_of(ctx));
    }
  });
}

softmax_status_t softmax_merge_stats(softmax_context_t* ctx, const softmax_tensor_t* a,
                                     const softmax_tensor_t* b, const softmax_tensor_t* out) {
  const char* op = "merge_stats";
  return guarded([&] {
    softmax::merge_stats(to_view(op, "a", a), to_view(op, "b", b), to_view(op, "out", out),
                         context_of(ctx));
  });
}

softmax_status_t softmax_softmax_from_stats(softmax_context_t* ctx, const softmax_tensor_t* x,
                                            const softmax_tensor_t* stats,
                                            const softmax_tensor_t* y,
                                            const softmax_options_t* options) {
  const char* op = "softmax_from_stats";
  return guarded([&] {
    softmax::softmax_from_stats(to_view(op, "x", x), to_view(op, "stats", stats),
                                to_view(op, "y", y), to_softmax_options(op, options, nullptr),
                                context_of(ctx));
  });
}

softmax_status_t softmax_log_softmax_from_stats(softmax_context_t* ctx, const softmax_tensor_t* x,
                                                const softmax_tensor_t* stats,
                                                const softmax_tensor_t* y,
                                                const softmax_options_t* options) {
  const char* op = "log_softmax_from_stats";
  return guarded([&] {
    softmax::log_softmax_from_stats(to_view(op, "x", x), to_view(op, "stats", stats),
                                    to_view(op, "y", y), to_softmax_options(op, options, nullptr),
                                    context_of(ctx));
  });
}

softmax_status_t softmax_logsumexp_from_stats(softmax_context_t* ctx, const softmax_tensor_t* stats,
                                              const softmax_tensor_t* y,
                                              const softmax_options_t* options) {
  const char* op = "logsumexp_from_stats";
  return guarded([&] {
    softmax::logsumexp_from_stats(to_view(op, "stats", stats), to_view(op, "y", y),
                                  to_softmax_options(op, options, nullptr), context_of(ctx));
  });
}

}  // extern "C"
