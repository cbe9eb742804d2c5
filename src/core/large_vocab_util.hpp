// src/core/large_vocab_util.hpp: what the sampled, hierarchical and adaptive softmax drivers
// share: checked f32 matrix operands, class ids, per-thread-count scope, f64-accumulated dot
// products, log-sigmoid, and grouping of sparse gradient contributions by row.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/tensor.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"

namespace softmax::detail {

// A checked (rows, cols) f32 matrix with unit column stride and row stride ld.
struct MatF32 {
  const float* p = nullptr;
  int64_t rows = 0, cols = 0, ld = 1;
  const float* row(int64_t i) const { return p + i * ld; }
};

// Checks an f32 rank-2 view of shape (rows, cols) (-1: any) with unit column stride.
inline MatF32 check_f32_matrix(const char* op, const char* arg, const ConstTensorView& m,
                               int64_t rows, int64_t cols) {
  check_view(op, arg, m);
  if (m.dtype != DType::f32) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(m.dtype), "must be f32");
  }
  if (m.rank() != 2 || (rows >= 0 && m.shape[0] != rows) || (cols >= 0 && m.shape[1] != cols)) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + shape_str(m.shape),
                "must be (" + (rows >= 0 ? std::to_string(rows) : std::string("rows")) + ", " +
                    (cols >= 0 ? std::to_string(cols) : std::string("D")) + ")");
  }
  MatF32 r{static_cast<const float*>(m.data), m.shape[0], m.shape[1], 0};
  r.ld = r.rows <= 1 ? std::max<int64_t>(r.cols, 1) : m.strides[0];
  if ((r.cols > 1 && m.strides[1] != 1) || r.ld < std::max<int64_t>(r.cols, 1)) {
    throw Error(
        ErrorKind::kInvalidArgument, op, arg, "strides " + shape_str(m.strides),
        "must be row-major with unit column stride (row stride >= " + std::to_string(r.cols) + ")");
  }
  return r;
}

// A (n) f32 vector (any stride), copied.
inline std::vector<float> read_f32_vector(const char* op, const char* arg, const ConstTensorView& v,
                                          int64_t n) {
  check_view(op, arg, v);
  if (v.dtype != DType::f32) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(v.dtype), "must be f32");
  }
  check_same_shape(op, arg, {n}, v.shape);
  std::vector<float> out(static_cast<std::size_t>(n));
  const auto* p = static_cast<const float*>(v.data);
  for (int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = p[i * v.strides[0]];
  return out;
}

// A floating view of `shape` (rank 1 or 2, any strides) as f64, row-major.
inline std::vector<double> read_floats(const char* op, const char* arg, const ConstTensorView& v,
                                       const std::vector<int64_t>& shape) {
  check_view(op, arg, v);
  check_float_dtype(op, arg, v.dtype);
  check_same_shape(op, arg, shape, v.shape);
  const int64_t r = shape[0], c = shape.size() > 1 ? shape[1] : 1;
  std::vector<double> out(static_cast<std::size_t>(r * c));
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t off = i * v.strides[0] + (shape.size() > 1 ? j * v.strides[1] : 0);
      out[static_cast<std::size_t>(i * c + j)] = load_as_double(v.data, v.dtype, off);
    }
  }
  return out;
}

// Class ids (i32/i64 view of `shape`, rank 1 or 2, any strides) in [0, num_classes), row-major.
inline std::vector<int64_t> read_class_ids(const char* op, const char* arg,
                                           const ConstTensorView& v,
                                           const std::vector<int64_t>& shape, int64_t num_classes) {
  check_view(op, arg, v);
  if (v.dtype != DType::i32 && v.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(v.dtype),
                "must be i32 or i64 class ids");
  }
  check_same_shape(op, arg, shape, v.shape);
  const int64_t r = shape[0], c = shape.size() > 1 ? shape[1] : 1;
  std::vector<int64_t> out(static_cast<std::size_t>(r * c));
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t off = i * v.strides[0] + (shape.size() > 1 ? j * v.strides[1] : 0);
      const int64_t id = v.dtype == DType::i32 ? static_cast<const int32_t*>(v.data)[off]
                                               : static_cast<const int64_t*>(v.data)[off];
      if (id < 0 || id >= num_classes) {
        throw Error(ErrorKind::kInvalidArgument, op,
                    std::string(arg) + "[" + std::to_string(i) +
                        (shape.size() > 1 ? ", " + std::to_string(j) : std::string()) + "]",
                    std::to_string(id),
                    "must be a class id in [0, " + std::to_string(num_classes) + ")");
      }
      out[static_cast<std::size_t>(i * c + j)] = id;
    }
  }
  return out;
}

inline void check_finite(const char* op, const char* arg, double v) {
  if (!std::isfinite(v)) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, std::to_string(v), "must be finite");
  }
}

// sum_i a_i b_i with exact f32 products summed in f64 (four fixed partial sums).
inline double dot_f64(const float* a, const float* b, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) s[j] += static_cast<double>(a[i + j]) * b[i + j];
  }
  for (; i < n; ++i) s[0] += static_cast<double>(a[i]) * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// y += alpha x (f32 storage, the product rounded once).
inline void axpy(float* y, double alpha, const float* x, int64_t n) {
  const auto a = static_cast<float>(alpha);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// log(sigma(s)) = min(s, 0) - log1p(exp(-|s|)), never overflowing.
inline double log_sigmoid(double s) {
  return std::min(s, 0.0) - std::log1p(std::exp(-std::fabs(s)));
}
inline double sigmoid(double s) {
  const double e = std::exp(-std::fabs(s));
  return s >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

// Contributions grouped by row: row ids (increasing, unique), and for group g the items
// items[offsets[g] .. offsets[g + 1]) in increasing order. Fixed order: sparse gradients are
// summed the same way on every thread count.
struct RowGroups {
  std::vector<int64_t> rows, offsets, items;
};
inline RowGroups group_by_row(std::span<const int64_t> row_of_item) {
  std::vector<std::pair<int64_t, int64_t>> p(row_of_item.size());
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = {row_of_item[i], static_cast<int64_t>(i)};
  std::sort(p.begin(), p.end());
  RowGroups g;
  g.items.reserve(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (i == 0 || p[i].first != p[i - 1].first) {
      g.rows.push_back(p[i].first);
      g.offsets.push_back(static_cast<int64_t>(i));
    }
    g.items.push_back(p[i].second);
  }
  g.offsets.push_back(static_cast<int64_t>(p.size()));
  return g;
}

}  // namespace softmax::detail
