// src/cpu/gemm.hpp: the one f32 matrix product the CPU backend needs (linear_cross_entropy,
// the large-vocabulary losses), behind one function so the BLAS is chosen at configure time:
// OpenBLAS's CBLAS (the serial build, Debian libopenblas-serial-dev, default) or oneDNN's
// dnnl_sgemm (SOFTMAX_GEMM=onednn). See docs/design.md, "Matrix products".
//
// The product runs on the calling thread only: callers split work across threads themselves
// (detail::parallel_for over fixed blocks), so the thread count, a caller's thread pool and
// fork() behave as for every other op, and no BLAS-global thread setting is touched.
#pragma once

#include <cstdint>

namespace softmax::cpu {

// C = alpha * op(A) * op(B) + beta * C, row-major f32, op(X) = X or X^T (trans_*).
//   op(A): (m, k), op(B): (k, n), C: (m, n); lda/ldb/ldc are the row strides (elements) of the
//   matrices as stored. m, n, k >= 0; k == 0 gives C = beta * C (C = 0 when beta == 0, whatever
//   C held, NaN included). Sizes must fit the BLAS integer (int32): larger ones throw
//   softmax::Error (kOverflow) naming `op`.
// Accumulation in f32 in the BLAS's own order; results do not depend on the calling thread.
void sgemm(const char* op, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

// "openblas" or "onednn": the BLAS this build uses (logged by SOFTMAX_VERBOSE=1).
const char* gemm_backend_name();

}  // namespace softmax::cpu
