// tests/cpu/threads_test.cc: the thread-count rule of every op (src/core/rows.hpp,
// resolve_threads): any count >= 0 works (counts above the CPUs are clamped to
// omp_get_num_procs()), results equal the one-thread results bitwise (linear_cross_entropy:
// the results at the clamped count, as oneDNN's sums may depend on it), and a negative count
// throws softmax::Error naming the op and 'threads' with nothing written.
#include <gtest/gtest.h>
#include <omp.h>

#include <climits>
#include <functional>
#include <string>
#include <vector>

#include "op_families.hpp"
#include "src/core/rows.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TensorView;

TEST(Threads, ResolveClampsToCpus) {
  const int procs = omp_get_num_procs();
  EXPECT_EQ(softmax::detail::resolve_threads(1), 1);
  EXPECT_EQ(softmax::detail::resolve_threads(100000), procs);
  EXPECT_EQ(softmax::detail::resolve_threads(INT_MAX), procs);
  EXPECT_GE(softmax::detail::resolve_threads(0), 1);
  EXPECT_LE(softmax::detail::resolve_threads(0), procs);
  EXPECT_THROW(softmax::detail::resolve_threads(-1), softmax::Error);
  EXPECT_FALSE(softmax::detail::in_forked_child());
}

TEST(Threads, HugeCountsMatchOneThreadBitwise) {
  const stest::Results one = stest::run_op_families(1);
  const stest::Results procs = stest::run_op_families(omp_get_num_procs());
  for (int t : {2, 3, 40000, 100000, INT_MAX}) {
    const stest::Results got = stest::run_op_families(t);
    ASSERT_EQ(got.size(), one.size());
    for (const auto& [name, values] : got) {
      const stest::Results& ref = name == "linear_cross_entropy" && t > 1 ? procs : one;
      if (name == "linear_cross_entropy" && t > 1 && t < omp_get_num_procs()) continue;
      EXPECT_TRUE(stest::same_bits(values, ref.at(name))) << name << " threads " << t;
    }
  }
}

// linear_cross_entropy sizes oneDNN's sgemm by the calling thread's OpenMP thread count for
// the call only: the caller's setting is the same afterwards.
TEST(Threads, LinearCrossEntropyRestoresTheCallersThreadCount) {
  omp_set_num_threads(2);
  for (int t : {1, 3, 100000}) {
    (void)stest::run_op_families(t);
    EXPECT_EQ(omp_get_max_threads(), 2) << t;
  }
}

// Every op family rejects threads < 0 before writing anything, with the op named.
TEST(Threads, NegativeThrowsNamingTheOp) {
  std::vector<float> x(64, 0.5f), y(64, -7.0f);
  std::vector<int64_t> t(8, 1), idx(8, -7);
  const ConstTensorView xv(x.data(), {8, 8});
  const TensorView yv(y.data(), {8, 8});
  // named: the message names the op (ops that validate threads with their other arguments;
  // the others reject it when resolving the count, under the name 'threads').
  auto expect_rejects = [&](const char* op, const std::function<void()>& call, bool named = true) {
    try {
      call();
      ADD_FAILURE() << op << " accepted threads = -3";
    } catch (const softmax::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("'threads' = -3"), std::string::npos) << msg;
      if (named) EXPECT_NE(msg.find(std::string("softmax::") + op + ":"), std::string::npos) << msg;
      EXPECT_EQ(e.kind(), softmax::ErrorKind::kInvalidArgument);
    }
    for (float v : y) EXPECT_EQ(v, -7.0f) << op;
    for (int64_t v : idx) EXPECT_EQ(v, -7) << op;
  };
  softmax::SoftmaxOptions so;
  so.threads = -3;
  expect_rejects(
      "softmax", [&] { softmax::softmax(xv, yv, so); }, false);
  expect_rejects(
      "log_softmax", [&] { softmax::log_softmax(xv, yv, so); }, false);
  expect_rejects(
      "argmax", [&] { softmax::argmax(xv, TensorView(idx.data(), DType::i64, {8}), so); }, false);
  softmax::CrossEntropyOptions co;
  co.threads = -3;
  double loss = -7.0;
  expect_rejects("cross_entropy", [&] {
    softmax::cross_entropy(xv, ConstTensorView(t.data(), DType::i64, {8}),
                           {TensorView(&loss, DType::f64, {}), yv, std::nullopt, std::nullopt}, co);
  });
  expect_rejects("nll_loss", [&] {
    softmax::nll_loss(xv, ConstTensorView(t.data(), DType::i64, {8}),
                      {TensorView(&loss, DType::f64, {}), yv, std::nullopt, std::nullopt}, co);
  });
  expect_rejects("linear_cross_entropy", [&] {
    softmax::linear_cross_entropy(
        xv, xv, ConstTensorView(t.data(), DType::i64, {8}),
        {TensorView(&loss, DType::f64, {}), yv, std::nullopt, std::nullopt}, co);
  });
  EXPECT_EQ(loss, -7.0);
  softmax::SamplingParams p;
  p.threads = -3;
  expect_rejects("sample",
                 [&] { softmax::sample(xv, TensorView(idx.data(), DType::i64, {8}), p, 1); });
  expect_rejects("sample_from_probs", [&] {
    softmax::sample_from_probs(xv, TensorView(idx.data(), DType::i64, {8}), p, 1);
  });
  expect_rejects("top_logprobs", [&] { softmax::top_logprobs(xv, 2, 1.0, -3); });
  softmax::MaskOptions mo;
  mo.threads = -3;
  expect_rejects("masked_softmax", [&] { softmax::masked_softmax(xv, yv, mo); });
  expect_rejects("masked_softmax_backward",
                 [&] { softmax::masked_softmax_backward(xv, xv, ConstTensorView(), yv, mo); });
  expect_rejects("attention", [&] {
    softmax::attention(
        ConstTensorView(x.data(), {1, 1, 8, 8}), ConstTensorView(x.data(), {1, 1, 8, 8}),
        ConstTensorView(x.data(), {1, 1, 8, 8}), TensorView(y.data(), {1, 1, 8, 8}), mo);
  });
}

}  // namespace
