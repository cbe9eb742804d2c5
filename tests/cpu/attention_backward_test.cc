// tests/cpu/attention_backward_test.cc: softmax::attention_backward against (1) a float64
// reference that materialises the scores and backpropagates through them, and (2) central
// finite differences of a long double forward, on every mask option, GQA, Sq != Sk under both
// alignments, tiles that cross the 64-row boundary, fully masked rows, bf16; thread-count and
// SIMD-target determinism; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/dispatch.hpp"
#include "softmax/error.hpp"
#include "src/base/half.hpp"
#include "src/ref/attention_reference.hpp"

namespace {

using softmax::Align;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::MaskOptions;
using softmax::TensorView;

struct Shape {
  int64_t B, Hq, Hkv, Sq, Sk, D, Dv;
};

// Forward in type T (double or long double), materialised; returns out (B, Hq, Sq, Dv) and,
// when p != nullptr, the probabilities (B, Hq, Sq, Sk) and the transform's derivative.
template <typename T>
std::vector<T> forward(const Shape& s, const std::vector<T>& q, const std::vector<T>& k,
                       const std::vector<T>& v, const attn_ref::Mask& m,
                       std::vector<T>* p = nullptr, std::vector<T>* fac = nullptr) {
  const int64_t g = s.Hq / s.Hkv;
  std::vector<T> out(static_cast<size_t>(s.B * s.Hq * s.Sq * s.Dv), 0);
  if (p) p->assign(static_cast<size_t>(s.B * s.Hq * s.Sq * s.Sk), 0);
  if (fac) fac->assign(static_cast<size_t>(s.B * s.Hq * s.Sq * s.Sk), 0);
  std::vector<T> x(static_cast<size_t>(s.Sk));
  std::vector<bool> keep(static_cast<size_t>(s.Sk));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t i = 0; i < s.Sq; ++i) {
        const int64_t row = (b * s.Hq + h) * s.Sq + i;
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < s.Sk; ++j) {
          const int64_t idx = row * s.Sk + j;
          keep[j] = attn_ref::kept(m, idx, i, j, s.Sq, s.Sk);
          if (!keep[j]) continue;
          T acc = 0;
          for (int64_t c = 0; c < s.D; ++c)
            acc += q[static_cast<size_t>(row * s.D + c)] *
                   k[static_cast<size_t>(((b * s.Hkv + h / g) * s.Sk + j) * s.D + c)];
          T val = acc * static_cast<T>(m.scale), f = 1;
          if (m.softcap > 0) {
            const T th = std::tanh(val / static_cast<T>(m.softcap));
            val = static_cast<T>(m.softcap) * th;
            f = 1 - th * th;
          }
          if (!m.slopes.empty()) {
            val -= static_cast<T>(m.slopes[h]) *
                   std::fabs(static_cast<T>(i + (m.bottom_right ? s.Sk - s.Sq : 0) - j));
          }
          if (!m.bias.empty()) val += static_cast<T>(m.bias[idx]);
          x[j] = val;
          if (fac) (*fac)[idx] = f;
          mx = std::max(mx, val);
        }
        if (mx == -std::numeric_limits<T>::infinity()) continue;  // fully masked: 0
        T sum = 0;
        for (int64_t j = 0; j < s.Sk; ++j)
          if (keep[j]) sum += std::exp(x[j] - mx);
        for (int64_t j = 0; j < s.Sk; ++j) {
          if (!keep[j]) continue;
          const T pj = std::exp(x[j] - mx) / sum;
          if (p) (*p)[static_cast<size_t>(row * s.Sk + j)] = pj;
          for (int64_t c = 0; c < s.Dv; ++c)
            out[static_cast<size_t>(row * s.Dv + c)] +=
                pj * v[static_cast<size_t>(((b * s.Hkv + h / g) * s.Sk + j) * s.Dv + c)];
        }
      }
  return out;
}

struct Grads {
  std::vector<double> dq, dk, dv;
};

// Materialised backward in double: dS = P o (dP - rowsum(dP o P)), through the transform.
Grads reference(const Shape& s, const std::vector<double>& q, const std::vector<double>& k,
                const std::vector<double>& v, const std::vector<double>& dout,
                const attn_ref::Mask& m) {
  std::vector<double> p, fac;
  forward<double>(s, q, k, v, m, &p, &fac);
  const int64_t g = s.Hq / s.Hkv;
  Grads r{std::vector<double>(q.size()), std::vector<double>(k.size()),
          std::vector<double>(v.size())};
  std::vector<double> dp(static_cast<size_t>(s.Sk));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t i = 0; i < s.Sq; ++i) {
        const int64_t row = (b * s.Hq + h) * s.Sq + i;
        double dot = 0;
        for (int64_t j = 0; j < s.Sk; ++j) {
          double a = 0;
          for (int64_t c = 0; c < s.Dv; ++c)
            a += dout[row * s.Dv + c] * v[((b * s.Hkv + h / g) * s.Sk + j) * s.Dv + c];
          dp[j] = a;
          dot += a * p[row * s.Sk + j];
        }
        for (int64_t j = 0; j < s.Sk; ++j) {
          const double pj = p[row * s.Sk + j];
          const int64_t kv = (b * s.Hkv + h / g) * s.Sk + j;
          for (int64_t c = 0; c < s.Dv; ++c) r.dv[kv * s.Dv + c] += pj * dout[row * s.Dv + c];
          const double ds = pj * (dp[j] - dot) * fac[row * s.Sk + j] * m.scale;
          for (int64_t c = 0; c < s.D; ++c) {
            r.dq[row * s.D + c] += ds * k[kv * s.D + c];
            r.dk[kv * s.D + c] += ds * q[row * s.D + c];
          }
        }
      }
  return r;
}

// The library: forward (out, lse) then backward, all f32 (or bf16 when `bf16`).
struct Result {
  std::vector<float> dq, dk, dv;
};

std::vector<uint16_t> to_bf16(const std::vector<float>& a) {
  std::vector<uint16_t> r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = softmax::detail::f32_to_bf16(a[i]);
  return r;
}

Result library(const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
               const std::vector<float>& v, const std::vector<float>& dout, const MaskOptions& o,
               bool bf16 = false) {
  const std::vector<int64_t> qs{s.B, s.Hq, s.Sq, s.D}, ks{s.B, s.Hkv, s.Sk, s.D},
      vs{s.B, s.Hkv, s.Sk, s.Dv}, os{s.B, s.Hq, s.Sq, s.Dv};
  Result r{std::vector<float>(q.size(), -9.f), std::vector<float>(k.size(), -9.f),
           std::vector<float>(v.size(), -9.f)};
  std::vector<float> lse(static_cast<size_t>(s.B * s.Hq * s.Sq));
  if (!bf16) {
    std::vector<float> out(dout.size());
    softmax::attention(ConstTensorView(q.data(), qs), ConstTensorView(k.data(), ks),
                       ConstTensorView(v.data(), vs), TensorView(out.data(), os),
                       TensorView(lse.data(), {s.B, s.Hq, s.Sq}), o);
    softmax::attention_backward(ConstTensorView(q.data(), qs), ConstTensorView(k.data(), ks),
                                ConstTensorView(v.data(), vs), ConstTensorView(out.data(), os),
                                ConstTensorView(lse.data(), {s.B, s.Hq, s.Sq}),
                                ConstTensorView(dout.data(), os), TensorView(r.dq.data(), qs),
                                TensorView(r.dk.data(), ks), TensorView(r.dv.data(), vs), o);
    return r;
  }
  const auto qb = to_bf16(q), kb = to_bf16(k), vb = to_bf16(v), gb = to_bf16(dout);
  std::vector<uint16_t> out(dout.size());
  auto cv = [](const std::vector<uint16_t>& a, const std::vector<int64_t>& sh) {
    return ConstTensorView(a.data(), DType::bf16, sh);
  };
  softmax::attention(cv(qb, qs), cv(kb, ks), cv(vb, vs), TensorView(out.data(), DType::bf16, os),
                     TensorView(lse.data(), {s.B, s.Hq, s.Sq}), o);
  softmax::attention_backward(cv(qb, qs), cv(kb, ks), cv(vb, vs), cv(out, os),
                              ConstTensorView(lse.data(), {s.B, s.Hq, s.Sq}), cv(gb, os),
                              TensorView(r.dq.data(), qs), TensorView(r.dk.data(), ks),
                              TensorView(r.dv.data(), vs), o);
  return r;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::fabs(x));
  return m;
}

void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& ref,
                  double rel) {
  ASSERT_EQ(got.size(), ref.size());
  const double tol = rel * std::max(max_abs(ref), 1e-3);
  double err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << what << "[" << i << "]";
    err = std::max(err, std::fabs(got[i] - ref[i]));
  }
  EXPECT_LE(err, tol) << what << ": max |err| " << err << " vs tol " << tol;
}

struct Case {
  const char* name;
  Shape s;
  MaskOptions o;
  attn_ref::Mask m;
};

// Fills the options and the matching reference mask for a case.
Case make_case(const char* name, Shape s, uint32_t seed, bool causal, bool bottom_right, int64_t wl,
               int64_t wr, double softcap, bool alibi, bool bias, bool mask) {
  Case c{name, s, {}, {}};
  c.o.causal = c.m.causal = causal;
  c.o.align = bottom_right ? Align::kBottomRight : Align::kTopLeft;
  c.m.bottom_right = bottom_right;
  c.o.window_left = c.m.window_left = wl;
  c.o.window_right = c.m.window_right = wr;
  c.o.softcap = c.m.softcap = softcap;
  c.m.scale = 1.0 / std::sqrt(static_cast<double>(s.D));
  const size_t n = static_cast<size_t>(s.B * s.Hq * s.Sq * s.Sk);
  if (alibi) {
    for (int64_t h = 0; h < s.Hq; ++h) {
      c.o.alibi_slopes.push_back(0.1f * static_cast<float>(h + 1));
      c.m.slopes.push_back(c.o.alibi_slopes.back());
    }
  }
  static std::vector<std::vector<float>> bias_store;
  static std::vector<std::vector<int32_t>> mask_store;
  if (bias) {
    bias_store.push_back(attn_ref::random_floats(n, seed + 7));
    c.m.bias.assign(bias_store.back().begin(), bias_store.back().end());
    c.o.bias = ConstTensorView(bias_store.back().data(), {s.B, s.Hq, s.Sq, s.Sk});
  }
  if (mask) {
    auto r = attn_ref::random_floats(n, seed + 9, 0.0f, 1.0f);
    mask_store.emplace_back(n);
    for (size_t i = 0; i < n; ++i) mask_store.back()[i] = r[i] < 0.7f;
    // Query 1 of the first head sees nothing (a fully masked row).
    for (int64_t j = 0; j < s.Sk; ++j) mask_store.back()[static_cast<size_t>(s.Sk + j)] = 0;
    c.m.keep.assign(mask_store.back().begin(), mask_store.back().end());
    c.o.mask = ConstTensorView(mask_store.back().data(), DType::i32, {s.B, s.Hq, s.Sq, s.Sk});
  }
  return c;
}

std::vector<Case> cases() {
  const Shape big{2, 4, 2, 70, 75, 16, 8};  // tiles cross 64; GQA (2 query heads per kv head)
  return {
      make_case("plain", big, 1, false, false, -1, -1, 0, false, false, false),
      make_case("causal_top_left", {1, 2, 1, 50, 130, 8, 8}, 2, true, false, -1, -1, 0, false,
                false, false),
      make_case("causal_bottom_right", {1, 2, 2, 30, 100, 8, 12}, 3, true, true, -1, -1, 0, false,
                false, false),
      make_case("window", big, 4, false, false, 9, 5, 0, false, false, false),
      make_case("causal_window", big, 5, true, false, 20, -1, 0, false, false, false),
      make_case("softcap", big, 6, false, false, -1, -1, 0.5, false, false, false),
      make_case("alibi", big, 7, true, true, -1, -1, 0, true, false, false),
      make_case("bias", big, 8, false, false, -1, -1, 0, false, true, false),
      make_case("mask", big, 9, false, false, -1, -1, 0, false, false, true),
      make_case("everything", {1, 2, 1, 66, 67, 8, 4}, 10, true, true, 30, 3, 2.0, true, true,
                true),
      make_case("decode", {1, 4, 1, 1, 150, 32, 32}, 11, false, false, -1, -1, 0, false, false,
                false),
  };
}

struct Data {
  std::vector<float> q, k, v, dout;
};

Data random_data(const Shape& s, uint32_t seed) {
  return {attn_ref::random_floats(static_cast<size_t>(s.B * s.Hq * s.Sq * s.D), seed, -2, 2),
          attn_ref::random_floats(static_cast<size_t>(s.B * s.Hkv * s.Sk * s.D), seed + 1, -2, 2),
          attn_ref::random_floats(static_cast<size_t>(s.B * s.Hkv * s.Sk * s.Dv), seed + 2),
          attn_ref::random_floats(static_cast<size_t>(s.B * s.Hq * s.Sq * s.Dv), seed + 3)};
}

TEST(AttentionBackward, MatchesMaterialisedFloat64Reference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const Data d = random_data(c.s, 100);
    const Result r = library(c.s, d.q, d.k, d.v, d.dout, c.o);
    const Grads g = reference(c.s, attn_ref::to_double(d.q), attn_ref::to_double(d.k),
                              attn_ref::to_double(d.v), attn_ref::to_double(d.dout), c.m);
    expect_close("dq", r.dq, g.dq, 1e-4);
    expect_close("dk", r.dk, g.dk, 1e-4);
    expect_close("dv", r.dv, g.dv, 1e-4);
  }
}

TEST(AttentionBackward, FullyMaskedRowGetsZeroGradient) {
  const Case c =
      make_case("mask", {1, 2, 1, 5, 9, 4, 3}, 12, false, false, -1, -1, 0, false, false, true);
  const Data d = random_data(c.s, 7);
  const Result r = library(c.s, d.q, d.k, d.v, d.dout, c.o);
  for (int64_t x = 0; x < c.s.D; ++x) EXPECT_EQ(r.dq[static_cast<size_t>(c.s.D + x)], 0.0f);
}

// Central differences of L = sum(dout o out) in long double, on every element of q, k, v.
TEST(AttentionBackward, MatchesLongDoubleFiniteDifferences) {
  for (const Case& c0 : cases()) {
    Shape s = c0.s;
    if (s.Sq * s.Sk > 5000) continue;  // FD needs two forwards per element: small cases only
    SCOPED_TRACE(c0.name);
    const Data d = random_data(s, 200);
    const Result r = library(s, d.q, d.k, d.v, d.dout, c0.o);
    using LD = long double;
    std::vector<LD> q(d.q.begin(), d.q.end()), k(d.k.begin(), d.k.end()), v(d.v.begin(), d.v.end());
    auto loss = [&]() {
      const auto out = forward<LD>(s, q, k, v, c0.m);
      LD acc = 0;
      for (size_t i = 0; i < out.size(); ++i) acc += out[i] * static_cast<LD>(d.dout[i]);
      return acc;
    };
    auto fd = [&](std::vector<LD>& x, const std::vector<float>& got, const char* what) {
      const LD h = 1e-7L;
      std::vector<double> ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const LD x0 = x[i];
        x[i] = x0 + h;
        const LD up = loss();
        x[i] = x0 - h;
        const LD dn = loss();
        x[i] = x0;
        ref[i] = static_cast<double>((up - dn) / (2 * h));
      }
      expect_close(what, got, ref, 2e-4);
    };
    fd(q, r.dq, "dq");
    fd(k, r.dk, "dk");
    fd(v, r.dv, "dv");
  }
}

TEST(AttentionBackward, Bf16InputsComputeInF32) {
  const Case c = make_case("causal", {1, 2, 1, 40, 70, 16, 16}, 13, true, false, -1, -1, 0, false,
                           false, false);
  const Data d = random_data(c.s, 300);
  const Result r = library(c.s, d.q, d.k, d.v, d.dout, c.o, /*bf16=*/true);
  // Reference on the bf16-rounded inputs (and the bf16-rounded forward output is only used
  // through delta, so the tolerance covers its rounding: 2^-8 relative).
  auto rd = [](const std::vector<float>& a) {
    std::vector<double> o(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      o[i] = softmax::detail::bf16_to_f32(softmax::detail::f32_to_bf16(a[i]));
    return o;
  };
  const Grads g = reference(c.s, rd(d.q), rd(d.k), rd(d.v), rd(d.dout), c.m);
  expect_close("dq", r.dq, g.dq, 1e-2);
  expect_close("dk", r.dk, g.dk, 1e-2);
  expect_close("dv", r.dv, g.dv, 1e-3);
}

TEST(AttentionBackward, ResultsDoNotDependOnThreads) {
  Case c = make_case("causal", {2, 4, 2, 130, 140, 32, 32}, 14, true, false, -1, -1, 0, false,
                     false, false);
  const Data d = random_data(c.s, 400);
  c.o.threads = 1;
  const Result a = library(c.s, d.q, d.k, d.v, d.dout, c.o);
  c.o.threads = 2;
  const Result b = library(c.s, d.q, d.k, d.v, d.dout, c.o);
  EXPECT_EQ(a.dq, b.dq);
  EXPECT_EQ(a.dk, b.dk);
  EXPECT_EQ(a.dv, b.dv);
}

TEST(AttentionBackward, ResultsDoNotDependOnTheSimdTarget) {
  const Case c = make_case("softcap_window", {1, 2, 1, 70, 90, 24, 16}, 15, true, false, 30, -1,
                           1.5, false, false, false);
  const Data d = random_data(c.s, 500);
  const Result base = library(c.s, d.q, d.k, d.v, d.dout, c.o);
  for (const std::string& t : softmax::available_targets()) {
    SCOPED_TRACE(t);
    softmax::set_target(t);
    const Result r = library(c.s, d.q, d.k, d.v, d.dout, c.o);
    EXPECT_EQ(r.dq, base.dq);
    EXPECT_EQ(r.dk, base.dk);
    EXPECT_EQ(r.dv, base.dv);
  }
  softmax::set_target("");
}

TEST(AttentionBackward, EmptyKeysGiveZeroDq) {
  const Shape s{1, 1, 1, 3, 0, 4, 2};
  std::vector<float> q(12, 1.0f), out(6, 0.0f), dout(6, 1.0f), dq(12, -1.0f);
  std::vector<float> lse(3, -std::numeric_limits<float>::infinity());
  float dummy = 0;
  softmax::attention_backward(
      ConstTensorView(q.data(), {1, 1, 3, 4}), ConstTensorView(&dummy, {1, 1, 0, 4}),
      ConstTensorView(&dummy, {1, 1, 0, 2}), ConstTensorView(out.data(), {1, 1, 3, 2}),
      ConstTensorView(lse.data(), {1, 1, 3}), ConstTensorView(dout.data(), {1, 1, 3, 2}),
      TensorView(dq.data(), {1, 1, 3, 4}), TensorView(&dummy, {1, 1, 0, 4}),
      TensorView(&dummy, {1, 1, 0, 2}));
  for (float x : dq) EXPECT_EQ(x, 0.0f);
  (void)s;
}

TEST(AttentionBackward, Errors) {
  std::vector<float> q(16), k(16), v(16), out(16), lse(4), dout(16), dq(16), dk(16), dv(16);
  const std::vector<int64_t> sh{1, 1, 4, 4};
  auto call = [&](std::vector<int64_t> dout_shape, DType lse_dtype, float* dq_ptr) {
    softmax::attention_backward(
        ConstTensorView(q.data(), sh), ConstTensorView(k.data(), sh), ConstTensorView(v.data(), sh),
        ConstTensorView(out.data(), sh),
        ConstTensorView(lse.data(), lse_dtype, {1, 1, lse_dtype == DType::f32 ? 4 : 2}),
        ConstTensorView(dout.data(), dout_shape), TensorView(dq_ptr, sh), TensorView(dk.data(), sh),
        TensorView(dv.data(), sh));
  };
  EXPECT_NO_THROW(call(sh, DType::f32, dq.data()));
  try {
    call({1, 1, 4, 3}, DType::f32, dq.data());
    FAIL() << "no throw";
  } catch (const softmax::Error& e) {
    EXPECT_NE(std::string(e.what()).find("dout"), std::string::npos) << e.what();
  }
  try {
    call(sh, DType::f64, dq.data());
    FAIL() << "no throw";
  } catch (const softmax::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lse"), std::string::npos) << e.what();
  }
  try {
    call(sh, DType::f32, q.data());  // dq aliases q
    FAIL() << "no throw";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), softmax::ErrorKind::kOverlap) << e.what();
  }
}

}  // namespace
