// tests/capi/capi_test_util.hpp: helpers of the C ABI tests of the op families
// (capi_serving_test.cc, capi_large_vocab_test.cc): a buffer with its shape that hands out both
// a C descriptor and a C++ view of the same memory, random data, bitwise comparison, and the
// message of a C++ call that throws.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "softmax/softmax.h"
#include "softmax/softmax.hpp"

namespace capi_test {

using Shape = std::vector<int64_t>;

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr softmax_dtype_t c = SOFTMAX_DTYPE_F32;
  static constexpr softmax::DType cpp = softmax::DType::f32;
};
template <>
struct DTypeOf<double> {
  static constexpr softmax_dtype_t c = SOFTMAX_DTYPE_F64;
  static constexpr softmax::DType cpp = softmax::DType::f64;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr softmax_dtype_t c = SOFTMAX_DTYPE_I64;
  static constexpr softmax::DType cpp = softmax::DType::i64;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr softmax_dtype_t c = SOFTMAX_DTYPE_I32;
  static constexpr softmax::DType cpp = softmax::DType::i32;
};

inline std::size_t Numel(const Shape& s) {
  std::size_t n = 1;
  for (int64_t d : s) n *= static_cast<std::size_t>(d);
  return n;
}

// Contiguous data of `shape`: t (the C descriptor, pointing at v and shape) and cpp() (the C++
// view) describe the same memory. Copies re-point their descriptor at their own data.
// Buf<int64_t>(data, Shape{n}) for 1-d integer data: with a bare {n}, Buf(Shape, T fill) wins.
template <class T>
struct Buf {
  std::vector<T> v;
  Shape shape;
  softmax_tensor_t t{};

  explicit Buf(Shape s, T fill = T{}) : v(Numel(s), fill), shape(std::move(s)) { Reset(); }
  Buf(std::vector<T> data, Shape s) : v(std::move(data)), shape(std::move(s)) {
    EXPECT_EQ(v.size(), Numel(shape));
    Reset();
  }
  Buf(const Buf& o) : v(o.v), shape(o.shape) { Reset(); }
  Buf& operator=(const Buf&) = delete;

  void Reset() {
    t = softmax_tensor_make(v.data(), DTypeOf<T>::c, static_cast<int64_t>(shape.size()),
                            shape.data());
  }
  const softmax_tensor_t* c() const { return &t; }
  softmax::TensorView cpp() { return softmax::TensorView(v.data(), DTypeOf<T>::cpp, shape); }
  softmax::ConstTensorView ccpp() const {
    return softmax::ConstTensorView(v.data(), DTypeOf<T>::cpp, shape);
  }
  void Fill(T x) { std::fill(v.begin(), v.end(), x); }
  bool All(T x) const {
    for (const T& e : v) {
      if (std::memcmp(&e, &x, sizeof(T)) != 0) return false;
    }
    return true;
  }
};

template <class T>
bool SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

inline std::vector<float> Random(std::size_t n, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Random probability rows (each sums to 1 in f64, then rounded to T).
template <class T>
std::vector<T> RandomProbs(std::size_t rows, std::size_t v, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.05, 1.0);
  std::vector<T> out(rows * v);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<double> w(v);
    double sum = 0;
    for (double& x : w) sum += (x = u(rng));
    for (std::size_t i = 0; i < v; ++i) out[r * v + i] = static_cast<T>(w[i] / sum);
  }
  return out;
}

// The message of a C++ call that throws softmax::Error.
template <class F>
std::string CppError(F&& f) {
  try {
    f();
  } catch (const softmax::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace capi_test
