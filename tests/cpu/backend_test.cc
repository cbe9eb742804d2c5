// The backend seam (src/core/backend.hpp) seen from the public API: tensors on different devices
// are a named error, a CUDA view never reaches CPU code, and a caller workspace of the reported
// size makes the axis ops run without a heap allocation, with the same bits as without it.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"

#include "tests/support/count_allocations.hpp"

using count_allocations::g_allocations;
using count_allocations::g_counting;

namespace {

using softmax::ConstTensorView;
using softmax::Context;
using softmax::Device;
using softmax::DType;
using softmax::Error;
using softmax::ErrorKind;
using softmax::SoftmaxOptions;
using softmax::TensorView;

std::vector<float> logits(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Runs fn and returns the softmax::Error it throws (fails the test when it does not throw).
template <class F>
Error error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no softmax::Error thrown";
  return Error(ErrorKind::kIO, "none", "no error thrown");
}

TEST(Backend, MixedDevicesAreANamedError) {
  std::vector<float> x = logits(64, 1), y(64, 7.0f);
  // A CUDA view of host memory: never dereferenced, the call fails before any work.
  const ConstTensorView xc(x.data(), DType::f32, {8, 8}, {8, 1}, Device::cuda);
  const TensorView yh(y.data(), {8, 8});
  const Error e = error_of([&] { softmax::softmax(xc, yh); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("every tensor of one call must be on one device"),
            std::string::npos)
      << e.what();
  EXPECT_NE(std::string(e.what()).find("'y'"), std::string::npos) << e.what();
  for (float v : y) ASSERT_EQ(v, 7.0f);  // nothing written

  std::vector<float> dx(64, 7.0f);
  const TensorView dxc(dx.data(), DType::f32, {8, 8}, {8, 1}, Device::cuda);
  const ConstTensorView yv(y.data(), {8, 8});
  const Error eb = error_of([&] { softmax::softmax_backward(yv, yv, dxc); });
  EXPECT_EQ(eb.kind(), ErrorKind::kInvalidArgument) << eb.what();
  EXPECT_NE(std::string(eb.what()).find("'dx'"), std::string::npos) << eb.what();

  std::vector<int64_t> idx(8, -5);
  const Error ea = error_of([&] { softmax::argmax(xc, TensorView(idx.data(), DType::i64, {8})); });
  EXPECT_EQ(ea.kind(), ErrorKind::kInvalidArgument) << ea.what();
  for (int64_t v : idx) ASSERT_EQ(v, -5);
}

TEST(Backend, CudaViewsWithoutAUsableGpuAreUnsupported) {
  // On this machine either the build has no CUDA backend or no GPU answers: both kUnsupported,
  // with nothing written and nothing dereferenced. (tests/cuda runs them where a GPU is present.)
  std::vector<float> x = logits(64, 2), y(64, 7.0f);
  const ConstTensorView xc(x.data(), DType::f32, {8, 8}, {8, 1}, Device::cuda);
  const TensorView yc(y.data(), DType::f32, {8, 8}, {8, 1}, Device::cuda);
  if (softmax::device_available(Device::cuda)) GTEST_SKIP() << "a GPU is present (tests/cuda)";
  EXPECT_TRUE(softmax::device_available(Device::cpu));
  const Error e = error_of([&] { softmax::log_softmax(xc, yc); });
  EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
  for (float v : y) ASSERT_EQ(v, 7.0f);
  // Ops without a CUDA runner refuse CUDA views by name.
  const Error h = error_of([&] { softmax::hardmax(xc, yc); });
  EXPECT_EQ(h.kind(), ErrorKind::kUnsupported) << h.what();
  EXPECT_NE(std::string(h.what()).find("CUDA"), std::string::npos) << h.what();
}

// One layout of the workspace tests: x's shape and strides, the axis, the output dtype.
struct Case {
  const char* name;
  std::vector<int64_t> shape, strides;  // x (and y for softmax/log_softmax: C order of shape)
  int64_t axis;
  DType y_dtype;
};

std::vector<Case> cases() {
  return {
      {"strided axis", {64, 300}, {1, 64}, 1, DType::f32},
      {"long rows", {2, 100000}, {100000, 1}, 1, DType::f32},
      {"one long row", {1, 300000}, {300000, 1}, 1, DType::f32},
      {"3-d middle axis", {3, 500, 4}, {2000, 4, 1}, 1, DType::f32},
      {"bf16 output", {4, 70000}, {70000, 1}, 1, DType::bf16},
      {"short rows", {64, 512}, {512, 1}, 1, DType::f32},
      {"rank 10", {2, 1, 2, 1, 2, 1, 2, 1, 2, 5000}, {}, 0, DType::f32},
  };
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<int64_t> c_strides(const std::vector<int64_t>& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

enum class Op { kSoftmax, kLogSoftmax, kLogSumExp };

void run(Op op, ConstTensorView x, TensorView y, const SoftmaxOptions& o, const Context& c) {
  if (op == Op::kSoftmax) softmax::softmax(std::move(x), std::move(y), o, c);
  if (op == Op::kLogSoftmax) softmax::log_softmax(std::move(x), std::move(y), o, c);
  if (op == Op::kLogSumExp) softmax::logsumexp(std::move(x), std::move(y), o, c);
}
std::size_t bytes(Op op, const ConstTensorView& x, const TensorView& y, const SoftmaxOptions& o,
                  const Context& c) {
  if (op == Op::kSoftmax) return softmax::softmax_workspace_bytes(x, y, o, c);
  if (op == Op::kLogSoftmax) return softmax::log_softmax_workspace_bytes(x, y, o, c);
  return softmax::logsumexp_workspace_bytes(x, y, o, c);
}

// A caller pool that runs each range on the calling thread (its own task order, reversed).
void reverse_pool(void*, int64_t count, int64_t max_tasks, void (*task)(void*, int64_t, int64_t),
                  void* ctx) {
  const int64_t t = std::max<int64_t>(1, std::min(max_tasks, count));
  for (int64_t i = t; i-- > 0;) task(ctx, count * i / t, count * (i + 1) / t);
}

// A 256-byte aligned buffer of at least n bytes (std::aligned_alloc needs a size that is a
// multiple of the alignment: ASan's allocator returns NULL otherwise). Freed with std::free.
static void* workspace_alloc(std::size_t n) { return std::aligned_alloc(256, (n / 256 + 1) * 256); }

TEST(Backend, WorkspaceMakesNoAllocationAndKeepsTheBits) {
  for (const Case& cs : cases()) {
    for (Op op : {Op::kSoftmax, Op::kLogSoftmax, Op::kLogSumExp}) {
      for (int threads : {1, 2}) {
        for (bool pool : {false, true}) {
          SCOPED_TRACE(std::string(cs.name) + " op " + std::to_string(static_cast<int>(op)) +
                       " threads " + std::to_string(threads) + (pool ? " pool" : ""));
          const int64_t count = numel(cs.shape);
          const std::vector<int64_t> xs = cs.strides.empty() ? c_strides(cs.shape) : cs.strides;
          std::vector<float> xbuf = logits(static_cast<std::size_t>(count), 11);
          std::vector<int64_t> yshape = cs.shape;
          if (op == Op::kLogSumExp) yshape.erase(yshape.begin() + cs.axis);
          const DType yt = op == Op::kLogSumExp ? DType::f32 : cs.y_dtype;
          const std::size_t ybytes = static_cast<std::size_t>(std::max<int64_t>(numel(yshape), 1)) *
                                     softmax::dtype_size(yt);
          std::vector<unsigned char> y_ref(ybytes), y_ws(ybytes, 0xAB);
          SoftmaxOptions o;
          o.axis = cs.axis;
          Context c;
          c.threads = threads;
          if (pool) c.parallel_for = reverse_pool;
          run(op, ConstTensorView(xbuf.data(), DType::f32, cs.shape, xs),
              TensorView(y_ref.data(), yt, yshape), o, c);

          const ConstTensorView xv(xbuf.data(), DType::f32, cs.shape, xs);
          const TensorView yv(y_ws.data(), yt, yshape);
          const std::size_t need = bytes(op, xv, yv, o, c);
          void* ws = workspace_alloc(need);
          ASSERT_NE(ws, nullptr);
          c.workspace = ws;
          c.workspace_bytes = need;
          // Views built before counting; moved in, so the call copies no shape vectors.
          ConstTensorView x_in = xv;
          TensorView y_in = yv;
          g_allocations = 0;
          g_counting = true;
          run(op, std::move(x_in), std::move(y_in), o, c);
          g_counting = false;
          EXPECT_EQ(g_allocations.load(), 0) << need << " bytes of workspace";
          EXPECT_EQ(std::memcmp(y_ref.data(), y_ws.data(), ybytes), 0) << "bits differ";
          std::free(ws);
        }
      }
    }
  }
}

TEST(Backend, WithoutAWorkspaceTheStridedPathAllocates) {
  // The counter sees the library's allocations: a strided axis gathers into heap scratch.
  std::vector<float> x = logits(64 * 300, 5), y(64 * 300);
  ConstTensorView xv(x.data(), DType::f32, {64, 300}, {1, 64});
  TensorView yv(y.data(), {64, 300});
  Context c;
  c.threads = 1;
  g_allocations = 0;
  g_counting = true;
  softmax::softmax(std::move(xv), std::move(yv), {}, c);
  g_counting = false;
  EXPECT_GT(g_allocations.load(), 0);
}

TEST(Backend, WorkspaceIsNeededForStridedAndLongRows) {
  // The query is not trivially 0: gathering a strided row and long rows' chunk records need it.
  std::vector<float> x = logits(64 * 300, 3), y(64 * 300);
  const ConstTensorView xv(x.data(), DType::f32, {64, 300}, {1, 64});
  const TensorView yv(y.data(), {64, 300});
  SoftmaxOptions o;
  o.axis = 1;
  Context c;
  c.threads = 1;
  EXPECT_GE(softmax::softmax_workspace_bytes(xv, yv, o, c), 300 * sizeof(float));
  c.threads = 2;
  EXPECT_GE(softmax::softmax_workspace_bytes(xv, yv, o, c), 2 * 300 * sizeof(float));
  // Contiguous short rows run in L1 without scratch.
  const ConstTensorView xs(x.data(), {64, 300});
  EXPECT_EQ(softmax::softmax_workspace_bytes(xs, yv, o, c), 0u);
  // The query validates as the op does.
  o.axis = 2;
  EXPECT_THROW(softmax::softmax_workspace_bytes(xv, yv, o, c), Error);
}

TEST(Backend, TooSmallOrMisalignedWorkspaceIsAnError) {
  std::vector<float> x = logits(64 * 300, 4), y(64 * 300, 7.0f);
  const ConstTensorView xv(x.data(), DType::f32, {64, 300}, {1, 64});
  const TensorView yv(y.data(), {64, 300});
  Context c;
  c.threads = 1;
  const std::size_t need = softmax::softmax_workspace_bytes(xv, yv, {}, c);
  ASSERT_GT(need, 0u);
  void* ws = workspace_alloc(need);
  c.workspace = ws;
  c.workspace_bytes = need - 1;
  const Error small = error_of([&] { softmax::softmax(xv, yv, {}, c); });
  EXPECT_EQ(small.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(std::string(small.what()).find("workspace_bytes"), std::string::npos) << small.what();
  EXPECT_NE(std::string(small.what()).find(std::to_string(need)), std::string::npos)
      << small.what();
  c.workspace = static_cast<char*>(ws) + 8;
  c.workspace_bytes = need + 64;
  const Error bad = error_of([&] { softmax::softmax(xv, yv, {}, c); });
  EXPECT_EQ(bad.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(std::string(bad.what()).find("256"), std::string::npos) << bad.what();
  for (float v : y) ASSERT_EQ(v, 7.0f);  // nothing written
  std::free(ws);
}

// Ops without a *_workspace_bytes query (argmax, hardmax, masked_softmax, the backward passes)
// ignore Context::workspace, also a tiny one: a caller cannot size it for them. Same results as
// without it.
TEST(Backend, OpsWithoutAQueryIgnoreTheWorkspace) {
  std::vector<float> x = logits(8 * 700, 6);
  const ConstTensorView xv(x.data(), DType::f32, {8, 700}, {1, 8});  // strided rows
  Context plain, tiny;
  plain.threads = tiny.threads = 2;
  void* ws = workspace_alloc(0);
  tiny.workspace = ws;
  tiny.workspace_bytes = 0;
  std::vector<int64_t> i0(8), i1(8, -1);
  softmax::argmax(xv, TensorView(i0.data(), DType::i64, {8}), {}, plain);
  softmax::argmax(xv, TensorView(i1.data(), DType::i64, {8}), {}, tiny);
  EXPECT_EQ(i0, i1);
  std::vector<float> h0(x.size()), h1(x.size(), 7.0f);
  softmax::hardmax(xv, TensorView(h0.data(), {8, 700}), {}, plain);
  softmax::hardmax(xv, TensorView(h1.data(), {8, 700}), {}, tiny);
  EXPECT_EQ(h0, h1);
  std::vector<float> m0(x.size()), m1(x.size(), 7.0f), l0(8), l1(8, 7.0f);
  softmax::masked_softmax(xv, TensorView(m0.data(), {8, 700}), TensorView(l0.data(), {8}), {},
                          plain);
  softmax::masked_softmax(xv, TensorView(m1.data(), {8, 700}), TensorView(l1.data(), {8}), {},
                          tiny);
  EXPECT_EQ(std::memcmp(m0.data(), m1.data(), m0.size() * sizeof(float)), 0);
  EXPECT_EQ(l0, l1);
  std::vector<float> d0(x.size()), d1(x.size(), 7.0f);
  const ConstTensorView yv(m0.data(), DType::f32, {8, 700});
  softmax::softmax_backward(yv, xv, TensorView(d0.data(), {8, 700}), {}, plain);
  softmax::softmax_backward(yv, xv, TensorView(d1.data(), {8, 700}), {}, tiny);
  EXPECT_EQ(std::memcmp(d0.data(), d1.data(), d0.size() * sizeof(float)), 0);
  std::free(ws);
}

}  // namespace
