"""Vocabulary-parallel softmax family over MPI (mpi4py).

The class axis of every row is sharded across the ranks of an mpi4py communicator: rank r
passes its shard ``x`` (its classes along ``axis``) and ``class_offset``, the global id of its
first class. Every call is collective: all ranks of ``comm`` call it in the same order.

* ``softmax`` / ``log_softmax`` return this rank's shard of the result;
* ``logsumexp`` / ``argmax`` return the whole (reduced) result on every rank; argmax returns
  global class ids;
* ``cross_entropy`` returns the whole loss (and lse) on every rank and this rank's shard of the
  gradient and log-probs;
* ``sample`` returns the whole (B,) or (B, num_samples) token ids on every rank: the same ids
  as ``softmax.sample`` on the whole logits with the same seed and offset, for every layout;
* ``top_logprobs`` returns the whole (ids, log-probs) on every rank: the single-process ids for
  every layout;
* ``linear_cross_entropy`` takes this rank's rows of the (V, D) classifier and returns the whole
  loss and grad_hidden on every rank and this rank's rows of grad_weight.

With the layout of :func:`default_shard` (shard boundaries on multiples of 32768 classes) the
results are bit-identical to the single-process ``softmax.softmax`` etc. on the whole tensor;
other layouts are within the same documented error bounds. Invalid input on any rank (a bad
argument, shards that do not tile ``[0, V)``, shapes or options that differ across ranks)
raises the same error on every rank, naming the failing rank: ``ValueError``, or ``TypeError``
for a dtype error or an argument of the wrong type, as the single-process functions raise (any
other exception a rank raises before the op, such as ``OverflowError``, becomes a ``ValueError``
naming its class). No autograd graph is recorded: a torch tensor that requires grad is refused.
A rank that cannot reach the op at all (``comm`` is not a communicator) cannot tell the others:
run under ``python3 -m mpi4py`` (see docs/ops/distributed.md).
See docs/ops/distributed.md.

Example (``mpiexec -n 2 python3 -m mpi4py script.py``: mpi4py's runner aborts the whole job
when a rank raises an uncaught exception, instead of leaving the others waiting)::

    from mpi4py import MPI
    import numpy as np, softmax
    comm = MPI.COMM_WORLD
    offset, size = softmax.dist.default_shard(V, comm.rank, comm.size)
    y = softmax.dist.log_softmax(comm, logits[:, offset:offset + size], offset)
"""

import re

from . import _core, _forms
from ._losses import _augment

if not hasattr(_core, "_dist_softmax"):
    raise ImportError("softmax.dist: this build of softmax has no MPI support "
                      "(build with Open MPI installed: apt-get install libopenmpi-dev openmpi-bin)")

__all__ = ["softmax", "log_softmax", "logsumexp", "argmax", "cross_entropy", "linear_cross_entropy", "sample", "top_logprobs", "default_shard", "SHARD_ALIGN"]

#: Shard boundaries on multiples of this give bit-identical results.
SHARD_ALIGN = _core._dist_shard_align


def _fcomm(comm):
    try:
        return comm.py2f()
    except AttributeError:
        raise TypeError("softmax.dist: comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD)") from None


def _one_line(op, e):
    """The message a rank that failed before the op's agreement contributes to it: one line,
    without the Python-side "softmax.dist.OP: " prefix (the agreed error names the op), and for
    pybind11's type errors the signature the op takes (not the private binding's name)."""
    text = str(e)
    if "incompatible function arguments" in text:
        lines = text.splitlines()
        sig = next((ln.strip() for ln in lines if ln.strip().startswith("1. (")), "")
        sig = re.sub(r"^1\. \(fcomm: int, ", "(", sig)
        return f"an argument of softmax.dist.{op[6:]} has a type it does not take; it takes {sig}"
    what = (text.splitlines() or [""])[0]
    what = re.sub(r"^softmax[.:][\w.:]*: ", "", what)
    if not isinstance(e, (ValueError, TypeError)):  # those two keep their class
        what = f"{type(e).__name__}: {what}"
    return what


def _collective(op, comm, fn, *args, differentiable=()):
    """fn(fcomm, *args) for the collective op ``op``. If this rank fails before it reaches the
    op's agreement (an argument rejected while being converted), it joins that agreement as a
    failing rank (softmax::dist::fail_op), so every rank raises the same error instead of the
    others waiting forever. ``differentiable``: the arguments a torch user might expect
    gradients for; softmax.dist records no autograd graph, so a tensor among them that
    requires grad (with grad mode on) is refused instead of silently cut off the graph."""
    fcomm = _fcomm(comm)
    _core._dist_begin()
    try:
        if _forms.needs_grad(*differentiable):
            raise ValueError(
                "a tensor argument requires grad, but softmax.dist records no autograd graph "
                "(pass it detached, or use torch.no_grad(); cross_entropy and "
                "linear_cross_entropy give gradients with return_grad=True)")
        return fn(fcomm, *args)
    except Exception as e:
        if _core._dist_entered():
            raise
        try:
            _core._dist_fail(fcomm, op, _one_line(op, e), isinstance(e, TypeError))
        except Exception as agreed:
            raise agreed from e
        raise


def default_shard(vocab, rank, ranks):
    """(offset, size) of rank ``rank``'s classes out of ``vocab`` over ``ranks`` ranks: whole
    chunks of 32768 classes dealt out contiguously (bit-identical results)."""
    return _core._dist_default_shard(vocab, rank, ranks)


def _family(op, core_fn, comm, x, class_offset, axis, temperature, keepdims, dtype, out, threads):
    """softmax / log_softmax / logsumexp with softmax.softmax's dtype= / out= rules: a float64
    result of float32-family input computes in float64 (the input cast first); a float32-family
    result of float64 input computes in float64 and is rounded once."""
    def run(fcomm):
        plan = _forms.wide_plan(x, dtype, out)
        if plan is None:
            return core_fn(fcomm, x, class_offset, axis, temperature, keepdims, dtype, out, threads)
        xin = _forms.cast(x, "float64") if plan == "up" else x
        y = core_fn(fcomm, xin, class_offset, axis, temperature, keepdims, None, None, threads)
        if plan == "down":
            y = y.astype(_forms.dtype_name(dtype) or _forms.dtype_name(out.dtype))
        if out is None:
            return y
        import numpy as np
        np.copyto(out, y, casting="same_kind")
        return out
    return _collective(op, comm, run, differentiable=(x,))


def softmax(comm, x, class_offset, axis=-1, *, temperature=1.0, dtype=None, out=None, threads=0):
    """This rank's shard of softmax(x / temperature) over the sharded class axis ``axis``.
    ``dtype`` / ``out`` as in ``softmax.softmax`` (float64 output of float32 input computes in
    float64)."""
    return _family("dist::softmax", _core._dist_softmax, comm, x, class_offset, axis, temperature,
                   False, dtype, out, threads)


def log_softmax(comm, x, class_offset, axis=-1, *, temperature=1.0, dtype=None, out=None,
                threads=0):
    """This rank's shard of log_softmax(x / temperature) over the sharded class axis."""
    return _family("dist::log_softmax", _core._dist_log_softmax, comm, x, class_offset, axis,
                   temperature, False, dtype, out, threads)


def logsumexp(comm, x, class_offset, axis=-1, *, temperature=1.0, keepdims=False, dtype=None,
              out=None, threads=0):
    """logsumexp(x / temperature) over the sharded class axis: the whole result, every rank."""
    return _family("dist::logsumexp", _core._dist_logsumexp, comm, x, class_offset, axis,
                   temperature, keepdims, dtype, out, threads)


def argmax(comm, x, class_offset, axis=-1, *, keepdims=False, out=None, threads=0):
    """Global class id of each row's first maximum (first NaN if any), on every rank."""
    return _collective("dist::argmax", comm, _core._dist_argmax, x, class_offset, axis, 1.0,
                       keepdims, None, out, threads)


def cross_entropy(comm, input, target, class_offset, weight=None, *, ignore_index=-100,
                  reduction="mean", label_smoothing=0.0, z_loss=0.0, normalizer=1.0,
                  grad_scale=1.0, return_grad=False, return_lse=False, return_log_probs=False,
                  threads=0):
    """softmax.cross_entropy with the class axis (axis 1, or 0 for 1-d input) sharded.

    ``input``: this rank's shard of the logits, (N, n_r), (N, n_r, d1, ...) or (n_r,).
    ``target``: hard class ids (global ids, the same array on every rank), or soft targets
    sharded like ``input``. ``weight``: the whole (C,) class-weight vector on every rank. Every
    option means what it means in ``softmax.cross_entropy`` (label smoothing and z-loss from the
    global statistics). Returns the whole loss on every rank, or the tuple
    ``(loss, grad, lse, log_probs)`` of the requested items: ``grad`` and ``log_probs`` are this
    rank's shard, ``lse`` whole. Arrays of the input's kind (NumPy, or torch tensors for torch
    input); no autograd graph (a tensor that requires grad is refused): pass
    ``return_grad=True``."""
    return _collective("dist::cross_entropy", comm, _core._dist_cross_entropy, input, target,
                       class_offset, weight, ignore_index, reduction, label_smoothing, z_loss,
                       normalizer, grad_scale, return_grad, return_lse, return_log_probs, threads,
                       differentiable=(input, target))


def linear_cross_entropy(comm, hidden, weight, target, class_offset, *, bias=None,
                         class_weight=None, ignore_index=-100, reduction="mean",
                         label_smoothing=0.0, z_loss=0.0, normalizer=1.0, grad_scale=1.0,
                         vocab_chunk=0, return_grad=False, return_lse=False, grad_output=None,
                         threads=0):
    """softmax.linear_cross_entropy with the classifier sharded by vocabulary rows.

    ``hidden``: (N, D) float32, the same on every rank. ``weight``: this rank's rows
    ``[class_offset, class_offset + n_r)`` of the (V, D) float32 classifier; ``bias``: this
    rank's (n_r,) entries of the (V,) output bias (logits = hidden @ weight.T + bias), or None.
    ``target``: (N,) global class ids, every rank. Returns the whole loss on every rank, or
    ``(loss, grad_hidden, grad_weight[, grad_bias][, lse])`` with ``return_grad`` (grad_hidden
    whole and the same on every rank, grad_weight and grad_bias this rank's rows). The (N, V)
    logits are never held."""
    def run(fcomm):
        h, w = (hidden, weight) if bias is None else _augment(hidden, weight, bias)
        res = _core._dist_linear_cross_entropy(
            fcomm, h, w, target, class_offset, class_weight, ignore_index, reduction,
            label_smoothing, z_loss, normalizer, grad_scale, vocab_chunk, return_grad, return_lse,
            grad_output, threads)
        if bias is None or not return_grad:
            return res
        loss, gh, gw = res[:3]
        return (loss, gh[:, :-1], gw[:, :-1], gw[:, -1]) + tuple(res[3:])
    return _collective("dist::linear_cross_entropy", comm, run,
                       differentiable=(hidden, weight, bias))


def sample(comm, logits, class_offset, num_samples=None, *, temperature=1.0, top_k=0, top_p=1.0,
           min_p=0.0, method="inverse_cdf", seed=0, offset=0, streams=None, threads=0):
    """softmax.sample with the vocabulary sharded: ``logits`` is this rank's (B, n_r) shard.

    Every keyword means what it means to ``softmax.sample`` (scalars or one value per row;
    seed / offset scalars or per row) and must be the same on every rank. Returns the global
    token ids, the same on every rank and the same as the single-process call, for any layout.
    The logit processors are not available here."""
    return _collective("dist::sample", comm, _core._dist_sample, logits, class_offset, num_samples,
                       temperature, top_k, top_p, min_p, method, seed, offset, streams, threads)


def top_logprobs(comm, logits, n, class_offset, *, temperature=1.0, threads=0):
    """softmax.top_logprobs with the vocabulary sharded: ``logits`` is this rank's (B, n_r) shard
    of classes ``[class_offset, class_offset + n_r)`` (f32/f64/bf16/f16).

    Returns ``(ids, logprobs)``, each (B, n), the same on every rank: the n most probable global
    ids under softmax(logits / temperature) (lowest id on ties) and their log-probabilities
    (float64 for float64 logits, else float32). The ids are the single-process ids for every
    layout; the log-probs are its bits when every shard starts on a multiple of 32768 (the
    default layout), otherwise within the summation-order bound of softmax.top_logprobs. n and
    temperature must be the same on every rank."""
    return _collective("dist::top_logprobs", comm, _core._dist_top_logprobs, logits, n,
                       class_offset, temperature, threads)
