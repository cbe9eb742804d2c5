// src/cpu/gemm.cc: sgemm through the configured BLAS (see gemm.hpp).
#include "src/cpu/gemm.hpp"

#include <omp.h>

#include <limits>
#include <string>

#include "softmax/error.hpp"

#if defined(SOFTMAX_GEMM_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#else
#include <cblas.h>
#endif

namespace softmax::cpu {
namespace {

void check_int32(const char* op, const char* what, int64_t v) {
  if (v > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::kOverflow, op, what, std::to_string(v),
                "the matrix product takes sizes and strides below 2^31");
  }
}

}  // namespace

void sgemm(const char* op, char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const bool trans_a = ta == 'T', trans_b = tb == 'T';
  constexpr float alpha = 1.0f;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta C; a BLAS may reject K = 0 or skip the scaling
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    return;
  }
  check_int32(op, "m", m);
  check_int32(op, "n", n);
  check_int32(op, "k", k);
  check_int32(op, "lda", lda);
  check_int32(op, "ldb", ldb);
  check_int32(op, "ldc", ldc);
#if defined(SOFTMAX_GEMM_ONEDNN)
  // oneDNN sizes its parallel region by the caller's OpenMP nthreads-var; inside our
  // parallel_for (or with one thread) nested regions are inactive, so this runs on this thread.
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                      lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) {
    throw Error(ErrorKind::kUnsupported, op,
                "oneDNN sgemm failed with status " + std::to_string(static_cast<int>(st)));
  }
#else
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
#endif
}

GemmThreads::GemmThreads(int threads) : saved_(omp_get_max_threads()) {
  omp_set_num_threads(threads < 1 ? 1 : threads);
}
GemmThreads::~GemmThreads() { omp_set_num_threads(saved_); }

const char* gemm_backend_name() {
#if defined(SOFTMAX_GEMM_ONEDNN)
  return "onednn";
#else
  return "openblas";
#endif
}

}  // namespace softmax::cpu
