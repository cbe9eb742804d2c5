// softmax::Context: a caller's parallel-for, a per-call SIMD target and the thread count change
// only how an op runs, never its bits; bad contexts are errors naming the op.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "softmax/softmax.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::Context;
using softmax::TensorView;

std::vector<float> logits(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 4.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// A pool that runs each range on its own std::thread (or, fine-grained, one thread per index).
struct TestPool {
  std::atomic<int> calls{0};
  std::atomic<int> tasks{0};
  bool per_index = false;
  static void run(void* p, int64_t count, int64_t /*max_tasks*/,
                  void (*task)(void*, int64_t, int64_t), void* ctx) {
    auto* self = static_cast<TestPool*>(p);
    self->calls++;
    std::vector<std::thread> ts;
    const int64_t step = self->per_index ? 1 : (count + 1) / 2;
    for (int64_t b = 0; b < count; b += step) {
      const int64_t e = std::min(count, b + step);
      ts.emplace_back([=] {
        self->tasks++;
        task(ctx, b, e);
      });
    }
    for (auto& t : ts) t.join();
  }
};

// Every op family of the context, run with `c`, as one flat vector of output bytes.
std::vector<unsigned char> run_all(const Context& c) {
  std::vector<unsigned char> out;
  auto append = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    out.insert(out.end(), b, b + n);
  };
  const int64_t rows = 64, n = 3000;
  const auto x = logits(rows * n, 1);
  std::vector<float> y(x.size()), dx(x.size());
  softmax::SoftmaxOptions o;
  o.temperature = 0.8;
  softmax::softmax(ConstTensorView(x.data(), {rows, n}), TensorView(y.data(), {rows, n}), o, c);
  append(y.data(), y.size() * 4);
  softmax::log_softmax(ConstTensorView(x.data(), {rows, n}), TensorView(y.data(), {rows, n}), o, c);
  append(y.data(), y.size() * 4);
  softmax::softmax_backward(ConstTensorView(y.data(), {rows, n}),
                            ConstTensorView(x.data(), {rows, n}), TensorView(dx.data(), {rows, n}),
                            {}, c);
  append(dx.data(), dx.size() * 4);
  // One long row: its chunks are what the threads split.
  const auto big = logits(300000, 2);
  std::vector<float> ybig(big.size());
  softmax::softmax(ConstTensorView(big.data(), {1, 300000}), TensorView(ybig.data(), {1, 300000}),
                   {}, c);
  append(ybig.data(), ybig.size() * 4);
  std::vector<int64_t> t(rows);
  for (int64_t r = 0; r < rows; ++r) t[r] = (r * 37) % n;
  std::vector<float> loss(rows), grad(x.size());
  softmax::CrossEntropyOutputs ce;
  ce.loss = TensorView(loss.data(), {rows});
  ce.grad = TensorView(grad.data(), {rows, n});
  softmax::CrossEntropyOptions co;
  co.reduction = softmax::Reduction::kNone;
  softmax::cross_entropy(ConstTensorView(x.data(), {rows, n}),
                         ConstTensorView(t.data(), softmax::DType::i64, {rows}), ce, co, c);
  append(loss.data(), loss.size() * 4);
  append(grad.data(), grad.size() * 4);
  return out;
}

TEST(Context, CallerPoolGivesTheSameBitsAndIsUsed) {
  const auto want = run_all(Context{});
  for (bool per_index : {false, true}) {
    TestPool pool;
    pool.per_index = per_index;
    Context c;
    c.threads = 2;
    c.parallel_for = &TestPool::run;
    c.pool = &pool;
    EXPECT_EQ(run_all(c), want) << "per_index " << per_index;
    EXPECT_GT(pool.calls.load(), 0) << "the caller's pool was never used";
    EXPECT_GE(pool.tasks.load(), pool.calls.load());
  }
}

TEST(Context, EveryThreadCountGivesTheSameBits) {
  const auto want = run_all(Context{});
  for (int t : {1, 2, 7, 100000}) {
    Context c;
    c.threads = t;
    EXPECT_EQ(run_all(c), want) << "threads " << t;
  }
}

TEST(Context, PerCallTargetGivesTheSameBitsAndLeavesTheThreadDefault) {
  const auto want = run_all(Context{});
  const std::string before = softmax::current_target();
  for (const auto& name : softmax::available_targets()) {
    Context c;
    c.target = name;
    EXPECT_EQ(run_all(c), want) << name;
    EXPECT_EQ(softmax::current_target(), before);
  }
  // Two threads at once with different targets.
  const auto targets = softmax::available_targets();
  std::vector<unsigned char> a, b;
  std::thread t1([&] {
    Context c;
    c.target = targets.front();
    a = run_all(c);
  });
  std::thread t2([&] {
    Context c;
    c.target = targets.back();
    b = run_all(c);
  });
  t1.join();
  t2.join();
  EXPECT_EQ(a, want);
  EXPECT_EQ(b, want);
}

TEST(Context, BadContextsAreErrorsNamingTheOp) {
  std::vector<float> x = {1, 2, 3}, y = {7, 7, 7};
  Context bad_target;
  bad_target.target = "NO_SUCH_TARGET";
  try {
    softmax::softmax(ConstTensorView(x.data(), {3}), TensorView(y.data(), {3}), {}, bad_target);
    FAIL() << "no error";
  } catch (const softmax::Error& e) {
    EXPECT_NE(std::string(e.what()).find("softmax"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NO_SUCH_TARGET"), std::string::npos) << e.what();
  }
  Context negative;
  negative.threads = -2;
  EXPECT_THROW(
      softmax::log_softmax(ConstTensorView(x.data(), {3}), TensorView(y.data(), {3}), {}, negative),
      softmax::Error);
  EXPECT_EQ(y, (std::vector<float>{7, 7, 7}));  // nothing written
}

}  // namespace
