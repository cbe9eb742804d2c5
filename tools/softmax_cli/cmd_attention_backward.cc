// tools/softmax_cli/cmd_attention_backward.cc: `softmax attention-backward`, the gradients of
// fused attention (softmax::attention_backward, include/softmax/attention.hpp) on .npy files.
//
//   softmax attention-backward -q q.npy -k k.npy -v v.npy --dout dout.npy
//                              [--dq dq.npy] [--dk dk.npy] [--dv dv.npy]
//                              [--causal top-left|bottom-right] [--scale S] [--window W]
//                              [--softcap C] [--threads N]
//
// q (B, Hq, Sq, D), k (B, Hkv, Sk, D), v (B, Hkv, Sk, Dv), dout = d loss / d out
// (B, Hq, Sq, Dv); rank-3 inputs (H, S, D) are taken as B = 1. The forward (out and its
// logsumexp) is recomputed first with the same options, then FlashAttention-2's backward runs.
// f16 and f32 inputs are used as they are (f16 computes in f32), f64 is rounded to f32. The
// requested gradients (at least one) are written as f32 in their operand's shape, only after
// the whole computation succeeded, all or none.
#include <memory>
#include <string>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax_cli/attention_args.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {
namespace {

constexpr const char* kCmd = "attention-backward";

struct BackwardArgs {
  std::string q, k, v, dout, dq, dk, dv;
  AttentionMaskArgs mask;
};

void run(const BackwardArgs& a) {
  // Usage checks first: nothing is read or written on a usage error.
  if (a.dq.empty() && a.dk.empty() && a.dv.empty()) {
    throw UsageError(std::string(kCmd) + ": give at least one of --dq, --dk, --dv");
  }
  for (const std::string* p : {&a.dq, &a.dk, &a.dv}) {
    if (!p->empty()) output_format(*p);
  }
  check_distinct_outputs({{"--dq", a.dq}, {"--dk", a.dk}, {"--dv", a.dv}});
  const MaskOptions o = attention_mask_options(a.mask, kCmd);
  io::Array q = attention_input(a.q), k = attention_input(a.k), v = attention_input(a.v);
  io::Array g = attention_input(a.dout);
  unify_dtypes({&q, &k, &v, &g});
  const auto qs = attention_rank4(q.shape, "q", kCmd), ks = attention_rank4(k.shape, "k", kCmd),
             vs = attention_rank4(v.shape, "v", kCmd), gs = attention_rank4(g.shape, "dout", kCmd);
  const std::vector<int64_t> os{qs[0], qs[1], qs[2], vs[3]};
  const ConstTensorView qv(q.bytes.data(), q.dtype, qs), kv(k.bytes.data(), k.dtype, ks),
      vv(v.bytes.data(), v.dtype, vs), gv(g.bytes.data(), g.dtype, gs);
  io::Array out = io::Array::zeros(q.dtype, os);
  io::Array lse = io::Array::zeros(DType::f32, {qs[0], qs[1], qs[2]});
  TensorView ov(out.bytes.data(), q.dtype, os), lv(lse.bytes.data(), DType::f32, lse.shape);
  attention(qv, kv, vv, ov, lv, o);
  io::Array dq = io::Array::zeros(DType::f32, q.shape), dk = io::Array::zeros(DType::f32, k.shape),
            dv = io::Array::zeros(DType::f32, v.shape);
  attention_backward(qv, kv, vv, ConstTensorView(out.bytes.data(), q.dtype, os), lv, gv,
                     TensorView(dq.bytes.data(), DType::f32, qs),
                     TensorView(dk.bytes.data(), DType::f32, ks),
                     TensorView(dv.bytes.data(), DType::f32, vs), o);
  Outputs outs;  // all land or none does
  if (!a.dq.empty()) outs.add_array(a.dq, dq);
  if (!a.dk.empty()) outs.add_array(a.dk, dk);
  if (!a.dv.empty()) outs.add_array(a.dv, dv);
  outs.commit();
}

const bool registered = register_command([](CLI::App& app) {
  auto args = std::make_shared<BackwardArgs>();
  auto* sub = app.add_subcommand(
      kCmd, "Gradients dq, dk, dv of fused attention (FlashAttention-2 backward, tiled)");
  sub->add_option("-q", args->q, "Queries .npy (B, Hq, Sq, D) or (Hq, Sq, D)")->required();
  sub->add_option("-k", args->k, "Keys .npy (B, Hkv, Sk, D); Hq must be a multiple of Hkv")
      ->required();
  sub->add_option("-v", args->v, "Values .npy (B, Hkv, Sk, Dv)")->required();
  sub->add_option("--dout", args->dout, "d loss / d out .npy (B, Hq, Sq, Dv)")->required();
  sub->add_option("--dq", args->dq, "Write d loss / d q (q's shape), f32");
  sub->add_option("--dk", args->dk, "Write d loss / d k (k's shape), f32");
  sub->add_option("--dv", args->dv, "Write d loss / d v (v's shape), f32");
  add_attention_mask_options(sub, args->mask);
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace softmax::cli
