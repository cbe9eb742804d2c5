"""cross_entropy, nll_loss, linear_cross_entropy: the core's fused losses plus autograd and a
bias for linear_cross_entropy."""
from . import _core, _forms
from ._docs import with_note

__all__ = ["cross_entropy", "nll_loss", "linear_cross_entropy"]

_GRAD_NOTE = """Differentiable for torch tensors that require grad (when no ``return_*`` flag is set): the
forward pass writes the gradient with respect to `input` (the fused kernel's second output)
and backward scales it by the incoming gradient; soft targets that require grad get
``-(1 - label_smoothing) * weight * log_probs`` (scaled as the loss)."""


def _ag():
    """softmax._autograd (imports torch), loaded on first use and then kept."""
    ag = _AG[0]
    if ag is None:
        from . import _autograd as ag
        _AG[0] = ag
    return ag


_AG = [None]


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, z_loss=0.0, normalizer=1.0, grad_scale=1.0,
                  return_grad=False, return_lse=False, return_log_probs=False, threads=0):
    opts = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
                z_loss=z_loss, normalizer=normalizer, grad_scale=grad_scale)
    if not (return_grad or return_lse or return_log_probs) and _forms.needs_grad(input, target):
        return _ag().cross_entropy(input, target, weight, opts, threads)
    return _core.cross_entropy(input, target, weight, return_grad=return_grad,
                               return_lse=return_lse, return_log_probs=return_log_probs,
                               threads=threads, **opts)


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean",
             label_smoothing=0.0, normalizer=1.0, grad_scale=1.0, return_grad=False, threads=0):
    opts = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
                normalizer=normalizer, grad_scale=grad_scale)
    if not return_grad and _forms.needs_grad(input, target):
        return _ag().cross_entropy(input, target, weight, opts, threads, nll=True)
    return _core.nll_loss(input, target, weight, return_grad=return_grad, threads=threads, **opts)


def _augment(hidden, weight, bias):
    """[hidden, 1] and [weight, bias]: the bias as one more feature column."""
    if _forms.is_tensor(hidden):
        import torch
        b = bias if _forms.is_tensor(bias) else torch.as_tensor(bias)
        return (torch.cat([hidden.detach(), hidden.new_ones(hidden.shape[0], 1)], 1),
                torch.cat([weight.detach(), b.detach().reshape(-1, 1).to(weight.dtype)], 1))
    import numpy as np
    h, w = np.asarray(hidden), np.asarray(weight)
    return (np.concatenate([h, np.ones((h.shape[0], 1), h.dtype)], 1),
            np.concatenate([w, np.asarray(bias, w.dtype).reshape(-1, 1)], 1))


def linear_cross_entropy(hidden, weight, target, *, bias=None, class_weight=None,
                         ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0,
                         normalizer=1.0, grad_scale=1.0, vocab_chunk=0, return_grad=False,
                         return_lse=False, threads=0):
    opts = dict(class_weight=class_weight, ignore_index=ignore_index, reduction=reduction,
                label_smoothing=label_smoothing, z_loss=z_loss, normalizer=normalizer,
                grad_scale=grad_scale, vocab_chunk=vocab_chunk)
    if not (return_grad or return_lse) and _forms.needs_grad(hidden, weight, bias):
        return _ag().linear_cross_entropy(hidden, weight, bias, target, opts, threads)
    if bias is None:
        return _core.linear_cross_entropy(hidden, weight, target, return_grad=return_grad,
                                          return_lse=return_lse, threads=threads, **opts)
    h, w = _augment(hidden, weight, bias)
    res = _core.linear_cross_entropy(h, w, target, return_grad=return_grad,
                                     return_lse=return_lse, threads=threads, **opts)
    if not return_grad:
        return res
    loss, gh, gw = res[:3]
    return (loss, gh[:, :-1], gw[:, :-1], gw[:, -1]) + tuple(res[3:])


cross_entropy.__doc__ = with_note(_core.cross_entropy, _GRAD_NOTE) if hasattr(_core, "cross_entropy") else None
nll_loss.__doc__ = with_note(_core.nll_loss, _GRAD_NOTE) if hasattr(_core, "nll_loss") else None
if hasattr(_core, "linear_cross_entropy"):
    linear_cross_entropy.__doc__ = with_note(
        _core.linear_cross_entropy,
        """Differentiable for torch tensors that require grad (hidden, weight, bias) when no
``return_*`` flag is set: the forward pass computes grad_hidden and grad_weight (reduction
'none': backward reruns the fused kernel with the per-row incoming gradients). A `bias`
(V,) is handled as one more feature column; with `return_grad` its gradient follows
``grad_weight`` in the returned tuple.""",
        """bias : array_like or tensor, shape (V,), optional
    Output bias: logits = hidden @ weight.T + bias.""").replace(
        "linear_cross_entropy(hidden, weight, target, *, ",
        "linear_cross_entropy(hidden, weight, target, *, bias=None, ", 1)
