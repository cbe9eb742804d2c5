// src/cuda/device.cu: device queries and the launchers' error and logging helpers.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/launch.hpp"

namespace softmax::cuda {

int max_cluster_blocks();  // softmax_rows.cu

void throw_cuda(const char* op, const char* what, cudaError_t e) {
  throw Error(
      ErrorKind::kUnsupported, op,
      std::string(what) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void check_launch(const char* op) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(op, "kernel launch", e);
}

void check_workspace(const char* op, std::size_t need, const void* ws, std::size_t have) {
  if (need == 0) return;
  if (ws == nullptr || have < need) {
    throw Error(ErrorKind::kInvalidArgument, op, "workspace_bytes", std::to_string(have),
                "must be >= " + std::to_string(need) +
                    " (the *_workspace_bytes query) with a "
                    "non-null workspace");
  }
}

void log_plan(const char* op, int64_t rows, int64_t n, DType xt, DType yt, const char* strategy,
              const std::string& why) {
  static const bool on = [] {
    const char* v = std::getenv("SOFTMAX_VERBOSE");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  if (!on) return;
  std::fprintf(stderr, "softmax: %s: device=cuda rows=%lld n=%lld %s->%s path=%s (%s)\n", op,
               static_cast<long long>(rows), static_cast<long long>(n), dtype_name(xt),
               dtype_name(yt), strategy, why.c_str());
}

bool device_available() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return count > 0;
}

DeviceCaps device_caps(int device) {
  if (device < 0) {
    const cudaError_t e = cudaGetDevice(&device);
    if (e != cudaSuccess) throw_cuda("device_caps", "cudaGetDevice", e);
  }
  static std::mutex mu;
  static std::vector<std::pair<int, DeviceCaps>> cache;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [d, c] : cache) {
    if (d == device) return c;
  }
  cudaDeviceProp prop{};
  const cudaError_t e = cudaGetDeviceProperties(&prop, device);
  if (e != cudaSuccess) throw_cuda("device_caps", "cudaGetDeviceProperties", e);
  DeviceCaps c;
  c.sm_major = prop.major;
  c.sm_minor = prop.minor;
  c.sm_count = prop.multiProcessorCount;
  c.smem_optin_bytes = static_cast<int64_t>(prop.sharedMemPerBlockOptin);
  int current = 0;
  cudaGetDevice(&current);
  if (c.sm_major >= 9) {
    cudaSetDevice(device);
    c.max_cluster = max_cluster_blocks();
    cudaSetDevice(current);
  }
  cache.emplace_back(device, c);
  return c;
}

}  // namespace softmax::cuda
