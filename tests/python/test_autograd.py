# Autograd of every differentiable op against torch's own autograd (float32, float64,
# bfloat16) and torch.autograd.gradcheck in float64 (f32-only ops: in f32 through casts, with
# tolerances for f32 rounding); nn.Module wrappers against their torch.nn namesakes; double
# backward raises.
import math

import pytest

torch = pytest.importorskip("torch")
import softmax as sm  # noqa: E402
import softmax.nn as snn  # noqa: E402


def rand(*shape, dtype=torch.float64, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_()


def grads(fn, *xs, seed=1):
    """Forward fn, backward of sum(w * y) with fixed random w; returns (y, grads)."""
    y = fn(*xs)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.dtype)
    gs = torch.autograd.grad((y * w).sum(), [x for x in xs if x.requires_grad])
    return y, gs


def compare(ours, ref, xs, tol):
    y1, g1 = grads(ours, *xs)
    y2, g2 = grads(ref, *[x.detach().clone().requires_grad_(x.requires_grad) for x in xs])
    assert y1.dtype == y2.dtype
    torch.testing.assert_close(y1.double(), y2.double(), rtol=tol, atol=tol)
    for a, b in zip(g1, g2):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a.double(), b.double(), rtol=tol, atol=tol)


TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_family_vs_torch(dtype, dim):
    x = rand(5, 7, dtype=dtype)
    compare(lambda t: sm.softmax(t, dim=dim), lambda t: torch.softmax(t, dim), [x], TOL[dtype])
    compare(lambda t: sm.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim), [x], TOL[dtype])
    compare(lambda t: sm.softmax(t, dim, temperature=0.7), lambda t: torch.softmax(t / 0.7, dim),
            [x], TOL[dtype] * 4)
    if dtype != torch.bfloat16:
        compare(lambda t: sm.logsumexp(t, dim, keepdim=True),
                lambda t: torch.logsumexp(t, dim, keepdim=True), [x], TOL[dtype])
        compare(lambda t: sm.logsumexp(t, dim, temperature=2.0),
                lambda t: torch.logsumexp(t / 2.0, dim), [x], TOL[dtype])
    compare(sm.sigmoid, torch.sigmoid, [x], TOL[dtype])


def test_multi_axis_and_dtype_upcast_grads():
    x = rand(3, 4, 5, dtype=torch.float32)
    compare(lambda t: sm.softmax(t, axis=(0, 2)),
            lambda t: torch.softmax(t.permute(1, 0, 2).reshape(4, -1), -1).reshape(4, 3, 5).permute(1, 0, 2),
            [x], 2e-5)
    compare(lambda t: sm.logsumexp(t, axis=None), lambda t: torch.logsumexp(t.reshape(-1), 0), [x], 2e-5)
    compare(lambda t: sm.softmax(t, dtype=torch.float64), lambda t: torch.softmax(t.double(), -1),
            [x], 1e-12)


def test_gradcheck_f64():
    x = rand(3, 6)
    opts = dict(eps=1e-6, atol=1e-8, rtol=1e-6)
    assert torch.autograd.gradcheck(lambda t: sm.softmax(t, 1, temperature=1.3), (x,), **opts)
    assert torch.autograd.gradcheck(lambda t: sm.log_softmax(t, 0), (x,), **opts)
    assert torch.autograd.gradcheck(lambda t: sm.logsumexp(t, 1), (x,), **opts)
    assert torch.autograd.gradcheck(sm.sigmoid, (x,), **opts)
    s, b = rand(2, 4, 5), rand(1, 4, 5, scale=0.5)
    assert torch.autograd.gradcheck(
        lambda s, b: sm.masked_softmax(s, causal=True, scale=0.5, softcap=3.0, bias=b), (s, b), **opts)
    t = torch.tensor([1, 0, 5])
    w = torch.rand(6, dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(
        lambda x: sm.cross_entropy(x, t, w, label_smoothing=0.1, z_loss=0.01), (x,), **opts)
    q = torch.softmax(rand(3, 6, seed=3), 1).detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, q: sm.cross_entropy(x, q, reduction="sum"), (x, q), **opts)
    assert torch.autograd.gradcheck(
        lambda x: sm.nll_loss(torch.log_softmax(x, 1), t, reduction="none"), (x,), **opts)


def test_gradcheck_f32_only_ops_through_casts():
    # linear_cross_entropy and attention compute in f32: gradcheck of the f64 -> f32 -> f64
    # composition with f32-sized steps and tolerances.
    opts = dict(eps=1e-3, atol=5e-3, rtol=1e-2)
    h, w, b = rand(4, 3, scale=1.0), rand(7, 3, seed=2, scale=1.0), rand(7, seed=3, scale=1.0)
    t = torch.tensor([0, 6, 3, 2])
    assert torch.autograd.gradcheck(
        lambda h, w, b: sm.linear_cross_entropy(h.float(), w.float(), t, bias=b.float()).double(),
        (h, w, b), **opts)
    q, k, v = rand(1, 2, 3, 4, scale=1.0), rand(1, 1, 5, 4, seed=4, scale=1.0), rand(1, 1, 5, 3, seed=5)
    assert torch.autograd.gradcheck(
        lambda q, k, v: sm.attention(q.float(), k.float(), v.float(), causal=True,
                                     align="bottom_right").double(), (q, k, v), **opts)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_cross_entropy_vs_torch(reduction, dtype):
    x = rand(6, 9, 2, dtype=dtype)
    t = torch.tensor([[0, 8], [3, -100], [2, 2], [7, 1], [5, 0], [4, 6]])
    w = torch.linspace(0.5, 1.5, 9, dtype=torch.float64).to(dtype)
    f = dict(ignore_index=-100, reduction=reduction, label_smoothing=0.05)
    compare(lambda x: sm.cross_entropy(x, t, w, **f),
            lambda x: torch.nn.functional.cross_entropy(x, t, w, **f), [x], TOL[dtype] * 10)
    lp = rand(6, 9, dtype=dtype)
    compare(lambda x: sm.nll_loss(x, t[:, 0], w, reduction=reduction),
            lambda x: torch.nn.functional.nll_loss(x, t[:, 0], w, reduction=reduction),
            [lp], TOL[dtype] * 10)


def test_cross_entropy_soft_targets_grad_vs_torch():
    x = rand(5, 7)
    q = torch.softmax(rand(5, 7, seed=9), 1).detach().requires_grad_()
    for reduction in ("mean", "sum", "none"):
        compare(lambda x, q: sm.cross_entropy(x, q, reduction=reduction, label_smoothing=0.2),
                lambda x, q: torch.nn.functional.cross_entropy(x, q, reduction=reduction,
                                                               label_smoothing=0.2),
                [x, q], 1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_cross_entropy_vs_torch(reduction, bias):
    h = rand(16, 8, dtype=torch.float32, scale=1.0)
    w = rand(50, 8, dtype=torch.float32, seed=2, scale=0.5)
    b = rand(50, dtype=torch.float32, seed=3) if bias else None
    t = torch.randint(0, 50, (16,), generator=torch.Generator().manual_seed(4))
    t[3] = -100
    xs = [h, w] + ([b] if bias else [])

    def ours(h, w, b=None):
        return sm.linear_cross_entropy(h, w, t, bias=b, reduction=reduction, vocab_chunk=16)

    def ref(h, w, b=None):
        return torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w, b), t,
                                                 reduction=reduction)
    compare(ours, ref, xs, 2e-5)


def ref_attention(q, k, v, scale=None, causal=False, bottom_right=False, window=(-1, -1),
                  softcap=0.0, slopes=None, bias=None, mask=None):
    """Materialised attention written from the rules of softmax/attention.hpp, in torch."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    sq, sk = q.shape[2], k.shape[2]
    s = (q @ k.transpose(-1, -2)) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(sq).reshape(-1, 1) + (sk - sq if bottom_right else 0)
    j = torch.arange(sk).reshape(1, -1)
    if slopes is not None:
        s = s - torch.tensor(slopes, dtype=s.dtype).reshape(1, -1, 1, 1) * (i - j).abs()
    if bias is not None:
        s = s + bias
    keep = torch.ones(sq, sk, dtype=torch.bool)
    if causal:
        keep &= j <= i
    if window[0] >= 0:
        keep &= j >= i - window[0]
    if window[1] >= 0:
        keep &= j <= i + window[1]
    if mask is not None:
        keep = keep & mask
    s = s.masked_fill(~keep, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)  # fully masked rows: 0
    return p @ v


ATTN_CASES = {
    "plain": ({}, {}),
    "causal": (dict(causal=True), dict(causal=True)),
    "causal_bottom_right": (dict(causal=True, align="bottom_right"), dict(causal=True, bottom_right=True)),
    "window": (dict(window_left=5, window_right=2), dict(window=(5, 2))),
    "softcap_scale": (dict(softcap=2.0, scale=0.3), dict(softcap=2.0, scale=0.3)),
    "alibi": (dict(alibi_slopes=[0.5, 0.25, 0.125, 0.0625], causal=True), dict(slopes=[0.5, 0.25, 0.125, 0.0625], causal=True)),
}


@pytest.mark.parametrize("name", list(ATTN_CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_grads_vs_torch_materialised(name, dtype):
    ours_kw, ref_kw = ATTN_CASES[name]
    q = rand(2, 4, 70, 16, dtype=dtype, scale=1.0)
    k = rand(2, 2, 90, 16, dtype=dtype, seed=2, scale=1.0)  # GQA: 2 query heads per kv head
    v = rand(2, 2, 90, 8, dtype=dtype, seed=3, scale=1.0)
    compare(lambda q, k, v: sm.attention(q, k, v, **ours_kw),
            lambda q, k, v: ref_attention(q.double(), k.double(), v.double(), **ref_kw).to(dtype),
            [q, k, v], 2e-4 if dtype == torch.float32 else 3e-2)


def test_attention_mask_and_bias_inputs():
    q, k, v = rand(1, 2, 9, 4, dtype=torch.float32), rand(1, 2, 11, 4, dtype=torch.float32, seed=2), \
        rand(1, 2, 11, 4, dtype=torch.float32, seed=3)
    keep = torch.rand(9, 11, generator=torch.Generator().manual_seed(5)) < 0.6
    keep[2] = False  # a fully masked row
    bias = torch.randn(2, 9, 11, generator=torch.Generator().manual_seed(6))
    compare(lambda q, k, v: sm.attention(q, k, v, mask=keep, bias=bias),
            lambda q, k, v: ref_attention(q.double(), k.double(), v.double(), mask=keep,
                                          bias=bias.double()).float(), [q, k, v], 2e-4)
    with pytest.raises(NotImplementedError, match="bias"):
        sm.attention(q, k, v, bias=bias.requires_grad_())


def test_double_backward_raises_clearly():
    x = rand(3, 4)
    y = sm.softmax(x)
    (g,) = torch.autograd.grad((y ** 2).sum(), x, create_graph=True)  # dy depends on x
    with pytest.raises(RuntimeError, match="twice"):
        g.sum().backward()


def test_no_grad_and_detached_inputs_give_plain_tensors():
    x = rand(3, 4, dtype=torch.float32)
    with torch.no_grad():
        assert sm.softmax(x).grad_fn is None
    assert sm.softmax(x.detach()).grad_fn is None
    assert sm.softmax(x).grad_fn is not None


def test_nn_modules_match_torch():
    x = rand(8, 10, dtype=torch.float32)
    t = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(1))
    w = torch.rand(10) + 0.5
    compare(lambda x: snn.CrossEntropyLoss(w, label_smoothing=0.1)(x, t),
            lambda x: torch.nn.CrossEntropyLoss(w, label_smoothing=0.1)(x, t), [x], 2e-5)
    compare(lambda x: snn.NLLLoss(reduction="sum")(x, t),
            lambda x: torch.nn.NLLLoss(reduction="sum")(x, t), [x], 2e-5)
    compare(lambda x: snn.Softmax(0)(x), lambda x: torch.nn.Softmax(0)(x), [x], 2e-5)
    compare(lambda x: snn.LogSoftmax(1)(x), lambda x: torch.nn.LogSoftmax(1)(x), [x], 2e-5)
    compare(snn.Sigmoid(), torch.nn.Sigmoid(), [x], 2e-5)
    torch.manual_seed(0)
    ours = snn.LinearCrossEntropyLoss(6, 10, bias=True)
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 10)
    h = rand(4, 2, 6, dtype=torch.float32)
    tt = torch.randint(0, 10, (4, 2), generator=torch.Generator().manual_seed(2))
    l1, l2 = ours(h, tt), torch.nn.functional.cross_entropy(lin(h).reshape(-1, 10), tt.reshape(-1))
    torch.testing.assert_close(l1, l2, rtol=2e-5, atol=2e-5)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(ours.weight.grad, lin.weight.grad, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(ours.bias.grad, lin.bias.grad, rtol=2e-5, atol=2e-5)
