// python/bind_attention.cc: masked_softmax, masked_softmax_backward, attention,
// attention_backward (softmax/attention.hpp).
#include "softmax/attention.hpp"

#include <string>

#include "common.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

// The keyword arguments of softmax::MaskOptions and the operands they point into.
struct MaskArgs {
  py::handle scale;
  double softcap = 0.0;
  bool causal = false;
  std::string align;
  int64_t window_left = -1, window_right = -1;
  py::handle alibi_slopes, bias, mask;
  int threads = 0;

  std::optional<Operand> bias_op, mask_op;

  softmax::MaskOptions options(const char* op) {
    softmax::MaskOptions o;
    if (!scale.is_none()) o.scale = py::cast<double>(scale);
    o.softcap = softcap;
    o.causal = causal;
    if (align == "top_left") {
      o.align = softmax::Align::kTopLeft;
    } else if (align == "bottom_right") {
      o.align = softmax::Align::kBottomRight;
    } else {
      throw py::value_error(std::string("softmax.") + op + ": align = '" + align +
                            "': must be 'top_left' (PyTorch) or 'bottom_right' (FlashAttention)");
    }
    o.window_left = window_left;
    o.window_right = window_right;
    if (!alibi_slopes.is_none()) {
      py::array_t<float, py::array::c_style | py::array::forcecast> s =
          py::module_::import("numpy").attr("ravel")(alibi_slopes).attr("astype")("float32");
      o.alibi_slopes.assign(s.data(), s.data() + s.size());
    }
    bias_op = optional_input(bias, op, "bias");
    if (bias_op) o.bias = bias_op->cview();
    if (!mask.is_none()) {
      mask_op = mask_input(mask, op, "mask");
      o.mask = mask_op->cview();
    }
    o.threads = parse_threads(threads, op);
    return o;
  }
};

DType stat_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

py::object pair_or_single(Operand& a, std::optional<Operand>& b) {
  if (!b) return a.owner;
  return py::make_tuple(a.owner, b->owner);
}

#define SOFTMAX_PY_MASK_ARGS_DOC                                                              \
  "scale : float, optional\n"                                                                 \
  "    Multiplies the scores first (masked_softmax: default 1; attention: 1 / sqrt(D)).\n"    \
  "softcap : float, optional\n"                                                               \
  "    Logit soft-capping ``softcap * tanh(x / softcap)`` (Gemma 2); 0 = off.\n"              \
  "causal : bool, optional\n"                                                                 \
  "    Key j is visible to query i iff ``j <= p(i)``.\n"                                      \
  "align : {'top_left', 'bottom_right'}, optional\n"                                          \
  "    The diagonal ``p(i)`` when Sq != Sk: ``i`` (PyTorch's is_causal) or ``i + Sk - Sq``\n" \
  "    (FlashAttention >= 2.1, KV-cache decoding).\n"                                         \
  "window_left, window_right : int, optional\n"                                               \
  "    Sliding window around ``p(i)``; -1 = unbounded.\n"                                     \
  "alibi_slopes : sequence of float, shape (H,), optional\n"                                  \
  "    Per-head ALiBi slopes (head axis: -3 of the scores).\n"                                \
  "bias : array_like or tensor, optional\n"                                                   \
  "    Additive bias, broadcastable to the scores (..., Sq, Sk); any floating dtype.\n"       \
  "mask : array_like or tensor, optional\n"                                                   \
  "    Keep-mask broadcastable to the scores: bool, int32 or int64, nonzero = keep\n"         \
  "    (as PyTorch's boolean attn_mask).\n"

constexpr const char* kMaskedSoftmaxDoc =
    "masked_softmax(scores, *, scale=None, softcap=0.0, causal=False, align='top_left', "
    "window_left=-1, window_right=-1, alibi_slopes=None, bias=None, mask=None, "
    "return_lse=False, dtype=None, out=None, threads=0)\n\n"
    "Softmax over the last axis of attention scores, with masks applied by selection.\n\n"
    "Transform (in order): ``x = scale * s``, soft-capping, ALiBi, ``+ bias``; then entries\n"
    "outside the causal / window / mask pattern are masked. Masked entries give exactly 0;\n"
    "a fully masked row gives 0 (logsumexp -inf), never NaN.\n\n"
    "Parameters\n----------\n"
    "scores : array_like or tensor, shape (..., Sq, Sk)\n"
    "    float16, float32, float64 (bfloat16 via torch); rank >= 2.\n" SOFTMAX_PY_MASK_ARGS_DOC
    "return_lse : bool, optional\n"
    "    Also return the logsumexp of every row, shape (..., Sq), float32 (float64 for float64).\n"
    "dtype : dtype, optional\n"
    "    Output dtype; default the dtype of `scores`.\n"
    "out : ndarray or tensor, optional\n"
    "    Output of the shape of `scores`; may be `scores` itself.\n"
    "threads : int, optional\n"
    "    Worker threads, 0 = OpenMP default.\n\n"
    "Returns\n-------\n"
    "y : ndarray or tensor, shape of `scores`\n"
    "    Same container kind as `scores`; ``(y, lse)`` with `return_lse`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Rank < 2, shapes, non-broadcastable bias/mask, bad options.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.masked_softmax(np.zeros((2, 2)), causal=True)\n"
    "array([[1. , 0. ],\n       [0.5, 0.5]])\n";

constexpr const char* kMaskedSoftmaxBackwardDoc =
    "masked_softmax_backward(dy, y, scores=None, *, scale=None, softcap=0.0, causal=False, "
    "align='top_left', window_left=-1, window_right=-1, alibi_slopes=None, bias=None, "
    "mask=None, dtype=None, out=None, threads=0)\n\n"
    "Gradient of :func:`masked_softmax` with respect to the scores.\n\n"
    "``dx = y * (dy - sum(y * dy))``, times `scale` (and the tanh factor with `softcap`);\n"
    "masked entries and fully masked rows get exactly 0. Pass the forward's options.\n\n"
    "Parameters\n----------\n"
    "dy : array_like or tensor, shape (..., Sq, Sk)\n"
    "    Gradient with respect to y; float16, float32, float64 (bfloat16 via torch).\n"
    "y : array_like or tensor, shape of `dy`\n    The forward output, the dtype of `dy`.\n"
    "scores : array_like or tensor, shape of `dy`, optional\n"
    "    The forward input; needed only when softcap > 0.\n" SOFTMAX_PY_MASK_ARGS_DOC
    "dtype : dtype, optional\n    Output dtype; default the dtype of `y`.\n"
    "out : ndarray or tensor, optional\n    Output of the shape of `y`.\n"
    "threads : int, optional\n    Worker threads, 0 = OpenMP default.\n\n"
    "Returns\n-------\n"
    "dscores : ndarray or tensor, shape of `y`\n    Same container kind as `y`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Shapes, options, softcap > 0 without `scores`.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> y = softmax.masked_softmax(np.zeros((1, 2)))\n"
    ">>> softmax.masked_softmax_backward(np.array([[1.0, 0.0]]), y)\n"
    "array([[ 0.25, -0.25]])\n";

constexpr const char* kAttentionDoc =
    "attention(q, k, v, *, scale=None, softcap=0.0, causal=False, align='top_left', "
    "window_left=-1, window_right=-1, alibi_slopes=None, bias=None, mask=None, "
    "return_lse=False, dtype=None, out=None, threads=0)\n\n"
    "Scaled-dot-product attention ``softmax(transform(q k^T)) v``, FlashAttention-2 style.\n\n"
    "Never materialises the (Sq, Sk) scores; grouped-query attention when Hq is a multiple of\n"
    "Hkv. Fully masked rows (including Sk = 0) give 0 and logsumexp -inf.\n\n"
    "Parameters\n----------\n"
    "q : array_like or tensor, shape (B, Hq, Sq, D)\n"
    "    float32, float16 (bfloat16 via torch); any strides.\n"
    "k : array_like or tensor, shape (B, Hkv, Sk, D)\n    Keys, the dtype of `q`.\n"
    "v : array_like or tensor, shape (B, Hkv, Sk, Dv)\n    Values, the dtype of "
    "`q`.\n" SOFTMAX_PY_MASK_ARGS_DOC
    "return_lse : bool, optional\n"
    "    Also return the logsumexp of every score row, shape (B, Hq, Sq), float32.\n"
    "dtype : dtype, optional\n"
    "    Output dtype: float32, float16 or bfloat16; default the dtype of `q`.\n"
    "out : ndarray or tensor, optional\n    Output of shape (B, Hq, Sq, Dv).\n"
    "threads : int, optional\n    Worker threads, 0 = OpenMP default.\n\n"
    "Returns\n-------\n"
    "out : ndarray or tensor, shape (B, Hq, Sq, Dv)\n"
    "    Same container kind as `q`; ``(out, lse)`` with `return_lse`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Rank != 4, mismatched dims, bad options, overlaps.\n"
    "TypeError\n    Unsupported dtypes (float64 is not supported).\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> q = np.zeros((1, 1, 1, 2), np.float32); v = np.array([[[[1.0], [3.0]]]], np.float32)\n"
    ">>> softmax.attention(q, np.zeros((1, 1, 2, 2), np.float32), v)\n"
    "array([[[[2.]]]], dtype=float32)\n";

constexpr const char* kAttentionBackwardDoc =
    "attention_backward(q, k, v, out, lse, dout, *, scale=None, softcap=0.0, causal=False, "
    "align='top_left', window_left=-1, window_right=-1, alibi_slopes=None, bias=None, "
    "mask=None, dtype=None, threads=0)\n\n"
    "Gradients ``(dq, dk, dv)`` of :func:`attention` (FlashAttention-2's backward).\n\n"
    "Recomputes each score tile from the saved logsumexp (never the (Sq, Sk) scores):\n"
    "``dS = P o (dP - rowsum(dout o out))``, ``dq = scale dS k``, ``dk = scale dS^T q``,\n"
    "``dv = P^T dout``; GQA sums dk, dv over the query heads of a kv head. Pass the forward's\n"
    "options; bias and alibi_slopes get no gradient.\n\n"
    "Parameters\n----------\n"
    "q, k, v : array_like or tensor, shapes (B, Hq, Sq, D), (B, Hkv, Sk, D), (B, Hkv, Sk, Dv)\n"
    "    The forward's inputs: float32, float16 (bfloat16 via torch).\n"
    "out : array_like or tensor, shape (B, Hq, Sq, Dv)\n    The forward's output, q's dtype.\n"
    "lse : array_like or tensor, shape (B, Hq, Sq), float32\n"
    "    The forward's logsumexp (``attention(..., return_lse=True)``).\n"
    "dout : array_like or tensor, shape of `out`\n    d loss / d out, q's "
    "dtype.\n" SOFTMAX_PY_MASK_ARGS_DOC
    "dtype : dtype, optional\n"
    "    Gradient dtype: float32, float16 or bfloat16; default the dtype of `q`.\n"
    "threads : int, optional\n    Worker threads, 0 = OpenMP default.\n\n"
    "Returns\n-------\n"
    "dq, dk, dv : ndarray or tensor, the shapes of q, k, v\n    Same container kind as `q`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Shapes, options, overlaps.\n"
    "TypeError\n    Unsupported dtypes (float64 is not supported).\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> q = np.zeros((1, 1, 1, 2), np.float32); k = np.zeros((1, 1, 2, 2), np.float32)\n"
    ">>> v = np.array([[[[1.0], [3.0]]]], np.float32)\n"
    ">>> out, lse = softmax.attention(q, k, v, return_lse=True)\n"
    ">>> dq, dk, dv = softmax.attention_backward(q, k, v, out, lse, np.ones_like(out))\n"
    ">>> dv\n"
    "array([[[[0.5],\n         [0.5]]]], dtype=float32)\n";

// Adds the mask keyword arguments; `f` receives them in this order after its own arguments.
#define SOFTMAX_PY_MASK_ARGS                                                                \
  py::arg("scale") = py::none(), py::arg("softcap") = 0.0, py::arg("causal") = false,       \
  py::arg("align") = "top_left", py::arg("window_left") = -1, py::arg("window_right") = -1, \
  py::arg("alibi_slopes") = py::none(), py::arg("bias") = py::none(), py::arg("mask") = py::none()

}  // namespace

void register_attention(py::module_& m) {
  m.def(
      "masked_softmax",
      [](py::handle scores, py::handle scale, double softcap, bool causal, std::string align,
         int64_t wl, int64_t wr, py::handle alibi, py::handle bias, py::handle mask,
         bool return_lse, py::handle dtype, py::handle out, int threads) {
        const char* op = "masked_softmax";
        MaskArgs a{scale, softcap, causal, std::move(align), wl, wr,
                   alibi, bias,    mask,   threads,          {}, {}};
        const softmax::MaskOptions o = a.options(op);
        const Operand s = input(scores, op, "scores");
        Operand y = make_output(s, out, dtype, s.view.shape, s.view.dtype, op);
        std::optional<Operand> lse;
        if (return_lse) {
          std::vector<int64_t> ls = s.view.shape;
          if (!ls.empty()) ls.pop_back();
          lse = new_output(s.kind, ls, stat_dtype(s.view.dtype), op);
        }
        nogil([&] {
          if (lse)
            softmax::masked_softmax(s.cview(), y.view, lse->view, o);
          else
            softmax::masked_softmax(s.cview(), y.view, o);
        });
        return pair_or_single(y, lse);
      },
      py::arg("scores"), py::kw_only(), SOFTMAX_PY_MASK_ARGS, py::arg("return_lse") = false,
      py::arg("dtype") = py::none(), py::arg("out") = py::none(), py::arg("threads") = 0,
      kMaskedSoftmaxDoc);
  m.def(
      "masked_softmax_backward",
      [](py::handle dy, py::handle y, py::handle scores, py::handle scale, double softcap,
         bool causal, std::string align, int64_t wl, int64_t wr, py::handle alibi, py::handle bias,
         py::handle mask, py::handle dtype, py::handle out, int threads) {
        const char* op = "masked_softmax_backward";
        MaskArgs a{scale, softcap, causal, std::move(align), wl, wr,
                   alibi, bias,    mask,   threads,          {}, {}};
        const softmax::MaskOptions o = a.options(op);
        const Operand dyin = input(dy, op, "dy");
        const Operand yin = input(y, op, "y");
        const std::optional<Operand> s = optional_input(scores, op, "scores");
        Operand dx = make_output(yin, out, dtype, yin.view.shape, yin.view.dtype, op);
        nogil([&] {
          softmax::masked_softmax_backward(dyin.cview(), yin.cview(),
                                           s ? s->cview() : softmax::ConstTensorView(), dx.view, o);
        });
        return dx.owner;
      },
      py::arg("dy"), py::arg("y"), py::arg("scores") = py::none(), py::kw_only(),
      SOFTMAX_PY_MASK_ARGS, py::arg("dtype") = py::none(), py::arg("out") = py::none(),
      py::arg("threads") = 0, kMaskedSoftmaxBackwardDoc);
  m.def(
      "attention",
      [](py::handle q, py::handle k, py::handle v, py::handle scale, double softcap, bool causal,
         std::string align, int64_t wl, int64_t wr, py::handle alibi, py::handle bias,
         py::handle mask, bool return_lse, py::handle dtype, py::handle out, int threads) {
        const char* op = "attention";
        MaskArgs a{scale, softcap, causal, std::move(align), wl, wr,
                   alibi, bias,    mask,   threads,          {}, {}};
        const softmax::MaskOptions o = a.options(op);
        const Operand qi = input(q, op, "q");
        const Operand ki = input(k, op, "k");
        const Operand vi = input(v, op, "v");
        std::vector<int64_t> os = qi.view.shape;
        if (os.size() == 4 && vi.view.shape.size() == 4) os[3] = vi.view.shape[3];
        Operand y = make_output(qi, out, dtype, os, qi.view.dtype, op);
        std::optional<Operand> lse;
        if (return_lse) {
          std::vector<int64_t> ls = qi.view.shape;
          if (!ls.empty()) ls.pop_back();
          lse = new_output(qi.kind, ls, DType::f32, op);
        }
        nogil([&] {
          if (lse)
            softmax::attention(qi.cview(), ki.cview(), vi.cview(), y.view, lse->view, o);
          else
            softmax::attention(qi.cview(), ki.cview(), vi.cview(), y.view, o);
        });
        return pair_or_single(y, lse);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::kw_only(), SOFTMAX_PY_MASK_ARGS,
      py::arg("return_lse") = false, py::arg("dtype") = py::none(), py::arg("out") = py::none(),
      py::arg("threads") = 0, kAttentionDoc);
  m.def(
      "attention_backward",
      [](py::handle q, py::handle k, py::handle v, py::handle out, py::handle lse, py::handle dout,
         py::handle scale, double softcap, bool causal, std::string align, int64_t wl, int64_t wr,
         py::handle alibi, py::handle bias, py::handle mask, py::handle dtype, int threads) {
        const char* op = "attention_backward";
        MaskArgs a{scale, softcap, causal, std::move(align), wl, wr,
                   alibi, bias,    mask,   threads,          {}, {}};
        const softmax::MaskOptions o = a.options(op);
        const Operand qi = input(q, op, "q"), ki = input(k, op, "k"), vi = input(v, op, "v");
        const Operand oi = input(out, op, "out"), li = input(lse, op, "lse");
        const Operand gi = input(dout, op, "dout");
        const std::optional<DType> want = parse_dtype(dtype, op);
        const DType dt = want ? *want : qi.view.dtype;
        Operand dq = new_output(qi.kind, qi.view.shape, dt, op);
        Operand dk = new_output(qi.kind, ki.view.shape, dt, op);
        Operand dv = new_output(qi.kind, vi.view.shape, dt, op);
        nogil([&] {
          softmax::attention_backward(qi.cview(), ki.cview(), vi.cview(), oi.cview(), li.cview(),
                                      gi.cview(), dq.view, dk.view, dv.view, o);
        });
        return py::make_tuple(dq.owner, dk.owner, dv.owner);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("dout"),
      py::kw_only(), SOFTMAX_PY_MASK_ARGS, py::arg("dtype") = py::none(), py::arg("threads") = 0,
      kAttentionBackwardDoc);
}

}  // namespace softmax_py
