// tests/cpu/inplace_test.cc: every op that documents an in-place mode (y exactly x; backward dx
// exactly dy or exactly y) gives bitwise the out-of-place result: softmax, log_softmax, sigmoid,
// hardmax, softmax_backward and log_softmax_backward, every dtype, T = 1 and T != 1 (also
// extreme T, computed in f64 for f32 storage), row lengths 1..300 and long rows, the short-row,
// long-row and strided paths, on rows that are ordinary, near-certain (one logit far above the
// rest: the log modes sum such rows twice) and causal-masked (-inf tails), and on the real
// attention scores of ../shared/data. (logsumexp has no in-place form: its output has another
// shape, and any overlap with x is rejected.)
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "softmax/backward.hpp"
#include "src/ref/attention_reference.hpp"
#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

const DType kDTypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

// A forward op y = f(x) on views of the given shape and axis.
using ForwardOp = std::function<void(ConstTensorView, TensorView, const SoftmaxOptions&)>;

struct NamedOp {
  const char* name;
  ForwardOp fn;
};
std::vector<NamedOp> ForwardOps() {
  return {
      {"softmax",
       [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) { softmax::softmax(x, y, o); }},
      {"log_softmax", [](ConstTensorView x, TensorView y,
                         const SoftmaxOptions& o) { softmax::log_softmax(x, y, o); }},
      {"hardmax",
       [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) { softmax::hardmax(x, y, o); }},
      {"sigmoid",
       [](ConstTensorView x, TensorView y, const SoftmaxOptions& o) {
         softmax::ElementwiseOptions e;
         e.threads = o.threads;
         softmax::sigmoid(x, y, e);
       }},
  };
}

// Row families: 0 ordinary N(0, 3^2); 1 near-certain (one logit 40 above); 2 causal (row r of a
// batch keeps r % n + 1 leading entries, -inf after).
std::vector<double> Rows(std::mt19937_64& rng, int family, int64_t rows, int64_t n) {
  std::vector<double> v = Normal(rng, rows * n, 3.0);
  for (int64_t r = 0; r < rows; ++r) {
    double* row = v.data() + r * n;
    if (family == 1) row[(r * 7 + 3) % n] += 40.0;
    if (family == 2) {
      for (int64_t j = r % n + 1; j < n; ++j) row[j] = -kInf;
    }
  }
  return v;
}

// Compares bit patterns of two buffers of one dtype (NaNs of any payload count as equal).
void ExpectSameBits(const Buffer& want, const Buffer& got, const std::string& what) {
  int reported = 0;
  for (int64_t i = 0; i < want.size() && reported < 3; ++i) {
    if (want.bits(i) == got.bits(i)) continue;
    if (std::isnan(want.get(i)) && std::isnan(got.get(i))) continue;
    ++reported;
    ADD_FAILURE() << what << " i=" << i << " out of place " << Str(want.get(i)) << " in place "
                  << Str(got.get(i));
  }
}

// x of `shape` in dtype t, op along `axis`: out of place vs in place, bitwise.
void CheckForward(const NamedOp& op, DType t, const std::vector<int64_t>& shape, int64_t axis,
                  const std::vector<double>& v, double temperature, const std::string& what) {
  Buffer x = MakeBuffer(t, v), y(t, x.size()), z = MakeBuffer(t, v);
  const SoftmaxOptions o = Opts(axis, temperature);
  op.fn(x.cview(shape), y.view(shape), o);
  op.fn(z.cview(shape), z.view(shape), o);
  ExpectSameBits(y, z, std::string(op.name) + " " + softmax::dtype_name(t) + " " + what);
}

// Backward: dx out of place vs dx == dy and dx == y.
void CheckBackward(bool log_mode, DType t, const std::vector<int64_t>& shape, int64_t axis,
                   const std::vector<double>& x, const std::vector<double>& g, double temperature,
                   const std::string& what) {
  const SoftmaxOptions o = Opts(axis, temperature);
  Buffer xb = MakeBuffer(t, x), y(t, xb.size());
  if (log_mode)
    softmax::log_softmax(xb.cview(shape), y.view(shape), o);
  else
    softmax::softmax(xb.cview(shape), y.view(shape), o);
  auto run = [&](ConstTensorView yv, ConstTensorView dyv, TensorView dxv) {
    if (log_mode)
      softmax::log_softmax_backward(yv, dyv, dxv, o);
    else
      softmax::softmax_backward(yv, dyv, dxv, o);
  };
  Buffer dy = MakeBuffer(t, g), dx(t, xb.size());
  run(y.cview(shape), dy.cview(shape), dx.view(shape));
  Buffer dy2 = MakeBuffer(t, g);  // dx aliases dy
  run(y.cview(shape), dy2.cview(shape), dy2.view(shape));
  Buffer y2(t, xb.size());  // dx aliases y
  std::memcpy(y2.data(), y.data(), static_cast<std::size_t>(y.size() * y.es()));
  run(y2.cview(shape), dy.cview(shape), y2.view(shape));
  const std::string name = std::string(log_mode ? "log_softmax_backward " : "softmax_backward ") +
                           softmax::dtype_name(t) + " " + what;
  ExpectSameBits(dx, dy2, name + " (dx = dy)");
  ExpectSameBits(dx, y2, name + " (dx = y)");
}

// Every op on one row family as (3, n) contiguous rows (short-row path for n <= 2048, long-row
// path beyond) and as the transpose, (n, 3) along axis 0 (strided path).
void CheckAll(std::mt19937_64& rng, DType t, int64_t n, int family, double temperature) {
  const int64_t rows = 3;
  const std::vector<double> v = Rows(rng, family, rows, n);
  std::vector<double> vt(v.size());  // transposed: element (i, r) = v[r * n + i]
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i)
      vt[static_cast<std::size_t>(i * rows + r)] = v[static_cast<std::size_t>(r * n + i)];
  const std::string what =
      "n=" + std::to_string(n) + " family " + std::to_string(family) + " T=" + Str(temperature);
  for (const NamedOp& op : ForwardOps()) {
    CheckForward(op, t, {rows, n}, -1, v, temperature, what + " contiguous");
    CheckForward(op, t, {n, rows}, 0, vt, temperature, what + " strided");
  }
  const std::vector<double> g = Normal(rng, rows * n, 1.0);
  for (bool log_mode : {false, true}) {
    CheckBackward(log_mode, t, {rows, n}, -1, v, g, temperature, what + " contiguous");
    CheckBackward(log_mode, t, {n, rows}, 0, vt, g, temperature, what + " strided");
  }
}

TEST(InPlace, EveryOpEveryDtypeShortRows) {
  std::mt19937_64 rng(91);
  for (DType t : kDTypes) {
    for (int64_t n = 1; n <= 300; ++n) {
      for (int family = 0; family < 3; ++family) {
        for (double temperature : {1.0, 0.7}) CheckAll(rng, t, n, family, temperature);
      }
    }
  }
}

TEST(InPlace, EveryOpEveryDtypeLongRowsAndExtremeT) {
  std::mt19937_64 rng(92);
  for (DType t : kDTypes) {
    for (int64_t n : {2047, 2048, 2049, 5000, 40000}) {
      for (int family = 0; family < 3; ++family) {
        for (double temperature : {1.0, 2.5}) CheckAll(rng, t, n, family, temperature);
      }
    }
    for (int64_t n : {1, 7, 130}) {
      for (int family = 0; family < 3; ++family) {
        for (double temperature : {1e-40, 1e35}) CheckAll(rng, t, n, family, temperature);
      }
    }
  }
}

TEST(InPlace, EveryTarget) {
  ForEachTarget([&](const std::string&) {
    std::mt19937_64 rng(93);
    for (DType t : kDTypes) {
      for (int64_t n : {1, 2, 5, 16, 17, 64, 100, 257, 3000}) {
        for (int family = 0; family < 3; ++family) CheckAll(rng, t, n, family, n % 2 ? 1.0 : 1.3);
      }
    }
  });
}

// The real causal attention scores (float32 (5, 8, 128, 128), -inf above the diagonal): the
// first rows are near-certain, which the in-place log_softmax once got wrong (positive
// log-probs). Also checked against the long double reference here.
TEST(InPlace, RealAttentionScores) {
  std::vector<int64_t> shape;
  std::vector<float> scores;
  if (!attn_ref::read_npy_f32(std::string(SOFTMAX_SHARED_DATA) + "/stories260K_attn_scores.npy",
                              shape, scores)) {
    GTEST_SKIP() << "shared data not available";
  }
  ASSERT_EQ(shape, (std::vector<int64_t>{5, 8, 128, 128}));
  const std::vector<double> v(scores.begin(), scores.end());
  const std::vector<int64_t> rows2d{5 * 8 * 128, 128};
  for (DType t : kDTypes) {
    for (double temperature : {1.0, 0.8}) {
      for (const NamedOp& op : ForwardOps()) {
        CheckForward(op, t, shape, -1, v, temperature, "attention scores");
      }
      const std::vector<double> g(v.size(), 0.25);
      for (bool log_mode : {false, true}) {
        CheckBackward(log_mode, t, rows2d, -1, v, g, temperature, "attention scores");
      }
    }
  }
  // In place, f32, T = 1, against the reference: log-probs <= 0 and within the bound.
  Buffer z = MakeBuffer(DType::f32, v);
  softmax::log_softmax(z.cview(rows2d), z.view(rows2d), Opts());
  int failures = 0;
  for (int64_t r = 0; r < rows2d[0] && failures < 3; ++r) {
    std::vector<LD> row(v.begin() + r * 128, v.begin() + (r + 1) * 128);
    const std::vector<LD> ref = softmax::ref::log_softmax(row);
    for (int64_t i = 0; i < 128; ++i) {
      const double got = z.get(r * 128 + i);
      if (std::isinf(static_cast<double>(ref[i]))) {
        if (static_cast<LD>(got) != ref[i]) ++failures;
        continue;
      }
      const LD err = std::fabs(static_cast<LD>(got) - ref[i]);
      if (!(got <= 0.0) || err > 6 * 0x1p-24L * std::fabs(ref[i]) + 0x1p-150L) {
        ++failures;
        ADD_FAILURE() << "row " << r << " i " << i << " got " << got << " exact "
                      << static_cast<double>(ref[i]);
      }
    }
  }
}

}  // namespace
}  // namespace stest
