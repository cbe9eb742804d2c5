"""The differentiable ops registered as torch custom ops, ``torch.ops.softmax.<name>``.

    import softmax.library
    y = torch.ops.softmax.softmax(x, -1)          # dispatched by torch, with autograd

Uses torch 1.13's ``torch.library.Library`` with Python kernels: a CPU kernel (the compiled
op) and an Autograd kernel (the autograd Functions of ``softmax._autograd``, whose backward
passes are the library's fused kernels). What that gives: the ops go through torch's
dispatcher, so the profiler names them (``softmax::softmax``), ``__torch_dispatch__`` modes
and ``torch.ops`` callers see one op instead of its pieces. TorchScript and C++ callers would
need C++ registration (not done). Importing this module twice registers once.
"""
import torch

from . import _autograd, _core

__all__ = ["SCHEMAS"]

SCHEMAS = {
    "softmax": "softmax(Tensor x, int dim=-1, float temperature=1.0) -> Tensor",
    "log_softmax": "log_softmax(Tensor x, int dim=-1, float temperature=1.0) -> Tensor",
    "logsumexp": "logsumexp(Tensor x, int dim=-1, bool keepdim=False, float temperature=1.0) -> Tensor",
    "sigmoid": "sigmoid(Tensor x) -> Tensor",
    "cross_entropy": ("cross_entropy(Tensor input, Tensor target, Tensor? weight=None, "
                      "int ignore_index=-100, str reduction='mean', float label_smoothing=0.0) "
                      "-> Tensor"),
    "scaled_dot_product_attention": (
        "scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, "
        "Tensor? attn_mask=None, float dropout_p=0.0, bool is_causal=False, float? scale=None) "
        "-> Tensor"),
    "sparsemax": "sparsemax(Tensor x, int dim=-1, float temperature=1.0) -> Tensor",
    "gumbel_softmax": ("gumbel_softmax(Tensor logits, float tau=1.0, bool hard=False, int dim=-1, "
                       "int seed=0, int offset=0) -> Tensor"),
}
if not hasattr(_core, "sparsemax"):
    del SCHEMAS["sparsemax"], SCHEMAS["gumbel_softmax"]


def _ce_opts(ignore_index, reduction, label_smoothing):
    return dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)


def _sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    import softmax
    return softmax.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p,
                                                is_causal, scale)


# name -> (CPU kernel, Autograd kernel)
_KERNELS = {
    "softmax": (lambda x, dim=-1, temperature=1.0: _core.softmax(x, dim, temperature=temperature),
                lambda x, dim=-1, temperature=1.0: _autograd.softmax(x, dim, temperature, None, 0)),
    "log_softmax": (
        lambda x, dim=-1, temperature=1.0: _core.log_softmax(x, dim, temperature=temperature),
        lambda x, dim=-1, temperature=1.0: _autograd.log_softmax(x, dim, temperature, None, 0)),
    "logsumexp": (
        lambda x, dim=-1, keepdim=False, temperature=1.0: _core.logsumexp(
            x, dim, keepdims=keepdim, temperature=temperature),
        lambda x, dim=-1, keepdim=False, temperature=1.0: _autograd.logsumexp(
            x, dim, keepdim, temperature, None, 0)),
    "sigmoid": (lambda x: _core.sigmoid(x), lambda x: _autograd.sigmoid(x, None, 0)),
    "cross_entropy": (
        lambda input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0:
            _core.cross_entropy(input, target, weight, **_ce_opts(ignore_index, reduction,
                                                                 label_smoothing)),
        lambda input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0:
            _autograd.cross_entropy(input, target, weight,
                                    _ce_opts(ignore_index, reduction, label_smoothing), 0)),
    "scaled_dot_product_attention": (_sdpa, _sdpa),
    "sparsemax": (
        lambda x, dim=-1, temperature=1.0: _core.sparsemax(x, dim, temperature=temperature),
        lambda x, dim=-1, temperature=1.0: _autograd.sparsemax(x, dim, temperature, 0)),
    "gumbel_softmax": (
        lambda logits, tau=1.0, hard=False, dim=-1, seed=0, offset=0: _core.gumbel_softmax(
            logits, tau=tau, hard=hard, axis=dim, seed=seed, offset=offset),
        lambda logits, tau=1.0, hard=False, dim=-1, seed=0, offset=0: _autograd.gumbel_softmax(
            logits, dict(tau=tau, hard=hard, axis=dim, seed=seed, offset=offset), 0)),
}

if not hasattr(torch.ops.softmax, "softmax"):
    _lib = torch.library.Library("softmax", "DEF")
    for _name, _schema in SCHEMAS.items():
        _lib.define(_schema)
        _cpu, _grad = _KERNELS[_name]
        _lib.impl(_name, _cpu, "CPU")
        _lib.impl(_name, _grad, "Autograd")
