// tools/softmax_cli/cmd_attention.cc: `softmax attention`, fused scaled-dot-product attention
// (softmax::attention, include/softmax/attention.hpp) on .npy files.
//
//   softmax attention -q q.npy -k k.npy -v v.npy -o out.npy [--causal top-left|bottom-right]
//                     [--scale S] [--window W] [--softcap C] [--lse-out lse.npy] [--threads N]
//
// q (B, Hq, Sq, D), k (B, Hkv, Sk, D), v (B, Hkv, Sk, Dv); rank-3 inputs (H, S, D) are taken as
// B = 1. f16 and f32 inputs are used as they are (f16 computes in f32), f64 is rounded to f32.
// out (same rank as q, Dv last) and lse (q's shape without D) are written as f32, only after the
// whole computation succeeded, both or neither. --window W keeps the W keys before the diagonal (and, without
// --causal, W after it): a sliding window of 2W + 1 keys, or W + 1 with --causal.
#include <memory>
#include <string>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {
namespace {

struct AttentionArgs {
  std::string q, k, v, out, lse_out, causal;
  double scale = 0, softcap = 0;
  int64_t window = -1;
  int threads = 0;
  CLI::Option* scale_opt = nullptr;
};

// f16 / f32 stay; f64 becomes f32 (attention computes in f32).
io::Array as_input(const std::string& path) {
  io::Array a = load_array(path);
  if (a.dtype == DType::f64) a = convert(a, DType::f32);
  return a;
}

std::vector<int64_t> as_rank4(const std::vector<int64_t>& shape, const char* arg) {
  if (shape.size() == 4) return shape;
  if (shape.size() == 3) return {1, shape[0], shape[1], shape[2]};
  std::string s;
  for (auto d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  throw UsageError(std::string("attention: --") + arg + " has shape (" + s +
                   "): expected rank 4 (B, H, S, D) or rank 3 (H, S, D)");
}

void run(const AttentionArgs& a) {
  // Usage checks first: nothing is read or written on a usage error.
  output_format(a.out);
  if (!a.lse_out.empty()) output_format(a.lse_out);
  check_distinct_outputs({{"-o", a.out}, {"--lse-out", a.lse_out}});
  MaskOptions o;
  if (!a.causal.empty()) {
    o.causal = true;
    if (a.causal == "top-left") o.align = Align::kTopLeft;
    else if (a.causal == "bottom-right") o.align = Align::kBottomRight;
    else throw UsageError("attention: --causal must be top-left or bottom-right, got '" + a.causal + "'");
  }
  if (*a.scale_opt) o.scale = a.scale;
  o.softcap = a.softcap;
  if (a.window < -1) {
    throw UsageError("attention: --window must be >= 0 (or -1 for none), got " + std::to_string(a.window));
  }
  o.window_left = a.window;
  o.window_right = o.causal ? -1 : a.window;
  o.threads = a.threads;
  io::Array q = as_input(a.q), k = as_input(a.k), v = as_input(a.v);
  if (q.dtype != k.dtype || q.dtype != v.dtype) {  // mixed f16 / f32: compute all in f32
    q = convert(q, DType::f32);
    k = convert(k, DType::f32);
    v = convert(v, DType::f32);
  }
  const bool rank3 = q.shape.size() == 3;
  const auto qs = as_rank4(q.shape, "q"), ks = as_rank4(k.shape, "k"), vs = as_rank4(v.shape, "v");
  std::vector<int64_t> os{qs[0], qs[1], qs[2], vs[3]};
  io::Array out = io::Array::zeros(DType::f32, rank3 ? std::vector<int64_t>{os[1], os[2], os[3]} : os);
  io::Array lse = io::Array::zeros(DType::f32, rank3 ? std::vector<int64_t>{qs[1], qs[2]}
                                                     : std::vector<int64_t>{qs[0], qs[1], qs[2]});
  const ConstTensorView qv(q.bytes.data(), q.dtype, qs), kv(k.bytes.data(), k.dtype, ks),
      vv(v.bytes.data(), v.dtype, vs);
  TensorView ov(out.bytes.data(), DType::f32, os);
  TensorView lv(lse.bytes.data(), DType::f32, {qs[0], qs[1], qs[2]});
  attention(qv, kv, vv, ov, lv, o);
  Outputs outs;  // both land or neither does
  outs.add_array(a.out, out);
  if (!a.lse_out.empty()) outs.add_array(a.lse_out, lse);
  outs.commit();
}

const bool registered = register_command([](CLI::App& app) {
  auto args = std::make_shared<AttentionArgs>();
  auto* sub = app.add_subcommand(
      "attention", "Fused attention softmax(q k^T * scale) v with masks (online softmax, tiled)");
  sub->add_option("-q", args->q, "Queries .npy (B, Hq, Sq, D) or (Hq, Sq, D)")->required();
  sub->add_option("-k", args->k, "Keys .npy (B, Hkv, Sk, D); Hq must be a multiple of Hkv")->required();
  sub->add_option("-v", args->v, "Values .npy (B, Hkv, Sk, Dv)")->required();
  sub->add_option("-o,--output", args->out, "Output .npy (or .csv) (B, Hq, Sq, Dv), f32")->required();
  sub->add_option("--causal", args->causal,
                  "Causal mask aligned top-left (PyTorch is_causal) or bottom-right "
                  "(FlashAttention >= 2.1, KV-cache decoding)")
      ->type_name("top-left|bottom-right");
  args->scale_opt = sub->add_option("--scale", args->scale, "Score scale (default 1/sqrt(D))");
  sub->add_option("--window", args->window,
                  "Sliding window: keep W keys before the diagonal (and W after it without --causal)")
      ->transform(strict_integer<int64_t>());
  sub->add_option("--softcap", args->softcap, "Logit soft-capping C * tanh(x / C); 0 = off")
      ->default_str("0");
  sub->add_option("--lse-out", args->lse_out, "Also write the per-row logsumexp (B, Hq, Sq), f32");
  sub->add_option("--threads", args->threads, "Worker threads (0 = all cores)")
      ->transform(strict_integer<int>())
      ->default_str("0");
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace softmax::cli
