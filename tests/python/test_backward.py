# softmax_backward / log_softmax_backward against torch 1.13 autograd.
import numpy as np
import pytest

import softmax as sm

torch = pytest.importorskip("torch")

if not hasattr(sm, "softmax_backward"):
    pytest.skip("backward family not built", allow_module_level=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,dim", [((4, 33), -1), ((4, 33), 0), ((2, 5, 70), 1)])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_matches_torch_autograd(dtype, shape, dim, temperature):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g, dtype=dtype) * 3).requires_grad_()
    dy = torch.randn(shape, generator=g, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
    for fwd, bwd in [(torch.softmax, sm.softmax_backward),
                     (torch.log_softmax, sm.log_softmax_backward)]:
        y = fwd(x / temperature, dim)
        (gx,) = torch.autograd.grad(y, x, dy)
        got = bwd(y.detach(), dy, dim=dim, temperature=temperature)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        torch.testing.assert_close(got, gx, **tol)
        # NumPy path, strided (transposed) inputs give the same numbers
        yn, dyn = y.detach().numpy(), dy.numpy()
        np.testing.assert_allclose(bwd(yn, dyn, dim, temperature=temperature), gx.numpy(),
                                   **tol)
        got_t = bwd(np.ascontiguousarray(yn.T).T, np.ascontiguousarray(dyn.T).T, dim,
                    temperature=temperature)
        np.testing.assert_array_equal(got_t, bwd(yn, dyn, dim, temperature=temperature))


def test_temperature_is_applied():
    y = sm.softmax(np.array([0.0, 1.0, 2.0]))
    dy = np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(sm.softmax_backward(y, dy, temperature=2.0),
                               sm.softmax_backward(y, dy) / 2, rtol=1e-15)


def test_in_place_bf16_and_errors():
    x = torch.randn(3, 50)
    y = torch.softmax(x, -1)
    dy = torch.randn(3, 50)
    ref = sm.softmax_backward(y, dy)
    d = dy.clone()
    assert sm.softmax_backward(y, d, out=d) is d
    torch.testing.assert_close(d, ref, rtol=0, atol=0)
    yb, dyb = y.bfloat16(), dy.bfloat16()
    gb = sm.softmax_backward(yb, dyb, dtype=torch.float32)
    assert gb.dtype == torch.float32
    torch.testing.assert_close(gb, sm.softmax_backward(yb.float(), dyb.float()), rtol=1e-6,
                               atol=1e-7)
    with pytest.raises(ValueError, match="axis"):
        sm.softmax_backward(y, dy, axis=2)
    with pytest.raises(ValueError, match="shape"):
        sm.log_softmax_backward(y, dy[:2])
    with pytest.raises(ValueError, match="temperature"):
        sm.softmax_backward(y, dy, temperature=0.0)
    with pytest.raises(TypeError):
        sm.softmax_backward(y, dy.double())
