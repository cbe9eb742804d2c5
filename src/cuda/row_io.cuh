// src/cuda/row_io.cuh: rows as the kernels read them: a shared-memory tile (compute type) or a
// row in global memory (storage type, widened on each read); 128-bit loads of a row into a tile.
#pragma once

#include <cstdint>

#include "src/cuda/numerics.cuh"

namespace softmax::cuda::dev {

// A tile in shared memory holding compute-type values; set() stores back (exps in place).
template <class C>
struct SmemRow {
  using Value = C;
  C* p;
  __device__ C operator[](int i) const { return p[i]; }
  __device__ void set(int i, C v) const { p[i] = v; }
  __device__ SmemRow offset(int o) const { return SmemRow{p + o}; }
};

// A row in global memory of storage XS; set() is a no-op (nothing is stored back).
template <class XS>
struct GlobalRow {
  using Value = typename XS::Compute;
  const typename XS::Mem* p;
  __device__ Value operator[](int i) const { return num::widen(XS(), p[i]); }
  __device__ void set(int, Value) const {}
  __device__ GlobalRow offset(int o) const { return GlobalRow{p + o}; }
};

// Copies len elements of a row of storage XS into a compute-type tile, widening: 128-bit loads
// when the row start is 16-byte aligned, scalar loads otherwise. Threads tid of nt.
template <class XS, class C>
__device__ void load_tile(const typename XS::Mem* x, int len, C* tile, int tid, int nt) {
  using M = typename XS::Mem;
  constexpr int kVec = 16 / sizeof(M);
  int done = 0;
  if ((reinterpret_cast<uintptr_t>(x) & 15u) == 0) {
    const int nv = len / kVec;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    for (int v = tid; v < nv; v += nt) {
      const uint4 q = xv[v];
      M m[kVec];
      memcpy(m, &q, 16);
#pragma unroll
      for (int k = 0; k < kVec; ++k) tile[v * kVec + k] = num::widen(XS(), m[k]);
    }
    done = nv * kVec;
  }
  for (int i = done + tid; i < len; i += nt) tile[i] = num::widen(XS(), x[i]);
}

}  // namespace softmax::cuda::dev
