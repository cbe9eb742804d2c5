"""The large-vocabulary losses (sampled, hierarchical, adaptive softmax) and the sparse and
stochastic relatives of softmax (sparsemax, gumbel_softmax): the core's ops plus autograd.

Each function keeps the core's signature. Given torch tensors that require grad (and no
``return_grad=``), the losses return tensors on the autograd graph whose backward passes use
the gradients the fused kernels write in their forward pass; sparsemax and gumbel_softmax
backward run sparsemax_backward / gumbel_softmax_backward. The full log-probability and
predict functions have no backward in the library: they refuse tensors that require grad
(under grad mode) instead of returning results silently detached from the graph.
"""
from . import _core, _forms
from ._docs import with_note
from ._wrap import wrap

__all__ = ["sampled_softmax_loss", "hierarchical_softmax_loss", "hierarchical_log_prob",
           "hierarchical_predict", "adaptive_log_softmax_with_loss", "adaptive_log_prob",
           "adaptive_predict", "gumbel_softmax", "sparsemax"]

_HAS_LARGE_VOCAB = hasattr(_core, "sampled_softmax_loss")
_HAS_SPARSEMAX = hasattr(_core, "sparsemax")


def _ag():
    """softmax._autograd (imports torch), loaded on first use and then kept."""
    ag = _AG[0]
    if ag is None:
        from . import _autograd as ag
        _AG[0] = ag
    return ag


_AG = [None]


def _tensors(*xs):
    """Float NumPy operands beside tensors that require grad, as tensors (the result's kind
    follows one operand; autograd needs tensors)."""
    import torch
    return [x if x is None or isinstance(x, torch.Tensor) else torch.as_tensor(x) for x in xs]


def _no_grad_only(op, *xs):
    if _forms.needs_grad(*xs):
        raise NotImplementedError(
            f"softmax.{op}: no gradient (the library has no backward for it; the result would "
            "be detached from the graph): call it under torch.no_grad() or on detached tensors"
            + ("; to train, use hierarchical_softmax_loss" if op.startswith("hier") else
               "; to train, use adaptive_log_softmax_with_loss"))


def _tail_tensors(tail_weights):
    try:
        return [t for pair in tail_weights for t in pair]
    except TypeError:
        return []  # the core names what is wrong with it


if _HAS_LARGE_VOCAB:
    _sampled_core = wrap(_core.sampled_softmax_loss)
    _hs_loss_core = wrap(_core.hierarchical_softmax_loss)
    _hs_log_prob_core = wrap(_core.hierarchical_log_prob)
    _hs_predict_core = wrap(_core.hierarchical_predict)
    _asm_core = wrap(_core.adaptive_log_softmax_with_loss)
    _asm_log_prob_core = wrap(_core.adaptive_log_prob)
    _asm_predict_core = wrap(_core.adaptive_predict)
if _HAS_SPARSEMAX:
    _gumbel_core = wrap(_core.gumbel_softmax)
    _sparsemax_core = wrap(_core.sparsemax)


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
                         sampler="log_uniform", unigrams=None, distortion=1.0, unique=False,
                         remove_accidental_hits=True, subtract_log_q=True, seed=0, offset=0,
                         return_samples=False, *, return_grad=False, grad_output=None, threads=0):
    if not return_grad and _forms.needs_grad(weights, biases, inputs):
        opts = dict(num_sampled=num_sampled, num_classes=num_classes, num_true=num_true,
                    sampler=sampler, unigrams=unigrams, distortion=distortion, unique=unique,
                    remove_accidental_hits=remove_accidental_hits,
                    subtract_log_q=subtract_log_q, seed=seed, offset=offset)
        weights, biases, inputs, labels = _tensors(weights, biases, inputs, labels)
        return _ag().sampled_softmax_loss(weights, biases, inputs, labels, opts,
                                          bool(return_samples), threads)
    return _sampled_core(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                         sampler, unigrams, distortion, unique, remove_accidental_hits,
                         subtract_log_q, seed, offset, return_samples, return_grad=return_grad,
                         grad_output=grad_output, threads=threads)


def hierarchical_softmax_loss(hidden, targets, tree, node_weights, node_bias=None,
                              reduction="mean", *, grad_scale=1.0, return_grad=False, threads=0):
    if not return_grad and _forms.needs_grad(hidden, node_weights, node_bias):
        hidden, node_weights, node_bias, targets = _tensors(hidden, node_weights, node_bias,
                                                            targets)
        return _ag().hierarchical_softmax_loss(hidden, node_weights, node_bias, targets, tree,
                                               reduction, grad_scale, threads)
    return _hs_loss_core(hidden, targets, tree, node_weights, node_bias, reduction,
                         grad_scale=grad_scale, return_grad=return_grad, threads=threads)


def hierarchical_log_prob(hidden, tree, node_weights, node_bias=None, *, threads=0):
    _no_grad_only("hierarchical_log_prob", hidden, node_weights, node_bias)
    return _hs_log_prob_core(hidden, tree, node_weights, node_bias, threads=threads)


def hierarchical_predict(hidden, tree, node_weights, node_bias=None, k=1, *, threads=0):
    _no_grad_only("hierarchical_predict", hidden, node_weights, node_bias)
    return _hs_predict_core(hidden, tree, node_weights, node_bias, k, threads=threads)


def adaptive_log_softmax_with_loss(input, target, head_weight, tail_weights, cutoffs,
                                   head_bias=None, *, return_grad=False, grad_scale=1.0,
                                   threads=0):
    tails = _tail_tensors(tail_weights)
    if not return_grad and _forms.needs_grad(input, head_weight, head_bias, *tails):
        input, head_weight, head_bias, target, *tails = _tensors(input, head_weight, head_bias,
                                                                 target, *tails)
        pairs = [(tails[i], tails[i + 1]) for i in range(0, len(tails), 2)]
        if len(pairs) * 2 != len(tails) or len(pairs) != len(list(tail_weights)):
            raise ValueError("softmax.adaptive_log_softmax_with_loss: each tail_weights entry "
                             "must be a (projection, output) pair")
        return _ag().adaptive_log_softmax_with_loss(input, target, head_weight, pairs,
                                                    list(cutoffs), head_bias, grad_scale, threads)
    return _asm_core(input, target, head_weight, tail_weights, cutoffs, head_bias,
                     return_grad=return_grad, grad_scale=grad_scale, threads=threads)


def adaptive_log_prob(input, head_weight, tail_weights, cutoffs, head_bias=None, *, threads=0):
    _no_grad_only("adaptive_log_prob", input, head_weight, head_bias,
                  *_tail_tensors(tail_weights))
    return _asm_log_prob_core(input, head_weight, tail_weights, cutoffs, head_bias,
                              threads=threads)


def adaptive_predict(input, head_weight, tail_weights, cutoffs, head_bias=None, *, threads=0):
    # Class ids: not differentiable (as torch's predict); reads the tensors' values only.
    if _forms.needs_grad(input, head_weight, head_bias, *_tail_tensors(tail_weights)):
        input, head_weight, head_bias = (t.detach() if _forms.is_tensor(t) else t
                                         for t in (input, head_weight, head_bias))
        tail_weights = [tuple(t.detach() if _forms.is_tensor(t) else t for t in pair)
                        for pair in tail_weights]
    return _asm_predict_core(input, head_weight, tail_weights, cutoffs, head_bias,
                             threads=threads)


def gumbel_softmax(logits, *, tau=1.0, hard=False, axis=-1, seed=0, offset=0, threads=0):
    if _forms.needs_grad(logits):
        opts = dict(tau=tau, hard=hard, axis=axis, seed=seed, offset=offset)
        return _ag().gumbel_softmax(logits, opts, threads)
    return _gumbel_core(logits, tau=tau, hard=hard, axis=axis, seed=seed, offset=offset,
                        threads=threads)


def sparsemax(x, axis=-1, *, temperature=1.0, threads=0):
    if _forms.needs_grad(x):
        return _ag().sparsemax(x, axis, temperature, threads)
    return _sparsemax_core(x, axis, temperature=temperature, threads=threads)


_LOSS_NOTE = """Differentiable for torch tensors that require grad ({args}) when `return_grad` is
not set: the forward pass keeps the gradients the fused kernel computes and backward scales
them by the incoming gradient. {more} Double backward raises."""

if _HAS_LARGE_VOCAB:
    sampled_softmax_loss.__doc__ = with_note(_core.sampled_softmax_loss, _LOSS_NOTE.format(
        args="weights, biases, inputs",
        more="""Per-example incoming gradients that differ (not
``loss.mean()`` / ``loss.sum()``) rerun the kernel with them as `grad_output` (the same seeded
samples). The weights and biases gradients are dense (num_classes rows; only the sampled and
true classes' rows are nonzero). Vary `offset` (or `seed`) per step to draw new samples."""))
    hierarchical_softmax_loss.__doc__ = with_note(_core.hierarchical_softmax_loss,
                                                  _LOSS_NOTE.format(
        args="hidden, node_weights, node_bias",
        more="""With reduction 'none' and per-example
incoming gradients that differ, the hidden gradient is scaled row by row and the node
gradients rerun the kernel once per distinct incoming value. `grad_scale` multiplies the
gradients. Node gradients are dense (V - 1 rows)."""))
    adaptive_log_softmax_with_loss.__doc__ = with_note(_core.adaptive_log_softmax_with_loss,
                                                       _LOSS_NOTE.format(
        args="input, head_weight, head_bias, the tail weights",
        more="""Both `output` and `loss` are on the graph; a
gradient that reaches the weights through `output` with values differing between examples
reruns the kernel once per distinct value on those examples (the input gradient is scaled row
by row). `grad_scale` multiplies the gradients."""))
    for _fn, _nm in ((hierarchical_log_prob, "hierarchical_log_prob"),
                     (hierarchical_predict, "hierarchical_predict"),
                     (adaptive_log_prob, "adaptive_log_prob")):
        _fn.__doc__ = with_note(getattr(_core, _nm), """No gradient: tensors that require grad
raise NotImplementedError under grad mode (use torch.no_grad(), or the loss to train).""")
    adaptive_predict.__doc__ = _core.adaptive_predict.__doc__
    del _fn, _nm
if _HAS_SPARSEMAX:
    gumbel_softmax.__doc__ = with_note(_core.gumbel_softmax, """Differentiable for torch tensors
that require grad: backward runs gumbel_softmax_backward with the same seed and offset (the
noise is regenerated, not stored); hard=True is straight-through. The same (seed, offset) give
the same noise: vary them per step. Double backward raises.""")
    sparsemax.__doc__ = with_note(_core.sparsemax, """Differentiable for torch tensors that
require grad: backward runs sparsemax_backward on the saved output. Double backward raises.""")
