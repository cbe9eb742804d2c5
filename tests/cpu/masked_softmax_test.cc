// tests/cpu/masked_softmax_test.cc: softmax::masked_softmax and masked_softmax_backward against
// the float64 reference of src/ref/attention_reference.hpp (rules of
// include/softmax/attention.hpp), one test per option that fails if the option were ignored, the
// edge semantics of include/softmax/attention.hpp, and the real stories260K attention scores.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "src/base/half.hpp"
#include "src/ref/attention_reference.hpp"

namespace {

using softmax::Align;
using softmax::ConstTensorView;
using softmax::DType;
using softmax::MaskOptions;
using softmax::TensorView;

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  int64_t B = 2, H = 3, Sq = 5, Sk = 9;
  std::vector<float> s;
  Case() { s = attn_ref::random_floats(static_cast<size_t>(B * H * Sq * Sk), 7, -4.0f, 4.0f); }
  std::vector<int64_t> shape() const { return {B, H, Sq, Sk}; }
};

// Runs the library (f32) and the reference; returns max |y - ref| and max |lse - ref_lse|, and
// the library output in y.
double run_both(const Case& c, const MaskOptions& o, const attn_ref::Mask& m, std::vector<float>& y,
                double* lse_err = nullptr) {
  y.assign(c.s.size(), -1.0f);
  std::vector<float> lse(static_cast<size_t>(c.B * c.H * c.Sq), 0.0f);
  softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()), TensorView(y.data(), c.shape()),
                          TensorView(lse.data(), {c.B, c.H, c.Sq}), o);
  std::vector<double> ry, rl;
  attn_ref::masked_softmax(attn_ref::to_double(c.s), c.B, c.H, c.Sq, c.Sk, m, ry, rl);
  double err = 0, lerr = 0;
  for (size_t i = 0; i < y.size(); ++i) err = std::max(err, std::fabs(y[i] - ry[i]));
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(rl[i])) {
      EXPECT_EQ(lse[i], static_cast<float>(rl[i])) << "row " << i;
    } else {
      lerr = std::max(lerr, std::fabs(lse[i] - rl[i]));
    }
  }
  if (lse_err) *lse_err = lerr;
  return err;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

// The plain (no option) result, to prove each option changes the output.
std::vector<float> plain(const Case& c) {
  std::vector<float> y;
  run_both(c, {}, {}, y);
  return y;
}

constexpr double kTol = 2e-6;

TEST(MaskedSoftmax, NoOptionsEqualsSoftmax) {
  Case c;
  std::vector<float> y, ys(c.s.size());
  EXPECT_LT(run_both(c, {}, {}, y), kTol);
  softmax::softmax(ConstTensorView(c.s.data(), c.shape()), TensorView(ys.data(), c.shape()));
  EXPECT_EQ(y, ys);
}

TEST(MaskedSoftmax, Scale) {
  Case c;
  MaskOptions o;
  o.scale = 0.37;
  attn_ref::Mask m;
  m.scale = 0.37;
  std::vector<float> y;
  double lerr;
  EXPECT_LT(run_both(c, o, m, y, &lerr), kTol);
  EXPECT_LT(lerr, 1e-5);
  EXPECT_GT(max_diff(y, plain(c)), 1e-2);
}

TEST(MaskedSoftmax, Softcap) {
  Case c;
  MaskOptions o;
  o.scale = 3.0;
  o.softcap = 2.5;
  attn_ref::Mask m;
  m.scale = 3.0;
  m.softcap = 2.5;
  std::vector<float> y, y_nocap;
  EXPECT_LT(run_both(c, o, m, y), kTol);
  m.softcap = 0;
  o.softcap = 0;
  run_both(c, o, m, y_nocap);
  EXPECT_GT(max_diff(y, y_nocap), 1e-2);
}

TEST(MaskedSoftmax, CausalBothAlignments) {
  for (int64_t sq : {5, 9, 12}) {  // Sq < Sk, ==, >
    Case c;
    c.Sq = sq;
    c.s = attn_ref::random_floats(static_cast<size_t>(c.B * c.H * c.Sq * c.Sk), 11, -3, 3);
    std::vector<float> tl, br;
    for (bool bottom : {false, true}) {
      MaskOptions o;
      o.causal = true;
      o.align = bottom ? Align::kBottomRight : Align::kTopLeft;
      attn_ref::Mask m;
      m.causal = true;
      m.bottom_right = bottom;
      EXPECT_LT(run_both(c, o, m, bottom ? br : tl), kTol) << "Sq " << sq << " bottom " << bottom;
    }
    if (sq != c.Sk) EXPECT_GT(max_diff(tl, br), 1e-2) << "alignment ignored, Sq " << sq;
    EXPECT_GT(max_diff(tl, plain(c)), 1e-2);
    // Sq > Sk with bottom-right: the first Sq - Sk rows see no key: exactly 0 (fully masked).
    if (sq > c.Sk) {
      for (int64_t j = 0; j < c.Sk; ++j) EXPECT_EQ(br[static_cast<size_t>(j)], 0.0f);
    }
  }
}

TEST(MaskedSoftmax, SlidingWindow) {
  Case c;
  c.Sq = c.Sk = 9;
  c.s = attn_ref::random_floats(static_cast<size_t>(c.B * c.H * 81), 5, -3, 3);
  for (int64_t wl : {-1, 0, 2}) {
    for (int64_t wr : {-1, 0, 3}) {
      MaskOptions o;
      o.window_left = wl;
      o.window_right = wr;
      attn_ref::Mask m;
      m.window_left = wl;
      m.window_right = wr;
      std::vector<float> y;
      EXPECT_LT(run_both(c, o, m, y), kTol) << wl << " " << wr;
      if (wl >= 0 || wr >= 0) EXPECT_GT(max_diff(y, plain(c)), 1e-2) << wl << " " << wr;
    }
  }
}

TEST(MaskedSoftmax, Alibi) {
  Case c;
  for (bool bottom : {false, true}) {
    MaskOptions o;
    o.alibi_slopes = {0.5f, 0.25f, 0.125f};
    o.align = bottom ? Align::kBottomRight : Align::kTopLeft;
    attn_ref::Mask m;
    m.slopes = {0.5, 0.25, 0.125};
    m.bottom_right = bottom;
    std::vector<float> y;
    EXPECT_LT(run_both(c, o, m, y), kTol);
    EXPECT_GT(max_diff(y, plain(c)), 1e-2);
  }
  MaskOptions bad;
  bad.alibi_slopes = {0.5f, 0.25f};
  Case c2;
  std::vector<float> y(c2.s.size(), 7.0f);
  EXPECT_THROW(softmax::masked_softmax(ConstTensorView(c2.s.data(), c2.shape()),
                                       TensorView(y.data(), c2.shape()), bad),
               softmax::Error);
  EXPECT_EQ(y[0], 7.0f);  // nothing written
}

TEST(MaskedSoftmax, BroadcastBias) {
  Case c;
  // bias (H, 1, Sk): broadcast over B and Sq.
  std::vector<float> bias = attn_ref::random_floats(static_cast<size_t>(c.H * c.Sk), 9, -2, 2);
  bias[3] = -kInf;  // a -inf bias entry masks arithmetically (exp gives 0)
  MaskOptions o;
  o.bias = ConstTensorView(bias.data(), {c.H, 1, c.Sk});
  attn_ref::Mask m;
  m.bias.resize(c.s.size());
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Sq; ++i)
        for (int64_t j = 0; j < c.Sk; ++j)
          m.bias[static_cast<size_t>(((b * c.H + h) * c.Sq + i) * c.Sk + j)] = bias[h * c.Sk + j];
  std::vector<float> y;
  EXPECT_LT(run_both(c, o, m, y), kTol);
  EXPECT_GT(max_diff(y, plain(c)), 1e-2);
  EXPECT_EQ(y[3], 0.0f);
  // Not broadcastable: (H, 2, Sk).
  std::vector<float> bad(static_cast<size_t>(c.H * 2 * c.Sk));
  o.bias = ConstTensorView(bad.data(), {c.H, 2, c.Sk});
  EXPECT_THROW(softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()),
                                       TensorView(y.data(), c.shape()), o),
               softmax::Error);
}

TEST(MaskedSoftmax, BoolMaskSelectsAndNeverLeaksNaN) {
  Case c;
  // keep mask (Sq, Sk) as i32 and as i64; masked scores set to NaN and the bias to +inf at
  // masked places: selection keeps both out.
  std::vector<int32_t> keep32(static_cast<size_t>(c.Sq * c.Sk));
  std::vector<int64_t> keep64(keep32.size());
  for (size_t i = 0; i < keep32.size(); ++i) keep64[i] = keep32[i] = (i * 7 % 3) != 0;
  for (int64_t j = 0; j < c.Sk; ++j)
    keep32[static_cast<size_t>(2 * c.Sk + j)] = keep64[static_cast<size_t>(2 * c.Sk + j)] =
        0;  // row 2: fully masked
  attn_ref::Mask m;
  m.keep.resize(c.s.size());
  std::vector<float> bias(c.s.size(), 0.0f);
  Case cn = c;
  for (size_t idx = 0; idx < c.s.size(); ++idx) {
    m.keep[idx] = keep32[idx % keep32.size()];
    if (!m.keep[idx]) {
      cn.s[idx] = std::numeric_limits<float>::quiet_NaN();
      bias[idx] = kInf;
    }
  }
  for (bool wide : {false, true}) {
    MaskOptions o;
    o.mask = wide ? ConstTensorView(keep64.data(), DType::i64, {c.Sq, c.Sk})
                  : ConstTensorView(keep32.data(), DType::i32, {c.Sq, c.Sk});
    o.bias = ConstTensorView(bias.data(), c.shape());
    std::vector<float> y;
    m.bias.assign(c.s.size(), 0.0);
    EXPECT_LT(run_both(cn, o, m, y), kTol);  // reference runs on NaN-free kept values
    for (float v : y) EXPECT_FALSE(std::isnan(v));
    for (int64_t b = 0; b < c.B * c.H; ++b)
      for (int64_t j = 0; j < c.Sk; ++j)
        EXPECT_EQ(y[static_cast<size_t>((b * c.Sq + 2) * c.Sk + j)], 0.0f);
  }
  // The mask dtype must be an integer type.
  std::vector<float> fm(keep32.size());
  MaskOptions o;
  o.mask = ConstTensorView(fm.data(), {c.Sq, c.Sk});
  std::vector<float> y(c.s.size());
  EXPECT_THROW(softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()),
                                       TensorView(y.data(), c.shape()), o),
               softmax::Error);
}

TEST(MaskedSoftmax, FullyMaskedRowGivesZeroAndLseMinusInf) {
  // Sk = 0 and a window that keeps nothing for early rows.
  Case c;
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;
  c.Sq = 12;  // Sq > Sk: rows 0..2 keep nothing
  c.s = attn_ref::random_floats(static_cast<size_t>(c.B * c.H * c.Sq * c.Sk), 3);
  std::vector<float> y(c.s.size(), 5.0f), lse(static_cast<size_t>(c.B * c.H * c.Sq), 5.0f);
  softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()), TensorView(y.data(), c.shape()),
                          TensorView(lse.data(), {c.B, c.H, c.Sq}), o);
  for (int64_t r = 0; r < 3; ++r) {
    EXPECT_EQ(lse[static_cast<size_t>(r)], -kInf);
    for (int64_t j = 0; j < c.Sk; ++j) EXPECT_EQ(y[static_cast<size_t>(r * c.Sk + j)], 0.0f);
  }
  EXPECT_GT(lse[3], -kInf);
  // All kept entries -inf (plain softmax would give NaN): fully masked too.
  std::vector<float> s(8, -kInf), y2(8, 5.0f), l2(1, 5.0f);
  softmax::masked_softmax(ConstTensorView(s.data(), {1, 8}), TensorView(y2.data(), {1, 8}),
                          TensorView(l2.data(), {1}), MaskOptions{});
  for (float v : y2) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(l2[0], -kInf);
  // Empty rows: lse -inf, nothing else written.
  std::vector<float> l3(2, 5.0f);
  softmax::masked_softmax(ConstTensorView(s.data(), {2, 0}), TensorView(y2.data(), {2, 0}),
                          TensorView(l3.data(), {2}), MaskOptions{});
  EXPECT_EQ(l3[0], -kInf);
}

TEST(MaskedSoftmax, DTypesAndLayouts) {
  Case c;
  MaskOptions o;
  o.causal = true;
  attn_ref::Mask m;
  m.causal = true;
  std::vector<float> y32;
  run_both(c, o, m, y32);
  // f32 in, bf16 out: the f32 result rounded once.
  std::vector<uint16_t> yb(c.s.size());
  softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()),
                          TensorView(yb.data(), DType::bf16, c.shape()), o);
  for (size_t i = 0; i < yb.size(); ++i) EXPECT_EQ(yb[i], softmax::detail::f32_to_bf16(y32[i]));
  // f64 throughout.
  std::vector<double> sd = attn_ref::to_double(c.s), yd(c.s.size());
  softmax::masked_softmax(ConstTensorView(sd.data(), c.shape()), TensorView(yd.data(), c.shape()),
                          o);
  std::vector<double> ry, rl;
  attn_ref::masked_softmax(sd, c.B, c.H, c.Sq, c.Sk, m, ry, rl);
  for (size_t i = 0; i < yd.size(); ++i) EXPECT_NEAR(yd[i], ry[i], 1e-14);
  // In place, and a transposed (strided) output.
  std::vector<float> inplace = c.s;
  softmax::masked_softmax(ConstTensorView(inplace.data(), c.shape()),
                          TensorView(inplace.data(), c.shape()), o);
  EXPECT_EQ(inplace, y32);
  std::vector<float> yt(c.s.size());
  // y viewed as (B, H, Sq, Sk) over a (B, H, Sk, Sq) buffer.
  TensorView tv(yt.data(), DType::f32, c.shape(), {c.H * c.Sq * c.Sk, c.Sq * c.Sk, 1, c.Sq});
  softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()), tv, o);
  for (int64_t r = 0; r < c.B * c.H; ++r)
    for (int64_t i = 0; i < c.Sq; ++i)
      for (int64_t j = 0; j < c.Sk; ++j)
        EXPECT_EQ(yt[static_cast<size_t>(r * c.Sq * c.Sk + j * c.Sq + i)],
                  y32[static_cast<size_t>((r * c.Sq + i) * c.Sk + j)]);
  // Threads do not change results.
  MaskOptions o1 = o, o2 = o;
  o1.threads = 1;
  o2.threads = 2;
  std::vector<float> big = attn_ref::random_floats(64 * 1024, 1), a(big.size()), b(big.size());
  softmax::masked_softmax(ConstTensorView(big.data(), {4, 16, 1024}),
                          TensorView(a.data(), {4, 16, 1024}), o1);
  softmax::masked_softmax(ConstTensorView(big.data(), {4, 16, 1024}),
                          TensorView(b.data(), {4, 16, 1024}), o2);
  EXPECT_EQ(a, b);
}

TEST(MaskedSoftmax, Errors) {
  Case c;
  std::vector<float> y(c.s.size(), 3.0f);
  auto call = [&](const MaskOptions& o) {
    softmax::masked_softmax(ConstTensorView(c.s.data(), c.shape()), TensorView(y.data(), c.shape()),
                            o);
  };
  MaskOptions o;
  o.scale = std::numeric_limits<double>::infinity();
  EXPECT_THROW(call(o), softmax::Error);
  o = {};
  o.softcap = -1;
  EXPECT_THROW(call(o), softmax::Error);
  o = {};
  o.window_left = -2;
  EXPECT_THROW(call(o), softmax::Error);
  try {
    o = {};
    o.window_right = -5;
    call(o);
    FAIL();
  } catch (const softmax::Error& e) {
    EXPECT_NE(std::string(e.what()).find("masked_softmax"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("window_right"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("-5"), std::string::npos);
  }
  std::vector<float> one(4);
  EXPECT_THROW(
      softmax::masked_softmax(ConstTensorView(one.data(), {4}), TensorView(one.data(), {4})),
      softmax::Error);  // rank 1
  for (float v : y) EXPECT_EQ(v, 3.0f);
}

// ---- backward ----

// Loss L = sum_j w_j y_j; dL/ds by central differences on the f64 op vs the analytic backward.
TEST(MaskedSoftmaxBackward, MatchesFiniteDifferencesWithEveryOption) {
  const int64_t B = 1, H = 2, Sq = 4, Sk = 6;
  const std::vector<int64_t> shape{B, H, Sq, Sk};
  std::vector<double> s = attn_ref::to_double(attn_ref::random_floats(48, 21, -2, 2));
  std::vector<double> w = attn_ref::to_double(attn_ref::random_floats(48, 22, -1, 1));
  std::vector<double> bias = attn_ref::to_double(attn_ref::random_floats(24, 23, -1, 1));
  for (int variant = 0; variant < 3; ++variant) {
    MaskOptions o;
    o.scale = 0.8;
    o.causal = true;
    o.align = Align::kBottomRight;
    if (variant >= 1) o.softcap = 1.5;
    if (variant >= 2) {
      o.alibi_slopes = {0.3f, 0.1f};
      o.bias = ConstTensorView(bias.data(), {Sq, Sk});
      o.window_left = 2;
    }
    auto loss = [&](const std::vector<double>& x) {
      std::vector<double> y(x.size());
      softmax::masked_softmax(ConstTensorView(x.data(), shape), TensorView(y.data(), shape), o);
      double L = 0;
      for (size_t i = 0; i < y.size(); ++i) L += w[i] * y[i];
      return L;
    };
    std::vector<double> y(s.size()), ds(s.size());
    softmax::masked_softmax(ConstTensorView(s.data(), shape), TensorView(y.data(), shape), o);
    softmax::masked_softmax_backward(
        ConstTensorView(w.data(), shape), ConstTensorView(y.data(), shape),
        ConstTensorView(s.data(), shape), TensorView(ds.data(), shape), o);
    for (size_t i = 0; i < s.size(); ++i) {
      std::vector<double> p = s, m = s;
      p[i] += 1e-6;
      m[i] -= 1e-6;
      const double fd = (loss(p) - loss(m)) / 2e-6;
      EXPECT_NEAR(ds[i], fd, 1e-7) << "variant " << variant << " element " << i;
    }
    // Ignoring softcap in backward would change the gradient:
    if (variant == 1) {
      MaskOptions nc = o;
      nc.softcap = 0;
      std::vector<double> ds2(s.size());
      softmax::masked_softmax_backward(
          ConstTensorView(w.data(), shape), ConstTensorView(y.data(), shape),
          ConstTensorView(s.data(), shape), TensorView(ds2.data(), shape), nc);
      double d = 0;
      for (size_t i = 0; i < s.size(); ++i) d = std::max(d, std::fabs(ds[i] - ds2[i]));
      EXPECT_GT(d, 1e-3);
    }
  }
}

TEST(MaskedSoftmaxBackward, MaskedAndFullyMaskedGiveExactZeroEvenWithNaNGrad) {
  const int64_t Sq = 6, Sk = 4;
  std::vector<float> s = attn_ref::random_floats(24, 5), y(24), dy(24, 1.0f), dx(24, 9.0f);
  MaskOptions o;
  o.causal = true;
  o.align = Align::kBottomRight;  // rows 0, 1 fully masked
  softmax::masked_softmax(ConstTensorView(s.data(), {Sq, Sk}), TensorView(y.data(), {Sq, Sk}), o);
  for (int64_t i = 0; i < Sq; ++i)
    for (int64_t j = 0; j < Sk; ++j)
      if (j > i - 2) dy[static_cast<size_t>(i * Sk + j)] = std::numeric_limits<float>::quiet_NaN();
  softmax::masked_softmax_backward(ConstTensorView(dy.data(), {Sq, Sk}),
                                   ConstTensorView(y.data(), {Sq, Sk}), ConstTensorView(),
                                   TensorView(dx.data(), {Sq, Sk}), o);
  for (int64_t i = 0; i < Sq; ++i)
    for (int64_t j = 0; j < Sk; ++j)
      if (j > i - 2) EXPECT_EQ(dx[static_cast<size_t>(i * Sk + j)], 0.0f) << i << "," << j;
  // Softcap without scores is an error.
  o.softcap = 2;
  EXPECT_THROW(softmax::masked_softmax_backward(
                   ConstTensorView(dy.data(), {Sq, Sk}), ConstTensorView(y.data(), {Sq, Sk}),
                   ConstTensorView(), TensorView(dx.data(), {Sq, Sk}), o),
               softmax::Error);
}

// ---- the real model's scores ----

TEST(MaskedSoftmax, Stories260KCausalEqualsSoftmaxOfMinusInfRows) {
  std::vector<int64_t> shape;
  std::vector<float> scores;
  if (!attn_ref::read_npy_f32(std::string(SOFTMAX_SHARED_DATA) + "/stories260K_attn_scores.npy",
                              shape, scores)) {
    GTEST_SKIP() << "shared data not available";
  }
  ASSERT_EQ(shape, (std::vector<int64_t>{5, 8, 128, 128}));
  // Garbage (NaN) above the diagonal: causal selection must ignore it.
  std::vector<float> garbage = scores;
  int64_t minus_inf = 0;
  for (int64_t r = 0; r < 5 * 8; ++r)
    for (int64_t i = 0; i < 128; ++i)
      for (int64_t j = 0; j < 128; ++j) {
        const size_t idx = static_cast<size_t>((r * 128 + i) * 128 + j);
        if (j > i) {
          minus_inf += scores[idx] == -kInf;
          garbage[idx] = std::numeric_limits<float>::quiet_NaN();
        } else {
          ASSERT_TRUE(std::isfinite(scores[idx]));
        }
      }
  ASSERT_EQ(minus_inf, 40 * 128 * 127 / 2);  // the file is causal with -inf above the diagonal
  std::vector<float> plain(scores.size()), masked(scores.size()), lse_plain(40 * 128),
      lse_masked(40 * 128);
  softmax::softmax(ConstTensorView(scores.data(), shape), TensorView(plain.data(), shape));
  softmax::logsumexp(ConstTensorView(scores.data(), shape),
                     TensorView(lse_plain.data(), {5, 8, 128}));
  MaskOptions o;
  o.causal = true;
  softmax::masked_softmax(ConstTensorView(garbage.data(), shape), TensorView(masked.data(), shape),
                          TensorView(lse_masked.data(), {5, 8, 128}), o);
  EXPECT_EQ(masked, plain);  // bit for bit
  for (size_t i = 0; i < lse_plain.size(); ++i) EXPECT_FLOAT_EQ(lse_masked[i], lse_plain[i]);
  // And equal to the float64 reference (scale 1, causal) within the softmax bound.
  attn_ref::Mask m;
  m.causal = true;
  std::vector<double> ry, rl;
  attn_ref::masked_softmax(attn_ref::to_double(scores), 5, 8, 128, 128, m, ry, rl);
  double err = 0;
  for (size_t i = 0; i < ry.size(); ++i)
    err = std::max(err, std::fabs(masked[i] - ry[i]) / std::max(ry[i], 1e-30));
  EXPECT_LT(err, 1e-6);
}

}  // namespace
