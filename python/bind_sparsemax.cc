// python/bind_sparsemax.cc: the sparse and stochastic relatives of softmax: sparsemax and its
// backward (softmax/sparsemax.hpp), gumbel_softmax and its backward
// (softmax/gumbel_softmax.hpp).
#include "softmax/sparsemax.hpp"

#include <string>

#include "common.hpp"
#include "sampling_args.hpp"
#include "softmax/gumbel_softmax.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

constexpr const char* kSparsemaxDoc =
    "sparsemax(x, axis=-1, *, temperature=1.0, threads=0)\n\n"
    "Sparsemax (Martins & Astudillo 2016): the Euclidean projection of x / temperature onto\n"
    "the probability simplex, ``max(z - tau, 0)``; exact zeros outside its support.\n\n"
    "Parameters\n----------\n"
    "x : array_like or tensor\n    float16, float32, float64 (bfloat16 via torch), any strides.\n"
    "axis : int, optional\n    Default -1.\n"
    "temperature : float, optional\n    Finite and > 0.\n"
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "ndarray or tensor\n    x's shape, dtype and container kind.\n\n"
    "Raises\n------\n"
    "ValueError\n    Bad axis or temperature.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.sparsemax(np.array([0.25, 0.0, -2.0]))\n"
    "array([0.625, 0.375, 0.   ])\n";

constexpr const char* kSparsemaxBackwardDoc =
    "sparsemax_backward(y, dy, axis=-1, *, temperature=1.0, threads=0)\n\n"
    "The gradient through y = sparsemax(x / temperature): ``s * (dy - mean_S(dy)) / T`` on the\n"
    "support S of y (s its indicator).\n\n"
    "Parameters\n----------\n"
    "y : array_like or tensor\n    A sparsemax output.\n"
    "dy : array_like or tensor\n    y's shape and dtype.\n"
    "axis : int, optional\n"
    "temperature : float, optional\n"
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "ndarray or tensor\n    dx, y's shape and dtype.\n\n"
    "Raises\n------\n"
    "ValueError\n    Mismatched shapes, bad axis.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.sparsemax_backward(np.array([0.6, 0.4, 0.0]), np.array([1.0, 0.0, 5.0]))\n"
    "array([ 0.5, -0.5,  0. ])\n";

constexpr const char* kGumbelDoc =
    "gumbel_softmax(logits, *, tau=1.0, hard=False, axis=-1, seed=0, offset=0, threads=0)\n\n"
    "Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017): softmax((logits + g) / tau) with\n"
    "g standard Gumbel noise from Philox (seed, offset; stream = row, draw = position), so the\n"
    "same seed gives the same sample. hard=True returns one_hot(argmax(logits + g)) (exact 0 / 1)\n"
    "whose gradient (gumbel_softmax_backward) is that of the soft sample (straight-through).\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor\n    float16, float32, float64 (bfloat16 via torch).\n"
    "tau : float, optional\n    Temperature, finite and > 0.\n"
    "hard : bool, optional\n"
    "axis : int, optional\n"
    "seed, offset : int, optional\n"
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "ndarray or tensor\n    logits' shape, dtype and container kind.\n\n"
    "Raises\n------\n"
    "ValueError\n    Bad tau or axis.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> y = softmax.gumbel_softmax(np.zeros((2, 5)), hard=True, seed=1)\n"
    ">>> y.sum(-1)\n"
    "array([1., 1.])\n";

constexpr const char* kGumbelBackwardDoc =
    "gumbel_softmax_backward(logits, dy, *, tau=1.0, hard=False, axis=-1, seed=0, offset=0, "
    "threads=0)\n\n"
    "The gradient of sum(dy * y) with respect to the logits for y = gumbel_softmax(logits, ...)\n"
    "with the same seed and offset (the noise is regenerated): the softmax Jacobian of the soft\n"
    "sample, also for hard=True (straight-through).\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor\n"
    "dy : array_like or tensor\n    logits' shape and dtype.\n"
    "tau, hard, axis, seed, offset, threads : as gumbel_softmax\n\n"
    "Returns\n-------\n"
    "ndarray or tensor\n    dx, the logits' shape and dtype.\n\n"
    "Raises\n------\n"
    "ValueError\n    Mismatched shapes, bad tau or axis.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> dx = softmax.gumbel_softmax_backward(np.zeros((1, 3)), np.ones((1, 3)))\n"
    ">>> np.abs(dx).max() < 1e-15\n"
    "True\n";

softmax::GumbelSoftmaxOptions gumbel_options(double tau, bool hard, int64_t axis, int threads,
                                             const char* op) {
  softmax::GumbelSoftmaxOptions o;
  o.tau = tau;
  o.hard = hard;
  o.axis = axis;
  o.threads = parse_threads(threads, op);
  return o;
}

}  // namespace

void register_sparsemax(py::module_& m) {
  m.def(
      "sparsemax",
      [](py::handle x, int64_t axis, double temperature, int threads) {
        const char* op = "sparsemax";
        const Operand xin = input(x, op, "x");
        softmax::SoftmaxOptions o;
        o.axis = axis;
        o.temperature = temperature;
        o.threads = parse_threads(threads, op);
        Operand y = new_output(xin.kind, xin.view.shape, xin.view.dtype, op);
        nogil([&] { softmax::sparsemax(xin.cview(), y.view, o); });
        return y.owner;
      },
      py::arg("x"), py::arg("axis") = -1, py::kw_only(), py::arg("temperature") = 1.0,
      py::arg("threads") = 0, kSparsemaxDoc);
  m.def(
      "sparsemax_backward",
      [](py::handle y, py::handle dy, int64_t axis, double temperature, int threads) {
        const char* op = "sparsemax_backward";
        const Operand yin = input(y, op, "y");
        const Operand dyin = input(dy, op, "dy");
        softmax::SoftmaxOptions o;
        o.axis = axis;
        o.temperature = temperature;
        o.threads = parse_threads(threads, op);
        Operand dx = new_output(yin.kind, yin.view.shape, yin.view.dtype, op);
        nogil([&] { softmax::sparsemax_backward(yin.cview(), dyin.cview(), dx.view, o); });
        return dx.owner;
      },
      py::arg("y"), py::arg("dy"), py::arg("axis") = -1, py::kw_only(),
      py::arg("temperature") = 1.0, py::arg("threads") = 0, kSparsemaxBackwardDoc);
  m.def(
      "gumbel_softmax",
      [](py::handle x, double tau, bool hard, int64_t axis, py::handle seed_arg,
         py::handle offset_arg, int threads) {
        const char* op = "gumbel_softmax";
        const uint64_t seed = u64_scalar(seed_arg, op, "seed");
        const uint64_t offset = u64_scalar(offset_arg, op, "offset");
        const Operand xin = input(x, op, "logits");
        const auto o = gumbel_options(tau, hard, axis, threads, op);
        Operand y = new_output(xin.kind, xin.view.shape, xin.view.dtype, op);
        nogil([&] { softmax::gumbel_softmax(xin.cview(), y.view, o, seed, offset); });
        return y.owner;
      },
      py::arg("logits"), py::kw_only(), py::arg("tau") = 1.0, py::arg("hard") = false,
      py::arg("axis") = -1, py::arg("seed") = 0, py::arg("offset") = 0, py::arg("threads") = 0,
      kGumbelDoc);
  m.def(
      "gumbel_softmax_backward",
      [](py::handle x, py::handle dy, double tau, bool hard, int64_t axis, py::handle seed_arg,
         py::handle offset_arg, int threads) {
        const char* op = "gumbel_softmax_backward";
        const uint64_t seed = u64_scalar(seed_arg, op, "seed");
        const uint64_t offset = u64_scalar(offset_arg, op, "offset");
        const Operand xin = input(x, op, "logits");
        const Operand dyin = input(dy, op, "dy");
        const auto o = gumbel_options(tau, hard, axis, threads, op);
        Operand dx = new_output(xin.kind, xin.view.shape, xin.view.dtype, op);
        nogil([&] {
          softmax::gumbel_softmax_backward(xin.cview(), dyin.cview(), dx.view, o, seed, offset);
        });
        return dx.owner;
      },
      py::arg("logits"), py::arg("dy"), py::kw_only(), py::arg("tau") = 1.0,
      py::arg("hard") = false, py::arg("axis") = -1, py::arg("seed") = 0, py::arg("offset") = 0,
      py::arg("threads") = 0, kGumbelBackwardDoc);
}

}  // namespace softmax_py
