"""masked_softmax, attention and scaled_dot_product_attention: the core's fused ops plus
autograd, rank-3 inputs and torch's SDPA names."""
from . import _core, _forms
from ._docs import with_note

__all__ = ["masked_softmax", "attention", "scaled_dot_product_attention"]


def _ag():
    """softmax._autograd (imports torch), loaded on first use and then kept."""
    ag = _AG[0]
    if ag is None:
        from . import _autograd as ag
        _AG[0] = ag
    return ag


_AG = [None]


def _mask_opts(scale, softcap, causal, align, window_left, window_right, alibi_slopes, bias, mask):
    return dict(scale=scale, softcap=softcap, causal=causal, align=align, window_left=window_left,
                window_right=window_right, alibi_slopes=alibi_slopes, bias=bias, mask=mask)


def masked_softmax(scores, *, scale=None, softcap=0.0, causal=False, align="top_left",
                   window_left=-1, window_right=-1, alibi_slopes=None, bias=None, mask=None,
                   return_lse=False, dtype=None, out=None, threads=0):
    opts = _mask_opts(scale, softcap, causal, align, window_left, window_right, alibi_slopes,
                      None, mask)
    del opts["bias"]  # passed on its own: it may need a gradient
    if not return_lse and out is None and _forms.needs_grad(scores, bias):
        return _ag().masked_softmax(scores, bias, opts, dtype, threads)
    return _core.masked_softmax(scores, bias=bias, return_lse=return_lse, dtype=dtype, out=out,
                                threads=threads, **opts)


def _rank4(t, name, op):
    r = t.dim() if _forms.is_tensor(t) else getattr(t, "ndim", None)
    if r == 3:
        return t.unsqueeze(1) if _forms.is_tensor(t) else t[:, None]
    if r != 4:
        raise ValueError(f"softmax.{op}: argument '{name}' has rank {r}: must be 3 (N, L, E) "
                         "or 4 (N, H, L, E)")
    return t


def attention(q, k, v, *, scale=None, softcap=0.0, causal=False, align="top_left",
              window_left=-1, window_right=-1, alibi_slopes=None, bias=None, mask=None,
              return_lse=False, dtype=None, out=None, threads=0):
    opts = _mask_opts(scale, softcap, causal, align, window_left, window_right, alibi_slopes,
                      bias, mask)
    rank3 = getattr(q, "ndim", None) == 3
    if rank3:
        q, k, v = (_rank4(t, n, "attention") for t, n in ((q, "q"), (k, "k"), (v, "v")))
        if out is not None:
            out = _rank4(out, "out", "attention")
    if not return_lse and out is None and _forms.needs_grad(q, k, v, bias):
        y = _ag().attention(q, k, v, opts, dtype, threads)
    else:
        y = _core.attention(q, k, v, return_lse=return_lse, dtype=dtype, out=out,
                            threads=threads, **opts)
    if not rank3:
        return y
    if return_lse:
        return y[0][:, 0], y[1][:, 0]
    return y[:, 0]


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, *, threads=0):
    """scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, *, threads=0)

    ``torch.nn.functional.scaled_dot_product_attention`` (PyTorch 2.x) on the fused kernel.

    ``softmax(query key^T * scale + mask) value`` without materialising the scores;
    differentiable for torch tensors (the fused FlashAttention-2 backward). Grouped-query
    attention when the query heads are a multiple of the key heads.

    Parameters
    ----------
    query : array_like or tensor, shape (N, L, E) or (N, Hq, L, E)
        float32, float16 (bfloat16 via torch).
    key : array_like or tensor, shape (N, S, E) or (N, Hkv, S, E)
        Keys, the dtype of `query`.
    value : array_like or tensor, shape (N, S, Ev) or (N, Hkv, S, Ev)
        Values, the dtype of `query`.
    attn_mask : array_like or tensor, optional
        Broadcastable to (N, Hq, L, S). Boolean: True = take part in attention (as torch);
        floating: added to the scores (no gradient). A row that keeps nothing gives 0
        (torch: NaN).
    dropout_p : float, optional
        Must be 0.0: dropout is not offered (apply it outside, or use torch's op in training
        with dropout).
    is_causal : bool, optional
        Causal mask aligned top-left (torch's ``tril``); not together with `attn_mask`.
    scale : float, optional
        Score scale; default ``1 / sqrt(E)``.
    threads : int, optional
        Worker threads, 0 = OpenMP default.

    Returns
    -------
    out : ndarray or tensor, shape (N, L, Ev) or (N, Hq, L, Ev)
        The container kind and dtype of `query`.

    Raises
    ------
    ValueError
        dropout_p != 0, attn_mask with is_causal, ranks other than 3 or 4, mismatched dims.
    TypeError
        Unsupported dtypes (float64 is not supported), unknown keywords.

    Examples
    --------
    >>> import numpy as np, softmax
    >>> q = np.zeros((1, 1, 2), np.float32); v = np.array([[[1.0], [3.0]]], np.float32)
    >>> softmax.scaled_dot_product_attention(q, np.zeros((1, 2, 2), np.float32), v)
    array([[[2.]]], dtype=float32)
    """
    if dropout_p != 0.0:
        raise ValueError(f"softmax.scaled_dot_product_attention: dropout_p = {dropout_p!r}: "
                         "dropout is not offered by the fused kernel; must be 0.0")
    if is_causal and attn_mask is not None:
        raise ValueError("softmax.scaled_dot_product_attention: pass either attn_mask or "
                         "is_causal, not both (as torch)")
    bias = mask = None
    if attn_mask is not None:
        kind = getattr(attn_mask, "dtype", None)
        is_bool = str(kind) in ("bool", "torch.bool")
        if is_bool:
            mask = attn_mask
        else:
            bias = attn_mask
    return attention(query, key, value, scale=scale, causal=bool(is_causal), bias=bias,
                     mask=mask, threads=threads)


if hasattr(_core, "masked_softmax"):
    masked_softmax.__doc__ = with_note(_core.masked_softmax, """Differentiable for torch tensors
that require grad (scores and bias) when neither `return_lse` nor `out` is given: backward
runs the fused masked-softmax backward on the saved output.""")
    attention.__doc__ = with_note(_core.attention, """Also accepts rank-3 (N, L, E) operands (one
head). Differentiable for torch tensors that require grad (q, k, v) when neither `return_lse`
nor `out` is given: backward is the fused FlashAttention-2 backward (attention_backward),
which recomputes each score tile from the saved logsumexp.""")
