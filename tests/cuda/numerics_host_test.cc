// tests/cuda/numerics_host_test.cc: runs on the CPU, no GPU needed. (1) The device arithmetic
// (src/cuda/numerics.cuh, compiled here as host code) against its CPU originals, bit for bit:
// exp (f32, f64), bf16/f16 conversions, LogPair. (2) The GPU kernels' reduction order
// (tests/cuda/row_spec.hpp) against the CPU library's softmax / log_softmax / logsumexp, bit for
// bit, for short, one-chunk, multi-chunk and special rows: the property the GPU kernels rely on
// to match the CPU (tests/cuda/rows_gpu_test.cu then checks the kernels against the CPU).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
#include "src/base/half.hpp"
#include "src/cpu/kernels.hpp"
#include "src/cuda/numerics.cuh"
#include "tests/cuda/row_spec.hpp"

namespace {

namespace num = softmax::cuda::num;
using softmax::DType;

template <class T>
uint64_t bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}

TEST(CudaNumericsHost, HalfConversionsMatchCpu) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto u = static_cast<uint16_t>(h);
    ASSERT_EQ(bits(num::bf16_to_f32(u)), bits(softmax::detail::bf16_to_f32(u))) << h;
    ASSERT_EQ(bits(num::f16_to_f32(u)), bits(softmax::detail::f16_to_f32(u))) << h;
  }
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 9973) {
    const float f = softmax::detail::bits_f32(static_cast<uint32_t>(b));
    ASSERT_EQ(num::f32_to_bf16(f), softmax::detail::f32_to_bf16(f)) << b;
    ASSERT_EQ(num::f32_to_f16(f), softmax::detail::f32_to_f16(f)) << b;
  }
}

TEST(CudaNumericsHost, ExpF32MatchesCpuKernel) {
  std::vector<float> a;
  const uint32_t hi = softmax::detail::f32_bits(110.0f);
  for (uint32_t b = 0; b <= hi; b += 97) a.push_back(-softmax::detail::bits_f32(b));
  a.push_back(-std::numeric_limits<float>::infinity());
  std::vector<float> y(a.size());
  // normalize with max 0, T 1, scale 1 writes exp(a) exactly (tests/cpu/exp_test.cc).
  softmax::cpu::kernels().normalize(
      a.data(), DType::f32, y.data(), DType::f32, static_cast<int64_t>(a.size()), 0.0,
      softmax::cpu::Temperature{}, 1.0, softmax::cpu::RowMode::kSoftmax);
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(bits(num::exp_nonpositive(a[i], 0.0f)), bits(y[i])) << a[i];
  }
}

TEST(CudaNumericsHost, ExpF64MatchesCpuKernel) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-760.0, 0.0);
  const auto& k = softmax::cpu::kernels();
  for (int i = 0; i < 2000000; ++i) {
    const double a = i < 10 ? -static_cast<double>(i) * 0.25 : u(rng);
    ASSERT_EQ(bits(num::exp_nonpositive(a, 0.0)), bits(k.exp_f64(a))) << a;
  }
}

TEST(CudaNumericsHost, LogPairMatchesCpu) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.5, 1e6);
  for (int i = 0; i < 200000; ++i) {
    const double hi = u(rng);
    const double lo = std::ldexp(u(rng) / 1e6 - 0.5, std::ilogb(hi) - 53);
    double l1 = 0, l2 = 0;
    ASSERT_EQ(bits(num::log_pair(hi, lo, nullptr, nullptr)),
              bits(softmax::cpu::LogPair(hi, lo, nullptr)));
    ASSERT_EQ(bits(num::log_pair(hi, lo, nullptr, &l1)),
              bits(softmax::cpu::LogPair(hi, lo, nullptr, &l2)));
    ASSERT_EQ(bits(l1), bits(l2));
  }
}

// Rows of n values: logits N(0, scale) with a few -inf, a run of -inf blocks, one big spike.
std::vector<double> make_row(int n, uint64_t seed, int kind) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, kind == 1 ? 30.0 : 3.0);
  std::vector<double> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = g(rng);
  if (kind == 2 && n > 4) {  // increasing block maxima: the online rescale path
    for (int i = 0; i < n; ++i) x[i] += 4.0 * i / n;
    x[n / 3] = -std::numeric_limits<double>::infinity();
  }
  if (kind == 3) {  // near-certain row (log modes redo the sum in f64)
    for (auto& v : x) v -= 40.0;
    x[n / 2] = 0.0;
  }
  if (kind == 4 && n > 3000) {  // leading all -inf blocks
    for (int i = 0; i < 2500; ++i) x[i] = -std::numeric_limits<double>::infinity();
  }
  return x;
}

template <class Mem>
Mem to_mem(DType t, double v) {
  if constexpr (sizeof(Mem) == 8)
    return v;
  else if constexpr (sizeof(Mem) == 4)
    return static_cast<float>(v);
  else
    return t == DType::bf16 ? softmax::detail::f32_to_bf16(static_cast<float>(v))
                            : softmax::detail::f32_to_f16(static_cast<float>(v));
}

// Compares spec::run with the CPU op for one (dtype, n, kind, T, mode), bit for bit after
// rounding the spec's compute values to the output storage.
template <class Mem>
void check_case(DType t, int n, int kind, double temperature, int mode) {
  const std::vector<double> src = make_row(n, static_cast<uint64_t>(n * 31 + kind), kind);
  std::vector<Mem> x(src.size());
  for (std::size_t i = 0; i < src.size(); ++i) x[i] = to_mem<Mem>(t, src[i]);
  const int64_t out_n = mode == 2 ? 1 : n;
  std::vector<Mem> y(static_cast<std::size_t>(out_n));
  softmax::SoftmaxOptions o;
  o.temperature = temperature;
  o.threads = 1;
  const softmax::ConstTensorView xv(x.data(), t, {1, n});
  const softmax::TensorView yv(y.data(), t,
                               mode == 2 ? std::vector<int64_t>{1} : std::vector<int64_t>{1, n});
  if (mode == 0)
    softmax::softmax(xv, yv, o);
  else if (mode == 1)
    softmax::log_softmax(xv, yv, o);
  else
    softmax::logsumexp(xv, yv, o);
  std::vector<double> got;
  if constexpr (sizeof(Mem) == 8) {
    got = spec::run<double>(std::vector<double>(x.begin(), x.end()), mode, temperature);
  } else {
    std::vector<float> xf(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      if constexpr (sizeof(Mem) == 4)
        xf[i] = x[i];
      else
        xf[i] = t == DType::bf16 ? softmax::detail::bf16_to_f32(x[i])
                                 : softmax::detail::f16_to_f32(x[i]);
    }
    got = spec::run<float>(xf, mode, temperature);
  }
  for (int64_t i = 0; i < out_n; ++i) {
    const Mem want = y[static_cast<std::size_t>(i)];
    const Mem have = to_mem<Mem>(t, got[static_cast<std::size_t>(i)]);
    ASSERT_EQ(bits(have), bits(want))
        << "dtype " << softmax::dtype_name(t) << " n " << n << " kind " << kind << " T "
        << temperature << " mode " << mode << " i " << i;
  }
}

class SpecVsCpu : public ::testing::TestWithParam<int> {};

TEST_P(SpecVsCpu, BitIdenticalAllModes) {
  const int n = GetParam();
  for (int kind = 0; kind < 5; ++kind) {
    for (double temperature : {1.0, 0.7, 3.0}) {
      for (int mode = 0; mode < 3; ++mode) {
        check_case<float>(DType::f32, n, kind, temperature, mode);
        check_case<uint16_t>(DType::bf16, n, kind, temperature, mode);
        check_case<double>(DType::f64, n, kind, temperature, mode);
      }
    }
  }
}
INSTANTIATE_TEST_SUITE_P(Lengths, SpecVsCpu,
                         ::testing::Values(1, 7, 100, 2048, 2049, 5000, 32768, 32769, 70000,
                                           140000));

TEST(SpecVsCpuSpecial, NanAndInfRows) {
  for (int mode = 0; mode < 3; ++mode) {
    for (int n : {5, 3000, 40000}) {
      for (double special : {std::nan(""), std::numeric_limits<double>::infinity()}) {
        std::vector<float> x(static_cast<std::size_t>(n), 1.0f);
        x[static_cast<std::size_t>(n / 2)] = static_cast<float>(special);
        const auto got = spec::run<float>(x, mode, 1.0);
        std::vector<float> y(mode == 2 ? 1 : static_cast<std::size_t>(n));
        const softmax::ConstTensorView xv(x.data(), {1, n});
        const softmax::TensorView yv(
            y.data(), mode == 2 ? std::vector<int64_t>{1} : std::vector<int64_t>{1, n});
        if (mode == 0)
          softmax::softmax(xv, yv);
        else if (mode == 1)
          softmax::log_softmax(xv, yv);
        else
          softmax::logsumexp(xv, yv);
        for (std::size_t i = 0; i < y.size(); ++i) {
          ASSERT_EQ(std::isnan(y[i]), std::isnan(got[i])) << mode << " " << n;
          if (!std::isnan(y[i])) ASSERT_EQ(y[i], static_cast<float>(got[i]));
        }
      }
    }
  }
}

}  // namespace
