// tests/cpu/errors_test.cc: every rejected argument throws softmax::Error of the right kind,
// whose message names the op and the argument (ops.hpp, error.hpp), and leaves the output
// untouched (checked byte for byte against a sentinel fill).
#include <limits>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

using softmax::ErrorKind;

// Runs fn, which must throw softmax::Error of `kind` whose what() contains each of `needles`.
template <class Fn>
void ExpectError(Fn&& fn, ErrorKind kind, std::vector<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning " << needles[0];
  } catch (const softmax::Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("softmax::", 0), 0u) << msg;
    for (const auto& s : needles) EXPECT_NE(msg.find(s), std::string::npos) << msg << " / " << s;
    // Derives from std::invalid_argument.
    const std::invalid_argument* base = &e;
    EXPECT_NE(base, nullptr);
  }
}

// The normalising ops and logsumexp, each taking the same (x, y, options).
using AxisOp = void (*)(ConstTensorView, TensorView, const SoftmaxOptions&);
struct NamedOp {
  const char* name;
  AxisOp fn;
  bool reduce;
};
const NamedOp kOps[] = {
    {"softmax",
     [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) { softmax::softmax(x, y, o); },
     false},
    {"log_softmax",
     [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) {
       softmax::log_softmax(x, y, o);
     },
     false},
    {"logsumexp",
     [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) { softmax::logsumexp(x, y, o); },
     true},
    {"hardmax",
     [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) { softmax::hardmax(x, y, o); },
     false}};

TEST(Errors, BadAxis) {
  Buffer x(DType::f32, 6), y(DType::f32, 6, 4);
  for (const auto& op : kOps) {
    const auto before = y.raw();
    for (int64_t axis : std::vector<int64_t>{2, -3, 100, std::numeric_limits<int64_t>::min()}) {
      ExpectError(
          [&] {
            op.fn(x.cview({2, 3}),
                  y.view(op.reduce ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 3}),
                  Opts(axis));
          },
          ErrorKind::kInvalidArgument, {op.name, "'axis'", std::to_string(axis), "[-2, 1]"});
    }
    // Rank 0 has no axis.
    ExpectError([&] { op.fn(x.cview({}), y.view({}), Opts()); }, ErrorKind::kInvalidArgument,
                {op.name, "'axis'"});
    EXPECT_EQ(y.raw(), before) << op.name;
  }
  Buffer idx(DType::i64, 2, 2);
  ExpectError(
      [&] {
        softmax::argmax(x.cview({2, 3}), idx.view({2}), Opts(5));
      },
      ErrorKind::kInvalidArgument, {"argmax", "'axis'", "5"});
}

TEST(Errors, ShapeMismatch) {
  Buffer x(DType::f32, 6), y(DType::f32, 6, 4);
  const auto before = y.raw();
  for (const auto& op : {kOps[0], kOps[1], kOps[3]}) {
    ExpectError(
        [&] {
          op.fn(x.cview({2, 3}), y.view({3, 2}), Opts());
        },
        ErrorKind::kShapeMismatch, {op.name, "'y'", "(3, 2)", "(2, 3)"});
    ExpectError(
        [&] {
          op.fn(x.cview({2, 3}), y.view({6}), Opts());
        },
        ErrorKind::kShapeMismatch, {op.name, "'y'"});
  }
  ExpectError(
      [&] {
        softmax::logsumexp(x.cview({2, 3}), y.view({3}), Opts());
      },
      ErrorKind::kShapeMismatch, {"logsumexp", "'y'", "(3,)", "(2,)"});
  ExpectError(
      [&] {
        softmax::logsumexp(x.cview({2, 3}), y.view({2}), Opts(-1, 1.0, 1, true));
      },
      ErrorKind::kShapeMismatch, {"logsumexp", "'y'", "(2, 1)"});
  // shape and strides of different lengths.
  ExpectError(
      [&] {
        softmax::softmax(ConstTensorView(x.data(), DType::f32, {2, 3}, {3}), y.view({2, 3}),
                         Opts());
      },
      ErrorKind::kShapeMismatch, {"softmax", "'x'", "strides"});
  // Spans of different sizes.
  std::vector<float> a(3), b(4);
  ExpectError([&] { softmax::softmax(a, b); }, ErrorKind::kShapeMismatch, {"softmax", "'y'"});
  ExpectError([&] { softmax::log_softmax(a, b); }, ErrorKind::kShapeMismatch,
              {"log_softmax", "'y'"});
  EXPECT_EQ(y.raw(), before);
}

TEST(Errors, DTypeMismatch) {
  Buffer x64(DType::f64, 6), x32(DType::f32, 6), xi(DType::i32, 6);
  Buffer y32(DType::f32, 6, 4), y64(DType::f64, 6, 4), yi(DType::i64, 6, 4);
  const auto b32 = y32.raw(), b64 = y64.raw(), bi = yi.raw();
  for (const auto& op : kOps) {
    if (std::string(op.name) == "hardmax") continue;  // any floating pair is fine
    const std::vector<int64_t> ys =
        op.reduce ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 3};
    ExpectError(
        [&] {
          op.fn(x64.cview({2, 3}), y32.view(ys), Opts());
        },
        ErrorKind::kDTypeMismatch, {op.name, "'y'", "f32", "f64"});
    ExpectError(
        [&] {
          op.fn(x32.cview({2, 3}), y64.view(ys), Opts());
        },
        ErrorKind::kDTypeMismatch, {op.name, "'y'", "f64"});
    ExpectError(
        [&] {
          op.fn(xi.cview({2, 3}), y32.view(ys), Opts());
        },
        ErrorKind::kDTypeMismatch, {op.name, "'x'", "i32"});
    ExpectError(
        [&] {
          op.fn(x32.cview({2, 3}), yi.view(ys), Opts());
        },
        ErrorKind::kDTypeMismatch, {op.name, "i64"});
  }
  ExpectError(
      [&] {
        softmax::argmax(x32.cview({2, 3}), y32.view({2}), Opts());
      },
      ErrorKind::kDTypeMismatch, {"argmax", "'indices'", "f32"});
  ExpectError([&] { softmax::sigmoid(x64.cview({6}), y32.view({6}), {}); },
              ErrorKind::kDTypeMismatch, {"sigmoid", "'y'"});
  EXPECT_EQ(y32.raw(), b32);
  EXPECT_EQ(y64.raw(), b64);
  EXPECT_EQ(yi.raw(), bi);
}

TEST(Errors, BadTemperature) {
  Buffer x(DType::f32, 6), y(DType::f32, 6, 4);
  const auto before = y.raw();
  const double bad[] = {0.0,
                        -0.0,
                        -1.0,
                        std::numeric_limits<double>::quiet_NaN(),
                        std::numeric_limits<double>::infinity(),
                        -std::numeric_limits<double>::infinity()};
  for (const auto& op : kOps) {
    const std::vector<int64_t> ys =
        op.reduce ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 3};
    for (double t : bad) {
      ExpectError(
          [&] {
            op.fn(x.cview({2, 3}), y.view(ys), Opts(-1, t));
          },
          ErrorKind::kInvalidArgument, {op.name, "'temperature'", "finite and > 0"});
    }
  }
  std::vector<float> a(3), b(3);
  ExpectError([&] { softmax::softmax(a, b, 0.0); }, ErrorKind::kInvalidArgument,
              {"softmax", "'temperature'", "0"});
  ExpectError([&] { softmax::logsumexp(std::span<const float>(a), -2.0); },
              ErrorKind::kInvalidArgument, {"logsumexp", "'temperature'", "-2"});
  Buffer idx(DType::i64, 2, 2);
  ExpectError(
      [&] {
        softmax::argmax(x.cview({2, 3}), idx.view({2}), Opts(-1, 0.0));
      },
      ErrorKind::kInvalidArgument, {"argmax", "'temperature'"});
  EXPECT_EQ(y.raw(), before);
}

TEST(Errors, Overlap) {
  Buffer buf(DType::f32, 16, 4);
  std::mt19937_64 rng(71);
  Fill(buf, Normal(rng, 16, 1));
  const auto before = buf.raw();
  auto* p = static_cast<float*>(buf.data());
  for (const auto& op : {kOps[0], kOps[1], kOps[3]}) {
    // Shifted by one element.
    ExpectError(
        [&] {
          op.fn(ConstTensorView(p, {2, 4}), TensorView(p + 1, {2, 4}), Opts());
        },
        ErrorKind::kOverlap, {op.name, "'y'", "overlap"});
    // Same data, other strides (a transposed view of the same memory).
    ExpectError(
        [&] {
          op.fn(ConstTensorView(p, DType::f32, {4, 4}, {4, 1}),
                TensorView(p, DType::f32, {4, 4}, {1, 4}), Opts());
        },
        ErrorKind::kOverlap, {op.name, "'y'"});
    // Same address, different dtype (f32 in, bf16 out).
    ExpectError([&] { op.fn(ConstTensorView(p, {8}), TensorView(p, DType::bf16, {8}), Opts()); },
                ErrorKind::kOverlap, {op.name, "'y'"});
  }
  // logsumexp and argmax may not write into x at all.
  ExpectError(
      [&] {
        softmax::logsumexp(ConstTensorView(p, {2, 4}), TensorView(p, {2}), Opts());
      },
      ErrorKind::kOverlap, {"logsumexp", "'y'"});
  ExpectError(
      [&] {
        softmax::argmax(ConstTensorView(p, {2, 4}), TensorView(p + 4, DType::i64, {2}), Opts());
      },
      ErrorKind::kOverlap, {"argmax", "'indices'"});
  ExpectError([&] { softmax::sigmoid(ConstTensorView(p, {8}), TensorView(p + 3, {8}), {}); },
              ErrorKind::kOverlap, {"sigmoid", "'y'"});
  // An output with stride 0 on a dimension of size > 1.
  Buffer x(DType::f32, 8);
  ExpectError(
      [&] {
        softmax::softmax(x.cview({2, 4}), TensorView(p, DType::f32, {2, 4}, {0, 1}), Opts());
      },
      ErrorKind::kOverlap, {"softmax", "'y'", "stride 0"});
  EXPECT_EQ(buf.raw(), before);
  // Exact aliasing is in place, allowed (and disjoint views next to each other are fine).
  EXPECT_NO_THROW(softmax::softmax(ConstTensorView(p, {2, 4}), TensorView(p, {2, 4}), Opts()));
  EXPECT_NO_THROW(softmax::softmax(ConstTensorView(p, {2, 4}), TensorView(p + 8, {2, 4}), Opts()));
}

TEST(Errors, OverflowingSizes) {
  Buffer x(DType::f32, 8), y(DType::f32, 8, 4);
  const auto before = y.raw();
  const int64_t big = int64_t{1} << 62;
  ExpectError(
      [&] {
        softmax::softmax(ConstTensorView(x.data(), DType::f32, {big, 4}, {4, 1}), y.view({2, 4}),
                         Opts());
      },
      ErrorKind::kOverflow, {"softmax", "'x'", "overflows"});
  ExpectError(
      [&] {
        softmax::softmax(ConstTensorView(x.data(), DType::f32, {2, 4}, {big, 1}), y.view({2, 4}),
                         Opts());
      },
      ErrorKind::kOverflow, {"softmax", "'x'", "byte extent"});
  ExpectError(
      [&] {
        softmax::softmax(
            x.cview({2, 4}),
            TensorView(y.data(), DType::f32, {2, 4}, {std::numeric_limits<int64_t>::min(), 1}),
            Opts());
      },
      ErrorKind::kOverflow, {"softmax", "'y'"});
  ExpectError(
      [&] {
        softmax::contiguous_strides(std::vector<int64_t>{big, big});
      },
      ErrorKind::kOverflow, {"overflows"});
  // A row longer than i32 indices can hold.
  Buffer idx(DType::i32, 1, 2);
  const auto ib = idx.raw();
  ExpectError(
      [&] {
        softmax::argmax(ConstTensorView(x.data(), DType::f32, {int64_t{1} << 31}, {0}),
                        idx.view({}), Opts());
      },
      ErrorKind::kOverflow, {"argmax", "'indices'", "i32"});
  EXPECT_EQ(idx.raw(), ib);
  // Negative dimensions.
  ExpectError(
      [&] {
        softmax::softmax(ConstTensorView(x.data(), DType::f32, {-2, 4}, {4, 1}), y.view({2, 4}),
                         Opts());
      },
      ErrorKind::kInvalidArgument, {"softmax", "'x'", ">= 0"});
  EXPECT_EQ(y.raw(), before);
}

TEST(Errors, NullDataAndCudaViews) {
  Buffer x(DType::f32, 8), y(DType::f32, 8, 4);
  const auto before = y.raw();
  ExpectError(
      [&] {
        softmax::softmax(ConstTensorView(static_cast<const float*>(nullptr), {2, 4}),
                         y.view({2, 4}), Opts());
      },
      ErrorKind::kInvalidArgument, {"softmax", "'x'", "null"});
  ExpectError(
      [&] {
        softmax::log_softmax(x.cview({2, 4}), TensorView(static_cast<float*>(nullptr), {2, 4}),
                             Opts());
      },
      ErrorKind::kInvalidArgument, {"log_softmax", "'y'", "null"});
  // Null data is fine for an empty view.
  EXPECT_NO_THROW(softmax::softmax(ConstTensorView(static_cast<const float*>(nullptr), {0, 4}),
                                   TensorView(static_cast<float*>(nullptr), {0, 4}), Opts()));
  ConstTensorView xc(x.data(), DType::f32, {2, 4}, {4, 1}, softmax::Device::cuda);
  // A CUDA input with a CPU output: tensors of one call on two devices.
  ExpectError(
      [&] {
        softmax::softmax(xc, y.view({2, 4}), Opts());
      },
      ErrorKind::kInvalidArgument, {"softmax", "'y'", "on cpu", "one device", "x is on cuda"});
  TensorView yc(y.data(), DType::f32, {2, 4}, {4, 1}, softmax::Device::cuda);
  ExpectError(
      [&] {
        softmax::sigmoid(x.cview({2, 4}), yc, {});
      },
      ErrorKind::kUnsupported, {"sigmoid", "'y'", "CUDA"});
  EXPECT_EQ(y.raw(), before);
}

TEST(Errors, SetTarget) {
  ExpectError([] { softmax::set_target("NOT_A_TARGET"); }, ErrorKind::kInvalidArgument,
              {"set_target", "'name'", "NOT_A_TARGET"});
  EXPECT_EQ(softmax::current_target(), softmax::available_targets().front());
}

}  // namespace
}  // namespace stest
