// tools/softmax_cli/cmd_sample.cc: `softmax sample`, next-token sampling from a logits file.
//
//   softmax sample -i logits.npy [-t T] [--top-k K] [--top-p P] [--min-p M] [--seed S]
//                  [--offset O] [--streams ID,...] [-n DRAWS] [--threads N] [-o ids.npy]
//                  [--logprobs N] [--logprobs-mode tempered|raw|processed]
//                  [--token-logprobs lp.npy] [--gumbel]
//                  [--prev-tokens FILE] [--repetition-penalty R] [--presence-penalty P]
//                  [--frequency-penalty F] [--logit-bias ID=BIAS,...] [--banned-tokens ID,...]
//                  [--min-tokens N --eos-token-ids ID,...] [--num-generated G]
//
// logits: (V) or (B, V), f16/f32/f64 (.npy) or text. Per-row flags (sample_params.hpp): -t,
// --top-k, --top-p, --min-p, --seed, --offset, the three penalties, --min-tokens and
// --num-generated take one value (every row) or B comma-separated values, one per row;
// --streams takes B values (64-bit stream ids, e.g. request ids; default the row index).
// Seeds, offsets and streams are full 64-bit integers. Draw d of a row uses its offset + d, so
// `-n 4` equals four runs with --offset 0, 1, 2, 3. -o writes int64 of shape (B, DRAWS) (.npy
// or .csv); without -o, one line per row of space-separated ids. --logprobs N adds, per row, the
// N most probable ids with their log-probabilities as "id:logprob" after a tab, under
// --logprobs-mode: tempered (default) softmax(x / T) with the row's T (1 when T = 0); raw
// softmax(x) (vLLM's raw_logprobs); processed: the distribution the tokens were drawn from,
// after processors and filters (vLLM's processed_logprobs). --token-logprobs FILE writes the
// log-prob of every drawn token, f64 (B, DRAWS), under raw or processed. The logit processors
// (softmax/logit_processors.hpp) run before temperature: --prev-tokens holds earlier token ids,
// (L) for every row or (B, L) padded with -1; --logit-bias, --banned-tokens and --eos-token-ids
// apply to every row; EOS is suppressed while a row's --num-generated (default: its
// prev-tokens count) < --min-tokens. All numbers come from softmax::sample /
// softmax::top_logprobs / softmax::token_logprobs.
//
//   mpirun -np R softmax sample --vocab-parallel -i logits.npy [-t T] [--top-k K] [--top-p P]
//       [--min-p M] [--seed S] [--offset O] [-n DRAWS] [--gumbel] [-o ids.npy] [--logprobs N]
// The vocabulary (last axis of a C-order .npy) sharded across the ranks (default_shard, each
// rank maps only its columns; softmax::dist::sample, softmax::dist::top_logprobs): the same ids
// and log-probs as one process (the default layout is 32768-aligned); rank 0 writes them. The
// per-row values, seeds, offsets and --streams apply; the logit processors, --logprobs-mode
// raw / processed, --token-logprobs, and a per-row -t with --logprobs do not.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"
#include "softmax_cli/sample_params.hpp"
#ifdef SOFTMAX_CLI_MPI
#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"
#include "softmax_cli/vocab_parallel.hpp"
#endif

namespace softmax::cli {
namespace {

struct SampleArgs {
  std::string input, output, token_logprobs;
  RowArgs rows;  // temperature, filters, seeds, offsets, streams, penalties (sample_params.hpp)
  int64_t draws = 1;
  int threads = 0;
  int64_t logprobs = 0;
  bool gumbel = false;
  std::string logprobs_mode = "tempered";
  // Logit processors (the per-row ones are in `rows`).
  std::string prev_tokens, logit_bias, banned_tokens, eos_token_ids;
  bool vocab_parallel = false;
};

// The processors' storage (LogitProcessors holds views into it).
struct Processors {
  std::vector<int64_t> prev, prev_offsets, bias_ids, banned, eos;
  std::vector<double> bias_values;
  LogitProcessors lp;
};

// "1,5,7" -> ids; UsageError naming the flag for anything else.
std::vector<int64_t> parse_ids(const std::string& flag, const std::string& text) {
  std::vector<int64_t> ids;
  std::size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    int64_t v = 0;
    const char* b = text.data() + pos;
    const auto r = std::from_chars(b, text.data() + end, v);
    if (end == pos || r.ec != std::errc() || r.ptr != text.data() + end) {
      std::string msg = flag;
      msg.append(" ").append(text).append(": must be comma-separated integer token ids");
      throw UsageError(msg);
    }
    ids.push_back(v);
    pos = end + 1;
  }
  return ids;
}

// "ID=BIAS,ID=BIAS" -> (ids, biases). Every item must be an int64 id, '=' and a double that
// fits (an empty item, an id or bias past range, is an error quoting the text).
void parse_bias(const std::string& text, std::vector<int64_t>& ids, std::vector<double>& values) {
  std::size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    const char* b = text.data() + pos;
    const char* e = text.data() + end;
    const char* eq = std::find(b, e, '=');
    int64_t id = 0;
    double bias = 0;
    bool ok = eq != e && eq != b && eq + 1 != e;
    if (ok) {
      const auto ri = std::from_chars(b, eq, id);
      const auto rb = std::from_chars(eq + 1, e, bias);
      ok = ri.ec == std::errc() && ri.ptr == eq && rb.ec == std::errc() && rb.ptr == e;
    }
    if (!ok) {
      throw UsageError("--logit-bias " + text +
                       ": must be ID=BIAS[,ID=BIAS...] (integer ids, biases that fit a double)");
    }
    ids.push_back(id);
    values.push_back(bias);
    pos = end + 1;
  }
}

// Integer token ids of a (L) or (B, L) array (-1 = padding in (B, L)); values must be integers.
// A (1, L) array (one line of a text file) is (L) when there are several rows.
void load_prev_tokens(const std::string& path, int64_t rows, Processors& p) {
  const io::Array a = load_array(path);
  const int64_t n = a.numel();
  std::vector<int64_t> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double x = 0;
    switch (a.dtype) {
      case DType::i64: v[i] = reinterpret_cast<const int64_t*>(a.bytes.data())[i]; continue;
      case DType::i32: v[i] = reinterpret_cast<const int32_t*>(a.bytes.data())[i]; continue;
      case DType::f64: x = reinterpret_cast<const double*>(a.bytes.data())[i]; break;
      case DType::f32: x = reinterpret_cast<const float*>(a.bytes.data())[i]; break;
      default: throw UsageError("--prev-tokens " + path + ": must hold integer token ids");
    }
    if (!(x == std::floor(x)) || std::fabs(x) > 9e15) {
      throw UsageError("--prev-tokens " + path + ": must hold integer token ids, found " +
                       std::to_string(x));
    }
    v[i] = static_cast<int64_t>(x);
  }
  // (L), or one line of a text file ((1, L)): the same ids for every row.
  if (a.shape.size() <= 1 || (a.shape.size() == 2 && a.shape[0] == 1 && rows != 1)) {
    p.prev = v;
    return;
  }
  if (a.shape.size() != 2 || a.shape[0] != rows) {
    throw UsageError("--prev-tokens " + path + ": must have shape (L) or (" + std::to_string(rows) +
                     ", L)");
  }
  const int64_t cols = a.shape[1];
  p.prev_offsets.push_back(0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      if (v[r * cols + c] != -1) p.prev.push_back(v[r * cols + c]);
    }
    p.prev_offsets.push_back(static_cast<int64_t>(p.prev.size()));
  }
}

void build_processors(const SampleArgs& a, int64_t rows, Processors& p) {
  if (!a.prev_tokens.empty()) load_prev_tokens(a.prev_tokens, rows, p);
  parse_bias(a.logit_bias, p.bias_ids, p.bias_values);
  p.banned = parse_ids("--banned-tokens", a.banned_tokens);
  p.eos = parse_ids("--eos-token-ids", a.eos_token_ids);
  p.lp.prev_tokens = {p.prev, p.prev_offsets};
  p.lp.logit_bias = {p.bias_ids, {}};
  p.lp.logit_bias_values = p.bias_values;
  p.lp.banned_tokens = {p.banned, {}};
  p.lp.eos_token_ids = p.eos;
}

enum class Mode { kTempered, kRaw, kProcessed };

Mode parse_mode(const std::string& m) {
  if (m == "tempered") return Mode::kTempered;
  if (m == "raw") return Mode::kRaw;
  if (m == "processed") return Mode::kProcessed;
  throw UsageError("--logprobs-mode " + (m.empty() ? std::string("''") : m) +
                   ": must be tempered, raw or processed");
}

// Usage checks that need no file: -n, --threads, --logprobs, the output names.
void check_common(const SampleArgs& a) {
  if (a.draws < 1) throw UsageError("-n " + std::to_string(a.draws) + ": DRAWS must be >= 1");
  if (a.threads < 0) throw UsageError("--threads " + std::to_string(a.threads) + ": must be >= 0");
  if (a.logprobs < 0) {
    throw UsageError("--logprobs " + std::to_string(a.logprobs) + ": N must be >= 0");
  }
  if (!a.output.empty()) output_format(a.output);  // throws for an unknown extension
  if (!a.token_logprobs.empty()) output_format(a.token_logprobs);
  const bool text_out = a.output.empty() || a.logprobs > 0;  // ids and/or top-N on stdout
  check_distinct_outputs(
      {{"-o", a.output},
       {a.output.empty() ? "the ids on stdout (no -o)" : "--logprobs", text_out ? "-" : ""},
       {"--token-logprobs", a.token_logprobs}});
}

// Row r of a (B, V) array as a (1, V) view.
ConstTensorView row_view(const io::Array& in, int64_t r) {
  const int64_t v = in.shape[1];
  const auto* base = reinterpret_cast<const unsigned char*>(in.bytes.data());
  return ConstTensorView(base + static_cast<std::size_t>(r * v) * dtype_size(in.dtype), in.dtype,
                         {1, v});
}

std::string stdout_lines(const SampleArgs& a, const io::Array& ids, const TopLogprobs& top);

void run_sample_vocab_parallel(const SampleArgs& a);

// The top-N log-probs under softmax(x / T) with T = the row's temperature (1 for a greedy row).
TopLogprobs tempered_top(const io::Array& in, int64_t n, const RowParams& r, int threads) {
  auto t_of = [&](std::size_t row) {
    const double t = r.temperature[r.temperature.size() == 1 ? 0 : row];
    return t > 0 ? t : 1.0;
  };
  if (!r.temperature_per_row()) return top_logprobs(in.view(), n, t_of(0), threads);
  TopLogprobs all;
  all.rows = in.shape[0];
  all.n = n;
  for (int64_t row = 0; row < in.shape[0]; ++row) {
    const TopLogprobs one =
        top_logprobs(row_view(in, row), n, t_of(static_cast<std::size_t>(row)), threads);
    all.ids.insert(all.ids.end(), one.ids.begin(), one.ids.end());
    all.logprobs.insert(all.logprobs.end(), one.logprobs.begin(), one.logprobs.end());
  }
  return all;
}

LogprobsMode library_mode(Mode m) {
  return m == Mode::kRaw ? LogprobsMode::kRaw : LogprobsMode::kProcessed;
}

void run_sample(const SampleArgs& a) {
  if (a.vocab_parallel) {
#ifdef SOFTMAX_CLI_MPI
    vp::run_ranks([&] { run_sample_vocab_parallel(a); });
    return;
#else
    throw UsageError(
        "--vocab-parallel: this build of softmax has no MPI (install libopenmpi-dev "
        "openmpi-bin and rebuild)");
#endif
  }
  // Usage checks first: nothing is read or written when they fail.
  const RowParams rp = parse_row_params(a.rows);
  check_common(a);
  const Mode mode = parse_mode(a.logprobs_mode);
  if (!a.token_logprobs.empty() && mode == Mode::kTempered) {
    throw UsageError("--token-logprobs " + a.token_logprobs +
                     ": needs --logprobs-mode raw or processed (the distribution to report)");
  }

  io::Array in = load_array(a.input);
  if (in.shape.size() == 1) in.shape = {1, in.shape[0]};  // one row
  if (in.shape.size() != 2) {
    throw UsageError("sample: the logits must have shape (V) or (B, V), got rank " +
                     std::to_string(in.shape.size()));
  }
  const int64_t rows = in.shape[0];
  check_row_counts(rp, a.rows, rows);
  SamplingParams p;
  Processors proc;
  uint64_t seed = 0, offset = 0;
  apply_row_params(rp, p, proc.lp, seed, offset);
  p.threads = a.threads;
  p.method = a.gumbel ? SamplingMethod::kGumbelMax : SamplingMethod::kInverseCdf;
  build_processors(a, rows, proc);
  p.processors = &proc.lp;
  io::Array ids = io::Array::zeros(DType::i64, {rows, a.draws});
  sample(in.view(), ids.view(), p, seed, offset);
  TopLogprobs top;
  const int64_t n = std::min(a.logprobs, in.shape[1]);
  if (a.logprobs > 0 && mode == Mode::kTempered) {
    top = tempered_top(in, n, rp, a.threads);
  } else if (a.logprobs > 0) {
    top = top_logprobs(in.view(), n, p, library_mode(mode));
  }
  io::Array tlp;
  if (!a.token_logprobs.empty()) {
    tlp = io::Array::zeros(DType::f64, {rows, a.draws});
    token_logprobs(in.view(), ids.view(), tlp.view(), p, library_mode(mode));
  }
  // Everything computed: write (the files and the stdout lines together or none).
  Outputs outs;
  if (!a.output.empty()) outs.add_array(a.output, ids);
  if (!a.token_logprobs.empty()) outs.add_array(a.token_logprobs, tlp);
  if (a.output.empty() || a.logprobs > 0) outs.add_text("-", stdout_lines(a, ids, top));
  outs.commit();
}

#ifdef SOFTMAX_CLI_MPI
void run_sample_vocab_parallel(const SampleArgs& a) {
  const RowParams rp = parse_row_params(a.rows);
  check_common(a);
  if (parse_mode(a.logprobs_mode) != Mode::kTempered) {
    throw UsageError("--logprobs-mode " + a.logprobs_mode +
                     ": --vocab-parallel reports the tempered log-probs only (no processors)");
  }
  if (!a.token_logprobs.empty()) {
    throw UsageError("--token-logprobs " + a.token_logprobs +
                     ": not available with --vocab-parallel");
  }
  if (a.logprobs > 0 && rp.temperature_per_row()) {
    throw UsageError("--temperature " + a.rows.temperature +
                     ": --vocab-parallel --logprobs takes one temperature for every row");
  }
  if (!a.prev_tokens.empty() || !a.logit_bias.empty() || !a.banned_tokens.empty() ||
      !a.eos_token_ids.empty() || rp.processors_set()) {
    throw UsageError(
        "--vocab-parallel does not take the logit processors (penalties, --logit-bias, "
        "--banned-tokens, --min-tokens, --num-generated)");
  }
  if (a.input.size() < 4 || a.input.compare(a.input.size() - 4, 4, ".npy") != 0) {
    throw UsageError(
        "--vocab-parallel reads a .npy file given with -i (each rank maps its columns)");
  }
  softmax::dist::MpiCommunicator comm(MPI_COMM_WORLD);
  const int rank = comm.rank(), ranks = comm.size();
  vp::ShardedNpy in;
  vp::agreed([&] {
    vp::map_sharded(a.input, "input", rank, ranks, in);
    const DType t = in.header.dtype;
    if (t != DType::f16 && t != DType::f32 && t != DType::f64) {
      throw Error(ErrorKind::kDTypeMismatch, "sample", "input",
                  "'" + a.input + "' of dtype " + dtype_name(t),
                  "must be float16, float32 or float64");
    }
    if (in.header.shape.size() > 2) {
      throw UsageError("sample: the logits must have shape (V) or (B, V), got rank " +
                       std::to_string(in.header.shape.size()));
    }
  });
  const int64_t rows = in.header.shape.size() == 1 ? 1 : in.header.shape[0];
  check_row_counts(rp, a.rows, rows);  // the same header on every rank: the same verdict
  const int64_t vocab = in.vocab;
  const ConstTensorView x(in.view.data, in.view.dtype, {rows, in.shard.size}, {vocab, 1});
  SamplingParams p;
  LogitProcessors unused;
  uint64_t seed = 0, offset = 0;
  apply_row_params(rp, p, unused, seed, offset);
  p.method = a.gumbel ? SamplingMethod::kGumbelMax : SamplingMethod::kInverseCdf;
  softmax::Context ctx;
  ctx.threads = a.threads;
  io::Array ids = io::Array::zeros(DType::i64, {rows, a.draws});
  softmax::dist::sample(comm, x, ids.view(), in.shard.offset, p, seed, offset, ctx);
  TopLogprobs top;
  if (a.logprobs > 0) {
    const double t = rp.temperature[0];
    top = softmax::dist::top_logprobs(comm, x, std::min(a.logprobs, vocab), in.shard.offset,
                                      t > 0 ? t : 1.0, ctx);
  }
  if (rank != 0) return;
  Outputs outs;
  if (!a.output.empty()) outs.add_array(a.output, ids);
  if (a.output.empty() || a.logprobs > 0) outs.add_text("-", stdout_lines(a, ids, top));
  outs.commit();
}
#endif

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
      "reproducible (Philox keyed by seed, offset, stream)");
  sub->add_option("-i,--input", a.input, "Logits (V) or (B, V): .npy (f16/f32/f64) or text")
      ->required();
  RowArgs& r = a.rows;
  // Per-row flags: one value for every row, or B comma-separated values (one per row).
  sub->add_option("-t,--temperature", r.temperature,
                  "Temperature T >= 0; 0 = greedy (argmax). T or T1,T2,... (one per row)")
      ->default_str("1");
  sub->add_option("--top-k", r.top_k, "Keep the K most probable tokens (0 or -1 = off); per row")
      ->default_str("0");
  sub->add_option("--top-p", r.top_p,
                  "Keep the smallest most-probable set reaching probability P, in (0, 1] (1 = "
                  "off); per row")
      ->default_str("1");
  sub->add_option("--min-p", r.min_p,
                  "Keep tokens with p >= M * p_max, M in [0, 1] (0 = off); per row")
      ->default_str("0");
  sub->add_option("--seed", r.seed, "Philox key, 64-bit; per row (one seed per request)")
      ->default_str("0");
  sub->add_option("--offset", r.offset, "Philox offset of the first draw, 64-bit; per row")
      ->default_str("0");
  sub->add_option("--streams", r.streams,
                  "Philox stream of each row, 64-bit (e.g. request ids): B comma-separated "
                  "values (default: the row index)");
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
  sub->add_option("--token-logprobs", a.token_logprobs,
                  "Write the log-prob of each drawn token, f64 of shape (B, DRAWS) (.npy or "
                  ".csv), under --logprobs-mode raw or processed");
  sub->add_flag("--gumbel", a.gumbel, "Draw by Gumbel-max instead of the inverse CDF");
  sub->add_flag("--vocab-parallel", a.vocab_parallel,
                "Under mpirun: the vocabulary (last axis of the -i .npy) is sharded across the "
                "ranks (each maps only its columns); rank 0 writes the same ids as one process");
  sub->add_option("--logprobs-mode", a.logprobs_mode,
                  "tempered: log-probs under softmax(x / T) (top-N only); raw: under "
                  "softmax(x) (vLLM raw_logprobs); processed: under the distribution drawn from "
                  "(processors, temperature, filters; vLLM processed_logprobs)")
      ->default_str("tempered");
  sub->add_option(
      "--prev-tokens", a.prev_tokens,
      "Earlier token ids for the penalties: (L) for every row or (B, L) padded with -1");
  sub->add_option(
         "--repetition-penalty", r.repetition_penalty,
         "CTRL penalty on --prev-tokens: positive logits / R, negative * R (R > 0, 1 = off); "
         "per row")
      ->default_str("1");
  sub->add_option("--presence-penalty", r.presence_penalty,
                  "Subtract P from the logit of every token in --prev-tokens (0 = off); per row")
      ->default_str("0");
  sub->add_option("--frequency-penalty", r.frequency_penalty,
                  "Subtract F * count for every token in --prev-tokens (0 = off); per row")
      ->default_str("0");
  sub->add_option("--logit-bias", a.logit_bias,
                  "Add BIAS to token ID's logit: ID=BIAS[,ID=BIAS...]");
  sub->add_option("--banned-tokens", a.banned_tokens, "Never draw these ids: ID[,ID...]");
  sub->add_option("--eos-token-ids", a.eos_token_ids,
                  "End-of-sequence ids suppressed until --min-tokens: ID[,ID...]");
  sub->add_option("--min-tokens", r.min_tokens,
                  "Suppress --eos-token-ids while a row's generated count is below N; per row")
      ->default_str("0");
  sub->add_option("--num-generated", r.num_generated,
                  "Tokens each row has generated, for --min-tokens (-1 = its --prev-tokens "
                  "count); per row")
      ->default_str("-1");
  sub->callback([] { run_sample(a); });
}

const bool registered = register_command(setup);

}  // namespace
}  // namespace softmax::cli
