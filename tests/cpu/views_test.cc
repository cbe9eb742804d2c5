// tests/cpu/views_test.cc: strided views. A row's result depends only on its values (ops.hpp),
// so every layout -- a non-last axis, negative strides, strided rows, in place, misaligned
// pointers (offset by one element from 64-byte alignment), stride-0 (broadcast) inputs -- must
// give bitwise the result of the same row computed contiguously on its own.
#include <cstring>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

enum class Kind { kSoftmax, kLogSoftmax, kLogsumexp, kSigmoid, kArgmax, kHardmax };
const Kind kKinds[] = {Kind::kSoftmax, Kind::kLogSoftmax, Kind::kLogsumexp,
                       Kind::kSigmoid, Kind::kArgmax,     Kind::kHardmax};
const char* Name(Kind k) {
  const char* n[] = {"softmax", "log_softmax", "logsumexp", "sigmoid", "argmax", "hardmax"};
  return n[static_cast<int>(k)];
}
bool Reduces(Kind k) { return k == Kind::kLogsumexp || k == Kind::kArgmax; }

void RunKind(Kind k, ConstTensorView x, TensorView y, int64_t axis, int threads = 1) {
  const SoftmaxOptions o = Opts(axis, 1.0, threads);
  switch (k) {
    case Kind::kSoftmax: softmax::softmax(x, y, o); break;
    case Kind::kLogSoftmax: softmax::log_softmax(x, y, o); break;
    case Kind::kLogsumexp: softmax::logsumexp(x, y, o); break;
    case Kind::kArgmax: softmax::argmax(x, y, o); break;
    case Kind::kHardmax: softmax::hardmax(x, y, o); break;
    case Kind::kSigmoid: {
      softmax::ElementwiseOptions eo;
      eo.threads = threads;
      softmax::sigmoid(x, y, eo);
      break;
    }
  }
}

// 2-d layout inside a buffer: element (r, c) at element offset off + r * sr + c * sc.
struct Layout {
  int64_t off, sr, sc;
};
Layout Contig(int64_t cols) { return {0, cols, 1}; }

// Expected bits of row/column `i` (along `axis`) computed alone and contiguously.
std::vector<uint64_t> Alone(Kind k, DTypePair p, const std::vector<double>& line) {
  const auto n = static_cast<int64_t>(line.size());
  Buffer x = MakeBuffer(p.x, line);
  const DType yt = k == Kind::kArgmax ? DType::i64 : p.y;
  Buffer y(yt, Reduces(k) ? 1 : n);
  RunKind(k, x.cview({1, n}),
          y.view(Reduces(k) ? std::vector<int64_t>{1} : std::vector<int64_t>{1, n}), -1);
  std::vector<uint64_t> b;
  for (int64_t i = 0; i < y.size(); ++i) b.push_back(y.bits(i));
  return b;
}

// Runs k on the (R, C) matrix m stored with layout lx, writing with layout ly (for reductions:
// element i at ly.off + i * ly.sr), along `axis`, and compares each line with Alone().
// `misalign` shifts both base pointers by one element off 64-byte alignment.
void CheckLayout(Kind k, DTypePair p, const std::vector<std::vector<double>>& m, Layout lx,
                 Layout ly, int64_t axis, bool misalign, int threads = 1) {
  const auto R = static_cast<int64_t>(m.size()), C = static_cast<int64_t>(m[0].size());
  SCOPED_TRACE(std::string(Name(k)) + " " + PairName(p) + " (" + std::to_string(R) + ", " +
               std::to_string(C) + ") axis " + std::to_string(axis) + " x strides (" +
               std::to_string(lx.sr) + ", " + std::to_string(lx.sc) + ")" +
               (misalign ? " misaligned" : ""));
  const int64_t pad = 1 + (misalign ? 1 : 0);
  auto extent = [&](Layout l) {
    return l.off + std::max<int64_t>(0, (R - 1) * l.sr) + std::max<int64_t>(0, (C - 1) * l.sc) + 1;
  };
  Buffer xb(p.x, extent(lx) + pad);
  char* xbase = static_cast<char*>(xb.data()) + (misalign ? xb.es() : 0);
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      softmax::detail::store_from_double(xbase, p.x, lx.off + r * lx.sr + c * lx.sc, m[r][c]);
    }
  }
  const DType yt = k == Kind::kArgmax ? DType::i64 : p.y;
  const bool red = Reduces(k);
  const int64_t a = axis < 0 ? axis + 2 : axis;
  const int64_t lines = a == 1 ? R : C, len = a == 1 ? C : R;
  Buffer yb(yt, (red ? ly.off + (lines - 1) * std::abs(ly.sr) + 1 : extent(ly)) + pad);
  char* ybase = static_cast<char*>(yb.data()) + (misalign ? yb.es() : 0);
  ConstTensorView xv(xbase + lx.off * xb.es(), p.x, {R, C}, {lx.sr, lx.sc});
  TensorView yv = red ? TensorView(ybase + ly.off * yb.es(), yt, {lines}, {ly.sr})
                      : TensorView(ybase + ly.off * yb.es(), yt, {R, C}, {ly.sr, ly.sc});
  RunKind(k, xv, yv, axis, threads);
  for (int64_t i = 0; i < lines; ++i) {
    std::vector<double> line(len);
    for (int64_t j = 0; j < len; ++j) line[j] = a == 1 ? m[i][j] : m[j][i];
    const auto want = Alone(k, p, line);
    for (int64_t j = 0; j < static_cast<int64_t>(want.size()); ++j) {
      const int64_t e = red ? ly.off + i * ly.sr
                            : ly.off + (a == 1 ? i * ly.sr + j * ly.sc : j * ly.sr + i * ly.sc);
      uint64_t got = 0;
      std::memcpy(&got, ybase + e * yb.es(), static_cast<std::size_t>(yb.es()));
      ASSERT_EQ(got, want[j]) << "line " << i << " elem " << j;
    }
  }
}

std::vector<std::vector<double>> Matrix(std::mt19937_64& rng, int64_t R, int64_t C) {
  std::vector<std::vector<double>> m(R);
  for (auto& row : m) row = Normal(rng, C, 3.0);
  return m;
}

const DTypePair kPairs[] = {{DType::f32, DType::f32},
                            {DType::f64, DType::f64},
                            {DType::bf16, DType::bf16},
                            {DType::f16, DType::f32}};

TEST(Views, NonLastAxis) {
  std::mt19937_64 rng(81);
  for (Kind k : kKinds) {
    if (k == Kind::kSigmoid) continue;  // elementwise: no axis
    for (DTypePair p : kPairs) {
      if (k == Kind::kArgmax && p.x != p.y) continue;
      const auto m = Matrix(rng, 37, 5);
      CheckLayout(k, p, m, Contig(5), Contig(5), 0, false);
      CheckLayout(k, p, m, Contig(5), Contig(5), -2, false);
      CheckLayout(k, p, m, Contig(5), {0, 1, 37}, 0, false);  // output column-major
    }
  }
}

TEST(Views, ThreeDimensionalMiddleAxis) {
  // x: (3, 5, 4), softmax along axis 1 (= -2), compared with each (i, :, l) line alone.
  std::mt19937_64 rng(82);
  const auto v = Normal(rng, 60, 2);
  std::vector<LD> ex;
  Buffer x = MakeBuffer(DType::f32, v, &ex);
  for (int64_t axis : {1, -2}) {
    Buffer y(DType::f32, 60);
    softmax::softmax(x.cview({3, 5, 4}), y.view({3, 5, 4}), Opts(axis));
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t l = 0; l < 4; ++l) {
        std::vector<double> line;
        for (int64_t j = 0; j < 5; ++j) line.push_back(v[(i * 5 + j) * 4 + l]);
        const auto want = Alone(Kind::kSoftmax, {DType::f32, DType::f32}, line);
        for (int64_t j = 0; j < 5; ++j) ASSERT_EQ(y.bits((i * 5 + j) * 4 + l), want[j]);
      }
    }
  }
}

TEST(Views, NegativeAndLargeStrides) {
  std::mt19937_64 rng(83);
  for (Kind k : kKinds) {
    for (DTypePair p : kPairs) {
      if (k == Kind::kArgmax && p.x != p.y) continue;
      for (int64_t C : {1, 7, 64, 130}) {
        const int64_t R = 4;
        const auto m = Matrix(rng, R, C);
        const bool red = Reduces(k);
        // Both strides negative: data points at the last element of the storage.
        CheckLayout(k, p, m, {(R - 1) * C + C - 1, -C, -1}, red ? Layout{R - 1, -1, 0} : Contig(C),
                    -1, false);
        // Rows of every other element, output every third element.
        CheckLayout(k, p, m, {0, 2 * C + 5, 2}, red ? Layout{0, 3, 0} : Layout{0, 3 * C, 3}, -1,
                    false);
        // Transposed storage (column-major), reduce along rows.
        CheckLayout(k, p, m, {0, 1, R}, red ? Layout{0, 1, 0} : Layout{(R - 1) * C, -C, 1}, 1,
                    false);
      }
    }
  }
}

TEST(Views, MisalignedPointers) {
  std::mt19937_64 rng(84);
  for (Kind k : kKinds) {
    for (DTypePair p : kPairs) {
      if (k == Kind::kArgmax && p.x != p.y) continue;
      for (int64_t C = 1; C <= 70; C += 3) {
        const auto m = Matrix(rng, 3, C);
        CheckLayout(k, p, m, Contig(C), Reduces(k) ? Layout{0, 1, 0} : Contig(C), -1, true);
        CheckLayout(k, p, m, {1, C + 1, 1}, Reduces(k) ? Layout{1, 1, 0} : Layout{3, C, 1}, -1,
                    true);
      }
      // Long rows (blocks and chunks) at odd offsets.
      const auto m = Matrix(rng, 2, 33000);
      CheckLayout(k, p, m, {3, 33001, 1}, Reduces(k) ? Layout{1, 1, 0} : Layout{1, 33000, 1}, -1,
                  true, 2);
    }
  }
}

TEST(Views, InPlace) {
  std::mt19937_64 rng(85);
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    for (int64_t axis : {-1, 0}) {
      const int64_t R = 6, C = 70;
      const auto v = Normal(rng, R * C, 3);
      Buffer x = MakeBuffer(t, v), y(t, R * C), in(t, R * C);
      for (Kind k : {Kind::kSoftmax, Kind::kLogSoftmax, Kind::kHardmax, Kind::kSigmoid}) {
        Fill(in, v);
        RunKind(k, x.cview({R, C}), y.view({R, C}), axis);
        RunKind(k, in.cview({R, C}), in.view({R, C}), axis);
        for (int64_t i = 0; i < R * C; ++i) {
          ASSERT_EQ(in.bits(i), y.bits(i)) << Name(k) << " " << softmax::dtype_name(t);
        }
      }
    }
  }
  // In place through a transposed view (same data and strides on both sides).
  std::vector<float> a(12), b(12);
  for (int i = 0; i < 12; ++i) a[i] = b[i] = static_cast<float>(i % 5) - 2.0f;
  softmax::softmax(ConstTensorView(a.data(), DType::f32, {4, 3}, {1, 4}),
                   TensorView(a.data(), DType::f32, {4, 3}, {1, 4}), Opts());
  std::vector<float> want(12);
  softmax::softmax(ConstTensorView(b.data(), DType::f32, {3, 4}, {4, 1}),
                   TensorView(want.data(), DType::f32, {3, 4}, {4, 1}), Opts(0));
  EXPECT_EQ(a, want);
}

TEST(Views, BroadcastInputStrideZero) {
  // x: (5, 9) with row stride 0 (every row the same storage): all output rows equal the first.
  std::mt19937_64 rng(86);
  const auto v = Normal(rng, 9, 2);
  std::vector<float> x(v.begin(), v.end()), y(45);
  softmax::softmax(ConstTensorView(x.data(), DType::f32, {5, 9}, {0, 1}),
                   TensorView(y.data(), {5, 9}), Opts());
  for (int r = 1; r < 5; ++r) {
    for (int c = 0; c < 9; ++c) ASSERT_EQ(y[r * 9 + c], y[c]);
  }
  std::vector<float> row(9);
  softmax::softmax(x, row);
  for (int c = 0; c < 9; ++c) EXPECT_EQ(y[c], row[c]);
}

}  // namespace
}  // namespace stest
