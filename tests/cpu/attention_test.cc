// tests/cpu/attention_test.cc: softmax::attention against a float64 reference that
// materialises the scores (src/ref/attention_reference.hpp): Sq != Sk under both alignments, GQA,
// fully masked rows, D in {64, 128}, bf16, every mask option; determinism across batch
// composition, threads, the decode split path and SIMD targets; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/dispatch.hpp"
#include "softmax/error.hpp"
#include "src/base/half.hpp"
#include "src/ref/attention_reference.hpp"
#include "src/cpu/attention_kernels.hpp"

namespace {

using softmax::Align;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::MaskOptions;
using softmax::TensorView;

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Shape {
  int64_t B, Hq, Hkv, Sq, Sk, D, Dv;
};

struct Inputs {
  Shape s;
  std::vector<float> q, k, v;
  Inputs(Shape sh, uint32_t seed, float range = 1.0f) : s(sh) {
    q = attn_ref::random_floats(static_cast<size_t>(s.B * s.Hq * s.Sq * s.D), seed, -range, range);
    k = attn_ref::random_floats(static_cast<size_t>(s.B * s.Hkv * s.Sk * s.D), seed + 1, -range,
                                range);
    v = attn_ref::random_floats(static_cast<size_t>(s.B * s.Hkv * s.Sk * s.Dv), seed + 2);
  }
  std::vector<int64_t> qs() const { return {s.B, s.Hq, s.Sq, s.D}; }
  std::vector<int64_t> ks() const { return {s.B, s.Hkv, s.Sk, s.D}; }
  std::vector<int64_t> vs() const { return {s.B, s.Hkv, s.Sk, s.Dv}; }
  std::vector<int64_t> os() const { return {s.B, s.Hq, s.Sq, s.Dv}; }
  size_t out_size() const { return static_cast<size_t>(s.B * s.Hq * s.Sq * s.Dv); }
  size_t rows() const { return static_cast<size_t>(s.B * s.Hq * s.Sq); }
};

// Library (f32) vs reference: returns max |out - ref| (and checks lse); out returned.
double check(const Inputs& in, const MaskOptions& o, attn_ref::Mask m, std::vector<float>& out,
             double lse_tol = 2e-5) {
  out.assign(in.out_size(), -7.0f);
  std::vector<float> lse(in.rows(), -7.0f);
  softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                     ConstTensorView(in.v.data(), in.vs()), TensorView(out.data(), in.os()),
                     TensorView(lse.data(), {in.s.B, in.s.Hq, in.s.Sq}), o);
  if (!o.scale) m.scale = 1.0 / std::sqrt(static_cast<double>(in.s.D));
  std::vector<double> ro, rl;
  attn_ref::attention(attn_ref::to_double(in.q), attn_ref::to_double(in.k),
                      attn_ref::to_double(in.v), in.s.B, in.s.Hq, in.s.Hkv, in.s.Sq, in.s.Sk,
                      in.s.D, in.s.Dv, m, ro, rl);
  double err = 0;
  for (size_t i = 0; i < out.size(); ++i) err = std::max(err, std::fabs(out[i] - ro[i]));
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(rl[i]))
      EXPECT_EQ(lse[i], -kInf) << "row " << i;
    else
      EXPECT_NEAR(lse[i], rl[i], lse_tol * std::max(1.0, std::fabs(rl[i]))) << "row " << i;
  }
  return err;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

constexpr double kTol = 1e-5;

TEST(Attention, PlainMatchesReferenceD64D128) {
  for (int64_t d : {64, 128}) {
    Inputs in({2, 4, 4, 70, 150, d, d}, 1);
    std::vector<float> out;
    EXPECT_LT(check(in, {}, {}, out), kTol) << "D " << d;
  }
}

TEST(Attention, CausalBothAlignmentsSqNeSk) {
  for (auto [sq, sk] : {std::pair<int64_t, int64_t>{37, 150}, {150, 37}, {65, 65}, {1, 200}}) {
    Inputs in({1, 2, 2, sq, sk, 64, 64}, 3);
    std::vector<float> tl, br;
    for (bool bottom : {false, true}) {
      MaskOptions o;
      o.causal = true;
      o.align = bottom ? Align::kBottomRight : Align::kTopLeft;
      attn_ref::Mask m;
      m.causal = true;
      m.bottom_right = bottom;
      EXPECT_LT(check(in, o, m, bottom ? br : tl), kTol) << sq << "x" << sk << " bottom " << bottom;
    }
    if (sq != sk) EXPECT_GT(max_diff(tl, br), 1e-3) << "alignment ignored";
  }
}

TEST(Attention, GroupedQueryAttention) {
  Inputs in({2, 8, 2, 33, 90, 64, 32}, 5);
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;
  attn_ref::Mask m;
  m.causal = true;
  m.bottom_right = true;
  std::vector<float> out;
  EXPECT_LT(check(in, o, m, out), kTol);
}

TEST(Attention, FullyMaskedRowsGiveZeroAndLseMinusInf) {
  // Bottom-right with Sq > Sk: the first Sq - Sk rows see no key. Also Sk = 0.
  Inputs in({1, 2, 1, 80, 20, 64, 64}, 7);
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;
  attn_ref::Mask m;
  m.causal = true;
  m.bottom_right = true;
  std::vector<float> out;
  EXPECT_LT(check(in, o, m, out), kTol);
  for (int64_t i = 0; i < 60; ++i)
    for (int64_t c = 0; c < 64; ++c) EXPECT_EQ(out[static_cast<size_t>(i * 64 + c)], 0.0f);
  Inputs empty({1, 2, 2, 3, 0, 8, 8}, 8);
  std::vector<float> o2(empty.out_size(), 5.0f), l2(empty.rows(), 5.0f);
  softmax::attention(
      ConstTensorView(empty.q.data(), empty.qs()), ConstTensorView(nullptr, DType::f32, empty.ks()),
      ConstTensorView(nullptr, DType::f32, empty.vs()), TensorView(o2.data(), empty.os()),
      TensorView(l2.data(), {1, 2, 3}), MaskOptions{});
  for (float x : o2) EXPECT_EQ(x, 0.0f);
  for (float x : l2) EXPECT_EQ(x, -kInf);
}

TEST(Attention, EveryMaskOption) {
  Inputs in({1, 2, 2, 40, 100, 64, 64}, 9, 2.0f);
  std::vector<float> base;
  check(in, {}, {}, base);
  std::vector<float> bias = attn_ref::random_floats(static_cast<size_t>(40 * 100), 10, -1, 1);
  std::vector<int32_t> keep(static_cast<size_t>(2 * 40 * 100));
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = (i * 13 % 5) != 0;
  for (int variant = 0; variant < 6; ++variant) {
    MaskOptions o;
    attn_ref::Mask m;
    switch (variant) {
      case 0:
        o.scale = 0.3;
        m.scale = 0.3;
        break;
      case 1:
        o.softcap = 1.0;
        m.softcap = 1.0;
        break;
      case 2:
        o.window_left = 5;
        o.window_right = 2;
        m.window_left = 5;
        m.window_right = 2;
        o.align = Align::kBottomRight;
        m.bottom_right = true;
        break;
      case 3:
        o.alibi_slopes = {0.25f, 0.0625f};
        m.slopes = {0.25, 0.0625};
        break;
      case 4:
        o.bias = ConstTensorView(bias.data(), {40, 100});
        m.bias.resize(2 * 4000);
        for (size_t i = 0; i < m.bias.size(); ++i) m.bias[i] = bias[i % 4000];
        break;
      case 5:
        o.mask = ConstTensorView(keep.data(), DType::i32, {1, 2, 40, 100});
        m.keep.assign(keep.begin(), keep.end());
        break;
    }
    if (!o.scale && variant != 0) m.scale = 1.0 / 8.0;
    std::vector<float> out;
    EXPECT_LT(check(in, o, m, out), kTol) << "variant " << variant;
    EXPECT_GT(max_diff(out, base), 1e-3) << "option ignored, variant " << variant;
  }
}

TEST(Attention, MaskedNaNScoresNeverLeak) {
  // A NaN bias at masked places and NaN keys only in masked positions: output stays finite.
  Inputs in({1, 1, 1, 16, 16, 64, 64}, 11);
  std::vector<float> bias(256, 0.0f);
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = i + 1; j < 16; ++j)
      bias[static_cast<size_t>(i * 16 + j)] = std::numeric_limits<float>::quiet_NaN();
  MaskOptions o;
  o.causal = true;
  o.bias = ConstTensorView(bias.data(), {16, 16});
  std::vector<float> out(in.out_size());
  softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                     ConstTensorView(in.v.data(), in.vs()), TensorView(out.data(), in.os()), o);
  for (float x : out) EXPECT_TRUE(std::isfinite(x));
}

TEST(Attention, BF16InputsAndOutput) {
  Inputs in({1, 4, 2, 50, 130, 128, 128}, 13);
  // Round inputs to bf16; the reference runs on the rounded values.
  auto to_bf16 = [](std::vector<float>& x) {
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      h[i] = softmax::detail::f32_to_bf16(x[i]);
      x[i] = softmax::detail::bf16_to_f32(h[i]);
    }
    return h;
  };
  auto qb = to_bf16(in.q), kb = to_bf16(in.k), vb = to_bf16(in.v);
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;
  attn_ref::Mask m;
  m.causal = true;
  m.bottom_right = true;
  std::vector<float> out32;
  EXPECT_LT(check(in, o, m, out32), kTol);
  std::vector<uint16_t> ob(in.out_size());
  std::vector<float> of(in.out_size());
  softmax::attention(ConstTensorView(qb.data(), DType::bf16, in.qs()),
                     ConstTensorView(kb.data(), DType::bf16, in.ks()),
                     ConstTensorView(vb.data(), DType::bf16, in.vs()),
                     TensorView(ob.data(), DType::bf16, in.os()), o);
  softmax::attention(ConstTensorView(qb.data(), DType::bf16, in.qs()),
                     ConstTensorView(kb.data(), DType::bf16, in.ks()),
                     ConstTensorView(vb.data(), DType::bf16, in.vs()),
                     TensorView(of.data(), in.os()), o);
  EXPECT_EQ(of, out32);  // bf16 inputs are exact in f32: the same computation
  for (size_t i = 0; i < ob.size(); ++i)
    ASSERT_EQ(ob[i], softmax::detail::f32_to_bf16(out32[i])) << i;
}

TEST(Attention, F16InputsAndNaNRows) {
  Inputs in({1, 2, 1, 70, 90, 64, 64}, 23);
  std::vector<uint16_t> qh(in.q.size()), kh(in.k.size()), vh(in.v.size());
  auto round = [](std::vector<float>& x, std::vector<uint16_t>& h) {
    for (size_t i = 0; i < x.size(); ++i) {
      h[i] = softmax::detail::f32_to_f16(x[i]);
      x[i] = softmax::detail::f16_to_f32(h[i]);
    }
  };
  round(in.q, qh);
  round(in.k, kh);
  round(in.v, vh);
  in.q[5 * 64 + 3] = std::numeric_limits<float>::quiet_NaN();  // row 5 of head 0
  qh[5 * 64 + 3] = 0x7E00;
  std::vector<float> ref;
  attn_ref::Mask m;
  m.scale = 0.125;
  std::vector<float> out(in.out_size()), lse(in.rows());
  softmax::attention(ConstTensorView(qh.data(), DType::f16, in.qs()),
                     ConstTensorView(kh.data(), DType::f16, in.ks()),
                     ConstTensorView(vh.data(), DType::f16, in.vs()),
                     TensorView(out.data(), in.os()), TensorView(lse.data(), {1, 2, 70}),
                     MaskOptions{});
  std::vector<double> ro, rl;
  attn_ref::attention(attn_ref::to_double(in.q), attn_ref::to_double(in.k),
                      attn_ref::to_double(in.v), 1, 2, 1, 70, 90, 64, 64, m, ro, rl);
  for (size_t r = 0; r < in.rows(); ++r) {
    for (size_t c = 0; c < 64; ++c) {
      const float o = out[r * 64 + c];
      if (r == 5) {
        EXPECT_TRUE(std::isnan(o));
      } else {
        EXPECT_NEAR(o, ro[r * 64 + c], kTol) << r << "," << c;
      }
    }
    if (r == 5) EXPECT_TRUE(std::isnan(lse[r]));
  }
}

TEST(Attention, DecodeRowEqualsSameRowInPrefill) {
  // The last query row of a bottom-right causal prefill and the same query alone (Sq = 1, the
  // one-query kernels) keep the same keys and must give the same bits; Dv = 20 and 64 cover the
  // vector and scalar tails.
  for (auto [dv, sk] : {std::pair<int64_t, int64_t>{20, 1100},
                        {64, 1100},
                        {8, 70},
                        {8, 49},
                        {8, 127},
                        {16, 2},
                        {16, 17},
                        {64, 63},
                        {64, 64},
                        {64, 65}}) {
    Inputs in({1, 2, 1, 70, sk, 64, dv}, 25);
    MaskOptions o;
    o.causal = true;
    o.align = Align::kBottomRight;
    std::vector<float> full(in.out_size()), one(static_cast<size_t>(2 * dv));
    softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                       ConstTensorView(in.v.data(), in.vs()), TensorView(full.data(), in.os()), o);
    // q rows 69 of both heads as a (1, 2, 1, 64) view.
    softmax::attention(ConstTensorView(in.q.data() + 69 * 64, DType::f32, {1, 2, 1, 64},
                                       {2 * 70 * 64, 70 * 64, 64, 1}),
                       ConstTensorView(in.k.data(), in.ks()), ConstTensorView(in.v.data(), in.vs()),
                       TensorView(one.data(), {1, 2, 1, dv}), o);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t c = 0; c < dv; ++c)
        EXPECT_EQ(one[static_cast<size_t>(h * dv + c)],
                  full[static_cast<size_t>((h * 70 + 69) * dv + c)])
            << dv << " " << sk << " " << h << " " << c;
    // The one-query kernels give the same bits on every SIMD target.
    for (const auto& t : softmax::available_targets()) {
      softmax::set_target(t);
      std::vector<float> again(one.size());
      softmax::attention(ConstTensorView(in.q.data() + 69 * 64, DType::f32, {1, 2, 1, 64},
                                         {2 * 70 * 64, 70 * 64, 64, 1}),
                         ConstTensorView(in.k.data(), in.ks()),
                         ConstTensorView(in.v.data(), in.vs()),
                         TensorView(again.data(), {1, 2, 1, dv}), o);
      EXPECT_EQ(again, one) << "target " << t;
    }
    softmax::set_target("");
  }
}

TEST(Attention, DecodeSplitsMatchReferenceAndSerialPath) {
  // Sq = 1 with Sk over several key splits: the split-parallel path (threads > items) must give
  // the bits of the one-thread path, and match the reference.
  Inputs in({1, 2, 1, 1, 3 * softmax::cpu::kAttnKeySplit + 77, 64, 64}, 15, 2.0f);
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;
  attn_ref::Mask m;
  m.causal = true;
  m.bottom_right = true;
  std::vector<float> out;
  o.threads = 8;
  EXPECT_LT(check(in, o, m, out), kTol);
  std::vector<float> serial(in.out_size());
  o.threads = 1;
  softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                     ConstTensorView(in.v.data(), in.vs()), TensorView(serial.data(), in.os()), o);
  EXPECT_EQ(out, serial);
}

TEST(Attention, DeterministicAcrossBatchThreadsAndTargets) {
  Inputs in({3, 2, 1, 100, 1500, 64, 64}, 17);
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;
  o.softcap = 3.0;
  std::vector<float> ref(in.out_size());
  auto run = [&](std::vector<float>& out, int threads) {
    out.assign(in.out_size(), 0.0f);
    MaskOptions t = o;
    t.threads = threads;
    softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                       ConstTensorView(in.v.data(), in.vs()), TensorView(out.data(), in.os()), t);
  };
  run(ref, 1);
  std::vector<float> out;
  run(out, 2);
  EXPECT_EQ(out, ref);
  for (const auto& t : softmax::available_targets()) {
    softmax::set_target(t);
    run(out, 2);
    EXPECT_EQ(out, ref) << "target " << t;
  }
  softmax::set_target("");
  // Batch element 1 alone (B = 1) gives the bits it had inside the batch of 3.
  const int64_t qn = 2 * 100 * 64, kn = 1 * 1500 * 64, on = 2 * 100 * 64;
  std::vector<float> one(static_cast<size_t>(on));
  softmax::attention(ConstTensorView(in.q.data() + qn, {1, 2, 100, 64}),
                     ConstTensorView(in.k.data() + kn, {1, 1, 1500, 64}),
                     ConstTensorView(in.v.data() + kn, {1, 1, 1500, 64}),
                     TensorView(one.data(), {1, 2, 100, 64}), o);
  EXPECT_TRUE(std::equal(one.begin(), one.end(), ref.begin() + on));
}

TEST(Attention, StridedKVCacheView) {
  // k, v as views into a larger (B, Hkv, capacity, D) cache, q as a (B, Sq, Hq, D) buffer
  // viewed as (B, Hq, Sq, D).
  const int64_t B = 1, H = 2, Sq = 3, Sk = 70, cap = 128, D = 16;
  Inputs in({B, H, H, Sq, Sk, D, D}, 19);
  std::vector<float> kc(static_cast<size_t>(B * H * cap * D), 99.0f), vc = kc, qt(in.q.size());
  for (int64_t h = 0; h < H; ++h)
    for (int64_t j = 0; j < Sk; ++j)
      for (int64_t x = 0; x < D; ++x) {
        kc[static_cast<size_t>((h * cap + j) * D + x)] =
            in.k[static_cast<size_t>((h * Sk + j) * D + x)];
        vc[static_cast<size_t>((h * cap + j) * D + x)] =
            in.v[static_cast<size_t>((h * Sk + j) * D + x)];
      }
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < Sq; ++i)
      for (int64_t x = 0; x < D; ++x)
        qt[static_cast<size_t>((i * H + h) * D + x)] =
            in.q[static_cast<size_t>((h * Sq + i) * D + x)];
  std::vector<float> expect, out(in.out_size());
  check(in, {}, {}, expect);
  softmax::attention(
      ConstTensorView(qt.data(), DType::f32, {B, H, Sq, D}, {Sq * H * D, D, H * D, 1}),
      ConstTensorView(kc.data(), DType::f32, {B, H, Sk, D}, {H * cap * D, cap * D, D, 1}),
      ConstTensorView(vc.data(), DType::f32, {B, H, Sk, D}, {H * cap * D, cap * D, D, 1}),
      TensorView(out.data(), in.os()), MaskOptions{});
  EXPECT_EQ(out, expect);
}

TEST(Attention, Errors) {
  Inputs in({1, 4, 2, 8, 8, 16, 16}, 21);
  std::vector<float> out(in.out_size(), 3.0f);
  auto call = [&](const std::vector<int64_t>& ks, const MaskOptions& o) {
    softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), ks),
                       ConstTensorView(in.v.data(), in.vs()), TensorView(out.data(), in.os()), o);
  };
  EXPECT_THROW(call({1, 3, 8, 16}, {}), softmax::Error);  // wrong Hkv for v / not a divisor
  EXPECT_THROW(call({1, 2, 8, 15}, {}), softmax::Error);  // D mismatch
  MaskOptions bad;
  bad.alibi_slopes = {1.0f};  // needs Hq = 4 slopes
  EXPECT_THROW(call(in.ks(), bad), softmax::Error);
  try {
    std::vector<double> qd(in.q.size());
    softmax::attention(ConstTensorView(qd.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                       ConstTensorView(in.v.data(), in.vs()), TensorView(out.data(), in.os()));
    FAIL();
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), softmax::ErrorKind::kDTypeMismatch);
    EXPECT_NE(std::string(e.what()).find("'q' = f64"), std::string::npos) << e.what();
  }
  // out overlapping q.
  try {
    softmax::attention(ConstTensorView(in.q.data(), in.qs()), ConstTensorView(in.k.data(), in.ks()),
                       ConstTensorView(in.v.data(), in.vs()), TensorView(in.q.data(), in.os()));
    FAIL();
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), softmax::ErrorKind::kOverlap);
    EXPECT_NE(std::string(e.what()).find("'out' = memory overlapping q"), std::string::npos)
        << e.what();
  }
  for (float x : out) EXPECT_EQ(x, 3.0f);
}

}  // namespace
