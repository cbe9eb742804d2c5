// tests/capi/capi_serving_test.cc: the C functions of the serving ops (issue 16), attention
// backward, sparsemax, gumbel_softmax and convert against the C++ functions they wrap (bit for
// bit, on the same inputs and options), plus an independent value check per op where it is
// cheap, one error path each (status, the C++ message, the outputs untouched), the struct_size
// rules of the new and extended structs, and the 64-bit per-row seeds / streams / offsets.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <tuple>

#include "tests/capi/capi_test_util.hpp"

namespace {

using namespace capi_test;  // NOLINT(google-build-using-namespace)

TEST(CapiServingTest, AttentionBackwardMatchesCpp) {
  const int64_t b = 1, hq = 2, hkv = 1, sq = 5, sk = 7, d = 4;
  Buf<float> q(Random(b * hq * sq * d, 1.0f, 1), {b, hq, sq, d});
  Buf<float> k(Random(b * hkv * sk * d, 1.0f, 2), {b, hkv, sk, d});
  Buf<float> v(Random(b * hkv * sk * d, 1.0f, 3), {b, hkv, sk, d});
  Buf<float> dout(Random(b * hq * sq * d, 1.0f, 4), {b, hq, sq, d});
  Buf<float> out({b, hq, sq, d}), lse({b, hq, sq});
  softmax_mask_options_t mo;
  softmax_mask_options_init(&mo);
  mo.causal = 1;
  mo.align = SOFTMAX_ALIGN_BOTTOM_RIGHT;
  ASSERT_EQ(softmax_attention(nullptr, q.c(), k.c(), v.c(), out.c(), lse.c(), &mo),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  Buf<float> dq({b, hq, sq, d}), dk({b, hkv, sk, d}), dv({b, hkv, sk, d});
  Buf<float> wq = dq, wk = dk, wv = dv;
  ASSERT_EQ(softmax_attention_backward(nullptr, q.c(), k.c(), v.c(), out.c(), lse.c(), dout.c(),
                                       dq.c(), dk.c(), dv.c(), &mo),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::MaskOptions co;
  co.causal = true;
  co.align = softmax::Align::kBottomRight;
  softmax::attention_backward(q.ccpp(), k.ccpp(), v.ccpp(), out.ccpp(), lse.ccpp(), dout.ccpp(),
                              wq.cpp(), wk.cpp(), wv.cpp(), co);
  EXPECT_TRUE(SameBits(dq.v, wq.v));
  EXPECT_TRUE(SameBits(dk.v, wk.v));
  EXPECT_TRUE(SameBits(dv.v, wv.v));
  // Independent check: the gradients of a key row hidden from every query (none: bottom-right
  // causal with Sk > Sq shows the first Sk - Sq keys to all) are finite and not all zero.
  EXPECT_TRUE(std::any_of(dv.v.begin(), dv.v.end(), [](float x) { return x != 0.0f; }));
  // Error: dk of the wrong shape; nothing written to any gradient.
  Buf<float> bad({b, hkv, sk - 1, d}, 5.0f);
  dq.Fill(5.0f);
  dv.Fill(5.0f);
  EXPECT_EQ(softmax_attention_backward(nullptr, q.c(), k.c(), v.c(), out.c(), lse.c(), dout.c(),
                                       dq.c(), bad.c(), dv.c(), &mo),
            SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::attention_backward(q.ccpp(), k.ccpp(), v.ccpp(), out.ccpp(), lse.ccpp(),
                                          dout.ccpp(), wq.cpp(), bad.cpp(), wv.cpp(), co);
            }));
  EXPECT_TRUE(dq.All(5.0f) && bad.All(5.0f) && dv.All(5.0f));
}

// Processors of two rows over V = 12 used by several tests (C struct and the C++ equivalent).
struct Processors {
  std::vector<int64_t> prev{1, 1, 3, 4, 4, 4, 7}, prev_off{0, 3, 7};
  std::vector<double> rep{1.3, 0.8};
  std::vector<int64_t> bias_ids{2, 5, 9}, bias_off{0, 1, 3};
  std::vector<double> bias_values{2.5, -1.0, -INFINITY};
  std::vector<int64_t> banned{0, 11};
  std::vector<int64_t> eos{10};
  std::vector<int64_t> min_tokens{4, 0};
  softmax_logit_processors_t c{};
  softmax::LogitProcessors cpp;

  Processors() {
    softmax_logit_processors_init(&c);
    c.prev_tokens = prev.data();
    c.prev_tokens_count = static_cast<int64_t>(prev.size());
    c.prev_tokens_offsets = prev_off.data();
    c.prev_tokens_offsets_count = static_cast<int64_t>(prev_off.size());
    c.presence_penalty = 0.5;
    c.frequency_penalty = 0.25;
    c.logit_bias_ids = bias_ids.data();
    c.logit_bias_values = bias_values.data();
    c.logit_bias_count = static_cast<int64_t>(bias_ids.size());
    c.logit_bias_offsets = bias_off.data();
    c.logit_bias_offsets_count = static_cast<int64_t>(bias_off.size());
    c.banned_tokens = banned.data();
    c.banned_tokens_count = static_cast<int64_t>(banned.size());
    c.eos_token_ids = eos.data();
    c.eos_token_ids_count = 1;
    c.per_row_length = 2;
    c.repetition_penalty_per_row = rep.data();
    c.min_tokens_per_row = min_tokens.data();
    cpp.prev_tokens = {prev, prev_off};
    cpp.repetition_penalty = rep;
    cpp.presence_penalty = 0.5;
    cpp.frequency_penalty = 0.25;
    cpp.logit_bias = {bias_ids, bias_off};
    cpp.logit_bias_values = bias_values;
    cpp.banned_tokens = {banned, {}};
    cpp.eos_token_ids = eos;
    cpp.min_tokens = min_tokens;
  }
};

TEST(CapiServingTest, ApplyPenaltiesMatchesCppAndTheRules) {
  const int64_t b = 2, v = 12;
  Buf<float> x(Random(b * v, 2.0f, 5), {b, v});
  Buf<float> out({b, v}), want({b, v});
  const Processors p;
  ASSERT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), &p.c), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::apply_penalties(x.ccpp(), want.cpp(), p.cpp);
  EXPECT_TRUE(SameBits(out.v, want.v));
  // The rules by hand on row 0 (rho 1.3; tokens 1 (twice) and 3; min_tokens 4 > 3 generated).
  auto at = [&](const Buf<float>& t, int64_t r, int64_t i) { return t.v[r * v + i]; };
  const float x1 = at(x, 0, 1);
  const float rep1 = x1 > 0 ? static_cast<float>(x1 / 1.3) : static_cast<float>(x1 * 1.3);
  EXPECT_FLOAT_EQ(at(out, 0, 1), rep1 - 2 * 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(at(out, 0, 2), at(x, 0, 2) + 2.5f);
  EXPECT_EQ(at(out, 0, 0), -INFINITY);
  EXPECT_EQ(at(out, 0, 11), -INFINITY);
  EXPECT_EQ(at(out, 0, 10), -INFINITY);     // EOS suppressed in row 0 ...
  EXPECT_EQ(at(out, 1, 10), at(x, 1, 10));  // ... not in row 1 (min_tokens 0), bit for bit
  EXPECT_EQ(at(out, 1, 9), -INFINITY);      // bias -inf
  EXPECT_EQ(at(out, 0, 6), at(x, 0, 6));    // untouched
  // NULL processors: a copy. In place.
  ASSERT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), nullptr), SOFTMAX_STATUS_OK);
  EXPECT_TRUE(SameBits(out.v, x.v));
  ASSERT_EQ(softmax_apply_penalties(nullptr, out.c(), out.c(), &p.c), SOFTMAX_STATUS_OK);
  EXPECT_TRUE(SameBits(out.v, want.v));
  // Error: a previous token outside [0, V).
  Processors bad;
  bad.prev[2] = v;
  bad.cpp.prev_tokens = {bad.prev, bad.prev_off};
  out.Fill(9.0f);
  EXPECT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), &bad.c),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(),
            CppError([&] { softmax::apply_penalties(x.ccpp(), want.cpp(), bad.cpp); }));
  EXPECT_TRUE(out.All(9.0f));
  // Error from the C layer: a count without its array names the argument.
  Processors nul;
  nul.c.banned_tokens = nullptr;
  EXPECT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), &nul.c),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'processors.banned_tokens'"), std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(out.All(9.0f));
}

TEST(CapiServingTest, SamplingWithProcessorsSeedsAndOffsetsMatchesCpp) {
  const int64_t b = 2, v = 12, draws = 3;
  Buf<float> x(Random(b * v, 1.5f, 6), {b, v});
  const Processors p;
  const std::vector<uint64_t> seeds{11, (uint64_t{1} << 40) + 11}, offsets{3, uint64_t{1} << 33};
  softmax_sampling_params_t sp;
  softmax_sampling_params_init(&sp);
  sp.temperature = 0.9;
  sp.top_p = 0.95;
  sp.per_row_length = b;
  sp.seeds = seeds.data();
  sp.offsets = offsets.data();
  sp.processors = &p.c;
  softmax::SamplingParams cp;
  cp.temperature = 0.9;
  cp.top_p = 0.95;
  cp.seeds = seeds;
  cp.offsets = offsets;
  cp.processors = &p.cpp;
  Buf<int64_t> tokens({b, draws}, -1), want({b, draws}, -2);
  ASSERT_EQ(softmax_sample(nullptr, x.c(), tokens.c(), &sp, 42, 0), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::sample(x.ccpp(), want.cpp(), cp, 42, 0);
  EXPECT_EQ(tokens.v, want.v);
  for (int64_t t : tokens.v) EXPECT_TRUE(t != 0 && t != 11) << t;  // banned
  // filtered_probs, token_logprobs (both modes), top_logprobs with params.
  Buf<double> probs({b, v}), wprobs({b, v});
  ASSERT_EQ(softmax_filtered_probs(nullptr, x.c(), probs.c(), &sp), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::filtered_probs(x.ccpp(), wprobs.cpp(), cp);
  EXPECT_TRUE(SameBits(probs.v, wprobs.v));
  for (int64_t r = 0; r < b; ++r) {
    EXPECT_NEAR(std::accumulate(probs.v.begin() + r * v, probs.v.begin() + (r + 1) * v, 0.0), 1.0,
                1e-12);
  }
  for (int64_t mode : {SOFTMAX_LOGPROBS_RAW, SOFTMAX_LOGPROBS_PROCESSED}) {
    Buf<float> lp({b, draws}), wlp({b, draws});
    ASSERT_EQ(softmax_token_logprobs(nullptr, x.c(), tokens.c(), lp.c(), &sp, mode),
              SOFTMAX_STATUS_OK)
        << softmax_last_error();
    softmax::token_logprobs(x.ccpp(), tokens.ccpp(), wlp.cpp(), cp,
                            static_cast<softmax::LogprobsMode>(mode));
    EXPECT_TRUE(SameBits(lp.v, wlp.v)) << mode;
    if (mode == SOFTMAX_LOGPROBS_PROCESSED) {  // log of filtered_probs at the drawn tokens
      for (int64_t r = 0; r < b; ++r) {
        for (int64_t j = 0; j < draws; ++j) {
          const double pr = probs.v[r * v + tokens.v[r * draws + j]];
          EXPECT_NEAR(lp.v[r * draws + j], std::log(pr), 1e-5);
        }
      }
    }
    const int64_t n = 4;
    Buf<int64_t> ids({b, n}, -1);
    Buf<double> tlp({b, n});
    ASSERT_EQ(softmax_top_logprobs_mode(nullptr, x.c(), n, &sp, mode, ids.c(), tlp.c()),
              SOFTMAX_STATUS_OK)
        << softmax_last_error();
    const softmax::TopLogprobs w =
        softmax::top_logprobs(x.ccpp(), n, cp, static_cast<softmax::LogprobsMode>(mode));
    EXPECT_EQ(ids.v, w.ids);
    EXPECT_TRUE(SameBits(tlp.v, w.logprobs));
  }
  Buf<float> lp({b, draws}, 4.0f);
  EXPECT_EQ(softmax_token_logprobs(nullptr, x.c(), tokens.c(), lp.c(), &sp, 2),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("argument 'mode' = 2"), std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(lp.All(4.0f));
  // sample_without_replacement: distinct tokens, C == C++ (no top-p: every token of positive
  // processed probability is a candidate).
  sp.top_p = 1.0;
  cp.top_p = 1.0;
  const int64_t k = 5;
  Buf<int64_t> wr({b, k}, -1), wwr({b, k}, -2);
  ASSERT_EQ(softmax_sample_without_replacement(nullptr, x.c(), wr.c(), &sp, 7, 1),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::sample_without_replacement(x.ccpp(), wwr.cpp(), cp, 7, 1);
  EXPECT_EQ(wr.v, wwr.v);
  for (int64_t r = 0; r < b; ++r) {
    EXPECT_EQ(std::set<int64_t>(wr.v.begin() + r * k, wr.v.begin() + (r + 1) * k).size(), 5u);
  }
  // Error: 11 distinct tokens where row 0 has only 9 of positive probability (2 banned, EOS).
  Buf<int64_t> big({b, 11}, 6);
  Buf<int64_t> wbig({b, 11});
  EXPECT_EQ(softmax_sample_without_replacement(nullptr, x.c(), big.c(), &sp, 7, 1),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(),
            CppError([&] { softmax::sample_without_replacement(x.ccpp(), wbig.cpp(), cp, 7, 1); }));
  EXPECT_TRUE(big.All(6));
  // sample_from_probs rejects processors (the C++ rule, through the C params).
  sp.temperature = 1.0;
  cp.temperature = 1.0;
  Buf<int64_t> one({b}, 8);
  EXPECT_EQ(softmax_sample_from_probs(nullptr, probs.c(), one.c(), &sp, 1, 0),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(),
            CppError([&] { softmax::sample_from_probs(probs.ccpp(), cp, 1, 0); }));
  EXPECT_TRUE(one.All(8));
}

// Rows with identical logits that differ only in bits >= 32 of their seed, stream or offset:
// every 64-bit value reaches the generator, so the rows draw different tokens (with 64 rows of
// a uniform 1000-token distribution, equal draws everywhere would mean the high bits were lost).
TEST(CapiServingTest, SeedsStreamsAndOffsetsUseAll64Bits) {
  const int64_t b = 64, v = 1000;
  Buf<float> x(std::vector<float>(b * v, 0.0f), {b, v});
  std::vector<uint64_t> same(b, 12345), high(b);
  for (int64_t r = 0; r < b; ++r) high[r] = 12345 + (static_cast<uint64_t>(r) << 32);
  for (int which = 0; which < 3; ++which) {
    softmax_sampling_params_t sp;
    softmax_sampling_params_init(&sp);
    sp.per_row_length = b;
    sp.streams = same.data();  // every row the same stream, seed, offset ...
    sp.seeds = same.data();
    sp.offsets = same.data();
    if (which == 0) sp.seeds = high.data();  // ... except in the high bits of one of them
    if (which == 1) sp.streams = high.data();
    if (which == 2) sp.offsets = high.data();
    Buf<int64_t> tokens({b}, -1);
    ASSERT_EQ(softmax_sample(nullptr, x.c(), tokens.c(), &sp, 0, 0), SOFTMAX_STATUS_OK)
        << softmax_last_error();
    EXPECT_GT(std::set<int64_t>(tokens.v.begin(), tokens.v.end()).size(), 32u) << which;
    // The control: all low and high bits equal gives one token everywhere.
    sp.seeds = sp.streams = sp.offsets = same.data();
    Buf<int64_t> control({b}, -1);
    ASSERT_EQ(softmax_sample(nullptr, x.c(), control.c(), &sp, 0, 0), SOFTMAX_STATUS_OK);
    EXPECT_EQ(std::set<int64_t>(control.v.begin(), control.v.end()).size(), 1u);
  }
  // Per-row seeds / offsets equal to the call's give the call's draws.
  std::vector<uint64_t> seed(b, 99), offset(b, 5);
  softmax_sampling_params_t sp;
  softmax_sampling_params_init(&sp);
  sp.per_row_length = b;
  sp.seeds = seed.data();
  sp.offsets = offset.data();
  Buf<int64_t> a({b}, -1), c({b}, -2);
  ASSERT_EQ(softmax_sample(nullptr, x.c(), a.c(), &sp, 0, 0), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_sample(nullptr, x.c(), c.c(), nullptr, 99, 5), SOFTMAX_STATUS_OK);
  EXPECT_EQ(a.v, c.v);
}

TEST(CapiServingTest, SpeculativeVerifyMatchesCppAndAcceptsIdenticalModels) {
  const int64_t b = 3, k = 4, v = 16;
  Buf<float> dp(RandomProbs<float>(b * k, v, 7), {b, k, v});
  Buf<double> tp(RandomProbs<double>(b * (k + 1), v, 8), {b, k + 1, v});
  std::vector<int64_t> drafts(b * k);
  for (std::size_t i = 0; i < drafts.size(); ++i) drafts[i] = static_cast<int64_t>((i * 5) % v);
  Buf<int64_t> dt(drafts, {b, k});
  const std::vector<uint64_t> streams{1, uint64_t{1} << 35, 77};
  Buf<int64_t> na({b}, -5), tok({b, k + 1}, -5), wna({b}), wtok({b, k + 1});
  ASSERT_EQ(softmax_speculative_verify(nullptr, dt.c(), dp.c(), tp.c(), na.c(), tok.c(), 9, 2,
                                       streams.data(), b),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::speculative_verify(dt.ccpp(), dp.ccpp(), tp.ccpp(), wna.cpp(), wtok.cpp(), 9, 2,
                              streams);
  EXPECT_EQ(na.v, wna.v);
  EXPECT_EQ(tok.v, wtok.v);
  for (int64_t r = 0; r < b; ++r) {  // layout: accepted drafts, one token, then -1
    for (int64_t j = 0; j <= k; ++j) {
      const int64_t t = tok.v[r * (k + 1) + j];
      if (j < na.v[r]) EXPECT_EQ(t, drafts[r * k + j]);
      if (j == na.v[r]) EXPECT_TRUE(t >= 0 && t < v);
      if (j > na.v[r]) EXPECT_EQ(t, -1);
    }
  }
  // Identical draft and target distributions accept every draft token.
  std::vector<float> same(b * (k + 1) * v);
  for (int64_t r = 0; r < b; ++r) {
    std::copy(dp.v.begin() + r * k * v, dp.v.begin() + (r + 1) * k * v,
              same.begin() + r * (k + 1) * v);
    std::fill(same.begin() + (r * (k + 1) + k) * v, same.begin() + (r + 1) * (k + 1) * v,
              1.0f / static_cast<float>(v));
  }
  Buf<float> tsame(same, {b, k + 1, v});
  ASSERT_EQ(softmax_speculative_verify(nullptr, dt.c(), dp.c(), tsame.c(), na.c(), tok.c(), 3, 0,
                                       nullptr, 0),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_EQ(na.v, std::vector<int64_t>(b, k));
  // Error: a target row that does not sum to 1; nothing written.
  tp.v[5] += 0.5;
  na.Fill(-7);
  tok.Fill(-7);
  EXPECT_EQ(softmax_speculative_verify(nullptr, dt.c(), dp.c(), tp.c(), na.c(), tok.c(), 9, 2,
                                       nullptr, 0),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::speculative_verify(dt.ccpp(), dp.ccpp(), tp.ccpp(), wna.cpp(), wtok.cpp(), 9,
                                          2);
            }));
  EXPECT_TRUE(na.All(-7) && tok.All(-7));
  // A streams count without the array.
  EXPECT_EQ(softmax_speculative_verify(nullptr, dt.c(), dp.c(), tp.c(), na.c(), tok.c(), 9, 2,
                                       nullptr, b),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'streams'"), std::string::npos);
}

TEST(CapiServingTest, BeamSearchStepMatchesCppAndBruteForce) {
  const int64_t b = 3, v = 9, w = 2;
  Buf<float> lp(Random(b * v, 2.0f, 9), {b, v});
  Buf<double> bs(std::vector<double>{-0.5, -1.25, -0.75}, {b});
  Buf<int64_t> beams({2 * w}, -1), tokens({2 * w}, -1), wb({2 * w}), wt({2 * w});
  Buf<double> scores({2 * w}), ws({2 * w});
  ASSERT_EQ(softmax_beam_search_step(nullptr, lp.c(), bs.c(), w, beams.c(), tokens.c(), scores.c()),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::beam_search_step(lp.ccpp(), bs.ccpp(), w, wb.cpp(), wt.cpp(), ws.cpp());
  EXPECT_EQ(beams.v, wb.v);
  EXPECT_EQ(tokens.v, wt.v);
  EXPECT_TRUE(SameBits(scores.v, ws.v));
  std::vector<std::tuple<double, int64_t, int64_t>> all;  // (-score, beam, token)
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t t = 0; t < v; ++t) all.emplace_back(-(bs.v[r] + lp.v[r * v + t]), r, t);
  }
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 2 * w; ++i) {
    EXPECT_EQ(beams.v[i], std::get<1>(all[i]));
    EXPECT_EQ(tokens.v[i], std::get<2>(all[i]));
    EXPECT_EQ(scores.v[i], -std::get<0>(all[i]));
  }
  beams.Fill(-3);
  EXPECT_EQ(softmax_beam_search_step(nullptr, lp.c(), bs.c(), 0, beams.c(), tokens.c(), scores.c()),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::beam_search_step(lp.ccpp(), bs.ccpp(), 0, wb.cpp(), wt.cpp(), ws.cpp());
            }));
  EXPECT_TRUE(beams.All(-3));
}

TEST(CapiServingTest, SparsemaxMatchesCppAndASortReference) {
  const int64_t rows = 4, n = 30;
  Buf<float> x(Random(rows * n, 1.5f, 10), {rows, n});
  Buf<float> y({rows, n}), wy({rows, n});
  softmax_options_t o;
  softmax_options_init(&o);
  o.temperature = 0.5;
  ASSERT_EQ(softmax_sparsemax(nullptr, x.c(), y.c(), &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::SoftmaxOptions co;
  co.temperature = 0.5;
  softmax::sparsemax(x.ccpp(), wy.cpp(), co);
  EXPECT_TRUE(SameBits(y.v, wy.v));
  for (int64_t r = 0; r < rows; ++r) {  // the projection by sorting, in long double
    std::vector<long double> z(n);
    for (int64_t i = 0; i < n; ++i) z[i] = static_cast<long double>(x.v[r * n + i]) / 0.5L;
    std::vector<long double> s = z;
    std::sort(s.begin(), s.end(), std::greater<>());
    long double cum = 0, tau = 0;
    for (int64_t j = 0; j < n; ++j) {
      cum += s[j];
      if (1 + (j + 1) * s[j] > cum) tau = (cum - 1) / (j + 1);
    }
    long double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const long double want = std::max(z[i] - tau, 0.0L);
      EXPECT_NEAR(static_cast<double>(y.v[r * n + i]), static_cast<double>(want), 1e-6);
      if (want == 0) EXPECT_EQ(y.v[r * n + i], 0.0f);
      sum += y.v[r * n + i];
    }
    EXPECT_NEAR(static_cast<double>(sum), 1.0, 1e-6);
  }
  Buf<float> dy(Random(rows * n, 1.0f, 11), {rows, n});
  Buf<float> dx({rows, n}), wdx({rows, n});
  ASSERT_EQ(softmax_sparsemax_backward(nullptr, y.c(), dy.c(), dx.c(), &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::sparsemax_backward(y.ccpp(), dy.ccpp(), wdx.cpp(), co);
  EXPECT_TRUE(SameBits(dx.v, wdx.v));
  o.axis = 2;
  co.axis = 2;
  y.Fill(3.0f);
  EXPECT_EQ(softmax_sparsemax(nullptr, x.c(), y.c(), &o), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(), CppError([&] { softmax::sparsemax(x.ccpp(), wy.cpp(), co); }));
  EXPECT_TRUE(y.All(3.0f));
}

TEST(CapiServingTest, GumbelSoftmaxMatchesCpp) {
  const int64_t rows = 3, n = 10;
  Buf<float> x(Random(rows * n, 1.0f, 12), {rows, n});
  Buf<float> dy(Random(rows * n, 1.0f, 13), {rows, n});
  for (int hard = 0; hard < 2; ++hard) {
    softmax_gumbel_softmax_options_t o;
    softmax_gumbel_softmax_options_init(&o);
    o.tau = 0.7;
    o.hard = hard;
    softmax::GumbelSoftmaxOptions co;
    co.tau = 0.7;
    co.hard = hard != 0;
    Buf<float> y({rows, n}), wy({rows, n}), dx({rows, n}), wdx({rows, n});
    ASSERT_EQ(softmax_gumbel_softmax(nullptr, x.c(), y.c(), &o, 5, uint64_t{1} << 34),
              SOFTMAX_STATUS_OK)
        << softmax_last_error();
    softmax::gumbel_softmax(x.ccpp(), wy.cpp(), co, 5, uint64_t{1} << 34);
    EXPECT_TRUE(SameBits(y.v, wy.v)) << hard;
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += y.v[r * n + i];
      EXPECT_NEAR(sum, 1.0, 1e-6);
      if (hard) EXPECT_EQ(std::count(y.v.begin() + r * n, y.v.begin() + (r + 1) * n, 1.0f), 1);
    }
    ASSERT_EQ(
        softmax_gumbel_softmax_backward(nullptr, x.c(), dy.c(), dx.c(), &o, 5, uint64_t{1} << 34),
        SOFTMAX_STATUS_OK)
        << softmax_last_error();
    softmax::gumbel_softmax_backward(x.ccpp(), dy.ccpp(), wdx.cpp(), co, 5, uint64_t{1} << 34);
    EXPECT_TRUE(SameBits(dx.v, wdx.v)) << hard;
  }
  // NULL options = defaults; seeds differing above bit 32 give different noise.
  Buf<float> a({rows, n}), b({rows, n});
  ASSERT_EQ(softmax_gumbel_softmax(nullptr, x.c(), a.c(), nullptr, 1, 0), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_gumbel_softmax(nullptr, x.c(), b.c(), nullptr, 1 + (uint64_t{1} << 32), 0),
            SOFTMAX_STATUS_OK);
  EXPECT_NE(a.v, b.v);
  softmax_gumbel_softmax_options_t o;
  softmax_gumbel_softmax_options_init(&o);
  o.tau = 0.0;
  softmax::GumbelSoftmaxOptions co;
  co.tau = 0.0;
  a.Fill(2.0f);
  EXPECT_EQ(softmax_gumbel_softmax(nullptr, x.c(), a.c(), &o, 1, 0),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(),
            CppError([&] { softmax::gumbel_softmax(x.ccpp(), b.cpp(), co, 1, 0); }));
  EXPECT_TRUE(a.All(2.0f));
}

TEST(CapiServingTest, ConvertAndAvailableTargets) {
  Buf<double> x(std::vector<double>{1.0, 1.0 + 1e-12, -3.5, 1e300}, {4});
  Buf<float> y({4}), wy({4});
  ASSERT_EQ(softmax_convert(nullptr, x.c(), y.c()), SOFTMAX_STATUS_OK) << softmax_last_error();
  softmax::convert(x.ccpp(), wy.cpp());
  EXPECT_TRUE(SameBits(y.v, wy.v));
  EXPECT_EQ(y.v[1], 1.0f);
  EXPECT_EQ(y.v[3], INFINITY);
  Buf<int64_t> bad({4}, 3);
  EXPECT_EQ(softmax_convert(nullptr, x.c(), bad.c()), SOFTMAX_STATUS_DTYPE_MISMATCH);
  EXPECT_EQ(softmax_last_error(), CppError([&] { softmax::convert(x.ccpp(), bad.cpp()); }));
  EXPECT_TRUE(bad.All(3));
  const std::string targets = softmax_available_targets();
  std::string joined;
  for (const std::string& t : softmax::available_targets())
    joined += (joined.empty() ? "" : ",") + t;
  EXPECT_EQ(targets, joined);
  ASSERT_FALSE(targets.empty());
  softmax_context_t* ctx = nullptr;
  ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
  EXPECT_EQ(softmax_context_set_target(ctx, targets.substr(0, targets.find(',')).c_str()),
            SOFTMAX_STATUS_OK);
  softmax_context_destroy(ctx);
}

TEST(CapiServingTest, StructSizesOfTheNewAndExtendedStructs) {
  EXPECT_EQ(sizeof(softmax_sampling_params_t), 15 * 8u);
  EXPECT_EQ(sizeof(softmax_logit_processors_t), 27 * 8u);
  EXPECT_EQ(sizeof(softmax_gumbel_softmax_options_t), 4 * 8u);
  const softmax::LogitProcessors dp;
  softmax_logit_processors_t p;
  softmax_logit_processors_init(&p);
  EXPECT_EQ(p.repetition_penalty, dp.repetition_penalty[0]);
  EXPECT_EQ(p.presence_penalty, dp.presence_penalty[0]);
  EXPECT_EQ(p.frequency_penalty, dp.frequency_penalty[0]);
  EXPECT_EQ(p.min_tokens, dp.min_tokens[0]);
  EXPECT_EQ(p.num_generated, dp.num_generated[0]);
  const softmax::GumbelSoftmaxOptions dg;
  softmax_gumbel_softmax_options_t g;
  softmax_gumbel_softmax_options_init(&g);
  EXPECT_EQ(g.axis, dg.axis);
  EXPECT_EQ(g.tau, dg.tau);
  EXPECT_EQ(g.hard != 0, dg.hard);

  const int64_t b = 2, v = 12;
  Buf<float> x(Random(b * v, 1.0f, 14), {b, v});
  // An older caller of softmax_sampling_params_t (struct_size ends at streams): seeds, offsets
  // and processors take their defaults even though the memory past it holds garbage.
  const Processors proc;
  const std::vector<uint64_t> seeds{1, 2};
  softmax_sampling_params_t sp;
  softmax_sampling_params_init(&sp);
  sp.struct_size = offsetof(softmax_sampling_params_t, seeds);
  EXPECT_EQ(sp.struct_size, 12 * 8u);
  sp.per_row_length = b;
  sp.seeds = seeds.data();
  sp.processors = &proc.c;
  Buf<int64_t> old({b}, -1), plain({b}, -2);
  ASSERT_EQ(softmax_sample(nullptr, x.c(), old.c(), &sp, 42, 0), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  ASSERT_EQ(softmax_sample(nullptr, x.c(), plain.c(), nullptr, 42, 0), SOFTMAX_STATUS_OK);
  EXPECT_EQ(old.v, plain.v);
  // A newer caller: zero bytes past this library's struct are accepted, nonzero ones are not.
  struct NewerParams {
    softmax_sampling_params_t known;
    uint64_t future;
  } newer{};
  softmax_sampling_params_init(&newer.known);
  newer.known.struct_size = sizeof(NewerParams);
  ASSERT_EQ(softmax_sample(nullptr, x.c(), old.c(), &newer.known, 42, 0), SOFTMAX_STATUS_OK);
  newer.future = 1;
  old.Fill(-9);
  EXPECT_EQ(softmax_sample(nullptr, x.c(), old.c(), &newer.known, 42, 0),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'params.struct_size' = 128"), std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(old.All(-9));

  // softmax_logit_processors_t: a caller whose struct ends before the per-row arrays gets the
  // scalar defaults for them; here the struct ends after frequency_penalty, so the bias, bans
  // and EOS fields (garbage pointers) are not read.
  Buf<float> out({b, v}), want({b, v});
  softmax_logit_processors_t short_p = proc.c;
  short_p.struct_size = offsetof(softmax_logit_processors_t, logit_bias_ids);
  short_p.banned_tokens = reinterpret_cast<const int64_t*>(uintptr_t{8});  // never read
  ASSERT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), &short_p), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::LogitProcessors cp;
  cp.prev_tokens = proc.cpp.prev_tokens;
  cp.repetition_penalty = 1.0;  // the per-row array lies past struct_size too
  cp.presence_penalty = 0.5;
  cp.frequency_penalty = 0.25;
  softmax::apply_penalties(x.ccpp(), want.cpp(), cp);
  EXPECT_TRUE(SameBits(out.v, want.v));
  struct NewerProcessors {
    softmax_logit_processors_t known;
    int64_t future[2];
  } np{};
  np.known = proc.c;
  np.known.struct_size = sizeof(NewerProcessors);
  ASSERT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), &np.known), SOFTMAX_STATUS_OK);
  np.future[1] = -1;
  out.Fill(1.5f);
  EXPECT_EQ(softmax_apply_penalties(nullptr, x.c(), out.c(), &np.known),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'processors.struct_size'"), std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(out.All(1.5f));
  // Processors inside sampling params are checked under their own name.
  np.known.struct_size = 12;
  softmax_sampling_params_init(&sp);
  sp.processors = &np.known;
  EXPECT_EQ(softmax_sample(nullptr, x.c(), old.c(), &sp, 1, 0), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'params.processors.struct_size' = 12"),
            std::string::npos)
      << softmax_last_error();

  // softmax_gumbel_softmax_options_t: struct_size 16 (axis only) gives tau and hard defaults.
  softmax_gumbel_softmax_options_t go;
  softmax_gumbel_softmax_options_init(&go);
  go.struct_size = 16;
  go.tau = -1.0;
  go.hard = 1;
  Buf<float> y({b, v}), wy({b, v});
  ASSERT_EQ(softmax_gumbel_softmax(nullptr, x.c(), y.c(), &go, 3, 0), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::gumbel_softmax(x.ccpp(), wy.cpp(), {}, 3, 0);
  EXPECT_TRUE(SameBits(y.v, wy.v));
}

}  // namespace
