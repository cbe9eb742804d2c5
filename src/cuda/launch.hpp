// src/cuda/launch.hpp: host helpers shared by the CUDA launchers (CUDA runtime calls, errors,
// SOFTMAX_VERBOSE logging). Included by the .cu launchers only.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "softmax/error.hpp"
#include "softmax/tensor.hpp"

namespace softmax::cuda {

// Throws softmax::Error (kUnsupported) naming the CUDA error of `what`.
void throw_cuda(const char* op, const char* what, cudaError_t e);
// After a launch: a launch-configuration error is reported (no synchronisation).
void check_launch(const char* op);
// The workspace given must hold `need` bytes (and be non-null when need > 0).
void check_workspace(const char* op, std::size_t need, const void* ws, std::size_t have);
// SOFTMAX_VERBOSE=1: one line per call naming the strategy and why.
void log_plan(const char* op, int64_t rows, int64_t n, DType xt, DType yt, const char* strategy,
              const std::string& why);

inline dim3 grid1(int64_t blocks) { return dim3(static_cast<unsigned>(blocks)); }

// Opt in to more than 48 KiB of dynamic shared memory for kernel k.
template <class K>
void set_smem(K k, int bytes) {
  if (bytes > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) throw_cuda("rows", "cudaFuncSetAttribute", e);
  }
}

// Clusters of up to 16 blocks (8 is the portable limit) for kernel k.
template <class K>
void allow_big_clusters(K k) {
  const cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  if (e != cudaSuccess) throw_cuda("rows", "cudaFuncSetAttribute(cluster)", e);
}

// Launches k on a grid of clusters of `cluster` blocks along x.
template <class... KArgs, class... Args>
void launch_cluster(void (*k)(KArgs...), dim3 grid, int threads, int smem, int cluster,
                    cudaStream_t st, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(static_cast<unsigned>(threads));
  cfg.dynamicSmemBytes = static_cast<std::size_t>(smem);
  cfg.stream = st;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(cluster);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, k, static_cast<KArgs>(args)...);
  if (e != cudaSuccess) throw_cuda("rows", "cudaLaunchKernelEx", e);
}

}  // namespace softmax::cuda
