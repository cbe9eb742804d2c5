// softmax/tensor.hpp: non-owning strided tensor views (no SIMD types here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace softmax {

// Element types. bf16 and f16 are storage formats: every op computes in f32 on them.
enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64 };
enum class Device : uint8_t { cpu, cuda };

// Size in bytes of one element of `dtype` (4, 8, 2, 2, 4, 8).
std::size_t dtype_size(DType dtype) noexcept;
// Lower-case name as used in messages and on the CLI: "f32", "f64", "bf16", "f16", "i32", "i64".
const char* dtype_name(DType dtype) noexcept;

// Row-major (C order) strides, in elements, for `shape`.
// Throws softmax::Error (kOverflow) if the element count overflows int64.
std::vector<int64_t> contiguous_strides(std::span<const int64_t> shape);

// A read-only view: `data` points at element (0, ..., 0); element (i0, ..., ik) lives at
// data + sum_j i_j * strides[j] elements (strides may be negative or zero).
// shape.size() == strides.size() is the rank; a rank-0 view holds one element.
// Every op rejects (softmax::Error, kInvalidArgument) a view holding elements whose `data` is
// not a multiple of dtype_size(dtype) bytes: misaligned data must be copied first.
struct ConstTensorView {
  const void* data = nullptr;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, not bytes
  Device device = Device::cpu;

  ConstTensorView() = default;
  ConstTensorView(const void* data_, DType dtype_, std::vector<int64_t> shape_,
                  std::vector<int64_t> strides_, Device device_ = Device::cpu)
      : data(data_),
        dtype(dtype_),
        shape(std::move(shape_)),
        strides(std::move(strides_)),
        device(device_) {}
  // Contiguous (C order) view.
  ConstTensorView(const void* data_, DType dtype_, std::vector<int64_t> shape_)
      : data(data_), dtype(dtype_), shape(std::move(shape_)), strides(contiguous_strides(shape)) {}
  ConstTensorView(const float* data_, std::vector<int64_t> shape_)
      : ConstTensorView(data_, DType::f32, std::move(shape_)) {}
  ConstTensorView(const double* data_, std::vector<int64_t> shape_)
      : ConstTensorView(data_, DType::f64, std::move(shape_)) {}

  int64_t rank() const noexcept { return static_cast<int64_t>(shape.size()); }
  // Product of the shape (1 for rank 0). Throws softmax::Error (kOverflow) on overflow.
  int64_t numel() const;
};

// A writable view; converts implicitly to ConstTensorView. As an op's output its elements
// must be distinct memory locations, else softmax::Error (kOverlap). The rule checked: with
// the dims of size > 1 sorted by |stride|, each |stride| exceeds sum (shape_j - 1) * |stride_j|
// over the dims before it (so no stride 0 on a dim > 1, no interleaved rows).
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
  Device device = Device::cpu;

  TensorView() = default;
  TensorView(void* data_, DType dtype_, std::vector<int64_t> shape_, std::vector<int64_t> strides_,
             Device device_ = Device::cpu)
      : data(data_),
        dtype(dtype_),
        shape(std::move(shape_)),
        strides(std::move(strides_)),
        device(device_) {}
  TensorView(void* data_, DType dtype_, std::vector<int64_t> shape_)
      : data(data_), dtype(dtype_), shape(std::move(shape_)), strides(contiguous_strides(shape)) {}
  TensorView(float* data_, std::vector<int64_t> shape_)
      : TensorView(data_, DType::f32, std::move(shape_)) {}
  TensorView(double* data_, std::vector<int64_t> shape_)
      : TensorView(data_, DType::f64, std::move(shape_)) {}

  operator ConstTensorView() const {  // NOLINT(google-explicit-constructor)
    return ConstTensorView(data, dtype, shape, strides, device);
  }
  int64_t rank() const noexcept { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const;
};

}  // namespace softmax
