// src/core/beam_search.cc: beam_search_step (softmax/beam_search.hpp).
#include "softmax/beam_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"

namespace softmax {
namespace {

struct Cand {
  double score;
  int64_t beam, token;
};
// Strict "a ranks before b": higher score, then lower beam, then lower token.
bool better(const Cand& a, const Cand& b) {
  if (a.score != b.score) return a.score > b.score;
  return a.beam != b.beam ? a.beam < b.beam : a.token < b.token;
}

void check_in(const char* op, const char* arg, const ConstTensorView& v, int64_t rank) {
  detail::check_view(op, arg, v);
  if (v.dtype != DType::f32 && v.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(v.dtype), "must be f32 or f64");
  }
  if (v.rank() != rank) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, detail::shape_str(v.shape),
                rank == 2 ? "must have rank 2: (beams, vocabulary)" : "must have rank 1: (beams)");
  }
}

void check_out(const char* op, const char* arg, const TensorView& v, int64_t m, bool real) {
  detail::check_output_view(op, arg, v);
  const bool ok = real ? (v.dtype == DType::f32 || v.dtype == DType::f64) : v.dtype == DType::i64;
  if (!ok) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(v.dtype),
                real ? "must be f32 or f64" : "must be i64");
  }
  detail::check_same_shape(op, arg, {m}, v.shape);
}

}  // namespace

void beam_search_step(ConstTensorView log_probs, ConstTensorView beam_scores, int64_t beam_width,
                      TensorView beam_indices, TensorView tokens, TensorView scores) {
  const char* op = "beam_search_step";
  check_in(op, "log_probs", log_probs, 2);
  check_in(op, "beam_scores", beam_scores, 1);
  const int64_t B = log_probs.shape[0], V = log_probs.shape[1];
  if (beam_scores.shape[0] != B) {
    throw Error(ErrorKind::kShapeMismatch, op, "beam_scores", detail::shape_str(beam_scores.shape),
                "must have shape (" + std::to_string(B) + ",): one score per beam");
  }
  if (beam_width < 1 || beam_width > (int64_t{1} << 40)) {
    throw Error(ErrorKind::kInvalidArgument, op, "beam_width", std::to_string(beam_width),
                "must be in [1, 2^40] (2 * beam_width candidates are returned)");
  }
  const int64_t m = 2 * beam_width;
  check_out(op, "beam_indices", beam_indices, m, false);
  check_out(op, "tokens", tokens, m, false);
  check_out(op, "scores", scores, m, true);
  for (const TensorView* o : {&beam_indices, &tokens, &scores}) {
    detail::check_no_overlap(op, log_probs, *o, false, "outputs", "log_probs");
    detail::check_no_overlap(op, beam_scores, *o, false, "outputs", "beam_scores");
  }
  detail::check_no_overlap(op, beam_indices, tokens, false, "tokens", "beam_indices");
  detail::check_no_overlap(op, beam_indices, scores, false, "scores", "beam_indices");
  detail::check_no_overlap(op, tokens, scores, false, "scores", "tokens");

  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<Cand> all;
  for (int64_t b = 0; b < B; ++b) {
    const double s =
        detail::load_as_double(beam_scores.data, beam_scores.dtype, b * beam_scores.strides[0]);
    if (std::isnan(s) || s == kInf) {
      throw Error(ErrorKind::kInvalidArgument, op, "beam_scores", "beam " + std::to_string(b),
                  "scores must not be NaN or +inf");
    }
    // The beam's best m tokens: a heap whose top is the worst kept candidate.
    std::priority_queue<Cand, std::vector<Cand>, decltype(&better)> heap(&better);
    for (int64_t v = 0; v < V; ++v) {
      const double lp = detail::load_as_double(log_probs.data, log_probs.dtype,
                                               b * log_probs.strides[0] + v * log_probs.strides[1]);
      if (std::isnan(lp) || lp == kInf) {
        throw Error(ErrorKind::kInvalidArgument, op, "log_probs",
                    "beam " + std::to_string(b) + ", token " + std::to_string(v),
                    "log-probabilities must not be NaN or +inf");
      }
      const Cand c{s + lp, b, v};
      if (c.score == -kInf) continue;
      if (static_cast<int64_t>(heap.size()) < m)
        heap.push(c);
      else if (better(c, heap.top())) {
        heap.pop();
        heap.push(c);
      }
    }
    for (; !heap.empty(); heap.pop()) all.push_back(heap.top());
  }
  if (static_cast<int64_t>(all.size()) < m) {
    throw Error(ErrorKind::kInvalidArgument, op, "beam_width", std::to_string(beam_width),
                "needs 2 * beam_width = " + std::to_string(m) +
                    " candidates of finite score, found " + std::to_string(all.size()));
  }
  const auto mm = static_cast<std::ptrdiff_t>(m);
  std::nth_element(all.begin(), all.begin() + mm - 1, all.end(), better);
  std::sort(all.begin(), all.begin() + mm, better);
  for (int64_t j = 0; j < m; ++j) {
    static_cast<int64_t*>(beam_indices.data)[j * beam_indices.strides[0]] = all[j].beam;
    static_cast<int64_t*>(tokens.data)[j * tokens.strides[0]] = all[j].token;
    detail::store_from_double(scores.data, scores.dtype, j * scores.strides[0], all[j].score);
  }
}

}  // namespace softmax
