// python/bind_dist.cc: the vocabulary-parallel ops (softmax/dist.hpp) over MPI, for
// softmax.dist (python/softmax/dist.py passes an mpi4py communicator as its Fortran handle,
// converted here with MPI_Comm_f2c). Built when CMake finds MPI.
#include "softmax/dist.hpp"
#include "softmax/dist_mpi.hpp"

#include "common.hpp"
#include "loss_args.hpp"
#include "sampling_args.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

enum class DistOp { kSoftmax, kLogSoftmax, kLogSumExp, kArgmax };

// Whether this thread's current softmax.dist call reached its collective op (set just before
// the op, cleared by _dist_begin): a call that failed before it (an argument pybind11 or the
// conversion here rejected) has not joined the op's agreement, and softmax.dist then calls
// _dist_fail so the other ranks do not wait for it (see python/softmax/dist.py).
thread_local bool t_entered = false;

// The communicator of a softmax.dist call, made once its arguments are converted, right before
// the collective op: marks the call as having reached it.
softmax::dist::MpiCommunicator op_comm(int64_t fcomm) {
  t_entered = true;
  return softmax::dist::MpiCommunicator(MPI_Comm_f2c(static_cast<MPI_Fint>(fcomm)));
}

py::object dist_op(DistOp op, const char* name, int64_t fcomm, py::handle x, int64_t class_offset,
                   py::handle axis, double temperature, py::handle keepdims, py::handle dtype,
                   py::handle out, int threads) {
  softmax::SoftmaxOptions o;
  o.axis = parse_axis(axis, py::none(), name);
  o.temperature = temperature;
  if (op == DistOp::kLogSumExp || op == DistOp::kArgmax) {
    o.keepdims = parse_keepdims(keepdims, py::none(), name);
  }
  softmax::Context ctx;
  ctx.threads = parse_threads(threads, name);
  const Operand xin = input(x, name, "x");
  const bool reduce = op == DistOp::kLogSumExp || op == DistOp::kArgmax;
  const DType def = op == DistOp::kArgmax ? DType::i64 : xin.view.dtype;
  const auto shape = reduce ? reduced_shape(xin.view.shape, o.axis, o.keepdims) : xin.view.shape;
  Operand y = make_output(xin, out, dtype, shape, def, name);
  auto comm = op_comm(fcomm);
  nogil([&] {
    switch (op) {
      case DistOp::kSoftmax:
        softmax::dist::softmax(comm, xin.cview(), y.view, class_offset, o, ctx);
        break;
      case DistOp::kLogSoftmax:
        softmax::dist::log_softmax(comm, xin.cview(), y.view, class_offset, o, ctx);
        break;
      case DistOp::kLogSumExp:
        softmax::dist::logsumexp(comm, xin.cview(), y.view, class_offset, o, ctx);
        break;
      case DistOp::kArgmax:
        softmax::dist::argmax(comm, xin.cview(), y.view, class_offset, o, ctx);
        break;
    }
  });
  return y.owner;
}

void def_op(py::module_& m, const char* py_name, DistOp op, const char* op_name) {
  m.def(
      py_name,
      [op, op_name](int64_t fcomm, py::handle x, int64_t class_offset, py::handle axis,
                    double temperature, py::handle keepdims, py::handle dtype, py::handle out,
                    int threads) {
        return dist_op(op, op_name, fcomm, x, class_offset, axis, temperature, keepdims, dtype, out,
                       threads);
      },
      py::arg("fcomm"), py::arg("x"), py::arg("class_offset"), py::arg("axis") = -1,
      py::arg("temperature") = 1.0, py::arg("keepdims") = false, py::arg("dtype") = py::none(),
      py::arg("out") = py::none(), py::arg("threads") = 0,
      "Internal: see softmax.dist (takes the communicator's Fortran handle).");
}

py::object dist_cross_entropy(int64_t fcomm, py::handle input, py::handle target,
                              int64_t class_offset, const LossArgs& a, bool return_grad,
                              bool return_lse, bool return_log_probs) {
  const int threads = parse_threads(a.threads, "dist.cross_entropy");
  return loss_call("dist.cross_entropy", input, target, a, return_grad, return_lse,
                   return_log_probs,
                   [&](const softmax::ConstTensorView& x, const softmax::ConstTensorView& t,
                       const softmax::CrossEntropyOutputs& out, softmax::CrossEntropyOptions o) {
                     auto comm = op_comm(fcomm);
                     softmax::Context ctx;
                     ctx.threads = threads;
                     o.threads = 0;
                     softmax::dist::cross_entropy(comm, x, t, out, class_offset, o, ctx);
                   });
}

py::object dist_linear_cross_entropy(int64_t fcomm, py::handle hidden, py::handle weight,
                                     py::handle target, int64_t class_offset, const LossArgs& a,
                                     int64_t vocab_chunk, bool return_grad, bool return_lse,
                                     py::handle grad_output) {
  const int threads = parse_threads(a.threads, "dist.linear_cross_entropy");
  return linear_loss_call(
      "dist.linear_cross_entropy", hidden, weight, target, a, vocab_chunk, return_grad, return_lse,
      grad_output,
      [&](const softmax::ConstTensorView& h, const softmax::ConstTensorView& w,
          const softmax::ConstTensorView& t, const softmax::LinearCrossEntropyOutputs& out,
          softmax::CrossEntropyOptions o) {
        auto comm = op_comm(fcomm);
        softmax::Context ctx;
        ctx.threads = threads;
        o.threads = 0;
        softmax::dist::linear_cross_entropy(comm, h, w, t, out, class_offset, o, ctx);
      });
}

py::object dist_sample(int64_t fcomm, py::handle x, int64_t class_offset, py::handle num_samples,
                       const SampleArgs& a) {
  const char* op = "dist.sample";
  const Operand xin = input(x, op, "logits");
  std::vector<int64_t> shape{xin.view.shape.empty() ? 0 : xin.view.shape[0]};
  if (!num_samples.is_none()) {
    const auto d = py::cast<int64_t>(num_samples);
    if (d < 0) {
      throw py::value_error(std::string("softmax.") + op + ": num_samples = " + std::to_string(d) +
                            ": must be >= 0");
    }
    shape.push_back(d);
  }
  Operand tokens = new_output(xin.kind, shape, DType::i64, op);
  auto comm = op_comm(fcomm);
  softmax::Context ctx;
  ctx.threads = a.params.threads;
  softmax::SamplingParams p = a.params;
  p.threads = 0;
  nogil([&] {
    softmax::dist::sample(comm, xin.cview(), tokens.view, class_offset, p, a.seed.scalar,
                          a.offset.scalar, ctx);
  });
  return tokens.owner;
}

}  // namespace

void register_dist(py::module_& m) {
  m.def(
      "_dist_begin", [] { t_entered = false; }, "Internal: see softmax.dist.");
  m.def(
      "_dist_entered", [] { return t_entered; }, "Internal: see softmax.dist.");
  m.def(
      "_dist_fail",
      [](int64_t fcomm, const std::string& op, const std::string& what, bool type_error) {
        softmax::dist::MpiCommunicator comm(MPI_Comm_f2c(static_cast<MPI_Fint>(fcomm)));
        nogil([&] {
          softmax::dist::fail_op(comm, op.c_str(), what,
                                 type_error ? softmax::ErrorKind::kDTypeMismatch
                                            : softmax::ErrorKind::kInvalidArgument);
        });
      },
      py::arg("fcomm"), py::arg("op"), py::arg("what"), py::arg("type_error") = false,
      "Internal: joins the agreement of `op` as a failing rank (softmax::dist::fail_op); "
      "type_error: every rank raises TypeError (else ValueError).");
  def_op(m, "_dist_softmax", DistOp::kSoftmax, "dist.softmax");
  def_op(m, "_dist_log_softmax", DistOp::kLogSoftmax, "dist.log_softmax");
  def_op(m, "_dist_logsumexp", DistOp::kLogSumExp, "dist.logsumexp");
  def_op(m, "_dist_argmax", DistOp::kArgmax, "dist.argmax");
  m.def(
      "_dist_cross_entropy",
      [](int64_t fcomm, py::handle input, py::handle target, int64_t class_offset,
         py::handle weight, int64_t ignore_index, const std::string& reduction,
         double label_smoothing, double z_loss, double normalizer, double grad_scale,
         bool return_grad, bool return_lse, bool return_log_probs, int threads) {
        const LossArgs a{weight, ignore_index, reduction,  label_smoothing,
                         z_loss, normalizer,   grad_scale, threads};
        return dist_cross_entropy(fcomm, input, target, class_offset, a, return_grad, return_lse,
                                  return_log_probs);
      },
      py::arg("fcomm"), py::arg("input"), py::arg("target"), py::arg("class_offset"),
      py::arg("weight"), py::arg("ignore_index"), py::arg("reduction"), py::arg("label_smoothing"),
      py::arg("z_loss"), py::arg("normalizer"), py::arg("grad_scale"), py::arg("return_grad"),
      py::arg("return_lse"), py::arg("return_log_probs"), py::arg("threads"),
      "Internal: see softmax.dist.cross_entropy (takes the communicator's Fortran handle).");
  m.def(
      "_dist_linear_cross_entropy",
      [](int64_t fcomm, py::handle hidden, py::handle weight, py::handle target,
         int64_t class_offset, py::handle class_weight, int64_t ignore_index,
         const std::string& reduction, double label_smoothing, double z_loss, double normalizer,
         double grad_scale, int64_t vocab_chunk, bool return_grad, bool return_lse,
         py::handle grad_output, int threads) {
        const LossArgs a{class_weight, ignore_index, reduction,  label_smoothing,
                         z_loss,       normalizer,   grad_scale, threads};
        return dist_linear_cross_entropy(fcomm, hidden, weight, target, class_offset, a,
                                         vocab_chunk, return_grad, return_lse, grad_output);
      },
      py::arg("fcomm"), py::arg("hidden"), py::arg("weight"), py::arg("target"),
      py::arg("class_offset"), py::arg("class_weight"), py::arg("ignore_index"),
      py::arg("reduction"), py::arg("label_smoothing"), py::arg("z_loss"), py::arg("normalizer"),
      py::arg("grad_scale"), py::arg("vocab_chunk"), py::arg("return_grad"), py::arg("return_lse"),
      py::arg("grad_output"), py::arg("threads"),
      "Internal: see softmax.dist.linear_cross_entropy (takes the communicator's Fortran handle).");
  m.def(
      "_dist_sample",
      [](int64_t fcomm, py::handle x, int64_t class_offset, py::handle num_samples, py::handle t,
         py::handle k, py::handle p, py::handle mp, const std::string& method, py::handle seed,
         py::handle offset, py::handle streams, int threads) {
        const SampleArgs a("dist.sample", t, k, p, mp, method, seed, offset, streams, threads);
        return dist_sample(fcomm, x, class_offset, num_samples, a);
      },
      py::arg("fcomm"), py::arg("logits"), py::arg("class_offset"), py::arg("num_samples"),
      py::arg("temperature"), py::arg("top_k"), py::arg("top_p"), py::arg("min_p"),
      py::arg("method"), py::arg("seed"), py::arg("offset"), py::arg("streams"), py::arg("threads"),
      "Internal: see softmax.dist.sample (takes the communicator's Fortran handle).");
  m.def(
      "_dist_top_logprobs",
      [](int64_t fcomm, py::handle x, int64_t n, int64_t class_offset, double temperature,
         int threads) {
        const char* op = "dist.top_logprobs";
        const Operand xin = input(x, op, "logits");
        softmax::Context ctx;
        ctx.threads = parse_threads(threads, op);
        softmax::TopLogprobs r;
        auto comm = op_comm(fcomm);
        nogil([&] {
          r = softmax::dist::top_logprobs(comm, xin.cview(), n, class_offset, temperature, ctx);
        });
        return top_logprobs_arrays(xin, r, op);
      },
      py::arg("fcomm"), py::arg("logits"), py::arg("n"), py::arg("class_offset"),
      py::arg("temperature"), py::arg("threads"),
      "Internal: see softmax.dist.top_logprobs (takes the communicator's Fortran handle).");
  m.def(
      "_dist_default_shard",
      [](int64_t vocab, int rank, int ranks) {
        const softmax::dist::Shard s = softmax::dist::default_shard(vocab, rank, ranks);
        return py::make_tuple(s.offset, s.size);
      },
      py::arg("vocab"), py::arg("rank"), py::arg("ranks"));
  m.attr("_dist_shard_align") = softmax::dist::kShardAlign;
}

}  // namespace softmax_py
