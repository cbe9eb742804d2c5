// src/core/checks.cc
#include "src/core/checks.hpp"

#include "src/base/extent.hpp"
#include "src/core/rows.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>

namespace softmax::detail {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

namespace {
struct ByteRange {
  int64_t lo, hi;  // [lo, hi) relative to data, in bytes; empty when lo == hi
};

// Byte range touched by a view (already checked not to overflow).
ByteRange byte_range(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                     DType t) {
  const auto es = static_cast<int64_t>(dtype_size(t));
  // No element (a zero dim anywhere): empty, before any extent is formed (the other dims'
  // extents were not bounded by the view check then).
  for (const int64_t d : shape) {
    if (d == 0) return {0, 0};
  }
  int64_t lo = 0, hi = 0;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const int64_t ext = (shape[i] - 1) * strides[i] * es;
    (ext < 0 ? lo : hi) += ext;
  }
  return {lo, hi + es};
}

template <class View>
void check_view_impl(const char* op, const char* arg, const View& v, bool any_device = false) {
  if (v.shape.size() != v.strides.size()) {
    throw Error(ErrorKind::kShapeMismatch, op, arg,
                "shape " + shape_str(v.shape) + ", strides " + shape_str(v.strides),
                "shape and strides must have the same length");
  }
  if (v.device != Device::cpu && !any_device) {
    throw Error(ErrorKind::kUnsupported, op, arg, "a CUDA view",
                "the CPU ops take CPU memory; CUDA views need the CUDA ops");
  }
  int64_t n = 0;
  int64_t extent = 0;
  const auto es = static_cast<int64_t>(dtype_size(v.dtype));
  switch (element_count(v.shape.data(), v.shape.size(), n)) {
    case CountError::kNone: break;
    case CountError::kNegativeDim:
      throw Error(ErrorKind::kInvalidArgument, op, arg, "shape " + shape_str(v.shape),
                  "dimensions must be >= 0");
    case CountError::kOverflow:
      throw Error(ErrorKind::kOverflow, op, arg, "shape " + shape_str(v.shape),
                  "the element count overflows int64");
  }
  // A zero dimension anywhere: no element, whatever the other dimensions and strides are.
  if (n == 0) return;
  for (std::size_t i = 0; i < v.shape.size(); ++i) {
    int64_t e;
    const int64_t st = v.strides[i] == std::numeric_limits<int64_t>::min() ? -1 : v.strides[i];
    if (v.strides[i] == std::numeric_limits<int64_t>::min() ||
        __builtin_mul_overflow(v.shape[i] - 1, st < 0 ? -st : st, &e) ||
        __builtin_mul_overflow(e, es, &e) || __builtin_add_overflow(extent, e, &extent)) {
      throw Error(ErrorKind::kOverflow, op, arg,
                  "shape " + shape_str(v.shape) + ", strides " + shape_str(v.strides),
                  "the byte extent overflows int64");
    }
  }
  if (v.data == nullptr) {
    throw Error(ErrorKind::kInvalidArgument, op, arg, "null data",
                "a view with " + std::to_string(n) + " elements needs a data pointer");
  }
  const auto address = reinterpret_cast<std::uintptr_t>(v.data);
  if (address % static_cast<std::uintptr_t>(es) != 0) {
    std::ostringstream os;
    os << "data address 0x" << std::hex << address;
    throw Error(ErrorKind::kInvalidArgument, op, arg, os.str(),
                "must be a multiple of the element size (" + std::to_string(es) + " bytes for " +
                    dtype_name(v.dtype) + "); copy misaligned data into an aligned buffer");
  }
}

// Throws unless the elements of `v` (already checked by check_view_impl) are distinct memory
// locations. Sufficient rule: with the dims of size > 1 sorted by |stride|, each |stride| is
// larger than the span sum (shape_j - 1) * |stride_j| of the dims before it.
void check_distinct_elements(const char* op, const char* arg, const TensorView& v) {
  DimVec dims;  // no allocation up to 16 dims (ops given a workspace allocate nothing)
  for (std::size_t i = 0; i < v.shape.size(); ++i) {
    if (v.shape[i] == 0) return;  // no elements
    if (v.shape[i] > 1) dims.push_back(static_cast<int64_t>(i));
  }
  const auto mag = [&](int64_t i) { return v.strides[i] < 0 ? -v.strides[i] : v.strides[i]; };
  // Stable insertion sort by |stride| (ranks are small).
  for (std::size_t a = 1; a < dims.size(); ++a) {
    const int64_t d = dims[a];
    std::size_t b = a;
    for (; b > 0 && mag(dims[b - 1]) > mag(d); --b) dims[b] = dims[b - 1];
    dims[b] = d;
  }
  int64_t span = 0;  // fits: check_view_impl bounded the byte extent
  for (const int64_t i : dims) {
    if (mag(i) <= span) {
      throw Error(ErrorKind::kOverlap, op, arg,
                  "shape " + shape_str(v.shape) + ", strides " + shape_str(v.strides),
                  "two elements of an output may not share memory: dimension " + std::to_string(i) +
                      " (size " + std::to_string(v.shape[i]) + ", stride " +
                      std::to_string(v.strides[i]) + ") revisits the " + std::to_string(span + 1) +
                      "-element span of the dimensions with smaller strides (rule: sorted by "
                      "|stride|, each |stride| must exceed that span)");
    }
    span += (v.shape[i] - 1) * mag(i);
  }
}
}  // namespace

void check_view(const char* op, const char* arg, const ConstTensorView& v) {
  check_view_impl(op, arg, v);
}

void check_output_view(const char* op, const char* arg, const TensorView& v) {
  check_view_impl(op, arg, v);
  check_distinct_elements(op, arg, v);
}

void check_view_any_device(const char* op, const char* arg, const ConstTensorView& v) {
  check_view_impl(op, arg, v, true);
}

void check_output_view_any_device(const char* op, const char* arg, const TensorView& v) {
  check_view_impl(op, arg, v, true);
  check_distinct_elements(op, arg, v);
}

const char* device_name(Device d) noexcept { return d == Device::cuda ? "cuda" : "cpu"; }

Device call_device(const char* op, std::initializer_list<DeviceArg> tensors) {
  const DeviceArg* first = tensors.begin();
  for (const DeviceArg& t : tensors) {
    if (t.device != first->device) {
      throw Error(
          ErrorKind::kInvalidArgument, op, t.arg, std::string("on ") + device_name(t.device),
          std::string("every tensor of one call must be on one device: ") + first->arg + " is on " +
              device_name(first->device) + "; copy the tensors to one device first");
    }
  }
  return first->device;
}

int64_t normalize_axis(const char* op, int64_t axis, int64_t rank) {
  if (rank == 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "axis", std::to_string(axis),
                "a tensor of rank 0 has no axis; reshape it to (1,)");
  }
  if (axis < -rank || axis >= rank) {
    throw Error(ErrorKind::kInvalidArgument, op, "axis", std::to_string(axis),
                "must be in [" + std::to_string(-rank) + ", " + std::to_string(rank - 1) +
                    "] for a tensor of rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

double check_temperature(const char* op, double temperature) {
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    throw Error(ErrorKind::kInvalidArgument, op, "temperature", num_str(temperature),
                "must be finite and > 0");
  }
  const double inv = 1.0 / temperature;
  return std::isfinite(inv) ? inv : std::numeric_limits<double>::max();
}

void check_float_dtype(const char* op, const char* arg, DType t) {
  if (t != DType::f32 && t != DType::f64 && t != DType::bf16 && t != DType::f16) {
    throw Error(ErrorKind::kDTypeMismatch, op, arg, dtype_name(t),
                "must be a floating dtype (f32, f64, bf16 or f16)");
  }
}

void check_compute_pair(const char* op, DType x, const char* y_arg, DType y) {
  check_float_dtype(op, "x", x);
  check_float_dtype(op, y_arg, y);
  if ((x == DType::f64) != (y == DType::f64)) {
    throw Error(ErrorKind::kDTypeMismatch, op, y_arg,
                std::string(dtype_name(y)) + " (x is " + dtype_name(x) + ")",
                "f64 computes in f64 and pairs only with f64; f32, bf16 and f16 pair with each "
                "other");
  }
}

void check_same_shape(const char* op, const char* arg, const std::vector<int64_t>& expected,
                      const std::vector<int64_t>& got) {
  if (expected != got) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, shape_str(got),
                "must have shape " + shape_str(expected));
  }
}

std::vector<int64_t> reduced_shape(const std::vector<int64_t>& shape, int64_t axis, bool keepdims) {
  std::vector<int64_t> out;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (static_cast<int64_t>(i) != axis)
      out.push_back(shape[i]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

void check_reduced_shape(const char* op, const char* arg, const std::vector<int64_t>& shape,
                         int64_t axis, bool keepdims, const std::vector<int64_t>& got) {
  bool same = got.size() == shape.size() - (keepdims ? 0 : 1);
  for (std::size_t i = 0, j = 0; same && i < shape.size(); ++i) {
    if (static_cast<int64_t>(i) == axis) {
      if (keepdims) same = got[j++] == 1;
      continue;
    }
    same = got[j++] == shape[i];
  }
  if (!same) check_same_shape(op, arg, reduced_shape(shape, axis, keepdims), got);
}

namespace {
template <class YView>
void check_no_overlap_impl(const char* op, const ConstTensorView& x, const YView& y,
                           bool allow_alias, const char* y_arg, const char* x_arg) {
  const ByteRange rx = byte_range(x.shape, x.strides, x.dtype);
  const ByteRange ry = byte_range(y.shape, y.strides, y.dtype);
  if (rx.lo == rx.hi || ry.lo == ry.hi) return;
  const auto* bx = static_cast<const char*>(x.data);
  const auto* by = static_cast<const char*>(y.data);
  const bool disjoint = by + ry.hi <= bx + rx.lo || bx + rx.hi <= by + ry.lo;
  if (disjoint) return;
  const bool alias = allow_alias && x.data == y.data && x.dtype == y.dtype && x.shape == y.shape &&
                     x.strides == y.strides;
  if (!alias) {
    throw Error(ErrorKind::kOverlap, op, y_arg, std::string("memory overlapping ") + x_arg,
                allow_alias ? std::string(y_arg) + " must be exactly " + x_arg +
                                  " (in place) or not overlap it at all"
                            : std::string("must not overlap ") + x_arg);
  }
}

}  // namespace

void check_no_overlap(const char* op, const ConstTensorView& x, const ConstTensorView& y,
                      bool allow_alias, const char* y_arg, const char* x_arg) {
  check_no_overlap_impl(op, x, y, allow_alias, y_arg, x_arg);
}

void check_no_overlap(const char* op, const ConstTensorView& x, const TensorView& y,
                      bool allow_alias, const char* y_arg, const char* x_arg) {
  check_no_overlap_impl(op, x, y, allow_alias, y_arg, x_arg);
}

}  // namespace softmax::detail
