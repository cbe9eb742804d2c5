// python/bind_backward.cc: softmax_backward, log_softmax_backward (softmax/backward.hpp).
#include "softmax/backward.hpp"

#include "common.hpp"

namespace softmax_py {
namespace {

using BackwardFn = void (*)(softmax::ConstTensorView, softmax::ConstTensorView, softmax::TensorView,
                            const softmax::SoftmaxOptions&);

py::object backward_op(const char* op, BackwardFn fn, py::handle y, py::handle dy, py::handle axis,
                       py::handle dim, double temperature, py::handle dtype, py::handle out,
                       int threads) {
  softmax::SoftmaxOptions o;
  o.axis = parse_axis(axis, dim, op);
  o.temperature = temperature;
  o.threads = parse_threads(threads, op);
  const Operand yin = input(y, op, "y");
  const Operand dyin = input(dy, op, "dy");
  Operand dx = make_output(yin, out, dtype, yin.view.shape, yin.view.dtype, op);
  nogil([&] { fn(yin.cview(), dyin.cview(), dx.view, o); });
  return dx.owner;
}

void lib_softmax_backward(softmax::ConstTensorView y, softmax::ConstTensorView dy,
                          softmax::TensorView dx, const softmax::SoftmaxOptions& o) {
  softmax::softmax_backward(std::move(y), std::move(dy), std::move(dx), o);
}
void lib_log_softmax_backward(softmax::ConstTensorView y, softmax::ConstTensorView dy,
                              softmax::TensorView dx, const softmax::SoftmaxOptions& o) {
  softmax::log_softmax_backward(std::move(y), std::move(dy), std::move(dx), o);
}

constexpr const char* kSoftmaxBackwardDoc =
    R"doc(softmax_backward(y, dy, axis=-1, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0)

Gradient of ``y = softmax(x / temperature)`` with respect to ``x``.

``dx = y * (dy - sum(dy * y, axis)) / T`` (the Jacobian-vector product of softmax).

Parameters
----------
y : array_like or tensor, shape (..., n, ...)
    The forward output ``softmax(x / T)``; float16, float32, float64 (bfloat16 via torch).
dy : array_like or tensor, shape of `y`
    Gradient of the loss with respect to `y`; the dtype of `y`.
axis : int, optional
    The axis the forward softmax ran along (default -1); `dim` is an alias.
dim : int, optional
    Alias of `axis`.
temperature : float, optional
    The forward temperature (finite, > 0); dx is scaled by 1/T.
dtype : dtype, optional
    Output dtype; default the dtype of `y` (float64 pairs only with float64).
out : ndarray or tensor, optional
    Output of the shape of `y`; may be exactly `y` or `dy` (in place).
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
dx : ndarray or tensor, shape of `y`
    Same container kind as `y` (or `out`).

Raises
------
ValueError
    Bad axis, temperature, shapes or overlap.
TypeError
    Unsupported or mismatched dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> y = softmax.softmax(np.array([0.0, 0.0]))
>>> softmax.softmax_backward(y, np.array([1.0, 0.0]))
array([ 0.25, -0.25])
)doc";

constexpr const char* kLogSoftmaxBackwardDoc =
    R"doc(log_softmax_backward(y, dy, axis=-1, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0)

Gradient of ``y = log_softmax(x / temperature)`` with respect to ``x``.

``dx = (dy - exp(y) * sum(dy, axis)) / T``.

Parameters
----------
y : array_like or tensor, shape (..., n, ...)
    The forward output ``log_softmax(x / T)`` (values <= 0); float16, float32, float64
    (bfloat16 via torch).
dy : array_like or tensor, shape of `y`
    Gradient of the loss with respect to `y`; the dtype of `y`.
axis : int, optional
    The axis of the forward op (default -1); `dim` is an alias.
dim : int, optional
    Alias of `axis`.
temperature : float, optional
    The forward temperature (finite, > 0).
dtype : dtype, optional
    Output dtype; default the dtype of `y`.
out : ndarray or tensor, optional
    Output of the shape of `y`; may be exactly `y` or `dy`.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
dx : ndarray or tensor, shape of `y`
    Same container kind as `y` (or `out`).

Raises
------
ValueError
    Bad axis, temperature, shapes or overlap.
TypeError
    Unsupported or mismatched dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> y = softmax.log_softmax(np.array([0.0, 0.0]))
>>> softmax.log_softmax_backward(y, np.array([1.0, 0.0]))
array([ 0.5, -0.5])
)doc";

}  // namespace

void register_backward(py::module_& m) {
  m.def(
      "softmax_backward",
      [](py::handle y, py::handle dy, py::handle axis, py::handle dim, double temperature,
         py::handle dtype, py::handle out, int threads) {
        return backward_op("softmax_backward", lib_softmax_backward, y, dy, axis, dim, temperature,
                           dtype, out, threads);
      },
      py::arg("y"), py::arg("dy"), py::arg("axis") = py::none(), py::kw_only(),
      py::arg("dim") = py::none(), py::arg("temperature") = 1.0, py::arg("dtype") = py::none(),
      py::arg("out") = py::none(), py::arg("threads") = 0, kSoftmaxBackwardDoc);
  m.def(
      "log_softmax_backward",
      [](py::handle y, py::handle dy, py::handle axis, py::handle dim, double temperature,
         py::handle dtype, py::handle out, int threads) {
        return backward_op("log_softmax_backward", lib_log_softmax_backward, y, dy, axis, dim,
                           temperature, dtype, out, threads);
      },
      py::arg("y"), py::arg("dy"), py::arg("axis") = py::none(), py::kw_only(),
      py::arg("dim") = py::none(), py::arg("temperature") = 1.0, py::arg("dtype") = py::none(),
      py::arg("out") = py::none(), py::arg("threads") = 0, kLogSoftmaxBackwardDoc);
}

}  // namespace softmax_py
