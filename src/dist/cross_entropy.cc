// src/dist/cross_entropy.cc: cross_entropy on a class axis sharded across ranks
// (softmax/dist.hpp). The single-process row pass (src/core/cross_entropy_rows.hpp) runs on
// every rank's classes; what a row needs from the other classes (log_softmax's statistics, the
// label-smoothing / soft-target sums per chunk, the target's logit) is gathered first, so every
// rank forms each row's loss from the same values in the same order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/cross_entropy_rows.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"
#include "src/dist/agree.hpp"

namespace softmax::dist {
namespace {

using softmax::detail::LossJob;
using softmax::detail::RowGlobals;
using softmax::detail::dist::agree;
using softmax::detail::dist::Hash;
using softmax::detail::dist::Layout;
using softmax::detail::dist::LocalInfo;

// What travels in the second all-gather, per row: the target's logit from the rank that holds
// it; per chunk of this rank: the label-smoothing / soft-target dot and the soft-target sum.
struct WireTarget {
  double xt;
  double owned;  // 1 on the rank holding the target
};
struct WireChunk {
  long double ld;  // the chunk's dot in long double when `d` overflowed
  double d;
  double s;
};

template <typename CT>
void run(Communicator& comm, const Layout& lay, LossJob& job, int threads) {
  const cpu::KernelTable& sk = cpu::kernels();
  (void)sk;
  const int me = comm.rank(), size = comm.size();
  const int64_t rows = job.rows, n = job.n;
  const DType xt = job.x.dtype;
  const auto xes = static_cast<int64_t>(dtype_size(xt));
  // This rank's rows, contiguous.
  std::vector<const char*> xr(static_cast<std::size_t>(rows));
  std::vector<unsigned char> copy;
  if (job.class_step != 1 && n > 1) copy.resize(static_cast<std::size_t>(rows * n * xes));
  for (int64_t r = 0; r < rows; ++r) {
    const char* row = static_cast<const char*>(job.x.data) +
                      softmax::detail::row_offset(r, job.row_dims, job.x_row_strides) * xes;
    if (copy.empty()) {
      xr[r] = row;
    } else {
      char* dst = reinterpret_cast<char*>(copy.data()) + r * n * xes;
      softmax::detail::gather(row, job.class_step, n, static_cast<std::size_t>(xes), dst);
      xr[r] = dst;
    }
  }
  // 1. log_softmax's statistics of every row (one all-gather, as dist::log_softmax).
  const std::vector<softmax::detail::RowStats> st =
      softmax::detail::dist::all_row_stats(comm, lay, xr, n, xt, cpu::Temperature{},
                                           cpu::RowMode::kLogSoftmax, threads, nullptr, nullptr);
  // 2. The target logits and per-chunk sums (one all-gather).
  std::vector<CT> wct;
  if (job.has_w) wct.assign(job.w.begin(), job.w.end());
  const int64_t mine = lay.chunks[static_cast<std::size_t>(me)];
  const bool dots = job.needs_dot();
  std::vector<WireTarget> tl(job.soft ? 0 : static_cast<std::size_t>(rows));
  std::vector<WireChunk> cl(dots ? static_cast<std::size_t>(rows * mine) : 0);
  std::vector<std::vector<CT>> v(job.soft ? static_cast<std::size_t>(rows) : 0);
  softmax::detail::parallel_for(
      rows, rows * n >= softmax::detail::kMinParallelElems ? threads : 1,
      [&](int64_t b, int64_t e) {
        std::vector<double> sums;
        for (int64_t r = b; r < e; ++r) {
          const int64_t t = job.soft ? -1 : job.hard[static_cast<std::size_t>(r)];
          const bool kept = job.soft || t != job.ignore_index;
          if (!job.soft) {
            const bool own = kept && t >= job.offset && t < job.offset + n;
            tl[r] =
                WireTarget{own ? softmax::detail::load_as_double(xr[r], xt, t - job.offset) : 0.0,
                           own ? 1.0 : 0.0};
          }
          if (job.soft) softmax::detail::soft_weights(job, r, v[r], sums);
          if (!dots || n == 0) continue;
          const double m = !st[r].special() ? st[r].max : 0.0;
          std::vector<softmax::detail::DotPart> parts;
          if (kept) {
            const CT* wv = job.soft ? v[r].data() : job.has_w ? wct.data() + job.offset : nullptr;
            parts = softmax::detail::chunk_dots(xr[r], xt, wv, n, m);
          }
          for (int64_t c = 0; c < mine; ++c) {
            WireChunk w{0.0L, 0.0, 0.0};
            if (kept) {
              w.d = parts[c].d;
              w.ld = parts[c].ld;
            }
            if (job.soft) w.s = sums[c];
            cl[static_cast<std::size_t>(r * mine + c)] = w;
          }
        }
      });
  // One buffer per rank: [targets][chunks].
  const std::size_t tbytes = tl.size() * sizeof(WireTarget);
  std::vector<std::size_t> counts(static_cast<std::size_t>(size));
  std::vector<std::size_t> first(static_cast<std::size_t>(size) + 1, 0);
  for (int r = 0; r < size; ++r) {
    counts[r] =
        tbytes + (dots ? static_cast<std::size_t>(rows * lay.chunks[r]) * sizeof(WireChunk) : 0);
    first[r + 1] = first[r] + counts[r];
  }
  std::vector<unsigned char> send(counts[me]), recv(first[size]);
  if (tbytes) std::memcpy(send.data(), tl.data(), tbytes);
  if (!cl.empty()) std::memcpy(send.data() + tbytes, cl.data(), cl.size() * sizeof(WireChunk));
  comm.all_gather(send.empty() ? nullptr : send.data(), recv.data(), counts.data());
  // 3. Each row's loss and this rank's outputs, from the same globals on every rank.
  int64_t total_chunks = 0;
  for (int r : lay.order) total_chunks += lay.chunks[r];
  softmax::detail::parallel_for(
      rows, rows * n >= softmax::detail::kMinParallelElems ? threads : 1,
      [&](int64_t b, int64_t e) {
        std::vector<unsigned char> gs, ls;
        std::vector<softmax::detail::DotPart> parts(static_cast<std::size_t>(total_chunks));
        for (int64_t r = b; r < e; ++r) {
          RowGlobals g;
          g.st = st[r];
          if (!job.soft) {
            for (int q = 0; q < size; ++q) {
              WireTarget w;
              std::memcpy(&w, recv.data() + first[q] + r * sizeof(WireTarget), sizeof w);
              if (w.owned != 0.0) g.xt = w.xt;
            }
          }
          if (dots) {
            int64_t j = 0;
            for (int q : lay.order) {
              const unsigned char* base = recv.data() + first[q] + tbytes;
              for (int64_t c = 0; c < lay.chunks[q]; ++c) {
                WireChunk w;
                std::memcpy(&w, base + (r * lay.chunks[q] + c) * sizeof(WireChunk), sizeof w);
                parts[j].d = w.d;
                parts[j].ld = w.ld;
                ++j;
                g.s += w.s;
              }
            }
            const int64_t t = job.soft ? -1 : job.hard[static_cast<std::size_t>(r)];
            if (job.soft || t != job.ignore_index)
              g.dot = softmax::detail::combine_dots(parts.data(), j);
          }
          softmax::detail::finish_row(job, r, n > 0 ? xr[r] : nullptr, g,
                                      job.soft ? v[r].data() : nullptr,
                                      job.has_w ? wct.data() : nullptr, gs, ls);
        }
      });
}

}  // namespace

void cross_entropy(Communicator& comm, ConstTensorView logits, ConstTensorView targets,
                   const CrossEntropyOutputs& out, int64_t class_offset,
                   const CrossEntropyOptions& o, const Context& context) {
  const char* op = "dist::cross_entropy";
  std::optional<softmax::detail::ExecScope> scope;
  const Layout lay = agree(comm, op, [&] {
    scope.emplace(op, context, o.threads);
    if (class_offset < 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "class_offset", std::to_string(class_offset),
                  "must be >= 0");
    }
    if (o.vocab_chunk != 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "vocab_chunk", std::to_string(o.vocab_chunk),
                  "applies to linear_cross_entropy only");
    }
    const LossJob pre =
        softmax::detail::prepare_loss(op, true, logits, targets, out, o, -1, class_offset, false);
    LocalInfo info;
    info.offset = class_offset;
    info.n = pre.n;
    auto key = [&](const char* name, int64_t v) { info.add(name, v); };
    key("the rank of logits", logits.rank());
    for (std::size_t j = 0; j < pre.row_dims.size(); ++j)
      key("a row dimension of logits", pre.row_dims[j]);
    info.add_dtype("the dtype of logits", logits.dtype);
    info.add_dtype("the dtype of targets", targets.dtype);
    info.add_flag("the grad output (Python: return_grad)", out.grad.has_value());
    info.add_flag("the log_probs output (Python: return_log_probs)", out.log_probs.has_value());
    info.add_flag("the lse output (Python: return_lse)", out.lse.has_value());
    info.add_dtype("the dtype of loss", out.loss.dtype);
    Hash h;
    if (!pre.soft) h.add_view(targets);
    info.add_hash("targets (hard targets: the same on every rank)", h.value());
    softmax::detail::dist::add_loss_option_keys(info, o);
    return info;
  });
  // The global checks (target range, weight length) see the same data on every rank (hashes
  // agreed), so every rank throws the same error or none.
  LossJob job = softmax::detail::prepare_loss(op, true, logits, targets, out, o, lay.vocab,
                                              class_offset, true);
  if (lay.vocab == 0 && job.rows > 0) {
    std::fill(job.lse.begin(), job.lse.end(), -std::numeric_limits<double>::infinity());
  } else if (job.rows > 0) {
    const int threads = softmax::detail::current_exec().threads;
    if (logits.dtype == DType::f64)
      run<double>(comm, lay, job, threads);
    else
      run<float>(comm, lay, job, threads);
  }
  softmax::detail::store_loss_outputs(job, out, o);
}

}  // namespace softmax::dist
