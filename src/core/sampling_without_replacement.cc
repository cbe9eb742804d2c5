// src/core/sampling_without_replacement.cc: sample_without_replacement (softmax/sampling.hpp),
// Gumbel-top-k over the kept tokens of each row, selected exactly (nth_element on
// (key desc, id asc), then a sort of the k winners; no sort of the vocabulary).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/philox.hpp"
#include "src/core/rows.hpp"
#include "src/core/sampling_rows.hpp"

namespace softmax {
namespace {

using detail::PreparedRow;
using detail::RowError;
using detail::RowScratch;
using Cand = std::pair<double, uint32_t>;  // (key, id)

// The k best candidates (key desc, id asc) into out; false when fewer than k.
bool top_k_of(std::vector<Cand>& c, int64_t k, int64_t* out) {
  if (static_cast<int64_t>(c.size()) < k) return false;
  auto better = [](const Cand& a, const Cand& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  const auto kk = static_cast<std::ptrdiff_t>(k);
  if (kk < static_cast<std::ptrdiff_t>(c.size()))
    std::nth_element(c.begin(), c.begin() + kk, c.end(), better);
  std::sort(c.begin(), c.begin() + kk, better);
  for (int64_t j = 0; j < k; ++j) out[j] = c[j].second;
  return true;
}

template <class W>
void gumbel_keys(const detail::RowFilter<W>& f, const W* w, const PreparedRow& pr,
                 std::vector<Cand>& c) {
  for (const uint32_t id : f.kept_ids) {
    const double wi = static_cast<double>(w[id]);
    if (!(wi > 0)) continue;
    const double u = detail::philox_open01(pr.seed, pr.offset, pr.stream, id);
    c.emplace_back(std::log(wi) - std::log(-std::log(u)), id);
  }
}

}  // namespace

void sample_without_replacement(ConstTensorView logits, TensorView tokens,
                                const SamplingParams& params, uint64_t seed, uint64_t offset) {
  const char* op = "sample_without_replacement";
  detail::check_sampling_rows(op, "logits", logits);
  const int64_t rows = logits.shape[0], n = logits.shape[1];
  detail::check_sampling_params(op, params, rows, n, /*probs=*/false);
  detail::check_output_view(op, "tokens", tokens);
  if (tokens.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "tokens", dtype_name(tokens.dtype), "must be i64");
  }
  if (tokens.rank() != 2 || tokens.shape[0] != rows) {
    throw Error(ErrorKind::kShapeMismatch, op, "tokens", detail::shape_str(tokens.shape),
                "must have shape (" + std::to_string(rows) + ", k)");
  }
  detail::check_no_overlap(op, logits, tokens, /*allow_alias=*/false, "tokens", "logits");
  const int64_t k = tokens.shape[1];
  if (rows == 0 || k == 0) return;
  std::vector<int64_t> out(static_cast<std::size_t>(rows * k));
  std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
  std::vector<int64_t> short_rows(static_cast<std::size_t>(rows), -1);  // candidates when < k
  const detail::RowPreparer prep(logits, params, /*probs=*/false, seed, offset);
  detail::parallel_for(rows, detail::sampling_threads(params.threads, rows, n),
                       [&](int64_t b, int64_t e) {
                         RowScratch& s = detail::thread_scratch();
                         std::vector<Cand> c;
                         for (int64_t r = b; r < e; ++r) {
                           const PreparedRow pr = prep.prepare(r, s);
                           if (pr.error != RowError::kNone) {
                             errors[r] = pr.error;
                             continue;
                           }
                           c.clear();
                           if (pr.greedy) {  // the k largest processed logits
                             for (int64_t i = 0; i < n; ++i) {
                               const double v = detail::load_as_double(pr.x, pr.dtype, i);
                               if (v > -std::numeric_limits<double>::infinity())
                                 c.emplace_back(v, static_cast<uint32_t>(i));
                             }
                           } else if (pr.f64) {
                             s.fd.filter(pr.wd, n, pr.wd_max, detail::filter_spec(params, r));
                             gumbel_keys(s.fd, pr.wd, pr, c);
                           } else {
                             s.ff.filter(pr.wf, n, pr.wf_max, detail::filter_spec(params, r));
                             gumbel_keys(s.ff, pr.wf, pr, c);
                           }
                           if (!top_k_of(c, k, out.data() + r * k))
                             short_rows[r] = static_cast<int64_t>(c.size());
                         }
                       });
  detail::throw_first_row_error(op, "logits", errors);
  for (int64_t r = 0; r < rows; ++r) {
    if (short_rows[r] >= 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "tokens",
                  "k = " + std::to_string(k) + " (row " + std::to_string(r) + " has " +
                      std::to_string(short_rows[r]) + ")",
                  "k must not exceed the tokens of positive probability after the filters");
    }
  }
  auto* dst = static_cast<int64_t*>(tokens.data);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < k; ++j)
      dst[r * tokens.strides[0] + j * tokens.strides[1]] = out[r * k + j];
  }
}

}  // namespace softmax
