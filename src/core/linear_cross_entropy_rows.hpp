// src/core/linear_cross_entropy_rows.hpp: the passes of linear_cross_entropy, split so that a
// caller holding only some rows of the weight (a vocabulary shard, src/dist) runs the same code:
// validation into an LceJob, pass 1 per 32768-class block (per-row block partials), the merge
// of the blocks in class order, the per-row losses, and pass 2 (the gradients).
//
// Blocks: the classes are cut at every multiple of kLceBlock (global ids); inside a block the
// vocabulary chunks start at the block's first class. Pass 1 gives every row one partial per
// block (max, sum exp, sum_c w_c L_c, NaN flag); the row's statistics are the blocks merged in
// class order. A shard whose offset is a multiple of kLceBlock therefore computes exactly the
// single-process blocks (and the same GEMM shapes), so its partials, and everything made from
// the merged statistics, have the single-process bits.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "src/core/cross_entropy_impl.hpp"

namespace softmax::detail {

inline constexpr int64_t kLceBlock = 32768;

// Everything the passes need, fixed after validation.
struct LceJob {
  int64_t n = 0, d = 0;
  int64_t v = 0;   // classes of a row (all ranks together)
  int64_t vn = 0;  // weight rows held: global classes [offset, offset + vn)
  int64_t offset = 0;
  const float* H = nullptr;
  int64_t ldh = 0;
  const float* W = nullptr;  // row 0 = class `offset`
  int64_t ldw = 0;
  int64_t chunk = 1;       // vocabulary columns per GEMM (<= kLceBlock)
  std::vector<int64_t> t;  // global targets
  int64_t ignore_index = -100;
  std::vector<double> w;  // class weights (v entries)
  std::vector<float> wf;  // the same in f32 (empty when unweighted)
  bool has_w = false;
  double w_sum = 0.0, eps = 0.0, z = 0.0;
  std::vector<double> go;  // per-row upstream gradients, or empty
  float* GH = nullptr;
  int64_t ldgh = 0;
  float* GW = nullptr;  // rows as W
  int64_t ldgw = 0;
};

// Validates every argument (the op's rules: softmax/cross_entropy.hpp) and builds the job.
// class_count: the classes of a row when weight holds only [offset, offset + weight rows) of
// them (-1: weight holds them all). With global_checks false the checks that need
// class_count (target range, class-weight length) are skipped.
LceJob prepare_lce(const char* op, const ConstTensorView& hidden, const ConstTensorView& weight,
                   const ConstTensorView& targets, const LinearCrossEntropyOutputs& out,
                   const CrossEntropyOptions& o, int64_t class_count = -1, int64_t offset = 0,
                   bool global_checks = true);

// One row's partial over one block (or over blocks merged).
struct LceStats {
  double m = -std::numeric_limits<double>::infinity();
  double s = 0.0;
  double dot = 0.0;  // sum_c w_c L_c (label smoothing only)
  double nan = 0.0;  // 1: the row holds NaN
};

// The blocks of [offset, offset + vn).
int64_t lce_block_count(int64_t offset, int64_t vn);

// Pass 1 on the rows held: blocks[r * count + b] (count = lce_block_count), and xt[r] = the
// target logit where row r's target is held (owned[r] = 1).
void lce_pass1(const char* op, const LceJob& job, int threads, std::vector<LceStats>& blocks,
               std::vector<double>& xt, std::vector<unsigned char>& owned);

// Merges `into` with the next block in class order (pass 1's online rule).
void lce_merge(LceStats& into, const LceStats& next);

// Row results from the merged statistics: loss (0 for ignored rows), lse; and the mean's
// denominator contribution.
struct LceRows {
  std::vector<LceStats> st;  // merged, per row
  std::vector<double> xt;    // target logit, per row
  std::vector<double> loss, lse;
  ReductionPlan plan{1.0, 1.0};
};
void lce_finish_rows(const LceJob& job, const CrossEntropyOptions& o, LceRows& rows);

// Pass 2 on the rows held: job.GW (when set) gets its rows' gradient, and grad_hidden's partial
// over the classes held is written to gh (n x d, leading dimension ldgh; beta 0 first).
void lce_pass2(const char* op, const LceJob& job, const LceRows& rows, int threads, float* gh,
               int64_t ldgh);

// Writes loss and lse.
void lce_store(const LceJob& job, const LinearCrossEntropyOutputs& out,
               const CrossEntropyOptions& o, const LceRows& rows);

}  // namespace softmax::detail
