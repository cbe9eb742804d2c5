// src/cpu/gemm.hpp: the one f32 matrix product the CPU backend needs (linear_cross_entropy,
// the large-vocabulary losses), behind one function so the BLAS is chosen at configure time:
// oneDNN's dnnl_sgemm (SOFTMAX_GEMM=onednn, the default) or OpenBLAS's serial CBLAS
// (SOFTMAX_GEMM=openblas, Debian libopenblas-serial-dev). oneDNN sizes its threads by the
// caller's OpenMP setting (see linear_cross_entropy's ThreadScope); OpenBLAS serial runs on the
// calling thread.
#pragma once

#include <cstdint>

namespace softmax::cpu {

// C = A' B' + beta C, row-major f32: A' = A (m x k, ta 'N') or A^T (A stored k x m, ta 'T'),
// likewise B' (k x n). lda/ldb/ldc are the row strides (elements) of the matrices as stored.
// m, n, k >= 0; m or n == 0: nothing; k == 0 gives C = beta C (C = 0 when beta == 0, whatever C
// held, NaN included). Sizes must fit the BLAS integer (int32): larger ones throw softmax::Error
// (kOverflow) naming `op`; a BLAS failure throws kUnsupported naming `op`.
// Accumulation in f32 in the BLAS's own order.
void sgemm(const char* op, char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The BLAS's thread count for the products of one call: oneDNN 2.x has no thread-count
// argument and sizes its parallel regions by omp_get_max_threads(), the nthreads-var ICV of the
// calling thread (per thread in OpenMP, not process-wide). This sets it to `threads` (an already
// resolved count, >= 1: 1 in a forked child, where the OpenMP pool does not survive) and
// restores it. OpenBLAS serial ignores it.
class GemmThreads {
 public:
  explicit GemmThreads(int threads);
  ~GemmThreads();
  GemmThreads(const GemmThreads&) = delete;
  GemmThreads& operator=(const GemmThreads&) = delete;

 private:
  int saved_;
};

// "openblas" or "onednn": the BLAS this build uses (logged by SOFTMAX_VERBOSE=1).
const char* gemm_backend_name();

}  // namespace softmax::cpu
