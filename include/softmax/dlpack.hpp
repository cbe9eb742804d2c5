// softmax/dlpack.hpp: zero-copy views of DLPack tensors (needs <dlpack/dlpack.h>, Debian's
// libdlpack-dev). Header-only; include it only where DLPack is available.
#pragma once

#include <dlpack/dlpack.h>

#include <cstdint>
#include <string>

#include "softmax/error.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

// The DType of a DLPack dtype: float 32/64 -> f32/f64, float 16 -> f16, bfloat 16 -> bf16,
// int 32/64 -> i32/i64. Throws softmax::Error (kDTypeMismatch) for anything else (incl. lanes !=
// 1).
inline DType dtype_from_dlpack(DLDataType t) {
  if (t.lanes == 1) {
    if (t.code == kDLFloat && t.bits == 32) return DType::f32;
    if (t.code == kDLFloat && t.bits == 64) return DType::f64;
    if (t.code == kDLFloat && t.bits == 16) return DType::f16;
    if (t.code == kDLBfloat && t.bits == 16) return DType::bf16;
    if (t.code == kDLInt && t.bits == 32) return DType::i32;
    if (t.code == kDLInt && t.bits == 64) return DType::i64;
  }
  throw Error(ErrorKind::kDTypeMismatch, "from_dlpack", "dtype",
              "code " + std::to_string(t.code) + ", bits " + std::to_string(t.bits) + ", lanes " +
                  std::to_string(t.lanes),
              "must be float16/32/64, bfloat16, int32 or int64 with one lane");
}

// A writable view of `t` without copying: data + byte_offset, shape, strides in elements
// (NULL strides mean C-contiguous, as DLPack specifies), device CPU (kDLCPU, kDLCUDAHost) or
// CUDA (kDLCUDA). Throws softmax::Error for an unsupported dtype or device, or a byte_offset or
// data address that leaves the data not element-aligned (data + byte_offset must be a multiple
// of the element size, as every op requires).
inline TensorView from_dlpack(const DLTensor& t) {
  const DType dtype = dtype_from_dlpack(t.dtype);
  Device device;
  if (t.device.device_type == kDLCPU || t.device.device_type == kDLCUDAHost)
    device = Device::cpu;
  else if (t.device.device_type == kDLCUDA)
    device = Device::cuda;
  else {
    throw Error(ErrorKind::kUnsupported, "from_dlpack", "device",
                "type " + std::to_string(static_cast<int>(t.device.device_type)),
                "must be CPU or CUDA");
  }
  const std::size_t es = dtype_size(dtype);
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(t.data) + t.byte_offset;
  if (address % es != 0) {
    throw Error(ErrorKind::kInvalidArgument, "from_dlpack", "byte_offset",
                std::to_string(t.byte_offset) + " (data + byte_offset = " +
                    std::to_string(address % es) + " mod " + std::to_string(es) + ")",
                "data + byte_offset must be a multiple of the element size (" + std::to_string(es) +
                    " bytes)");
  }
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  std::vector<int64_t> strides =
      t.strides ? std::vector<int64_t>(t.strides, t.strides + t.ndim) : contiguous_strides(shape);
  return TensorView(static_cast<char*>(t.data) + t.byte_offset, dtype, std::move(shape),
                    std::move(strides), device);
}

}  // namespace softmax
