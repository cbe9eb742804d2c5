// examples/softmax_llm/llama2.hpp: a llama2.c-format transformer (karpathy/llama2.c, run.c)
// whose attention and softmax are this library's: softmax::attention over the KV cache,
// softmax::argmax / softmax::sample on the logits. Header-only so the program (main.cc) and the
// test (tests/cpu/llm_test.cc) share it.
//
// Checkpoint format: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len; vocab_size < 0 means an unshared classifier follows), then f32 weights in this order:
//   token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim),
//   wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim),
//   w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim),
//   freq_cis_real, freq_cis_imag (seq_len * head_size / 2 each; unused: RoPE is computed),
//   [wcls (vocab, dim) when unshared].
// Each W (out, in) is row-major: y_i = sum_j W[i, j] x_j.
// Architecture per layer: x += Wo attn(RoPE(Wq n(x)), RoPE(Wk n(x)), Wv n(x)) with RMSNorm n
// (eps 1e-5); x += W2 (silu(W1 n(x)) * W3 n(x)) (SwiGLU); logits = Wcls n(x).
// Grouped-query attention: n_heads query heads share n_kv_heads key/value heads.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "softmax/tensor.hpp"

namespace softmax_llm {

struct Config {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  int32_t head_size() const { return dim / n_heads; }
  int32_t kv_dim() const { return head_size() * n_kv_heads; }
};

// Weights (pointers into one owned buffer).
struct Model {
  static constexpr const char* kRules =
      "every size must be > 0, dim a multiple of n_heads, n_heads a multiple of n_kv_heads, an "
      "even head size, dim <= 65536, hidden_dim <= 262144, n_layers <= 1024, vocab_size <= "
      "4194304, seq_len <= 1048576";

  static bool plausible(const Config& c) {
    return c.dim > 0 && c.hidden_dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 &&
           c.vocab_size > 0 && c.seq_len > 0 && c.dim % c.n_heads == 0 &&
           c.n_heads % c.n_kv_heads == 0 && c.head_size() % 2 == 0 && c.dim <= (1 << 16) &&
           c.hidden_dim <= (1 << 18) && c.n_layers <= 1024 && c.vocab_size <= (1 << 22) &&
           c.seq_len <= (1 << 20);
  }

  static std::string header_string(const int32_t* h) {
    const char* names[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                            "n_kv_heads", "vocab_size", "seq_len"};
    std::string s = "(";
    for (int i = 0; i < 7; ++i)
      s += std::string(i ? ", " : "") + names[i] + "=" + std::to_string(h[i]);
    return s + ")";
  }

  // The f32 count of a plausible header's weights; false when it overflows 64 bits.
  static bool weight_count(const Config& c, bool shared, uint64_t& n) {
    const uint64_t D = c.dim, Hd = c.hidden_dim, L = c.n_layers, V = c.vocab_size, KV = c.kv_dim(),
                   hs = c.head_size(), S = c.seq_len;
    const uint64_t terms[][3] = {
        {V, D, 1}, {L, D, 1},      {L, D, D}, {2 * L, KV, D}, {L, D, D},
        {L, D, 1}, {3 * L, Hd, D}, {D, 1, 1}, {S, hs, 1},     {shared ? 0 : V, D, 1}};
    n = 0;
    for (const auto& t : terms) {
      uint64_t p = 0;
      if (__builtin_mul_overflow(t[0], t[1], &p) || __builtin_mul_overflow(p, t[2], &p) ||
          __builtin_add_overflow(n, p, &n)) {
        return false;
      }
    }
    return true;
  }

  Config c;
  std::vector<float> buf;
  const float *tok, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final, *wcls;

  // Throws softmax::Error (kIO) for a missing, truncated or inconsistent checkpoint. Every size
  // the header declares is checked against the file's real size (overflow-safe) before anything
  // is allocated: the file must hold exactly the weights its header implies.
  static Model load(const std::string& path) {
    auto fail = [&](const std::string& why) {
      return softmax::Error(softmax::ErrorKind::kIO, "softmax-llm", path + ": " + why);
    };
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw fail(std::string("cannot open: ") + std::strerror(errno));
    struct stat st;
    if (::fstat(::fileno(f.get()), &st) != 0 || !S_ISREG(st.st_mode)) {
      throw fail("not a regular file");
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    constexpr uint64_t kHeader = 7 * sizeof(int32_t);
    Model m;
    int32_t h[7];
    if (size < kHeader || std::fread(h, sizeof(int32_t), 7, f.get()) != 7) {
      throw fail("truncated header: the file holds " + std::to_string(size) +
                 " bytes, the header needs 28 (7 int32)");
    }
    m.c = Config{h[0], h[1], h[2], h[3], h[4], h[5], h[6]};
    const bool shared = m.c.vocab_size > 0;
    if (!shared && m.c.vocab_size != INT32_MIN) m.c.vocab_size = -m.c.vocab_size;
    const Config& c = m.c;
    if (!plausible(c)) throw fail("implausible header " + header_string(h) + ": " + kRules);
    uint64_t n = 0;
    if (!weight_count(c, shared, n) || n > (UINT64_MAX - kHeader) / sizeof(float)) {
      throw fail("header " + header_string(h) + " overflows: its weight count exceeds 64 bits");
    }
    if (size - kHeader != n * sizeof(float)) {
      throw fail("header " + header_string(h) + " declares " + std::to_string(n * sizeof(float)) +
                 " bytes of f32 weights but the file holds " + std::to_string(size - kHeader) +
                 " after the 28-byte header (" +
                 (size - kHeader < n * sizeof(float) ? "truncated" : "trailing bytes") + ")");
    }
    m.buf.resize(static_cast<size_t>(n));
    if (std::fread(m.buf.data(), sizeof(float), m.buf.size(), f.get()) != m.buf.size()) {
      throw fail("truncated weights (the file shrank while being read)");
    }
    const int64_t D = c.dim, Hd = c.hidden_dim, L = c.n_layers, V = c.vocab_size, KV = c.kv_dim(),
                  hs = c.head_size();
    const float* p = m.buf.data();
    auto take = [&](int64_t count) {
      const float* r = p;
      p += count;
      return r;
    };
    m.tok = take(V * D);
    m.rms_att = take(L * D);
    m.wq = take(L * D * D);
    m.wk = take(L * KV * D);
    m.wv = take(L * KV * D);
    m.wo = take(L * D * D);
    m.rms_ffn = take(L * D);
    m.w1 = take(L * Hd * D);
    m.w2 = take(L * D * Hd);
    m.w3 = take(L * Hd * D);
    m.rms_final = take(D);
    take(c.seq_len * hs);  // freq_cis_real, freq_cis_imag
    m.wcls = shared ? m.tok : take(V * D);
    return m;
  }
};

// y (d) = W (d, n) x (n).
inline void matmul(float* y, const float* x, const float* w, int64_t n, int64_t d) {
  for (int64_t i = 0; i < d; ++i) {
    float acc = 0.0f;
    const float* row = w + i * n;
    for (int64_t j = 0; j < n; ++j) acc += row[j] * x[j];
    y[i] = acc;
  }
}

inline void rmsnorm(float* o, const float* x, const float* w, int64_t n) {
  float ss = 0.0f;
  for (int64_t j = 0; j < n; ++j) ss += x[j] * x[j];
  ss = 1.0f / std::sqrt(ss / static_cast<float>(n) + 1e-5f);
  for (int64_t j = 0; j < n; ++j) o[j] = w[j] * (ss * x[j]);
}

// The running state: activations and the KV cache (L, n_kv_heads, positions, head_size).
class Transformer {
 public:
  // The KV cache holds `positions` positions (default and at most seq_len), so a run of N steps
  // allocates for N, not for whatever seq_len the header declares.
  explicit Transformer(const Model& m, int64_t positions = -1)
      : m_(m), cap_(positions < 0 || positions > m.c.seq_len ? m.c.seq_len : positions) {
    const Config& c = m.c;
    x_.resize(c.dim);
    xb_.resize(c.dim);
    xb2_.resize(c.dim);
    hb_.resize(c.hidden_dim);
    hb2_.resize(c.hidden_dim);
    q_.resize(c.dim);
    logits_.resize(c.vocab_size);
    const size_t cache = static_cast<size_t>(c.n_layers) * static_cast<size_t>(cap_) * c.kv_dim();
    kc_.assign(cache, 0.0f);
    vc_.assign(cache, 0.0f);
  }

  const Config& config() const { return m_.c; }

  // Runs token `token` at position `pos` (0 <= pos < the cache's positions) and returns the
  // logits (vocab).
  // scores, when given, receives the layer-by-layer pre-softmax attention scores of this
  // position, q . k_t / sqrt(head_size) for t <= pos, laid out (n_layers, n_heads, pos + 1):
  // computed separately from the fused attention, for tests.
  const std::vector<float>& forward(int64_t token, int64_t pos,
                                    std::vector<float>* scores = nullptr) {
    const Config& c = m_.c;
    if (token < 0 || token >= c.vocab_size) {
      throw softmax::Error(softmax::ErrorKind::kInvalidArgument, "softmax-llm", "token",
                           std::to_string(token),
                           "must be in [0, " + std::to_string(c.vocab_size) + ")");
    }
    if (pos < 0 || pos >= cap_) {
      throw softmax::Error(
          softmax::ErrorKind::kInvalidArgument, "softmax-llm", "pos", std::to_string(pos),
          "must be in [0, " + std::to_string(cap_) +
              ") (the KV cache's positions; seq_len = " + std::to_string(c.seq_len) + ")");
    }
    const int64_t D = c.dim, KV = c.kv_dim(), hs = c.head_size(), Hd = c.hidden_dim;
    const int64_t H = c.n_heads, Hkv = c.n_kv_heads, S = cap_;
    std::memcpy(x_.data(), m_.tok + token * D, static_cast<size_t>(D) * sizeof(float));
    if (scores) scores->assign(static_cast<size_t>(c.n_layers * H * (pos + 1)), 0.0f);
    for (int64_t l = 0; l < c.n_layers; ++l) {
      rmsnorm(xb_.data(), x_.data(), m_.rms_att + l * D, D);
      float* kcache = kc_.data() + l * Hkv * S * hs;
      float* vcache = vc_.data() + l * Hkv * S * hs;
      std::vector<float> k(static_cast<size_t>(KV)), v(static_cast<size_t>(KV));
      matmul(q_.data(), xb_.data(), m_.wq + l * D * D, D, D);
      matmul(k.data(), xb_.data(), m_.wk + l * KV * D, D, KV);
      matmul(v.data(), xb_.data(), m_.wv + l * KV * D, D, KV);
      // RoPE (rotary embeddings) on q and k, pairs (i, i + 1) within each head.
      for (int64_t i = 0; i < D; i += 2) {
        const int64_t hd = i % hs;
        const float freq =
            1.0f / std::pow(10000.0f, static_cast<float>(hd) / static_cast<float>(hs));
        const float val = static_cast<float>(pos) * freq;
        const float fcr = std::cos(val), fci = std::sin(val);
        for (int rot = 0; rot < (i < KV ? 2 : 1); ++rot) {
          float* vec = rot == 0 ? q_.data() : k.data();
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      for (int64_t h = 0; h < Hkv; ++h) {
        std::memcpy(kcache + (h * S + pos) * hs, k.data() + h * hs,
                    static_cast<size_t>(hs) * sizeof(float));
        std::memcpy(vcache + (h * S + pos) * hs, v.data() + h * hs,
                    static_cast<size_t>(hs) * sizeof(float));
      }
      if (scores) {
        const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
        for (int64_t h = 0; h < H; ++h) {
          const float* kh = kcache + (h / (H / Hkv)) * S * hs;
          for (int64_t t = 0; t <= pos; ++t) {
            float dot = 0.0f;
            for (int64_t d = 0; d < hs; ++d) dot += q_[h * hs + d] * kh[t * hs + d];
            (*scores)[static_cast<size_t>((l * H + h) * (pos + 1) + t)] = dot * scale;
          }
        }
      }
      // softmax(q k^T / sqrt(hs)) v over the cache: one query per head, keys 0..pos; causal
      // bottom-right (the query is the last position) keeps them all.
      softmax::MaskOptions o;
      o.causal = true;
      o.align = softmax::Align::kBottomRight;
      o.threads = 1;
      softmax::attention(
          softmax::ConstTensorView(q_.data(), softmax::DType::f32, {1, H, 1, hs},
                                   {H * hs, hs, hs, 1}),
          softmax::ConstTensorView(kcache, softmax::DType::f32, {1, Hkv, pos + 1, hs},
                                   {Hkv * S * hs, S * hs, hs, 1}),
          softmax::ConstTensorView(vcache, softmax::DType::f32, {1, Hkv, pos + 1, hs},
                                   {Hkv * S * hs, S * hs, hs, 1}),
          softmax::TensorView(xb_.data(), softmax::DType::f32, {1, H, 1, hs}, {H * hs, hs, hs, 1}),
          o);
      matmul(xb2_.data(), xb_.data(), m_.wo + l * D * D, D, D);
      for (int64_t i = 0; i < D; ++i) x_[i] += xb2_[i];
      rmsnorm(xb_.data(), x_.data(), m_.rms_ffn + l * D, D);
      matmul(hb_.data(), xb_.data(), m_.w1 + l * Hd * D, D, Hd);
      matmul(hb2_.data(), xb_.data(), m_.w3 + l * Hd * D, D, Hd);
      for (int64_t i = 0; i < Hd; ++i) {
        const float a = hb_[i];
        hb_[i] = a * (1.0f / (1.0f + std::exp(-a))) * hb2_[i];  // SwiGLU: silu(w1 x) * w3 x
      }
      matmul(xb_.data(), hb_.data(), m_.w2 + l * D * Hd, Hd, D);
      for (int64_t i = 0; i < D; ++i) x_[i] += xb_[i];
    }
    rmsnorm(x_.data(), x_.data(), m_.rms_final, D);
    matmul(logits_.data(), x_.data(), m_.wcls, D, c.vocab_size);
    return logits_;
  }

 private:
  const Model& m_;
  int64_t cap_;  // positions the KV cache holds
  std::vector<float> x_, xb_, xb2_, hb_, hb2_, q_, logits_, kc_, vc_;
};

}  // namespace softmax_llm
