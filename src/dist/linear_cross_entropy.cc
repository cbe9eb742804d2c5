// src/dist/linear_cross_entropy.cc: linear_cross_entropy with the weight sharded by vocabulary
// rows (softmax/dist.hpp). Every rank runs the single-process passes
// (src/core/linear_cross_entropy_rows.hpp) on its rows of the weight: pass 1 gives per-row
// partials per 32768-class block; one all-gather brings every rank's partials and the target
// logits, every rank merges them in class order (the single-process merge), and pass 2 writes
// this rank's rows of grad_weight and its partial of grad_hidden, which a deterministic
// all-reduce (all_reduce_sum) adds up. The (N, V) logits are never held, on any rank.
#include <cstring>
#include <optional>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "src/core/exec.hpp"
#include "src/core/linear_cross_entropy_rows.hpp"
#include "src/dist/agree.hpp"

namespace softmax::dist {
namespace {

using softmax::detail::LceJob;
using softmax::detail::LceRows;
using softmax::detail::LceStats;
using softmax::detail::dist::Hash;
using softmax::detail::dist::Layout;
using softmax::detail::dist::LocalInfo;

// Per row, after this rank's blocks: the target logit from the rank holding it.
struct WireTarget {
  double xt;
  double owned;
};

void run(Communicator& comm, const Layout& lay, const LceJob& job, const CrossEntropyOptions& o,
         int threads, const LinearCrossEntropyOutputs& out) {
  const char* op = "dist::linear_cross_entropy";
  const int me = comm.rank(), size = comm.size();
  const auto n = static_cast<std::size_t>(job.n);
  std::vector<LceStats> blocks;
  std::vector<double> xt;
  std::vector<unsigned char> owned;
  softmax::detail::lce_pass1(op, job, threads, blocks, xt, owned);
  // One all-gather: [targets (n)][blocks (n x this rank's blocks)].
  std::vector<int64_t> nb(static_cast<std::size_t>(size));
  std::vector<std::size_t> counts(static_cast<std::size_t>(size)), first(counts.size() + 1, 0);
  for (int r = 0; r < size; ++r) {
    nb[r] = softmax::detail::lce_block_count(lay.shards[r].offset, lay.shards[r].size);
    counts[r] = n * sizeof(WireTarget) + n * static_cast<std::size_t>(nb[r]) * sizeof(LceStats);
    first[r + 1] = first[r] + counts[r];
  }
  std::vector<unsigned char> send(counts[me]), recv(first[size]);
  for (std::size_t i = 0; i < n; ++i) {
    const WireTarget w{xt[i], owned[i] ? 1.0 : 0.0};
    std::memcpy(send.data() + i * sizeof(WireTarget), &w, sizeof w);
  }
  if (!blocks.empty()) {
    std::memcpy(send.data() + n * sizeof(WireTarget), blocks.data(),
                blocks.size() * sizeof(LceStats));
  }
  comm.all_gather(send.empty() ? nullptr : send.data(), recv.data(), counts.data());
  // Every row's statistics: the blocks of every rank, merged in class order.
  LceRows rows;
  rows.st.assign(n, LceStats{});
  rows.xt.assign(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (int q = 0; q < size; ++q) {
      WireTarget w;
      std::memcpy(&w, recv.data() + first[q] + i * sizeof(WireTarget), sizeof w);
      if (w.owned != 0.0) rows.xt[i] = w.xt;
    }
    for (int q : lay.order) {
      const unsigned char* base = recv.data() + first[q] + n * sizeof(WireTarget);
      for (int64_t b = 0; b < nb[q]; ++b) {
        LceStats s;
        std::memcpy(&s,
                    base + (i * static_cast<std::size_t>(nb[q]) + static_cast<std::size_t>(b)) *
                               sizeof(LceStats),
                    sizeof s);
        softmax::detail::lce_merge(rows.st[i], s);
      }
    }
  }
  softmax::detail::lce_finish_rows(job, o, rows);
  if (out.grad_hidden || out.grad_weight) {
    // grad_hidden: this rank's partial (contiguous), then summed over the ranks.
    std::vector<float> gh(out.grad_hidden ? n * static_cast<std::size_t>(job.d) : 0);
    softmax::detail::lce_pass2(op, job, rows, threads, out.grad_hidden ? gh.data() : nullptr,
                               job.d);
    if (out.grad_hidden) {
      softmax::detail::dist::all_reduce_sum(comm, lay.order, gh.data(), gh.size());
      for (std::size_t i = 0; i < n; ++i) {
        std::memcpy(job.GH + static_cast<int64_t>(i) * job.ldgh, gh.data() + i * job.d,
                    static_cast<std::size_t>(job.d) * sizeof(float));
      }
    }
  }
  softmax::detail::lce_store(job, out, o, rows);
}

}  // namespace

void linear_cross_entropy(Communicator& comm, ConstTensorView hidden, ConstTensorView weight,
                          ConstTensorView targets, const LinearCrossEntropyOutputs& out,
                          int64_t class_offset, const CrossEntropyOptions& o,
                          const Context& context) {
  const char* op = "dist::linear_cross_entropy";
  std::optional<softmax::detail::ExecScope> scope;
  const Layout lay = softmax::detail::dist::agree(comm, op, [&] {
    scope.emplace(op, context, o.threads);
    if (class_offset < 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "class_offset", std::to_string(class_offset),
                  "must be >= 0");
    }
    const LceJob pre =
        softmax::detail::prepare_lce(op, hidden, weight, targets, out, o, -1, class_offset, false);
    LocalInfo info;
    info.offset = class_offset;
    info.n = pre.vn;
    info.add("N (rows of hidden)", pre.n);
    info.add("D (columns of hidden and weight)", pre.d);
    info.add("vocab_chunk", o.vocab_chunk);
    info.add_flag("the grad_hidden output (Python: return_grad)", out.grad_hidden.has_value());
    info.add_flag("the grad_weight output (Python: return_grad)", out.grad_weight.has_value());
    info.add_flag("the lse output (Python: return_lse)", out.lse.has_value());
    info.add_dtype("the dtype of loss", out.loss.dtype);
    info.add_dtype("the dtype of targets", targets.dtype);
    Hash ht;
    ht.add_view(targets);
    info.add_hash("targets (the same on every rank)", ht.value());
    Hash hh;
    for (int64_t i = 0; i < pre.n; ++i) {
      hh.add_bytes(static_cast<const float*>(hidden.data) + i * pre.ldh,
                   static_cast<std::size_t>(pre.d) * sizeof(float));
    }
    info.add_hash("hidden (the same (N, D) states on every rank)", hh.value());
    softmax::detail::dist::add_loss_option_keys(info, o);
    return info;
  });
  // The checks that need V see the same data on every rank (hashes agreed).
  const LceJob job = softmax::detail::prepare_lce(op, hidden, weight, targets, out, o, lay.vocab,
                                                  class_offset, true);
  run(comm, lay, job, o, softmax::detail::current_exec().threads, out);
}

}  // namespace softmax::dist
