// Output digests of every op family on fixed inputs: a refactor that must not change results
// (a new backend seam, moved kernels, a new thread runner) keeps every digest.
//
// Each case runs one public op on inputs from a fixed generator and hashes the output bytes
// (FNV-1a, 64 bits). The expected values were recorded from the library before such a change;
// a mismatch names the case. When a change is MEANT to alter results (a numerics fix), rerun with
//   SOFTMAX_DIGEST_PRINT=1 build/tests/digest_test
// which prints the table to paste below, and say in the commit why the bits moved.
#include <gtest/gtest.h>

#include "softmax/dispatch.hpp"
#ifdef SOFTMAX_DIGEST_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TensorView;

uint64_t fnv1a(const void* data, std::size_t bytes, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// splitmix64: a fixed, portable stream (std:: distributions differ between libraries).
struct Gen {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Roughly normal (sum of 4 uniforms, centred), times `scale`.
  double normal(double scale) {
    return (uniform() + uniform() + uniform() + uniform() - 2.0) * 1.7320508 * scale;
  }
};

// Logit-like rows: scaled noise, a few -inf entries, one dominant entry in some rows.
std::vector<double> make_logits(uint64_t seed, int64_t count, double scale) {
  Gen g{seed};
  std::vector<double> v(static_cast<std::size_t>(count));
  for (auto& x : v) {
    const double u = g.uniform();
    x = u < 0.02 ? -std::numeric_limits<double>::infinity() : g.normal(scale);
    if (u > 0.995) x += 40.0;
  }
  return v;
}

// Storage of `values` in `dtype` (bf16/f16 by the library's own rounding through f32 ops is not
// needed: the bit patterns are built here, round to nearest even from the f32 value).
std::vector<unsigned char> store(const std::vector<double>& values, DType dtype) {
  std::vector<unsigned char> out(values.size() * softmax::dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    switch (dtype) {
      case DType::f64: std::memcpy(&out[i * 8], &values[i], 8); break;
      case DType::f32: std::memcpy(&out[i * 4], &f, 4); break;
      case DType::bf16: {
        uint32_t b;
        std::memcpy(&b, &f, 4);
        uint16_t h = std::isnan(f) ? uint16_t{0x7fc0}
                                   : static_cast<uint16_t>((b + 0x7fff + ((b >> 16) & 1)) >> 16);
        std::memcpy(&out[i * 2], &h, 2);
        break;
      }
      case DType::f16: {
        // Exact for the values used here: finite f16 inputs are built from f32 through the
        // library's own round trip below, so only NaN/inf/finite patterns matter; use _Float16.
        const _Float16 h = static_cast<_Float16>(f);
        std::memcpy(&out[i * 2], &h, 2);
        break;
      }
      default: break;
    }
  }
  return out;
}

// Which BLAS kernels this host runs (see the linear_cross_entropy case).
std::string gemm_key() {
#ifdef SOFTMAX_DIGEST_ONEDNN
  char buf[32];
  std::snprintf(buf, sizeof buf, "onednn/isa=0x%x",
                static_cast<unsigned>(dnnl_get_effective_cpu_isa()));
  return buf;
#else
  return std::string(SOFTMAX_GEMM_NAME) + "/" + softmax::current_target();
#endif
}

struct Case {
  std::string name;
  std::function<uint64_t()> run;
};

std::vector<int64_t> shapes_rows() { return {1, 7, 100, 1000, 2049, 50257, 70001}; }

std::vector<Case> make_cases() {
  std::vector<Case> cases;
  const DType dtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
  for (DType dt : dtypes) {
    for (int64_t n : shapes_rows()) {
      const int64_t rows = n >= 50000 ? 2 : 3;
      for (double t : {1.0, 0.7}) {
        for (int op = 0; op < 3; ++op) {
          const char* opname[] = {"softmax", "log_softmax", "logsumexp"};
          std::string name = std::string(opname[op]) + "/" + softmax::dtype_name(dt) + "/" +
                             std::to_string(rows) + "x" + std::to_string(n) + "/T" +
                             (t == 1.0 ? "1" : "0.7");
          cases.push_back({name, [=] {
                             auto x = store(make_logits(1000 + n + op, rows * n, 3.0), dt);
                             const DType yt = dt == DType::f64 ? DType::f64 : DType::f32;
                             const int64_t out_n = op == 2 ? rows : rows * n;
                             std::vector<unsigned char> y(static_cast<std::size_t>(out_n) *
                                                          softmax::dtype_size(yt));
                             softmax::SoftmaxOptions o;
                             o.temperature = t;
                             ConstTensorView xv(x.data(), dt, {rows, n});
                             if (op == 2) {
                               softmax::logsumexp(xv, TensorView(y.data(), yt, {rows}), o);
                             } else {
                               TensorView yv(y.data(), yt, {rows, n});
                               op == 0 ? softmax::softmax(xv, yv, o)
                                       : softmax::log_softmax(xv, yv, o);
                             }
                             return fnv1a(y.data(), y.size());
                           }});
        }
      }
    }
  }
  // A non-last axis (strided rows) and in place.
  for (DType dt : {DType::f32, DType::f64}) {
    cases.push_back({std::string("softmax/axis0/") + softmax::dtype_name(dt), [=] {
                       auto x = store(make_logits(7, 300 * 5, 2.0), dt);
                       std::vector<unsigned char> y(x.size());
                       softmax::SoftmaxOptions o;
                       o.axis = 0;
                       softmax::softmax(ConstTensorView(x.data(), dt, {300, 5}),
                                        TensorView(y.data(), dt, {300, 5}), o);
                       return fnv1a(y.data(), y.size());
                     }});
    cases.push_back({std::string("softmax/inplace/") + softmax::dtype_name(dt), [=] {
                       auto x = store(make_logits(8, 4 * 3000, 2.0), dt);
                       softmax::softmax(ConstTensorView(x.data(), dt, {4, 3000}),
                                        TensorView(x.data(), dt, {4, 3000}));
                       return fnv1a(x.data(), x.size());
                     }});
  }
  cases.push_back({"sigmoid/f32", [] {
                     auto x = store(make_logits(9, 5000, 8.0), DType::f32);
                     std::vector<float> y(5000);
                     softmax::sigmoid(ConstTensorView(x.data(), DType::f32, {5000}),
                                      TensorView(y.data(), {5000}));
                     return fnv1a(y.data(), y.size() * 4);
                   }});
  cases.push_back({"argmax+hardmax/f32", [] {
                     auto x = store(make_logits(10, 16 * 777, 3.0), DType::f32);
                     std::vector<int64_t> idx(16);
                     std::vector<float> h(16 * 777);
                     ConstTensorView xv(x.data(), DType::f32, {16, 777});
                     softmax::argmax(xv, TensorView(idx.data(), DType::i64, {16}));
                     softmax::hardmax(xv, TensorView(h.data(), {16, 777}));
                     return fnv1a(h.data(), h.size() * 4, fnv1a(idx.data(), idx.size() * 8));
                   }});
  for (DType dt : {DType::f32, DType::f64}) {
    cases.push_back({std::string("backward/") + softmax::dtype_name(dt), [=] {
                       const int64_t r = 5, n = 3001;
                       auto x = store(make_logits(11, r * n, 2.0), dt);
                       auto dy = store(make_logits(12, r * n, 1.0), dt);
                       for (std::size_t i = 0; i < dy.size(); i += softmax::dtype_size(dt)) {
                         // -inf in the upstream gradient would make NaN: replace by 0.5.
                         if (dt == DType::f32) {
                           float f;
                           std::memcpy(&f, &dy[i], 4);
                           if (!std::isfinite(f)) f = 0.5f;
                           std::memcpy(&dy[i], &f, 4);
                         } else {
                           double f;
                           std::memcpy(&f, &dy[i], 8);
                           if (!std::isfinite(f)) f = 0.5;
                           std::memcpy(&dy[i], &f, 8);
                         }
                       }
                       std::vector<unsigned char> y(x.size()), lp(x.size()), dx1(x.size()),
                           dx2(x.size());
                       ConstTensorView xv(x.data(), dt, {r, n});
                       softmax::softmax(xv, TensorView(y.data(), dt, {r, n}));
                       softmax::log_softmax(xv, TensorView(lp.data(), dt, {r, n}));
                       softmax::softmax_backward(ConstTensorView(y.data(), dt, {r, n}),
                                                 ConstTensorView(dy.data(), dt, {r, n}),
                                                 TensorView(dx1.data(), dt, {r, n}));
                       softmax::log_softmax_backward(ConstTensorView(lp.data(), dt, {r, n}),
                                                     ConstTensorView(dy.data(), dt, {r, n}),
                                                     TensorView(dx2.data(), dt, {r, n}));
                       return fnv1a(dx2.data(), dx2.size(), fnv1a(dx1.data(), dx1.size()));
                     }});
  }
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    cases.push_back({std::string("cross_entropy/") + softmax::dtype_name(dt), [=] {
                       const int64_t r = 64, c = 5003;
                       auto x = store(make_logits(13, r * c, 3.0), dt);
                       std::vector<int64_t> t(r);
                       Gen g{14};
                       for (auto& v : t) v = static_cast<int64_t>(g.next() % c);
                       t[3] = -100;
                       const DType gt = dt == DType::f64 ? DType::f64 : DType::f32;
                       std::vector<double> loss(r), lse(r);
                       std::vector<unsigned char> grad(static_cast<std::size_t>(r * c) *
                                                       softmax::dtype_size(gt));
                       std::vector<unsigned char> lp(grad.size());
                       softmax::CrossEntropyOutputs out;
                       out.loss = TensorView(loss.data(), DType::f64, {r});
                       out.grad = TensorView(grad.data(), gt, {r, c});
                       out.lse = TensorView(lse.data(), DType::f64, {r});
                       out.log_probs = TensorView(lp.data(), gt, {r, c});
                       softmax::CrossEntropyOptions o;
                       o.reduction = softmax::Reduction::kNone;
                       o.label_smoothing = 0.1;
                       o.z_loss = 1e-4;
                       softmax::cross_entropy(ConstTensorView(x.data(), dt, {r, c}),
                                              ConstTensorView(t.data(), DType::i64, {r}), out, o);
                       uint64_t h = fnv1a(loss.data(), loss.size() * 8);
                       h = fnv1a(lse.data(), lse.size() * 8, h);
                       h = fnv1a(grad.data(), grad.size(), h);
                       return fnv1a(lp.data(), lp.size(), h);
                     }});
  }
  // The matrix products come from the BLAS (oneDNN or OpenBLAS), whose kernels and so whose bits
  // depend on the CPU it detects: this digest is recorded per BLAS kernel family (oneDNN's
  // effective ISA; for OpenBLAS the host's best SIMD target as a proxy), and on a host with no
  // recorded digest it is printed with a note instead of checked.
  cases.push_back({"linear_cross_entropy/f32@" + gemm_key(), [] {
                     const int64_t n = 32, d = 48, v = 3000;
                     std::vector<float> h(n * d), w(v * d), gh(n * d), gw(v * d);
                     Gen g{15};
                     for (auto& x : h) x = static_cast<float>(g.normal(1.0));
                     for (auto& x : w) x = static_cast<float>(g.normal(0.2));
                     std::vector<int64_t> t(n);
                     for (auto& x : t) x = static_cast<int64_t>(g.next() % v);
                     float loss = 0;
                     softmax::LinearCrossEntropyOutputs out;
                     out.loss = TensorView(&loss, DType::f32, {});
                     out.grad_hidden = TensorView(gh.data(), {n, d});
                     out.grad_weight = TensorView(gw.data(), {v, d});
                     softmax::CrossEntropyOptions o;
                     o.threads = 1;  // the BLAS products may depend on the thread count
                     softmax::linear_cross_entropy(
                         ConstTensorView(h.data(), {n, d}), ConstTensorView(w.data(), {v, d}),
                         ConstTensorView(t.data(), DType::i64, {n}), out, o);
                     uint64_t hh = fnv1a(&loss, 4);
                     hh = fnv1a(gh.data(), gh.size() * 4, hh);
                     return fnv1a(gw.data(), gw.size() * 4, hh);
                   }});
  cases.push_back(
      {"sample/f32", [] {
         const int64_t b = 8, v = 32000;
         auto x = store(make_logits(16, b * v, 4.0), DType::f32);
         ConstTensorView xv(x.data(), DType::f32, {b, v});
         uint64_t h = 0xcbf29ce484222325ull;
         for (int variant = 0; variant < 4; ++variant) {
           softmax::SamplingParams p;
           p.temperature = variant == 0 ? 0.0 : 0.8;
           p.top_k = variant == 2 ? int64_t{50} : int64_t{0};
           p.top_p = variant >= 2 ? 0.9 : 1.0;
           p.min_p = variant == 3 ? 0.05 : 0.0;
           std::vector<int64_t> tok(b * 3);
           softmax::sample(xv, TensorView(tok.data(), DType::i64, {b, 3}), p, 1234 + variant, 5);
           h = fnv1a(tok.data(), tok.size() * 8, h);
         }
         auto top = softmax::top_logprobs(xv, 5, 0.9);
         h = fnv1a(top.ids.data(), top.ids.size() * 8, h);
         return fnv1a(top.logprobs.data(), top.logprobs.size() * 8, h);
       }});
  cases.push_back({"masked_softmax/f32", [] {
                     const int64_t hh = 3, s = 70;
                     auto x = store(make_logits(17, hh * s * s, 2.0), DType::f32);
                     std::vector<float> y(hh * s * s), lse(hh * s);
                     softmax::MaskOptions o;
                     o.causal = true;
                     o.window_left = 20;
                     o.softcap = 30.0;
                     o.alibi_slopes = {0.5f, 0.25f, 0.125f};
                     softmax::masked_softmax(ConstTensorView(x.data(), DType::f32, {hh, s, s}),
                                             TensorView(y.data(), {hh, s, s}),
                                             TensorView(lse.data(), {hh, s}), o);
                     return fnv1a(lse.data(), lse.size() * 4, fnv1a(y.data(), y.size() * 4));
                   }});
  for (int64_t sq : {int64_t{1}, int64_t{130}}) {
    cases.push_back({"attention/f32/Sq" + std::to_string(sq), [=] {
                       const int64_t b = 1, hq = 4, hkv = 2, sk = 2100, d = 64;
                       Gen g{18};
                       std::vector<float> q(b * hq * sq * d), k(b * hkv * sk * d),
                           v(b * hkv * sk * d);
                       for (auto& x : q) x = static_cast<float>(g.normal(1.0));
                       for (auto& x : k) x = static_cast<float>(g.normal(1.0));
                       for (auto& x : v) x = static_cast<float>(g.normal(1.0));
                       std::vector<float> out(b * hq * sq * d), lse(b * hq * sq);
                       softmax::MaskOptions o;
                       o.causal = true;
                       o.align = softmax::Align::kBottomRight;
                       softmax::attention(ConstTensorView(q.data(), {b, hq, sq, d}),
                                          ConstTensorView(k.data(), {b, hkv, sk, d}),
                                          ConstTensorView(v.data(), {b, hkv, sk, d}),
                                          TensorView(out.data(), {b, hq, sq, d}),
                                          TensorView(lse.data(), {b, hq, sq}), o);
                       return fnv1a(lse.data(), lse.size() * 4, fnv1a(out.data(), out.size() * 4));
                     }});
  }
  return cases;
}

// Recorded digests (SOFTMAX_DIGEST_PRINT=1 prints this table).
const std::map<std::string, uint64_t>& expected() {
  static const std::map<std::string, uint64_t> table = {
#include "digests.inc"
  };
  return table;
}

TEST(Digest, EveryOpFamilyKeepsItsBits) {
  const bool print = std::getenv("SOFTMAX_DIGEST_PRINT") != nullptr;
  const auto& table = expected();
  int checked = 0, optional_missing = 0;
  for (const Case& c : make_cases()) {
    const uint64_t h = c.run();
    if (print) {
      std::printf("    {\"%s\", 0x%016llxull},\n", c.name.c_str(),
                  static_cast<unsigned long long>(h));
      continue;
    }
    auto it = table.find(c.name);
    if (it == table.end() && c.name.find('@') != std::string::npos) {
      std::printf("note: no digest recorded for %s on this host (0x%016llx); not checked\n",
                  c.name.c_str(), static_cast<unsigned long long>(h));
      ++optional_missing;
      continue;
    }
    ASSERT_NE(it, table.end()) << "no recorded digest for " << c.name
                               << " (rerun with SOFTMAX_DIGEST_PRINT=1)";
    EXPECT_EQ(h, it->second) << c.name << ": output bits changed";
    ++checked;
  }
  // Every recorded digest that is not host-keyed was checked (host-keyed entries are for the
  // hosts they name).
  int portable = 0;
  for (const auto& entry : table) portable += entry.first.find('@') == std::string::npos;
  if (!print) EXPECT_EQ(checked + optional_missing, portable + 1);
}

}  // namespace
