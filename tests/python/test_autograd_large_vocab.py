# Autograd of the large-vocabulary losses (sampled, hierarchical, adaptive softmax) and of
# gumbel_softmax / sparsemax: values and gradients against torch autograd of references
# written here with torch ops (the same sampled candidates, the same tree paths, torch's own
# AdaptiveLogSoftmaxWithLoss with copied weights, the same Gumbel noise, a sort-based
# sparsemax), torch.autograd.gradcheck (float64; the float32-only losses through f64 -> f32 ->
# f64 casts with f32-sized steps and tolerances), the nn.Module wrappers, double backward.
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import softmax as sm  # noqa: E402
import softmax.nn as snn  # noqa: E402

F32_GRADCHECK = dict(eps=1e-3, atol=5e-3, rtol=1e-2)
F64_GRADCHECK = dict(eps=1e-6, atol=1e-8, rtol=1e-6)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def leaf(t):
    return t.detach().clone().requires_grad_()


def weights_for(y, seed=7):
    """A fixed random incoming gradient: per-example values that differ."""
    return torch.rand(y.shape, generator=gen(seed), dtype=torch.float64).to(y.dtype) + 0.25


def close(a, b, rtol, atol):
    assert a is not None and b is not None
    assert a.shape == b.shape
    torch.testing.assert_close(a.double(), b.double(), rtol=rtol, atol=atol)


# --- sampled softmax -------------------------------------------------------------------------


def torch_sampled_loss(w, b, x, labels, sampled, tec, sec, remove_hits=True, log_q=True):
    """tf.nn.sampled_softmax_loss's formula in torch, over the given candidates."""
    true_logits = (x[:, None, :] * w[labels]).sum(-1) + b[labels]
    samp_logits = x @ w[sampled].T + b[sampled]
    if log_q:
        true_logits = true_logits - torch.log(tec.to(x.dtype))
        samp_logits = samp_logits - torch.log(sec.to(x.dtype))
    if remove_hits:
        hits = (labels[:, :, None] == sampled[None, None, :]).any(1)
        samp_logits = samp_logits.masked_fill(hits, -math.inf)
    logits = torch.cat([true_logits, samp_logits], 1)
    return torch.logsumexp(logits, 1) - true_logits.sum(1) / labels.shape[1]


def sampled_case(num_true=1, v=40, d=6, n=9, seed=0):
    g = gen(seed)
    w = torch.randn(v, d, generator=g) * 0.5
    b = torch.randn(v, generator=g) * 0.2
    x = torch.randn(n, d, generator=g)
    labels = torch.randint(0, 12, (n, num_true), generator=g)
    return w, b, x, labels


@pytest.mark.parametrize("num_true,unique,sampler,hits,log_q", [
    (1, False, "log_uniform", True, True),
    (2, True, "uniform", True, False),
    (1, True, "log_uniform", False, True),
])
@pytest.mark.parametrize("incoming", ["mean", "weighted"])
def test_sampled_softmax_autograd_vs_torch(num_true, unique, sampler, hits, log_q, incoming):
    w, b, x, labels = sampled_case(num_true)
    kw = dict(num_true=num_true, unique=unique, sampler=sampler, remove_accidental_hits=hits,
              subtract_log_q=log_q, seed=5, offset=2)
    W, B, X = leaf(w), leaf(b), leaf(x)
    loss, sampled, tec, sec = sm.sampled_softmax_loss(W, B, labels, X, 15, 40,
                                                      return_samples=True, **kw)
    assert loss.grad_fn is not None and sampled.grad_fn is None
    # The samples of the autograd path are those of the plain call.
    plain = sm.sampled_softmax_loss(w, b, labels, x, 15, 40, return_samples=True, **kw)
    assert torch.equal(plain[1], sampled)
    torch.testing.assert_close(loss, plain[0], rtol=0, atol=0)
    W64, B64, X64 = (leaf(t.double()) for t in (w, b, x))
    ref = torch_sampled_loss(W64, B64, X64, labels, sampled, tec, sec, hits, log_q)
    close(loss, ref, 2e-5, 2e-5)
    wt = weights_for(loss) if incoming == "weighted" else torch.full_like(loss, 1 / len(loss))
    ours = torch.autograd.grad((loss * wt).sum(), (W, B, X))
    theirs = torch.autograd.grad((ref * wt.double()).sum(), (W64, B64, X64))
    for a, r in zip(ours, theirs):
        close(a, r, 1e-4, 1e-5)
    assert ours[0].abs().sum() > 0 and ours[2].abs().sum() > 0


def test_sampled_softmax_partial_requires_grad_and_module():
    w, b, x, labels = sampled_case()
    X = leaf(x)
    loss = sm.sampled_softmax_loss(w, b, labels, X, 10, 40, seed=1)  # only the inputs learn
    (gx,) = torch.autograd.grad(loss.sum(), X)
    _, g = sm.sampled_softmax_loss(w, b, labels, x, 10, 40, seed=1, return_grad=True)
    torch.testing.assert_close(gx, g["inputs"], rtol=1e-6, atol=1e-7)
    # The module draws new samples on every call (offset advances) and is reproducible.
    m1 = snn.SampledSoftmaxLoss(6, 40, 10, seed=3)
    m2 = snn.SampledSoftmaxLoss(6, 40, 10, seed=3)
    m2.load_state_dict(m1.state_dict())
    l1, l2 = m1(x, labels[:, 0]), m1(x, labels[:, 0])
    assert not torch.equal(l1, l2) and m1.offset == 2
    torch.testing.assert_close(m2(x, labels[:, 0]), l1, rtol=0, atol=0)
    l1.backward()
    ref = sm.sampled_softmax_loss(m1.weight.detach(), m1.bias.detach(), labels, x, 10, 40, seed=3,
                                  offset=0, return_grad=True, grad_output=torch.full((9,), 1 / 9))[1]
    torch.testing.assert_close(m1.weight.grad[ref["rows"]], ref["weights"], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="reduction"):
        snn.SampledSoftmaxLoss(6, 40, 10, reduction="avg")


def test_sampled_softmax_gradcheck():
    w, b, x, labels = sampled_case(num_true=2, v=12, d=3, n=4)
    w, b, x = (leaf(t.double()) for t in (w, b, x))

    def f(w, b, x):
        return sm.sampled_softmax_loss(w.float(), b.float(), labels, x.float(), 5, 12, num_true=2,
                                       seed=2).double()
    assert torch.autograd.gradcheck(f, (w, b, x), **F32_GRADCHECK)


# --- hierarchical softmax --------------------------------------------------------------------


def torch_tree_loss(tree, w, b, h, t):
    """-log p(t | h) over the tree's paths and codes, in torch."""
    out = []
    for i in range(len(t)):
        p = torch.as_tensor(tree.paths(int(t[i])))
        c = torch.as_tensor(tree.codes(int(t[i]))).to(h.dtype)
        s = w[p] @ h[i] + (b[p] if b is not None else 0)
        out.append(-torch.nn.functional.logsigmoid((2 * c - 1) * s).sum())
    return torch.stack(out)


def tree_case(bias=True, seed=1, v=30, d=5, n=11):
    g = gen(seed)
    counts = (500 / np.arange(1, v + 1)).astype(np.int64) + 1
    tree = sm.huffman_tree(counts)
    w = torch.randn(v - 1, d, generator=g) * 0.5
    b = torch.randn(v - 1, generator=g) * 0.3 if bias else None
    h = torch.randn(n, d, generator=g)
    t = torch.randint(0, v, (n,), generator=g)
    t[0] = t[1]  # two examples share a path
    return tree, w, b, h, t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [True, False])
def test_hierarchical_autograd_vs_torch(reduction, bias):
    tree, w, b, h, t = tree_case(bias)
    H, W = leaf(h), leaf(w)
    B = leaf(b) if bias else None
    loss = sm.hierarchical_softmax_loss(H, t, tree, W, B, reduction)
    params64 = [leaf(a.double()) if a is not None else None for a in (h, w, b)]
    per = torch_tree_loss(tree, params64[1], params64[2], params64[0], t)
    ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    close(loss, ref, 1e-5, 1e-6)
    wt = weights_for(loss)
    if reduction == "none":
        wt[2] = wt[5] = wt[0]  # repeated incoming values: one kernel rerun per distinct value
        wt[3] = 0.0
    leaves = [a for a in (H, W, B) if a is not None]
    leaves64 = [a for a in params64 if a is not None]
    ours = torch.autograd.grad((loss * wt).sum(), leaves)
    theirs = torch.autograd.grad((ref * wt.double()).sum(), leaves64)
    for a, r in zip(ours, theirs):
        close(a, r, 1e-5, 1e-6)
    assert ours[1].abs().sum() > 0


def test_hierarchical_grad_scale_and_module():
    tree, w, b, h, t = tree_case()
    W = leaf(w)
    (g1,) = torch.autograd.grad(sm.hierarchical_softmax_loss(h, t, tree, W, b), W)
    (g3,) = torch.autograd.grad(sm.hierarchical_softmax_loss(h, t, tree, W, b, grad_scale=3.0), W)
    torch.testing.assert_close(g3, 3 * g1)
    m = snn.HierarchicalSoftmaxLoss(5, tree)
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(b)
    loss = m(leaf(h), t)
    loss.backward()
    W, B = leaf(w), leaf(b)
    gw, gb = torch.autograd.grad(sm.hierarchical_softmax_loss(h, t, tree, W, B), (W, B))
    torch.testing.assert_close(m.weight.grad, gw)
    torch.testing.assert_close(m.bias.grad, gb)
    lp = m.log_prob(h)
    assert lp.grad_fn is None and lp.shape == (11, 30)
    top_lp, top = m.predict(h, k=2)
    assert torch.equal(top[:, 0], lp.argmax(1))
    m2 = snn.HierarchicalSoftmaxLoss(5, [3, 1, 1, 2], bias=False)
    assert m2.bias is None and m2.weight.shape == (3, 5)


def test_hierarchical_gradcheck():
    tree, w, b, h, t = tree_case(v=7, d=3, n=4)
    w, b, h = (leaf(a.double()) for a in (w, b, h))
    for reduction in ("mean", "none"):
        def f(h, w, b):
            return sm.hierarchical_softmax_loss(h.float(), t, tree, w.float(), b.float(),
                                                reduction).double()
        assert torch.autograd.gradcheck(f, (h, w, b), **F32_GRADCHECK)


def test_full_log_prob_functions_refuse_grad():
    tree, w, b, h, t = tree_case()
    W = leaf(w)
    with pytest.raises(NotImplementedError, match="hierarchical_log_prob: no gradient"):
        sm.hierarchical_log_prob(h, tree, W, b)
    with pytest.raises(NotImplementedError, match="hierarchical_predict: no gradient"):
        sm.hierarchical_predict(h, tree, W, b)
    with torch.no_grad():
        torch.testing.assert_close(sm.hierarchical_log_prob(h, tree, W, b),
                                   sm.hierarchical_log_prob(h, tree, w, b))
    m = make_asm(0)
    hw, tails, cutoffs, hb = asm_weights(m)
    x = torch.randn(3, 8)
    with pytest.raises(NotImplementedError, match="adaptive_log_prob: no gradient"):
        sm.adaptive_log_prob(x, hw, tails, cutoffs, hb)
    # predict returns class ids (no gradient, as torch's): allowed on parameters.
    assert torch.equal(sm.adaptive_predict(x, hw, tails, cutoffs, hb), m.predict(x))


# --- adaptive softmax ------------------------------------------------------------------------


def make_asm(seed, d=8, n_classes=60, cutoffs=(10, 30), head_bias=True, dtype=torch.float32):
    torch.manual_seed(seed)
    return torch.nn.AdaptiveLogSoftmaxWithLoss(d, n_classes, list(cutoffs), div_value=2.0,
                                               head_bias=head_bias).to(dtype)


def asm_weights(m):
    return m.head.weight, [(t[0].weight, t[1].weight) for t in m.tail], m.cutoffs[:-1], m.head.bias


def asm_targets(n, g):
    return torch.cat([torch.randint(0, 10, (n,), generator=g), torch.randint(10, 30, (n,), generator=g),
                      torch.randint(30, 60, (n,), generator=g)])


@pytest.mark.parametrize("head_bias", [True, False])
@pytest.mark.parametrize("objective", ["loss", "output", "both"])
def test_adaptive_autograd_vs_torch_module(head_bias, objective):
    m = make_asm(0, head_bias=head_bias)
    g = gen(5)
    x = torch.randn(15, 8, generator=g)
    target = asm_targets(5, g)
    X = leaf(x)
    hw, tails, cutoffs, hb = asm_weights(m)
    output, loss = sm.adaptive_log_softmax_with_loss(X, target, hw, tails, cutoffs, hb)
    Xr = leaf(x)
    ref = m(Xr, target)
    close(output, ref.output, 1e-5, 1e-5)
    close(loss, ref.loss, 1e-5, 1e-5)
    wt = weights_for(output)
    wt[3] = wt[4]
    pick = {"loss": lambda o, l: l, "output": lambda o, l: (o * wt).sum(),
            "both": lambda o, l: (o * wt).sum() + 2.5 * l}[objective]
    params = [p for p in m.parameters()]
    ours = torch.autograd.grad(pick(output, loss), [X] + params)
    theirs = torch.autograd.grad(pick(ref.output, ref.loss), [Xr] + params)
    assert len(ours) == (7 if head_bias else 6)  # x, head weight (, bias), 2 x 2 tails
    for a, r in zip(ours, theirs):
        close(a, r, 1e-4, 1e-6)


def test_adaptive_module_is_torch_module():
    ref = make_asm(3)
    torch.manual_seed(3)
    ours = snn.AdaptiveLogSoftmaxWithLoss(8, 60, [10, 30], div_value=2.0, head_bias=True)
    assert isinstance(ours, torch.nn.AdaptiveLogSoftmaxWithLoss)
    ours.load_state_dict(ref.state_dict())
    g = gen(9)
    x = torch.randn(12, 8, generator=g)
    t = asm_targets(4, g)
    a, b = ours(x, t), ref(x, t)
    close(a.output, b.output, 1e-5, 1e-5)
    a.loss.backward()
    b.loss.backward()
    for p, q in zip(ours.parameters(), ref.parameters()):
        close(p.grad, q.grad, 1e-4, 1e-6)
    single = ours(x[0], t[0])  # unbatched, as torch
    assert single.output.shape == () and single.loss.shape == ()
    close(single.output, ref(x[0], t[0]).output, 1e-5, 1e-5)
    with torch.no_grad():
        close(ours.log_prob(x), ref.log_prob(x), 1e-5, 1e-5)
    lp = ours.log_prob(leaf(x))  # needs grad: torch's own log_prob
    assert lp.grad_fn is not None
    assert torch.equal(ours.predict(x), ref.predict(x))


def test_adaptive_gradcheck():
    m = make_asm(1, d=4, n_classes=9, cutoffs=(3, 6), dtype=torch.float64)
    g = gen(2)
    x = leaf(torch.randn(5, 4, generator=g, dtype=torch.float64))
    target = torch.tensor([0, 4, 8, 2, 7])
    hw, (p0, o0), (p1, o1), hb = m.head.weight, *[(t[0].weight, t[1].weight) for t in m.tail], m.head.bias

    def f(x, hw, hb, p0, o0, p1, o1):
        out, loss = sm.adaptive_log_softmax_with_loss(
            x.float(), target, hw.float(), [(p0.float(), o0.float()), (p1.float(), o1.float())],
            [3, 6], hb.float())
        return out.double(), loss.double()
    assert torch.autograd.gradcheck(f, (x, hw, hb, p0, o0, p1, o1), **F32_GRADCHECK)


# --- gumbel_softmax --------------------------------------------------------------------------


def gumbel_noise(shape, axis, seed, offset, dtype):
    """The op's noise up to a per-row constant: log gumbel_softmax(0) = g - logsumexp(g)
    (the noise depends on (seed, offset, row, position) only)."""
    z = torch.zeros(shape, dtype=dtype)
    return torch.log(sm.gumbel_softmax(z, tau=1.0, axis=axis, seed=seed, offset=offset))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_autograd_vs_torch_same_noise(dtype, tol, axis, hard):
    x = torch.randn(4, 6, generator=gen(3), dtype=torch.float64).to(dtype)
    tau = 0.6
    noise = gumbel_noise(x.shape, axis, 11, 4, dtype)
    X, Xr = leaf(x), leaf(x)
    y = sm.gumbel_softmax(X, tau=tau, hard=hard, axis=axis, seed=11, offset=4)
    soft = torch.softmax((Xr + noise) / tau, axis)
    if hard:
        idx = soft.argmax(axis, keepdim=True)
        onehot = torch.zeros_like(soft).scatter_(axis, idx, 1.0)
        ref = onehot - soft.detach() + soft  # torch's straight-through form
        assert torch.equal(y.detach(), onehot)
    else:
        ref = soft
    close(y, ref, tol, tol)
    wt = torch.randn(y.shape, generator=gen(4), dtype=torch.float64).to(dtype)
    (gx,) = torch.autograd.grad((y * wt).sum(), X)
    (gr,) = torch.autograd.grad((ref * wt).sum(), Xr)
    close(gx, gr, tol, tol)
    assert gx.abs().max() > 1e-3


def test_gumbel_softmax_gradcheck_and_seeds():
    x = leaf(torch.randn(3, 5, generator=gen(1), dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: sm.gumbel_softmax(t, tau=0.8, seed=2, offset=1),
                                    (x,), **F64_GRADCHECK)
    assert torch.autograd.gradcheck(lambda t: sm.gumbel_softmax(t, axis=0, seed=5), (x,),
                                    **F64_GRADCHECK)
    a, b = sm.gumbel_softmax(x, seed=1), sm.gumbel_softmax(x, seed=1, offset=1)
    assert not torch.equal(a, b)
    torch.testing.assert_close(sm.gumbel_softmax(x, seed=1), a, rtol=0, atol=0)


# --- sparsemax -------------------------------------------------------------------------------


def torch_sparsemax(z, dim):
    """Sort-based sparsemax (Martins & Astudillo, Algorithm 1) in torch ops."""
    z = z.transpose(dim, -1)
    zs, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = zs.cumsum(-1)
    support = 1 + k * zs > cs
    kz = support.sum(-1, keepdim=True)
    tau = (cs.gather(-1, kz - 1) - 1) / kz.to(z.dtype)
    return torch.clamp(z - tau, min=0).transpose(dim, -1)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("dim", [-1, 0])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sparsemax_autograd_vs_torch(dtype, tol, dim, temperature):
    x = (torch.randn(5, 9, generator=gen(6), dtype=torch.float64) * 1.5).to(dtype)
    X, Xr = leaf(x), leaf(x)
    y = sm.sparsemax(X, dim, temperature=temperature)
    ref = torch_sparsemax(Xr / temperature, dim)
    close(y, ref, tol, tol)
    assert (y == 0).any()
    wt = torch.randn(y.shape, generator=gen(8), dtype=torch.float64).to(dtype)
    (gx,) = torch.autograd.grad((y * wt).sum(), X)
    (gr,) = torch.autograd.grad((ref * wt).sum(), Xr)
    close(gx, gr, tol * 10, tol * 10)
    assert gx.abs().max() > 1e-2


def test_sparsemax_gradcheck_and_module():
    x = leaf(torch.randn(4, 7, generator=gen(2), dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: sm.sparsemax(t, temperature=0.7), (x,),
                                    **F64_GRADCHECK)
    assert torch.autograd.gradcheck(lambda t: sm.sparsemax(t, 0), (x,), **F64_GRADCHECK)
    y = snn.Sparsemax(dim=0)(x)
    torch.testing.assert_close(y, sm.sparsemax(x, 0))
    assert y.grad_fn is not None


# --- double backward, no-grad --------------------------------------------------------------


def test_double_backward_raises_clearly():
    x = leaf(torch.randn(3, 5, dtype=torch.float64))
    for fn in (lambda t: sm.sparsemax(t), lambda t: sm.gumbel_softmax(t, seed=1)):
        (g,) = torch.autograd.grad((fn(x) ** 2).sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="twice"):
            g.sum().backward()
    w, b, h, labels = sampled_case()
    W = leaf(w)
    (g,) = torch.autograd.grad(sm.sampled_softmax_loss(W, b, labels, h, 8, 40).sum(), W,
                               create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        g.sum().backward()
    tree, w, b, h, t = tree_case()
    W = leaf(w)
    (g,) = torch.autograd.grad(sm.hierarchical_softmax_loss(h, t, tree, W, b), W,
                               create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        g.sum().backward()
    m = make_asm(0)
    hw, tails, cutoffs, hb = asm_weights(m)
    out, loss = sm.adaptive_log_softmax_with_loss(torch.randn(6, 8), torch.tensor([0, 5, 12, 40, 3, 59]),
                                                  hw, tails, cutoffs, hb)
    (g,) = torch.autograd.grad(loss, hw, create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        g.sum().backward()
    x = leaf(torch.randn(4, 6))  # also for the earlier losses: a gradient taken from the loss
    (g,) = torch.autograd.grad(sm.cross_entropy(x, torch.tensor([0, 1, 2, 3])), x, create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        g.sum().backward()


def test_no_grad_and_numpy_paths_unchanged():
    x = leaf(torch.randn(3, 5))
    with torch.no_grad():
        assert sm.sparsemax(x).grad_fn is None
        assert sm.gumbel_softmax(x).grad_fn is None
    a = np.random.default_rng(0).standard_normal((3, 5))
    assert isinstance(sm.sparsemax(a), np.ndarray)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dimm'"):
        sm.sparsemax(a, dimm=0)
