// src/dist/agree.hpp: the agreement step every vocabulary-parallel op starts with. Each rank
// runs its own validation; one all-gather of a fixed record then carries every rank's verdict,
// shard and the values that must match across ranks, so every rank reaches the same decision:
// all proceed, or all throw the same softmax::Error (naming the lowest failing rank and rule).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "src/core/row_stats.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax::detail::dist {

using softmax::dist::Communicator;
using softmax::dist::Shard;

// How an agreement key is shown in a mismatch message.
enum class KeyKind : uint8_t { kInt, kDType, kDouble, kHash, kFlag, kReduction, kSamplingMethod };

// What a rank's validation reports when it passes.
struct LocalInfo {
  int64_t offset = 0;        // class_offset
  int64_t n = 0;             // classes in this rank's shard
  std::vector<int64_t> key;  // values that must be equal on every rank (shape, dtypes, ...)
  std::vector<std::string> key_names;  // what each key entry is, for the error message
  std::vector<KeyKind> key_kinds;      // how to show each entry
  void add(const std::string& name, int64_t v, KeyKind kind = KeyKind::kInt) {
    key.push_back(v);
    key_names.push_back(name);
    key_kinds.push_back(kind);
  }
  void add_dtype(const std::string& name, DType t) {
    add(name, static_cast<int64_t>(t), KeyKind::kDType);
  }
  void add_flag(const std::string& name, bool set) { add(name, set ? 1 : 0, KeyKind::kFlag); }
  void add_double(const std::string& name, double v);  // compared bit for bit
  void add_hash(const std::string& name, int64_t h) { add(name, h, KeyKind::kHash); }
};

// The keys of the loss options every rank must pass alike (reduction, ignore_index, the bits of
// label_smoothing, z_loss, normalizer and grad_scale, hashes of the class weights and of
// grad_output).
void add_loss_option_keys(LocalInfo& info, const CrossEntropyOptions& o);

// The agreed layout.
struct Layout {
  int64_t vocab = 0;          // V: the classes of all shards
  std::vector<Shard> shards;  // per rank, in rank order
  std::vector<int> order;     // ranks with a non-empty shard, by offset
  // Partial counts per rank for `chunks_of(n)` chunks per row.
  std::vector<int64_t> chunks;  // per rank: chunks of its shard (0 for an empty shard)
};

// Maximum number of key entries.
inline constexpr int kMaxKey = 24;

// Runs `check` (this rank's validation, may throw softmax::Error), all-gathers the verdicts and
// throws on every rank when any rank failed, keys differ, or the shards do not tile [0, V).
// `op` names the op in messages ("dist::softmax").
Layout agree(Communicator& comm, const char* op, const std::function<LocalInfo()>& check);

// Throws the same softmax::Error on every rank unless `ok` holds on every rank (one
// all-gather); `what` is this rank's message when !ok.
void agree_ok(Communicator& comm, const char* op, bool ok, ErrorKind kind, const std::string& what);

// The statistics of every row as the single-process row_stats / row_stats_log compute them,
// from this rank's rows (xrows: n contiguous classes each) and every other rank's partials
// (src/dist/softmax_ops.cc). softmax mode with `work` stores the exps (work[r]: n elements of
// the compute type) and block maxima (ceil(n / kBlockElems) per row). Collective.
std::vector<RowStats> all_row_stats(Communicator& comm, const Layout& lay,
                                    const std::vector<const char*>& xrows, int64_t n, DType xt,
                                    const cpu::Temperature& temp, cpu::RowMode mode, int threads,
                                    const std::vector<char*>* work, double* block_max);

// FNV-1a over a stream of 64-bit values, for the agreement keys: replicated inputs (targets,
// class weights, upstream gradients, hidden states) must be the same on every rank, and the
// agreement compares their hashes.
struct Hash {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  }
  // Every element of a view in row-major order (integers as themselves, floats by the bits of
  // their f64 value).
  void add_view(const ConstTensorView& v);
  // n contiguous bytes, 8 at a time (the tail zero-padded).
  void add_bytes(const void* p, std::size_t n);
  int64_t value() const { return static_cast<int64_t>(h); }
};

// data (n floats) becomes the sum over the ranks of every rank's data, added in `order` (the
// ranks by class offset, then the ranks not in it in rank order) in f64 and rounded once: the
// same bits on every rank. A reduce-scatter (all_to_all of n / R slices) then an all-gather of
// the summed slices: 2 collectives, 2 (R - 1) / R * 4n bytes sent per rank. Collective.
void all_reduce_sum(Communicator& comm, const std::vector<int>& order, float* data, std::size_t n);

}  // namespace softmax::detail::dist
