// softmax/dist.hpp: vocabulary-parallel ops. The class axis of every row is sharded across the
// ranks of a process group (Megatron-LM's vocab-parallel LM head): rank r holds classes
// [class_offset_r, class_offset_r + n_r) of every row, no rank holds a whole row, and each op
// returns what the single-process op returns on the unsharded tensor. See
// docs/ops/distributed.md for the layout, what each op exchanges, determinism and failures.
//
// Layout. Every rank passes its own shard (x with n_r classes along `axis`, any n_r >= 0) and
// its class_offset_r. The shards of all ranks must tile [0, V) exactly (sorted by offset, each
// starts where the previous ends; empty shards may sit at any offset in [0, V]); every other
// dimension, the dtypes, the axis and the options must be the same on every rank.
//
// Determinism. A row is cut into chunks of kShardAlign (32768) classes from class 0, and the
// single-process ops merge per-chunk partial statistics in chunk order. When every shard's
// class_offset is a multiple of kShardAlign (an empty shard counts as aligned), each rank
// computes exactly those chunk partials and every rank merges the gathered partials in the same
// order, so results are bit-identical to the single-process call, on every rank, for every rank
// count. default_shard() returns such a layout for any V and R (the CLI uses it). Other layouts
// give results within the same documented bounds (ops.hpp) but not the same bits (the partials
// of a chunk cut by a shard boundary are formed from different runs). argmax is bit-identical
// for every layout.
//
// Communication (per call; bytes per row per rank, P = 40 bytes per chunk partial, C_r the
// chunks of rank r's shard, C = sum C_r): one agreement all-gather of a fixed 512-byte record
// per rank (validity, layout, shape), then
//   softmax, log_softmax, logsumexp: one all-gather of C_r * P bytes per row (f32/bf16/f16);
//     f64 rows longer than one chunk first all-gather the chunk maxima (C_r * P), as the
//     single-process path finds an f64 row's max before summing; log modes with f32 compute
//     redo the sum of a near-certain row (sum < 1 + 2^-20, see ops.hpp) with the row max known:
//     one more all-gather for those rows only.
//   argmax: one all-gather of 24 bytes per row.
//   cross_entropy: the softmax family's statistics (as log_softmax above), then one all-gather
//     of 16 bytes per row (hard targets: the target's logit from the rank holding it) plus, with
//     label smoothing or soft targets, 32 bytes per chunk per row (the chunk's sum_c v_c
//     (x_c - max), its long double redo, the soft-target mass): 2 collectives after the
//     agreement (Megatron-LM's fused count).
//   sample: 32 bytes per row (max, NaN, argmax), then per row by mode: top-k, min(k, n_r)
//     records of 8 bytes (16 for f64); top-p, 536 bytes, 8, then 8 (16) per candidate; neither,
//     16 bytes then 8 per draw from its owner (Gumbel-max: 16 per draw); greedy: nothing more.
//
// Failures. Each rank validates its own arguments first; the agreement all-gather then carries
// every rank's verdict and layout, so an invalid argument on any rank (bad shape or dtype,
// shards that do not tile [0, V), options that differ across ranks) makes every rank throw the
// same softmax::Error, naming the lowest failing rank and the rule, before any output is
// written. A rank that dies is the communicator's to report: the MPI communicator keeps MPI's
// default error handler (MPI_ERRORS_ARE_FATAL), so the job is aborted and the other ranks exit
// non-zero instead of waiting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "softmax/context.hpp"
#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "softmax/options.hpp"
#include "softmax/sampling.hpp"
#include "softmax/tensor.hpp"

namespace softmax::dist {

// Shard boundaries that are multiples of this give bit-identical results (see above).
inline constexpr int64_t kShardAlign = 32768;

// What a communicator has moved since construction or reset_stats().
struct CommStats {
  int64_t collectives = 0;     // collective calls
  int64_t bytes_sent = 0;      // bytes this rank contributed
  int64_t bytes_received = 0;  // bytes this rank received (its own contribution excluded)
};

// The process group. Implementations: MpiCommunicator (softmax/dist_mpi.hpp) over an MPI_Comm,
// NcclCommunicator (softmax/dist_nccl.hpp, CUDA builds) over an ncclComm_t and a stream.
// Every rank must make the same sequence of calls (a collective call); the ops below do.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // All-gather with per-rank sizes: rank r contributes counts[r] bytes from `in`; `out`
  // (sum of counts bytes) receives the contributions in rank order. `counts` (size() entries)
  // must be the same on every rank. Throws softmax::Error if the transport reports an error.
  void all_gather(const void* in, void* out, const std::size_t* counts);
  // The same with `bytes` from every rank (out: size() * bytes).
  void all_gather(const void* in, std::size_t bytes, void* out);
  // All-to-all with per-pair sizes: this rank sends send_counts[q] bytes to rank q (`in` holds
  // the blocks for ranks 0, 1, ... in order) and receives recv_counts[q] bytes from rank q
  // (`out`, blocks in rank order); recv_counts[q] here must equal send_counts[rank()] on q.
  // Throws softmax::Error if the transport reports an error.
  void all_to_all(const void* in, const std::size_t* send_counts, void* out,
                  const std::size_t* recv_counts);

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = CommStats{}; }

 protected:
  // The transport: as all_gather. `in` may be null when counts[rank()] == 0.
  virtual void do_all_gather(const void* in, void* out, const std::size_t* counts) = 0;
  // The transport: as all_to_all.
  virtual void do_all_to_all(const void* in, const std::size_t* send_counts, void* out,
                             const std::size_t* recv_counts) = 0;

 private:
  CommStats stats_;
};

// The default layout: rank `rank` of `ranks` gets the classes [offset, offset + size) of a
// vocabulary of `vocab` classes. Chunks of kShardAlign classes are dealt out contiguously, as
// evenly as whole chunks allow (the first ceil(V / kShardAlign) mod R ranks get one more), so
// every offset is aligned and results are bit-identical to the single-process call. For
// V <= kShardAlign one rank holds everything and the others are empty.
// Throws softmax::Error for vocab < 0, ranks < 1 or rank outside [0, ranks).
struct Shard {
  int64_t offset = 0;
  int64_t size = 0;
};
Shard default_shard(int64_t vocab, int rank, int ranks);

// The softmax family on a sharded class axis. Shapes: x is this rank's shard (n_r classes along
// `axis`, the other dims the same on every rank), any strides, dtype f32, f64, bf16 or f16.
//   softmax / log_softmax: y has x's shape (this rank's shard of the result); dtype pairs and
//     aliasing as the single-process ops (ops.hpp).
//   logsumexp: y has the reduced shape (the axis dropped, or kept with size 1 with keepdims):
//     the whole result, on every rank.
//   argmax: indices (i64 or i32) of the reduced shape: the global class id of each row's first
//     maximum (the first NaN if any), on every rank.
// options: as the single-process ops (axis, temperature, keepdims; threads as the Context).
// Error bound: the single-process op's (ops.hpp), bit-identical to it on aligned layouts.
// Throws softmax::Error on every rank (see the header comment); nothing is written then.
void softmax(Communicator& comm, ConstTensorView x, TensorView y, int64_t class_offset,
             const SoftmaxOptions& options = {}, const Context& context = {});
void log_softmax(Communicator& comm, ConstTensorView x, TensorView y, int64_t class_offset,
                 const SoftmaxOptions& options = {}, const Context& context = {});
void logsumexp(Communicator& comm, ConstTensorView x, TensorView y, int64_t class_offset,
               const SoftmaxOptions& options = {}, const Context& context = {});
void argmax(Communicator& comm, ConstTensorView x, TensorView indices, int64_t class_offset,
            const SoftmaxOptions& options = {}, const Context& context = {});

// cross_entropy (softmax/cross_entropy.hpp) on a sharded class axis, forward and backward.
// logits: this rank's shard, (N, n_r) or (N, n_r, d1, ..., dk) (class axis 1) or (n_r).
// targets: hard class ids (global, in [0, V) or ignore_index) of the rows' shape, the same on
// every rank; or soft targets (probabilities) sharded like the logits. options.weight: the whole
// (V) weight vector on every rank; grad_output likewise whole. Every option of the
// single-process call (ignore_index, weights, label_smoothing from the global statistics,
// z_loss, every reduction, normalizer, grad_scale) means the same; vocab_chunk must be 0.
// Outputs: loss and lse whole, on every rank; grad and log_probs: this rank's shard (the
// logits' shard shape). Bit-identical to the single-process call on aligned layouts (see the
// header comment); other layouts within the single-process bounds. Throws softmax::Error on
// every rank (targets, weights or grad_output that differ across ranks included); nothing is
// written then.
void cross_entropy(Communicator& comm, ConstTensorView logits, ConstTensorView targets,
                   const CrossEntropyOutputs& out, int64_t class_offset,
                   const CrossEntropyOptions& options = {}, const Context& context = {});

// linear_cross_entropy (softmax/cross_entropy.hpp) with the classifier sharded by vocabulary
// rows (Megatron-LM's vocab-parallel LM head): rank r holds weight rows [class_offset,
// class_offset + n_r) of the (V, D) matrix; the (N, V) logits are never held on any rank.
// hidden: (N, D) f32, the same on every rank (hashed in the agreement); weight: (n_r, D) f32;
// targets: (N) i32/i64 global class ids, every rank. Outputs: loss and lse whole on every rank;
// grad_weight: (n_r, D), this rank's rows; grad_hidden: (N, D) whole on every rank (the sum of
// every rank's partial, added in class order in f64 and rounded once: the same bits on every
// rank). Every option of the single-process call means the same (vocab_chunk too; class weights
// and grad_output whole on every rank).
// Exactness: with every shard offset a multiple of 32768 (default_shard) the loss, lse and
// grad_weight are bit-identical to the single-process call (its passes run per 32768-class
// block and merge the blocks in class order, as here); grad_hidden is bit-identical for one
// rank, and otherwise within the single-process bound of grad_hidden plus 2^-24 |grad_hidden|
// (R partials of f32 GEMM sums added in f64 instead of one GEMM accumulation). Other layouts:
// every output within the single-process bounds.
// Communication after the agreement: 1 all-gather of 16 + 32 B_r bytes per row (B_r: this
// rank's 32768-class blocks) for the statistics and the target logit; with grad_hidden an
// all-reduce of N x D floats (a reduce-scatter and an all-gather, 2 (R - 1) / R * 4 N D bytes
// sent per rank, as Megatron's backward of the column-parallel linear layer).
// Throws softmax::Error on every rank (hidden, targets or options that differ across ranks
// included); nothing is written then.
void linear_cross_entropy(Communicator& comm, ConstTensorView hidden, ConstTensorView weight,
                          ConstTensorView targets, const LinearCrossEntropyOutputs& out,
                          int64_t class_offset, const CrossEntropyOptions& options = {},
                          const Context& context = {});

// sample (softmax/sampling.hpp) on a sharded vocabulary: the same token ids as the
// single-process softmax::sample(whole logits, tokens, params, seed, offset), exactly, for every
// layout (aligned or not) and rank count, on every rank.
// Shapes: logits (B, n_r): this rank's shard of the vocabulary (any strides, n_r >= 0), dtype
// f32, f64, bf16 or f16, B and the dtype the same on every rank; tokens (B) or (B, D), i64:
// global token ids in [0, V), the whole result written on every rank. params, seed and offset
// mean what they mean to softmax::sample (temperature, top_k, top_p, min_p, per-row values,
// streams, seeds, offsets, method; draw d uses offset + d) and must be the same on every rank
// (compared by hash); params.threads as the Context. params.processors must be null (logit
// processors act on global token ids: kUnsupported).
// Exactness: the tempered weights w_i = exp((x_i - max) / T) are computed elementwise with the
// global row max by the single-process kernel, so each token's weight, key and integer mass are
// the single-process ones; every filter boundary is then found by the same exact integer select
// on a candidate list that holds the single-process kept prefix, and the uniform of each draw is
// the single-process Philox value.
// Collectives after the agreement (bytes per row per rank; f64 records are 16 bytes, else 8):
//   1. every row: 32 bytes (shard max, NaN flag, greedy argmax). Greedy rows (T = 0) end here.
//   2. top-k (0 < k < V): the shard's min(k, n_r) top records (id, weight), padded: O(k).
//      top-p alone: 536 bytes (the shard's mass, its local top-p boundary key, and its mass
//      above each of 63 binades of weight). Neither (min_p and temperature only), inverse CDF:
//      16 bytes (the shard's kept mass); Gumbel-max: 16 bytes per draw (the shard's best Gumbel
//      key), which decides the row.
//   3. top-p alone: 8 bytes (a count), then one record per candidate: a token whose key
//      reaches both the smallest local boundary and the binade where the gathered masses first
//      reach the goal (a superset of the global prefix: at most the prefix, the tokens tied
//      with its boundary and the rest of the boundary's binade). Neither, inverse CDF: 8 bytes
//      per draw, from the one rank whose share of the kept mass holds the draw.
//   So 2 to 5 collectives in all (greedy 2, top-k 3, top-p 5, neither 4, Gumbel-max neither
//   3; a batch mixing modes runs the union), each row's bytes independent of V except through
//   k and the top-p candidates; all rows of a call travel together.
// Errors: every sample rule (softmax/sampling.hpp) and the layout rules (header comment) throw
// the same softmax::Error on every rank; a row holding NaN or +inf on any shard, or all -inf
// across all shards, names the first such row. Nothing is written to tokens when thrown.
void sample(Communicator& comm, ConstTensorView logits, TensorView tokens, int64_t class_offset,
            const SamplingParams& params, uint64_t seed, uint64_t offset = 0,
            const Context& context = {});

// top_logprobs (softmax/sampling.hpp) on a sharded vocabulary: per row of logits (B, n_r), this
// rank's shard (any strides, n_r >= 0, dtype f32/f64/bf16/f16, B the same on every rank), the n
// most probable global ids under softmax(x / temperature) (by logit, lowest id on ties) and their
// log-probabilities, the whole result on every rank. Exact ids for every layout; the
// log-probabilities are the single-process values bit for bit when every shard starts on a
// multiple of 32768 (the weight sums run per 32768-class piece, added in class order, as the
// single-process call adds them), otherwise within its bound. 0 <= n <= V; temperature finite
// and > 0, the same on every rank.
// Collectives after the agreement: 2 all-gathers: 24 bytes per row (the shard's max, NaN and
// +inf flags), then per row 8 bytes per 32768-class piece of the shard plus 24 bytes per entry of
// the shard's top min(n, n_r): O(n), not O(V).
// Errors: as top_logprobs (a row with NaN or +inf on any shard, or -inf everywhere, names the
// first such row), n > V, and the layout rules; the same softmax::Error on every rank.
TopLogprobs top_logprobs(Communicator& comm, ConstTensorView logits, int64_t n,
                         int64_t class_offset, double temperature = 1.0,
                         const Context& context = {});

// Takes this rank's part in an op above that it cannot call, for example because its front end
// failed to convert its own arguments: joins the validity agreement every op starts with as a
// failing rank, so the other ranks' call of the op and this call throw the same softmax::Error
// (of `kind`, kInvalidArgument by default) naming this rank and `what`, instead of the others
// waiting forever. Collective: call it exactly where this rank would have called the op.
// Always throws.
[[noreturn]] void fail_op(Communicator& comm, const char* op, const std::string& what,
                          ErrorKind kind = ErrorKind::kInvalidArgument);

}  // namespace softmax::dist
