"""torch.autograd Functions of the differentiable ops (imported only when a tensor that
requires grad is passed, so `import softmax` never imports torch).

Every backward runs the compiled core's fused backward kernels on the saved forward results
(softmax_backward, log_softmax_backward, masked_softmax_backward, attention_backward, and the
gradients cross_entropy / linear_cross_entropy write in their forward pass); torch is used
only to scale by the incoming gradient and to sum a broadcast bias gradient. Backward passes
are marked once_differentiable: asking for a second derivative raises torch's "trying to
differentiate twice a function that was marked with @once_differentiable" (also when the
first gradient was taken with create_graph=True from a loss, see once_differentiable below).
"""
import functools

import torch
from torch._C import _functions  # DelayedError, as torch.autograd.function uses it

from . import _core, _forms

__all__ = ["softmax", "log_softmax", "logsumexp", "sigmoid", "masked_softmax", "cross_entropy",
           "linear_cross_entropy", "attention", "sampled_softmax_loss", "hierarchical_softmax_loss",
           "adaptive_log_softmax_with_loss", "gumbel_softmax", "sparsemax"]


def once_differentiable(fn):
    """torch's once_differentiable, also when the incoming gradient does not require grad.

    torch's decorator marks the gradients as non-differentiable only when an incoming gradient
    requires grad; ``torch.autograd.grad(loss, w, create_graph=True)`` then returns a gradient
    with no grad_fn, and differentiating it fails with "element 0 of tensors does not require
    grad", though the gradient does depend on w. Here, under create_graph (grad mode on in
    backward), every gradient returned for an input that requires grad points to a node that
    raises torch's "trying to differentiate twice a function that was marked with
    @once_differentiable"."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with torch.no_grad():
            outputs = fn(ctx, *args)
        if not torch.is_grad_enabled() or not any(ctx.needs_input_grad):
            return outputs
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs
        err_fn = _functions.DelayedError(
            b"trying to differentiate twice a function that was marked with "
            b"@once_differentiable", len(outputs))

        def fake_requires_grad(v):
            if v is not None:
                v = v.detach()
                v.requires_grad = True
            return v

        res = err_fn(*[fake_requires_grad(v) for v in outputs])
        return res[0] if single and isinstance(res, tuple) else res

    return wrapper


def _sum_to(g, shape):
    """Sums a gradient over the dimensions broadcast to reach g's shape from `shape`."""
    lead = g.dim() - len(shape)
    if lead:
        g = g.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(dim=dims, keepdim=True) if dims else g


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis, temperature, dtype, threads, log):
        y = None
        if dtype is None:  # grad mode is off in forward: the small-call path takes x
            y = _forms.fast_call(_core, _forms.LOG_SOFTMAX if log else _forms.SOFTMAX, x, axis,
                                 temperature, threads)
        if y is None:
            fn = _core.log_softmax if log else _core.softmax
            y = fn(x, axis, temperature=temperature, dtype=dtype, threads=threads)
        ctx.save_for_backward(y)
        ctx.args = (axis, temperature, x.dtype, threads, log)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        axis, temperature, xdtype, threads, log = ctx.args
        fn = _core.log_softmax_backward if log else _core.softmax_backward
        dx = fn(y, dy.to(y.dtype), axis, temperature=temperature, dtype=xdtype, threads=threads)
        return dx, None, None, None, None, None


def softmax(x, axis, temperature, dtype, threads):
    return _Softmax.apply(x, axis, temperature, dtype, threads, False)


def log_softmax(x, axis, temperature, dtype, threads):
    return _Softmax.apply(x, axis, temperature, dtype, threads, True)


class _Logsumexp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims, temperature, dtype, threads):
        y = _core.logsumexp(x, axis, keepdims=keepdims, temperature=temperature, dtype=dtype,
                            threads=threads)
        ctx.save_for_backward(x)
        ctx.args = (axis, keepdims, temperature, threads)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        # d lse(x / T) / dx = softmax(x / T) / T: our softmax kernel, scaled by dy / T.
        (x,) = ctx.saved_tensors
        axis, keepdims, temperature, threads = ctx.args
        p = _core.softmax(x, axis, temperature=temperature, threads=threads)
        g = dy.to(x.dtype) / temperature
        if not keepdims and x.dim() > 0:
            g = g.unsqueeze(axis)
        return p.mul_(g), None, None, None, None, None


def logsumexp(x, axis, keepdims, temperature, dtype, threads):
    return _Logsumexp.apply(x, axis, keepdims, temperature, dtype, threads)


class _Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dtype, threads):
        y = _core.sigmoid(x, dtype=dtype, threads=threads)
        ctx.save_for_backward(y)
        ctx.xdtype = x.dtype
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return (dy * y * (1 - y)).to(ctx.xdtype), None, None


def sigmoid(x, dtype, threads):
    return _Sigmoid.apply(x, dtype, threads)


class _MaskedSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, bias, opts, dtype, threads):
        y = _core.masked_softmax(scores, bias=bias, dtype=dtype, threads=threads, **opts)
        keep_scores = opts.get("softcap", 0.0) > 0
        ctx.save_for_backward(y, scores if keep_scores else None, bias)
        ctx.args = (opts, scores.dtype, threads)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        y, scores, bias = ctx.saved_tensors
        opts, sdtype, threads = ctx.args
        dy = dy.to(y.dtype)
        ds = None
        if ctx.needs_input_grad[0]:
            ds = _core.masked_softmax_backward(dy, y, scores, bias=bias, dtype=sdtype,
                                               threads=threads, **opts)
        db = None
        if ctx.needs_input_grad[1]:
            # The bias enters after scale and softcap: its gradient is the softmax backward
            # with respect to the transformed scores (scale 1, no softcap factor).
            plain = dict(opts, scale=1.0, softcap=0.0)
            dx = _core.masked_softmax_backward(dy, y, None, bias=bias, dtype=bias.dtype,
                                               threads=threads, **plain)
            db = _sum_to(dx, bias.shape)
        return ds, db, None, None, None


def masked_softmax(scores, bias, opts, dtype, threads):
    return _MaskedSoftmax.apply(scores, bias, opts, dtype, threads)


def _rows_grad(go, reduction, input_dim):
    """The incoming gradient shaped to multiply a (N, C, d...) gradient."""
    if reduction != "none" or input_dim < 2:
        return go
    return go.unsqueeze(1)


def _soft_target_grad(lp, weight, opts, go, rows):
    """d loss / d q for soft targets q: -(1 - eps) w_c lp_c, scaled like the loss."""
    eps = opts.get("label_smoothing", 0.0)
    g = lp * (-(1.0 - eps))
    if weight is not None:
        shape = [1] * lp.dim()
        shape[1 if lp.dim() > 1 else 0] = -1
        g = g * weight.reshape(shape)
    g = torch.where(g == 0, torch.zeros_like(g), g)  # 0 * log 0 = 0
    reduction = opts.get("reduction", "mean")
    if reduction == "mean":
        g = g / max(rows, 1)
    elif reduction == "sum":
        g = g / opts.get("normalizer", 1.0)
    return g * _rows_grad(go, reduction, lp.dim())


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, target, weight, opts, threads, nll):
        soft_grad = target.is_floating_point() and target.requires_grad
        fn = _core.nll_loss if nll else _core.cross_entropy
        kw = dict(opts, return_grad=True, threads=threads)
        if soft_grad and not nll:
            kw["return_log_probs"] = True
        res = fn(x, target, weight, **kw)
        loss, grad = res[0], res[1]
        lp = (x if nll else res[2]) if soft_grad else None
        ctx.save_for_backward(grad, lp, weight)
        rows = x.numel() // x.shape[1] if x.dim() > 1 else 1
        ctx.args = (opts, x.dim(), rows)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, go):
        grad, lp, weight = ctx.saved_tensors
        opts, dim, rows = ctx.args
        reduction = opts.get("reduction", "mean")
        gx = grad * _rows_grad(go.to(grad.dtype), reduction, dim) if ctx.needs_input_grad[0] else None
        gt = None
        if ctx.needs_input_grad[1] and lp is not None:
            gt = _soft_target_grad(lp, weight, opts, go.to(lp.dtype), rows)
        return gx, gt, None, None, None, None


def cross_entropy(x, target, weight, opts, threads, nll=False):
    return _CrossEntropy.apply(x, target, weight, opts, threads, nll)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, target, opts, threads):
        if bias is not None:
            # logits = [h, 1] [W, b]^T: the bias rides along as one more feature column.
            hidden = torch.cat([hidden, hidden.new_ones(hidden.shape[0], 1)], dim=1)
            weight = torch.cat([weight, bias.reshape(-1, 1).to(weight.dtype)], dim=1)
        reduction = opts.get("reduction", "mean")
        if reduction == "none":
            # The per-row incoming gradient is needed: recompute in backward with grad_output.
            loss = _core.linear_cross_entropy(hidden, weight, target, threads=threads, **opts)
            ctx.save_for_backward(hidden, weight, target)
            grads = None
        else:
            loss, gh, gw = _core.linear_cross_entropy(hidden, weight, target, return_grad=True,
                                                      threads=threads, **opts)
            ctx.save_for_backward(gh, gw)
            grads = True
        ctx.args = (opts, threads, bias is not None, grads)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, go):
        opts, threads, has_bias, precomputed = ctx.args
        if precomputed:
            gh, gw = ctx.saved_tensors
            go = go.to(gh.dtype)
            gh, gw = gh * go, gw * go
        else:
            hidden, weight, target = ctx.saved_tensors
            _, gh, gw = _core.linear_cross_entropy(hidden, weight, target, return_grad=True,
                                                   grad_output=go.to(hidden.dtype).contiguous(),
                                                   threads=threads, **opts)
        gb = None
        if has_bias:
            gb = gw[:, -1].contiguous()
            gh, gw = gh[:, :-1], gw[:, :-1]
        return gh, gw, gb, None, None, None


def linear_cross_entropy(hidden, weight, bias, target, opts, threads):
    return _LinearCrossEntropy.apply(hidden, weight, bias, target, opts, threads)


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, opts, dtype, threads):
        out, lse = _core.attention(q, k, v, return_lse=True, dtype=dtype, threads=threads, **opts)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = (opts, threads)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        opts, threads = ctx.args
        if out.dtype != q.dtype:
            out = out.to(q.dtype)
        dq, dk, dv = _core.attention_backward(q, k, v, out, lse, dout.to(q.dtype),
                                              threads=threads, **opts)
        return dq, dk, dv, None, None, None


def attention(q, k, v, opts, dtype, threads):
    if opts.get("bias") is not None and opts["bias"].requires_grad:
        raise NotImplementedError(
            "softmax.attention: no gradient for `bias` (it would be an (Sq, Sk) tensor); "
            "use masked_softmax on materialised scores to learn a bias")
    return _Attention.apply(q, k, v, opts, dtype, threads)


# --- large-vocabulary losses ---------------------------------------------------------------
#
# Their kernels return the gradient of sum_i g_i * loss_i (or of grad_scale * loss) already
# reduced over the examples: the forward pass computes it for g = 1 and backward scales it when
# the incoming per-example gradient is one value for every example (loss.mean(), loss.sum(),
# a reduced loss). Other incoming gradients: sampled_softmax_loss reruns its kernel with
# grad_output (the same seeded samples); the hierarchical and adaptive kernels take only a
# scalar scale, so the input gradient (one row per example) is scaled row by row and the weight
# gradients rerun the kernel once per distinct incoming value on that value's examples.


def _uniform(g):
    """The one value of g as a float when every element equals it, else None."""
    if g.numel() == 0:
        return 0.0
    flat = g.reshape(-1)
    first = flat[0]
    return float(first) if bool((flat == first).all()) else None


def _dense_rows(shape_like, rows, values):
    """A zero tensor like `shape_like` with `values` in rows `rows` (increasing, distinct)."""
    out = torch.zeros_like(shape_like)
    if rows.numel():
        out.index_copy_(0, rows.to(torch.int64), values.to(out.dtype))
    return out


def _groups(coef):
    """(value, example ids) for each distinct nonzero value of the 1-d tensor coef."""
    values, inverse = torch.unique(coef, return_inverse=True)
    for j, u in enumerate(values.tolist()):
        if u != 0.0:
            yield u, torch.nonzero(inverse == j).reshape(-1)


class _SampledSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights, biases, inputs, labels, opts, return_samples, threads):
        res = _core.sampled_softmax_loss(weights, biases, labels, inputs, **opts,
                                         return_samples=return_samples, return_grad=True,
                                         threads=threads)
        loss, grads = res[0], res[-1]
        ctx.save_for_backward(weights, biases, inputs, labels, grads["inputs"], grads["rows"],
                              grads["weights"], grads["biases"])
        ctx.args = (opts, threads)
        if not return_samples:
            return loss
        samples = res[1:4]
        ctx.mark_non_differentiable(*samples)
        return (loss,) + tuple(samples)

    @staticmethod
    @once_differentiable
    def backward(ctx, go, *unused):
        weights, biases, inputs, labels, gx, rows, gw, gb = ctx.saved_tensors
        opts, threads = ctx.args
        c = _uniform(go)
        if c is None:  # per-example incoming gradients: the kernel takes them (same samples)
            _, g = _core.sampled_softmax_loss(weights, biases, labels, inputs, **opts,
                                              return_grad=True, threads=threads,
                                              grad_output=go.to(torch.float32).contiguous())
            gx, rows, gw, gb, c = g["inputs"], g["rows"], g["weights"], g["biases"], 1.0
        need = ctx.needs_input_grad
        dw = _dense_rows(weights, rows, gw * c) if need[0] else None
        db = _dense_rows(biases, rows, gb * c) if need[1] else None
        dx = gx * c if need[2] else None
        return dw, db, dx, None, None, None, None


def sampled_softmax_loss(weights, biases, inputs, labels, opts, return_samples, threads):
    return _SampledSoftmax.apply(weights, biases, inputs, labels, opts, return_samples, threads)


class _Hierarchical(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, node_weights, node_bias, targets, tree, reduction, grad_scale,
                threads):
        loss, g = _core.hierarchical_softmax_loss(hidden, targets, tree, node_weights, node_bias,
                                                  reduction, return_grad=True, threads=threads)
        ctx.save_for_backward(hidden, node_weights, node_bias, targets, g["hidden"], g["rows"],
                              g["node_weights"], g["node_bias"])
        ctx.args = (tree, reduction, grad_scale, threads)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, go):
        hidden, w, b, targets, gh, rows, gw, gb = ctx.saved_tensors
        tree, reduction, grad_scale, threads = ctx.args
        need = ctx.needs_input_grad
        go = go * grad_scale
        c = _uniform(go)
        if c is not None:
            dh = gh * c if need[0] else None
            dw = _dense_rows(w, rows, gw * c) if need[1] else None
            db = _dense_rows(b, rows, gb * c) if need[2] else None
            return dh, dw, db, None, None, None, None, None
        # reduction 'none' with per-example incoming gradients g_i.
        go = go.to(gh.dtype)
        dh = gh * go[:, None] if need[0] else None
        dw = torch.zeros_like(w) if need[1] else None
        db = torch.zeros_like(b) if need[2] else None
        if need[1] or need[2]:
            for u, ids in _groups(go):
                _, g = _core.hierarchical_softmax_loss(hidden[ids], targets[ids], tree, w, b,
                                                       "sum", grad_scale=u, return_grad=True,
                                                       threads=threads)
                r = g["rows"].to(torch.int64)
                if dw is not None:
                    dw.index_add_(0, r, g["node_weights"])
                if db is not None:
                    db.index_add_(0, r, g["node_bias"])
        return dh, dw, db, None, None, None, None, None


def hierarchical_softmax_loss(hidden, node_weights, node_bias, targets, tree, reduction,
                              grad_scale, threads):
    return _Hierarchical.apply(hidden, node_weights, node_bias, targets, tree, reduction,
                               grad_scale, threads)


class _Adaptive(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, head_weight, head_bias, target, cutoffs, grad_scale, threads,
                *tail_flat):
        tails = [(tail_flat[i], tail_flat[i + 1]) for i in range(0, len(tail_flat), 2)]
        output, loss, g = _core.adaptive_log_softmax_with_loss(
            input, target, head_weight, tails, cutoffs, head_bias, return_grad=True,
            threads=threads)
        tail_grads = [t for pair in g["tail_weights"] for t in pair]
        ctx.save_for_backward(input, head_weight, head_bias, target, g["input"], g["head_weight"],
                              g["head_bias"], *tail_flat, *tail_grads)
        ctx.args = (cutoffs, grad_scale, threads, len(tail_flat))
        return output, loss

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, g_loss):
        cutoffs, grad_scale, threads, nt = ctx.args
        saved = ctx.saved_tensors
        x, hw, hb, target, gx, ghw, ghb = saved[:7]
        tail_flat, tail_grads = saved[7:7 + nt], saved[7 + nt:]
        need = ctx.needs_input_grad
        n = x.shape[0]
        # The saved gradients are those of loss = -mean(output); the objective's gradient is
        # sum_i coef_i * d output_i with coef_i = g_out_i - g_loss / N.
        coef = (g_out.to(torch.float64) - g_loss.to(torch.float64) / max(n, 1)) * grad_scale
        c = _uniform(coef)
        dx = None
        if need[0]:
            dx = gx * c * -n if c is not None else gx * (coef * -n).to(gx.dtype)[:, None]
        want = [need[1], need[2] and hb is not None] + [need[7 + i] for i in range(nt)]
        if not any(want):
            return (dx, None, None, None, None, None, None) + (None,) * nt
        if c is not None:
            weight_grads = [g * (c * -n) if g is not None else None
                            for g in (ghw, ghb) + tuple(tail_grads)]
        else:
            weight_grads = [torch.zeros_like(t) if t is not None else None
                            for t in (hw, hb) + tuple(tail_flat)]
            tails = [(tail_flat[i], tail_flat[i + 1]) for i in range(0, nt, 2)]
            for u, ids in _groups(coef):
                # grad_scale s on these k examples gives -s / k * sum d output_i: s = -u k.
                _, _, g = _core.adaptive_log_softmax_with_loss(
                    x[ids], target[ids], hw, tails, cutoffs, hb, return_grad=True,
                    grad_scale=-u * ids.numel(), threads=threads)
                part = [g["head_weight"], g["head_bias"]] + [t for p in g["tail_weights"] for t in p]
                for acc, p in zip(weight_grads, part):
                    if acc is not None:
                        acc.add_(p)
        grads = [gr if w else None for gr, w in zip(weight_grads, want)]
        return (dx, grads[0], grads[1], None, None, None, None) + tuple(grads[2:])


def adaptive_log_softmax_with_loss(input, target, head_weight, tails, cutoffs, head_bias,
                                   grad_scale, threads):
    flat = [t for pair in tails for t in pair]
    return _Adaptive.apply(input, head_weight, head_bias, target, cutoffs, grad_scale, threads,
                           *flat)


# --- gumbel_softmax, sparsemax ----------------------------------------------------------------


class _Gumbel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, opts, threads):
        y = _core.gumbel_softmax(logits, **opts, threads=threads)
        ctx.save_for_backward(logits)
        ctx.args = (opts, threads)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        # The kernel regenerates the same noise from (seed, offset): the soft sample's softmax
        # Jacobian, also for hard=True (straight-through).
        (logits,) = ctx.saved_tensors
        opts, threads = ctx.args
        dx = _core.gumbel_softmax_backward(logits, dy.to(logits.dtype), **opts, threads=threads)
        return dx, None, None


def gumbel_softmax(logits, opts, threads):
    return _Gumbel.apply(logits, opts, threads)


class _Sparsemax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis, temperature, threads):
        y = _core.sparsemax(x, axis, temperature=temperature, threads=threads)
        ctx.save_for_backward(y)
        ctx.args = (axis, temperature, threads)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        axis, temperature, threads = ctx.args
        dx = _core.sparsemax_backward(y, dy.to(y.dtype), axis, temperature=temperature,
                                      threads=threads)
        return dx, None, None, None


def sparsemax(x, axis, temperature, threads):
    return _Sparsemax.apply(x, axis, temperature, threads)
