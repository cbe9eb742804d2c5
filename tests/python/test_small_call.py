# The small-call path (softmax._forms.fast_call and the core's _fast_np / _fast_ptr) gives what
# the general path gives: the same values bit for bit, the same container, dtype and shape,
# and the same errors; inputs it does not take (strided, 0-d, sparse, autograd, other
# dtypes) fall through to the general path. No timing here (bench/python_overhead.py).
import numpy as np
import pytest

import softmax as sm
from softmax import _forms

torch = pytest.importorskip("torch")

OPS = [("softmax", _forms.SOFTMAX), ("log_softmax", _forms.LOG_SOFTMAX),
       ("logsumexp", _forms.LOGSUMEXP), ("sigmoid", _forms.SIGMOID)]


def general(name, x, axis, keepdims=False, temperature=1.0):
    """The core's general entry point (keyword arguments, DLPack / NumPy operands)."""
    fn = getattr(sm._core, name)
    if name == "sigmoid":
        return fn(x)
    if name == "logsumexp":
        return fn(x, axis, keepdims=keepdims, temperature=temperature)
    return fn(x, axis, temperature=temperature)


def public(name, x, axis, keepdims=False, temperature=1.0):
    fn = getattr(sm, name)
    if name == "sigmoid":
        return fn(x)
    if name == "logsumexp":
        return fn(x, axis, keepdims=keepdims, temperature=temperature)
    return fn(x, axis, temperature=temperature)


def same(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert torch.equal(a, b) or (torch.isnan(a) == torch.isnan(b)).all()


@pytest.mark.parametrize("name,code", OPS)
@pytest.mark.parametrize("shape,axis", [((1, 512), -1), ((3, 5, 7), 1), ((4, 6), 0), ((9,), 0)])
@pytest.mark.parametrize("kind,dtype", [(k, d) for k in ("numpy", "torch")
                                         for d in ("float32", "float64", "float16", "bfloat16")
                                         if (k, d) != ("numpy", "bfloat16")])  # NumPy has none
def test_fast_path_matches_general_path(name, code, shape, axis, kind, dtype):
    g = torch.Generator().manual_seed(3)
    t = (torch.randn(shape, generator=g, dtype=torch.float64) * 4).to(getattr(torch, dtype))
    x = t.numpy() if kind == "numpy" else t
    kd = name == "logsumexp" and axis == 1
    y = _forms.fast_call(sm._core, code, x, axis, 0.75 if name != "sigmoid" else 1.0, 0, kd)
    assert y is not None, "the small-call path should take this input"
    ref = general(name, x, axis, kd, 0.75 if name != "sigmoid" else 1.0)
    same(y, ref)
    same(public(name, x, axis, kd, 0.75 if name != "sigmoid" else 1.0), ref)


def test_inputs_the_fast_path_leaves_to_the_general_path():
    t = torch.randn(4, 6)
    call = lambda x: _forms.fast_call(sm._core, _forms.SOFTMAX, x, -1, 1.0, 0)  # noqa: E731
    assert call(t.T) is None  # not contiguous
    assert call(t.numpy().T) is None
    assert call(t.numpy()[:, ::2]) is None
    assert call(np.float64(1.0)) is None and call(np.zeros(())) is None
    assert call(torch.zeros(())) is None  # 0-d: the general path's rule
    assert call(np.arange(6)) is None  # integers promote on the general path
    assert call(np.ma.masked_array(np.zeros(3))) is None
    assert call(t.to_sparse()) is None
    assert call(torch.nn.Parameter(t)) is None  # a subclass (and it requires grad)
    assert call(t.clone().requires_grad_()) is None
    with torch.no_grad():
        assert call(t.clone().requires_grad_()) is not None
    assert call([1.0, 2.0]) is None
    big_endian = np.zeros(4, ">f4")
    assert call(big_endian) is None
    # ... and the general path still gives those their answers.
    torch.testing.assert_close(sm.softmax(t.T), torch.softmax(t.T, -1))
    np.testing.assert_allclose(sm.softmax(big_endian), np.full(4, 0.25, np.float32))
    assert float(sm.softmax(torch.zeros(()))) == 1.0
    assert sm.softmax(torch.zeros(0, 3)).shape == (0, 3)


def test_zero_d_tensors_all_ops_and_grads():
    # 0-d torch tensors failed in fold (permute(*[])) before.
    for fn, val, grad in ((sm.softmax, 1.0, 0.0), (sm.log_softmax, 0.0, 0.0),
                          (sm.logsumexp, 0.5, 1.0)):
        x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        y = fn(x)
        assert y.shape == () and float(y) == val
        y.backward()
        assert float(x.grad) == grad
        assert fn(torch.tensor(0.5)).shape == ()


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_errors_are_the_general_paths(kind):
    x = np.zeros((2, 3), np.float32)
    x = x if kind == "numpy" else torch.from_numpy(x)
    with pytest.raises(ValueError, match="axis"):
        sm.softmax(x, 2)
    with pytest.raises(ValueError, match="axis"):
        sm.logsumexp(x, -3)
    with pytest.raises(ValueError, match="temperature"):
        sm.softmax(x, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        sm.log_softmax(x, temperature=float("nan"))
    with pytest.raises(ValueError, match="threads"):
        sm.softmax(x, threads=-1)
    with pytest.raises(TypeError, match="temperature"):
        sm.softmax(x, temperature="hot")


def test_results_are_new_memory_and_keep_no_reference():
    t = torch.randn(2, 8)
    y = sm.softmax(t)
    assert y.data_ptr() != t.data_ptr()
    y2 = sm.softmax(t)
    assert y2.data_ptr() != y.data_ptr()
    a = np.random.default_rng(0).standard_normal((2, 8))
    r = sm.softmax(a)
    assert not np.shares_memory(r, a) and r.flags.c_contiguous and r.flags.owndata
    lse = sm.logsumexp(t, keepdim=True)
    assert lse.shape == (2, 1)
    torch.testing.assert_close(lse, torch.logsumexp(t, -1, keepdim=True))
