// tests/capi/capi_test.cc: the C ABI (softmax/softmax.h) through the shared library: every C
// function gives bit for bit what the C++ function it wraps gives with the same options (so every
// options field reaches the op), errors map onto the status enum with softmax::Error's message,
// nothing is written on error, struct_size versioning, the thread-local last error, contexts.
// Links libsoftmax.so only, so the C++ calls here also check that the C++ API is exported.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "softmax/softmax.h"
#include "softmax/softmax.hpp"
#include "softmax/version.hpp"

namespace {

using Shape = std::vector<int64_t>;

softmax_tensor_t T(void* data, softmax_dtype_t dtype, const Shape& shape) {
  return softmax_tensor_make(data, dtype, static_cast<int64_t>(shape.size()), shape.data());
}
softmax_tensor_t T(std::vector<float>& v, const Shape& s) {
  return T(v.data(), SOFTMAX_DTYPE_F32, s);
}
softmax_tensor_t T(std::vector<double>& v, const Shape& s) {
  return T(v.data(), SOFTMAX_DTYPE_F64, s);
}
softmax_tensor_t T(std::vector<int64_t>& v, const Shape& s) {
  return T(v.data(), SOFTMAX_DTYPE_I64, s);
}

std::vector<float> Random(std::size_t n, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

template <class V>
bool SameBits(const V& a, const V& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

// The message and status of a C++ call that throws softmax::Error.
template <class F>
std::string CppError(F&& f) {
  try {
    f();
  } catch (const softmax::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CapiTest, VersionAndStatusNames) {
  EXPECT_STREQ(softmax_version(), SOFTMAX_VERSION_STRING);
  EXPECT_EQ(softmax_abi_version(), SOFTMAX_ABI_VERSION);
  EXPECT_EQ(SOFTMAX_ABI_VERSION, SOFTMAX_VERSION_MAJOR);
  EXPECT_STREQ(softmax_status_name(SOFTMAX_STATUS_OK), "ok");
  EXPECT_STREQ(softmax_status_name(SOFTMAX_STATUS_OUT_OF_MEMORY), "out of memory");
  EXPECT_STREQ(softmax_status_name(static_cast<softmax_status_t>(77)), "unknown status");
}

TEST(CapiTest, StructsHaveNoPaddingAndInitMatchesCppDefaults) {
  EXPECT_EQ(sizeof(softmax_tensor_t), 40u);
  EXPECT_EQ(sizeof(softmax_options_t), 4 * 8u);
  EXPECT_EQ(sizeof(softmax_cross_entropy_options_t), 10 * 8u);
  EXPECT_EQ(sizeof(softmax_sampling_params_t), 15 * 8u);
  EXPECT_EQ(sizeof(softmax_mask_options_t), 11 * 8u);
  softmax_options_t o;
  softmax_options_init(&o);
  const softmax::SoftmaxOptions so;
  EXPECT_EQ(o.axis, so.axis);
  EXPECT_EQ(o.temperature, so.temperature);
  EXPECT_EQ(o.keepdims != 0, so.keepdims);
  softmax_cross_entropy_options_t c;
  softmax_cross_entropy_options_init(&c);
  const softmax::CrossEntropyOptions co;
  EXPECT_EQ(c.ignore_index, co.ignore_index);
  EXPECT_EQ(c.reduction, static_cast<int64_t>(co.reduction));
  EXPECT_EQ(c.label_smoothing, co.label_smoothing);
  EXPECT_EQ(c.z_loss, co.z_loss);
  EXPECT_EQ(c.normalizer, co.normalizer);
  EXPECT_EQ(c.grad_scale, co.grad_scale);
  EXPECT_EQ(c.vocab_chunk, co.vocab_chunk);
  softmax_sampling_params_t p;
  softmax_sampling_params_init(&p);
  const softmax::SamplingParams sp;
  EXPECT_EQ(p.temperature, sp.temperature[0]);
  EXPECT_EQ(p.top_k, sp.top_k[0]);
  EXPECT_EQ(p.top_p, sp.top_p[0]);
  EXPECT_EQ(p.min_p, sp.min_p[0]);
  EXPECT_EQ(p.method, static_cast<int64_t>(sp.method));
  softmax_mask_options_t m;
  softmax_mask_options_init(&m);
  const softmax::MaskOptions mo;
  EXPECT_EQ(m.scale == nullptr, !mo.scale.has_value());
  EXPECT_EQ(m.softcap, mo.softcap);
  EXPECT_EQ(m.causal != 0, mo.causal);
  EXPECT_EQ(m.align, static_cast<int64_t>(mo.align));
  EXPECT_EQ(m.window_left, mo.window_left);
  EXPECT_EQ(m.window_right, mo.window_right);
}

TEST(CapiTest, SoftmaxMatchesLongDoubleReference) {
  std::vector<float> x = Random(3 * 50, 4.0f, 1), y(x.size());
  const Shape s{3, 50};
  const softmax_tensor_t tx = T(x, s), ty = T(y, s);
  softmax_options_t o;
  softmax_options_init(&o);
  o.temperature = 0.7;
  ASSERT_EQ(softmax_softmax(nullptr, &tx, &ty, &o), SOFTMAX_STATUS_OK) << softmax_last_error();
  EXPECT_STREQ(softmax_last_error(), "");
  for (int r = 0; r < 3; ++r) {
    long double m = -INFINITY, sum = 0;
    for (int i = 0; i < 50; ++i) m = std::max<long double>(m, x[r * 50 + i]);
    for (int i = 0; i < 50; ++i) sum += std::exp((x[r * 50 + i] - m) / 0.7L);
    for (int i = 0; i < 50; ++i) {
      const long double want = std::exp((x[r * 50 + i] - m) / 0.7L) / sum;
      EXPECT_LE(std::fabs(y[r * 50 + i] - want), 4 * 0x1p-24L * want) << r << "," << i;
    }
  }
}

TEST(CapiTest, AxisOpsMatchCpp) {
  const Shape s{3, 5, 7}, reduced{3, 1, 7};
  std::vector<float> x = Random(3 * 5 * 7, 3.0f, 2);
  softmax_options_t o;
  softmax_options_init(&o);
  o.axis = 1;
  o.temperature = 0.6;
  o.keepdims = 1;
  softmax::SoftmaxOptions co;
  co.axis = 1;
  co.temperature = 0.6;
  co.keepdims = true;
  const softmax_tensor_t tx = T(x, s);
  using CFn = softmax_status_t (*)(softmax_context_t*, const softmax_tensor_t*,
                                   const softmax_tensor_t*, const softmax_options_t*);
  using CppFn = void (*)(softmax::ConstTensorView, softmax::TensorView,
                         const softmax::SoftmaxOptions&, const softmax::Context&);
  struct Case {
    CFn c;
    CppFn cpp;
    bool reduces;
  };
  const Case cases[] = {{softmax_softmax, softmax::softmax, false},
                        {softmax_log_softmax, softmax::log_softmax, false},
                        {softmax_logsumexp, softmax::logsumexp, true},
                        {softmax_hardmax, softmax::hardmax, false}};
  for (const Case& c : cases) {
    const Shape& ys = c.reduces ? reduced : s;
    std::vector<float> y(x.size(), -1.0f), want(x.size(), -1.0f);
    const softmax_tensor_t ty = T(y, ys);
    ASSERT_EQ(c.c(nullptr, &tx, &ty, &o), SOFTMAX_STATUS_OK) << softmax_last_error();
    c.cpp(softmax::ConstTensorView(x.data(), s), softmax::TensorView(want.data(), ys), co, {});
    EXPECT_TRUE(SameBits(y, want));
  }
  std::vector<int64_t> idx(21, -1), want_idx(21, -1);
  const softmax_tensor_t ti = T(idx, reduced);
  ASSERT_EQ(softmax_argmax(nullptr, &tx, &ti, &o), SOFTMAX_STATUS_OK) << softmax_last_error();
  softmax::argmax(softmax::ConstTensorView(x.data(), s),
                  softmax::TensorView(want_idx.data(), softmax::DType::i64, reduced), co);
  EXPECT_EQ(idx, want_idx);
}

TEST(CapiTest, SigmoidAndBackwardMatchCppWithStrides) {
  // A transposed (7, 5) view of a (5, 7) buffer: strides (1, 7).
  const Shape s{7, 5};
  const int64_t strides[2] = {1, 7};
  std::vector<float> y = Random(35, 0.3f, 3), dy = Random(35, 1.0f, 4);
  for (float& v : y) v = std::fabs(v) / 5;
  softmax_tensor_t ty = T(y, s), tdy = T(dy, s);
  ty.strides = strides;
  tdy.strides = strides;
  softmax::ConstTensorView cy(y.data(), softmax::DType::f32, s, {1, 7});
  softmax::ConstTensorView cdy(dy.data(), softmax::DType::f32, s, {1, 7});
  softmax_options_t o;
  softmax_options_init(&o);
  o.axis = 0;
  o.temperature = 2.0;
  softmax::SoftmaxOptions co;
  co.axis = 0;
  co.temperature = 2.0;
  std::vector<float> dx(35), want(35);
  const softmax_tensor_t tdx = T(dx, s);
  ASSERT_EQ(softmax_softmax_backward(nullptr, &ty, &tdy, &tdx, &o), SOFTMAX_STATUS_OK);
  softmax::softmax_backward(cy, cdy, softmax::TensorView(want.data(), s), co);
  EXPECT_TRUE(SameBits(dx, want));
  ASSERT_EQ(softmax_log_softmax_backward(nullptr, &ty, &tdy, &tdx, &o), SOFTMAX_STATUS_OK);
  softmax::log_softmax_backward(cy, cdy, softmax::TensorView(want.data(), s), co);
  EXPECT_TRUE(SameBits(dx, want));
  ASSERT_EQ(softmax_sigmoid(nullptr, &tdy, &tdx), SOFTMAX_STATUS_OK);
  softmax::sigmoid(cdy, softmax::TensorView(want.data(), s));
  EXPECT_TRUE(SameBits(dx, want));
}

TEST(CapiTest, LossesMatchCpp) {
  const int64_t n = 4, c = 6;
  std::vector<float> logits = Random(n * c, 2.0f, 5);
  std::vector<int64_t> targets{2, -100, 5, 0};
  std::vector<float> weight{1.0f, 0.5f, 2.0f, 1.5f, 1.0f, 0.25f}, gout{1.0f, 2.0f, -0.5f, 3.0f};
  const Shape ls{n, c}, rs{n}, ws{c};
  softmax_tensor_t tl = T(logits, ls), tt = T(targets, rs), tw = T(weight, ws), tg = T(gout, rs);
  softmax_cross_entropy_options_t o;
  softmax_cross_entropy_options_init(&o);
  o.weight = &tw;
  o.reduction = SOFTMAX_REDUCTION_NONE;
  o.label_smoothing = 0.1;
  o.z_loss = 1e-3;
  o.grad_scale = 0.5;
  o.grad_output = &tg;
  softmax::CrossEntropyOptions co;
  co.weight = softmax::ConstTensorView(weight.data(), ws);
  co.reduction = softmax::Reduction::kNone;
  co.label_smoothing = 0.1;
  co.z_loss = 1e-3;
  co.grad_scale = 0.5;
  co.grad_output = softmax::ConstTensorView(gout.data(), rs);
  std::vector<float> loss(n), grad(n * c), lse(n), lp(n * c);
  std::vector<float> wloss(n), wgrad(n * c), wlse(n), wlp(n * c);
  softmax_tensor_t tloss = T(loss, rs), tgrad = T(grad, ls), tlse = T(lse, rs), tlp = T(lp, ls);
  ASSERT_EQ(softmax_cross_entropy(nullptr, &tl, &tt, &tloss, &tgrad, &tlse, &tlp, &o),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::CrossEntropyOutputs out;
  out.loss = softmax::TensorView(wloss.data(), rs);
  out.grad = softmax::TensorView(wgrad.data(), ls);
  out.lse = softmax::TensorView(wlse.data(), rs);
  out.log_probs = softmax::TensorView(wlp.data(), ls);
  const softmax::ConstTensorView cl(logits.data(), ls);
  const softmax::ConstTensorView ct(targets.data(), softmax::DType::i64, rs);
  softmax::cross_entropy(cl, ct, out, co);
  EXPECT_TRUE(SameBits(loss, wloss));
  EXPECT_TRUE(SameBits(grad, wgrad));
  EXPECT_TRUE(SameBits(lse, wlse));
  EXPECT_TRUE(SameBits(lp, wlp));

  // nll_loss on those log-probs, reduction sum with a normalizer.
  o.z_loss = 0;
  o.grad_output = nullptr;
  o.reduction = SOFTMAX_REDUCTION_SUM;
  o.normalizer = 3.0;
  co.z_loss = 0;
  co.grad_output.reset();
  co.reduction = softmax::Reduction::kSum;
  co.normalizer = 3.0;
  double sum = 0, wsum = 0;
  const Shape scalar{};
  softmax_tensor_t tsum = T(&sum, SOFTMAX_DTYPE_F64, scalar);
  ASSERT_EQ(softmax_nll_loss(nullptr, &tlp, &tt, &tsum, &tgrad, &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::CrossEntropyOutputs nout;
  nout.loss = softmax::TensorView(&wsum, scalar);
  nout.grad = softmax::TensorView(wgrad.data(), ls);
  softmax::nll_loss(softmax::ConstTensorView(lp.data(), ls), ct, nout, co);
  EXPECT_EQ(sum, wsum);
  EXPECT_TRUE(SameBits(grad, wgrad));
}

TEST(CapiTest, LinearCrossEntropyMatchesCpp) {
  const int64_t n = 5, d = 8, v = 11;
  std::vector<float> hidden = Random(n * d, 1.0f, 6), weight = Random(v * d, 0.5f, 7);
  std::vector<int64_t> targets{3, 10, 0, 7, 7};
  const Shape hs{n, d}, ws{v, d}, rs{n}, scalar{};
  softmax_tensor_t th = T(hidden, hs), tw = T(weight, ws), tt = T(targets, rs);
  softmax_cross_entropy_options_t o;
  softmax_cross_entropy_options_init(&o);
  o.vocab_chunk = 3;
  o.label_smoothing = 0.05;
  softmax::CrossEntropyOptions co;
  co.vocab_chunk = 3;
  co.label_smoothing = 0.05;
  float loss = 0, wloss = 0;
  std::vector<float> gh(n * d), gw(v * d), lse(n), wgh(n * d), wgw(v * d), wlse(n);
  softmax_tensor_t tloss = T(&loss, SOFTMAX_DTYPE_F32, scalar), tgh = T(gh, hs), tgw = T(gw, ws),
                   tlse = T(lse, rs);
  softmax_context_t* ctx = nullptr;
  ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_context_set_threads(ctx, 1), SOFTMAX_STATUS_OK);
  co.threads = 1;
  ASSERT_EQ(softmax_linear_cross_entropy(ctx, &th, &tw, &tt, &tloss, &tgh, &tgw, &tlse, &o),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::LinearCrossEntropyOutputs out;
  out.loss = softmax::TensorView(&wloss, scalar);
  out.grad_hidden = softmax::TensorView(wgh.data(), hs);
  out.grad_weight = softmax::TensorView(wgw.data(), ws);
  out.lse = softmax::TensorView(wlse.data(), rs);
  softmax::linear_cross_entropy(
      softmax::ConstTensorView(hidden.data(), hs), softmax::ConstTensorView(weight.data(), ws),
      softmax::ConstTensorView(targets.data(), softmax::DType::i64, rs), out, co);
  softmax_context_destroy(ctx);
  EXPECT_EQ(loss, wloss);
  EXPECT_TRUE(SameBits(gh, wgh));
  EXPECT_TRUE(SameBits(gw, wgw));
  EXPECT_TRUE(SameBits(lse, wlse));
  int64_t bytes = -1;
  ASSERT_EQ(softmax_linear_cross_entropy_workspace_bytes(n, d, v, &o, &bytes), SOFTMAX_STATUS_OK);
  EXPECT_EQ(bytes, softmax::linear_cross_entropy_workspace_bytes(n, d, v, co));
}

TEST(CapiTest, SamplingMatchesCpp) {
  const int64_t b = 3, v = 40, draws = 4;
  std::vector<float> logits = Random(b * v, 2.0f, 8);
  const Shape ls{b, v}, ts{b, draws};
  const softmax_tensor_t tl = T(logits, ls);
  const std::vector<double> temps{0.8, 0.0, 1.5}, top_p{0.9, 1.0, 0.5};
  const std::vector<uint64_t> streams{7, 123456789012345ull, 0};
  for (int64_t method : {SOFTMAX_SAMPLING_INVERSE_CDF, SOFTMAX_SAMPLING_GUMBEL_MAX}) {
    softmax_sampling_params_t p;
    softmax_sampling_params_init(&p);
    p.top_k = 20;
    p.min_p = 0.01;
    p.method = method;
    p.per_row_length = b;
    p.temperature_per_row = temps.data();
    p.top_p_per_row = top_p.data();
    p.streams = streams.data();
    softmax::SamplingParams cp;
    cp.top_k = int64_t{20};
    cp.min_p = 0.01;
    cp.method = static_cast<softmax::SamplingMethod>(method);
    cp.temperature = temps;
    cp.top_p = top_p;
    cp.streams = streams;
    std::vector<int64_t> tokens(b * draws, -1), want(b * draws, -2);
    const softmax_tensor_t tt = T(tokens, ts);
    ASSERT_EQ(softmax_sample(nullptr, &tl, &tt, &p, 42, 9), SOFTMAX_STATUS_OK)
        << softmax_last_error();
    softmax::sample(softmax::ConstTensorView(logits.data(), ls),
                    softmax::TensorView(want.data(), softmax::DType::i64, ts), cp, 42, 9);
    EXPECT_EQ(tokens, want);
  }
  // From probabilities, default parameters (NULL params).
  std::vector<float> probs(b * v);
  for (int64_t i = 0; i < b * v; ++i) probs[i] = std::exp(logits[i]);
  std::vector<int64_t> tokens(b, -1);
  const Shape bs{b};
  const softmax_tensor_t tp = T(probs, ls), tt = T(tokens, bs);
  ASSERT_EQ(softmax_sample_from_probs(nullptr, &tp, &tt, nullptr, 5, 0), SOFTMAX_STATUS_OK);
  EXPECT_EQ(tokens, softmax::sample_from_probs(softmax::ConstTensorView(probs.data(), ls), {}, 5));
}

TEST(CapiTest, TopLogprobsMatchesCppIntoStridedOutputs) {
  const int64_t b = 2, v = 30, n = 5;
  std::vector<float> logits = Random(b * v, 3.0f, 9);
  const Shape ls{b, v}, os{b, n};
  const int64_t col_major[2] = {1, b};
  std::vector<int64_t> ids(b * n, -1);
  std::vector<double> lp(b * n, 1.0);
  softmax_tensor_t tl = T(logits, ls), ti = T(ids, os), tlp = T(lp, os);
  ti.strides = col_major;
  tlp.strides = col_major;
  ASSERT_EQ(softmax_top_logprobs(nullptr, &tl, n, 0.9, &ti, &tlp), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  const softmax::TopLogprobs want =
      softmax::top_logprobs(softmax::ConstTensorView(logits.data(), ls), n, 0.9);
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      EXPECT_EQ(ids[j * b + r], want.ids[r * n + j]);
      EXPECT_EQ(lp[j * b + r], want.logprobs[r * n + j]);
    }
  }
  // Wrong output shape: an error, nothing written.
  const Shape bad{b, n - 1};
  std::vector<int64_t> ids2(b * n, -1);
  const softmax_tensor_t tbad = T(ids2, bad), tlp2 = T(lp, os);
  EXPECT_EQ(softmax_top_logprobs(nullptr, &tl, n, 1.0, &tbad, &tlp2),
            SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'ids'"), std::string::npos);
  EXPECT_EQ(ids2, std::vector<int64_t>(b * n, -1));
}

TEST(CapiTest, AttentionAndMaskedSoftmaxMatchCpp) {
  const int64_t bq = 1, hq = 2, hkv = 1, sq = 5, sk = 7, d = 4;
  std::vector<float> q = Random(bq * hq * sq * d, 1.0f, 10),
                     k = Random(bq * hkv * sk * d, 1.0f, 11),
                     v = Random(bq * hkv * sk * d, 1.0f, 12), bias = Random(sq * sk, 0.5f, 13);
  std::vector<int32_t> mask(sq * sk, 1);
  mask[3] = 0;
  mask[17] = 0;
  const Shape qs{bq, hq, sq, d}, ks{bq, hkv, sk, d}, ms{sq, sk}, lses{bq, hq, sq};
  const std::vector<float> slopes{0.5f, 0.25f};
  const double scale = 0.4;
  softmax_tensor_t tq = T(q, qs), tk = T(k, ks), tv = T(v, ks), tb = T(bias, ms),
                   tm = T(mask.data(), SOFTMAX_DTYPE_I32, ms);
  softmax_mask_options_t o;
  softmax_mask_options_init(&o);
  o.scale = &scale;
  o.softcap = 5.0;
  o.causal = 1;
  o.align = SOFTMAX_ALIGN_BOTTOM_RIGHT;
  o.window_left = 3;
  o.alibi_slopes = slopes.data();
  o.alibi_slopes_count = 2;
  o.bias = &tb;
  o.mask = &tm;
  softmax::MaskOptions co;
  co.scale = scale;
  co.softcap = 5.0;
  co.causal = true;
  co.align = softmax::Align::kBottomRight;
  co.window_left = 3;
  co.alibi_slopes = slopes;
  co.bias = softmax::ConstTensorView(bias.data(), ms);
  co.mask = softmax::ConstTensorView(mask.data(), softmax::DType::i32, ms);
  std::vector<float> out(q.size()), lse(bq * hq * sq), wout(q.size()), wlse(lse.size());
  const softmax_tensor_t tout = T(out, qs), tlse = T(lse, lses);
  ASSERT_EQ(softmax_attention(nullptr, &tq, &tk, &tv, &tout, &tlse, &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::attention(softmax::ConstTensorView(q.data(), qs), softmax::ConstTensorView(k.data(), ks),
                     softmax::ConstTensorView(v.data(), ks), softmax::TensorView(wout.data(), qs),
                     softmax::TensorView(wlse.data(), lses), co);
  EXPECT_TRUE(SameBits(out, wout));
  EXPECT_TRUE(SameBits(lse, wlse));

  // masked_softmax on (H, Sq, Sk) scores with lse, then its backward (softcap needs scores).
  const Shape ss{hq, sq, sk}, rs{hq, sq};
  std::vector<float> scores = Random(hq * sq * sk, 2.0f, 14), y(scores.size()), wy(scores.size());
  std::vector<float> l(hq * sq), wl(hq * sq);
  const softmax_tensor_t ts = T(scores, ss), ty = T(y, ss), tl = T(l, rs);
  ASSERT_EQ(softmax_masked_softmax(nullptr, &ts, &ty, &tl, &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  const softmax::ConstTensorView cs(scores.data(), ss);
  softmax::masked_softmax(cs, softmax::TensorView(wy.data(), ss),
                          softmax::TensorView(wl.data(), rs), co);
  EXPECT_TRUE(SameBits(y, wy));
  EXPECT_TRUE(SameBits(l, wl));
  std::vector<float> dy = Random(y.size(), 1.0f, 15), ds(y.size()), wds(y.size());
  const softmax_tensor_t tdy = T(dy, ss), tds = T(ds, ss);
  ASSERT_EQ(softmax_masked_softmax_backward(nullptr, &tdy, &ty, &ts, &tds, &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::masked_softmax_backward(softmax::ConstTensorView(dy.data(), ss),
                                   softmax::ConstTensorView(y.data(), ss), cs,
                                   softmax::TensorView(wds.data(), ss), co);
  EXPECT_TRUE(SameBits(ds, wds));
  // Without lse and with default options.
  ASSERT_EQ(softmax_masked_softmax(nullptr, &ts, &ty, nullptr, nullptr), SOFTMAX_STATUS_OK);
  softmax::masked_softmax(cs, softmax::TensorView(wy.data(), ss));
  EXPECT_TRUE(SameBits(y, wy));
}

// Each failing call: its status, the same message as the C++ call's softmax::Error, and the
// output left as it was.
// Arguments at the edges: a zero dimension anywhere is an empty tensor (whatever the other dims);
// a C-order shape that overflows names the op and the tensor; counts and the arrays they describe
// must agree; floating-point values are shown as the shortest decimal that reads back.
TEST(CapiTest, EdgeArgumentsAreNamedErrors) {
  std::vector<float> x = Random(8, 1.0f, 21), y(8, 7.0f);
  // (0, 2^62, 2^62): no element; softmax writes nothing and succeeds, in C and C++.
  const Shape empty{0, int64_t{1} << 62, int64_t{1} << 62};
  const softmax_tensor_t te = T(x, empty), tye = T(y, empty);
  EXPECT_EQ(softmax_softmax(nullptr, &te, &tye, nullptr), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_EQ(softmax_log_softmax(nullptr, &te, &tye, nullptr), SOFTMAX_STATUS_OK);
  EXPECT_NO_THROW(softmax::softmax(softmax::ConstTensorView(x.data(), empty),
                                   softmax::TensorView(y.data(), empty)));
  // logsumexp over the empty axis 0 of it: y (2^62, 2^62) has too many elements.
  const Shape reduced{int64_t{1} << 62, int64_t{1} << 62};
  const softmax_tensor_t tyr = T(y, reduced);
  softmax_options_t o;
  softmax_options_init(&o);
  o.axis = 0;
  EXPECT_EQ(softmax_logsumexp(nullptr, &te, &tyr, &o), SOFTMAX_STATUS_OVERFLOW);
  EXPECT_NE(std::string(softmax_last_error()).find("softmax::logsumexp: argument 'y.shape'"),
            std::string::npos)
      << softmax_last_error();
  // ... and the reduction of an empty non-axis dim: (2^62, 0, 4) over axis 2 -> (2^62, 0).
  const Shape e2{int64_t{1} << 62, 0, 4}, r2{int64_t{1} << 62, 0};
  const softmax_tensor_t te2 = T(x, e2), tyr2 = T(y, r2);
  o.axis = 2;
  EXPECT_EQ(softmax_logsumexp(nullptr, &te2, &tyr2, &o), SOFTMAX_STATUS_OK) << softmax_last_error();
  EXPECT_EQ(y, std::vector<float>(8, 7.0f));
  // An overflowing C-order shape names the op and the tensor.
  const Shape huge{int64_t{1} << 62, 8};
  const softmax_tensor_t thuge = T(x, huge);
  EXPECT_EQ(softmax_softmax(nullptr, &thuge, &tye, nullptr), SOFTMAX_STATUS_OVERFLOW);
  EXPECT_NE(std::string(softmax_last_error()).find("softmax::softmax: argument 'x.shape'"),
            std::string::npos)
      << softmax_last_error();

  // linear_cross_entropy_workspace_bytes: negative sizes and overflow are errors, in C and C++.
  int64_t bytes = -7;
  EXPECT_EQ(softmax_linear_cross_entropy_workspace_bytes(-1, 4, 10, nullptr, &bytes),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("argument 'n' = -1"), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(softmax_linear_cross_entropy_workspace_bytes(int64_t{1} << 61, 4, int64_t{1} << 40,
                                                         nullptr, &bytes),
            SOFTMAX_STATUS_OVERFLOW);
  EXPECT_EQ(bytes, -7);
  EXPECT_THROW(softmax::linear_cross_entropy_workspace_bytes(3, 4, -2), softmax::Error);
  ASSERT_EQ(softmax_linear_cross_entropy_workspace_bytes(3, 4, 10, nullptr, &bytes),
            SOFTMAX_STATUS_OK);
  EXPECT_EQ(bytes, softmax::linear_cross_entropy_workspace_bytes(3, 4, 10));
  EXPECT_GT(bytes, 3 * 10 * 4);

  // ALiBi: slopes NULL with a count, or a count of 0 with slopes, are refused.
  const Shape qs{1, 2, 2, 2};
  std::vector<float> q = Random(8, 1.0f, 22), out(8, 7.0f);
  const softmax_tensor_t tq = T(q, qs), tout = T(out, qs);
  softmax_mask_options_t mo;
  softmax_mask_options_init(&mo);
  mo.alibi_slopes_count = 2;
  EXPECT_EQ(softmax_attention(nullptr, &tq, &tq, &tq, &tout, nullptr, &mo),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.alibi_slopes_count' = 2"),
            std::string::npos)
      << softmax_last_error();
  const float slopes[2] = {0.5f, 0.25f};
  mo.alibi_slopes = slopes;
  mo.alibi_slopes_count = 0;
  EXPECT_EQ(softmax_attention(nullptr, &tq, &tq, &tq, &tout, nullptr, &mo),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(out, std::vector<float>(8, 7.0f));
  mo.alibi_slopes_count = 2;
  EXPECT_EQ(softmax_attention(nullptr, &tq, &tq, &tq, &tout, nullptr, &mo), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  // A count other than the heads H is refused before the slopes are read (3, and 2^62 + 2 whose
  // byte size wraps), for masked_softmax too.
  for (const int64_t count : {int64_t{3}, (int64_t{1} << 62) + 2}) {
    mo.alibi_slopes_count = count;
    std::vector<float> y3(8, 7.0f);
    const softmax_tensor_t ty3 = T(y3, qs);
    EXPECT_EQ(softmax_masked_softmax(nullptr, &tq, &ty3, nullptr, &mo),
              SOFTMAX_STATUS_SHAPE_MISMATCH);
    EXPECT_NE(std::string(softmax_last_error()).find("one slope per head (2"), std::string::npos)
        << softmax_last_error();
    EXPECT_EQ(y3, std::vector<float>(8, 7.0f));
  }
  // Array counts whose byte size would wrap are not array lengths.
  const int32_t children[2] = {-1, -2};
  softmax_hierarchical_tree_t* tree = nullptr;
  EXPECT_EQ(softmax_hierarchical_tree_create(children, (int64_t{1} << 62) + 2, &tree),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'children_count'"), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(tree, nullptr);
  const double unigrams[4] = {1, 2, 3, 4};
  softmax_sampled_softmax_options_t so;
  softmax_sampled_softmax_options_init(&so);
  so.sampler = SOFTMAX_SAMPLER_UNIGRAM;
  so.num_classes = 4;
  so.unigrams = unigrams;
  so.unigrams_count = (int64_t{1} << 61) + 4;
  double prob = -1;
  EXPECT_EQ(softmax_candidate_probability(1, &so, &prob), SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.unigrams_count'"), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(prob, -1);
  so.unigrams_count = 4;
  EXPECT_EQ(softmax_candidate_probability(1, &so, &prob), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_NEAR(prob, 0.2, 1e-12);
  // Ops without a workspace query ignore the context's workspace, even a 0-byte one.
  softmax_context_t* ctx = nullptr;
  ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
  void* ws = std::aligned_alloc(256, 256);
  ASSERT_EQ(softmax_context_set_workspace(ctx, ws, 0), SOFTMAX_STATUS_OK);
  std::vector<float> big = Random(8 * 700, 2.0f, 23), hm(big.size(), 7.0f);
  const Shape bs{8, 700};
  const softmax_tensor_t tbig = T(big, bs), thm = T(hm, bs);
  EXPECT_EQ(softmax_hardmax(ctx, &tbig, &thm, nullptr), SOFTMAX_STATUS_OK) << softmax_last_error();
  EXPECT_EQ(softmax_masked_softmax(ctx, &tbig, &thm, nullptr, nullptr), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax_context_destroy(ctx);
  std::free(ws);

  // Seeds, offsets or streams set with per_row_length 0 on B = 2 rows: refused, not ignored.
  const Shape ls{2, 4};
  const softmax_tensor_t tl = T(x, ls);
  std::vector<int64_t> tokens(2, -1);
  const Shape ts{2};
  const softmax_tensor_t ttok = T(tokens, ts);
  const uint64_t seeds[2] = {1, 2};
  softmax_sampling_params_t sp;
  softmax_sampling_params_init(&sp);
  sp.seeds = seeds;
  EXPECT_EQ(softmax_sample(nullptr, &tl, &ttok, &sp, 1, 0), SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'params.per_row_length' = 0"),
            std::string::npos)
      << softmax_last_error();
  EXPECT_NE(std::string(softmax_last_error()).find("params.seeds"), std::string::npos);
  EXPECT_EQ(tokens, std::vector<int64_t>(2, -1));
  sp.per_row_length = 2;
  EXPECT_EQ(softmax_sample(nullptr, &tl, &ttok, &sp, 1, 0), SOFTMAX_STATUS_OK);
  // A per-row seed list of the wrong length names the C++ field.
  sp.per_row_length = 1;
  EXPECT_EQ(softmax_sample(nullptr, &tl, &ttok, &sp, 1, 0), SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'seeds'"), std::string::npos)
      << softmax_last_error();

  // speculative_verify: streams set with a count of 0 on B = 1 rows is refused, as in sampling.
  std::vector<int64_t> draft{0}, na{-5}, vt{-5, -5};
  std::vector<float> qp{0.5f, 0.5f}, pp{0.5f, 0.5f, 0.5f, 0.5f};
  const Shape d1{1, 1}, q1{1, 1, 2}, p1{1, 2, 2}, b1{1}, t1{1, 2};
  const softmax_tensor_t tdraft = T(draft, d1), tqp = T(qp, q1), tpp = T(pp, p1), tna = T(na, b1),
                         tvt = T(vt, t1);
  const uint64_t streams[1] = {7};
  EXPECT_EQ(softmax_speculative_verify(nullptr, &tdraft, &tqp, &tpp, &tna, &tvt, 1, 0, streams, 0),
            SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'streams_count' = 0"), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(na[0], -5);
  EXPECT_EQ(softmax_speculative_verify(nullptr, &tdraft, &tqp, &tpp, &tna, &tvt, 1, 0, streams, 1),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();

  // Doubles in messages: the shortest decimal ("-1e-09", not "-0.000000").
  softmax_gumbel_softmax_options_t go;
  softmax_gumbel_softmax_options_init(&go);
  go.tau = -1e-9;
  std::vector<float> g(8, 7.0f);
  const softmax_tensor_t tg = T(g, ls);
  EXPECT_EQ(softmax_gumbel_softmax(nullptr, &tl, &tg, &go, 1, 0), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'tau' = -1e-09"), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(g, std::vector<float>(8, 7.0f));
}

TEST(CapiTest, ErrorsMapToStatusWithTheCppMessageAndWriteNothing) {
  std::vector<float> x = Random(12, 1.0f, 16);
  const Shape s{3, 4};
  std::vector<float> y(12, 7.0f);
  const softmax_tensor_t tx = T(x, s), ty = T(y, s);
  softmax_options_t o;
  softmax_options_init(&o);
  o.axis = 2;
  EXPECT_EQ(softmax_log_softmax(nullptr, &tx, &ty, &o), SOFTMAX_STATUS_INVALID_ARGUMENT);
  softmax::SoftmaxOptions co;
  co.axis = 2;
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::log_softmax(softmax::ConstTensorView(x.data(), s),
                                   softmax::TensorView(y.data(), s), co);
            }));
  EXPECT_EQ(y, std::vector<float>(12, 7.0f));

  const Shape s2{3, 3};
  const softmax_tensor_t ty2 = T(y, s2);
  EXPECT_EQ(softmax_softmax(nullptr, &tx, &ty2, nullptr), SOFTMAX_STATUS_SHAPE_MISMATCH);
  const softmax_tensor_t tyi = T(y.data(), SOFTMAX_DTYPE_I32, s);
  EXPECT_EQ(softmax_softmax(nullptr, &tx, &tyi, nullptr), SOFTMAX_STATUS_DTYPE_MISMATCH);
  const softmax_tensor_t tshift = T(x.data() + 1, SOFTMAX_DTYPE_F32, s);
  EXPECT_EQ(softmax_softmax(nullptr, &tx, &tshift, nullptr), SOFTMAX_STATUS_OVERLAP);
  const Shape huge{int64_t{1} << 62, 8};
  const softmax_tensor_t thuge = T(x.data(), SOFTMAX_DTYPE_F32, huge);
  EXPECT_EQ(softmax_softmax(nullptr, &thuge, &thuge, nullptr), SOFTMAX_STATUS_OVERFLOW);
  softmax_tensor_t tcuda = tx;
  tcuda.device = SOFTMAX_DEVICE_CUDA;
  // Tensors of one call on two devices; a CUDA-only op that this build cannot run is
  // UNSUPPORTED (hardmax runs on the CPU only).
  EXPECT_EQ(softmax_softmax(nullptr, &tcuda, &ty, nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("one device"), std::string::npos);
  softmax_tensor_t tycuda = ty;
  tycuda.device = SOFTMAX_DEVICE_CUDA;
  EXPECT_EQ(softmax_hardmax(nullptr, &tcuda, &tycuda, nullptr), SOFTMAX_STATUS_UNSUPPORTED);
  EXPECT_EQ(y, std::vector<float>(12, 7.0f));

  // Errors of the C layer itself name the argument too.
  EXPECT_EQ(softmax_softmax(nullptr, nullptr, &ty, nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_STREQ(softmax_last_error(), "softmax::softmax: argument 'x' = NULL: must not be NULL");
  softmax_tensor_t bad = tx;
  bad.rank = 65;
  EXPECT_EQ(softmax_softmax(nullptr, &bad, &ty, nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'x.rank' = 65"), std::string::npos);
  bad = tx;
  bad.dtype = 9;
  EXPECT_EQ(softmax_softmax(nullptr, &bad, &ty, nullptr), SOFTMAX_STATUS_DTYPE_MISMATCH);
  bad = tx;
  bad.shape = nullptr;
  EXPECT_EQ(softmax_softmax(nullptr, &bad, &ty, nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'x.shape' = NULL"), std::string::npos);

  // A bad target in a loss: nothing written.
  std::vector<int64_t> targets{0, 9, 1};
  const Shape rs{3};
  std::vector<float> loss(3, 5.0f), grad(12, 5.0f);
  const softmax_tensor_t tt = T(targets, rs), tloss = T(loss, rs), tgrad = T(grad, s);
  softmax_cross_entropy_options_t ce;
  softmax_cross_entropy_options_init(&ce);
  ce.reduction = SOFTMAX_REDUCTION_NONE;
  EXPECT_EQ(softmax_cross_entropy(nullptr, &tx, &tt, &tloss, &tgrad, nullptr, nullptr, &ce),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("targets"), std::string::npos);
  EXPECT_EQ(loss, std::vector<float>(3, 5.0f));
  EXPECT_EQ(grad, std::vector<float>(12, 5.0f));
  ce.reduction = 3;
  EXPECT_EQ(softmax_cross_entropy(nullptr, &tx, &tt, &tloss, nullptr, nullptr, nullptr, &ce),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.reduction' = 3"), std::string::npos);

  // Bad enum values and per-row arrays of the wrong length.
  const Shape ts{3};
  std::vector<int64_t> tokens(3, -1);
  const softmax_tensor_t ttok = T(tokens, ts);
  softmax_sampling_params_t sp;
  softmax_sampling_params_init(&sp);
  sp.method = 2;
  EXPECT_EQ(softmax_sample(nullptr, &tx, &ttok, &sp, 1, 0), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'params.method' = 2"), std::string::npos);
  softmax_sampling_params_init(&sp);
  const double temps[2] = {1.0, 0.5};
  sp.temperature_per_row = temps;
  sp.per_row_length = 2;
  EXPECT_NE(softmax_sample(nullptr, &tx, &ttok, &sp, 1, 0), SOFTMAX_STATUS_OK);
  EXPECT_NE(std::string(softmax_last_error()).find("temperature"), std::string::npos);
  EXPECT_EQ(tokens, std::vector<int64_t>(3, -1));
  softmax_mask_options_t mo;
  softmax_mask_options_init(&mo);
  mo.align = 7;
  EXPECT_EQ(softmax_masked_softmax(nullptr, &tx, &ty, nullptr, &mo),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.align' = 7"), std::string::npos);
  EXPECT_EQ(y, std::vector<float>(12, 7.0f));

  // Success clears the message.
  ASSERT_EQ(softmax_softmax(nullptr, &tx, &ty, nullptr), SOFTMAX_STATUS_OK);
  EXPECT_STREQ(softmax_last_error(), "");
}

TEST(CapiTest, OutOfMemoryIsAStatusNotAnException) {
#ifdef __SANITIZE_ADDRESS__
  // GCC 12's AddressSanitizer aborts in a throwing operator new that cannot allocate (even with
  // allocator_may_return_null=1) instead of throwing std::bad_alloc: nothing to test there.
  GTEST_SKIP() << "AddressSanitizer's operator new aborts instead of throwing std::bad_alloc";
#endif
  // top_logprobs allocates rows * n results: 2^50 rows of a stride-0 input need 8 PiB, more
  // than the address space (so this fails whatever the overcommit policy).
  float x = 1.0f;
  const Shape s{int64_t{1} << 50, 1};
  const int64_t strides[2] = {0, 1};
  softmax_tensor_t tx = T(&x, SOFTMAX_DTYPE_F32, s);
  tx.strides = strides;
  int64_t id = -1;
  double lp = 1.0;
  const Shape os{1, 1};
  const softmax_tensor_t ti = T(&id, SOFTMAX_DTYPE_I64, os), tlp = T(&lp, SOFTMAX_DTYPE_F64, os);
  EXPECT_EQ(softmax_top_logprobs(nullptr, &tx, 1, 1.0, &ti, &tlp), SOFTMAX_STATUS_OUT_OF_MEMORY)
      << softmax_last_error();
  EXPECT_STREQ(softmax_last_error(), "softmax: out of memory");
  EXPECT_EQ(id, -1);
}

TEST(CapiTest, StructSizeVersioning) {
  std::vector<float> x{1.0f, 2.0f, 4.0f}, y(3), want(3);
  const Shape s{3};
  const softmax_tensor_t tx = T(x, s), ty = T(y, s);
  softmax::softmax(softmax::ConstTensorView(x.data(), s), softmax::TensorView(want.data(), s));
  // An older caller that knew only struct_size and axis: temperature takes its default (the
  // garbage in the field past struct_size is not read).
  softmax_options_t o;
  softmax_options_init(&o);
  o.struct_size = 16;
  o.temperature = -5.0;
  ASSERT_EQ(softmax_softmax(nullptr, &tx, &ty, &o), SOFTMAX_STATUS_OK) << softmax_last_error();
  EXPECT_EQ(y, want);
  // A newer caller: extra fields that are zero are accepted, nonzero ones are not.
  struct Newer {
    softmax_options_t known;
    int64_t future[2];
  } newer;
  softmax_options_init(&newer.known);
  newer.known.struct_size = sizeof(Newer);
  newer.future[0] = newer.future[1] = 0;
  EXPECT_EQ(softmax_softmax(nullptr, &tx, &ty, &newer.known), SOFTMAX_STATUS_OK);
  newer.future[1] = 1;
  std::fill(y.begin(), y.end(), 3.0f);
  EXPECT_EQ(softmax_softmax(nullptr, &tx, &ty, &newer.known), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.struct_size' = 48"), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(y, std::vector<float>(3, 3.0f));
  for (size_t bad : {size_t{0}, size_t{12}, size_t{4096}}) {
    o.struct_size = bad;
    EXPECT_EQ(softmax_softmax(nullptr, &tx, &ty, &o), SOFTMAX_STATUS_INVALID_ARGUMENT) << bad;
  }
}

TEST(CapiTest, LastErrorIsPerThread) {
  std::vector<float> x{1.0f}, y(1);
  const Shape s{1};
  const softmax_tensor_t tx = T(x, s), ty = T(y, s);
  softmax_options_t o;
  softmax_options_init(&o);
  o.temperature = 0;
  ASSERT_EQ(softmax_softmax(nullptr, &tx, &ty, &o), SOFTMAX_STATUS_INVALID_ARGUMENT);
  const std::string mine = softmax_last_error();
  EXPECT_NE(mine.find("temperature"), std::string::npos);
  std::string theirs = "unset";
  std::thread([&] {
    theirs = softmax_last_error();  // nothing failed on this thread
    softmax_softmax(nullptr, &tx, &ty, nullptr);
  }).join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(softmax_last_error(), mine);
}

TEST(CapiTest, ContextThreads) {
  softmax_context_t* ctx = nullptr;
  EXPECT_EQ(softmax_context_create(nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
  EXPECT_EQ(softmax_context_set_threads(ctx, -1), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'threads' = -1"), std::string::npos);
  EXPECT_EQ(softmax_context_set_threads(nullptr, 2), SOFTMAX_STATUS_INVALID_ARGUMENT);
  std::vector<float> x = Random(64 * 1000, 2.0f, 17), y1(x.size()), y2(x.size());
  const Shape s{64, 1000};
  const softmax_tensor_t tx = T(x, s), t1 = T(y1, s), t2 = T(y2, s);
  ASSERT_EQ(softmax_context_set_threads(ctx, 1), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_softmax(ctx, &tx, &t1, nullptr), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_context_set_threads(ctx, 2), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_softmax(ctx, &tx, &t2, nullptr), SOFTMAX_STATUS_OK);
  EXPECT_TRUE(SameBits(y1, y2));
  softmax_context_destroy(ctx);
  softmax_context_destroy(nullptr);
}

TEST(CapiTest, ContextWorkspaceAndStream) {
  softmax_context_t* ctx = nullptr;
  ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_context_set_threads(ctx, 1), SOFTMAX_STATUS_OK);
  // A strided axis (x transposed) and long rows need scratch; the query is the C++ one.
  std::vector<float> x = Random(300 * 200, 3.0f, 5), y0(x.size()), y1(x.size(), 7.0f);
  const Shape s{200, 300};
  const int64_t strides[2] = {1, 200};
  softmax_tensor_t tx = T(x, s);
  tx.strides = strides;
  const softmax_tensor_t t0 = T(y0, s), t1 = T(y1, s);
  ASSERT_EQ(softmax_log_softmax(ctx, &tx, &t0, nullptr), SOFTMAX_STATUS_OK);
  size_t bytes = 0;
  ASSERT_EQ(softmax_log_softmax_workspace_bytes(ctx, &tx, &t1, nullptr, &bytes), SOFTMAX_STATUS_OK);
  softmax::Context cc;
  cc.threads = 1;
  EXPECT_EQ(bytes, softmax::log_softmax_workspace_bytes(
                       softmax::ConstTensorView(x.data(), softmax::DType::f32, s, {1, 200}),
                       softmax::TensorView(y1.data(), s), {}, cc));
  EXPECT_GT(bytes, 0u);
  // aligned_alloc's size must be a multiple of the alignment (ASan returns NULL otherwise).
  void* ws = std::aligned_alloc(256, (bytes / 256 + 1) * 256);
  ASSERT_NE(ws, nullptr);
  // Too small: INVALID_ARGUMENT from the op, naming the bytes needed; nothing written.
  ASSERT_EQ(softmax_context_set_workspace(ctx, ws, bytes - 1), SOFTMAX_STATUS_OK);
  EXPECT_EQ(softmax_log_softmax(ctx, &tx, &t1, nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find(std::to_string(bytes)), std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(y1, std::vector<float>(x.size(), 7.0f));
  // Enough: the same bits as without a workspace.
  ASSERT_EQ(softmax_context_set_workspace(ctx, ws, bytes), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_log_softmax(ctx, &tx, &t1, nullptr), SOFTMAX_STATUS_OK);
  EXPECT_TRUE(SameBits(y0, y1));
  // The queries validate as the ops do; bytes must not be NULL.
  softmax_options_t o;
  softmax_options_init(&o);
  o.axis = 5;
  EXPECT_EQ(softmax_softmax_workspace_bytes(ctx, &tx, &t1, &o, &bytes),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_logsumexp_workspace_bytes(ctx, &tx, &t1, nullptr, nullptr),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  // Devices: the CPU always; tensors on two devices are an error.
  EXPECT_EQ(softmax_device_available(SOFTMAX_DEVICE_CPU), 1);
  EXPECT_EQ(softmax_context_set_cuda_stream(ctx, nullptr), SOFTMAX_STATUS_OK);
  softmax_tensor_t tcuda = t1;
  tcuda.device = SOFTMAX_DEVICE_CUDA;
  EXPECT_EQ(softmax_softmax(ctx, &tx, &tcuda, nullptr), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_context_set_workspace(nullptr, ws, bytes), SOFTMAX_STATUS_INVALID_ARGUMENT);
  softmax_context_destroy(ctx);
  std::free(ws);
}

}  // namespace
