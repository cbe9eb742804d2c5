// softmax/ops.hpp: softmax, log_softmax, logsumexp and their neighbours on strided tensors.
//
// Common rules for every function here
// - Views: x and y are strided views (softmax/tensor.hpp). The op runs along
//   `options.axis` (negative counts from the end). Rows are the 1-d slices along that axis.
// - dtypes: f32, bf16 and f16 inputs compute in f32 and may write f32, bf16 or f16 (e.g. f16 in,
//   f32 out); f64 computes in f64 and writes f64. bf16/f16 results are rounded once
//   (round-to-nearest-even) from the f32 result.
// - Aliasing: y may be exactly x (same data, dtype and strides: in place). Any other
//   overlap of the byte ranges of x and y is rejected with ErrorKind::kOverlap.
// - Devices: softmax, log_softmax, logsumexp and argmax (and the backward passes,
//   softmax/backward.hpp) run where their tensors live: CPU views on the CPU, CUDA views
//   (Device::cuda, device memory) on the GPU on Context::cuda_stream, in builds with the CUDA
//   backend (docs/gpu.md: rows contiguous along the axis with one constant row stride; argmax
//   writes i64). Tensors of one call on different devices are an error (kInvalidArgument); a
//   CUDA view in a build without CUDA, or a layout the CUDA backend does not take, is
//   kUnsupported. hardmax and sigmoid take CPU views only.
// - Workspace: softmax_workspace_bytes (and log_softmax_, logsumexp_) give the scratch a call
//   needs with a context; given a Context::workspace of that size the call makes no heap
//   allocation (CPU; except f32/bf16/f16 inputs with T outside [2^-100, 2^100], computed on an
//   f64 copy) and no cudaMalloc (CUDA).
// - Errors: softmax::Error (softmax/error.hpp) for a bad axis, mismatched shapes or dtypes,
//   temperature <= 0 / NaN / inf, overlapping buffers, sizes or byte extents that overflow
//   int64, devices (above), or a workspace that is too small or not 256-byte aligned. When it
//   is thrown, nothing has been written to y.
// - Determinism: a row's result depends only on that row's values, its length and the options
//   (not on thread count, batch size, the row's position or the SIMD target chosen at run
//   time): all targets use the same operation order, exact FMA everywhere (std::fma on the
//   scalar fallback), no compiler contraction, and long rows are split into fixed chunks whose
//   (max, sum) partials merge in a fixed order.
// - Algorithm: max subtraction; per-chunk online (max, sum) with block-wise rescaling
//   (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax", arXiv:1805.02867);
//   the exponent x - max is carried as an exact two-float sum (Knuth's TwoSum) so its rounding
//   does not amplify through exp; exps are summed in f64 (compensated for f64 input) in a fixed
//   lane layout and order. Paths per shape: docs/design.md; SOFTMAX_VERBOSE=1 logs the choice.
// - Empty: a tensor with zero rows is a no-op; rows of length 0 give an empty output
//   (logsumexp: -inf).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "softmax/options.hpp"
#include "softmax/context.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// y = softmax(x / T) along options.axis: y_i = exp((x_i - max) / T) / sum_j exp((x_j - max) / T).
// Shapes: y.shape == x.shape. dtypes: see the common rules.
// Edge semantics (as PyTorch, JAX and SciPy): a row holding NaN or +inf, or all -inf, gives NaN
// everywhere in that row; -inf entries of a row with a finite maximum give exactly 0.
// Error bound (tested against a long double reference, docs/accuracy.md), relative to the exact
// softmax(x / T): <= 4 ulp of the compute type per element, for every T (f32 measured max 2.2 ulp,
// f64 3.6). (x - max) / T never depends on the rounding of 1/T: 1/T is carried as a pair (f32
// pair for 1/T in [2^-100, 2^100], f64 pair from T itself), or T divides (f64, 1/T overflowing
// or below 2^-960); for T outside [2^-100, 2^100] f32/bf16/f16 inputs are computed in f64 and
// rounded, so an extreme T gives the correctly rounded limit (e.g. an exact one-hot). bf16/f16
// output: the f32 result rounded once. Hence a row sums to 1 within 4.8e-7 (f32; each element
// within 4 ulp); a 1,048,576-wide f32 row was measured within 8e-9.
// Rows whose x - max overflows (x and max finite, of opposite huge signs) fall back to
// x / T - max / T for those elements, so a huge T still gives the right (flat) distribution.
// Throws softmax::Error (see the common rules).
void softmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options = {},
             const Context& context = {});

// y = log_softmax(x / T) = (x - max) / T - log(sum_j exp((x_j - max) / T)), computed in that
// form (never as log(softmax)), so n equal logits give exactly -log(n) whatever their size.
// Shapes/dtypes as softmax. Edge semantics: a row holding NaN or +inf, or all -inf, gives NaN;
// -inf entries of a row with a finite maximum give -inf.
// log(sum) is taken as log1p(rest) when one term is the maximum's exact 1, so log-probs of a
// near-certain token keep their relative accuracy (e.g. {0, -30} gives -9.357623e-14).
// Error bound: |err| <= 6 * 2^-24 * |y_i| + 2^-150 (3 ulp, plus half the least f32 subnormal)
// for f32 compute, 6 * 2^-53 * |y_i| + 2^-1075 for f64 (measured max 1.1 ulp), for every T (no
// term for the rounding of 1/T, see softmax). The absolute term is the rounding of a subnormal
// or underflowing log-prob (a near-certain token: y = -log1p(rest) below 2^-126); near-certain
// f32 rows sum their exps in f64, so exps below the f32 normal range are not quantised.
// Throws softmax::Error.
void log_softmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options = {},
                 const Context& context = {});

// y = logsumexp(x / T) = max / T + log(sum_i exp((x_i - max) / T)) along options.axis, the log
// normaliser of softmax(x / T), so that log_softmax(x / T) = x / T - logsumexp(x / T).
// Shapes: y.shape is x.shape without the axis, or with it set to 1 when options.keepdims.
// dtypes: as softmax. Edge semantics: an all -inf row or an empty row gives -inf; a row with
// +inf (and no NaN) gives +inf; a row with NaN gives NaN.
// Error bound: |err| <= 2^-23 |y| + 2^-23 min(1, |max| / T) + 2^-150 (f32 compute),
// 2^-51 |y| + 2^-52 min(1, |max| / T) + 2^-1075 (f64), for every T (max / T is carried as a
// pair). The min(1, |max| / T) term is the cancellation case, max < 0 with log(sum) close to
// -max / T (e.g. {-0.6931, -0.6932}: y ~ 0): there the result is as accurate as the exps in the
// sum (about an ulp of 1 each), not relative to |y|. When max / T = 0 the term vanishes and a
// result near 0 keeps its relative accuracy (log1p form, see log_softmax).
// Throws softmax::Error.
void logsumexp(ConstTensorView x, TensorView y, const SoftmaxOptions& options = {},
               const Context& context = {});

// Bytes of Context::workspace that softmax / log_softmax / logsumexp need for these arguments
// and this context (the thread count enters: one slice per worker). 0 when the call needs no
// scratch (e.g. contiguous rows of at most 2048 elements on the CPU). Validates the arguments
// as the op does (throws softmax::Error for the same inputs); writes nothing.
std::size_t softmax_workspace_bytes(const ConstTensorView& x, const TensorView& y,
                                    const SoftmaxOptions& options = {},
                                    const Context& context = {});
std::size_t log_softmax_workspace_bytes(const ConstTensorView& x, const TensorView& y,
                                        const SoftmaxOptions& options = {},
                                        const Context& context = {});
std::size_t logsumexp_workspace_bytes(const ConstTensorView& x, const TensorView& y,
                                      const SoftmaxOptions& options = {},
                                      const Context& context = {});

// indices = argmax of x along options.axis; the lowest index wins ties. NaN counts as larger
// than every number (the first NaN wins), as in NumPy and PyTorch.
// Shapes: as logsumexp (axis dropped, or kept with size 1 by keepdims).
// dtypes: x any floating dtype; indices i64 or i32. An empty row is an error (no argmax).
// Throws softmax::Error.
void argmax(ConstTensorView x, TensorView indices, const SoftmaxOptions& options = {},
            const Context& context = {});

// y = one_hot(argmax(x, axis)) along options.axis (ONNX Hardmax-13): 1 at the argmax (lowest
// index on ties), 0 elsewhere. Shapes: y.shape == x.shape. dtypes: any floating in/out.
// Throws softmax::Error.
void hardmax(ConstTensorView x, TensorView y, const SoftmaxOptions& options = {},
             const Context& context = {});

// y = 1 / (1 + exp(-x)) elementwise, computed as 1 / (1 + e) for x >= 0 and e / (1 + e) for
// x < 0 with e = exp(-|x|), so it never overflows. sigmoid(NaN) = NaN, sigmoid(+-inf) = 1, 0.
// Shapes: y.shape == x.shape (any rank, including 0). dtypes: as softmax.
// Error bound: <= 3 ulp (f32 and f64).
// Throws softmax::Error.
void sigmoid(ConstTensorView x, TensorView y, const ElementwiseOptions& options = {},
             const Context& context = {});

// One-row conveniences (contiguous spans); same semantics and bounds as above, one thread.
// Throw softmax::Error when x.size() != y.size() or temperature is invalid.
void softmax(std::span<const float> x, std::span<float> y, double temperature = 1.0);
void softmax(std::span<const double> x, std::span<double> y, double temperature = 1.0);
void log_softmax(std::span<const float> x, std::span<float> y, double temperature = 1.0);
void log_softmax(std::span<const double> x, std::span<double> y, double temperature = 1.0);
float logsumexp(std::span<const float> x, double temperature = 1.0);
double logsumexp(std::span<const double> x, double temperature = 1.0);
// Throws softmax::Error for an empty span.
int64_t argmax(std::span<const float> x);
int64_t argmax(std::span<const double> x);

}  // namespace softmax
