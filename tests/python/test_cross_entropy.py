# cross_entropy / nll_loss / linear_cross_entropy against torch 1.13.
import numpy as np
import pytest

import softmax as sm

torch = pytest.importorskip("torch")
F = torch.nn.functional

if not hasattr(sm, "cross_entropy"):
    pytest.skip("cross_entropy family not built", allow_module_level=True)


def data(n=6, c=11, extra=(), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c) + extra, generator=g, dtype=dtype) * 3
    t = torch.randint(0, c, (n,) + extra, generator=g)
    w = torch.rand(c, generator=g, dtype=dtype) + 0.5
    return x, t, w


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [(), (3,)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_and_grad_match_torch(reduction, extra, smoothing, weighted):
    x, t, w = data(extra=extra)
    t[0] = -100  # ignored
    w = w if weighted else None
    xr = x.clone().requires_grad_()
    ref = F.cross_entropy(xr, t, weight=w, reduction=reduction, label_smoothing=smoothing)
    (gref,) = torch.autograd.grad(ref.sum(), xr)
    loss, grad = sm.cross_entropy(x, t, w, reduction=reduction, label_smoothing=smoothing,
                                  return_grad=True)
    assert isinstance(loss, torch.Tensor) and loss.shape == ref.shape
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, gref, rtol=1e-12, atol=1e-12)
    # NumPy path gives NumPy results, the same numbers
    ln = sm.cross_entropy(x.numpy(), t.numpy(), None if w is None else w.numpy(),
                          reduction=reduction, label_smoothing=smoothing)
    assert isinstance(ln, np.ndarray)
    np.testing.assert_allclose(ln, ref.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_cross_entropy_float32_lse_logprobs_zloss():
    x, t, _ = data(dtype=torch.float32)
    loss, lse, lp = sm.cross_entropy(x, t, return_lse=True, return_log_probs=True)
    torch.testing.assert_close(loss, F.cross_entropy(x, t), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lse, torch.logsumexp(x, 1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lp, torch.log_softmax(x, 1), rtol=1e-6, atol=1e-6)
    z = sm.cross_entropy(x, t, z_loss=1e-2)
    torch.testing.assert_close(z, F.cross_entropy(x, t) + 1e-2 * (torch.logsumexp(x, 1) ** 2).mean(),
                               rtol=1e-6, atol=1e-6)


def test_soft_targets_and_all_ignored():
    x, _, _ = data()
    q = torch.softmax(torch.randn(x.shape, dtype=x.dtype), 1)
    torch.testing.assert_close(sm.cross_entropy(x, q), F.cross_entropy(x, q), rtol=1e-12,
                               atol=1e-12)
    t = torch.full((x.shape[0],), -100)
    loss, grad = sm.cross_entropy(x, t, return_grad=True)
    assert torch.isnan(loss) and torch.isnan(F.cross_entropy(x, t))
    assert torch.all(grad == 0)


def test_nll_loss_matches_torch():
    x, t, w = data()
    lp = torch.log_softmax(x, 1)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(sm.nll_loss(lp, t, w, reduction=reduction),
                                   F.nll_loss(lp, t, w, reduction=reduction), rtol=1e-12,
                                   atol=1e-12)
    lpr = lp.clone().requires_grad_()
    (g,) = torch.autograd.grad(F.nll_loss(lpr, t), lpr)
    _, grad = sm.nll_loss(lp, t, return_grad=True)
    torch.testing.assert_close(grad, g)
    # lists of ints are class ids, not floats
    np.testing.assert_allclose(sm.nll_loss(lp.numpy(), t.tolist()), F.nll_loss(lp, t).item())


def test_linear_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(9, 16, generator=g)
    W = torch.randn(300, 16, generator=g) * 0.3
    t = torch.randint(0, 300, (9,), generator=g)
    t[2] = -100
    hr, Wr = h.clone().requires_grad_(), W.clone().requires_grad_()
    ref = F.cross_entropy(hr @ Wr.T, t, label_smoothing=0.1)
    gh, gw = torch.autograd.grad(ref, (hr, Wr))
    loss, grad_h, grad_w, lse = sm.linear_cross_entropy(h, W, t, label_smoothing=0.1,
                                                        vocab_chunk=64, return_grad=True,
                                                        return_lse=True)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_h, gh, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad_w, gw, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(lse, torch.logsumexp(h @ W.T, 1), rtol=1e-5, atol=1e-5)


def test_loss_errors():
    x, t, _ = data()
    bad = t.clone()
    bad[1] = 11
    with pytest.raises(ValueError, match="target"):
        sm.cross_entropy(x, bad)
    with pytest.raises(ValueError, match="reduction"):
        sm.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        sm.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError):
        sm.cross_entropy(x, t[:3])
    with pytest.raises(TypeError):
        sm.cross_entropy(x, t, return_grad="maybe")
