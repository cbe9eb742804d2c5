// tests/cpu/logit_processors_test.cc: the logit processors (softmax/logit_processors.hpp):
// apply_penalties against the long double reference (src/ref/serving_reference.cc); each
// processor's direction (a test that fails when it is ignored or has the wrong sign); sample()
// with processors draws exactly what sample() draws from the processed logits; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/logit_processors.hpp"
#include "softmax/sampling.hpp"
#include "src/ref/serving_reference.hpp"

namespace {

using softmax::DType;
using softmax::LogitProcessors;
using softmax::SamplingParams;
using LD = long double;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<float> processed(const std::vector<float>& x, int64_t b, int64_t v,
                             const LogitProcessors& p) {
  std::vector<float> y(x.size());
  softmax::apply_penalties(softmax::ConstTensorView(x.data(), DType::f32, {b, v}),
                           softmax::TensorView(y.data(), DType::f32, {b, v}), p);
  return y;
}

std::vector<float> random_logits(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& e : x) e = nd(rng);
  return x;
}

// Per-row parameters, repeated previous tokens, bias, bans and EOS suppression, against the
// long double reference: |got - ref| <= 2^-22 |ref| (two f32 roundings) per entry.
TEST(LogitProcessors, MatchesReference) {
  const int64_t B = 3, V = 64;
  const std::vector<float> x = random_logits(B * V, 11);
  const std::vector<int64_t> prev{3, 3, 3, 9, 17, 17, 40, 1, 2, 3, 5, 5, 63};
  const std::vector<int64_t> prev_off{0, 7, 10, 13};
  const std::vector<double> rho{1.3, 0.8, 2.0}, pres{0.5, -0.25, 0.0}, freq{0.125, 0.0, 1.5};
  const std::vector<int64_t> bias_ids{
      3,
      20,
      21,
      7,
  };
  const std::vector<int64_t> bias_off{0, 3, 4, 4};
  const std::vector<double> bias_vals{1.5, -2.0, 4.0, 10.0};
  const std::vector<int64_t> banned{30, 31};
  const std::vector<int64_t> eos{0, 62};
  const std::vector<int64_t> min_tokens{5, 2, 0};
  LogitProcessors p;
  p.prev_tokens = {prev, prev_off};
  p.repetition_penalty = rho;
  p.presence_penalty = pres;
  p.frequency_penalty = freq;
  p.logit_bias = {bias_ids, bias_off};
  p.logit_bias_values = bias_vals;
  p.banned_tokens = {banned, {}};
  p.eos_token_ids = eos;
  p.min_tokens = min_tokens;
  const std::vector<float> y = processed(x, B, V, p);
  for (int64_t r = 0; r < B; ++r) {
    softmax::ref::ProcessorsRef rp;
    rp.prev.assign(prev.begin() + prev_off[r], prev.begin() + prev_off[r + 1]);
    rp.repetition = rho[r];
    rp.presence = pres[r];
    rp.frequency = freq[r];
    for (int64_t j = bias_off[r]; j < bias_off[r + 1]; ++j)
      rp.bias.emplace_back(bias_ids[j], bias_vals[j]);
    rp.banned = banned;
    rp.eos = eos;
    rp.min_tokens = min_tokens[r];
    rp.generated = static_cast<int64_t>(rp.prev.size());
    const std::vector<LD> ref = softmax::ref::process_logits(
        std::vector<LD>(x.begin() + r * V, x.begin() + (r + 1) * V), rp);
    for (int64_t i = 0; i < V; ++i) {
      const float got = y[r * V + i];
      if (std::isinf(ref[i])) {
        EXPECT_EQ(got, kNegInf) << r << "," << i;
      } else {
        EXPECT_NEAR(got, static_cast<double>(ref[i]),
                    0x1p-22 * std::fabs(static_cast<double>(ref[i])) + 1e-30)
            << "row " << r << " token " << i;
      }
    }
  }
  // Row 0 generated 7 tokens >= min 5: EOS kept; row 1 generated 3 >= 2: kept. With 1 token:
  std::vector<int64_t> gen{1, 1, 1};
  p.num_generated = gen;
  const std::vector<float> y2 = processed(x, B, V, p);
  EXPECT_EQ(y2[0 * V + 0], kNegInf);
  EXPECT_EQ(y2[1 * V + 62], kNegInf);
  EXPECT_EQ(y2[2 * V + 0], x[2 * V + 0]);  // min_tokens 0: off
}

// CTRL rule: a penalty > 1 lowers the logit of a repeated token of either sign (Hugging Face's
// old rule divided negative logits too, raising them).
TEST(LogitProcessors, RepetitionPenaltyLowersPositiveAndNegative) {
  const std::vector<float> x{2.0f, -2.0f, 0.5f, -0.5f, 1.0f};
  const std::vector<int64_t> prev{0, 1};
  LogitProcessors p;
  p.prev_tokens = {prev, {}};
  p.repetition_penalty = 2.0;
  const std::vector<float> y = processed(x, 1, 5, p);
  EXPECT_EQ(y[0], 1.0f);   // 2 / 2
  EXPECT_EQ(y[1], -4.0f);  // -2 * 2
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(y[4], 1.0f);
  // Probabilities of both repeated tokens fall (softmax of the processed row).
  std::vector<double> p0(5), p1(5);
  SamplingParams sp;
  sp.processors = &p;
  softmax::filtered_probs(softmax::ConstTensorView(x.data(), DType::f32, {1, 5}),
                          softmax::TensorView(p1.data(), DType::f64, {1, 5}), sp);
  softmax::filtered_probs(softmax::ConstTensorView(x.data(), DType::f32, {1, 5}),
                          softmax::TensorView(p0.data(), DType::f64, {1, 5}), {});
  EXPECT_LT(p1[0], p0[0]);
  EXPECT_LT(p1[1], p0[1]);
  // A penalty < 1 raises both.
  p.repetition_penalty = 0.5;
  const std::vector<float> z = processed(x, 1, 5, p);
  EXPECT_EQ(z[0], 4.0f);
  EXPECT_EQ(z[1], -1.0f);
}

// OpenAI: x - count * frequency - (count > 0) * presence, after the repetition penalty.
TEST(LogitProcessors, PresenceAndFrequencyPenalties) {
  const std::vector<float> x{4.0f, -4.0f, 1.0f, 0.0f};
  const std::vector<int64_t> prev{0, 0, 0, 1, 2, 0};
  LogitProcessors p;
  p.prev_tokens = {prev, {}};
  p.presence_penalty = 0.5;
  p.frequency_penalty = 0.25;
  std::vector<float> y = processed(x, 1, 4, p);
  EXPECT_EQ(y[0], 4.0f - 4 * 0.25f - 0.5f);
  EXPECT_EQ(y[1], -4.0f - 0.25f - 0.5f);
  EXPECT_EQ(y[2], 1.0f - 0.25f - 0.5f);
  EXPECT_EQ(y[3], 0.0f);  // never seen: untouched
  // After the repetition penalty, on its result.
  p.repetition_penalty = 2.0;
  y = processed(x, 1, 4, p);
  EXPECT_EQ(y[0], 2.0f - 1.0f - 0.5f);
  EXPECT_EQ(y[1], -8.0f - 0.75f);
  // Negative penalties reward.
  p.repetition_penalty = 1.0;
  p.presence_penalty = -1.0;
  p.frequency_penalty = 0.0;
  y = processed(x, 1, 4, p);
  EXPECT_EQ(y[0], 5.0f);
}

TEST(LogitProcessors, BiasBansAndMinLength) {
  const int64_t V = 16;
  std::vector<float> x(V, 0.0f);
  x[5] = 6.0f;  // EOS, the most probable token
  const std::vector<int64_t> bias_ids{2, 2, 9};
  const std::vector<double> bias_vals{1.0, 2.5, -3.0};
  const std::vector<int64_t> banned{7};
  const std::vector<int64_t> eos{5};
  LogitProcessors p;
  p.logit_bias = {bias_ids, {}};
  p.logit_bias_values = bias_vals;
  p.banned_tokens = {banned, {}};
  p.eos_token_ids = eos;
  p.min_tokens = int64_t{3};
  p.num_generated = int64_t{2};
  const std::vector<float> y = processed(x, 1, V, p);
  EXPECT_EQ(y[2], 3.5f);
  EXPECT_EQ(y[9], -3.0f);
  EXPECT_EQ(y[7], kNegInf);
  EXPECT_EQ(y[5], kNegInf);
  // Drawn: never 5 (suppressed) or 7 (banned); token 2 (bias +3.5) is the most frequent.
  SamplingParams sp;
  sp.processors = &p;
  std::vector<int64_t> cnt(V, 0);
  std::vector<int64_t> t(4000);
  softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {1, V}),
                  softmax::TensorView(t.data(), DType::i64, {1, 4000}), sp, 3);
  for (int64_t id : t) ++cnt[id];
  EXPECT_EQ(cnt[5], 0);
  EXPECT_EQ(cnt[7], 0);
  EXPECT_GT(cnt[2], 4000 / 2);
  // Once the minimum length is reached, EOS is drawn (greedy: it is the argmax).
  p.num_generated = int64_t{3};
  sp.temperature = 0.0;
  EXPECT_EQ(softmax::sample(std::span<const float>(x), sp, 3), 5);
  p.num_generated = int64_t{2};
  EXPECT_EQ(softmax::sample(std::span<const float>(x), sp, 3), 2);
}

// sample(x, processors) draws bit for bit what sample(apply_penalties(x)) draws, for every
// method, filter and dtype; and inactive processors change nothing.
TEST(LogitProcessors, SampleUsesProcessedLogits) {
  const int64_t B = 4, V = 300;
  const std::vector<float> x = random_logits(B * V, 5);
  const std::vector<int64_t> prev{1, 2, 2, 250, 7, 7, 7, 8};
  const std::vector<int64_t> off{0, 3, 4, 4, 8};
  const std::vector<int64_t> bias_ids{10, 11};
  const std::vector<double> bias_vals{3.0, -1.0};
  LogitProcessors p;
  p.prev_tokens = {prev, off};
  p.repetition_penalty = 1.7;
  p.frequency_penalty = 0.4;
  p.logit_bias = {bias_ids, {}};
  p.logit_bias_values = bias_vals;
  const std::vector<float> y = processed(x, B, V, p);
  for (auto method : {softmax::SamplingMethod::kInverseCdf, softmax::SamplingMethod::kGumbelMax}) {
    SamplingParams plain;
    plain.method = method;
    plain.temperature = 0.8;
    plain.top_p = 0.95;
    plain.top_k = 50;
    SamplingParams with = plain;
    with.processors = &p;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      const auto a =
          softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {B, V}), with, seed);
      const auto b =
          softmax::sample(softmax::ConstTensorView(y.data(), DType::f32, {B, V}), plain, seed);
      EXPECT_EQ(a, b) << "seed " << seed;
    }
  }
  LogitProcessors off_p;  // all off
  SamplingParams with_off;
  with_off.processors = &off_p;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    EXPECT_EQ(
        softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {B, V}), with_off, seed),
        softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {B, V}), {}, seed));
  }
}

TEST(LogitProcessors, F64AndInPlace) {
  const int64_t V = 8;
  std::vector<double> x{1, -1, 2, -2, 3, -3, 0.5, 0};
  const std::vector<int64_t> prev{0, 1, 1};
  LogitProcessors p;
  p.prev_tokens = {prev, {}};
  p.repetition_penalty = 3.0;
  p.frequency_penalty = 0.1;
  softmax::apply_penalties(softmax::ConstTensorView(x.data(), DType::f64, {1, V}),
                           softmax::TensorView(x.data(), DType::f64, {1, V}), p);
  EXPECT_DOUBLE_EQ(x[0], 1.0 / 3 - 0.1);
  EXPECT_DOUBLE_EQ(x[1], -3.0 - 0.2);
  EXPECT_EQ(x[2], 2.0);
}

// Batch invariance with processors: row r of a batch (its own lists, penalties, seed and
// stream) draws what a one-row call with row r's slice draws.
TEST(LogitProcessors, BatchInvariant) {
  const int64_t B = 4, V = 500, D = 6;
  const std::vector<float> x = random_logits(B * V, 21);
  const std::vector<int64_t> prev{1, 2, 2, 250, 7, 7, 7, 8, 9, 9};
  const std::vector<int64_t> off{0, 3, 4, 4, 10};
  const std::vector<double> rho{1.2, 1.5, 1.0, 2.0}, freq{0.1, 0.0, 0.5, 0.2};
  const std::vector<uint64_t> seeds{3, 3 + (uint64_t{1} << 33), 8, 9};
  const std::vector<uint64_t> streams{uint64_t{1} << 45, 1, 2, 3};
  LogitProcessors p;
  p.prev_tokens = {prev, off};
  p.repetition_penalty = rho;
  p.frequency_penalty = freq;
  SamplingParams sp;
  sp.processors = &p;
  sp.seeds = seeds;
  sp.streams = streams;
  sp.top_p = 0.9;
  std::vector<int64_t> batch(static_cast<std::size_t>(B * D));
  softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {B, V}),
                  softmax::TensorView(batch.data(), DType::i64, {B, D}), sp, 0);
  for (int64_t r = 0; r < B; ++r) {
    const std::vector<int64_t> mine(prev.begin() + off[r], prev.begin() + off[r + 1]);
    LogitProcessors q;
    q.prev_tokens = {mine, {}};
    q.repetition_penalty = rho[r];
    q.frequency_penalty = freq[r];
    SamplingParams one;
    one.processors = &q;
    one.top_p = 0.9;
    one.streams = std::span<const uint64_t>(&streams[r], 1);
    std::vector<int64_t> out(static_cast<std::size_t>(D));
    softmax::sample(softmax::ConstTensorView(x.data() + r * V, DType::f32, {1, V}),
                    softmax::TensorView(out.data(), DType::i64, {1, D}), one, seeds[r]);
    EXPECT_EQ(out, std::vector<int64_t>(batch.begin() + r * D, batch.begin() + (r + 1) * D)) << r;
  }
}

void expect_error(const LogitProcessors& p, const char* needle, int64_t b = 2, int64_t v = 8) {
  const std::vector<float> x(static_cast<std::size_t>(b * v), 0.5f);
  std::vector<float> y(x.size(), -7.0f);
  try {
    softmax::apply_penalties(softmax::ConstTensorView(x.data(), DType::f32, {b, v}),
                             softmax::TensorView(y.data(), DType::f32, {b, v}), p);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const softmax::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  for (float e : y) EXPECT_EQ(e, -7.0f) << "written on failure: " << needle;
  // sample() rejects the same processors, naming itself.
  SamplingParams sp;
  sp.processors = &p;
  std::vector<int64_t> t(static_cast<std::size_t>(b), -7);
  EXPECT_THROW(softmax::sample(softmax::ConstTensorView(x.data(), DType::f32, {b, v}),
                               softmax::TensorView(t.data(), DType::i64, {b}), sp, 0),
               softmax::Error);
  for (int64_t e : t) EXPECT_EQ(e, -7);
}

TEST(LogitProcessors, Errors) {
  const std::vector<int64_t> ok_ids{1, 2}, bad_ids{1, 8}, neg_ids{-1};
  const std::vector<int64_t> bad_off{0, 1}, dec_off{0, 3, 2}, end_off{0, 1, 1};
  const std::vector<double> one{1.0}, nan1{std::nan("")}, inf1{INFINITY};
  const std::vector<double> three{1, 1, 1};
  auto with = [](auto set) {
    LogitProcessors p;
    set(p);
    return p;
  };
  expect_error(with([&](LogitProcessors& p) {
                 p.prev_tokens = {ok_ids, {}};
                 p.repetition_penalty = 0.0;
               }),
               "'repetition_penalty'");
  expect_error(with([&](LogitProcessors& p) { p.repetition_penalty = -1.0; }),
               "'repetition_penalty'");
  expect_error(with([&](LogitProcessors& p) { p.repetition_penalty = std::nan(""); }),
               "'repetition_penalty'");
  expect_error(with([&](LogitProcessors& p) { p.presence_penalty = INFINITY; }),
               "'presence_penalty'");
  expect_error(with([&](LogitProcessors& p) { p.frequency_penalty = std::nan(""); }),
               "'frequency_penalty'");
  expect_error(with([&](LogitProcessors& p) { p.frequency_penalty = three; }), "one value per row");
  expect_error(with([&](LogitProcessors& p) { p.prev_tokens = {bad_ids, {}}; }), "'prev_tokens'");
  expect_error(with([&](LogitProcessors& p) { p.prev_tokens = {neg_ids, {}}; }), "[0, 8)");
  expect_error(with([&](LogitProcessors& p) { p.prev_tokens = {ok_ids, bad_off}; }), "B + 1");
  expect_error(with([&](LogitProcessors& p) {
                 p.prev_tokens = {ok_ids, dec_off};
               }),
               "nondecreasing");
  expect_error(with([&](LogitProcessors& p) {
                 p.prev_tokens = {ok_ids, end_off};
               }),
               "end at the number");
  expect_error(with([&](LogitProcessors& p) {
                 p.logit_bias = {ok_ids, {}};
                 p.logit_bias_values = one;
               }),
               "one bias per id");
  const std::vector<int64_t> one_id{3};
  expect_error(with([&](LogitProcessors& p) {
                 p.logit_bias = {one_id, {}};
                 p.logit_bias_values = nan1;
               }),
               "finite or -inf");
  expect_error(with([&](LogitProcessors& p) {
                 p.logit_bias = {one_id, {}};
                 p.logit_bias_values = inf1;
               }),
               "finite or -inf");
  expect_error(with([&](LogitProcessors& p) {
                 p.banned_tokens = {bad_ids, {}};
               }),
               "'banned_tokens'");
  expect_error(with([&](LogitProcessors& p) { p.eos_token_ids = bad_ids; }), "'eos_token_ids'");
  expect_error(with([&](LogitProcessors& p) { p.min_tokens = int64_t{-1}; }), "'min_tokens'");
  expect_error(with([&](LogitProcessors& p) { p.num_generated = int64_t{-2}; }), "'num_generated'");
  // Banning every token leaves nothing to draw: a row error from sample.
  const std::vector<int64_t> all{0, 1, 2, 3};
  LogitProcessors p;
  p.banned_tokens = {all, {}};
  SamplingParams sp;
  sp.processors = &p;
  const std::vector<float> x(4, 0.0f);
  EXPECT_THROW(softmax::sample(std::span<const float>(x), sp, 0), softmax::Error);
  // Probabilities take no processors.
  std::vector<int64_t> t(1);
  EXPECT_THROW(softmax::sample_from_probs(softmax::ConstTensorView(x.data(), DType::f32, {1, 4}),
                                          softmax::TensorView(t.data(), DType::i64, {1}), sp, 0),
               softmax::Error);
}

}  // namespace
