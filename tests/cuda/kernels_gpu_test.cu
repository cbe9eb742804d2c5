// tests/cuda/kernels_gpu_test.cu: the CUDA kernels on a GPU (every case skips without one,
// GTEST_SKIP, counted as skipped). The oracle is the CPU library on the same inputs, whose own
// tests bound it against the long double reference (src/ref): softmax, softmax_backward,
// log_softmax_backward and argmax must match it bit for bit; log_softmax and logsumexp within
// one ulp of the output (the one libm-vs-CUDA log of the row sum; docs/gpu.md) and within the
// CPU bound of the reference. Rows cover every strategy (warp, block, cluster, split), every
// dtype pair, temperatures, and rows of NaN / +inf / all -inf. Buffers are cudaMalloc'd here
// (the library never allocates).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
#include "src/base/half.hpp"
#include "src/cuda/cuda_kernels.hpp"
#include "src/ref/reference.hpp"

namespace {

using softmax::DType;
namespace sc = softmax::cuda;

#define REQUIRE_GPU()                                                              \
  do {                                                                             \
    if (!sc::device_available()) GTEST_SKIP() << "no CUDA device on this machine"; \
  } while (0)

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

// A device buffer owned by the test.
struct DevBuf {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit DevBuf(std::size_t b) : bytes(b) {
    if (b > 0 && cudaMalloc(&p, b) != cudaSuccess) p = nullptr;
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

std::size_t es(DType t) { return softmax::dtype_size(t); }

// Host rows (rows x n) of dtype t, as bytes, from doubles.
std::vector<unsigned char> encode(const std::vector<double>& v, DType t) {
  std::vector<unsigned char> out(v.size() * es(t));
  for (std::size_t i = 0; i < v.size(); ++i)
    softmax::detail::store_from_double(out.data(), t, static_cast<int64_t>(i), v[i]);
  return out;
}
double decode(const std::vector<unsigned char>& b, DType t, std::size_t i) {
  return softmax::detail::load_as_double(b.data(), t, static_cast<int64_t>(i));
}

std::vector<double> logits(int64_t rows, int64_t n, uint64_t seed, bool specials) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 4.0);
  std::vector<double> x(static_cast<std::size_t>(rows * n));
  for (auto& v : x) v = g(rng);
  for (int64_t r = 0; r < rows; ++r) {
    double* row = x.data() + r * n;
    for (int64_t i = 0; i < n; i += 97) row[i] = -INFINITY;  // masked logits
    if (r % 5 == 1) row[n / 2] += 30.0;                      // near-certain row
    if (specials && rows >= 4) {
      if (r == rows - 1) row[n - 1] = NAN;
      if (r == rows - 2) row[0] = INFINITY;
      if (r == rows - 3)
        for (int64_t i = 0; i < n; ++i) row[i] = -INFINITY;
    }
  }
  return x;
}

// Ulps of the output format between two values of it (0 when both NaN).
double ulps_apart(double a, double b, DType t) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INFINITY;
  if (a == b) return 0;
  const int digits = t == DType::f64 ? 53 : t == DType::f32 ? 24 : t == DType::bf16 ? 8 : 11;
  const double m = std::max(std::fabs(a), std::fabs(b));
  if (!std::isfinite(m)) return INFINITY;
  return std::fabs(a - b) / std::ldexp(1.0, std::ilogb(m) - (digits - 1));
}

struct Case {
  DType x, y;
  int64_t rows, n;
  double temperature;
};

void run_rows_case(const Case& c, sc::RowMode mode) {
  SCOPED_TRACE(std::string(softmax::dtype_name(c.x)) + "->" + softmax::dtype_name(c.y) +
               " rows=" + std::to_string(c.rows) + " n=" + std::to_string(c.n) + " T=" +
               std::to_string(c.temperature) + " mode=" + std::to_string(static_cast<int>(mode)));
  const bool reduce = mode == sc::RowMode::kLogSumExp;
  const auto xs = logits(c.rows, c.n, static_cast<uint64_t>(c.n * 7 + c.rows), true);
  const auto xh = encode(xs, c.x);
  const int64_t out_n = reduce ? c.rows : c.rows * c.n;
  // CPU oracle.
  std::vector<unsigned char> want(static_cast<std::size_t>(out_n) * es(c.y));
  softmax::SoftmaxOptions o;
  o.temperature = c.temperature;
  const softmax::ConstTensorView xv(xh.data(), c.x, {c.rows, c.n});
  const softmax::TensorView yv(
      want.data(), c.y, reduce ? std::vector<int64_t>{c.rows} : std::vector<int64_t>{c.rows, c.n});
  if (mode == sc::RowMode::kSoftmax)
    softmax::softmax(xv, yv, o);
  else if (mode == sc::RowMode::kLogSoftmax)
    softmax::log_softmax(xv, yv, o);
  else
    softmax::logsumexp(xv, yv, o);
  // GPU.
  DevBuf dx(xh.size()), dy(want.size());
  ASSERT_NE(dx.p, nullptr);
  ASSERT_NE(dy.p, nullptr);
  CUDA_OK(cudaMemcpy(dx.p, xh.data(), xh.size(), cudaMemcpyHostToDevice));
  sc::RowsArgs a;
  a.x = dx.p;
  a.x_dtype = c.x;
  a.x_stride = c.n;
  a.y = dy.p;
  a.y_dtype = c.y;
  a.y_stride = reduce ? 1 : c.n;
  a.rows = c.rows;
  a.n = c.n;
  a.temperature = c.temperature;
  a.mode = mode;
  const std::size_t wsb = sc::rows_workspace_bytes(a);
  DevBuf ws(wsb);
  sc::rows(a, ws.p, wsb, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<unsigned char> got(want.size());
  CUDA_OK(cudaMemcpy(got.data(), dy.p, got.size(), cudaMemcpyDeviceToHost));
  int64_t differ = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(out_n); ++i) {
    const double g = decode(got, c.y, i), w = decode(want, c.y, i);
    if (mode == sc::RowMode::kSoftmax) {
      ASSERT_EQ(std::memcmp(got.data() + i * es(c.y), want.data() + i * es(c.y), es(c.y)), 0)
          << "element " << i << ": gpu " << g << " cpu " << w;
    } else {
      ASSERT_LE(ulps_apart(g, w, c.y), 1.0) << "element " << i << ": gpu " << g << " cpu " << w;
      differ += g != w;
    }
  }
  // The one differing rounding is rare: at most 1 in 1000 outputs.
  EXPECT_LE(differ * 1000, out_n + 999);
}

std::vector<Case> cases() {
  std::vector<Case> v;
  const std::vector<std::pair<DType, DType>> pairs = {{DType::f32, DType::f32},
                                                      {DType::bf16, DType::bf16},
                                                      {DType::f16, DType::f32},
                                                      {DType::f32, DType::bf16},
                                                      {DType::f64, DType::f64}};
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {9, 1},     {9, 33},    {9, 1000},   {9, 2048},   {5, 2049},   {5, 12672},
      {5, 32768}, {5, 32769}, {4, 100000}, {4, 524288}, {4, 524289}, {5, 1048577}};
  for (auto [x, y] : pairs)
    for (auto [rows, n] : shapes)
      for (double t : {1.0, 0.7}) v.push_back(Case{x, y, rows, n, t});
  return v;
}

TEST(CudaRows, SoftmaxBitIdenticalWithCpu) {
  REQUIRE_GPU();
  for (const Case& c : cases()) run_rows_case(c, sc::RowMode::kSoftmax);
}
TEST(CudaRows, LogSoftmaxWithinOneUlpOfCpu) {
  REQUIRE_GPU();
  for (const Case& c : cases()) run_rows_case(c, sc::RowMode::kLogSoftmax);
}
TEST(CudaRows, LogSumExpWithinOneUlpOfCpu) {
  REQUIRE_GPU();
  for (const Case& c : cases()) run_rows_case(c, sc::RowMode::kLogSumExp);
}

// The reference oracle directly, for f32 softmax rows of every strategy (<= 4 ulp, ops.hpp).
TEST(CudaRows, SoftmaxAgainstLongDoubleReference) {
  REQUIRE_GPU();
  for (int64_t n : {100, 5000, 40000, 600000}) {
    const auto xs = logits(2, n, 99, false);
    std::vector<float> xf(xs.begin(), xs.end()), y(xf.size());
    DevBuf dx(xf.size() * 4), dy(xf.size() * 4);
    CUDA_OK(cudaMemcpy(dx.p, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice));
    sc::RowsArgs a;
    a.x = dx.p;
    a.y = dy.p;
    a.x_stride = a.y_stride = n;
    a.rows = 2;
    a.n = n;
    const std::size_t wsb = sc::rows_workspace_bytes(a);
    DevBuf ws(wsb);
    sc::rows(a, ws.p, wsb, nullptr);
    CUDA_OK(cudaMemcpy(y.data(), dy.p, y.size() * 4, cudaMemcpyDeviceToHost));
    for (int64_t r = 0; r < 2; ++r) {
      std::vector<long double> row(xf.begin() + r * n, xf.begin() + (r + 1) * n);
      const auto exact = softmax::ref::softmax(row);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_LE(softmax::ref::ulp_error(y[r * n + i], exact[i]), 4.0) << n << " " << i;
      }
    }
  }
}

// Batch invariance: a row's result does not depend on the batch around it.
TEST(CudaRows, BatchInvariant) {
  REQUIRE_GPU();
  for (int64_t n : {700, 20000, 300000}) {
    const int64_t rows = 6;
    const auto xs = logits(rows, n, 5, false);
    std::vector<float> xf(xs.begin(), xs.end());
    DevBuf dx(xf.size() * 4), dy(xf.size() * 4), d1(n * 4);
    CUDA_OK(cudaMemcpy(dx.p, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice));
    sc::RowsArgs a;
    a.x = dx.p;
    a.y = dy.p;
    a.x_stride = a.y_stride = n;
    a.rows = rows;
    a.n = n;
    DevBuf ws(sc::rows_workspace_bytes(a));
    sc::rows(a, ws.p, ws.bytes, nullptr);
    a.x = static_cast<float*>(dx.p) + 3 * n;
    a.y = d1.p;
    a.rows = 1;
    sc::rows(a, ws.p, ws.bytes, nullptr);
    std::vector<float> all(xf.size()), one(static_cast<std::size_t>(n));
    CUDA_OK(cudaMemcpy(all.data(), dy.p, all.size() * 4, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(one.data(), d1.p, one.size() * 4, cudaMemcpyDeviceToHost));
    ASSERT_EQ(std::memcmp(all.data() + 3 * n, one.data(), one.size() * 4), 0) << n;
  }
}

// In place (y is x) gives the same bits.
TEST(CudaRows, InPlace) {
  REQUIRE_GPU();
  for (int64_t n : {1000, 30000, 200000, 700000}) {
    const auto xs = logits(2, n, 3, false);
    std::vector<float> xf(xs.begin(), xs.end()), ref(xf.size()), got(xf.size());
    softmax::softmax(softmax::ConstTensorView(xf.data(), {2, n}),
                     softmax::TensorView(ref.data(), {2, n}));
    DevBuf dx(xf.size() * 4);
    CUDA_OK(cudaMemcpy(dx.p, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice));
    sc::RowsArgs a;
    a.x = dx.p;
    a.y = dx.p;
    a.x_stride = a.y_stride = n;
    a.rows = 2;
    a.n = n;
    DevBuf ws(sc::rows_workspace_bytes(a));
    sc::rows(a, ws.p, ws.bytes, nullptr);
    CUDA_OK(cudaMemcpy(got.data(), dx.p, got.size() * 4, cudaMemcpyDeviceToHost));
    ASSERT_EQ(std::memcmp(got.data(), ref.data(), got.size() * 4), 0) << n;
  }
}

TEST(CudaRows, ShortWorkspaceThrowsBeforeLaunch) {
  REQUIRE_GPU();
  sc::RowsArgs a;
  DevBuf d(4 * 600000);
  a.x = a.y = d.p;
  a.rows = 1;
  a.n = 600000;
  a.x_stride = a.y_stride = a.n;
  ASSERT_GT(sc::rows_workspace_bytes(a), 0u);
  EXPECT_THROW(sc::rows(a, nullptr, 0, nullptr), softmax::Error);
}

void run_backward_case(DType t, int64_t rows, int64_t n, double temperature, sc::RowMode mode) {
  SCOPED_TRACE(std::string(softmax::dtype_name(t)) + " n=" + std::to_string(n) +
               " mode=" + std::to_string(static_cast<int>(mode)));
  auto ys = logits(rows, n, static_cast<uint64_t>(n), false);
  std::vector<double> yv(ys.size());
  // y: a softmax / log_softmax output of the logits (CPU); dy: random.
  {
    const auto xh = encode(ys, DType::f64);
    std::vector<double> out(ys.size());
    const softmax::ConstTensorView xv(xh.data(), DType::f64, {rows, n});
    const softmax::TensorView ov(out.data(), {rows, n});
    if (mode == sc::RowMode::kSoftmax)
      softmax::softmax(xv, ov);
    else
      softmax::log_softmax(xv, ov);
    yv = out;
  }
  std::mt19937_64 rng(17);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> dys(ys.size());
  for (auto& v : dys) v = g(rng);
  const auto yh = encode(yv, t), dyh = encode(dys, t);
  std::vector<unsigned char> want(yh.size());
  softmax::SoftmaxOptions o;
  o.temperature = temperature;
  const softmax::ConstTensorView y_view(yh.data(), t, {rows, n}), dy_view(dyh.data(), t, {rows, n});
  const softmax::TensorView dx_view(want.data(), t, {rows, n});
  if (mode == sc::RowMode::kSoftmax)
    softmax::softmax_backward(y_view, dy_view, dx_view, o);
  else
    softmax::log_softmax_backward(y_view, dy_view, dx_view, o);
  DevBuf dy_d(yh.size()), ddy(dyh.size()), ddx(want.size());
  CUDA_OK(cudaMemcpy(dy_d.p, yh.data(), yh.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(ddy.p, dyh.data(), dyh.size(), cudaMemcpyHostToDevice));
  sc::BackwardArgs b;
  b.y = dy_d.p;
  b.dy = ddy.p;
  b.dtype = t;
  b.stride = n;
  b.dx = ddx.p;
  b.dx_dtype = t;
  b.dx_stride = n;
  b.rows = rows;
  b.n = n;
  b.temperature = temperature;
  b.mode = mode;
  DevBuf ws(sc::backward_workspace_bytes(b));
  sc::backward(b, ws.p, ws.bytes, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<unsigned char> got(want.size());
  CUDA_OK(cudaMemcpy(got.data(), ddx.p, got.size(), cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < got.size() / es(t); ++i) {
    ASSERT_EQ(std::memcmp(got.data() + i * es(t), want.data() + i * es(t), es(t)), 0)
        << "element " << i << ": gpu " << decode(got, t, i) << " cpu " << decode(want, t, i);
  }
}

TEST(CudaBackward, BitIdenticalWithCpu) {
  REQUIRE_GPU();
  for (DType t : {DType::f32, DType::bf16, DType::f64}) {
    for (auto mode : {sc::RowMode::kSoftmax, sc::RowMode::kLogSoftmax}) {
      for (int64_t n : {1, 100, 2048, 2049, 40000, 300000}) {
        for (double temperature : {1.0, 2.5}) run_backward_case(t, 3, n, temperature, mode);
      }
    }
  }
}

TEST(CudaArgmax, FirstMaximumOrFirstNan) {
  REQUIRE_GPU();
  for (int64_t n : {1, 31, 5000, 300000}) {
    auto xs = logits(4, n, 8, false);
    xs[static_cast<std::size_t>(n / 2)] = 100.0;  // row 0: a tie at two places
    xs[static_cast<std::size_t>(n - 1)] = 100.0;
    xs[static_cast<std::size_t>(2 * n + n / 3)] = NAN;  // row 2: NaN wins
    std::vector<float> xf(xs.begin(), xs.end());
    DevBuf dx(xf.size() * 4), di(4 * sizeof(int64_t));
    CUDA_OK(cudaMemcpy(dx.p, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice));
    sc::argmax(dx.p, DType::f32, n, 4, n, static_cast<int64_t*>(di.p), nullptr);
    int64_t got[4];
    CUDA_OK(cudaMemcpy(got, di.p, sizeof(got), cudaMemcpyDeviceToHost));
    for (int64_t r = 0; r < 4; ++r) {
      std::vector<long double> row(xf.begin() + r * n, xf.begin() + (r + 1) * n);
      EXPECT_EQ(got[r], softmax::ref::argmax(row)) << "n " << n << " row " << r;
    }
  }
}

}  // namespace

namespace {

// Cross-entropy forward + backward against the CPU op (its bounds hold against src/ref):
// loss within 2^-20 (1 + |loss|), gradient within 2^-20 (|a| p_c + |b| w_c + |c|) (+ the f32
// rounding of the stored value); checked here as 4e-6 * (1 + max |grad of the row|).
void run_ce_case(int64_t rows, int64_t n, double eps, bool weighted, softmax::Reduction red) {
  SCOPED_TRACE("rows=" + std::to_string(rows) + " n=" + std::to_string(n) +
               " eps=" + std::to_string(eps) + " weighted=" + std::to_string(weighted) +
               " reduction=" + std::to_string(static_cast<int>(red)));
  const auto xs = logits(rows, n, static_cast<uint64_t>(n + 1), false);
  std::vector<float> xf(xs.begin(), xs.end());
  std::vector<int64_t> t(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) t[r] = r % 7 == 3 ? -100 : (r * 7919) % n;
  std::vector<float> w(static_cast<std::size_t>(n));
  for (int64_t c = 0; c < n; ++c) w[c] = 0.5f + static_cast<float>(c % 5) * 0.25f;
  // CPU.
  std::vector<float> grad_cpu(xf.size());
  std::vector<double> loss_cpu(red == softmax::Reduction::kNone ? rows : 1);
  softmax::CrossEntropyOptions o;
  o.label_smoothing = eps;
  o.reduction = red;
  if (weighted) o.weight = softmax::ConstTensorView(w.data(), {n});
  softmax::CrossEntropyOutputs out;
  out.loss = red == softmax::Reduction::kNone
                 ? softmax::TensorView(loss_cpu.data(), {rows})
                 : softmax::TensorView(loss_cpu.data(), DType::f64, {}, {});
  out.grad = softmax::TensorView(grad_cpu.data(), {rows, n});
  softmax::cross_entropy(softmax::ConstTensorView(xf.data(), {rows, n}),
                         softmax::ConstTensorView(t.data(), DType::i64, {rows}), out, o);
  // GPU.
  DevBuf dx(xf.size() * 4), dt(t.size() * 8), dw(w.size() * 4), dg(xf.size() * 4), dl(rows * 8),
      dr(8);
  CUDA_OK(cudaMemcpy(dx.p, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dt.p, t.data(), t.size() * 8, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dw.p, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
  sc::CrossEntropyArgs a;
  a.logits = dx.p;
  a.stride = n;
  a.targets = static_cast<const int64_t*>(dt.p);
  a.weight = weighted ? static_cast<const float*>(dw.p) : nullptr;
  a.label_smoothing = eps;
  a.reduction = red;
  a.loss_rows = static_cast<double*>(dl.p);
  a.loss_reduced = static_cast<double*>(dr.p);
  a.grad = dg.p;
  a.grad_stride = n;
  a.rows = rows;
  a.n = n;
  DevBuf ws(sc::cross_entropy_workspace_bytes(a));
  sc::cross_entropy(a, ws.p, ws.bytes, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<double> loss_rows(static_cast<std::size_t>(rows));
  double reduced = 0;
  std::vector<float> grad(xf.size());
  CUDA_OK(cudaMemcpy(loss_rows.data(), dl.p, rows * 8, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(&reduced, dr.p, 8, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(grad.data(), dg.p, grad.size() * 4, cudaMemcpyDeviceToHost));
  if (red == softmax::Reduction::kNone) {
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_LE(std::fabs(loss_rows[r] - loss_cpu[r]), 0x1.0p-19 * (1 + std::fabs(loss_cpu[r])))
          << r;
    }
  } else {
    ASSERT_LE(std::fabs(reduced - loss_cpu[0]), 0x1.0p-19 * (1 + std::fabs(loss_cpu[0])));
  }
  for (int64_t r = 0; r < rows; ++r) {
    double scale = 0;
    for (int64_t c = 0; c < n; ++c)
      scale = std::max(scale, std::fabs(static_cast<double>(grad_cpu[r * n + c])));
    for (int64_t c = 0; c < n; ++c) {
      ASSERT_LE(std::fabs(static_cast<double>(grad[r * n + c]) - grad_cpu[r * n + c]),
                4e-6 * (1 + scale))
          << "row " << r << " class " << c;
    }
  }
}

TEST(CudaCrossEntropy, MatchesCpuWithinBound) {
  REQUIRE_GPU();
  for (auto red :
       {softmax::Reduction::kNone, softmax::Reduction::kSum, softmax::Reduction::kMean}) {
    for (int64_t n : {10, 5000, 128256}) {
      run_ce_case(9, n, 0.0, false, red);
      run_ce_case(9, n, 0.1, true, red);
    }
  }
}

}  // namespace
