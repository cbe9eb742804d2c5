# softmax.library: the ops as torch custom ops (torch.ops.softmax.*), values and gradients
# against torch's own ops, and their names in the profiler.
import pytest

torch = pytest.importorskip("torch")
import softmax.library  # noqa: E402,F401


def test_custom_ops_values_and_grads():
    x = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    cases = [
        (lambda t: torch.ops.softmax.softmax(t, 0), lambda t: torch.softmax(t, 0)),
        (lambda t: torch.ops.softmax.log_softmax(t, -1, 0.5), lambda t: torch.log_softmax(t / 0.5, -1)),
        (lambda t: torch.ops.softmax.logsumexp(t, 1, True), lambda t: torch.logsumexp(t, 1, True)),
        (torch.ops.softmax.sigmoid, torch.sigmoid),
        (lambda t: torch.ops.softmax.cross_entropy(t, torch.tensor([0, 8, 3, 3]), None, -100, "sum", 0.1),
         lambda t: torch.nn.functional.cross_entropy(t, torch.tensor([0, 8, 3, 3]), reduction="sum",
                                                     label_smoothing=0.1)),
    ]
    for ours, ref in cases:
        y1, y2 = ours(x), ref(x)
        torch.testing.assert_close(y1, y2)
        g1, = torch.autograd.grad(y1.sum(), x)
        g2, = torch.autograd.grad(y2.sum(), x)
        torch.testing.assert_close(g1, g2)


def test_sparsemax_and_gumbel_custom_ops():
    import softmax as sm
    x = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 7, dtype=torch.float64)
    for ours, ref in [
            (lambda t: torch.ops.softmax.sparsemax(t, 0, 0.5), lambda t: sm.sparsemax(t, 0, temperature=0.5)),
            (lambda t: torch.ops.softmax.gumbel_softmax(t, 0.7, True, -1, 4, 2),
             lambda t: sm.gumbel_softmax(t, tau=0.7, hard=True, seed=4, offset=2))]:
        y1, y2 = ours(x), ref(x)
        assert torch.equal(y1, y2)
        g1, = torch.autograd.grad((y1 * w).sum(), x)
        g2, = torch.autograd.grad((y2 * w).sum(), x)
        torch.testing.assert_close(g1, g2, rtol=0, atol=0)
        assert g1.abs().max() > 0


def test_sdpa_custom_op_and_profiler_name():
    q = torch.randn(1, 2, 5, 4, requires_grad=True)
    with torch.autograd.profiler.profile() as prof:
        y = torch.ops.softmax.scaled_dot_product_attention(q, q, q, None, 0.0, True, None)
    assert any(e.name == "softmax::scaled_dot_product_attention" for e in prof.function_events)
    y.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
