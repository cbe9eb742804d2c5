// src/core/logit_processors.cc: validation and the per-row application of the logit processors
// (softmax/logit_processors.hpp), and the public apply_penalties. Rows touch only the listed
// ids after one copy, so the cost is O(V) for the copy plus O(L log L) per row of L ids.
#include "src/core/logit_processors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"

namespace softmax::detail {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string row_note(bool per_row, int64_t r) {
  return per_row ? " (row " + std::to_string(r) + ")" : "";
}

template <class T, class Pred>
void check_param(const char* op, const char* arg, const PerRow<T>& v, int64_t rows, Pred ok,
                 const char* rule) {
  if (v.per_row() && static_cast<int64_t>(v.size()) != rows) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, std::to_string(v.size()) + " values",
                "a per-row parameter needs one value per row (" + std::to_string(rows) + ")");
  }
  for (int64_t r = 0; r < (v.per_row() ? rows : 1); ++r) {
    if (!ok(v[r])) {
      throw Error(ErrorKind::kInvalidArgument, op, arg,
                  std::to_string(v[r]) + row_note(v.per_row(), r), rule);
    }
  }
}

void check_ids(const char* op, const char* arg, std::span<const int64_t> ids, int64_t vocab) {
  for (std::size_t j = 0; j < ids.size(); ++j) {
    if (ids[j] < 0 || ids[j] >= vocab) {
      throw Error(ErrorKind::kInvalidArgument, op, arg,
                  "id " + std::to_string(ids[j]) + " at position " + std::to_string(j),
                  "token ids must be in [0, " + std::to_string(vocab) + ")");
    }
  }
}

void check_lists(const char* op, const char* arg, const TokenLists& l, int64_t rows,
                 int64_t vocab) {
  const auto& o = l.offsets;
  if (!o.empty()) {
    if (static_cast<int64_t>(o.size()) != rows + 1) {
      throw Error(ErrorKind::kShapeMismatch, op, arg, std::to_string(o.size()) + " offsets",
                  "needs B + 1 = " + std::to_string(rows + 1) + " offsets (or none: shared)");
    }
    if (o.front() != 0 || o.back() != static_cast<int64_t>(l.ids.size())) {
      throw Error(
          ErrorKind::kInvalidArgument, op, arg,
          "offsets " + std::to_string(o.front()) + " .. " + std::to_string(o.back()),
          "must start at 0 and end at the number of ids (" + std::to_string(l.ids.size()) + ")");
    }
    for (std::size_t r = 0; r + 1 < o.size(); ++r) {
      if (o[r + 1] < o[r]) {
        throw Error(ErrorKind::kInvalidArgument, op, arg, "offsets of row " + std::to_string(r),
                    "offsets must be nondecreasing");
      }
    }
  }
  check_ids(op, arg, l.ids, vocab);
}

}  // namespace

std::span<const int64_t> row_list(const TokenLists& l, int64_t r) {
  if (l.offsets.empty()) return l.ids;
  const auto b = static_cast<std::size_t>(l.offsets[r]);
  const auto e = static_cast<std::size_t>(l.offsets[r + 1]);
  return l.ids.subspan(b, e - b);
}

void check_processors(const char* op, const LogitProcessors& p, int64_t rows, int64_t vocab) {
  check_lists(op, "prev_tokens", p.prev_tokens, rows, vocab);
  check_param(
      op, "repetition_penalty", p.repetition_penalty, rows,
      [](double v) { return v > 0 && std::isfinite(v); }, "must be finite and > 0 (1 = off)");
  check_param(
      op, "presence_penalty", p.presence_penalty, rows, [](double v) { return std::isfinite(v); },
      "must be finite (0 = off)");
  check_param(
      op, "frequency_penalty", p.frequency_penalty, rows, [](double v) { return std::isfinite(v); },
      "must be finite (0 = off)");
  check_lists(op, "logit_bias", p.logit_bias, rows, vocab);
  if (p.logit_bias_values.size() != p.logit_bias.ids.size()) {
    throw Error(ErrorKind::kShapeMismatch, op, "logit_bias",
                std::to_string(p.logit_bias_values.size()) + " values for " +
                    std::to_string(p.logit_bias.ids.size()) + " ids",
                "needs one bias per id");
  }
  for (std::size_t j = 0; j < p.logit_bias_values.size(); ++j) {
    const double v = p.logit_bias_values[j];
    if (std::isnan(v) || v == kInf) {
      throw Error(ErrorKind::kInvalidArgument, op, "logit_bias",
                  std::to_string(v) + " for id " + std::to_string(p.logit_bias.ids[j]),
                  "a bias must be finite or -inf");
    }
  }
  check_lists(op, "banned_tokens", p.banned_tokens, rows, vocab);
  check_ids(op, "eos_token_ids", p.eos_token_ids, vocab);
  check_param(
      op, "min_tokens", p.min_tokens, rows, [](int64_t v) { return v >= 0; },
      "must be >= 0 (0 = off)");
  check_param(
      op, "num_generated", p.num_generated, rows, [](int64_t v) { return v >= -1; },
      "must be >= 0, or -1 (the length of the row's prev_tokens)");
}

bool processors_active(const LogitProcessors& p) {
  auto any = [](const PerRow<double>& v, double off) {
    if (!v.per_row()) return v[0] != off;
    for (std::size_t r = 0; r < v.size(); ++r) {
      if (v[static_cast<int64_t>(r)] != off) return true;
    }
    return false;
  };
  const bool penalties =
      !p.prev_tokens.ids.empty() && (any(p.repetition_penalty, 1.0) ||
                                     any(p.presence_penalty, 0.0) || any(p.frequency_penalty, 0.0));
  const bool min_len = !p.eos_token_ids.empty() && (p.min_tokens.per_row() || p.min_tokens[0] > 0);
  return penalties || !p.logit_bias.ids.empty() || !p.banned_tokens.ids.empty() || min_len;
}

template <class T>
void RowProcessor::apply(const LogitProcessors& p, int64_t r, T* x, int64_t) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const std::span<const int64_t> prev = row_list(p.prev_tokens, r);
  const double rho = p.repetition_penalty[r];
  const double pres = p.presence_penalty[r], freq = p.frequency_penalty[r];
  if (!prev.empty() && (rho != 1.0 || pres != 0.0 || freq != 0.0)) {
    sorted_.assign(prev.begin(), prev.end());
    std::sort(sorted_.begin(), sorted_.end());
    for (std::size_t j = 0; j < sorted_.size();) {
      std::size_t e = j;
      while (e < sorted_.size() && sorted_[e] == sorted_[j]) ++e;
      const auto count = static_cast<double>(e - j);
      T& v = x[sorted_[j]];
      if (rho != 1.0)
        v = static_cast<T>(v > 0 ? static_cast<double>(v) / rho : static_cast<double>(v) * rho);
      if (pres != 0.0 || freq != 0.0)
        v = static_cast<T>(static_cast<double>(v) - (count * freq + pres));
      j = e;
    }
  }
  const std::span<const int64_t> bias = row_list(p.logit_bias, r);
  if (!bias.empty()) {
    const std::size_t first = static_cast<std::size_t>(bias.data() - p.logit_bias.ids.data());
    for (std::size_t j = 0; j < bias.size(); ++j) {
      T& v = x[bias[j]];
      v = static_cast<T>(static_cast<double>(v) + p.logit_bias_values[first + j]);
    }
  }
  for (const int64_t id : row_list(p.banned_tokens, r)) x[id] = kNegInf;
  const int64_t gen =
      p.num_generated[r] >= 0 ? p.num_generated[r] : static_cast<int64_t>(prev.size());
  if (gen < p.min_tokens[r]) {
    for (const int64_t id : p.eos_token_ids) x[id] = kNegInf;
  }
}

template void RowProcessor::apply<float>(const LogitProcessors&, int64_t, float*, int64_t);
template void RowProcessor::apply<double>(const LogitProcessors&, int64_t, double*, int64_t);

}  // namespace softmax::detail

namespace softmax {

void apply_penalties(ConstTensorView logits, TensorView out, const LogitProcessors& processors,
                     int threads) {
  const char* op = "apply_penalties";
  detail::check_view(op, "logits", logits);
  detail::check_float_dtype(op, "logits", logits.dtype);
  if (logits.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "logits", detail::shape_str(logits.shape),
                "must have rank 2: (batch, vocabulary)");
  }
  detail::check_output_view(op, "out", out);
  if (out.dtype != logits.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "out", dtype_name(out.dtype),
                std::string("must have the logits' dtype (") + dtype_name(logits.dtype) + ")");
  }
  detail::check_same_shape(op, "out", logits.shape, out.shape);
  detail::check_no_overlap(op, logits, out, /*allow_alias=*/true, "out", "logits");
  detail::check_threads(op, threads);
  const int64_t rows = logits.shape[0], n = logits.shape[1];
  detail::check_processors(op, processors, rows, n);
  if (rows == 0 || n == 0) return;
  const int nt = rows * n < detail::kMinParallelElems ? 1 : detail::resolve_threads(threads);
  detail::parallel_for(rows, nt, [&](int64_t b, int64_t e) {
    detail::RowProcessor proc;
    std::vector<double> wd;
    std::vector<float> wf;
    for (int64_t r = b; r < e; ++r) {
      const int64_t xo = r * logits.strides[0], yo = r * out.strides[0];
      auto run = [&](auto& w) {
        w.resize(static_cast<std::size_t>(n));
        using T = typename std::decay_t<decltype(w)>::value_type;
        for (int64_t i = 0; i < n; ++i) {
          w[i] = static_cast<T>(
              detail::load_as_double(logits.data, logits.dtype, xo + i * logits.strides[1]));
        }
        proc.apply(processors, r, w.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          detail::store_from_double(out.data, out.dtype, yo + i * out.strides[1],
                                    static_cast<double>(w[i]));
        }
      };
      if (logits.dtype == DType::f64)
        run(wd);
      else
        run(wf);
    }
  });
}

}  // namespace softmax
