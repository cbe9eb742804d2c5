// src/core/convert.cc: dtype conversion of a strided tensor (softmax/convert.hpp).
#include "softmax/convert.hpp"

#include <cstring>
#include <string>

#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"

namespace softmax {
namespace {

// Element i of x (any dtype) as the exact double (i64 beyond 2^53: rounded to nearest).
double load(const char* p, DType t) { return detail::load_as_double(p, t, 0); }

// v (exact) stored once-rounded in t.
void store(char* p, DType t, double v) {
  switch (t) {
    case DType::bf16: {
      const uint16_t h = detail::f64_to_bf16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::f16: {
      const uint16_t h = detail::f64_to_f16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    default: detail::store_from_double(p, t, 0, v); break;  // f32 (one rounding) or f64
  }
}

}  // namespace

void convert(ConstTensorView x, TensorView y, const Context& context) {
  const char* op = "convert";
  const detail::ExecScope exec_scope(op, context);
  detail::check_view(op, "x", x);
  detail::check_output_view(op, "y", y);
  if (y.dtype == DType::i32 || y.dtype == DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "y", dtype_name(y.dtype),
                "must be a floating dtype (f32, f64, bf16 or f16)");
  }
  detail::check_same_shape(op, "y", x.shape, y.shape);
  detail::check_no_overlap(op, x, y, /*allow_alias=*/x.dtype == y.dtype);
  if (x.rank() == 0) {  // one element: view it as (1,)
    x.shape = y.shape = {1};
    x.strides = y.strides = {1};
  }
  const detail::RowGeometry g = detail::make_row_geometry(x, y, x.rank() - 1, false);
  if (g.rows == 0 || g.n == 0) return;
  const auto xes = static_cast<int64_t>(dtype_size(x.dtype));
  const auto yes = static_cast<int64_t>(dtype_size(y.dtype));
  const auto* xb = static_cast<const char*>(x.data);
  auto* yb = static_cast<char*>(y.data);
  const int threads = detail::current_exec().threads;
  detail::parallel_for(g.rows, g.rows * g.n >= detail::kMinParallelElems ? threads : 1,
                       [&](int64_t b, int64_t e) {
                         detail::for_each_row(g, b, e, [&](int64_t, int64_t xo, int64_t yo) {
                           for (int64_t i = 0; i < g.n; ++i) {
                             store(yb + (yo + i * g.y_step) * yes, y.dtype,
                                   load(xb + (xo + i * g.x_step) * xes, x.dtype));
                           }
                         });
                       });
}

}  // namespace softmax
