// src/cuda/numerics.cuh: the arithmetic of the CUDA kernels, as __host__ __device__ functions.
//
// Each function here is the scalar twin of a CPU building block (src/cpu/row_ops-inl.h,
// src/cpu/softmax_blocks-inl.h, src/base/half.hpp): the same IEEE operations in the same order,
// exact FMA only where the CPU uses Fma(), so a device computes the same bits as the CPU. The
// CUDA sources are compiled with --fmad=false (no contraction chosen by the compiler) and IEEE
// division; no __expf / fast-math intrinsic is used. Because the functions also compile for the
// host, tests/cuda/numerics_host_test.cu checks them bit for bit against the CPU kernels on a
// machine without a GPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SMX_HD __host__ __device__ __forceinline__
#else
#define SMX_HD inline
#endif

namespace softmax::cuda::num {

template <class To, class From>
SMX_HD To bits_as(From f) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To t;
  memcpy(&t, &f, sizeof(To));
  return t;
}

SMX_HD bool is_nan(double v) { return v != v; }
SMX_HD bool is_finite(double v) { return v - v == 0.0; }  // false for inf and NaN
SMX_HD bool is_inf(double v) { return !is_nan(v) && !is_finite(v); }

// ---- exp(a + lo) for a <= 0 (row_ops-inl.h ExpNonPositive, one lane) ----
template <class T>
struct ExpConsts;
template <>
struct ExpConsts<float> {
  using UInt = uint32_t;
  static constexpr float kLog2e = 1.44269504088896341f;
  static constexpr float kLn2Hi = 0.693147182464599609375f;
  static constexpr float kLn2Lo = -1.904654323148236e-09f;
  static constexpr float kMinArg = -104.0f;
  static constexpr float kRoundMagic = 12582912.0f;
  static constexpr int kMantBits = 23;
  static constexpr float kScaleBack = 0x1.0p-64f;
  static constexpr int kNumCoeffs = 6;
  SMX_HD static float coeff(int i) {
    constexpr float c[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f};
    return c[i];
  }
  SMX_HD static float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
};
template <>
struct ExpConsts<double> {
  using UInt = uint64_t;
  static constexpr double kLog2e = 1.4426950408889634074;
  static constexpr double kLn2Hi = 0.6931471805599452862267639829951804131269;
  static constexpr double kLn2Lo = 2.319046813846299558417771e-17;
  static constexpr double kMinArg = -746.0;
  static constexpr double kRoundMagic = 6755399441055744.0;
  static constexpr int kMantBits = 52;
  static constexpr double kScaleBack = 0x1.0p-64;
  static constexpr int kNumCoeffs = 12;
  SMX_HD static double coeff(int i) {
    constexpr double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                            1.0 / 3628800.0,    1.0 / 362880.0,    1.0 / 40320.0,
                            1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,
                            1.0 / 24.0,         1.0 / 6.0,         0.5};
    return c[i];
  }
  SMX_HD static double fma(double a, double b, double c) { return ::fma(a, b, c); }
};

// Cody-Waite reduction with FMA, Taylor polynomial (degree 7 for f32, 13 for f64) in Horner
// form, scaling by an exponent-field add of n + 64 and one multiply by 2^-64 (so subnormal
// results round once). NaN `a` gives an unspecified value (callers handle NaN rows first).
template <class T>
SMX_HD T exp_nonpositive(T a, T lo) {
  using C = ExpConsts<T>;
  using U = typename C::UInt;
  if (a <= C::kMinArg) lo = T(0);
  if (!(a > C::kMinArg)) a = C::kMinArg;  // also NaN -> kMinArg, as Highway's Max on x86
  const T t = C::fma(a, C::kLog2e, C::kRoundMagic);
  const T neg_n = C::kRoundMagic - t;
  T r = C::fma(neg_n, C::kLn2Hi, a);
  r = C::fma(neg_n, C::kLn2Lo, r);
  r = r + lo;
  T p = C::coeff(0);
  for (int i = 1; i < C::kNumCoeffs; ++i) p = C::fma(p, r, C::coeff(i));
  p = C::fma(p, r, T(1));
  p = C::fma(p, r, T(1));
  const U e_bits = (bits_as<U>(t) + U{64}) << C::kMantBits;
  return bits_as<T>(bits_as<U>(p) + e_bits) * C::kScaleBack;
}

// Knuth's TwoSum: hi + lo == a + b exactly.
template <class T>
SMX_HD T two_sum(T a, T b, T& lo) {
  const T hi = a + b;
  const T bb = hi - a;
  lo = (a - (hi - bb)) + (b - bb);
  return hi;
}

// ---- temperature (cpu::Temperature, SplitInvT) ----
// variant: 0 (T == 1), 1 (multiply by the pair 1/T = hi + lo), 2 (divide by T; f64 only).
template <class T>
struct InvT {
  T hi, lo, t;
  int variant;
};

// (x - m) / T as a + lo (softmax_blocks-inl.h ShiftedArg, one lane); neg_m = -m.
template <class T>
SMX_HD void shifted_arg(T x, T neg_m, const InvT<T>& it, T& a_out, T& lo_out) {
  using C = ExpConsts<T>;
  T lo;
  T a = two_sum(x, neg_m, lo);
  if (it.variant != 0) {
    const bool ovf = is_inf(a) && is_finite(x);
    const T hi = a;
    if (it.variant == 1) {
      a = hi * it.hi;
      lo = C::fma(hi, it.hi, -a) + C::fma(hi, it.lo, lo * it.hi);
    } else {
      a = hi / it.t;
      lo = (C::fma(-a, it.t, hi) + lo) / it.t;
    }
    if (ovf) {
      a = it.variant == 1 ? x * it.hi + neg_m * it.hi : x / it.t + neg_m / it.t;
      lo = T(0);
    }
  }
  a_out = a;
  lo_out = lo;
}

// exp((a - b) / T) for a <= b in f64 (softmax_blocks-inl.h ExpDiff).
SMX_HD double exp_diff(double a, double b, const InvT<double>& it) {
  double arg, lo;
  shifted_arg(a, -b, it, arg, lo);
  return exp_nonpositive(arg, lo);
}

// s + v with the rounding error added to comp (TwoSumScalar).
SMX_HD double two_sum_acc(double s, double v, double& comp) {
  double lo;
  const double hi = two_sum(s, v, lo);
  comp += lo;
  return hi;
}

// ---- logarithms of row sums (src/cpu/kernels.hpp LogPair, LogOfSum, LogOfSumPair,
// DivideByT, LogSumExpOf). LogPair is plain IEEE arithmetic (the same bits as the CPU); the
// CPU's LogOfSum calls libm's log1p/log where the device calls CUDA's (both within 1 ulp), so
// log-softmax and logsumexp may differ from the CPU by one f64 rounding of log(sum).
SMX_HD double log_pair(double s_hi, double s_lo, const double* m_minus_1, double* lo_out) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  double num;
  int e = 0;
  if (m_minus_1 != nullptr) {
    num = *m_minus_1;
  } else {
    uint64_t bits = bits_as<uint64_t>(s_hi);
    e = static_cast<int>((bits >> 52) & 0x7FF) - 1022;
    bits = (bits & 0x000FFFFFFFFFFFFFull) | (uint64_t{1022} << 52);
    double m = bits_as<double>(bits);
    if (m < 0.70710678118654752440) {
      m *= 2.0;
      e -= 1;
    }
    const double scale = bits_as<double>(static_cast<uint64_t>(1023 - e) << 52);
    num = (m - 1.0) + s_lo * scale;
  }
  const double den = 2.0 + num;
  const double den_lo = (2.0 - den) + num;
  const double f = num / den;
  const double f_lo = (::fma(-f, den, num) - f * den_lo) / den;
  const double t = f * f;
  constexpr double kC[] = {2.0 / 23, 2.0 / 21, 2.0 / 19, 2.0 / 17, 2.0 / 15, 2.0 / 13,
                           2.0 / 11, 2.0 / 9,  2.0 / 7,  2.0 / 5,  2.0 / 3};
  double p = kC[0];
  for (int i = 1; i < 11; ++i) p = ::fma(p, t, kC[i]);
  const double de = static_cast<double>(e);
  const double tail = ::fma(f * t, p, ::fma(de, kLn2Lo, 2.0 * f_lo));
  if (lo_out == nullptr) return ::fma(de, kLn2Hi, 2.0 * f + tail);
  const double a = de * kLn2Hi, b = 2.0 * f;
  const double s = a + b;
  const double bb = s - a;
  const double c = ((a - (s - bb)) + (b - bb)) + tail;
  const double hi = s + c;
  *lo_out = c - (hi - s);
  return hi;
}

SMX_HD double log_of_sum(double ones, double rest) {
  if (ones == 1.0 && rest < 0.41421356237309504880) return ::log1p(rest);
  double lo;
  const double hi = two_sum(ones, rest, lo);
  return lo == 0.0 ? ::log(hi) : log_pair(hi, lo, nullptr, nullptr);
}

SMX_HD double log_of_sum_pair(double ones, double rest, double& lo) {
  if (ones == 1.0 && rest < 0.41421356237309504880) return log_pair(1.0 + rest, 0.0, &rest, &lo);
  double s_lo;
  const double hi = two_sum(ones, rest, s_lo);
  return log_pair(hi, s_lo, nullptr, &lo);
}

// v / T as hi + lo (DivideByT); t == 1 gives v exactly.
SMX_HD double divide_by_t(double v, double t, double& lo) {
  if (t == 1.0) {
    lo = 0.0;
    return v;
  }
  const double hi = v / t;
  lo = is_finite(hi) && ::fabs(hi) >= 0x1.0p-960 ? ::fma(-hi, t, v) / t : 0.0;
  return hi;
}

// logsumexp(x / T) from a row's finite max and sum = ones + rest (LogSumExpOf).
SMX_HD double logsumexp_of(double max, double ones, double rest, double t, bool careful) {
  double m_lo;
  const double m = divide_by_t(max, t, m_lo);
  const double v = m + (m_lo + log_of_sum(ones, rest));
  if (!careful || !(::fabs(v) < 0.5 * ::fabs(m))) return v;
  double l_lo;
  const double l = log_of_sum_pair(ones, rest, l_lo);
  double e;
  const double s = two_sum(m, l, e);
  return s + (e + (m_lo + l_lo));
}

// ---- storage conversions (src/base/half.hpp) ----
SMX_HD float bf16_to_f32(uint16_t h) { return bits_as<float>(static_cast<uint32_t>(h) << 16); }
SMX_HD uint16_t f32_to_bf16(float f) {
  const uint32_t b = bits_as<uint32_t>(f);
  if (f != f) return static_cast<uint16_t>((b >> 16) | 0x0040u);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}
SMX_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  const float v = em >= 0x7C00u ? bits_as<float>((em << 13) | 0x7F800000u)
                                : bits_as<float>(em << 13) * 0x1.0p112f;
  return bits_as<float>(bits_as<uint32_t>(v) | sign);
}
SMX_HD uint16_t f32_to_f16(float f) {
  const uint32_t b = bits_as<uint32_t>(f);
  const uint32_t sign = b & 0x80000000u;
  const uint32_t a = b ^ sign;
  uint32_t h;
  if (a > 0x7F800000u)
    h = 0x7E00u;
  else if (a >= 0x477FF000u)
    h = 0x7C00u;
  else if (a < 0x38800000u)
    h = bits_as<uint32_t>(bits_as<float>(a) + 0.5f) - 0x3F000000u;
  else
    h = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;
  return static_cast<uint16_t>(h | (sign >> 16));
}

// Storage tags: the element type in memory and its compute type.
struct F32 {
  using Mem = float;
  using Compute = float;
};
struct F64 {
  using Mem = double;
  using Compute = double;
};
struct BF16 {
  using Mem = uint16_t;
  using Compute = float;
};
struct F16 {
  using Mem = uint16_t;
  using Compute = float;
};

SMX_HD float widen(F32, float v) { return v; }
SMX_HD double widen(F64, double v) { return v; }
SMX_HD float widen(BF16, uint16_t v) { return bf16_to_f32(v); }
SMX_HD float widen(F16, uint16_t v) { return f16_to_f32(v); }
SMX_HD float narrow(F32, float v) { return v; }
SMX_HD double narrow(F64, double v) { return v; }
SMX_HD uint16_t narrow(BF16, float v) { return f32_to_bf16(v); }
SMX_HD uint16_t narrow(F16, float v) { return f32_to_f16(v); }

// One output value given in f64, rounded once to f32 and then to the storage (StoreScalar).
SMX_HD double narrow_scalar(F64, double v) { return v; }
template <class S>
SMX_HD typename S::Mem narrow_scalar(S s, double v) {
  return narrow(s, static_cast<float>(v));
}

}  // namespace softmax::cuda::num
