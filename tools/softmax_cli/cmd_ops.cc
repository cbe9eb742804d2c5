// tools/softmax_cli/cmd_ops.cc: the core operations of the `softmax` tool.
//
//   softmax [OP] [options] [LOGITS...]
//   OP: softmax (default) | log-softmax | logsumexp | argmax | hardmax | sigmoid | explain
//
// Every number comes from the library (softmax::softmax etc.); this file only reads inputs,
// picks dtypes, checks which options apply, and writes results (after everything succeeded).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"
#include "softmax/shape.hpp"
#include "src/io/file_util.hpp"
#ifdef SOFTMAX_CLI_MPI
#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"
#include "softmax_cli/vocab_parallel.hpp"
#endif

namespace softmax::cli {
namespace {

enum class Op { softmax, log_softmax, logsumexp, argmax, hardmax, sigmoid };

const char* op_name(Op op) {
  switch (op) {
    case Op::softmax: return "softmax";
    case Op::log_softmax: return "log-softmax";
    case Op::logsumexp: return "logsumexp";
    case Op::argmax: return "argmax";
    case Op::hardmax: return "hardmax";
    case Op::sigmoid: return "sigmoid";
  }
  return "?";
}

// The options every core operation takes (each app gets its own copy).
struct CoreArgs {
  std::vector<std::string> logits;
  std::string input, output, dtype, format = "auto";
  int64_t axis = -1;
  double temperature = 1.0;
  bool keepdims = false;
  int threads = 0;
  int64_t top = 0;
  bool vocab_parallel = false;
  CLI::Option *axis_opt = nullptr, *t_opt = nullptr, *keepdims_opt = nullptr, *dtype_opt = nullptr,
              *top_opt = nullptr;
};

void add_core_options(CLI::App* app, CoreArgs& a) {
  app->add_option("LOGITS", a.logits, "Numbers forming one row, e.g. 2.0 1.0 0.1")
      ->type_name("NUMBER");
  app->add_option("-i,--input", a.input,
                  "Input: .npy (float16/32/64, C or Fortran order), .csv/.txt (one row per "
                  "line), or - for stdin");
  app->add_option("-o,--output", a.output,
                  "Output file: .npy or .csv (by extension); - or -.npy: stdout. Default: a "
                  "table on a terminal, CSV when piped");
  a.axis_opt = app->add_option("--axis", a.axis, "Axis of the rows; negative counts from the end")
                   ->transform(strict_integer<int64_t>())
                   ->default_str("-1");
  a.t_opt =
      app->add_option("-t,--temperature", a.temperature, "Temperature T > 0: computes op(x / T)")
          ->default_str("1");
  a.keepdims_opt =
      app->add_flag("--keepdims", a.keepdims, "logsumexp, argmax: keep the reduced axis (size 1)");
  a.dtype_opt = app->add_option("--dtype", a.dtype,
                                "Output dtype f16|f32|f64 (default: the input's; numbers given "
                                "as text are f64)");
  app->add_option("--threads", a.threads, "Worker threads (0 = all cores)")
      ->transform(strict_integer<int>())
      ->default_str("0");
  a.top_opt = app->add_option("--top", a.top,
                              "softmax, log-softmax: print the K most probable entries of each "
                              "row (index and value)")
                  ->transform(strict_integer<int64_t>());
  app->add_flag("--vocab-parallel", a.vocab_parallel,
                "softmax, log-softmax, logsumexp, argmax under mpirun: the last axis of the "
                "-i .npy is sharded across the ranks (each maps only its columns); rank 0 "
                "writes the same output as one process would");
  app->add_option("--format", a.format,
                  "Output on stdout: auto|table|csv|npy (npy: binary, stdout must not be a "
                  "terminal; same as -o -.npy)")
      ->default_str("auto");
}

// Checks that hold before any file is read, so misuse costs nothing and writes nothing.
void check_usage(Op op, const CoreArgs& a) {
  const std::string name = op_name(op);
  if (!a.input.empty() && !a.logits.empty()) {
    throw UsageError("give either LOGITS or -i/--input, not both");
  }
  if (a.input.empty() && a.logits.empty()) {
    throw UsageError(name + ": no input: give numbers (softmax " + name +
                     " 2 1 0.1), -i FILE, or pipe them on stdin");
  }
  if (a.keepdims && op != Op::logsumexp && op != Op::argmax) {
    throw UsageError("--keepdims applies to logsumexp and argmax, not " + name);
  }
  if (a.top_opt->count() > 0) {
    if (op != Op::softmax && op != Op::log_softmax) {
      throw UsageError("--top applies to softmax and log-softmax, not " + name);
    }
    if (a.top < 1) throw UsageError("--top " + std::to_string(a.top) + ": K must be >= 1");
    if (!a.output.empty() && output_format(a.output) != FileFormat::csv) {
      throw UsageError("--top writes a table: the output file must be .csv or .txt");
    }
    if (parse_display(a.format) == Display::npy) {
      throw UsageError("--top writes a table: --format npy does not apply");
    }
  }
  if (op == Op::sigmoid && a.t_opt->count() > 0) {
    throw UsageError("--temperature does not apply to sigmoid (elementwise)");
  }
  if (op == Op::sigmoid && a.axis_opt->count() > 0) {
    throw UsageError("--axis does not apply to sigmoid (elementwise)");
  }
  if (op == Op::argmax && a.dtype_opt->count() > 0) {
    throw UsageError("--dtype does not apply to argmax (it writes int64 indices)");
  }
  if (a.threads < 0) throw UsageError("--threads " + std::to_string(a.threads) + ": must be >= 0");
  if (!a.output.empty()) output_format(a.output);
  parse_display(a.format);
  if (!a.dtype.empty()) parse_float_dtype(a.dtype);
}

// The rows along `axis` of a C-contiguous array of `shape`: element k of row r = (o, i) is at
// (o * n + k) * inner + i.
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t count() const { return outer * inner; }
  int64_t at(int64_t r, int64_t k) const { return ((r / inner) * n + k) * inner + r % inner; }
};
Rows rows_of(const std::vector<int64_t>& shape, int64_t axis) {
  Rows g;
  for (int64_t j = 0; j < static_cast<int64_t>(shape.size()); ++j) {
    if (j < axis)
      g.outer *= shape[j];
    else if (j == axis)
      g.n = shape[j];
    else
      g.inner *= shape[j];
  }
  return g;
}

// --top K: for each row, the K largest values of y (probabilities or log-probabilities) with
// their indices, largest first, ties to the lower index; NaN ranks last.
std::string top_table(const io::Array& y, int64_t axis, int64_t k, bool log, bool table) {
  const Rows g = rows_of(y.shape, axis);
  const int64_t kk = std::min<int64_t>(k, g.n);
  const char* value_name = log ? "log_probability" : "probability";
  std::string out;
  char buf[128];
  if (table) {
    std::snprintf(buf, sizeof buf, "%6s %5s %7s  %s\n", "row", "rank", "index", value_name);
  } else {
    std::snprintf(buf, sizeof buf, "# row,rank,index,%s\n", value_name);
  }
  out += buf;
  const io::Array yd = convert(y, DType::f64);
  const auto* yv = reinterpret_cast<const double*>(yd.bytes.data());
  std::vector<std::pair<double, int64_t>> entries(static_cast<std::size_t>(g.n));
  for (int64_t r = 0; r < g.count(); ++r) {
    for (int64_t j = 0; j < g.n; ++j) {
      entries[j] = {yv[g.at(r, j)], j};
    }
    std::partial_sort(entries.begin(), entries.begin() + kk, entries.end(),
                      [](const auto& a, const auto& b) {
                        const bool an = std::isnan(a.first), bn = std::isnan(b.first);
                        if (an != bn) return bn;
                        if (!an && a.first != b.first) return a.first > b.first;
                        return a.second < b.second;
                      });
    for (int64_t j = 0; j < kk; ++j) {
      const int64_t idx = entries[j].second;
      if (table) {
        std::snprintf(buf, sizeof buf, "%6lld %5lld %7lld  %s\n", static_cast<long long>(r),
                      static_cast<long long>(j) + 1, static_cast<long long>(idx),
                      readable(entries[j].first).c_str());
      } else {
        std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%s\n", static_cast<long long>(r),
                      static_cast<long long>(j) + 1, static_cast<long long>(idx),
                      io::format_value(y, g.at(r, idx)).c_str());
      }
      out += buf;
    }
  }
  return out;
}

// ---- --vocab-parallel: the class axis sharded across MPI ranks (softmax/dist.hpp) ----------

#ifdef SOFTMAX_CLI_MPI
void run_vocab_parallel_ranks(Op op, const CoreArgs& a);

// Every rank reaches the same verdict (vp::agreed, the ops' agreement); only rank 0 reports it.
void run_op_vocab_parallel(Op op, const CoreArgs& a) {
  vp::run_ranks([&] {
    check_usage(op, a);
    run_vocab_parallel_ranks(op, a);
  });
}

void run_vocab_parallel_ranks(Op op, const CoreArgs& a) {
  const std::string name = op_name(op);
  if (op != Op::softmax && op != Op::log_softmax && op != Op::logsumexp && op != Op::argmax) {
    throw UsageError(
        "--vocab-parallel applies to softmax, log-softmax, logsumexp and argmax, not " + name);
  }
  if (a.input.size() < 4 || a.input.compare(a.input.size() - 4, 4, ".npy") != 0) {
    throw UsageError(
        "--vocab-parallel reads a .npy file given with -i (each rank maps its columns)");
  }
  if (a.top_opt->count() > 0) throw UsageError("--top does not apply with --vocab-parallel");
  softmax::dist::MpiCommunicator comm(MPI_COMM_WORLD);
  const int rank = comm.rank(), ranks = comm.size();
  vp::ShardedNpy in;
  vp::agreed([&] {
    vp::map_sharded(a.input, "input", rank, ranks, in);
    const io::NpyHeader& h = in.header;
    if (h.dtype != DType::f16 && h.dtype != DType::f32 && h.dtype != DType::f64) {
      throw Error(ErrorKind::kDTypeMismatch, name, "input",
                  "'" + a.input + "' of dtype " + dtype_name(h.dtype),
                  "must be float16, float32 or float64");
    }
    const int64_t axis =
        softmax::normalize_axis(a.axis, static_cast<int64_t>(h.shape.size()), name.c_str());
    if (axis != static_cast<int64_t>(h.shape.size()) - 1) {
      throw Error(ErrorKind::kInvalidArgument, name, "axis", std::to_string(a.axis),
                  "--vocab-parallel shards the last axis (the classes of a C-order file)");
    }
  });
  const io::NpyHeader& h = in.header;
  const softmax::dist::Shard sh = in.shard;
  const std::vector<int64_t>& shard_shape = in.shard_shape;
  ConstTensorView x = in.view;

  const DType out_t = a.dtype.empty() ? h.dtype : parse_float_dtype(a.dtype);
  const DType compute_out = h.dtype == DType::f64 ? DType::f64 : out_t;
  // As run_op: f64 output from a narrower input converts the input (exactly) first.
  io::Array widened;
  if (out_t == DType::f64 && h.dtype != DType::f64) {
    widened = io::Array::zeros(DType::f64, shard_shape);
    softmax::convert(x, widened.view());
    x = widened.view();
  }
  SoftmaxOptions o;
  o.axis = -1;
  o.temperature = a.temperature;
  o.keepdims = a.keepdims;
  softmax::Context ctx;
  ctx.threads = a.threads;
  io::Array y;
  if (op == Op::softmax || op == Op::log_softmax) {
    io::Array part = io::Array::zeros(compute_out, shard_shape);
    if (op == Op::softmax)
      softmax::dist::softmax(comm, x, part.view(), sh.offset, o, ctx);
    else
      softmax::dist::log_softmax(comm, x, part.view(), sh.offset, o, ctx);
    // Rank 0 gathers every rank's columns and interleaves them.
    y = vp::gather_columns(part, h.shape, compute_out, rank, ranks);
    if (rank != 0) return;
  } else {
    const std::vector<int64_t> rshape =
        softmax::reduced_shape(h.shape, static_cast<int64_t>(h.shape.size()) - 1, a.keepdims);
    y = io::Array::zeros(op == Op::argmax ? DType::i64 : compute_out, rshape);
    if (op == Op::logsumexp)
      softmax::dist::logsumexp(comm, x, y.view(), sh.offset, o, ctx);
    else
      softmax::dist::argmax(comm, x, y.view(), sh.offset, o, ctx);
    if (rank != 0) return;
  }
  if (op != Op::argmax && y.dtype != out_t) y = convert(y, out_t);
  Outputs out;
  if (!a.output.empty())
    out.add_array(a.output, y);
  else {
    // Under mpirun the rank's stdout is mpirun's pipe or pty: "auto" means CSV here.
    const Display d = parse_display(a.format);
    out.add_text("-", stdout_image(y, d == Display::automatic ? Display::csv : d));
  }
  out.commit();
}
#endif

void run_op(Op op, const CoreArgs& given) {
  CoreArgs a = given;
  if (a.vocab_parallel) {
#ifdef SOFTMAX_CLI_MPI
    run_op_vocab_parallel(op, a);
    return;
#else
    throw UsageError(
        "--vocab-parallel: this build of softmax has no MPI (install libopenmpi-dev "
        "openmpi-bin and rebuild)");
#endif
  }
  if (a.input.empty() && a.logits.empty() && stdin_has_input()) a.input = "-";  // piped numbers
  check_usage(op, a);
  const std::string name = op_name(op);
  io::Array in = a.input.empty() ? numbers_to_array(a.logits) : load_array(a.input);
  if (in.dtype != DType::f16 && in.dtype != DType::f32 && in.dtype != DType::f64) {
    throw Error(ErrorKind::kDTypeMismatch, name, "input",
                "'" + a.input + "' of dtype " + dtype_name(in.dtype),
                "must be float16, float32 or float64");
  }
  const DType out_t = a.dtype.empty() ? in.dtype : parse_float_dtype(a.dtype);
  // The library computes f16/f32 in f32 (any f16/f32 output) and f64 in f64 (f64 output):
  // f64 output from a narrower input converts the input (exactly) first; a narrower output
  // from f64 input computes in f64 and rounds once at the end.
  const DType compute_out = in.dtype == DType::f64 ? DType::f64 : out_t;
  const io::Array x = out_t == DType::f64 ? convert(in, DType::f64) : in;

  SoftmaxOptions o;
  o.axis = a.axis;
  o.temperature = a.temperature;
  o.threads = a.threads;
  o.keepdims = a.keepdims;
  const char* lib_op = op == Op::log_softmax ? "log_softmax" : op_name(op);
  int64_t axis = -1;
  if (op != Op::sigmoid) axis = softmax::normalize_axis(a.axis, x.view().rank(), lib_op);

  io::Array y;
  switch (op) {
    case Op::softmax:
    case Op::log_softmax:
    case Op::hardmax:
      y = io::Array::zeros(compute_out, x.shape);
      if (op == Op::softmax)
        softmax::softmax(x.view(), y.view(), o);
      else if (op == Op::log_softmax)
        softmax::log_softmax(x.view(), y.view(), o);
      else
        softmax::hardmax(x.view(), y.view(), o);
      break;
    case Op::logsumexp:
      y = io::Array::zeros(compute_out, softmax::reduced_shape(x.shape, axis, a.keepdims));
      softmax::logsumexp(x.view(), y.view(), o);
      break;
    case Op::argmax:
      y = io::Array::zeros(DType::i64, softmax::reduced_shape(x.shape, axis, a.keepdims));
      softmax::argmax(x.view(), y.view(), o);
      break;
    case Op::sigmoid: {
      y = io::Array::zeros(compute_out, x.shape);
      ElementwiseOptions eo;
      eo.threads = a.threads;
      softmax::sigmoid(x.view(), y.view(), eo);
      break;
    }
  }
  if (op != Op::argmax && y.dtype != out_t) y = convert(y, out_t);

  const Display display = parse_display(a.format);
  Outputs out;
  if (a.top_opt->count() > 0) {
    const bool table = a.output.empty() && use_table(display);
    out.add_text(a.output.empty() ? "-" : a.output,
                 top_table(y, axis, a.top, op == Op::log_softmax, table));
  } else if (!a.output.empty()) {
    out.add_array(a.output, y);
  } else {
    out.add_text("-", stdout_image(y, display));
  }
  out.commit();
}

// ---- explain: the seed article's worked example, computed with the library ----------------

std::string pad(const std::string& s, std::size_t w) {
  return s.size() >= w ? s : std::string(w - s.size(), ' ') + s;
}

void explain(const std::vector<std::string>& tokens, const std::vector<double>& extra_t) {
  std::vector<double> x = {2.0, 1.0, 0.1};
  if (!tokens.empty()) {
    const io::Array a = numbers_to_array(tokens);
    x.assign(reinterpret_cast<const double*>(a.bytes.data()),
             reinterpret_cast<const double*>(a.bytes.data()) + tokens.size());
  }
  const std::size_t n = x.size();
  std::vector<double> temps = {0.5, 1.0, 1.5};
  for (double t : extra_t) {
    if (std::find(temps.begin(), temps.end(), t) == temps.end()) temps.push_back(t);
  }
  // Everything is computed before anything is printed (errors print nothing).
  std::vector<double> e(n), p(n), hard(n), sig(n);
  std::vector<std::vector<double>> pt(temps.size(), std::vector<double>(n));
  for (std::size_t i = 0; i < n; ++i) e[i] = std::exp(x[i]);
  softmax::softmax(std::span<const double>(x), std::span<double>(p));
  for (std::size_t k = 0; k < temps.size(); ++k) {
    softmax::softmax(std::span<const double>(x), std::span<double>(pt[k]), temps[k]);
  }
  const int64_t am = softmax::argmax(std::span<const double>(x));
  const std::vector<int64_t> shape = {static_cast<int64_t>(n)};
  softmax::hardmax(ConstTensorView(x.data(), shape), TensorView(hard.data(), shape));
  softmax::sigmoid(ConstTensorView(x.data(), shape), TensorView(sig.data(), shape));
  double esum = 0, psum = 0, ssum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    esum += e[i];
    psum += p[i];
    ssum += sig[i];
  }

  auto num = [](double v) {
    if (std::isfinite(v) && std::fabs(v) >= 1e6) {
      char b[32];
      std::snprintf(b, sizeof b, "%.3e", v);
      return std::string(b);
    }
    return readable(v);
  };
  std::string out;
  out += "softmax turns logits into probabilities: p_i = exp(x_i) / sum_j exp(x_j)\n\n";
  out += pad("i", 5) + pad("logit", 12) + pad("exp(logit)", 14) + pad("probability", 14) + "\n";
  for (std::size_t i = 0; i < n; ++i) {
    out += pad(std::to_string(i), 5) + pad(num(x[i]), 12) + pad(num(e[i]), 14) +
           pad(num(p[i]), 14) + "\n";
  }
  out += pad("sum", 5) + pad("", 12) + pad(num(esum), 14) + pad(num(psum), 14) + "\n";
  bool overflow = false;
  for (double v : e) overflow |= std::isinf(v);
  if (overflow) {
    out +=
        "exp(logit) overflows here; the probabilities do not, because softmax(x) = "
        "softmax(x - max(x)) and the library computes exp(x_i - max).\n";
  }
  out +=
      "\nTemperature T divides the logits first, softmax(x / T): T < 1 sharpens the\n"
      "distribution, T > 1 flattens it, T -> 0 approaches argmax.\n";
  out += pad("T", 5);
  for (std::size_t i = 0; i < n; ++i) out += pad("p[" + std::to_string(i) + "]", 9);
  out += "\n";
  for (std::size_t k = 0; k < temps.size(); ++k) {
    char tb[32];
    std::snprintf(tb, sizeof tb, "%g", temps[k]);
    out += pad(tb, 5);
    for (std::size_t i = 0; i < n; ++i) out += pad(num(pt[k][i]), 9);
    out += "\n";
  }
  out += "\nWhat the neighbours give instead:\n";
  out += "  argmax   " + std::to_string(am) +
         "   (the index of the largest logit, lowest index on ties: no probabilities)\n";
  std::string h, s;
  for (std::size_t i = 0; i < n; ++i) {
    h += (i ? " " : "") + std::string(hard[i] != 0 ? "1" : "0");
    s += (i ? " " : "") + num(sig[i]);
  }
  out += "  hardmax  " + h + "   (one-hot argmax: the limit of softmax as T -> 0)\n";
  out += "  sigmoid  " + s + "   (each logit on its own, 1 / (1 + exp(-x)): sum " + num(ssum) +
         ", not a distribution)\n";
  io::write_file_atomic("-", out, "print");
}

// ---- registration ---------------------------------------------------------------------------

struct Commands {
  CoreArgs main_args;
  CoreArgs sub_args[6];
  std::vector<std::string> explain_logits;
  std::vector<double> explain_t;
};

void setup(CLI::App& app) {
  static Commands c;  // lives as long as the app; one CLI::App per process
  add_core_options(&app, c.main_args);
  app.footer(
      "Operations (default: softmax): softmax, log-softmax, logsumexp, argmax, hardmax, "
      "sigmoid, explain.\nExamples:\n  softmax                       the worked example\n"
      "  softmax 1000 1001 1002        -> 0.090 0.245 0.665\n"
      "  softmax --top 5 -i logits.npy\n"
      "  softmax log-softmax -t 0.7 -i x.csv -o y.npy\n"
      "  echo 2 1 0.1 | softmax          stdin (a pipe or a file) when no numbers are given\n"
      "Errors: one line on stderr, exit status 2, no output file.\n");
  const Op ops[6] = {Op::softmax, Op::log_softmax, Op::logsumexp,
                     Op::argmax,  Op::hardmax,     Op::sigmoid};
  const char* help[6] = {
      "softmax(x / T) along an axis (the default operation)",
      "log_softmax(x / T) = (x - max) / T - log(sum exp((x - max) / T))",
      "log(sum(exp(x / T))) along an axis (the axis is dropped unless --keepdims)",
      "index of the largest entry along an axis (lowest index on ties)",
      "one-hot of argmax along an axis (ONNX Hardmax-13)",
      "1 / (1 + exp(-x)), elementwise",
  };
  for (int k = 0; k < 6; ++k) {
    CLI::App* sub = app.add_subcommand(op_name(ops[k]), help[k]);
    add_core_options(sub, c.sub_args[k]);
    const Op op = ops[k];
    CoreArgs* args = &c.sub_args[k];
    sub->callback([op, args] { run_op(op, *args); });
  }
  CLI::App* ex =
      app.add_subcommand("explain",
                         "The worked example (logits 2.0 1.0 0.1 unless LOGITS are given): exp, "
                         "probabilities, temperatures, argmax and sigmoid");
  ex->add_option("LOGITS", c.explain_logits, "Logits to explain")->type_name("NUMBER");
  ex->add_option("-t,--temperature", c.explain_t, "Also show this temperature (repeatable)")
      ->type_name("T")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  ex->callback([] { explain(c.explain_logits, c.explain_t); });

  // Options of the default operation belong before no other command.
  app.parse_complete_callback([&app] {
    if (!app.get_subcommands().empty() && app.count_all() > 0) {
      bool own = !c.main_args.logits.empty();
      for (const CLI::Option* opt : app.get_options()) {
        if (opt->get_name() != "--help" && opt->count() > 0) own = true;
      }
      if (own) {
        throw UsageError("'" + app.get_subcommands().front()->get_name() +
                         "': options and numbers go after the operation name (softmax OP "
                         "[options] [LOGITS...])");
      }
    }
  });
  app.callback([&app] {
    if (!app.get_subcommands().empty()) return;
    bool any = !c.main_args.logits.empty();
    for (const CLI::Option* opt : app.get_options()) {
      if (opt->count() > 0) any = true;
    }
    if (!any && !stdin_has_input()) {
      explain({}, {});
      return;
    }
    run_op(Op::softmax, c.main_args);  // numbers, or stdin when it is a pipe or a file
  });
}

const bool registered = register_command(setup);

}  // namespace
}  // namespace softmax::cli
