"""torch.nn.Module wrappers of the differentiable ops, with torch's names and defaults.

``Softmax``, ``LogSoftmax``, ``Sigmoid``, ``CrossEntropyLoss`` and ``NLLLoss`` take the
arguments of their ``torch.nn`` namesakes; ``LinearCrossEntropyLoss`` fuses the output
projection with the loss (never holding the logits); ``ScaledDotProductAttention`` calls
:func:`softmax.scaled_dot_product_attention`.
"""
import torch

import softmax as _sm

__all__ = ["Softmax", "LogSoftmax", "Sigmoid", "CrossEntropyLoss", "NLLLoss",
           "LinearCrossEntropyLoss", "ScaledDotProductAttention"]


class Softmax(torch.nn.Module):
    """``torch.nn.Softmax(dim)``: softmax along `dim` (default -1)."""

    def __init__(self, dim=-1, temperature=1.0):
        super().__init__()
        self.dim, self.temperature = dim, temperature

    def forward(self, x):
        return _sm.softmax(x, self.dim, temperature=self.temperature)


class LogSoftmax(Softmax):
    """``torch.nn.LogSoftmax(dim)``: log-softmax along `dim` (default -1)."""

    def forward(self, x):
        return _sm.log_softmax(x, self.dim, temperature=self.temperature)


class Sigmoid(torch.nn.Module):
    """``torch.nn.Sigmoid()``."""

    def forward(self, x):
        return _sm.sigmoid(x)


class CrossEntropyLoss(torch.nn.Module):
    """``torch.nn.CrossEntropyLoss(weight, ignore_index, reduction, label_smoothing)`` plus
    PaLM's `z_loss`: fused log-softmax + NLL with the gradient from the same pass."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                 z_loss=0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing, self.z_loss = label_smoothing, z_loss

    def forward(self, input, target):
        return _sm.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                                 reduction=self.reduction, label_smoothing=self.label_smoothing,
                                 z_loss=self.z_loss)


class NLLLoss(torch.nn.Module):
    """``torch.nn.NLLLoss(weight, ignore_index, reduction)`` on log-probabilities."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input, target):
        return _sm.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                            reduction=self.reduction)


class LinearCrossEntropyLoss(torch.nn.Module):
    """``CrossEntropyLoss()(Linear(in_features, num_classes, bias)(hidden), target)`` without
    the (N, num_classes) logits: the classifier's weight (and bias) are parameters of this
    module; hidden (N, in_features) float32, target (N,) class ids. Leading dims of hidden
    and target are flattened."""

    def __init__(self, in_features, num_classes, bias=False, ignore_index=-100,
                 reduction="mean", label_smoothing=0.0, z_loss=0.0, vocab_chunk=0,
                 device=None, dtype=torch.float32):
        super().__init__()
        lin = torch.nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
        self.weight = lin.weight
        self.bias = lin.bias
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing, self.z_loss, self.vocab_chunk = label_smoothing, z_loss, vocab_chunk

    def forward(self, hidden, target):
        h = hidden.reshape(-1, hidden.shape[-1])
        t = target.reshape(-1)
        loss = _sm.linear_cross_entropy(h, self.weight, t, bias=self.bias,
                                        ignore_index=self.ignore_index, reduction=self.reduction,
                                        label_smoothing=self.label_smoothing, z_loss=self.z_loss,
                                        vocab_chunk=self.vocab_chunk)
        if self.reduction == "none":
            return loss.reshape(target.shape)
        return loss


class ScaledDotProductAttention(torch.nn.Module):
    """Calls :func:`softmax.scaled_dot_product_attention` (torch 2.x semantics)."""

    def __init__(self, is_causal=False, scale=None):
        super().__init__()
        self.is_causal, self.scale = is_causal, scale

    def forward(self, query, key, value, attn_mask=None):
        return _sm.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                                is_causal=self.is_causal, scale=self.scale)
