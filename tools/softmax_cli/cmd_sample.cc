// tools/softmax_cli/cmd_sample.cc: `softmax sample`, next-token sampling from a logits file.
//
//   softmax sample -i logits.npy [-t T] [--top-k K] [--top-p P] [--min-p M] [--seed S]
//                  [-n DRAWS] [--threads N] [-o ids.npy] [--logprobs N] [--offset O] [--gumbel]
//
// logits: (V) or (B, V), f16/f32/f64 (.npy) or text. Draw d of every row uses offset O + d, so
// `-n 4` equals four runs with --offset 0, 1, 2, 3. -o writes int64 of shape (B, DRAWS) (.npy or
// .csv); without -o, one line per row of space-separated ids. --logprobs N adds, per row, the N
// most probable ids with their log-probabilities under softmax(x / T) (T = 1 when -t 0) as
// "id:logprob" after a tab. All numbers come from softmax::sample / softmax::top_logprobs.
#include <charconv>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {
namespace {

struct SampleArgs {
  std::string input, output;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  std::string seed = "0", offset = "0";  // parsed strictly by parse_u64
  int64_t draws = 1;
  int threads = 0;
  int64_t logprobs = 0;
  bool gumbel = false;
};

// A full decimal uint64: no sign, no overflow, no trailing characters (CLI11 would wrap "-1"
// and saturate 2^64).
uint64_t parse_u64(const std::string& flag, const std::string& text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end) {
    throw UsageError(flag + " " + (text.empty() ? std::string("''") : text) +
                     ": must be an integer in [0, 18446744073709551615]");
  }
  return v;
}

std::string stdout_lines(const SampleArgs& a, const io::Array& ids, const TopLogprobs& top);

void run_sample(const SampleArgs& a) {
  // Usage checks first: nothing is read or written when they fail.
  const uint64_t seed = parse_u64("--seed", a.seed);
  const uint64_t offset = parse_u64("--offset", a.offset);
  if (a.draws < 1) throw UsageError("-n " + std::to_string(a.draws) + ": DRAWS must be >= 1");
  if (a.threads < 0) throw UsageError("--threads " + std::to_string(a.threads) + ": must be >= 0");
  if (a.logprobs < 0) {
    throw UsageError("--logprobs " + std::to_string(a.logprobs) + ": N must be >= 0");
  }
  if (!a.output.empty()) output_format(a.output);  // throws for an unknown extension
  if (a.logprobs > 0) check_distinct_outputs({{"-o", a.output}, {"--logprobs", "-"}});

  io::Array in = load_array(a.input);
  if (in.shape.size() == 1) in.shape = {1, in.shape[0]};  // one row
  if (in.shape.size() != 2) {
    throw UsageError("sample: the logits must have shape (V) or (B, V), got rank " +
                     std::to_string(in.shape.size()));
  }
  const int64_t rows = in.shape[0];
  SamplingParams p;
  p.temperature = a.temperature;
  p.top_k = a.top_k;
  p.top_p = a.top_p;
  p.min_p = a.min_p;
  p.threads = a.threads;
  p.method = a.gumbel ? SamplingMethod::kGumbelMax : SamplingMethod::kInverseCdf;
  io::Array ids = io::Array::zeros(DType::i64, {rows, a.draws});
  sample(in.view(), ids.view(), p, seed, offset);
  TopLogprobs top;
  if (a.logprobs > 0) {
    top = top_logprobs(in.view(), std::min(a.logprobs, in.shape[1]),
                       a.temperature > 0 ? a.temperature : 1.0, a.threads);
  }
  // Everything computed: write (the ids file and the stdout lines together or neither).
  Outputs outs;
  if (!a.output.empty()) outs.add_array(a.output, ids);
  if (a.output.empty() || a.logprobs > 0) outs.add_text("-", stdout_lines(a, ids, top));
  outs.commit();
}

// One line per row: the ids (without -o), then "\tid:logprob ..." with --logprobs.
std::string stdout_lines(const SampleArgs& a, const io::Array& ids, const TopLogprobs& top) {
  const int64_t rows = ids.shape[0];
  const auto* t = reinterpret_cast<const int64_t*>(ids.bytes.data());
  std::string text, line;
  for (int64_t r = 0; r < rows; ++r) {
    line.clear();
    if (a.output.empty()) {
      for (int64_t d = 0; d < a.draws; ++d) {
        line += (d ? " " : "") + std::to_string(t[r * a.draws + d]);
      }
    }
    for (int64_t j = 0; j < top.n; ++j) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%s%lld:%.6g", j == 0 ? (a.output.empty() ? "\t" : "") : " ",
                    static_cast<long long>(top.ids[r * top.n + j]), top.logprobs[r * top.n + j]);
      line += buf;
    }
    text += line + "\n";
  }
  return text;
}

void setup(CLI::App& app) {
  static SampleArgs a;
  CLI::App* sub = app.add_subcommand(
      "sample",
      "Draw next tokens from logits: greedy (-t 0), temperature, top-k, top-p, min-p; exact and "
      "reproducible (Philox keyed by seed, offset, row)");
  sub->add_option("-i,--input", a.input, "Logits (V) or (B, V): .npy (f16/f32/f64) or text")
      ->required();
  sub->add_option("-t,--temperature", a.temperature, "Temperature T >= 0; 0 = greedy (argmax)")
      ->default_str("1");
  sub->add_option("--top-k", a.top_k, "Keep the K most probable tokens (0 = off)")
      ->transform(strict_integer<int64_t>())
      ->default_str("0");
  sub->add_option("--top-p", a.top_p,
                  "Keep the smallest most-probable set reaching probability P, in (0, 1] (1 = off)")
      ->default_str("1");
  sub->add_option("--min-p", a.min_p, "Keep tokens with p >= M * p_max, M in [0, 1] (0 = off)")
      ->default_str("0");
  sub->add_option("--seed", a.seed, "Random seed (64-bit)")->default_str("0");
  sub->add_option("--offset", a.offset, "Philox offset of the first draw")->default_str("0");
  sub->add_option("-n,--draws", a.draws, "Draws per row (consecutive offsets)")
      ->transform(strict_integer<int64_t>())
      ->default_str("1");
  sub->add_option("--threads", a.threads, "Worker threads (0 = all cores)")
      ->transform(strict_integer<int>())
      ->default_str("0");
  sub->add_option("-o,--output", a.output, "Write int64 ids of shape (B, DRAWS): .npy or .csv");
  sub->add_option("--logprobs", a.logprobs,
                  "Also print each row's N most probable ids and log-probs (id:logprob)")
      ->transform(strict_integer<int64_t>())
      ->default_str("0");
  sub->add_flag("--gumbel", a.gumbel, "Draw by Gumbel-max instead of the inverse CDF");
  sub->callback([] { run_sample(a); });
}

const bool registered = register_command(setup);

}  // namespace
}  // namespace softmax::cli
