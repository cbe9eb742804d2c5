# scaled_dot_product_attention against a torch reference implementation of PyTorch 2.x's
# F.scaled_dot_product_attention written here (torch 1.13 has none): rank 3 and 4, boolean and
# float attn_mask, is_causal, scale, GQA, gradients; attention_backward called directly
# (NumPy in, NumPy out) against torch autograd of the materialised attention.
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import softmax as sm  # noqa: E402


def ref_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """PyTorch 2.x's documented reference of F.scaled_dot_product_attention (dropout 0), with
    key/value heads repeated for grouped-query attention."""
    L, S = query.size(-2), key.size(-2)
    scale_factor = 1 / math.sqrt(query.size(-1)) if scale is None else scale
    if query.dim() == 4 and key.size(1) != query.size(1):
        g = query.size(1) // key.size(1)
        key, value = key.repeat_interleave(g, 1), value.repeat_interleave(g, 1)
    attn_bias = torch.zeros(L, S, dtype=query.dtype)
    if is_causal:
        temp_mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=0)
        attn_bias = attn_bias.masked_fill(temp_mask.logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn_bias = attn_bias.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            attn_bias = attn_bias + attn_mask
    attn_weight = query @ key.transpose(-2, -1) * scale_factor
    attn_weight = torch.softmax(attn_weight + attn_bias, dim=-1)
    return attn_weight @ value


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).requires_grad_()


def check(args, kwargs, tol=2e-5):
    ours = sm.scaled_dot_product_attention(*args, **kwargs)
    ref_args = [a.detach().double().requires_grad_() for a in args]
    ref_kwargs = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v)
                  for k, v in kwargs.items()}
    ref = ref_sdpa(*ref_args, **ref_kwargs)
    torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol)
    w = torch.randn(ours.shape, generator=torch.Generator().manual_seed(9))
    g1 = torch.autograd.grad((ours * w).sum(), args)
    g2 = torch.autograd.grad((ref * w.double()).sum(), ref_args)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a.double(), b, rtol=10 * tol, atol=10 * tol)


@pytest.mark.parametrize("is_causal", [False, True])
def test_rank3(is_causal):
    check((rand(2, 33, 8), rand(2, 33, 8, seed=1), rand(2, 33, 5, seed=2)), dict(is_causal=is_causal))


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("scale", [None, 0.2])
def test_rank4_gqa(is_causal, scale):
    check((rand(2, 4, 70, 16), rand(2, 2, 70, 16, seed=1), rand(2, 2, 70, 16, seed=2)),
          dict(is_causal=is_causal, scale=scale))


def test_rank4_sq_ne_sk_causal_top_left():
    check((rand(1, 2, 10, 8), rand(1, 2, 25, 8, seed=1), rand(1, 2, 25, 8, seed=2)), dict(is_causal=True))


def test_bool_and_float_masks():
    q, k, v = rand(2, 3, 12, 8), rand(2, 3, 15, 8, seed=1), rand(2, 3, 15, 8, seed=2)
    keep = torch.rand(12, 15, generator=torch.Generator().manual_seed(3)) < 0.7
    keep[:, 0] = True  # torch's reference gives NaN for a row that keeps nothing
    check((q, k, v), dict(attn_mask=keep))
    add = torch.randn(3, 12, 15, generator=torch.Generator().manual_seed(4))
    check((q, k, v), dict(attn_mask=add))


def test_errors_and_numpy():
    q = np.zeros((1, 2, 4), np.float32)
    with pytest.raises(ValueError, match="dropout"):
        sm.scaled_dot_product_attention(q, q, q, dropout_p=0.1)
    with pytest.raises(ValueError, match="not both"):
        sm.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((2, 2), bool), is_causal=True)
    with pytest.raises(ValueError, match="rank"):
        sm.scaled_dot_product_attention(q[0], q[0], q[0])
    out = sm.scaled_dot_product_attention(q, q, q + 1)
    assert isinstance(out, np.ndarray) and out.shape == (1, 2, 4)
    np.testing.assert_allclose(out, np.ones((1, 2, 4)))


def test_attention_backward_direct_numpy_vs_torch_autograd():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 2, 20, 8)).astype(np.float32)
    k = rng.standard_normal((1, 1, 30, 8)).astype(np.float32)
    v = rng.standard_normal((1, 1, 30, 4)).astype(np.float32)
    dout = rng.standard_normal((1, 2, 20, 4)).astype(np.float32)
    kw = dict(causal=True, align="bottom_right", window_left=12, softcap=4.0)
    out, lse = sm.attention(q, k, v, return_lse=True, **kw)
    dq, dk, dv = sm.attention_backward(q, k, v, out, lse, dout, **kw)
    assert all(isinstance(t, np.ndarray) for t in (dq, dk, dv))
    tq, tk, tv = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (q, k, v))
    s = tq @ tk.repeat_interleave(2, 1).transpose(-1, -2) / math.sqrt(8)
    s = 4.0 * torch.tanh(s / 4.0)
    i = torch.arange(20).reshape(-1, 1) + 10
    j = torch.arange(30).reshape(1, -1)
    s = s.masked_fill(~((j <= i) & (j >= i - 12)), float("-inf"))
    ref = torch.softmax(s, -1) @ tv.repeat_interleave(2, 1)
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-5)
    ref.backward(torch.tensor(dout, dtype=torch.float64))
    for got, want in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(got, want.grad.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="dout"):
        sm.attention_backward(q, k, v, out, lse, dout[:, :, :5])
