// tools/softmax_cli/attention_args.hpp: what `softmax attention` and `softmax
// attention-backward` share: the mask options (--causal, --scale, --window, --softcap,
// --threads) and reading q / k / v (rank 3 or 4, f16 / f32; f64 rounded to f32).
#pragma once

#include <string>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {

struct AttentionMaskArgs {
  std::string causal;
  double scale = 0, softcap = 0;
  int64_t window = -1;
  int threads = 0;
  CLI::Option* scale_opt = nullptr;
};

// Adds --causal, --scale, --window, --softcap and --threads to `sub`.
inline void add_attention_mask_options(CLI::App* sub, AttentionMaskArgs& a) {
  sub->add_option("--causal", a.causal,
                  "Causal mask aligned top-left (PyTorch is_causal) or bottom-right "
                  "(FlashAttention >= 2.1, KV-cache decoding)")
      ->type_name("top-left|bottom-right");
  a.scale_opt = sub->add_option("--scale", a.scale, "Score scale (default 1/sqrt(D))");
  sub->add_option(
         "--window", a.window,
         "Sliding window: keep W keys before the diagonal (and W after it without --causal)")
      ->transform(strict_integer<int64_t>());
  sub->add_option("--softcap", a.softcap, "Logit soft-capping C * tanh(x / C); 0 = off")
      ->default_str("0");
  sub->add_option("--threads", a.threads, "Worker threads (0 = all cores)")
      ->transform(strict_integer<int>())
      ->default_str("0");
}

// The MaskOptions of the flags; UsageError (naming `cmd`) for bad --causal / --window values.
inline MaskOptions attention_mask_options(const AttentionMaskArgs& a, const std::string& cmd) {
  MaskOptions o;
  if (!a.causal.empty()) {
    o.causal = true;
    if (a.causal == "top-left")
      o.align = Align::kTopLeft;
    else if (a.causal == "bottom-right")
      o.align = Align::kBottomRight;
    else
      throw UsageError(cmd + ": --causal must be top-left or bottom-right, got '" + a.causal + "'");
  }
  if (*a.scale_opt) o.scale = a.scale;
  o.softcap = a.softcap;
  if (a.window < -1) {
    throw UsageError(cmd + ": --window must be >= 0 (or -1 for none), got " +
                     std::to_string(a.window));
  }
  o.window_left = a.window;
  o.window_right = o.causal ? -1 : a.window;
  o.threads = a.threads;
  return o;
}

// f16 / f32 stay; f64 becomes f32 (attention computes in f32).
inline io::Array attention_input(const std::string& path) {
  io::Array a = load_array(path);
  if (a.dtype == DType::f64) a = convert(a, DType::f32);
  return a;
}

// Operands of one dtype: mixed f16 / f32 all become f32.
inline void unify_dtypes(std::vector<io::Array*> arrays) {
  for (const io::Array* a : arrays) {
    if (a->dtype != arrays[0]->dtype) {
      for (io::Array* b : arrays) *b = convert(*b, DType::f32);
      return;
    }
  }
}

// (B, H, S, D) as it is; (H, S, D) as B = 1; UsageError otherwise.
inline std::vector<int64_t> attention_rank4(const std::vector<int64_t>& shape, const char* arg,
                                            const std::string& cmd) {
  if (shape.size() == 4) return shape;
  if (shape.size() == 3) return {1, shape[0], shape[1], shape[2]};
  std::string s;
  for (auto d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  throw UsageError(cmd + ": --" + arg + " has shape (" + s +
                   "): expected rank 4 (B, H, S, D) or rank 3 (H, S, D)");
}

}  // namespace softmax::cli
