// tests/cpu/op_families.hpp: one call of every op family (softmax, log_softmax, logsumexp,
// argmax, sigmoid, softmax_backward, cross_entropy with gradient, nll_loss, linear
// cross-entropy, sample, sample_from_probs, top_logprobs, masked_softmax and its backward,
// attention) on inputs large enough to run on several threads, with a given `threads` option.
// Results are returned as doubles so two runs compare bitwise (threads_test, fork_test).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"

namespace stest {

using Results = std::map<std::string, std::vector<double>>;

// Deterministic inputs: a fixed smooth pattern, no RNG state to share.
inline std::vector<float> pattern(int64_t n, double a, double scale = 3.0) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(scale * std::sin(a * static_cast<double>(i) + 0.1));
  return v;
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Calls every op with `threads`; linear_cross_entropy (oneDNN sgemm, whose sums may depend on
// the thread count) is reported under its own key "linear_cross_entropy".
inline Results run_op_families(int threads) {
  using softmax::ConstTensorView;
  using softmax::DType;
  using softmax::TensorView;
  Results r;
  const int64_t rows = 256, n = 512;  // 2^17 elements: above the parallel threshold
  const auto x = pattern(rows * n, 0.37);
  const ConstTensorView xv(x.data(), {rows, n});
  softmax::SoftmaxOptions so;
  so.threads = threads;
  {
    std::vector<float> y(x.size()), lsm(x.size()), dx(x.size()), sig(x.size());
    std::vector<float> lse(static_cast<std::size_t>(rows));
    std::vector<int64_t> am(static_cast<std::size_t>(rows));
    softmax::softmax(xv, TensorView(y.data(), {rows, n}), so);
    softmax::log_softmax(xv, TensorView(lsm.data(), {rows, n}), so);
    softmax::logsumexp(xv, TensorView(lse.data(), {rows}), so);
    softmax::argmax(xv, TensorView(am.data(), DType::i64, {rows}), so);
    softmax::ElementwiseOptions eo;
    eo.threads = threads;
    softmax::sigmoid(xv, TensorView(sig.data(), {rows, n}), eo);
    const auto dy = pattern(rows * n, 0.11, 1.0);
    softmax::softmax_backward(ConstTensorView(y.data(), {rows, n}),
                              ConstTensorView(dy.data(), {rows, n}),
                              TensorView(dx.data(), {rows, n}), so);
    r["softmax"] = as_double(y);
    r["log_softmax"] = as_double(lsm);
    r["logsumexp"] = as_double(lse);
    r["argmax"] = as_double(am);
    r["sigmoid"] = as_double(sig);
    r["softmax_backward"] = as_double(dx);
  }
  {
    std::vector<int64_t> t(static_cast<std::size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) t[i] = (i * 37) % n;
    std::vector<float> grad(x.size());
    double loss = 0;
    softmax::CrossEntropyOptions co;
    co.threads = threads;
    co.label_smoothing = 0.1;
    softmax::CrossEntropyOutputs out{TensorView(&loss, DType::f64, {}),
                                     TensorView(grad.data(), {rows, n}), std::nullopt,
                                     std::nullopt};
    softmax::cross_entropy(xv, ConstTensorView(t.data(), DType::i64, {rows}), out, co);
    r["cross_entropy"] = as_double(grad);
    r["cross_entropy"].push_back(loss);
    std::vector<float> lp(x.size());
    softmax::log_softmax(xv, TensorView(lp.data(), {rows, n}), so);
    std::vector<double> nl(static_cast<std::size_t>(rows));
    co.reduction = softmax::Reduction::kNone;
    softmax::nll_loss(
        ConstTensorView(lp.data(), {rows, n}), ConstTensorView(t.data(), DType::i64, {rows}),
        {TensorView(nl.data(), DType::f64, {rows}), std::nullopt, std::nullopt, std::nullopt}, co);
    r["nll_loss"] = nl;
    const int64_t ln = 256, ld = 64, lv = 1024;
    const auto h = pattern(ln * ld, 0.29, 0.5), w = pattern(lv * ld, 0.53, 0.5);
    std::vector<float> gh(static_cast<std::size_t>(ln * ld)), gw(static_cast<std::size_t>(lv * ld));
    double lloss = 0;
    softmax::CrossEntropyOptions lo;
    lo.threads = threads;
    softmax::linear_cross_entropy(
        ConstTensorView(h.data(), {ln, ld}), ConstTensorView(w.data(), {lv, ld}),
        ConstTensorView(t.data(), DType::i64, {ln}),
        {TensorView(&lloss, DType::f64, {}), TensorView(gh.data(), {ln, ld}),
         TensorView(gw.data(), {lv, ld}), std::nullopt},
        lo);
    r["linear_cross_entropy"] = as_double(gh);
    r["linear_cross_entropy"].insert(r["linear_cross_entropy"].end(), gw.begin(), gw.end());
    r["linear_cross_entropy"].push_back(lloss);
  }
  {
    softmax::SamplingParams p;
    p.threads = threads;
    p.top_p = 0.9;
    std::vector<int64_t> tok(static_cast<std::size_t>(rows * 4));
    softmax::sample(xv, TensorView(tok.data(), DType::i64, {rows, 4}), p, 1234, 5);
    r["sample"] = as_double(tok);
    std::vector<float> probs(x.size());
    softmax::softmax(xv, TensorView(probs.data(), {rows, n}), so);
    softmax::SamplingParams q;
    q.threads = threads;
    std::vector<int64_t> tp(static_cast<std::size_t>(rows));
    softmax::sample_from_probs(ConstTensorView(probs.data(), {rows, n}),
                               TensorView(tp.data(), DType::i64, {rows}), q, 99);
    r["sample_from_probs"] = as_double(tp);
    const softmax::TopLogprobs tl = softmax::top_logprobs(xv, 5, 0.7, threads);
    r["top_logprobs"] = tl.logprobs;
    r["top_logprobs"].insert(r["top_logprobs"].end(), tl.ids.begin(), tl.ids.end());
  }
  {
    const int64_t b = 4, sq = 128, sk = 128;
    const auto s = pattern(b * sq * sk, 0.71);
    std::vector<float> y(s.size()), ds(s.size());
    softmax::MaskOptions mo;
    mo.threads = threads;
    mo.causal = true;
    softmax::masked_softmax(ConstTensorView(s.data(), {b, sq, sk}),
                            TensorView(y.data(), {b, sq, sk}), mo);
    const auto dy = pattern(b * sq * sk, 0.13, 1.0);
    softmax::masked_softmax_backward(ConstTensorView(dy.data(), {b, sq, sk}),
                                     ConstTensorView(y.data(), {b, sq, sk}), ConstTensorView(),
                                     TensorView(ds.data(), {b, sq, sk}), mo);
    r["masked_softmax"] = as_double(y);
    r["masked_softmax_backward"] = as_double(ds);
    const int64_t h = 4, d = 64;
    const auto q = pattern(1 * h * sq * d, 0.19, 1.0), k = pattern(1 * h * sk * d, 0.23, 1.0),
               v = pattern(1 * h * sk * d, 0.31, 1.0);
    std::vector<float> o(q.size()), lse(static_cast<std::size_t>(h * sq));
    softmax::attention(ConstTensorView(q.data(), {1, h, sq, d}),
                       ConstTensorView(k.data(), {1, h, sk, d}),
                       ConstTensorView(v.data(), {1, h, sk, d}),
                       TensorView(o.data(), {1, h, sq, d}), TensorView(lse.data(), {1, h, sq}), mo);
    r["attention"] = as_double(o);
    r["attention"].insert(r["attention"].end(), lse.begin(), lse.end());
  }
  return r;
}

// Bitwise equality of two doubles (NaN payloads included).
inline bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace stest
