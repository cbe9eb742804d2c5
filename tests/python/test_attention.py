# masked_softmax / masked_softmax_backward / attention against torch 1.13 references.
import math

import numpy as np
import pytest

import softmax as sm

torch = pytest.importorskip("torch")

if not hasattr(sm, "attention"):
    pytest.skip("attention family not built", allow_module_level=True)


def ref_masked(s, keep, scale=1.0):
    x = (s * scale).masked_fill(~keep, float("-inf"))
    y = torch.softmax(x, -1)
    return torch.nan_to_num(y, nan=0.0)  # fully masked rows -> 0


@pytest.mark.parametrize("sq,sk", [(5, 5), (3, 7), (7, 3)])
@pytest.mark.parametrize("align", ["top_left", "bottom_right"])
def test_masked_softmax_causal(sq, sk, align):
    s = torch.randn(2, 3, sq, sk, dtype=torch.float64)
    shift = 0 if align == "top_left" else sk - sq
    keep = torch.ones(sq, sk, dtype=torch.bool).tril(shift)
    y, lse = sm.masked_softmax(s, causal=True, align=align, scale=0.5, return_lse=True)
    torch.testing.assert_close(y, ref_masked(s, keep, 0.5), rtol=1e-13, atol=1e-15)
    ref_lse = torch.logsumexp((s * 0.5).masked_fill(~keep, float("-inf")), -1)
    torch.testing.assert_close(lse, ref_lse, rtol=1e-13, atol=1e-15)


def test_masked_softmax_bool_mask_bias_and_nan_in_masked_entries():
    s = torch.randn(4, 6)
    keep = torch.rand(4, 6) > 0.4
    keep[0] = False  # fully masked row
    s2 = s.clone()
    s2[~keep] = float("nan")  # masked entries never inject NaN
    bias = torch.randn(6)
    y = sm.masked_softmax(s2, mask=keep, bias=bias)
    ref = ref_masked(s + bias, keep)
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-7)
    assert torch.all(y[0] == 0)
    yn = sm.masked_softmax(s2.numpy(), mask=keep.numpy(), bias=bias.numpy())
    np.testing.assert_allclose(yn, ref.numpy(), rtol=1e-6, atol=1e-7)


def test_masked_softmax_backward_matches_autograd():
    s = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    x = (s * 0.7).masked_fill(~keep, float("-inf"))
    y = torch.softmax(x, -1)
    dy = torch.randn(2, 5, 5, dtype=torch.float64)
    (g,) = torch.autograd.grad(y, s, dy)
    got = sm.masked_softmax_backward(dy, y.detach(), causal=True, scale=0.7)
    torch.testing.assert_close(got, g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("hq,hkv", [(4, 4), (4, 2)])
def test_attention_matches_reference(causal, hq, hkv):
    g = torch.Generator().manual_seed(1)
    b, sq, sk, d, dv = 2, 37, 70, 16, 8
    q = torch.randn(b, hq, sq, d, generator=g)
    k = torch.randn(b, hkv, sk, d, generator=g)
    v = torch.randn(b, hkv, sk, dv, generator=g)
    out, lse = sm.attention(q, k, v, causal=causal, align="bottom_right", return_lse=True)
    assert out.shape == (b, hq, sq, dv) and lse.shape == (b, hq, sq)
    rep = hq // hkv
    kk = k.double().repeat_interleave(rep, 1)
    vv = v.double().repeat_interleave(rep, 1)
    sc = q.double() @ kk.transpose(-1, -2) / math.sqrt(d)
    if causal:
        keep = torch.ones(sq, sk, dtype=torch.bool).tril(sk - sq)
        sc = sc.masked_fill(~keep, float("-inf"))
    ref = torch.softmax(sc, -1) @ vv
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(lse.double(), torch.logsumexp(sc, -1), rtol=1e-5, atol=1e-5)
    # strided (transposed-layout) q and a NumPy round trip
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)
    torch.testing.assert_close(sm.attention(qt, k, v, causal=causal, align="bottom_right"), out,
                               rtol=0, atol=0)
    on = sm.attention(q.numpy(), k.numpy(), v.numpy(), causal=causal, align="bottom_right")
    np.testing.assert_array_equal(on, out.numpy())


def test_attention_errors():
    q = torch.randn(1, 3, 4, 8)
    k = torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError):
        sm.attention(q, k, k)  # 3 query heads on 2 kv heads
    with pytest.raises(ValueError, match="align"):
        sm.masked_softmax(torch.randn(2, 2), align="middle")
    with pytest.raises(ValueError):
        sm.masked_softmax(torch.randn(3))  # rank < 2
