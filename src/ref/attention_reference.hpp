// src/ref/attention_reference.hpp: a float64 reference of masked softmax and attention written
// straight from the rules in include/softmax/attention.hpp (materialises the scores): the oracle of
// the masked-softmax, attention and attention-backward tests and of bench/attention_bench.
// Operands are full (already broadcast) arrays.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace attn_ref {

struct Mask {
  double scale = 1.0;
  double softcap = 0.0;
  bool causal = false;
  bool bottom_right = false;
  int64_t window_left = -1, window_right = -1;
  std::vector<double> slopes;  // per head, or empty
  std::vector<double> bias;    // (B, H, Sq, Sk) or empty
  std::vector<int> keep;       // (B, H, Sq, Sk) or empty (nonzero = keep)
};

inline bool kept(const Mask& m, int64_t idx, int64_t i, int64_t j, int64_t sq, int64_t sk) {
  const int64_t p = i + (m.bottom_right ? sk - sq : 0);
  if (m.causal && j > p) return false;
  if (m.window_left >= 0 && j < p - m.window_left) return false;
  if (m.window_right >= 0 && j > p + m.window_right) return false;
  if (!m.keep.empty() && m.keep[idx] == 0) return false;
  return true;
}

// y (B, H, Sq, Sk) and lse (B, H, Sq) of masked softmax over s (B, H, Sq, Sk), in double.
inline void masked_softmax(const std::vector<double>& s, int64_t B, int64_t H, int64_t sq,
                           int64_t sk, const Mask& m, std::vector<double>& y,
                           std::vector<double>& lse) {
  const double inf = std::numeric_limits<double>::infinity();
  y.assign(s.size(), 0.0);
  lse.assign(static_cast<size_t>(B * H * sq), -inf);
  std::vector<double> x(static_cast<size_t>(sk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < sq; ++i) {
        const int64_t row = (b * H + h) * sq + i;
        double mx = -inf;
        for (int64_t j = 0; j < sk; ++j) {
          const int64_t idx = row * sk + j;
          if (!kept(m, idx, i, j, sq, sk)) {
            x[j] = -inf;
            continue;
          }
          double v = s[idx] * m.scale;
          if (m.softcap > 0) v = m.softcap * std::tanh(v / m.softcap);
          if (!m.slopes.empty())
            v -= m.slopes[h] * std::fabs(double(i + (m.bottom_right ? sk - sq : 0) - j));
          if (!m.bias.empty()) v += m.bias[idx];
          x[j] = v;
          mx = std::max(mx, v);
        }
        if (mx == -inf) continue;  // fully masked: 0, lse -inf
        double sum = 0;
        for (int64_t j = 0; j < sk; ++j) sum += std::exp(x[j] - mx);
        for (int64_t j = 0; j < sk; ++j) y[row * sk + j] = std::exp(x[j] - mx) / sum;
        lse[row] = mx + std::log(sum);
      }
}

// out (B, Hq, Sq, Dv), lse (B, Hq, Sq) of attention; q (B, Hq, Sq, D), k (B, Hkv, Sk, D),
// v (B, Hkv, Sk, Dv) contiguous.
inline void attention(const std::vector<double>& q, const std::vector<double>& k,
                      const std::vector<double>& v, int64_t B, int64_t hq, int64_t hkv, int64_t sq,
                      int64_t sk, int64_t d, int64_t dv, const Mask& m, std::vector<double>& out,
                      std::vector<double>& lse) {
  std::vector<double> s(static_cast<size_t>(B * hq * sq * sk));
  const int64_t g = hq / hkv;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t i = 0; i < sq; ++i)
        for (int64_t j = 0; j < sk; ++j) {
          double acc = 0;
          for (int64_t x = 0; x < d; ++x)
            acc += q[((b * hq + h) * sq + i) * d + x] * k[((b * hkv + h / g) * sk + j) * d + x];
          s[((b * hq + h) * sq + i) * sk + j] = acc;
        }
  std::vector<double> p;
  masked_softmax(s, B, hq, sq, sk, m, p, lse);
  out.assign(static_cast<size_t>(B * hq * sq * dv), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t i = 0; i < sq; ++i)
        for (int64_t c = 0; c < dv; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < sk; ++j)
            acc += p[((b * hq + h) * sq + i) * sk + j] * v[((b * hkv + h / g) * sk + j) * dv + c];
          out[((b * hq + h) * sq + i) * dv + c] = acc;
        }
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <typename T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Minimal reader of a little-endian float32 C-order .npy (v1/v2), for the shared data files.
inline bool read_npy_f32(const std::string& path, std::vector<int64_t>& shape,
                         std::vector<float>& data) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char magic[8];
  if (std::fread(magic, 1, 8, f) != 8) {
    std::fclose(f);
    return false;
  }
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    if (std::fread(b, 1, 2, f) != 2) {
      std::fclose(f);
      return false;
    }
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    if (std::fread(b, 1, 4, f) != 4) {
      std::fclose(f);
      return false;
    }
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  }
  std::string header(hlen, '\0');
  if (std::fread(header.data(), 1, hlen, f) != hlen) {
    std::fclose(f);
    return false;
  }
  if (header.find("'<f4'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    std::fclose(f);
    return false;
  }
  const auto l = header.find('(', header.find("'shape'")), r = header.find(')', l);
  shape.clear();
  int64_t n = 1;
  std::string dims = header.substr(l + 1, r - l - 1);
  size_t pos = 0;
  while (pos < dims.size()) {
    while (pos < dims.size() && (dims[pos] == ' ' || dims[pos] == ',')) ++pos;
    if (pos >= dims.size()) break;
    const int64_t v = std::stoll(dims.substr(pos));
    shape.push_back(v);
    n *= v;
    while (pos < dims.size() && dims[pos] != ',') ++pos;
  }
  data.resize(static_cast<size_t>(n));
  const bool ok = std::fread(data.data(), 4, data.size(), f) == data.size();
  std::fclose(f);
  return ok;
}

}  // namespace attn_ref
