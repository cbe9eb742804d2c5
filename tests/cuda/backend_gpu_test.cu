// tests/cuda/backend_gpu_test.cu: the public ops on CUDA views (the CUDA backend behind the seam
// of src/core/backend.hpp) on a GPU; every case skips without one (GTEST_SKIP, counted as
// skipped). The same softmax::softmax / log_softmax / logsumexp / argmax / softmax_backward
// calls as on the CPU, with device memory, a caller stream and a caller workspace: softmax,
// argmax and the backward pass match the CPU op bit for bit (docs/gpu.md), log_softmax and
// logsumexp match the CUDA kernels called directly bit for bit; a workspace of the reported
// size and none (scratch from cudaMallocAsync) give the same bits; layouts the backend does not
// take and mixed devices are errors before any launch.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
#include "src/cuda/cuda_kernels.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::Context;
using softmax::Device;
using softmax::DType;
using softmax::ErrorKind;
using softmax::TensorView;

#define REQUIRE_GPU()                                                                    \
  do {                                                                                   \
    if (!softmax::device_available(Device::cuda)) GTEST_SKIP() << "no CUDA device here"; \
  } while (0)

struct DevBuf {
  void* p = nullptr;
  explicit DevBuf(std::size_t b) {
    if (cudaMalloc(&p, b == 0 ? 1 : b) != cudaSuccess) p = nullptr;
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

std::vector<float> logits(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

template <class T>
std::vector<T> download(const void* d, std::size_t n) {
  std::vector<T> h(n);
  EXPECT_EQ(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

// Shapes that reach every strategy of the rows kernels (warp, block, cluster, split row).
const std::vector<std::vector<int64_t>>& shapes() {
  static const std::vector<std::vector<int64_t>> s = {
      {64, 1000}, {8, 50257}, {2, 3, 4096}, {1, 262144}, {1, 4194304}};
  return s;
}

std::vector<int64_t> cs(const std::vector<int64_t>& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

TEST(CudaBackend, SoftmaxMatchesTheCpuBitForBit) {
  REQUIRE_GPU();
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (const auto& shape : shapes()) {
    SCOPED_TRACE(std::to_string(numel(shape)));
    const auto n = static_cast<std::size_t>(numel(shape));
    const std::vector<float> x = logits(n, 1);
    std::vector<float> cpu(n);
    softmax::softmax(ConstTensorView(x.data(), shape), TensorView(cpu.data(), shape));
    DevBuf dx(n * 4), dy(n * 4);
    ASSERT_EQ(cudaMemcpy(dx.p, x.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
    const ConstTensorView xv(dx.p, DType::f32, shape, cs(shape), Device::cuda);
    const TensorView yv(dy.p, DType::f32, shape, cs(shape), Device::cuda);
    Context c;
    c.cuda_stream = stream;
    softmax::softmax(xv, yv, {}, c);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const std::vector<float> gpu = download<float>(dy.p, n);
    EXPECT_EQ(std::memcmp(cpu.data(), gpu.data(), n * 4), 0);

    // The caller's workspace (when the call needs one) gives the same bits.
    const std::size_t need = softmax::softmax_workspace_bytes(xv, yv, {}, c);
    DevBuf ws(need);
    c.workspace = ws.p;
    c.workspace_bytes = need;
    ASSERT_EQ(cudaMemset(dy.p, 0, n * 4), cudaSuccess);
    softmax::softmax(xv, yv, {}, c);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const std::vector<float> gpu_ws = download<float>(dy.p, n);
    EXPECT_EQ(std::memcmp(cpu.data(), gpu_ws.data(), n * 4), 0);
  }
  cudaStreamDestroy(stream);
}

TEST(CudaBackend, LogSoftmaxAndLogsumexpAreTheKernelsBits) {
  REQUIRE_GPU();
  for (const auto& shape : shapes()) {
    SCOPED_TRACE(std::to_string(numel(shape)));
    const auto n = static_cast<std::size_t>(numel(shape));
    const int64_t len = shape.back();
    const int64_t rows = numel(shape) / len;
    const std::vector<float> x = logits(n, 2);
    DevBuf dx(n * 4), dy(n * 4), dk(n * 4), dl(rows * 4), dlk(rows * 4);
    ASSERT_EQ(cudaMemcpy(dx.p, x.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
    softmax::SoftmaxOptions o;
    o.temperature = 0.7;
    const ConstTensorView xv(dx.p, DType::f32, shape, cs(shape), Device::cuda);
    softmax::log_softmax(xv, TensorView(dy.p, DType::f32, shape, cs(shape), Device::cuda), o);
    std::vector<int64_t> rshape(shape.begin(), shape.end() - 1);
    softmax::logsumexp(xv, TensorView(dl.p, DType::f32, rshape, cs(rshape), Device::cuda), o);
    // The kernels directly.
    softmax::cuda::RowsArgs a;
    a.x = dx.p;
    a.x_stride = len;
    a.y = dk.p;
    a.y_stride = len;
    a.rows = rows;
    a.n = len;
    a.temperature = 0.7;
    a.mode = softmax::cuda::RowMode::kLogSoftmax;
    const std::size_t need = softmax::cuda::rows_workspace_bytes(a);
    DevBuf ws(need);
    softmax::cuda::rows(a, ws.p, need, nullptr);
    a.mode = softmax::cuda::RowMode::kLogSumExp;
    a.y = dlk.p;
    a.y_stride = 1;
    const std::size_t need2 = softmax::cuda::rows_workspace_bytes(a);
    DevBuf ws2(need2);
    softmax::cuda::rows(a, ws2.p, need2, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(download<float>(dy.p, n), download<float>(dk.p, n));
    EXPECT_EQ(download<float>(dl.p, rows), download<float>(dlk.p, rows));
  }
}

TEST(CudaBackend, ArgmaxAndBackwardMatchTheCpu) {
  REQUIRE_GPU();
  const std::vector<int64_t> shape{16, 3000};
  const std::size_t n = 16 * 3000;
  const std::vector<float> x = logits(n, 3), dyh = logits(n, 4);
  std::vector<float> y(n), dx_cpu(n);
  std::vector<int64_t> idx_cpu(16);
  softmax::softmax(ConstTensorView(x.data(), shape), TensorView(y.data(), shape));
  softmax::softmax_backward(ConstTensorView(y.data(), shape), ConstTensorView(dyh.data(), shape),
                            TensorView(dx_cpu.data(), shape));
  softmax::argmax(ConstTensorView(x.data(), shape), TensorView(idx_cpu.data(), DType::i64, {16}));
  DevBuf dxp(n * 4), dyp(n * 4), ddy(n * 4), ddx(n * 4), didx(16 * 8);
  cudaMemcpy(dxp.p, x.data(), n * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dyp.p, y.data(), n * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(ddy.p, dyh.data(), n * 4, cudaMemcpyHostToDevice);
  const std::vector<int64_t> st{3000, 1};
  softmax::argmax(ConstTensorView(dxp.p, DType::f32, shape, st, Device::cuda),
                  TensorView(didx.p, DType::i64, {16}, {1}, Device::cuda));
  softmax::softmax_backward(ConstTensorView(dyp.p, DType::f32, shape, st, Device::cuda),
                            ConstTensorView(ddy.p, DType::f32, shape, st, Device::cuda),
                            TensorView(ddx.p, DType::f32, shape, st, Device::cuda));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(download<int64_t>(didx.p, 16), idx_cpu);
  const std::vector<float> dx_gpu = download<float>(ddx.p, n);
  EXPECT_EQ(std::memcmp(dx_cpu.data(), dx_gpu.data(), n * 4), 0);
}

TEST(CudaBackend, LayoutsDevicesAndWorkspacesAreCheckedBeforeAnyLaunch) {
  REQUIRE_GPU();
  DevBuf dx(64 * 64 * 4), dy(64 * 64 * 4);
  // A strided axis (a transposed view) is not served: kUnsupported, named.
  try {
    softmax::softmax(ConstTensorView(dx.p, DType::f32, {64, 64}, {1, 64}, Device::cuda),
                     TensorView(dy.p, DType::f32, {64, 64}, {64, 1}, Device::cuda));
    ADD_FAILURE() << "no error";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find("contiguous"), std::string::npos) << e.what();
  }
  // A CPU output for a CUDA input.
  std::vector<float> host(64 * 64, 7.0f);
  try {
    softmax::softmax(ConstTensorView(dx.p, DType::f32, {64, 64}, {64, 1}, Device::cuda),
                     TensorView(host.data(), {64, 64}));
    ADD_FAILURE() << "no error";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  }
  for (float v : host) ASSERT_EQ(v, 7.0f);
  // A workspace smaller than a split row needs.
  DevBuf big(4194304 * 4), out(4194304 * 4);
  const ConstTensorView xv(big.p, DType::f32, {1, 4194304}, {4194304, 1}, Device::cuda);
  const TensorView yv(out.p, DType::f32, {1, 4194304}, {4194304, 1}, Device::cuda);
  const std::size_t need = softmax::softmax_workspace_bytes(xv, yv);
  if (need > 0) {
    DevBuf ws(need);
    Context c;
    c.workspace = ws.p;
    c.workspace_bytes = need - 1;
    EXPECT_THROW(softmax::softmax(xv, yv, {}, c), softmax::Error);
  }
}

}  // namespace
