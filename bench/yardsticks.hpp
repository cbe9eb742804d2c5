// bench/yardsticks.hpp: two reference kernels the comparison measures ours against; neither is
// part of the library.
//
// sol ("speed of light"): a plain three-pass AVX-512 softmax along rows,
//   1. max: four 16-lane max accumulators (64 elements per iteration), masked tail;
//   2. exp: e = exp(x - max) with n = round(t * log2 e), r = t - n ln2 (two-part ln2),
//      p = degree-5 Taylor polynomial of exp(r) (Horner, FMA), e = vscalefps(p, n); stores e and
//      adds it to two sum accumulators;
//   3. scale: y = e * (1 / sum).
//   About 19 vector instructions per 16 elements over the three loops. Its error is not bounded
//   like ours (the polynomial alone is ~1e-6 relative, about 20 ulp; bf16 output is rounded twice),
//   so it is a yardstick for speed, not a substitute. f32 and bf16 (bf16 in, bf16 out: the exp
//   pass stores bf16 and the scale pass rescales it), rows split over threads, a row never.
// read_sum: the read-only pass, the sum of every input element (f32 accumulators, four per
//   thread); the floor for logsumexp, which also reads the input once and writes almost nothing.
//
// Both are compiled for AVX-512 F/BW/VL/BF16 (function target attributes); sol_supported() says
// whether this CPU has them, and the comparison leaves both out otherwise.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// GCC 12 warns that the AVX-512 headers' own _mm512_undefined_* placeholders are uninitialized
// wherever a reduction or masked intrinsic is inlined (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace softmax_bench {

#if defined(__x86_64__)
#define SOL_TARGET target("avx512f,avx512bw,avx512vl,avx512bf16")
#define SOLK __attribute__((SOL_TARGET, always_inline)) inline
#define SOL __attribute__((SOL_TARGET)) inline

inline bool sol_supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

// exp(t) for t <= 0: round(t log2 e), Cody-Waite reduction, degree-5 Taylor, vscalefps.
SOLK __m512 sol_exp(__m512 t) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145752f), t);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 120);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

SOLK __mmask16 tail_mask(int64_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
}

// ---- element access: f32 ----
struct F32 {
  using Elem = float;
  SOLK static __m512 load(const void* p, int64_t i) {
    return _mm512_loadu_ps(static_cast<const float*>(p) + i);
  }
  SOLK static __m512 load_tail(const void* p, int64_t i, __mmask16 m, __m512 fill) {
    return _mm512_mask_loadu_ps(fill, m, static_cast<const float*>(p) + i);
  }
  SOLK static void store(void* p, int64_t i, __m512 v) {
    _mm512_storeu_ps(static_cast<float*>(p) + i, v);
  }
  SOLK static void store_tail(void* p, int64_t i, __mmask16 m, __m512 v) {
    _mm512_mask_storeu_ps(static_cast<float*>(p) + i, m, v);
  }
};

// ---- element access: bf16 ----
struct BF16 {
  using Elem = uint16_t;
  SOLK static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  SOLK static __m256i narrow(__m512 v) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)); }
  SOLK static __m512 load(const void* p, int64_t i) {
    const auto* h = static_cast<const uint16_t*>(p) + i;
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
  }
  SOLK static __m512 load_tail(const void* p, int64_t i, __mmask16 m, __m512 fill) {
    const __m512 v = widen(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
    return _mm512_mask_blend_ps(m, fill, v);
  }
  SOLK static void store(void* p, int64_t i, __m512 v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<uint16_t*>(p) + i), narrow(v));
  }
  SOLK static void store_tail(void* p, int64_t i, __mmask16 m, __m512 v) {
    _mm256_mask_storeu_epi16(static_cast<uint16_t*>(p) + i, m, narrow(v));
  }
};

// One row of sol softmax; E is F32 or BF16.
template <class E>
SOLK void sol_row(const void* x, void* y, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(m0, E::load(x, i));
    m1 = _mm512_max_ps(m1, E::load(x, i + 16));
    m2 = _mm512_max_ps(m2, E::load(x, i + 32));
    m3 = _mm512_max_ps(m3, E::load(x, i + 48));
  }
  for (; i < n; i += 16) m0 = _mm512_max_ps(m0, E::load_tail(x, i, tail_mask(n - i), ninf));
  const __m512 mx = _mm512_set1_ps(
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  for (i = 0; i + 32 <= n; i += 32) {
    const __m512 e0 = sol_exp(_mm512_sub_ps(E::load(x, i), mx));
    const __m512 e1 = sol_exp(_mm512_sub_ps(E::load(x, i + 16), mx));
    E::store(y, i, e0);
    E::store(y, i + 16, e1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, sol_exp(_mm512_sub_ps(E::load_tail(x, i, k, mx), mx)));
    E::store_tail(y, i, k, e);
    s0 = _mm512_add_ps(s0, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
  for (i = 0; i + 16 <= n; i += 16) E::store(y, i, _mm512_mul_ps(E::load(y, i), inv));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    E::store_tail(y, i, k, _mm512_mul_ps(E::load_tail(y, i, k, inv), inv));
  }
}

// Rows [r0, r1) of a contiguous `rows` x `n` tensor.
template <class E>
SOL void sol_rows(const void* x, void* y, int64_t r0, int64_t r1, int64_t n) {
  const std::size_t es = sizeof(typename E::Elem);
  for (int64_t r = r0; r < r1; ++r) {
    const std::size_t off = static_cast<std::size_t>(r * n) * es;
    sol_row<E>(static_cast<const unsigned char*>(x) + off, static_cast<unsigned char*>(y) + off, n);
  }
}

// Sum of elements [b, e).
template <class E>
SOL float sum_range(const void* x, int64_t b, int64_t e) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = b;
  for (; i + 64 <= e; i += 64) {
    a0 = _mm512_add_ps(a0, E::load(x, i));
    a1 = _mm512_add_ps(a1, E::load(x, i + 16));
    a2 = _mm512_add_ps(a2, E::load(x, i + 32));
    a3 = _mm512_add_ps(a3, E::load(x, i + 48));
  }
  for (; i < e; i += 16) {
    a0 = _mm512_add_ps(a0, E::load_tail(x, i, tail_mask(e - i), _mm512_setzero_ps()));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
#else
inline bool sol_supported() { return false; }
struct F32 {
  using Elem = float;
};
struct BF16 {
  using Elem = uint16_t;
};
template <class E>
void sol_rows(const void*, void*, int64_t, int64_t, int64_t) {}
template <class E>
float sum_range(const void*, int64_t, int64_t) {
  return 0;
}
#endif

// [0, count) split into one contiguous range per thread: fn(begin, end) on each.
template <class Fn>
void split_range(int64_t count, int threads, Fn fn) {
  if (threads <= 1) {  // no parallel region at all: it costs ~0.2 us even when serialized
    fn(int64_t{0}, count);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (count + nt - 1) / nt;
    const int64_t b = std::min(count, t * chunk), e = std::min(count, b + chunk);
    if (e > b) fn(b, e);
  }
}

// sol softmax of `rows` x `n` (contiguous), rows split over `threads` OpenMP threads.
template <class E>
void sol_softmax(const void* x, void* y, int64_t rows, int64_t n, int threads) {
  split_range(rows, threads, [&](int64_t b, int64_t e) { sol_rows<E>(x, y, b, e, n); });
}

// The read-only pass: the sum of `count` elements, stored to *sink.
template <class E>
void read_sum(const void* x, int64_t count, int threads, float* sink) {
  constexpr int kMaxThreads = 64;
  float part[kMaxThreads] = {};
  split_range(count, std::min(threads, kMaxThreads),
              [&](int64_t b, int64_t e) { part[omp_get_thread_num()] = sum_range<E>(x, b, e); });
  float total = 0;
  for (float p : part) total += p;
  *sink = total;
}
}  // namespace softmax_bench

#pragma GCC diagnostic pop
