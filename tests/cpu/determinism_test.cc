// tests/cpu/determinism_test.cc: a row's output bits depend only on that row (ops.hpp,
// Determinism): not on the SIMD target, the thread count (1 or 2), the batch size or the row's
// position in the batch, including a long row whose chunks are split across threads.
#include <cmath>
#include <cstring>

#include "tests/cpu/test_util.hpp"

namespace stest {
namespace {

enum class Kind { kSoftmax, kLogSoftmax, kLogsumexp, kSigmoid, kArgmax };
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kSoftmax: return "softmax";
    case Kind::kLogSoftmax: return "log_softmax";
    case Kind::kLogsumexp: return "logsumexp";
    case Kind::kSigmoid: return "sigmoid";
    case Kind::kArgmax: return "argmax";
  }
  return "?";
}

// Runs `k` on a batch (rows, n) whose row `pos` is `row`, the others random; returns the raw
// output bytes of row `pos`.
std::vector<unsigned char> RunInBatch(Kind k, DTypePair p, const std::vector<double>& row,
                                      int64_t rows, int64_t pos, int threads, double t,
                                      const std::vector<double>& filler) {
  const auto n = static_cast<int64_t>(row.size());
  std::vector<double> v(static_cast<std::size_t>(rows * n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = filler[i % filler.size()];
  std::copy(row.begin(), row.end(), v.begin() + pos * n);
  Buffer x = MakeBuffer(p.x, v);
  const bool reduce = k == Kind::kLogsumexp || k == Kind::kArgmax;
  const DType yt = k == Kind::kArgmax ? DType::i64 : p.y;
  const int64_t per_row = reduce ? 1 : n;
  Buffer y(yt, rows * per_row);
  const SoftmaxOptions o = Opts(-1, t, threads);
  switch (k) {
    case Kind::kSoftmax: softmax::softmax(x.cview({rows, n}), y.view({rows, n}), o); break;
    case Kind::kLogSoftmax: softmax::log_softmax(x.cview({rows, n}), y.view({rows, n}), o); break;
    case Kind::kLogsumexp: softmax::logsumexp(x.cview({rows, n}), y.view({rows}), o); break;
    case Kind::kArgmax: softmax::argmax(x.cview({rows, n}), y.view({rows}), o); break;
    case Kind::kSigmoid: {
      softmax::ElementwiseOptions eo;
      eo.threads = threads;
      softmax::sigmoid(x.cview({rows, n}), y.view({rows, n}), eo);
      break;
    }
  }
  const auto es = static_cast<std::size_t>(y.es());
  const auto* b = static_cast<const unsigned char*>(y.data()) + pos * per_row * es;
  return {b, b + per_row * es};
}

void CheckRowDeterminism(Kind k, DTypePair p, const std::vector<double>& row, double t,
                         std::mt19937_64& rng) {
  const auto n = static_cast<int64_t>(row.size());
  SCOPED_TRACE(std::string(KindName(k)) + " " + PairName(p) + " n=" + std::to_string(n) +
               " T=" + Str(t));
  const std::vector<double> rng_filler = Normal(rng, 4099, 3.0);
  const auto& filler = rng_filler;
  softmax::set_target("");
  const auto want = RunInBatch(k, p, row, 1, 0, 1, t, filler);
  const bool long_row = n > 100000;
  ForEachTarget([&](const std::string&) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE("threads " + std::to_string(threads));
      EXPECT_EQ(RunInBatch(k, p, row, 1, 0, threads, t, filler), want) << "alone";
      if (long_row) {
        EXPECT_EQ(RunInBatch(k, p, row, 3, 1, threads, t, filler), want) << "row 1 of 3";
      } else {
        EXPECT_EQ(RunInBatch(k, p, row, 7, 3, threads, t, filler), want) << "row 3 of 7";
        EXPECT_EQ(RunInBatch(k, p, row, 7, 6, threads, t, filler), want) << "row 6 of 7";
        // Enough elements (>= 2^15) that the batch itself is split across threads.
        const int64_t big = std::max<int64_t>(8, (1 << 15) / n + 1);
        EXPECT_EQ(RunInBatch(k, p, row, big, big - 1, threads, t, filler), want)
            << "last row of " << big;
      }
    }
  });
}

void CheckDeterminism(Kind k, DTypePair p, int64_t n, double t, std::mt19937_64& rng) {
  auto row = Normal(rng, n, 4.0);
  if (n > 3) row[n / 3] = -kInf;  // -inf entries take their own path
  CheckRowDeterminism(k, p, row, t, rng);
}

// The rows that take the careful paths: near-certain rows (the log modes sum them again, in f64
// for f32 storage), logsumexp cancelling to ~0 with max < 0 (f64: log(sum) as a pair), exps
// below the f32 normal range, extreme T (f32 storage computed in f64), T dividing (f64).
TEST(Determinism, CarefulPathsAcrossTargets) {
  std::mt19937_64 rng(63);
  for (int64_t n : {5, 130, 2049, 33000}) {  // 33000: two chunks
    std::vector<double> certain = Normal(rng, n, 1.0);
    certain[static_cast<std::size_t>(n / 2)] += 45.0;
    std::vector<double> cancel = Uniform(rng, n, -1e-4, 1e-4);
    for (auto& x : cancel) x -= std::log(static_cast<double>(n));
    std::vector<double> tiny = Uniform(rng, n, -103.0, -88.0);
    tiny[0] = 0.0;
    for (const auto* row : {&certain, &cancel, &tiny}) {
      for (Kind k : {Kind::kSoftmax, Kind::kLogSoftmax, Kind::kLogsumexp}) {
        for (DTypePair p : {DTypePair{DType::f32, DType::f32}, DTypePair{DType::f64, DType::f64},
                            DTypePair{DType::bf16, DType::f32}}) {
          if (n > 2049 && p.x == DType::bf16) continue;
          CheckRowDeterminism(k, p, *row, 1.0, rng);
          if (n <= 2049) CheckRowDeterminism(k, p, *row, 0.7, rng);
          if (n < 1000) {
            for (double t : {1e-40, 1e35, 1e-310, 1e300}) CheckRowDeterminism(k, p, *row, t, rng);
          }
        }
      }
    }
  }
}

TEST(Determinism, AcrossTargetsThreadsBatchAndPosition) {
  std::mt19937_64 rng(61);
  for (Kind k :
       {Kind::kSoftmax, Kind::kLogSoftmax, Kind::kLogsumexp, Kind::kSigmoid, Kind::kArgmax}) {
    for (DTypePair p : AllPairs()) {
      if (k == Kind::kArgmax && p.y != p.x) continue;  // argmax writes indices
      for (int64_t n : {1, 3, 17, 64, 100, 2049}) CheckDeterminism(k, p, n, 1.0, rng);
      CheckDeterminism(k, p, 333, 0.7, rng);
    }
  }
}

TEST(Determinism, LongRowSplitAcrossThreads) {
  // 1 x 262144 (8 chunks of 32768): with 2 threads and one row the chunks are split across
  // threads; in a batch of 3 each row is on one thread. Same bits either way.
  std::mt19937_64 rng(62);
  for (Kind k : {Kind::kSoftmax, Kind::kLogSoftmax, Kind::kLogsumexp, Kind::kArgmax}) {
    CheckDeterminism(k, {DType::f32, DType::f32}, 262144 + 1000, 1.0, rng);
  }
  CheckDeterminism(Kind::kSoftmax, {DType::bf16, DType::f16}, 262144 + 1000, 1.0, rng);
  CheckDeterminism(Kind::kSoftmax, {DType::f64, DType::f64}, 262144 + 1000, 1.0, rng);
  CheckDeterminism(Kind::kSoftmax, {DType::f32, DType::f32}, 3 * 32768, 0.5, rng);
}

}  // namespace
}  // namespace stest
