"""torch.nn.Module wrappers of the differentiable ops, with torch's names and defaults.

``Softmax``, ``LogSoftmax``, ``Sigmoid``, ``CrossEntropyLoss`` and ``NLLLoss`` take the
arguments of their ``torch.nn`` namesakes; ``LinearCrossEntropyLoss`` fuses the output
projection with the loss (never holding the logits); ``ScaledDotProductAttention`` calls
:func:`softmax.scaled_dot_product_attention`. ``AdaptiveLogSoftmaxWithLoss`` is torch's module
(same constructor, parameters and state_dict) computed by the library;
``SampledSoftmaxLoss`` and ``HierarchicalSoftmaxLoss`` hold the output layer of those losses;
``Sparsemax`` is :func:`softmax.sparsemax` along `dim`.
"""
import torch

import softmax as _sm

__all__ = ["Softmax", "LogSoftmax", "Sigmoid", "CrossEntropyLoss", "NLLLoss",
           "LinearCrossEntropyLoss", "ScaledDotProductAttention", "Sparsemax",
           "SampledSoftmaxLoss", "HierarchicalSoftmaxLoss", "AdaptiveLogSoftmaxWithLoss"]


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


class Sparsemax(torch.nn.Module):
    """Sparsemax along `dim` (default -1): :func:`softmax.sparsemax`."""

    def __init__(self, dim=-1, temperature=1.0):
        super().__init__()
        self.dim, self.temperature = dim, temperature

    def forward(self, x):
        return _sm.sparsemax(x, self.dim, temperature=self.temperature)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction = {reduction!r}: must be 'mean', 'sum' or 'none'")


class SampledSoftmaxLoss(torch.nn.Module):
    """``tf.nn.sampled_softmax_loss`` as a module holding the output layer: `weight`
    (num_classes, in_features) and `bias` (num_classes,) parameters (initialised as
    torch.nn.Linear's). ``forward(input, target)``: input (N, in_features) float32, target (N,)
    or (N, num_true) class ids; returns the per-example losses reduced by `reduction`.

    Each call draws a new sample set: the Philox offset is `offset`, which advances by one per
    call (so a run is reproducible from `seed`). Evaluate with the full softmax (e.g.
    ``softmax.linear_cross_entropy(h, module.weight, t, bias=module.bias)``)."""

    def __init__(self, in_features, num_classes, num_sampled, num_true=1, sampler="log_uniform",
                 unigrams=None, distortion=1.0, unique=False, remove_accidental_hits=True,
                 subtract_log_q=True, seed=0, reduction="mean", device=None,
                 dtype=torch.float32):
        super().__init__()
        lin = torch.nn.Linear(in_features, num_classes, device=device, dtype=dtype)
        self.weight, self.bias = lin.weight, lin.bias
        _reduce(torch.zeros(1), reduction)  # checks the name now
        self.num_classes, self.num_sampled, self.num_true = num_classes, num_sampled, num_true
        self.sampler, self.unigrams, self.distortion = sampler, unigrams, distortion
        self.unique, self.remove_accidental_hits = unique, remove_accidental_hits
        self.subtract_log_q, self.seed, self.offset = subtract_log_q, seed, 0
        self.reduction = reduction

    def forward(self, input, target):
        labels = target.reshape(target.shape[0], -1) if target.dim() != 2 else target
        loss = _sm.sampled_softmax_loss(
            self.weight, self.bias, labels, input, self.num_sampled, self.num_classes,
            num_true=labels.shape[1], sampler=self.sampler, unigrams=self.unigrams,
            distortion=self.distortion, unique=self.unique,
            remove_accidental_hits=self.remove_accidental_hits,
            subtract_log_q=self.subtract_log_q, seed=self.seed, offset=self.offset)
        self.offset += 1
        return _reduce(loss, self.reduction)


class HierarchicalSoftmaxLoss(torch.nn.Module):
    """Hierarchical softmax (word2vec / fastText) over `tree` (a softmax.HierarchicalTree, or
    class counts for a Huffman tree) as a module holding `weight` (V - 1, in_features) and
    `bias` (V - 1,) of the internal nodes (bias optional; initialised as torch.nn.Linear's).
    ``forward(input, target)`` -> the loss reduced by `reduction`; ``log_prob(input)`` (N, V)
    and ``predict(input, k=1)`` -> (log_probs, classes), both without gradients."""

    def __init__(self, in_features, tree, bias=True, reduction="mean", device=None,
                 dtype=torch.float32):
        super().__init__()
        if not isinstance(tree, _sm.HierarchicalTree):
            tree = _sm.huffman_tree(tree)
        self.tree = tree
        lin = torch.nn.Linear(in_features, tree.num_internal, bias=bias, device=device,
                              dtype=dtype)
        self.weight, self.bias = lin.weight, lin.bias
        self.reduction = reduction

    def forward(self, input, target):
        return _sm.hierarchical_softmax_loss(input, target, self.tree, self.weight, self.bias,
                                             self.reduction)

    @torch.no_grad()
    def log_prob(self, input):
        return _sm.hierarchical_log_prob(input, self.tree, self.weight, self.bias)

    @torch.no_grad()
    def predict(self, input, k=1):
        return _sm.hierarchical_predict(input, self.tree, self.weight, self.bias, k)


class AdaptiveLogSoftmaxWithLoss(torch.nn.AdaptiveLogSoftmaxWithLoss):
    """``torch.nn.AdaptiveLogSoftmaxWithLoss`` (same constructor, parameters, state_dict and
    ``(output, loss)`` result) whose forward, and whose log_prob and predict when no gradient
    is needed, run the library's adaptive softmax. forward's backward uses the gradients the
    fused kernel computes in the forward pass. log_prob with grad needed falls back to torch's
    own (the library has no backward for the full log-probabilities). float32 only."""

    def _weights(self):
        tails = [(t[0].weight, t[1].weight) for t in self.tail]
        return self.head.weight, tails, self.cutoffs[:-1], self.head.bias

    def forward(self, input_, target_):
        if target_.dim() > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.dim() == 1
        x = input_ if batched else input_.unsqueeze(0)
        t = target_ if batched else target_.unsqueeze(0)
        hw, tails, cutoffs, hb = self._weights()
        output, loss = _sm.adaptive_log_softmax_with_loss(x, t, hw, tails, cutoffs, hb)
        if not batched:
            output = output.squeeze(0)
        return torch.nn.modules.adaptive._ASMoutput(output, loss)

    def log_prob(self, input):
        hw, tails, cutoffs, hb = self._weights()
        if torch.is_grad_enabled() and (input.requires_grad or any(
                p.requires_grad for p in self.parameters())):
            return super().log_prob(input)
        return _sm.adaptive_log_prob(input, hw, tails, cutoffs, hb)

    def predict(self, input):
        hw, tails, cutoffs, hb = self._weights()
        return _sm.adaptive_predict(input, hw, tails, cutoffs, hb)
