// src/core/sampling_outputs.cc: the processed outputs of sampling (softmax/sampling.hpp):
// filtered_probs, token_logprobs and the processed top_logprobs. Each prepares its rows as
// sample does (src/core/sampling_rows.hpp) and reads the exact kept set of the filter engine.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"
#include "src/core/sampling_rows.hpp"

namespace softmax {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

using detail::PreparedRow;
using detail::RowError;
using detail::RowScratch;

// The kept set of a prepared (non-greedy) row: ids ascending, masses, their sum.
struct Kept {
  const std::vector<uint32_t>* ids;
  const std::vector<uint64_t>* q;
  double mass;
};

Kept filter_row(const PreparedRow& pr, RowScratch& s, const SamplingParams& p, int64_t r,
                int64_t n) {
  if (pr.f64) {
    s.fd.filter(pr.wd, n, pr.wd_max, detail::filter_spec(p, r));
    return {&s.fd.kept_ids, &s.fd.kept_q, static_cast<double>(s.fd.kept_mass)};
  }
  s.ff.filter(pr.wf, n, pr.wf_max, detail::filter_spec(p, r));
  return {&s.ff.kept_ids, &s.ff.kept_q, static_cast<double>(s.ff.kept_mass)};
}

// Processed probability of token t in a filtered row (0 when not kept).
double kept_prob(const Kept& k, int64_t t) {
  const auto it = std::lower_bound(k.ids->begin(), k.ids->end(), static_cast<uint32_t>(t));
  if (it == k.ids->end() || *it != t) return 0.0;
  return static_cast<double>((*k.q)[static_cast<std::size_t>(it - k.ids->begin())]) / k.mass;
}

// Runs fn(r, prepared row, scratch) over the rows in parallel and reports the first row error.
template <class Fn>
void for_rows(const char* op, const ConstTensorView& x, const SamplingParams& p, Fn&& fn) {
  const int64_t rows = x.shape[0];
  std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
  const detail::RowPreparer prep(x, p, /*probs=*/false, 0, 0);
  detail::parallel_for(rows, detail::sampling_threads(p.threads, rows, x.shape[1]),
                       [&](int64_t b, int64_t e) {
                         RowScratch& s = detail::thread_scratch();
                         for (int64_t r = b; r < e; ++r) {
                           const PreparedRow pr = prep.prepare(r, s);
                           if (pr.error != RowError::kNone)
                             errors[r] = pr.error;
                           else
                             fn(r, pr, s);
                         }
                       });
  detail::throw_first_row_error(op, "logits", errors);
}

void check_out(const char* op, const char* arg, const TensorView& out,
               const std::vector<int64_t>& shape, const ConstTensorView& x) {
  detail::check_output_view(op, arg, out);
  if (out.dtype != DType::f32 && out.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(out.dtype), "must be f32 or f64");
  }
  detail::check_same_shape(op, arg, shape, out.shape);
  detail::check_no_overlap(op, x, out, /*allow_alias=*/false, arg, "logits");
}

// A raw params set: no processors, temperature 1, no filters, the caller's threads.
SamplingParams raw_params(const SamplingParams& p) {
  SamplingParams raw;
  raw.threads = p.threads;
  return raw;
}

}  // namespace

void filtered_probs(ConstTensorView logits, TensorView probs, const SamplingParams& params) {
  const char* op = "filtered_probs";
  detail::check_sampling_rows(op, "logits", logits);
  const int64_t rows = logits.shape[0], n = logits.shape[1];
  detail::check_sampling_params(op, params, rows, n, /*probs=*/false);
  check_out(op, "probs", probs, logits.shape, logits);
  std::vector<double> out(static_cast<std::size_t>(rows * n), 0.0);
  for_rows(op, logits, params, [&](int64_t r, const PreparedRow& pr, RowScratch& s) {
    double* o = out.data() + r * n;
    if (pr.greedy) return void(o[pr.argmax] = 1.0);
    const Kept k = filter_row(pr, s, params, r, n);
    for (std::size_t j = 0; j < k.ids->size(); ++j) {
      o[(*k.ids)[j]] = static_cast<double>((*k.q)[j]) / k.mass;
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      detail::store_from_double(probs.data, probs.dtype,
                                r * probs.strides[0] + i * probs.strides[1], out[r * n + i]);
    }
  }
}

void token_logprobs(ConstTensorView logits, ConstTensorView tokens, TensorView logprobs,
                    const SamplingParams& params, LogprobsMode mode) {
  const char* op = "token_logprobs";
  detail::check_sampling_rows(op, "logits", logits);
  const int64_t rows = logits.shape[0], n = logits.shape[1];
  detail::check_sampling_params(op, params, rows, n, /*probs=*/false);
  detail::check_view(op, "tokens", tokens);
  if (tokens.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "tokens", dtype_name(tokens.dtype), "must be i64");
  }
  if (tokens.rank() < 1 || tokens.rank() > 2 || tokens.shape[0] != rows) {
    throw Error(
        ErrorKind::kShapeMismatch, op, "tokens", detail::shape_str(tokens.shape),
        "must have shape (" + std::to_string(rows) + ",) or (" + std::to_string(rows) + ", D)");
  }
  if (mode != LogprobsMode::kRaw && mode != LogprobsMode::kProcessed) {
    throw Error(ErrorKind::kInvalidArgument, op, "mode", std::to_string(static_cast<int>(mode)),
                "must be kRaw or kProcessed");
  }
  check_out(op, "logprobs", logprobs, tokens.shape, logits);
  detail::check_no_overlap(op, tokens, logprobs, /*allow_alias=*/false, "logprobs", "tokens");
  const int64_t d_count = tokens.rank() == 2 ? tokens.shape[1] : 1;
  auto tok_at = [&](int64_t r, int64_t d) {
    const int64_t o = r * tokens.strides[0] + (tokens.rank() == 2 ? d * tokens.strides[1] : 0);
    return static_cast<const int64_t*>(tokens.data)[o];
  };
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < d_count; ++d) {
      if (tok_at(r, d) < 0 || tok_at(r, d) >= n) {
        throw Error(ErrorKind::kInvalidArgument, op, "tokens",
                    std::to_string(tok_at(r, d)) + " (row " + std::to_string(r) + ")",
                    "token ids must be in [0, " + std::to_string(n) + ")");
      }
    }
  }
  const SamplingParams raw = raw_params(params);
  const SamplingParams& used = mode == LogprobsMode::kRaw ? raw : params;
  std::vector<double> out(static_cast<std::size_t>(rows * d_count));
  for_rows(op, logits, used, [&](int64_t r, const PreparedRow& pr, RowScratch& s) {
    double* o = out.data() + r * d_count;
    if (pr.greedy) {
      for (int64_t d = 0; d < d_count; ++d) o[d] = tok_at(r, d) == pr.argmax ? 0.0 : kNegInf;
      return;
    }
    if (mode == LogprobsMode::kProcessed) {
      const Kept k = filter_row(pr, s, used, r, n);
      for (int64_t d = 0; d < d_count; ++d) o[d] = std::log(kept_prob(k, tok_at(r, d)));
      return;
    }
    // Raw: z_t - log(sum_j w_j), w = exp(x - max) (T = 1), z_t = x_t - max in the compute type.
    double acc[4] = {0, 0, 0, 0};  // fixed order: element i goes to acc[i % 4]
    int64_t i = 0;
    auto w = [&](int64_t j) { return pr.f64 ? pr.wd[j] : static_cast<double>(pr.wf[j]); };
    for (; i + 4 <= n; i += 4) {
      for (int j = 0; j < 4; ++j) acc[j] += w(i + j);
    }
    for (; i < n; ++i) acc[0] += w(i);
    const double log_sum = std::log((acc[0] + acc[1]) + (acc[2] + acc[3]));
    for (int64_t d = 0; d < d_count; ++d) {
      const double xt = detail::load_as_double(pr.x, pr.dtype, tok_at(r, d));
      const double z =
          pr.f64 ? xt - pr.max
                 : static_cast<double>(static_cast<float>(xt) - static_cast<float>(pr.max));
      o[d] = z - log_sum;
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < d_count; ++d) {
      const int64_t o =
          r * logprobs.strides[0] + (logprobs.rank() == 2 ? d * logprobs.strides[1] : 0);
      detail::store_from_double(logprobs.data, logprobs.dtype, o, out[r * d_count + d]);
    }
  }
}

TopLogprobs top_logprobs(ConstTensorView logits, int64_t n, const SamplingParams& params,
                         LogprobsMode mode) {
  const char* op = "top_logprobs";
  if (mode == LogprobsMode::kRaw) return top_logprobs(logits, n, 1.0, params.threads);
  if (mode != LogprobsMode::kProcessed) {
    throw Error(ErrorKind::kInvalidArgument, op, "mode", std::to_string(static_cast<int>(mode)),
                "must be kRaw or kProcessed");
  }
  detail::check_sampling_rows(op, "logits", logits);
  const int64_t rows = logits.shape[0], len = logits.shape[1];
  if (n < 0 || n > len) {
    throw Error(ErrorKind::kInvalidArgument, op, "n", std::to_string(n),
                "must be in [0, " + std::to_string(len) + "] (the vocabulary size)");
  }
  detail::check_sampling_params(op, params, rows, len, /*probs=*/false);
  TopLogprobs res;
  res.rows = rows;
  res.n = n;
  res.ids.resize(static_cast<std::size_t>(rows * n));
  res.logprobs.resize(static_cast<std::size_t>(rows * n));
  for_rows(op, logits, params, [&](int64_t r, const PreparedRow& pr, RowScratch& s) {
    std::vector<std::pair<uint64_t, uint32_t>> sel;  // (mass, id) of kept tokens
    double mass = 1.0;
    if (pr.greedy) {
      sel.emplace_back(1, static_cast<uint32_t>(pr.argmax));
    } else {
      const Kept k = filter_row(pr, s, params, r, len);
      mass = k.mass;
      for (std::size_t j = 0; j < k.ids->size(); ++j) sel.emplace_back((*k.q)[j], (*k.ids)[j]);
    }
    const auto m = std::min<std::size_t>(sel.size(), static_cast<std::size_t>(n));
    std::partial_sort(sel.begin(), sel.begin() + static_cast<std::ptrdiff_t>(m), sel.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    int64_t* ids = res.ids.data() + r * n;
    double* lp = res.logprobs.data() + r * n;
    for (std::size_t j = 0; j < m; ++j) {
      ids[j] = sel[j].second;
      lp[j] = sel[j].first == 0 ? kNegInf : std::log(static_cast<double>(sel[j].first) / mass);
    }
    // Probability-0 tokens (not kept, or q = 0) follow in id order.
    std::vector<char> taken(static_cast<std::size_t>(len), 0);
    for (std::size_t j = 0; j < m; ++j) taken[sel[j].second] = 1;
    int64_t j = static_cast<int64_t>(m);
    for (int64_t id = 0; id < len && j < n; ++id) {
      if (!taken[id]) {
        ids[j] = id;
        lp[j++] = kNegInf;
      }
    }
  });
  return res;
}

}  // namespace softmax
