// softmax/attention.hpp: softmax inside attention: masked softmax (forward and backward) and
// fused scaled-dot-product attention computed tile by tile with the online softmax.
//
// The score transform (shared by both ops, in this order, in the compute type f32 / f64):
//   x_ij = scale * s_ij                                   (s: a score, or q_i . k_j in attention)
//   x_ij = softcap * tanh(x_ij / softcap)                 (only when softcap > 0; Gemma 2)
//   x_ij = x_ij - alibi_slopes[h] * |p(i) - j|            (only when alibi_slopes is given;
//                                                          ALiBi, Press et al. 2022)
//   x_ij = x_ij + bias[..., i, j]                         (only when bias is given)
// then an entry is KEPT when all of these hold, and MASKED otherwise:
//   causal:        j <= p(i)
//   window_left:   j >= p(i) - window_left                (when window_left >= 0)
//   window_right:  j <= p(i) + window_right               (when window_right >= 0)
//   mask:          mask[..., i, j] != 0                   (when mask is given; nonzero = keep,
//                                                          as PyTorch's boolean attn_mask)
// where p(i) is the key position on query i's diagonal:
//   Align::kTopLeft:     p(i) = i                 (PyTorch's is_causal, torch.tril)
//   Align::kBottomRight: p(i) = i + Sk - Sq       (FlashAttention >= 2.1, KV-cache decoding:
//                                                  the last query sees every key)
// Edge semantics: masks are applied by SELECTION (a masked entry is replaced,
// never added to), so a NaN or inf in a masked score or bias never reaches the result. A row
// whose kept entries are all -inf (or that has no kept entry, e.g. Sk = 0) is FULLY MASKED: its
// softmax / attention output is 0, its logsumexp is -inf and its gradient is 0. A NaN in a kept
// entry makes that row NaN (as plain softmax); in masked_softmax a NaN or +inf kept entry makes
// every entry of the row NaN, the masked ones included.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "softmax/context.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// Which diagonal causal masking, sliding windows and ALiBi measure from when Sq != Sk.
enum class Align : uint8_t { kTopLeft, kBottomRight };

// Mask and score-transform options of masked_softmax and attention (see the top of this file).
struct MaskOptions {
  // Multiplies the scores first. masked_softmax: default 1; attention: default 1 / sqrt(D).
  // Must be finite.
  std::optional<double> scale;
  // Logit soft-capping cap * tanh(x / cap) (Gemma 2). 0 = off; otherwise finite and > 0.
  double softcap = 0.0;
  // Causal masking (key j visible to query i iff j <= p(i)).
  bool causal = false;
  // The diagonal p(i) used by causal, window_left/right and ALiBi. Explicit because libraries
  // disagree when Sq != Sk; the default is PyTorch's.
  Align align = Align::kTopLeft;
  // Sliding window (FlashAttention's window_size): keys p(i) - window_left ... p(i) +
  // window_right are kept; -1 = unbounded on that side. With causal, window_left = W keeps the
  // diagonal and the W keys before it (W + 1 keys).
  int64_t window_left = -1;
  int64_t window_right = -1;
  // Per-head ALiBi slopes (size H, the head axis: axis -3 of the scores, axis 1 of q); empty =
  // off. Finite values.
  std::vector<float> alibi_slopes;
  // Additive bias, dtype f32 / f64 / bf16 / f16, broadcastable (NumPy rules, aligned at the
  // trailing dims) to the scores' shape ((..., Sq, Sk); attention: (B, Hq, Sq, Sk)).
  // data == nullptr with rank 0 = none.
  ConstTensorView bias;
  // Boolean keep-mask as i32 or i64 (nonzero = keep; the library has no bool dtype),
  // broadcastable like bias. data == nullptr with rank 0 = none.
  ConstTensorView mask;
  // Worker threads (OpenMP). 0 = the OpenMP default (OMP_NUM_THREADS or all CPUs). Any
  // count is clamped to the number of CPUs the process may use (omp_get_num_procs()), and
  // to 1 in a child created by fork() (OpenMP's thread pool does not survive fork).
  // threads < 0 throws softmax::Error (kInvalidArgument).
  // Results do not depend on this value.
  int threads = 0;
};

// y = softmax(transform(scores)) along the last axis with the masks above.
// Shapes: scores (..., Sq, Sk), rank >= 2 (ALiBi needs rank >= 3: the head axis is -3);
//         y: the shape of scores; lse (overload): scores' shape without the last axis.
// dtypes: scores f32/bf16/f16 compute in f32 and y may be f32/bf16/f16; f64 computes and writes
//         in f64; lse is f32 or f64 (f64 only with f64 scores).
// Result: y_ij = exp(x_ij - m_i) / sum_kept exp(x_ik - m_i) for kept j, exactly 0 for masked j;
//         lse_i = m_i + log(sum_kept exp(x_ik - m_i)). Fully masked rows: y = 0, lse = -inf.
// Error bound: as softmax (ops.hpp) on the transformed row, plus the rounding of the transform
//   (scale: 0.5 ulp; softcap: tanh's few ulp; bias/ALiBi additions: 0.5 ulp each).
// y may alias scores exactly (in place); other overlaps are rejected.
// Throws softmax::Error for: rank < 2, mismatched shapes, non-broadcastable bias/mask, bad
//   dtypes, non-finite scale, softcap < 0 or non-finite, window < -1, ALiBi slopes of the wrong
//   size or non-finite, overlapping outputs. Nothing is written when it throws.
void masked_softmax(ConstTensorView scores, TensorView y, const MaskOptions& options = {},
                    const Context& context = {});
void masked_softmax(ConstTensorView scores, TensorView y, TensorView lse,
                    const MaskOptions& options, const Context& context = {});

// Backward of masked_softmax: dscores = d loss / d scores given dy = d loss / d y and the
// forward output y (same options as the forward call):
//   dx_ij = y_ij * (dy_ij - sum_k y_ik dy_ik)   (softmax backward, w.r.t. the transformed x)
//   dscores_ij = dx_ij * scale * (1 - tanh^2(scale * s_ij / softcap))  (the tanh factor only
//                                                                       with softcap)
// Masked entries and fully masked rows get exactly 0 (selection: even when dy is NaN or inf
// there). The gradient w.r.t. an additive bias equals dx (not returned separately).
// Shapes: dy, y, dscores: (..., Sq, Sk); scores: the same shape, needed only when softcap > 0
//   (otherwise pass an empty view: ConstTensorView()).
// dtypes: as the forward (f32/bf16/f16 computing in f32, or f64 throughout).
// Throws softmax::Error as the forward, and when softcap > 0 but scores is missing.
void masked_softmax_backward(ConstTensorView dy, ConstTensorView y, ConstTensorView scores,
                             TensorView dscores, const MaskOptions& options = {},
                             const Context& context = {});

// Scaled-dot-product attention, out = softmax(transform(q k^T)) v with the masks above.
// Shapes: q (B, Hq, Sq, D), k (B, Hkv, Sk, D), v (B, Hkv, Sk, Dv), out (B, Hq, Sq, Dv),
//   lse (overload) (B, Hq, Sq). Grouped-query attention: Hq must be a multiple of Hkv; query
//   head h reads key/value head h / (Hq / Hkv). Any strides (e.g. a KV cache view).
// dtypes: q, k, v the same, one of f32 / bf16 / f16 (computed in f32); out f32 / bf16 / f16
//   (rounded once from f32); lse f32.
// scale defaults to 1 / sqrt(D). Fully masked rows (incl. Sk = 0): out = 0, lse = -inf.
// Algorithm: FlashAttention-2 (Dao 2023, arXiv:2307.08691) on the CPU: queries in tiles of
//   64 rows, keys in tiles of 64 (fixed constants of the kernels); per key tile, S = q k^T, the
//   masks, the online softmax update of the running (max, sum) (Milakov & Gimelshein 2018) and O +=
//   P v. Extra memory is O(tile) per thread (plus, for decode, one (max, sum, Dv-vector) partial
//   per key split). Keys are cut into fixed splits of 1024; each split's partial (max, sum, O)
//   merges into the row's result in split order. Splits run in parallel when there are too few
//   (batch, head, query tile) items for the threads, e.g. decode (Sq = 1, long Sk). All split and
//   tile boundaries are fixed, and every dot product and sum runs in the same order on every SIMD
//   target, so a row's result depends only on its inputs: not on B, the thread count, the SIMD
//   target or whether the decode path ran.
// Error bound (f32, tested against a float64 reference that materialises the scores):
//   |out - ref| <= 1e-5 * max|v| for D <= 128 and moderate scores; bf16 inputs are exact in
//   f32, so bf16 adds only the final rounding of out.
// NaN in q or k at a kept position makes the row NaN; NaN/inf in v at a position whose weight
//   is 0 (masked or underflowed) propagates through 0 * v like any matrix product.
// Aliasing: out and lse may not overlap any input or each other.
// Throws softmax::Error for rank != 4, mismatched dims (B, D, Sk, Hq % Hkv), bad dtypes, the
//   option errors of masked_softmax (ALiBi slopes must have size Hq), overlaps. Nothing is
//   written when it throws.
void attention(ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out,
               const MaskOptions& options = {}, const Context& context = {});
void attention(ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out,
               TensorView lse, const MaskOptions& options, const Context& context = {});

// Backward of attention: the gradients dq, dk, dv of a loss given dout = d loss / d out, from
// the forward's inputs, its output `out` and its logsumexp `lse` (the overload above), with the
// forward's options. FlashAttention-2's backward (Dao 2023, Algorithm 2): every score tile is
// recomputed with the forward's kernels and turned into probabilities P = exp(x - lse), so the
// (Sq, Sk) scores are never held; dP = dout v^T, dS = P o (dP - rowsum(dout o out)),
// dq = scale dS k, dk = scale dS^T q, dv = P^T dout (with softcap, dS also carries the
// 1 - tanh^2 factor). GQA: dk, dv of a kv head sum over the Hq / Hkv query heads reading it.
// Masked entries and fully masked rows contribute exactly 0. bias and alibi_slopes get no
// gradient (the gradient of an additive bias is dS / scale, an (Sq, Sk) tensor).
// Shapes: q, dq (B, Hq, Sq, D); k, dk (B, Hkv, Sk, D); v, dv (B, Hkv, Sk, Dv);
//   out, dout (B, Hq, Sq, Dv); lse (B, Hq, Sq). Any strides.
// dtypes: q, k, v, out, dout the same, f32 / bf16 / f16 (computed in f32); lse f32;
//   dq, dk, dv f32 / bf16 / f16 (rounded once from f32).
// Work: two passes (dq per query tile; dk, dv per key tile), each recomputing P: 7 tile
//   products against the forward's 2. Extra memory: O(tile) per thread plus B * Hq * Sq
//   floats. No atomics: results do not depend on the thread count.
// Error bound (f32, tested against a float64 materialised reference): |dq - ref| <= 1e-4 *
//   max|ref| (likewise dk, dv) for D <= 128 and moderate scores; long double finite
//   differences agree within 2e-4 * max|ref|. bf16: out and dout are bf16 too, and their
//   rounding (2^-8) enters through rowsum(dout o out): within 1e-2 * max|ref| (tested).
// NaN or +inf in a kept score (lse NaN) makes that row's contributions NaN.
// Throws softmax::Error for the forward's shape / dtype / option errors, mismatched out, dout,
//   lse, dq, dk, dv shapes or dtypes, and any overlap of an output with an input or another
//   output. Nothing is written when it throws.
void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        TensorView dq, TensorView dk, TensorView dv,
                        const MaskOptions& options = {});

}  // namespace softmax
