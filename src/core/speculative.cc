// src/core/speculative.cc: speculative_verify (softmax/speculative.hpp). Validation first (every
// shape, id and probability row; nothing written on failure), then rows in parallel: the
// acceptance tests read two entries per position, the residual (or bonus) row is built in f64
// and drawn by the exact integer inverse CDF of sampling (src/core/sampling_select.hpp:
// draw_unfiltered, the RowFilter draw without filters).
#include "softmax/speculative.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/philox.hpp"
#include "src/core/rows.hpp"
#include "src/core/sampling_select.hpp"

namespace softmax {
namespace {

constexpr double kSumTolerance = 1e-3;

// A (B, R, V) probability tensor (f32 or f64) read in f64.
struct Probs {
  ConstTensorView v;
  double at(int64_t b, int64_t j, int64_t i) const {
    return detail::load_as_double(v.data, v.dtype,
                                  b * v.strides[0] + j * v.strides[1] + i * v.strides[2]);
  }
  // Calls fn(row, step) with row (b, j) as a typed pointer (const float* or const double*) and
  // its element stride: the dtype dispatched once.
  template <class Fn>
  void with_row(int64_t b, int64_t j, Fn&& fn) const {
    const int64_t base = b * v.strides[0] + j * v.strides[1], step = v.strides[2];
    if (v.dtype == DType::f32) {
      fn(static_cast<const float*>(v.data) + base, step);
    } else {
      fn(static_cast<const double*>(v.data) + base, step);
    }
  }
};

bool bad_prob(double x) { return !(x >= 0 && x <= 1e300); }

// Sum of a row, or -1 when an entry is negative, NaN or inf. Entry i is added to accumulator
// i mod 4 (in f64), the four combined as (a0 + a1) + (a2 + a3): the same bits for every stride.
template <class T>
double checked_sum_row(const T* x, int64_t n, int64_t step) {
  double a[4] = {0, 0, 0, 0};
  bool bad = false;
  int64_t i = 0;
#if defined(__SSE2__)
  if (step == 1) {
    // Accumulators 0, 1 and 2, 3 as two SSE2 vectors: two vector adds per 4 entries instead
    // of four dependent scalar adds through memory (the same additions, in the same order).
    __m128d a01 = _mm_setzero_pd(), a23 = _mm_setzero_pd();
    const __m128d zero = _mm_setzero_pd(), big = _mm_set1_pd(1e300);
    __m128d ok = _mm_castsi128_pd(_mm_set1_epi32(-1));
    for (; i + 4 <= n; i += 4) {
      __m128d v01, v23;
      if constexpr (std::is_same_v<T, float>) {
        const __m128 f = _mm_loadu_ps(x + i);
        v01 = _mm_cvtps_pd(f);
        v23 = _mm_cvtps_pd(_mm_movehl_ps(f, f));
      } else {
        v01 = _mm_loadu_pd(x + i);
        v23 = _mm_loadu_pd(x + i + 2);
      }
      ok = _mm_and_pd(ok, _mm_and_pd(_mm_cmpge_pd(v01, zero), _mm_cmple_pd(v01, big)));
      ok = _mm_and_pd(ok, _mm_and_pd(_mm_cmpge_pd(v23, zero), _mm_cmple_pd(v23, big)));
      a01 = _mm_add_pd(a01, v01);
      a23 = _mm_add_pd(a23, v23);
    }
    bad = _mm_movemask_pd(ok) != 3;
    _mm_storeu_pd(a, a01);
    _mm_storeu_pd(a + 2, a23);
  }
#endif
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i * step]);
    bad |= bad_prob(v);
    a[i & 3] += v;
  }
  return bad ? -1.0 : (a[0] + a[1]) + (a[2] + a[3]);
}

double checked_sum(const Probs& p, int64_t b, int64_t j) {
  double s = 0;
  p.with_row(b, j,
             [&](const auto* x, int64_t step) { s = checked_sum_row(x, p.v.shape[2], step); });
  return s;
}

void check_probs(const char* op, const char* arg, const ConstTensorView& v, int64_t b, int64_t r,
                 int64_t n) {
  detail::check_view(op, arg, v);
  if (v.dtype != DType::f32 && v.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(v.dtype), "must be f32 or f64");
  }
  const std::vector<int64_t> want{b, r, n};
  if (v.shape != want) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, detail::shape_str(v.shape),
                "must have shape " + detail::shape_str(want));
  }
}

void check_i64_out(const char* op, const char* arg, const TensorView& t,
                   const std::vector<int64_t>& shape) {
  detail::check_output_view(op, arg, t);
  if (t.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(t.dtype), "must be i64");
  }
  detail::check_same_shape(op, arg, shape, t.shape);
}

struct RowOut {
  int64_t accepted = 0;
  std::vector<int64_t> tokens;
};

}  // namespace

void speculative_verify(ConstTensorView draft_tokens, ConstTensorView draft_probs,
                        ConstTensorView target_probs, TensorView num_accepted, TensorView tokens,
                        uint64_t seed, uint64_t offset, std::span<const uint64_t> streams,
                        int threads) {
  const char* op = "speculative_verify";
  detail::check_view(op, "draft_tokens", draft_tokens);
  if (draft_tokens.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "draft_tokens", dtype_name(draft_tokens.dtype),
                "must be i64");
  }
  if (draft_tokens.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "draft_tokens",
                detail::shape_str(draft_tokens.shape), "must have rank 2: (batch, k)");
  }
  const int64_t B = draft_tokens.shape[0], k = draft_tokens.shape[1];
  detail::check_view(op, "target_probs", target_probs);
  if (target_probs.rank() != 3 || target_probs.shape[2] < 1) {
    throw Error(ErrorKind::kShapeMismatch, op, "target_probs",
                detail::shape_str(target_probs.shape), "must have shape (batch, k + 1, V), V >= 1");
  }
  const int64_t V = target_probs.shape[2];
  if (V >= (int64_t{1} << 32)) {
    throw Error(ErrorKind::kUnsupported, op, "target_probs", detail::shape_str(target_probs.shape),
                "the vocabulary must be < 2^32 tokens");
  }
  check_probs(op, "draft_probs", draft_probs, B, k, V);
  check_probs(op, "target_probs", target_probs, B, k + 1, V);
  check_i64_out(op, "num_accepted", num_accepted, {B});
  check_i64_out(op, "tokens", tokens, {B, k + 1});
  for (const auto& [in, name] : {std::pair{draft_tokens, "draft_tokens"},
                                 {draft_probs, "draft_probs"},
                                 {target_probs, "target_probs"}}) {
    detail::check_no_overlap(op, in, num_accepted, false, "num_accepted", name);
    detail::check_no_overlap(op, in, tokens, false, "tokens", name);
  }
  detail::check_no_overlap(op, num_accepted, tokens, false, "tokens", "num_accepted");
  if (!streams.empty() && static_cast<int64_t>(streams.size()) != B) {
    throw Error(ErrorKind::kShapeMismatch, op, "streams",
                std::to_string(streams.size()) + " values",
                "needs one stream per row (" + std::to_string(B) + ") or none");
  }
  detail::check_threads(op, threads);
  const auto* dt = static_cast<const int64_t*>(draft_tokens.data);
  auto draft_at = [&](int64_t b, int64_t j) {
    return dt[b * draft_tokens.strides[0] + j * draft_tokens.strides[1]];
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < k; ++j) {
      if (draft_at(b, j) < 0 || draft_at(b, j) >= V) {
        throw Error(ErrorKind::kInvalidArgument, op, "draft_tokens",
                    std::to_string(draft_at(b, j)) + " (row " + std::to_string(b) + ", position " +
                        std::to_string(j) + ")",
                    "token ids must be in [0, " + std::to_string(V) + ")");
      }
    }
  }
  if (B == 0) return;

  const Probs q{draft_probs}, p{target_probs};
  // Row sums (validated): sums[b][j] for q (j < k), then p (j <= k).
  std::vector<double> qs(static_cast<std::size_t>(B * k)),
      ps(static_cast<std::size_t>(B * (k + 1)));
  std::vector<RowOut> out(static_cast<std::size_t>(B));
  const int nt =
      B * (2 * k + 1) * V < detail::kMinParallelElems ? 1 : detail::resolve_threads(threads);
  detail::parallel_for(B, nt, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t j = 0; j < k; ++j) qs[b * k + j] = checked_sum(q, b, j);
      for (int64_t j = 0; j <= k; ++j) ps[b * (k + 1) + j] = checked_sum(p, b, j);
    }
  });
  auto check_sums = [&](const std::vector<double>& s, int64_t per, const char* name) {
    for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
      if (!(std::fabs(s[i] - 1.0) <= kSumTolerance)) {
        const std::string where =
            "row (" + std::to_string(i / per) + ", " + std::to_string(i % per) + ")";
        throw Error(
            ErrorKind::kInvalidArgument, op, name,
            where + (s[i] < 0 ? " holds a negative, NaN or inf entry"
                              : " sums to " + std::to_string(s[i])),
            "every row must be a probability distribution (entries >= 0, sum 1 within 1e-3)");
      }
    }
  };
  check_sums(qs, std::max<int64_t>(k, 1), "draft_probs");
  check_sums(ps, k + 1, "target_probs");

  // The residual (or bonus) draw of row b at position j (draw 2j + 1). The bonus (and a
  // residual that is all zero) draws from p's row as it is; the residual's weights are built
  // once in w (f64) with their maximum, then drawn.
  auto draw_at = [&](int64_t b, int64_t j, uint64_t stream, bool residual, std::vector<double>& w) {
    const uint64_t u = detail::philox_u64(seed, offset, stream, static_cast<uint32_t>(2 * j + 1));
    int64_t token = -1;
    p.with_row(b, j, [&](const auto* pr, int64_t pst) {
      if (residual) {  // max(0, p / P - q / Q), scaled by P * Q
        const double P = ps[b * (k + 1) + j], Q = qs[b * k + j];
        double w_max = 0;
        q.with_row(b, j, [&](const auto* qr, int64_t qst) {
          for (int64_t i = 0; i < V; ++i) {
            w[i] = std::max(
                0.0, static_cast<double>(pr[i * pst]) * Q - static_cast<double>(qr[i * qst]) * P);
            w_max = std::max(w_max, w[i]);
          }
        });
        if (w_max > 0) {
          token = detail::draw_unfiltered(V, w_max, u, [&](int64_t i) { return w[i]; });
          return;
        }
      }
      auto wp = [&](int64_t i) { return static_cast<double>(pr[i * pst]); };
      double w_max = 0;
      for (int64_t i = 0; i < V; ++i) w_max = std::max(w_max, wp(i));
      token = detail::draw_unfiltered(V, w_max, u, wp);
    });
    return token;
  };
  detail::parallel_for(B, nt, [&](int64_t b0, int64_t b1) {
    std::vector<double> w(static_cast<std::size_t>(V));
    for (int64_t b = b0; b < b1; ++b) {
      const uint64_t stream = streams.empty() ? static_cast<uint64_t>(b) : streams[b];
      RowOut& o = out[b];
      int64_t j = 0;
      for (; j < k; ++j) {
        const int64_t t = draft_at(b, j);
        const double P = ps[b * (k + 1) + j], Q = qs[b * k + j];
        const double u = detail::philox_open01(seed, offset, stream, static_cast<uint32_t>(2 * j));
        if (u * q.at(b, j, t) * P < p.at(b, j, t) * Q) {
          o.tokens.push_back(t);
          continue;
        }
        o.tokens.push_back(draw_at(b, j, stream, true, w));
        break;
      }
      o.accepted = j;
      if (j == k) o.tokens.push_back(draw_at(b, k, stream, false, w));  // all accepted: the bonus
    }
  });
  auto* na = static_cast<int64_t*>(num_accepted.data);
  auto* tk = static_cast<int64_t*>(tokens.data);
  for (int64_t b = 0; b < B; ++b) {
    na[b * num_accepted.strides[0]] = out[b].accepted;
    for (int64_t j = 0; j <= k; ++j) {
      tk[b * tokens.strides[0] + j * tokens.strides[1]] =
          j < static_cast<int64_t>(out[b].tokens.size()) ? out[b].tokens[j] : -1;
    }
  }
}

}  // namespace softmax
