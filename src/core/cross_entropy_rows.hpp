// src/core/cross_entropy_rows.hpp: the row pass of cross_entropy / nll_loss, split so that a
// caller holding only some classes of every row (src/dist) runs the same code: validation into a
// LossJob, the row's global quantities (RowGlobals: statistics, the label-smoothing / soft-target
// sums, the target's logit), then finish_row on the classes held, and the reduction.
#pragma once

#include <cstdint>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "src/core/cross_entropy_impl.hpp"
#include "src/core/row_stats.hpp"
#include "src/cpu/training_kernels.hpp"

namespace softmax::detail {

// Everything the row pass needs, fixed after validation.
struct LossJob {
  bool logits = true;  // cross_entropy (true) or nll_loss (input holds log-probs)
  ConstTensorView x;
  int64_t c = 0;  // classes of a row (all ranks together)
  int64_t n = 0;  // classes held here: [offset, offset + n) (n == c in one process)
  int64_t offset = 0;
  int64_t rows = 0;
  int64_t class_step = 1;
  std::vector<int64_t> row_dims;       // (N, d1..dk), or () for 1-d input
  std::vector<int64_t> x_row_strides;  // x's strides for row_dims
  bool soft = false;
  ConstTensorView q;  // soft targets (x's shape)
  std::vector<int64_t> q_row_strides;
  int64_t q_class_step = 1;
  std::vector<int64_t> hard;  // hard targets per row (global class ids)
  int64_t ignore_index = -100;
  std::vector<double> w;  // class weights (all c classes)
  bool has_w = false;
  double w_sum = 0.0;
  double eps = 0.0, z = 0.0;
  double g = 1.0;
  ReductionPlan plan{1.0, 1.0};
  std::vector<double> go;  // per-row upstream gradients (reduction none), or empty
  const TensorView* grad = nullptr;
  const TensorView* lp = nullptr;
  std::vector<int64_t> grad_row_strides, lp_row_strides;
  int64_t grad_class_step = 1, lp_class_step = 1;
  std::vector<double> loss, lse;  // per row
  // Whether the row pass needs sum_c v_c (x_c - max) (label smoothing, soft targets).
  bool needs_dot() const { return soft || eps != 0.0; }
};

// Validates everything and builds the job. class_count: the row's classes when x holds only
// [offset, offset + x's classes) of them (-1: x holds the whole row). With global_checks false
// the checks that need class_count (target range, weight length) are skipped and the job is not
// complete (used for a rank's validation before the ranks agree on class_count).
LossJob prepare_loss(const char* op, bool logits, const ConstTensorView& x,
                     const ConstTensorView& targets, const CrossEntropyOutputs& out,
                     const CrossEntropyOptions& o, int64_t class_count = -1, int64_t offset = 0,
                     bool global_checks = true);

// sum_c v_c (x_c - shift): cpu::shifted_dot per 32768-class chunk, the chunk sums added in
// order; `wide`: the f64 total overflowed, `ld` is then the sum in long double.
struct ChunkedDot {
  double d = 0.0;
  long double ld = 0.0L;
  bool wide = false;
};

// A row's quantities that depend on all its classes.
struct RowGlobals {
  RowStats st{0.0, 1.0, 1.0, 0.0, false};  // cross_entropy: log_softmax's statistics
  ChunkedDot dot;                          // needs_dot(): sum_c v_c (x_c - max) over every class
  double s = 0.0;                          // soft: sum_c w_c q'_c (per chunk, chunks in order)
  double xt = 0.0;                         // hard and kept: x at the target
};

// The soft-target weights v_c = w_c ((1 - eps) q_c + eps / C) of row r's classes held, and
// their sums per 32768-class chunk (chunks from the first class held).
template <typename CT>
void soft_weights(const LossJob& job, int64_t r, std::vector<CT>& v,
                  std::vector<double>& chunk_sums);

// One chunk's sum_c v_c (x_c - shift); `ld` is that sum in long double when `d` overflowed.
struct DotPart {
  double d = 0.0;
  long double ld = 0.0L;
};
// The per-chunk dots of n contiguous classes (chunks from the first), v null: all 1.
template <typename CT>
std::vector<DotPart> chunk_dots(const void* x, DType t, const CT* v, int64_t n, double shift);
// Their sum in chunk order (long double when the f64 total overflows).
ChunkedDot combine_dots(const DotPart* parts, int64_t count);

// Loss, lse and outputs of row r from its globals: src holds the row's n classes held
// (contiguous), v (soft) their weights. Writes job.loss[r], job.lse[r], grad / log_probs.
template <typename CT>
void finish_row(LossJob& job, int64_t r, const void* src, const RowGlobals& g, const CT* v,
                const CT* w_ct, std::vector<unsigned char>& gs, std::vector<unsigned char>& ls);

// Writes the loss (reduced in row order) and lse outputs.
void store_loss_outputs(const LossJob& job, const CrossEntropyOutputs& out,
                        const CrossEntropyOptions& o);

}  // namespace softmax::detail
