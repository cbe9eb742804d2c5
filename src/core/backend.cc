// src/core/backend.cc: the one place a backend is chosen (backend.hpp).
#include "src/core/backend.hpp"

#include <cstdint>
#include <string>

#include "softmax/context.hpp"
#include "softmax/error.hpp"

#ifdef SOFTMAX_HAVE_CUDA
#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/runner.hpp"
#endif

namespace softmax {

bool device_available(Device device) noexcept {
  if (device == Device::cpu) return true;
#ifdef SOFTMAX_HAVE_CUDA
  return device == Device::cuda && cuda::device_available();
#else
  return false;
#endif
}

}  // namespace softmax

namespace softmax::detail {

const Backend& backend_for(const char* op, Device device) {
  switch (device) {
    case Device::cpu: return cpu_backend();
    case Device::cuda:
#ifdef SOFTMAX_HAVE_CUDA
      return cuda::backend();
#else
      throw Error(ErrorKind::kUnsupported, op, "device", "cuda",
                  "this build of the library has no CUDA backend (configure with "
                  "-DSOFTMAX_BUILD_CUDA=ON where nvcc is installed)");
#endif
  }
  throw Error(ErrorKind::kInvalidArgument, op, "device", std::to_string(static_cast<int>(device)),
              "is not a softmax::Device");
}

void* caller_workspace(const char* op, const Exec& exec, std::size_t needed) {
  if (exec.workspace == nullptr) return nullptr;
  if (exec.workspace_bytes < needed) {
    throw Error(ErrorKind::kInvalidArgument, op, "context.workspace_bytes",
                std::to_string(exec.workspace_bytes),
                "this call needs " + std::to_string(needed) +
                    " bytes of workspace (the op's *_workspace_bytes for the same arguments)");
  }
  if (reinterpret_cast<std::uintptr_t>(exec.workspace) % 256 != 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "context.workspace", "a misaligned pointer",
                "must be aligned to 256 bytes");
  }
  return exec.workspace;
}

}  // namespace softmax::detail
