// tests/cpu/backward_test.cc: softmax_backward / log_softmax_backward against a long double
// reference, across lengths around every vector width and block size, dtypes, axes, strides,
// in-place use, temperature, threads, SIMD targets, and the error rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "softmax/backward.hpp"
#include "src/ref/reference.hpp"
#include "softmax/error.hpp"
#include "src/base/half.hpp"
#ifndef SOFTMAX_TRAIN_SCRATCH
#include "softmax/dispatch.hpp"
#endif

namespace {

using LD = long double;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::SoftmaxOptions;
using softmax::TensorView;

// Storage of `n` values of any floating dtype, built from doubles (rounded once).
struct Buf {
  DType t;
  std::vector<unsigned char> b;
  Buf(DType dt, std::size_t n) : t(dt), b(n * softmax::dtype_size(dt)) {}
  double get(std::size_t i) const { return softmax::detail::load_as_double(b.data(), t, i); }
  void set(std::size_t i, double v) { softmax::detail::store_from_double(b.data(), t, i, v); }
  void* data() { return b.data(); }
};

// Builds a row pair (y, dy) of dtype t: y a softmax (or log-softmax) output, dy random.
void make_row(std::mt19937& rng, std::size_t n, bool log_mode, Buf& y, Buf& dy, std::size_t off = 0,
              std::size_t step = 1) {
  std::normal_distribution<double> nd(0.0, 3.0);
  std::vector<LD> x(n);
  for (auto& v : x) v = nd(rng);
  const auto p = softmax::ref::softmax(x);
  for (std::size_t i = 0; i < n; ++i) {
    y.set(off + i * step,
          log_mode ? static_cast<double>(std::log(p[i])) : static_cast<double>(p[i]));
    dy.set(off + i * step, nd(rng));
  }
}

// Reference dx (src/ref) and a per-element error bound for the computed type.
void reference(const std::vector<LD>& y, const std::vector<LD>& dy, bool log_mode, LD inv_t,
               double unit, std::vector<LD>& dx, std::vector<LD>& tol) {
  const std::size_t n = y.size();
  dx = log_mode ? softmax::ref::log_softmax_backward(y, dy, 1 / inv_t)
                : softmax::ref::softmax_backward(y, dy, 1 / inv_t);
  LD sabs = 0;
  for (std::size_t i = 0; i < n; ++i) sabs += log_mode ? std::fabs(dy[i]) : std::fabs(dy[i] * y[i]);
  tol.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    tol[i] = log_mode ? 8 * unit * (std::fabs(dy[i]) + std::exp(y[i]) * sabs) * inv_t
                      : 8 * unit * std::fabs(y[i]) * (std::fabs(dy[i]) + sabs) * inv_t;
  }
}

double out_unit(DType t) {
  switch (t) {
    case DType::f64: return 0x1p-53;
    case DType::bf16: return 0x1p-8;
    case DType::f16: return 0x1p-11;
    default: return 0x1p-24;
  }
}

void run_case(DType t, DType out_t, std::size_t n, bool log_mode, double temperature = 1.0,
              int threads = 0) {
  std::mt19937 rng(static_cast<unsigned>(n * 7 + (log_mode ? 1 : 0)));
  const std::size_t rows = 3;
  Buf y(t, rows * n), dy(t, rows * n), dx(out_t, rows * n);
  for (std::size_t r = 0; r < rows; ++r) make_row(rng, n, log_mode, y, dy, r * n);
  SoftmaxOptions o;
  o.temperature = temperature;
  o.threads = threads;
  const std::vector<int64_t> shape{static_cast<int64_t>(rows), static_cast<int64_t>(n)};
  ConstTensorView yv(y.data(), t, shape), dyv(dy.data(), t, shape);
  TensorView dxv(dx.data(), out_t, shape);
  if (log_mode)
    softmax::log_softmax_backward(yv, dyv, dxv, o);
  else
    softmax::softmax_backward(yv, dyv, dxv, o);
  const double unit = t == DType::f64 ? 0x1p-53 : 0x1p-24;
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<LD> yr(n), dyr(n), ref, tol;
    for (std::size_t i = 0; i < n; ++i) {
      yr[i] = y.get(r * n + i);
      dyr[i] = dy.get(r * n + i);
    }
    reference(yr, dyr, log_mode, 1.0L / temperature, unit, ref, tol);
    for (std::size_t i = 0; i < n; ++i) {
      const double got = dx.get(r * n + i);
      // f16 subnormals (below 2^-14) are spaced 2^-24 apart: half of that absolute.
      const LD bound =
          tol[i] + out_unit(out_t) * std::fabs(ref[i]) + (out_t == DType::f16 ? 0x1p-25L : 1e-300L);
      ASSERT_LE(std::fabs(got - ref[i]), bound)
          << "n=" << n << " row " << r << " i=" << i << " ref=" << static_cast<double>(ref[i]);
    }
  }
}

const std::size_t kLengths[] = {1,   2,   3,   7,    8,    9,    15,   16,   17,
                                31,  32,  33,  63,   64,   65,   127,  128,  129,
                                255, 256, 257, 1000, 2047, 2048, 2049, 4097, 10000};

TEST(SoftmaxBackward, F32AllLengths) {
  for (std::size_t n : kLengths) run_case(DType::f32, DType::f32, n, false);
}
TEST(SoftmaxBackward, F64AllLengths) {
  for (std::size_t n : kLengths) run_case(DType::f64, DType::f64, n, false);
}
TEST(LogSoftmaxBackward, F32AllLengths) {
  for (std::size_t n : kLengths) run_case(DType::f32, DType::f32, n, true);
}
TEST(LogSoftmaxBackward, F64AllLengths) {
  for (std::size_t n : kLengths) run_case(DType::f64, DType::f64, n, true);
}
TEST(SoftmaxBackward, HalfDtypes) {
  for (DType in : {DType::bf16, DType::f16, DType::f32}) {
    for (DType out : {DType::bf16, DType::f16, DType::f32}) {
      for (std::size_t n : {5, 64, 1000}) {
        run_case(in, out, n, false);
        run_case(in, out, n, true);
      }
    }
  }
}

TEST(SoftmaxBackward, TemperatureScales) {
  // Fails if temperature were ignored: the bound is tight relative to a 2x difference.
  run_case(DType::f32, DType::f32, 100, false, 2.0);
  run_case(DType::f64, DType::f64, 100, true, 0.5);
  std::vector<float> y{0.25f, 0.75f}, dy{1.0f, -1.0f}, a(2), b(2);
  SoftmaxOptions o;
  softmax::softmax_backward(ConstTensorView(y.data(), {2}), ConstTensorView(dy.data(), {2}),
                            TensorView(a.data(), {2}), o);
  o.temperature = 4.0;
  softmax::softmax_backward(ConstTensorView(y.data(), {2}), ConstTensorView(dy.data(), {2}),
                            TensorView(b.data(), {2}), o);
  EXPECT_FLOAT_EQ(a[0], 0.375f);  // 0.25 * (1 - (0.25 - 0.75))
  EXPECT_FLOAT_EQ(b[0], a[0] / 4);
}

// T whose 1/T is not a normal number of the compute type (f32: T < 1/FLT_MAX or T > 2^126;
// f64: 1/T overflowing or subnormal): dx = y (dy - s) / T must be the division by T, not a
// product with a saturated 1/T (T = 1e-40 in f32 gave 0.3% of the exact dx: 1/T was clamped to
// FLT_MAX) or with a subnormal 1/T (3 bits at T = 1e44). An exact dx beyond the output's range
// is +-inf; a zero stays 0. Found by the API fuzzer (fuzz/api_fuzz.cc).
TEST(SoftmaxBackward, ExtremeTemperatureDividesByT) {
  struct Case {
    DType t, out;
    double temperature;
    std::vector<double> y, dy;  // y: probabilities (log mode: their logs)
  };
  const Case cases[] = {
      {DType::f32, DType::f32, 1e-40, {0.25, 0.75, 0}, {1e-3, -2e-3, 5}},  // 1/T > FLT_MAX
      {DType::f32, DType::f32, 1e44, {0.25, 0.75}, {1e8, 0}},              // 1/T ~ 7 * 2^-149
      {DType::bf16, DType::bf16, 1e-40, {0.25, 0.75}, {1e-3, -2e-3}},
      {DType::f16, DType::f32, 5e-324, {0.25, 0.75}, {1e-3, 0}},       // dx beyond f32: inf
      {DType::f32, DType::f32, 1e-300, {0.25, 0.75, 0}, {1, -1, 5}},   // +-inf, and 0
      {DType::f64, DType::f64, 1e-310, {0.5, 0.5}, {1e-300, 0}},       // 1/T overflows
      {DType::f64, DType::f64, 1.5e308, {0.5, 0.5}, {1e300, -1e300}},  // 1/T subnormal
  };
  for (const Case& c : cases) {
    for (bool log_mode : {false, true}) {
      const std::size_t n = c.y.size();
      Buf y(c.t, n), dy(c.t, n), dx(c.out, n);
      for (std::size_t i = 0; i < n; ++i) {
        y.set(i, log_mode ? std::log(c.y[i]) : c.y[i]);
        dy.set(i, c.dy[i]);
      }
      SoftmaxOptions o;
      o.temperature = c.temperature;
      const std::vector<int64_t> shape{static_cast<int64_t>(n)};
      ConstTensorView yv(y.data(), c.t, shape), dyv(dy.data(), c.t, shape);
      TensorView dxv(dx.data(), c.out, shape);
      if (log_mode)
        softmax::log_softmax_backward(yv, dyv, dxv, o);
      else
        softmax::softmax_backward(yv, dyv, dxv, o);
      std::vector<LD> yr(n), dyr(n), ref, tol;
      for (std::size_t i = 0; i < n; ++i) {
        yr[i] = y.get(i);
        dyr[i] = dy.get(i);
      }
      const double unit = c.t == DType::f64 ? 0x1p-53 : 0x1p-24;
      reference(yr, dyr, log_mode, 1.0L / static_cast<LD>(c.temperature), unit, ref, tol);
      const LD big = c.out == DType::f64    ? std::numeric_limits<double>::max()
                     : c.out == DType::f32  ? std::numeric_limits<float>::max()
                     : c.out == DType::bf16 ? 0x1.fep127L
                                            : 65504.0L;
      for (std::size_t i = 0; i < n; ++i) {
        const double got = dx.get(i);
        char at[96];
        std::snprintf(at, sizeof at, "%s%s T=%g i=%zu ref=%Lg", log_mode ? "log " : "",
                      softmax::dtype_name(c.t), c.temperature, i, ref[i]);
        if (std::fabs(ref[i]) > 2 * big) {
          EXPECT_EQ(got, ref[i] > 0 ? INFINITY : -INFINITY) << at;
          continue;
        }
        EXPECT_LE(std::fabs(got - ref[i]), tol[i] + out_unit(c.out) * std::fabs(ref[i])) << at;
        if (ref[i] == 0) EXPECT_EQ(got, 0.0) << at;
      }
    }
  }
}

// Axis != last, negative axis, and strided views agree with the contiguous last-axis result.
TEST(SoftmaxBackward, AxisAndStrides) {
  for (bool log_mode : {false, true}) {
    const int64_t a = 4, n = 37, c = 3;
    std::mt19937 rng(5);
    Buf y(DType::f32, a * n * c), dy(DType::f32, a * n * c);
    // rows along axis 1 of (a, n, c): element (i, j, k) at i*n*c + j*c + k.
    for (int64_t i = 0; i < a; ++i) {
      for (int64_t k = 0; k < c; ++k) make_row(rng, n, log_mode, y, dy, i * n * c + k, c);
    }
    std::vector<float> dx(a * n * c);
    SoftmaxOptions o;
    o.axis = -2;
    const std::vector<int64_t> shape{a, n, c};
    auto fn = log_mode ? &softmax::log_softmax_backward : &softmax::softmax_backward;
    fn(ConstTensorView(y.data(), DType::f32, shape), ConstTensorView(dy.data(), DType::f32, shape),
       TensorView(dx.data(), shape), o, {});
    for (int64_t i = 0; i < a; ++i) {
      for (int64_t k = 0; k < c; ++k) {
        std::vector<float> yr(n), dyr(n), dxr(n);
        for (int64_t j = 0; j < n; ++j) {
          yr[j] = static_cast<float>(y.get(i * n * c + j * c + k));
          dyr[j] = static_cast<float>(dy.get(i * n * c + j * c + k));
        }
        fn(ConstTensorView(yr.data(), {n}), ConstTensorView(dyr.data(), {n}),
           TensorView(dxr.data(), {n}), {}, {});
        for (int64_t j = 0; j < n; ++j) ASSERT_EQ(dxr[j], dx[i * n * c + j * c + k]);
      }
    }
  }
}

TEST(SoftmaxBackward, InPlaceOnDyAndOnY) {
  for (bool log_mode : {false, true}) {
    auto fn = log_mode ? &softmax::log_softmax_backward : &softmax::softmax_backward;
    const int64_t n = 777;
    std::mt19937 rng(9);
    Buf y(DType::f32, n), dy(DType::f32, n);
    make_row(rng, n, log_mode, y, dy);
    std::vector<float> want(n);
    auto* yp = static_cast<float*>(y.data());
    auto* dyp = static_cast<float*>(dy.data());
    fn(ConstTensorView(yp, {n}), ConstTensorView(dyp, {n}), TensorView(want.data(), {n}), {}, {});
    std::vector<float> y2(yp, yp + n), dy2(dyp, dyp + n);
    fn(ConstTensorView(y2.data(), {n}), ConstTensorView(dy2.data(), {n}),
       TensorView(dy2.data(), {n}), {}, {});
    EXPECT_EQ(dy2, want);
    std::vector<float> y3(yp, yp + n), dy3(dyp, dyp + n);
    fn(ConstTensorView(y3.data(), {n}), ConstTensorView(dy3.data(), {n}),
       TensorView(y3.data(), {n}), {}, {});
    EXPECT_EQ(y3, want);
  }
}

TEST(SoftmaxBackward, ThreadsDoNotChangeBits) {
  const int64_t rows = 64, n = 3000;
  std::mt19937 rng(3);
  Buf y(DType::f32, rows * n), dy(DType::f32, rows * n);
  for (int64_t r = 0; r < rows; ++r) make_row(rng, n, false, y, dy, r * n);
  std::vector<float> a(rows * n), b(rows * n);
  SoftmaxOptions o;
  o.threads = 1;
  softmax::softmax_backward(ConstTensorView(y.data(), DType::f32, {rows, n}),
                            ConstTensorView(dy.data(), DType::f32, {rows, n}),
                            TensorView(a.data(), {rows, n}), o);
  o.threads = 2;
  softmax::softmax_backward(ConstTensorView(y.data(), DType::f32, {rows, n}),
                            ConstTensorView(dy.data(), DType::f32, {rows, n}),
                            TensorView(b.data(), {rows, n}), o);
  EXPECT_EQ(a, b);
}

#ifndef SOFTMAX_TRAIN_SCRATCH
TEST(SoftmaxBackward, SameBitsOnEverySimdTarget) {
  const int64_t n = 5003;
  std::mt19937 rng(13);
  for (bool log_mode : {false, true}) {
    auto fn = log_mode ? &softmax::log_softmax_backward : &softmax::softmax_backward;
    Buf y(DType::f32, n), dy(DType::f32, n);
    make_row(rng, n, log_mode, y, dy);
    std::vector<float> first;
    for (const auto& tgt : softmax::available_targets()) {
      softmax::set_target(tgt);
      std::vector<float> dx(n);
      fn(ConstTensorView(y.data(), DType::f32, {n}), ConstTensorView(dy.data(), DType::f32, {n}),
         TensorView(dx.data(), {n}), {}, {});
      if (first.empty())
        first = dx;
      else
        EXPECT_EQ(dx, first) << tgt;
    }
    softmax::set_target("");
  }
}
#endif

TEST(SoftmaxBackward, EmptyAndSpecials) {
  std::vector<float> none;
  softmax::softmax_backward(ConstTensorView(none.data(), {0, 5}),
                            ConstTensorView(none.data(), {0, 5}), TensorView(none.data(), {0, 5}),
                            {});
  softmax::softmax_backward(ConstTensorView(none.data(), {4, 0}),
                            ConstTensorView(none.data(), {4, 0}), TensorView(none.data(), {4, 0}),
                            {});
  // log-softmax y = -inf (a probability of 0) gives exp(y) = 0: dx = dy there.
  std::vector<float> y{-INFINITY, 0.0f}, dy{2.0f, 1.0f}, dx(2);
  softmax::log_softmax_backward(ConstTensorView(y.data(), {2}), ConstTensorView(dy.data(), {2}),
                                TensorView(dx.data(), {2}), {});
  EXPECT_EQ(dx[0], 2.0f);
  EXPECT_EQ(dx[1], 1.0f - 3.0f);
}

template <class Fn>
void expect_error(softmax::ErrorKind kind, const char* needle, Fn&& fn) {
  try {
    fn();
    FAIL() << "no error";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(SoftmaxBackward, ErrorsWriteNothing) {
  std::vector<float> y(6, 0.5f), dy(6, 1.0f), dx(6, 42.0f);
  std::vector<double> dyd(6, 1.0);
  using softmax::ErrorKind;
  expect_error(ErrorKind::kDTypeMismatch, "'dy'", [&] {
    softmax::softmax_backward(ConstTensorView(y.data(), {2, 3}),
                              ConstTensorView(dyd.data(), {2, 3}), TensorView(dx.data(), {2, 3}),
                              {});
  });
  expect_error(ErrorKind::kShapeMismatch, "'dx'", [&] {
    softmax::softmax_backward(ConstTensorView(y.data(), {2, 3}), ConstTensorView(dy.data(), {2, 3}),
                              TensorView(dx.data(), {3, 2}), {});
  });
  expect_error(ErrorKind::kInvalidArgument, "axis", [&] {
    SoftmaxOptions o;
    o.axis = 2;
    softmax::log_softmax_backward(ConstTensorView(y.data(), {2, 3}),
                                  ConstTensorView(dy.data(), {2, 3}), TensorView(dx.data(), {2, 3}),
                                  o);
  });
  expect_error(ErrorKind::kOverlap, "'dx'", [&] {
    softmax::softmax_backward(ConstTensorView(y.data(), {5}), ConstTensorView(dy.data(), {5}),
                              TensorView(y.data() + 1, {5}), {});
  });
  expect_error(ErrorKind::kInvalidArgument, "temperature", [&] {
    SoftmaxOptions o;
    o.temperature = 0;
    softmax::softmax_backward(ConstTensorView(y.data(), {6}), ConstTensorView(dy.data(), {6}),
                              TensorView(dx.data(), {6}), o);
  });
  expect_error(ErrorKind::kDTypeMismatch, "dx", [&] {
    std::vector<double> dxd(6);
    softmax::softmax_backward(ConstTensorView(y.data(), {6}), ConstTensorView(dy.data(), {6}),
                              TensorView(dxd.data(), {6}), {});
  });
  for (float v : dx) EXPECT_EQ(v, 42.0f);
}

}  // namespace
