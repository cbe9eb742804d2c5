// tools/softmax_cli/cmd_cross_entropy.cc: the training losses of the `softmax` tool.
//
//   softmax cross-entropy -i logits.npy --targets t.npy [--weight w.npy] [--ignore-index K]
//       [--reduction none|sum|mean] [--label-smoothing E] [--z-loss C] [-o loss.npy]
//       [--grad-out g.npy] [--log-prob-out lp.npy] [--threads N]
//   softmax nll-loss -i log_probs.npy --targets t.npy ... (same flags; no --z-loss value other
//       than 0 and no --log-prob-out, since the input already holds log-probabilities)
//   mpirun -np R softmax cross-entropy --vocab-parallel -i logits.npy --targets t.npy ...
//       (N, C) logits sharded by class across the ranks (softmax::dist::cross_entropy): each
//       rank maps only its columns of the logits (and of soft targets); rank 0 writes the same
//       outputs as one process.
//
// Logits (N, C) or (N, C, d1..dk), class axis 1 (or (C)); targets int32/int64 class ids of
// the rows' shape, or floating probabilities of the logits' shape (soft targets). The loss is
// written as f64 for f64 input and f32 otherwise; the gradient and log-probs in the input's
// dtype. Every number comes from softmax::cross_entropy / nll_loss; outputs are written only
// after the library accepted every input, and all together or not at all (Outputs): the files'
// temporaries are written first, then the loss on stdout (when there is no -o), then the files
// are renamed into place.
#include <memory>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"
#ifdef SOFTMAX_CLI_MPI
#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"
#include "softmax_cli/vocab_parallel.hpp"
#endif

namespace softmax::cli {
namespace {

struct LossArgs {
  std::string input, targets, weight, output, grad_out, lp_out, reduction = "mean", format = "auto";
  int64_t ignore_index = -100;
  double label_smoothing = 0.0, z_loss = 0.0;
  int threads = 0;
  bool vocab_parallel = false;
};

Reduction parse_reduction(const std::string& s) {
  if (s == "none") return Reduction::kNone;
  if (s == "sum") return Reduction::kSum;
  if (s == "mean") return Reduction::kMean;
  throw UsageError("--reduction " + s + ": must be none, sum or mean");
}

// Usage checks first: they cost nothing and write nothing.
Reduction check_loss_usage(bool logits, const LossArgs& a) {
  const char* name = logits ? "cross-entropy" : "nll-loss";
  if (a.input.empty()) throw UsageError(std::string(name) + ": -i/--input is required");
  if (a.targets.empty()) throw UsageError(std::string(name) + ": --targets is required");
  const Reduction red = parse_reduction(a.reduction);
  if (!logits && !a.lp_out.empty()) {
    throw UsageError("nll-loss: --log-prob-out does not apply (the input holds log-probs)");
  }
  if (a.threads < 0) throw UsageError("--threads must be >= 0");
  for (const std::string* p : {&a.output, &a.grad_out, &a.lp_out}) {
    if (!p->empty()) output_format(*p);
  }
  // Two outputs to one file would silently keep only the last one written.
  check_distinct_outputs(
      {{a.output.empty() ? "the loss (stdout, no -o)" : "-o", a.output.empty() ? "-" : a.output},
       {"--grad-out", a.grad_out},
       {"--log-prob-out", a.lp_out}});
  parse_display(a.format);
  return red;
}

CrossEntropyOptions loss_options(const LossArgs& a, Reduction red) {
  CrossEntropyOptions o;
  o.ignore_index = a.ignore_index;
  o.reduction = red;
  o.label_smoothing = a.label_smoothing;
  o.z_loss = a.z_loss;
  o.threads = a.threads;
  return o;
}

#ifdef SOFTMAX_CLI_MPI
// --vocab-parallel: logits (N, C) in a .npy, sharded by default_shard over MPI_COMM_WORLD; hard
// targets and the weight read whole by every rank, soft targets (a float .npy of the logits'
// shape) mapped by columns like the logits.
void run_loss_vocab_parallel(const LossArgs& a) {
  const Reduction red = check_loss_usage(true, a);
  const Display display = parse_display(a.format);
  auto is_npy = [](const std::string& p) {
    return p.size() >= 4 && p.compare(p.size() - 4, 4, ".npy") == 0;
  };
  if (!is_npy(a.input)) {
    throw UsageError(
        "--vocab-parallel reads a .npy file given with -i (each rank maps its columns)");
  }
  softmax::dist::MpiCommunicator comm(MPI_COMM_WORLD);
  const int rank = comm.rank(), ranks = comm.size();
  vp::ShardedNpy x, soft;
  io::Array t, w;
  bool soft_targets = false;
  CrossEntropyOptions o = loss_options(a, red);
  vp::agreed([&] {
    vp::map_sharded(a.input, "input", rank, ranks, x);
    if (x.header.shape.size() != 2) {
      throw Error(ErrorKind::kShapeMismatch, "cross-entropy", "input",
                  "a rank-" + std::to_string(x.header.shape.size()) + " array",
                  "--vocab-parallel takes (N, C) logits (the classes are the file's last axis)");
    }
    if (is_npy(a.targets)) {
      // Peek at the header: float targets of the logits' shape are soft and sharded.
      vp::ShardedNpy probe;
      vp::map_sharded(a.targets, "targets", rank, ranks, probe);
      const DType td = probe.header.dtype;
      soft_targets = td == DType::f16 || td == DType::f32 || td == DType::f64;
      if (soft_targets) vp::map_sharded(a.targets, "targets", rank, ranks, soft);
    }
    if (!soft_targets) t = load_array(a.targets);
    if (!a.weight.empty()) w = load_array(a.weight);
  });
  if (!a.weight.empty()) o.weight = w.view();
  const ConstTensorView xv = x.view;
  const std::vector<int64_t> rows{x.header.shape[0]};
  const DType loss_t = xv.dtype == DType::f64 ? DType::f64 : DType::f32;
  io::Array loss =
      io::Array::zeros(loss_t, red == Reduction::kNone ? rows : std::vector<int64_t>{});
  io::Array grad, lp;
  CrossEntropyOutputs out;
  out.loss = loss.view();
  if (!a.grad_out.empty()) {
    grad = io::Array::zeros(xv.dtype, x.shard_shape);
    out.grad = grad.view();
  }
  if (!a.lp_out.empty()) {
    lp = io::Array::zeros(xv.dtype, x.shard_shape);
    out.log_probs = lp.view();
  }
  softmax::Context ctx;
  ctx.threads = a.threads;
  o.threads = 0;
  softmax::dist::cross_entropy(comm, xv, soft_targets ? soft.view : t.view(), out, x.shard.offset,
                               o, ctx);
  if (!a.grad_out.empty()) grad = vp::gather_columns(grad, x.header.shape, xv.dtype, rank, ranks);
  if (!a.lp_out.empty()) lp = vp::gather_columns(lp, x.header.shape, xv.dtype, rank, ranks);
  if (rank != 0) return;
  Outputs outs;
  if (!a.grad_out.empty()) outs.add_array(a.grad_out, grad);
  if (!a.lp_out.empty()) outs.add_array(a.lp_out, lp);
  if (!a.output.empty())
    outs.add_array(a.output, loss);
  else
    outs.add_text(
        "-", stdout_image(loss, display == Display::automatic ? Display::csv : display, "loss"));
  outs.commit();
}
#endif

void run_loss(bool logits, const LossArgs& a) {
  if (a.vocab_parallel) {
#ifdef SOFTMAX_CLI_MPI
    vp::run_ranks([&] {
      if (!logits) throw UsageError("--vocab-parallel applies to cross-entropy, not nll-loss");
      run_loss_vocab_parallel(a);
    });
    return;
#else
    throw UsageError(
        "--vocab-parallel: this build of softmax has no MPI (install libopenmpi-dev "
        "openmpi-bin and rebuild)");
#endif
  }
  const Reduction red = check_loss_usage(logits, a);
  const Display display = parse_display(a.format);

  io::Array x = load_array(a.input);
  io::Array t = load_array(a.targets);
  io::Array w;
  CrossEntropyOptions o = loss_options(a, red);
  if (!a.weight.empty()) {
    w = load_array(a.weight);
    o.weight = w.view();
  }

  std::vector<int64_t> row_shape;
  for (std::size_t j = 0; j < x.shape.size(); ++j) {
    if (x.shape.size() > 1 && j != 1) row_shape.push_back(x.shape[j]);
  }
  const DType loss_t = x.dtype == DType::f64 ? DType::f64 : DType::f32;
  io::Array loss =
      io::Array::zeros(loss_t, red == Reduction::kNone ? row_shape : std::vector<int64_t>{});
  io::Array grad, lp;
  CrossEntropyOutputs out;
  out.loss = loss.view();
  if (!a.grad_out.empty()) {
    grad = io::Array::zeros(x.dtype, x.shape);
    out.grad = grad.view();
  }
  if (!a.lp_out.empty()) {
    lp = io::Array::zeros(x.dtype, x.shape);
    out.log_probs = lp.view();
  }
  if (logits)
    cross_entropy(x.view(), t.view(), out, o);
  else
    nll_loss(x.view(), t.view(), out, o);

  // All outputs land together or none does (a missing folder or a full stdout writes nothing).
  Outputs outs;
  if (!a.grad_out.empty()) outs.add_array(a.grad_out, grad);
  if (!a.lp_out.empty()) outs.add_array(a.lp_out, lp);
  if (!a.output.empty())
    outs.add_array(a.output, loss);
  else
    outs.add_text("-", stdout_image(loss, display, "loss"));
  outs.commit();
}

void add_loss_options(CLI::App* sub, LossArgs& a, bool logits) {
  sub->add_option("-i,--input", a.input,
                  logits ? "Logits: .npy/.csv, (N, C) or (N, C, d1..dk), class axis 1"
                         : "Log-probabilities: .npy/.csv, (N, C) or (N, C, d1..dk)");
  sub->add_option("--targets", a.targets,
                  "Targets: int32/int64 class ids of shape (N) or (N, d1..dk), or float "
                  "probabilities of the input's shape (soft targets)");
  sub->add_option("--weight", a.weight, "Per-class weights (C), no NaN");
  sub->add_option("--ignore-index", a.ignore_index, "Targets equal to K are skipped")
      ->transform(strict_integer<int64_t>())
      ->default_str("-100");
  sub->add_option("--reduction", a.reduction, "none | sum | mean (weighted mean over kept rows)")
      ->default_str("mean");
  sub->add_option("--label-smoothing", a.label_smoothing, "E in [0, 1] (kept rows only)")
      ->default_str("0");
  sub->add_option("--z-loss", a.z_loss,
                  logits ? "C >= 0: adds C * logsumexp^2 per kept row (PaLM)"
                         : "must be 0 (log-probs have no logsumexp)")
      ->default_str("0");
  sub->add_option("-o,--output", a.output, "Loss output (.npy/.csv); default: stdout");
  sub->add_option("--grad-out", a.grad_out, "Also write d loss / d input (.npy/.csv)");
  if (logits) sub->add_option("--log-prob-out", a.lp_out, "Also write log_softmax(logits)");
  sub->add_option("--threads", a.threads, "Worker threads (0 = all cores)")
      ->transform(strict_integer<int>())
      ->default_str("0");
  sub->add_option("--format", a.format, "Loss on stdout: auto|table|csv|npy")->default_str("auto");
  sub->add_flag("--vocab-parallel", a.vocab_parallel,
                logits ? "Under mpirun: the classes of the (N, C) -i .npy (and of soft targets) "
                         "are sharded across the ranks (each maps only its columns); rank 0 "
                         "writes the same outputs as one process would"
                       : "cross-entropy only (an error here)");
}

void setup(CLI::App& app) {
  static LossArgs ce, nll;
  CLI::App* s1 = app.add_subcommand(
      "cross-entropy",
      "Fused log-softmax + negative log-likelihood (PyTorch cross_entropy / ONNX "
      "SoftmaxCrossEntropyLoss-13), optionally with its gradient");
  add_loss_options(s1, ce, true);
  s1->callback([] { run_loss(true, ce); });
  CLI::App* s2 =
      app.add_subcommand("nll-loss",
                         "Negative log-likelihood of log-probabilities (PyTorch nll_loss / ONNX "
                         "NegativeLogLikelihoodLoss-13)");
  add_loss_options(s2, nll, false);
  s2->callback([] { run_loss(false, nll); });
}

const bool registered = register_command(setup);

}  // namespace
}  // namespace softmax::cli
