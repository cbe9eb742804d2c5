// tests/cpu/llm_test.cc: the softmax-llm model code (examples/softmax_llm/llama2.hpp), which
// runs the stories260K llama2.c checkpoint with softmax::attention, against the shared
// reference data: per-step logits of 256 greedy steps (stories260K_logits.npy) within 1e-4 and
// the pre-softmax attention scores of the first 128 positions (stories260K_attn_scores.npy).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "examples/softmax_llm/llama2.hpp"
#include "softmax/attention.hpp"
#include "softmax/ops.hpp"
#include "softmax/sampling.hpp"
#include "src/ref/attention_reference.hpp"

namespace {

const std::string kData = SOFTMAX_SHARED_DATA;

bool load_model(softmax_llm::Model& m) {
  try {
    m = softmax_llm::Model::load(kData + "/stories260K.bin");
    return true;
  } catch (const softmax::Error&) {
    return false;
  }
}

TEST(SoftmaxLlm, GreedyLogitsMatchReference) {
  softmax_llm::Model model;
  std::vector<int64_t> shape;
  std::vector<float> ref;
  if (!load_model(model) ||
      !attn_ref::read_npy_f32(kData + "/stories260K_logits.npy", shape, ref)) {
    GTEST_SKIP() << "shared data not available";
  }
  ASSERT_EQ(model.c.dim, 64);
  ASSERT_EQ(model.c.n_heads, 8);
  ASSERT_EQ(model.c.n_kv_heads, 4);
  ASSERT_EQ(shape, (std::vector<int64_t>{256, 512}));
  softmax_llm::Transformer tf(model);
  int64_t token = 1;
  double worst = 0;
  for (int64_t pos = 0; pos < 256; ++pos) {
    const std::vector<float>& logits = tf.forward(token, pos);
    for (int64_t v = 0; v < 512; ++v) {
      const double d = std::fabs(logits[v] - ref[static_cast<size_t>(pos * 512 + v)]);
      worst = std::max(worst, d);
      ASSERT_LE(d, 1e-4) << "step " << pos << " token " << v;
    }
    token = softmax::argmax(std::span<const float>(logits));
    ASSERT_EQ(token, softmax::argmax(std::span<const float>(ref.data() + pos * 512, 512)))
        << "step " << pos;
  }
  RecordProperty("max_abs_logit_error", std::to_string(worst));
}

TEST(SoftmaxLlm, AttentionScoresMatchReference) {
  softmax_llm::Model model;
  std::vector<int64_t> shape;
  std::vector<float> ref;
  if (!load_model(model) ||
      !attn_ref::read_npy_f32(kData + "/stories260K_attn_scores.npy", shape, ref)) {
    GTEST_SKIP() << "shared data not available";
  }
  ASSERT_EQ(shape, (std::vector<int64_t>{5, 8, 128, 128}));
  softmax_llm::Transformer tf(model);
  int64_t token = 1;
  std::vector<float> scores;
  for (int64_t pos = 0; pos < 128; ++pos) {
    const std::vector<float>& logits = tf.forward(token, pos, &scores);
    for (int64_t l = 0; l < 5; ++l)
      for (int64_t h = 0; h < 8; ++h)
        for (int64_t t = 0; t < 128; ++t) {
          const float r = ref[static_cast<size_t>(((l * 8 + h) * 128 + pos) * 128 + t)];
          if (t > pos) {
            ASSERT_EQ(r, -std::numeric_limits<float>::infinity());
            continue;
          }
          const float got = scores[static_cast<size_t>((l * 8 + h) * (pos + 1) + t)];
          ASSERT_NEAR(got, r, 1e-4 * std::max(1.0f, std::fabs(r)))
              << "layer " << l << " head " << h << " query " << pos << " key " << t;
        }
    token = softmax::argmax(std::span<const float>(logits));
  }
  // The fused attention over these scores' rows is what the model used; check its softmax
  // weights once more through masked_softmax of the captured row at the last position.
  std::vector<float> row(scores.begin(), scores.begin() + 128), w(128), plain(128);
  softmax::masked_softmax(softmax::ConstTensorView(row.data(), {1, 128}),
                          softmax::TensorView(w.data(), {1, 128}));
  softmax::softmax(std::span<const float>(row), std::span<float>(plain));
  EXPECT_EQ(w, plain);
}

TEST(SoftmaxLlm, SamplingIsSeededAndTopPHonoured) {
  softmax_llm::Model model;
  if (!load_model(model)) GTEST_SKIP() << "shared data not available";
  auto generate = [&](double t, double p, uint64_t seed) {
    softmax_llm::Transformer tf(model);
    softmax::SamplingParams params;
    params.temperature = t;
    params.top_p = p;
    int64_t token = 1;
    std::vector<int64_t> out;
    for (int64_t pos = 0; pos < 40; ++pos) {
      const auto& logits = tf.forward(token, pos);
      token = t == 0 ? softmax::argmax(std::span<const float>(logits))
                     : softmax::sample(std::span<const float>(logits), params, seed,
                                       static_cast<uint64_t>(pos));
      out.push_back(token);
    }
    return out;
  };
  const auto greedy = generate(0, 1, 0);
  EXPECT_EQ(greedy[0], 461);
  EXPECT_EQ(generate(1.0, 1.0, 7), generate(1.0, 1.0, 7));  // reproducible
  EXPECT_NE(generate(1.0, 1.0, 7), greedy);                 // temperature is honoured
  EXPECT_NE(generate(1.0, 1.0, 7), generate(1.0, 1.0, 8));  // the seed is honoured
  EXPECT_EQ(generate(1.0, 1e-6, 7), greedy);                // top-p: only the top token
}

// Crafted checkpoints: every size the header declares is checked against the file before any
// allocation, so these throw kIO at once (a 28-byte file declaring 27 GB of weights included).
TEST(SoftmaxLlm, CraftedHeadersAreRejectedBeforeAllocating) {
  const std::string path = testing::TempDir() + "/softmax_llm_crafted.bin";
  auto write = [&](std::vector<int32_t> header, std::size_t weight_bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(header.data(), sizeof(int32_t), header.size(), f);
    const std::vector<char> zeros(weight_bytes, 0);
    if (!zeros.empty()) std::fwrite(zeros.data(), 1, zeros.size(), f);
    std::fclose(f);
  };
  auto message = [&]() -> std::string {
    try {
      softmax_llm::Model::load(path);
    } catch (const softmax::Error& e) {
      EXPECT_EQ(e.kind(), softmax::ErrorKind::kIO);
      return e.what();
    }
    return "(loaded)";
  };
  write({4096, 11008, 32, 32, 32, 32000, 2048}, 0);  // llama-7B sizes, no weights
  EXPECT_NE(message().find("declares 26430423040 bytes"), std::string::npos) << message();
  write({-64, 172, 5, 8, 4, 512, 512}, 4096);
  EXPECT_NE(message().find("implausible header (dim=-64"), std::string::npos) << message();
  write({64, 172, 5}, 0);
  EXPECT_NE(message().find("truncated header"), std::string::npos) << message();
  // A tiny consistent header: exactly its weights load; one float fewer or more does not.
  const int32_t d = 8, hd = 12, l = 1, h = 2, kv_h = 1, v = 7, s = 5, hs = d / h, kv = hs * kv_h;
  const std::size_t n =
      v * d + l * d + l * d * d + 2 * l * kv * d + l * d * d + l * d + 3 * l * hd * d + d + s * hs;
  write({d, hd, l, h, kv_h, v, s}, 4 * n);
  EXPECT_EQ(message(), "(loaded)");
  write({d, hd, l, h, kv_h, v, s}, 4 * n - 4);
  EXPECT_NE(message().find("(truncated)"), std::string::npos) << message();
  write({d, hd, l, h, kv_h, v, s}, 4 * n + 4);
  EXPECT_NE(message().find("(trailing bytes)"), std::string::npos) << message();
  std::remove(path.c_str());
}

// The KV cache is sized by the positions asked for; a position past them is refused.
TEST(SoftmaxLlm, KvCacheHoldsTheRequestedPositions) {
  softmax_llm::Model model;
  if (!load_model(model)) GTEST_SKIP() << "shared data not available";
  softmax_llm::Transformer full(model), short_cache(model, 8);
  int64_t token = 1;
  for (int64_t pos = 0; pos < 8; ++pos) {
    const std::vector<float> a = full.forward(token, pos);
    const std::vector<float>& b = short_cache.forward(token, pos);
    ASSERT_EQ(a, b) << "pos " << pos;
    token = softmax::argmax(std::span<const float>(a));
  }
  EXPECT_THROW(short_cache.forward(token, 8), softmax::Error);
}

}  // namespace
