// src/core/row_stats.cc: chunk partials and their merge (see row_stats.hpp).
#include "src/core/row_stats.hpp"

#include <cmath>
#include <vector>

#include "src/core/rows.hpp"

namespace softmax::detail {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

cpu::ChunkStats chunk_partial(const cpu::KernelTable& k, const void* x, DType t, int64_t n,
                              int64_t c, PartialKind kind, const cpu::Temperature& temp,
                              double known, void* e_out, double* block_max) {
  using cpu::kChunkElems;
  const auto es = static_cast<int64_t>(dtype_size(t));
  const auto cs = static_cast<int64_t>(t == DType::f64 ? 8 : 4);
  constexpr int64_t kBlocksPerChunk = kChunkElems / cpu::kBlockElems;
  const auto* base = static_cast<const char*>(x) + c * kChunkElems * es;
  const int64_t len = std::min(kChunkElems, n - c * kChunkElems);
  switch (kind) {
    case PartialKind::kMax: return k.chunk_max(base, t, len);
    case PartialKind::kLog: return k.chunk_stats_log(base, t, len, temp, known);
    case PartialKind::kPlain: break;
  }
  return k.chunk_stats(base, t, len, temp,
                       e_out ? static_cast<char*>(e_out) + c * kChunkElems * cs : nullptr,
                       block_max ? block_max + c * kBlocksPerChunk : nullptr, known);
}

RowStats merge_chunks(const cpu::KernelTable& k, const cpu::ChunkStats* parts, int64_t count,
                      const cpu::Temperature& temp) {
  RowStats r{-kInf, 0.0, 0.0, 0.0, false};
  for (int64_t c = 0; c < count; ++c) {
    r.has_nan = r.has_nan || parts[c].has_nan;
    if (parts[c].max > r.max) r.max = parts[c].max;
  }
  if (r.special()) return r;
  // Compensated (TwoSum) sums of the chunk partials, in chunk order.
  auto add = [](double& s, double v, double& comp) {
    const double hi = s + v;
    const double bb = hi - s;
    comp += (s - (hi - bb)) + (v - bb);
    s = hi;
  };
  double sum_c = 0.0, rest_c = 0.0;
  for (int64_t c = 0; c < count; ++c) {
    if (parts[c].max == -kInf) continue;  // an all -inf chunk contributes nothing
    if (parts[c].max == r.max) {
      add(r.sum, parts[c].sum, sum_c);
      r.ones += parts[c].ones;
      add(r.rest, parts[c].rest, rest_c);
    } else {
      const double f = k.exp_diff(parts[c].max, r.max, temp);
      add(r.sum, parts[c].sum * f, sum_c);
      add(r.rest, parts[c].sum * f, rest_c);
    }
  }
  r.sum += sum_c;
  r.rest += rest_c;
  return r;
}

RowStats row_stats(const cpu::KernelTable& k, const void* x, DType t, int64_t n,
                   const cpu::Temperature& temp, int threads, bool log_mode, void* e_out,
                   double* block_max, double known, cpu::ChunkStats* parts_buf) {
  const int64_t chunks = num_chunks(n);
  const PartialKind kind = log_mode ? PartialKind::kLog : PartialKind::kPlain;
  double known_max = known;
  auto one = [&](int64_t c) {
    return chunk_partial(k, x, t, n, c, kind, temp, known_max, e_out, block_max);
  };
  if (chunks == 1) {
    const cpu::ChunkStats c = one(0);
    return merge_chunks(k, &c, 1, temp);
  }
  std::vector<cpu::ChunkStats> own;
  if (parts_buf == nullptr) own.resize(static_cast<std::size_t>(chunks));
  cpu::ChunkStats* parts = parts_buf != nullptr ? parts_buf : own.data();
  if (t == DType::f64 && std::isnan(known_max)) {
    // f64 rows find their max first (one more read), so no chunk needs rescaling: the rescale
    // factor exp(m_c - max) would carry its own f64 rounding into every element.
    parallel_for(chunks, threads, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        parts[c] = chunk_partial(k, x, t, n, c, PartialKind::kMax, temp, kNaN);
      }
    });
    const RowStats pre = merge_chunks(k, parts, chunks, temp);
    if (pre.special()) return pre;
    known_max = pre.max;
  }
  parallel_for(chunks, threads, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) parts[c] = one(c);
  });
  return merge_chunks(k, parts, chunks, temp);
}

RowStats row_stats_log(const cpu::KernelTable& k, const void* x, DType t, int64_t n,
                       const cpu::Temperature& temp, int threads, cpu::ChunkStats* parts) {
  if (t != DType::f64) {
    const RowStats plain =
        row_stats(k, x, t, n, temp, threads, false, nullptr, nullptr, kNaN, parts);
    if (!needs_log_pass(plain)) return plain;
    return row_stats(k, x, t, n, temp, threads, true, nullptr, nullptr, plain.max, parts);
  }
  return row_stats(k, x, t, n, temp, threads, true, nullptr, nullptr, kNaN, parts);
}

double logsumexp_value(const RowStats& st, const cpu::Temperature& temp, DType t) {
  if (st.has_nan) return kNaN;
  if (st.max == kInf) return kInf;
  if (st.max == -kInf) return -kInf;  // all -inf, or empty
  return cpu::LogSumExpOf(st.max, st.ones, st.rest, temp, t == DType::f64);
}

}  // namespace softmax::detail
