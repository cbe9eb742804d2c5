// python/bind_cross_entropy.cc: cross_entropy, nll_loss, linear_cross_entropy
// (softmax/cross_entropy.hpp), with PyTorch's argument names.
#include "softmax/cross_entropy.hpp"

#include <string>

#include "common.hpp"
#include "loss_args.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

py::object ce_op(bool nll, py::handle input_obj, py::handle target_obj, const LossArgs& a,
                 bool return_grad, bool return_lse, bool return_log_probs) {
  return loss_call(
      nll ? "nll_loss" : "cross_entropy", input_obj, target_obj, a, return_grad, return_lse,
      return_log_probs,
      [nll](const softmax::ConstTensorView& x, const softmax::ConstTensorView& t,
            const softmax::CrossEntropyOutputs& out, const softmax::CrossEntropyOptions& o) {
        if (nll)
          softmax::nll_loss(x, t, out, o);
        else
          softmax::cross_entropy(x, t, out, o);
      });
}

constexpr const char* kCrossEntropyDoc =
    R"doc(cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction='mean', label_smoothing=0.0, z_loss=0.0, normalizer=1.0, grad_scale=1.0, return_grad=False, return_lse=False, return_log_probs=False, threads=0)

Fused log-softmax + negative log-likelihood, as ``torch.nn.functional.cross_entropy``.

Optionally returns the gradient with respect to `input` from the same pass, the rows'
logsumexp and the log-probabilities. Per row (class axis 1) with target ``t``:
``loss = (1 - eps) * w_t * (-lp_t) + eps / C * sum_c w_c * (-lp_c) + z_loss * lse**2``.

Parameters
----------
input : array_like or tensor, shape (N, C), (N, C, d1, ..., dk) or (C,)
    Logits: float16, float32, float64 (bfloat16 via torch), any strides.
target : array_like or tensor, shape (N,), (N, d1, ..., dk) or ()
    Class ids (int32 or int64), or soft targets: class probabilities of `input`'s shape
    (floating).
weight : array_like or tensor, shape (C,), optional
    Class weights (no NaN/inf).
ignore_index : int, optional
    Hard targets equal to it are skipped (loss and gradient 0, excluded from the mean).
reduction : {'mean', 'sum', 'none'}, optional
    'mean' divides by the sum of the weights of kept targets (NaN if none is kept).
label_smoothing : float, optional
    In [0, 1]; applies only to kept rows.
z_loss : float, optional
    PaLM's z-loss coefficient (>= 0): adds ``z_loss * lse**2`` per kept row.
normalizer : float, optional
    With reduction='sum', the sum is divided by it (finite, > 0).
grad_scale : float, optional
    Upstream gradient the returned gradient is multiplied by.
return_grad, return_lse, return_log_probs : bool, optional
    Also return d loss / d input (input's shape and dtype), logsumexp per row (rows' shape;
    float32, float64 for float64 input) and log_softmax(input) (input's shape and dtype).
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
loss : ndarray or tensor, shape () or rows' shape (reduction='none'), dtype of `input`
    Alone when no ``return_*`` flag is set; otherwise the tuple
    ``(loss, grad, lse, log_probs)`` holding only the requested items, in that order.

Raises
------
ValueError
    A target out of [0, C) that is not `ignore_index`, bad shapes, smoothing, z_loss or
    normalizer.
TypeError
    Unsupported dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> x = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
>>> round(float(softmax.cross_entropy(x, np.array([1, 0]))), 6)  # (ln(4/3) + ln 2) / 2
0.490415
)doc";

constexpr const char* kNllLossDoc =
    R"doc(nll_loss(input, target, weight=None, *, ignore_index=-100, reduction='mean', label_smoothing=0.0, normalizer=1.0, grad_scale=1.0, return_grad=False, threads=0)

Negative log-likelihood on log-probabilities, as ``torch.nn.functional.nll_loss``.

Parameters
----------
input : array_like or tensor, shape (N, C), (N, C, d1, ..., dk) or (C,)
    Log-probabilities: float16, float32, float64 (bfloat16 via torch).
target : array_like or tensor, shape (N,), (N, d1, ..., dk) or ()
    Class ids (int32/int64), or soft targets of `input`'s shape.
weight : array_like or tensor, shape (C,), optional
    Class weights.
ignore_index : int, optional
    Targets equal to it are skipped.
reduction : {'mean', 'sum', 'none'}, optional
    As in PyTorch ('mean' is weighted).
label_smoothing : float, optional
    In [0, 1].
normalizer : float, optional
    With reduction='sum', the sum is divided by it.
grad_scale : float, optional
    Upstream gradient.
return_grad : bool, optional
    Also return d loss / d input (input's shape and dtype).
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
loss : ndarray or tensor, shape () or rows' shape, dtype of `input`
    Or ``(loss, grad)`` with `return_grad`.

Raises
------
ValueError
    Targets out of range, bad shapes or options.
TypeError
    Unsupported dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> lp = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
>>> softmax.nll_loss(lp, np.array([1, 0]), reduction='none')
array([0.28768207, 0.69314718])
)doc";

constexpr const char* kLinearCeDoc =
    R"doc(linear_cross_entropy(hidden, weight, target, *, class_weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0, z_loss=0.0, normalizer=1.0, grad_scale=1.0, vocab_chunk=0, return_grad=False, return_lse=False, grad_output=None, threads=0)

``cross_entropy(hidden @ weight.T, target)`` without ever holding the (N, V) logits.

Computed in vocabulary chunks with an online logsumexp (Cut Cross-Entropy); with
`return_grad` also the gradients with respect to `hidden` and `weight`.

Parameters
----------
hidden : array_like or tensor, shape (N, D), float32
    Unit stride along D.
weight : array_like or tensor, shape (V, D), float32
    The classifier (unit stride along D).
target : array_like or tensor, shape (N,), int32 or int64
    Class ids.
class_weight : array_like or tensor, shape (V,), optional
    Per-class weights (PyTorch's `weight` of cross_entropy).
ignore_index, reduction, label_smoothing, z_loss, normalizer, grad_scale : optional
    As in :func:`cross_entropy`.
vocab_chunk : int, optional
    Vocabulary columns per chunk; 0 chooses about 8 MiB of logits per chunk.
return_grad, return_lse : bool, optional
    Also return ``grad_hidden`` (N, D) and ``grad_weight`` (V, D) (float32), and the rows'
    logsumexp (N,) float32.
grad_output : array_like or tensor, shape (N,), optional
    reduction='none' only: per-row incoming gradients the gradients are weighted by.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
loss : ndarray or tensor, shape () or (N,), float32
    Alone, or ``(loss, grad_hidden, grad_weight, lse)`` holding only the requested items.

Raises
------
ValueError
    Targets out of range, bad shapes or options.
TypeError
    Non-float32 hidden/weight or non-integer targets.

Examples
--------
>>> import numpy as np, softmax
>>> h = np.eye(2, dtype=np.float32); w = np.zeros((3, 2), np.float32)
>>> round(float(softmax.linear_cross_entropy(h, w, np.array([0, 2]))), 6)  # ln 3
1.098612
)doc";

}  // namespace

void register_cross_entropy(py::module_& m) {
  m.def(
      "cross_entropy",
      [](py::handle input_obj, py::handle target, py::handle weight, int64_t ignore_index,
         const std::string& reduction, double label_smoothing, double z_loss, double normalizer,
         double grad_scale, bool return_grad, bool return_lse, bool return_log_probs, int threads) {
        LossArgs a{weight, ignore_index, reduction,  label_smoothing,
                   z_loss, normalizer,   grad_scale, threads};
        return ce_op(false, input_obj, target, a, return_grad, return_lse, return_log_probs);
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::kw_only(),
      py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
      py::arg("label_smoothing") = 0.0, py::arg("z_loss") = 0.0, py::arg("normalizer") = 1.0,
      py::arg("grad_scale") = 1.0, py::arg("return_grad") = false, py::arg("return_lse") = false,
      py::arg("return_log_probs") = false, py::arg("threads") = 0, kCrossEntropyDoc);
  m.def(
      "nll_loss",
      [](py::handle input_obj, py::handle target, py::handle weight, int64_t ignore_index,
         const std::string& reduction, double label_smoothing, double normalizer, double grad_scale,
         bool return_grad, int threads) {
        LossArgs a{weight, ignore_index, reduction,  label_smoothing,
                   0.0,    normalizer,   grad_scale, threads};
        return ce_op(true, input_obj, target, a, return_grad, false, false);
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::kw_only(),
      py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
      py::arg("label_smoothing") = 0.0, py::arg("normalizer") = 1.0, py::arg("grad_scale") = 1.0,
      py::arg("return_grad") = false, py::arg("threads") = 0, kNllLossDoc);
  m.def(
      "linear_cross_entropy",
      [](py::handle hidden_obj, py::handle weight_obj, py::handle target, py::handle class_weight,
         int64_t ignore_index, const std::string& reduction, double label_smoothing, double z_loss,
         double normalizer, double grad_scale, int64_t vocab_chunk, bool return_grad,
         bool return_lse, py::handle grad_output, int threads) {
        const LossArgs a{class_weight, ignore_index, reduction,  label_smoothing,
                         z_loss,       normalizer,   grad_scale, threads};
        return linear_loss_call(
            "linear_cross_entropy", hidden_obj, weight_obj, target, a, vocab_chunk, return_grad,
            return_lse, grad_output,
            [](const softmax::ConstTensorView& h, const softmax::ConstTensorView& w,
               const softmax::ConstTensorView& t, const softmax::LinearCrossEntropyOutputs& out,
               const softmax::CrossEntropyOptions& o) {
              softmax::linear_cross_entropy(h, w, t, out, o);
            });
      },
      py::arg("hidden"), py::arg("weight"), py::arg("target"), py::kw_only(),
      py::arg("class_weight") = py::none(), py::arg("ignore_index") = -100,
      py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0, py::arg("z_loss") = 0.0,
      py::arg("normalizer") = 1.0, py::arg("grad_scale") = 1.0, py::arg("vocab_chunk") = 0,
      py::arg("return_grad") = false, py::arg("return_lse") = false,
      py::arg("grad_output") = py::none(), py::arg("threads") = 0, kLinearCeDoc);
}

}  // namespace softmax_py
