// tools/softmax_cli/cmd_attention.cc: `softmax attention`, fused scaled-dot-product attention
// (softmax::attention, include/softmax/attention.hpp) on .npy files.
//
//   softmax attention -q q.npy -k k.npy -v v.npy -o out.npy [--causal top-left|bottom-right]
//                     [--scale S] [--window W] [--softcap C] [--lse-out lse.npy] [--threads N]
//
// q (B, Hq, Sq, D), k (B, Hkv, Sk, D), v (B, Hkv, Sk, Dv); rank-3 inputs (H, S, D) are taken as
// B = 1. f16 and f32 inputs are used as they are (f16 computes in f32), f64 is rounded to f32.
// out (same rank as q, Dv last) and lse (q's shape without D) are written as f32, only after the
// whole computation succeeded, both or neither. --window W keeps the W keys before the diagonal
// (and, without
// --causal, W after it): a sliding window of 2W + 1 keys, or W + 1 with --causal.
#include <memory>
#include <string>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "softmax_cli/attention_args.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {
namespace {

struct AttentionArgs {
  std::string q, k, v, out, lse_out;
  AttentionMaskArgs mask;
};

void run(const AttentionArgs& a) {
  // Usage checks first: nothing is read or written on a usage error.
  output_format(a.out);
  if (!a.lse_out.empty()) output_format(a.lse_out);
  check_distinct_outputs({{"-o", a.out}, {"--lse-out", a.lse_out}});
  const MaskOptions o = attention_mask_options(a.mask, "attention");
  io::Array q = attention_input(a.q), k = attention_input(a.k), v = attention_input(a.v);
  unify_dtypes({&q, &k, &v});
  const bool rank3 = q.shape.size() == 3;
  const auto qs = attention_rank4(q.shape, "q", "attention"),
             ks = attention_rank4(k.shape, "k", "attention"),
             vs = attention_rank4(v.shape, "v", "attention");
  std::vector<int64_t> os{qs[0], qs[1], qs[2], vs[3]};
  io::Array out =
      io::Array::zeros(DType::f32, rank3 ? std::vector<int64_t>{os[1], os[2], os[3]} : os);
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
  sub->add_option("-k", args->k, "Keys .npy (B, Hkv, Sk, D); Hq must be a multiple of Hkv")
      ->required();
  sub->add_option("-v", args->v, "Values .npy (B, Hkv, Sk, Dv)")->required();
  sub->add_option("-o,--output", args->out, "Output .npy (or .csv) (B, Hq, Sq, Dv), f32")
      ->required();
  sub->add_option("--lse-out", args->lse_out, "Also write the per-row logsumexp (B, Hq, Sq), f32");
  add_attention_mask_options(sub, args->mask);
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace softmax::cli
