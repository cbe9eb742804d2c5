# SciPy's argument forms on NumPy inputs, against scipy.special itself: axis=None (all axes),
# tuple axes, keepdims, logsumexp(b=, return_sign=), integer/bool promotion, masked arrays,
# 0-d inputs, dtype= upcast/downcast, the input= / a= keywords, one-line unknown-keyword errors.
import numpy as np
import pytest
import scipy.special as sp

import softmax as sm


@pytest.fixture
def x(rng):
    return rng.standard_normal((3, 4, 5)) * 3


@pytest.mark.parametrize("axis", [None, (0, 2), (2, 0), (1,), (-1, -2), (0, 1, 2), ()])
def test_axes_vs_scipy(x, axis):
    np.testing.assert_allclose(sm.softmax(x, axis=axis), sp.softmax(x, axis=axis), rtol=1e-14)
    np.testing.assert_allclose(sm.log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis),
                               rtol=1e-13, atol=1e-13)
    for keepdims in (False, True):
        got = sm.logsumexp(x, axis=axis, keepdims=keepdims)
        want = sp.logsumexp(x, axis=axis, keepdims=keepdims)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_default_axis_is_last_for_every_input(x):
    np.testing.assert_allclose(sm.softmax(x), sp.softmax(x, axis=-1), rtol=1e-14)
    assert sm.logsumexp(x).shape == (3, 4)


def test_float32_multi_axis_and_strided(x):
    x32 = x.astype(np.float32)[:, ::-1, 1::2]
    np.testing.assert_allclose(sm.softmax(x32, axis=(0, 1)), sp.softmax(x32.astype(np.float64), axis=(0, 1)),
                               rtol=2e-6)
    assert sm.softmax(x32, axis=None).dtype == np.float32


@pytest.mark.parametrize("b_kind", ["positive", "mixed", "zero_row", "broadcast"])
def test_logsumexp_b_and_sign_vs_scipy(rng, b_kind):
    a = rng.standard_normal((4, 6))
    b = {"positive": rng.random((4, 6)) + 0.1,
         "mixed": rng.standard_normal((4, 6)),
         "zero_row": np.vstack([np.zeros((1, 6)), rng.standard_normal((3, 6))]),
         "broadcast": np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])}[b_kind]
    for axis in (-1, 0, None):
        r, s = sm.logsumexp(a, axis=axis, b=b, return_sign=True)
        rr, ss = sp.logsumexp(a, axis=axis, b=b, return_sign=True)
        np.testing.assert_allclose(r, rr, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(s, ss)
        with np.errstate(invalid="ignore"):
            want = sp.logsumexp(a, axis=axis, b=b)
        np.testing.assert_allclose(sm.logsumexp(a, axis=axis, b=b), want, rtol=1e-12, atol=1e-12)


def test_return_sign_without_b():
    r, s = sm.logsumexp(np.array([[-np.inf, -np.inf], [0.0, 1.0]]), return_sign=True)
    rr, ss = sp.logsumexp(np.array([[-np.inf, -np.inf], [0.0, 1.0]]), axis=-1, return_sign=True)
    np.testing.assert_allclose(r, rr)
    np.testing.assert_array_equal(s, ss)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_promotion(dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    want_dtype = np.exp(a).dtype  # NumPy's ufunc promotion, as SciPy gets it
    y = sm.softmax(a)
    assert y.dtype == want_dtype
    np.testing.assert_allclose(y, sp.softmax(a.astype(np.float64), axis=-1),
                               rtol=np.finfo(want_dtype).eps * 8)
    assert sm.logsumexp(a).dtype == want_dtype


def test_masked_arrays_are_refused(x):
    m = np.ma.masked_array(x, mask=x > 0)
    for fn in (sm.softmax, sm.log_softmax, sm.logsumexp):
        with pytest.raises(TypeError, match="masked arrays"):
            fn(m)


def test_zero_d_inputs():
    assert sm.softmax(np.array(3.0)) == sp.softmax(np.array(3.0))
    assert sm.log_softmax(np.float64(3.0)) == 0.0
    assert sm.logsumexp(np.array(3.0)) == sp.logsumexp(np.array(3.0))
    assert sm.logsumexp(2.5, axis=None) == 2.5
    assert np.isnan(sm.softmax(np.array(np.inf)))


def test_dtype_upcast_computes_in_float64(rng):
    x = rng.standard_normal((4, 300)).astype(np.float32) * 20
    y = sm.softmax(x, dtype=np.float64)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, sm.softmax(x.astype(np.float64)))
    out = np.empty((4, 300))
    assert sm.log_softmax(x, out=out) is out
    np.testing.assert_array_equal(out, sm.log_softmax(x.astype(np.float64)))
    # Downcast: computed in float64, rounded once.
    z = sm.logsumexp(x.astype(np.float64), dtype=np.float32)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z, sm.logsumexp(x.astype(np.float64)).astype(np.float32))
    np.testing.assert_allclose(sm.softmax(x, axis=None, dtype="float64"),
                               sp.softmax(x.astype(np.float64), axis=None), rtol=1e-13)


def test_input_and_a_keywords(x):
    np.testing.assert_array_equal(sm.softmax(input=x, dim=1), sm.softmax(x, 1))
    np.testing.assert_array_equal(sm.log_softmax(input=x), sm.log_softmax(x))
    np.testing.assert_array_equal(sm.logsumexp(a=x, axis=0), sm.logsumexp(x, 0))
    np.testing.assert_array_equal(sm.sigmoid(input=x), sm.sigmoid(x))
    with pytest.raises(TypeError, match="once"):
        sm.softmax(x, input=x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "sigmoid", "argmax",
                                  "hardmax", "cross_entropy", "attention", "sample"])
def test_unknown_keyword_is_one_line_naming_it(name, x):
    fn = getattr(sm, name)
    with pytest.raises(TypeError) as e:
        fn(np.ones((2, 3)), no_such_keyword=1)
    msg = str(e.value)
    assert "no_such_keyword" in msg and "\n" not in msg and len(msg) < 300, msg


def test_small_call_path_for_torch_tensors():
    torch = pytest.importorskip("torch")
    for dtype in (torch.float32, torch.float64, torch.float16):
        t = (torch.randn(5, 7) * 3).to(dtype)
        for x in (t, t.T, t[:, ::2], t[0]):
            for ours, ref in ((sm.softmax(x), torch.softmax(x.double(), -1)),
                              (sm.log_softmax(x, 0), torch.log_softmax(x.double(), 0)),
                              (sm.softmax(x, dim=0), torch.softmax(x.double(), 0)),
                              (sm.logsumexp(x, dim=0, keepdim=True), torch.logsumexp(x.double(), 0, True)),
                              (sm.logsumexp(x, 0, keepdims=True), torch.logsumexp(x.double(), 0, True)),
                              (sm.logsumexp(x), torch.logsumexp(x.double(), -1)),
                              (sm.sigmoid(x), torch.sigmoid(x.double()))):
                assert isinstance(ours, torch.Tensor) and ours.dtype == dtype
                assert ours.shape == ref.shape
                tol = 2e-3 if dtype == torch.float16 else 1e-6
                torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="axis"):
        sm.logsumexp(torch.randn(3), 4)
