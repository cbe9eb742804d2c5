// src/dist/top_logprobs.cc: top_logprobs (softmax/sampling.hpp) on a vocabulary sharded across
// ranks (softmax/dist.hpp). One gather of each shard's (max, NaN, +inf) per row gives every rank
// the row's maximum; each rank then computes its slice's tempered-weight sums per 32768-class
// piece and its own top n (the single-process slice code, src/core/sampling.cc), and a second
// gather brings them together: the log-sum is the pieces added in class order, the top n the
// merge of every rank's top n by (logit desc, id asc).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/sampling_kernels.hpp"
#include "src/core/sampling_rows.hpp"
#include "src/dist/agree.hpp"

namespace softmax::dist {
namespace {

using softmax::detail::LogprobCandidate;
using softmax::detail::RowError;
using softmax::detail::dist::Layout;
using softmax::detail::dist::LocalInfo;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct WireRange {
  double max, has_nan, has_pos_inf;
};

// Pieces of [offset, offset + n) between multiples of kLogprobChunk.
int64_t piece_count(int64_t offset, int64_t n) {
  if (n <= 0) return 0;
  const int64_t c = softmax::detail::kLogprobChunk;
  return (offset + n - 1) / c - offset / c + 1;
}

}  // namespace

TopLogprobs top_logprobs(Communicator& comm, ConstTensorView logits, int64_t n,
                         int64_t class_offset, double temperature, const Context& context) {
  const char* op = "dist::top_logprobs";
  std::optional<softmax::detail::ExecScope> scope;
  const Layout lay = softmax::detail::dist::agree(comm, op, [&] {
    scope.emplace(op, context, 0);
    softmax::detail::check_view(op, "logits", logits);
    softmax::detail::check_float_dtype(op, "logits", logits.dtype);
    if (logits.rank() != 2) {
      throw Error(ErrorKind::kShapeMismatch, op, "logits", softmax::detail::shape_str(logits.shape),
                  "must have rank 2: (batch, this rank's vocabulary shard)");
    }
    if (n < 0) throw Error(ErrorKind::kInvalidArgument, op, "n", std::to_string(n), "must be >= 0");
    softmax::detail::check_temperature(op, temperature);
    if (class_offset < 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "class_offset", std::to_string(class_offset),
                  "must be >= 0");
    }
    LocalInfo info;
    info.offset = class_offset;
    info.n = logits.shape[1];
    info.add("the rows of logits", logits.shape[0]);
    info.add_dtype("the dtype of logits", logits.dtype);
    info.add("n", n);
    info.add_double("temperature", temperature);
    return info;
  });
  const int64_t V = lay.vocab;
  if (V == 0 || V >= (int64_t{1} << 32)) {
    throw Error(V == 0 ? ErrorKind::kInvalidArgument : ErrorKind::kUnsupported, op, "logits",
                "a vocabulary of " + std::to_string(V) + " classes",
                "the vocabulary must be non-empty and < 2^32 tokens");
  }
  if (n > V) {
    throw Error(ErrorKind::kInvalidArgument, op, "n", std::to_string(n),
                "must be in [0, " + std::to_string(V) + "] (the vocabulary size)");
  }
  const int me = comm.rank(), size = comm.size();
  const int64_t rows = logits.shape[0], len = logits.shape[1];
  TopLogprobs res;
  res.rows = rows;
  res.n = n;
  res.ids.resize(static_cast<std::size_t>(rows * n));
  res.logprobs.resize(static_cast<std::size_t>(rows * n));
  if (rows == 0) return res;
  const int threads =
      softmax::detail::sampling_threads(softmax::detail::current_exec().threads, rows, len);
  const cpu::SamplingKernelTable& sk = cpu::sampling_kernels();
  // 1. Every shard's range.
  std::vector<WireRange> mine(static_cast<std::size_t>(rows), WireRange{-kInf, 0.0, 0.0});
  if (len > 0) {
    softmax::detail::parallel_for(rows, threads, [&](int64_t b, int64_t e) {
      softmax::detail::RowScratch& s = softmax::detail::thread_scratch();
      for (int64_t r = b; r < e; ++r) {
        const cpu::RowRange rr =
            sk.row_range(softmax::detail::row_ptr(logits, r, s), logits.dtype, len);
        mine[r] = WireRange{rr.max, rr.has_nan ? 1.0 : 0.0, rr.max == kInf ? 1.0 : 0.0};
      }
    });
  }
  std::vector<WireRange> all(static_cast<std::size_t>(rows * size));
  comm.all_gather(mine.data(), static_cast<std::size_t>(rows) * sizeof(WireRange), all.data());
  std::vector<double> gmax(static_cast<std::size_t>(rows), -kInf);
  std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
  for (int64_t r = 0; r < rows; ++r) {
    bool nan = false, pinf = false;
    for (int q = 0; q < size; ++q) {
      const WireRange& w = all[static_cast<std::size_t>(q * rows + r)];
      nan = nan || w.has_nan != 0.0;
      pinf = pinf || w.has_pos_inf != 0.0;
      if (w.max > gmax[r]) gmax[r] = w.max;
    }
    errors[r] = nan                ? RowError::kNaN
                : pinf             ? RowError::kPosInf
                : gmax[r] == -kInf ? RowError::kAllNegInf
                                   : RowError::kNone;
  }
  softmax::detail::throw_first_row_error(op, "logits", errors);  // the same rows everywhere
  // 2. This slice's piece sums and top n, then every rank's.
  std::vector<int64_t> pieces(static_cast<std::size_t>(size)), tops(pieces.size());
  std::vector<std::size_t> counts(pieces.size()), first(pieces.size() + 1, 0);
  for (int q = 0; q < size; ++q) {
    pieces[q] = piece_count(lay.shards[q].offset, lay.shards[q].size);
    tops[q] = std::min(n, lay.shards[q].size);
    counts[q] = static_cast<std::size_t>(rows) *
                (static_cast<std::size_t>(pieces[q]) * sizeof(double) +
                 static_cast<std::size_t>(tops[q]) * sizeof(LogprobCandidate));
    first[q + 1] = first[q] + counts[q];
  }
  std::vector<unsigned char> send(counts[me]), recv(first[size]);
  const std::size_t row_bytes = counts[me] / static_cast<std::size_t>(rows);
  if (len > 0) {
    softmax::detail::parallel_for(rows, threads, [&](int64_t b, int64_t e) {
      softmax::detail::RowScratch& s = softmax::detail::thread_scratch();
      std::vector<double> sums;
      std::vector<LogprobCandidate> top;
      for (int64_t r = b; r < e; ++r) {
        softmax::detail::top_logprobs_slice(softmax::detail::row_ptr(logits, r, s), logits.dtype,
                                            len, n, class_offset, gmax[r], temperature, sums, top);
        unsigned char* dst = send.data() + static_cast<std::size_t>(r) * row_bytes;
        // (n = 0 leaves `top` empty: memcpy from its null data would be undefined even for 0 bytes)
        if (!sums.empty()) std::memcpy(dst, sums.data(), sums.size() * sizeof(double));
        if (!top.empty()) {
          std::memcpy(dst + sums.size() * sizeof(double), top.data(),
                      top.size() * sizeof(LogprobCandidate));
        }
      }
    });
  }
  comm.all_gather(send.empty() ? nullptr : send.data(), recv.data(), counts.data());
  std::vector<LogprobCandidate> cand;
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0.0;
    cand.clear();
    for (int q : lay.order) {
      const std::size_t rb = counts[q] / static_cast<std::size_t>(rows);
      const unsigned char* src = recv.data() + first[q] + static_cast<std::size_t>(r) * rb;
      for (int64_t p = 0; p < pieces[q]; ++p) {
        double v;
        std::memcpy(&v, src + static_cast<std::size_t>(p) * sizeof(double), sizeof v);
        total += v;
      }
      const unsigned char* ts = src + static_cast<std::size_t>(pieces[q]) * sizeof(double);
      for (int64_t j = 0; j < tops[q]; ++j) {
        LogprobCandidate c;
        std::memcpy(&c, ts + static_cast<std::size_t>(j) * sizeof(LogprobCandidate), sizeof c);
        cand.push_back(c);
      }
    }
    std::sort(cand.begin(), cand.end(), [](const LogprobCandidate& a, const LogprobCandidate& b) {
      return a.key != b.key ? a.key > b.key : a.id < b.id;
    });
    const double log_sum = std::log(total);
    for (int64_t j = 0; j < n; ++j) {
      res.ids[static_cast<std::size_t>(r * n + j)] = cand[static_cast<std::size_t>(j)].id;
      res.logprobs[static_cast<std::size_t>(r * n + j)] =
          cand[static_cast<std::size_t>(j)].z - log_sum;
    }
  }
  return res;
}

}  // namespace softmax::dist
