// tests/cpu/argmax_hardmax_test.cc: argmax (lowest index wins ties, first NaN wins) and hardmax
// (one-hot of argmax, ONNX Hardmax-13) against the reference, on every target, every floating
// dtype, i32/i64 indices, across block and chunk boundaries, non-last axes and in place.
#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

const DType kFloat[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

int64_t Argmax(const Buffer& x, int64_t n, DType it = DType::i64, int threads = 1) {
  Buffer idx(it, 1);
  softmax::argmax(x.cview({n}), idx.view({}), Opts(-1, 1.0, threads));
  return static_cast<int64_t>(idx.get(0));
}

TEST(Argmax, RandomRowsAllTargets) {
  std::mt19937_64 rng(31);
  std::vector<int64_t> lengths;
  for (int64_t i = 1; i <= 150; ++i) lengths.push_back(i);
  for (int64_t b : {2047, 2048, 2049, 32767, 32768, 32769, 65536, 70001}) lengths.push_back(b);
  ForEachTarget([&](const std::string&) {
    for (DType t : kFloat) {
      for (int64_t n : lengths) {
        // Small integers: many ties.
        std::vector<double> v(n);
        for (auto& e : v) e = static_cast<double>(rng() % 50) - 25;
        std::vector<LD> ex;
        Buffer x = MakeBuffer(t, v, &ex);
        const int64_t want = softmax::ref::argmax(ex);
        for (DType it : {DType::i64, DType::i32}) {
          ASSERT_EQ(Argmax(x, n, it, n > 40000 ? 2 : 1), want)
              << softmax::dtype_name(t) << " n=" << n;
        }
      }
    }
  });
}

TEST(Argmax, TiesAcrossChunksAndNaN) {
  ForEachTarget([&](const std::string&) {
    for (DType t : kFloat) {
      SCOPED_TRACE(softmax::dtype_name(t));
      constexpr int64_t n = 100000;
      std::vector<double> v(n, -1.0);
      v[40000] = 7;
      v[99999] = 7;
      Buffer x = MakeBuffer(t, v);
      EXPECT_EQ(Argmax(x, n), 40000);
      EXPECT_EQ(Argmax(x, n, DType::i64, 2), 40000);
      v[5] = 7;
      x = MakeBuffer(t, v);
      EXPECT_EQ(Argmax(x, n, DType::i64, 2), 5);
      EXPECT_EQ(Argmax(MakeBuffer(t, {-kInf, -kInf, -kInf}), 3), 0);
      EXPECT_EQ(Argmax(MakeBuffer(t, {-kInf, -5, kInf, kInf}), 4), 2);
      EXPECT_EQ(Argmax(MakeBuffer(t, {3}), 1), 0);
      EXPECT_EQ(Argmax(MakeBuffer(t, {0.0, -0.0}), 2), 0);
      EXPECT_EQ(Argmax(MakeBuffer(t, {-0.0, 0.0}), 2), 0);  // -0 == 0: a tie
    }
  });
}

TEST(Argmax, FirstNaNWins) {
  ForEachTarget([&](const std::string&) {
    for (DType t : kFloat) {
      SCOPED_TRACE(softmax::dtype_name(t));
      constexpr int64_t n = 100000;
      std::vector<double> v(n, -1.0);
      v[5] = 7;
      v[70000] = kNaN;  // NaN beats everything, even in a later chunk
      EXPECT_EQ(Argmax(MakeBuffer(t, v), n, DType::i64, 2), 70000);
      EXPECT_EQ(Argmax(MakeBuffer(t, v), n, DType::i64, 1), 70000);
      v[33000] = kNaN;  // the first NaN wins
      EXPECT_EQ(Argmax(MakeBuffer(t, v), n, DType::i64, 2), 33000);
      EXPECT_EQ(Argmax(MakeBuffer(t, {1, kNaN, 3, kNaN}), 4), 1);
      EXPECT_EQ(Argmax(MakeBuffer(t, {kInf, kNaN}), 2), 1);
      EXPECT_EQ(Argmax(MakeBuffer(t, {kNaN, kInf}), 2), 0);
      // hardmax: one-hot at the first NaN.
      Buffer x = MakeBuffer(t, {2, kNaN, 9});
      Buffer y(DType::f32, 3);
      softmax::hardmax(x.cview({3}), y.view({3}), Opts());
      EXPECT_EQ(y.get(0), 0.0);
      EXPECT_EQ(y.get(1), 1.0);
      EXPECT_EQ(y.get(2), 0.0);
    }
  });
}

TEST(Argmax, NonLastAxisAndKeepdims) {
  std::mt19937_64 rng(32);
  const auto v = Normal(rng, 2 * 3 * 5, 1);
  std::vector<LD> ex;
  Buffer x = MakeBuffer(DType::f32, v, &ex);
  for (bool keep : {false, true}) {
    Buffer idx(DType::i64, 10);
    softmax::argmax(x.cview({2, 3, 5}),
                    idx.view(keep ? std::vector<int64_t>{2, 1, 5} : std::vector<int64_t>{2, 5}),
                    Opts(1, 1.0, 1, keep));
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t l = 0; l < 5; ++l) {
        std::vector<LD> row;
        for (int64_t j = 0; j < 3; ++j) row.push_back(ex[(i * 3 + j) * 5 + l]);
        EXPECT_EQ(idx.get(i * 5 + l), softmax::ref::argmax(row));
      }
    }
  }
}

TEST(Argmax, SpanAndEmptyRow) {
  std::vector<float> x{1, 5, 5, 2};
  EXPECT_EQ(softmax::argmax(x), 1);
  std::vector<double> xd{-1, -0.5, -2};
  EXPECT_EQ(softmax::argmax(xd), 1);
  std::vector<float> empty;
  EXPECT_THROW(softmax::argmax(empty), softmax::Error);
  Buffer e(DType::f32, 0);
  Buffer idx(DType::i64, 3, 2);
  const auto before = idx.raw();
  try {
    softmax::argmax(e.cview({3, 0}), idx.view({3}), Opts());
    ADD_FAILURE() << "no throw";
  } catch (const softmax::Error& err) {
    EXPECT_EQ(err.kind(), softmax::ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(err.what()).find("argmax"), std::string::npos);
  }
  EXPECT_EQ(idx.raw(), before);
  // Zero rows of any length: no-op.
  EXPECT_NO_THROW(softmax::argmax(e.cview({0, 4}), idx.view({0}), Opts()));
}

TEST(Hardmax, OneHotOfArgmax) {
  std::mt19937_64 rng(33);
  ForEachTarget([&](const std::string&) {
    for (DType xt : kFloat) {
      for (DType yt : kFloat) {
        for (int64_t n : {1, 2, 7, 64, 65, 2049}) {
          const int64_t rows = 3;
          std::vector<double> v(rows * n);
          for (auto& e : v) e = static_cast<double>(rng() % 9);
          std::vector<LD> ex;
          Buffer x = MakeBuffer(xt, v, &ex);
          Buffer y(yt, rows * n);
          softmax::hardmax(x.cview({rows, n}), y.view({rows, n}), Opts());
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t am =
                softmax::ref::argmax(std::vector<LD>(ex.begin() + r * n, ex.begin() + (r + 1) * n));
            for (int64_t i = 0; i < n; ++i) {
              ASSERT_EQ(y.get(r * n + i), i == am ? 1.0 : 0.0) << n << " " << r << " " << i;
            }
          }
        }
      }
    }
  });
}

TEST(Hardmax, InPlaceNonLastAxis) {
  // In place along axis 0 of (4, 3): column-wise one-hot.
  std::vector<float> x{1, 9, 3,  //
                       7, 2, 3,  //
                       7, 9, 8,  //
                       0, 0, 8};
  softmax::hardmax(ConstTensorView(x.data(), {4, 3}), TensorView(x.data(), {4, 3}), Opts(0));
  const std::vector<float> want{0, 1, 0,  //
                                1, 0, 0,  //
                                0, 0, 1,  //
                                0, 0, 0};
  EXPECT_EQ(x, want);
  // Temperature is validated though unused.
  EXPECT_THROW(softmax::hardmax(ConstTensorView(x.data(), {4, 3}), TensorView(x.data(), {4, 3}),
                                Opts(0, -1.0)),
               softmax::Error);
}

}  // namespace
}  // namespace stest
