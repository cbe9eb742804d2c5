# Tests of softmax, log_softmax, logsumexp, argmax, hardmax, sigmoid against torch 1.13 and
# scipy, on random, strided, edge and bad inputs, through NumPy and DLPack.
import doctest
import os
import sys
import threading
import time

import numpy as np
import pytest
import scipy.special as sp

import softmax as sm
from conftest import SHARED_DATA

torch = pytest.importorskip("torch")

F32_EPS = float(np.finfo(np.float32).eps)
F64_EPS = float(np.finfo(np.float64).eps)


def ref64(fn, x, axis=-1, temperature=1.0):
    """scipy reference in float64 on the exact input values (for f32/f16 inputs)."""
    return fn(np.asarray(x, np.float64) / temperature, axis=axis)


def ld_softmax(x, axis=-1, log=False):
    """Long double (x87, 64-bit mantissa) reference: exact enough to judge f64 results."""
    x = np.asarray(x, np.longdouble)
    z = x - x.max(axis=axis, keepdims=True)
    s = np.exp(z).sum(axis=axis, keepdims=True)
    return z - np.log(s) if log else np.exp(z) / s


# ---------------------------------------------------------------- random inputs, dtypes, axes

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((5, 33), -1), ((5, 33), 0), ((3, 4, 65), 1),
                                        ((2, 3, 4, 5), -2), ((1, 1000), -1), ((3, 5000), 1)])
def test_softmax_matches_scipy_and_torch(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    y = sm.softmax(x, axis=axis)
    assert y.dtype == dtype and y.shape == x.shape
    eps = F32_EPS if dtype == np.float32 else F64_EPS
    np.testing.assert_allclose(y, ld_softmax(x, axis), rtol=4 * eps, atol=0)
    np.testing.assert_allclose(y, ref64(sp.softmax, x, axis), rtol=32 * eps, atol=0)
    t = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
    np.testing.assert_allclose(y, t, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-30)
    np.testing.assert_allclose(sm.softmax(x, dim=axis), y, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((5, 33), -1), ((5, 33), 0), ((3, 4, 65), 1),
                                        ((3, 5000), 1)])
def test_log_softmax_matches_scipy_and_torch(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    y = sm.log_softmax(x, axis)
    eps = F32_EPS if dtype == np.float32 else F64_EPS
    ref = ld_softmax(x, axis, log=True)
    # ops.hpp states |err| <= eps/2 * (|y| + 2); measured up to ~1.5x that (two roundings:
    # (x - max) and the subtraction of log(sum)), so the test allows eps * (|y| + 2).
    assert np.all(np.abs(y - ref) <= eps * (np.abs(ref) + 2))
    np.testing.assert_allclose(y, ref64(sp.log_softmax, x, axis), rtol=32 * eps, atol=32 * eps)
    t = torch.log_softmax(torch.from_numpy(x), dim=axis).numpy()
    np.testing.assert_allclose(y, t, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", [((5, 33), -1), ((5, 33), 0), ((3, 4, 65), 1), ((9,), 0)])
def test_logsumexp_matches_scipy_and_torch(rng, dtype, keepdims, shape, axis):
    x = (rng.standard_normal(shape) * 5 + 50).astype(dtype)
    y = sm.logsumexp(x, axis=axis, keepdims=keepdims)
    ref = sp.logsumexp(x.astype(np.float64), axis=axis, keepdims=keepdims)
    assert y.shape == ref.shape and y.dtype == dtype
    eps = F32_EPS if dtype == np.float32 else F64_EPS
    np.testing.assert_allclose(y, ref, rtol=2 * eps, atol=0)
    t = torch.logsumexp(torch.from_numpy(x), dim=axis, keepdim=keepdims).numpy()
    np.testing.assert_allclose(y, t, rtol=1e-6 if dtype == np.float32 else 1e-13)
    assert sm.logsumexp(x, dim=axis, keepdim=keepdims).shape == ref.shape


@pytest.mark.parametrize("temperature", [0.25, 2.0, 7.5])
def test_temperature_is_applied(rng, temperature):
    x = (rng.standard_normal((4, 50)) * 3).astype(np.float32)
    rel = 6 * F32_EPS + np.abs(x - x.max(-1, keepdims=True)).max() / temperature * F32_EPS
    y = sm.softmax(x, temperature=temperature)
    np.testing.assert_allclose(y, ref64(sp.softmax, x, -1, temperature), rtol=rel)
    assert not np.allclose(y, sm.softmax(x), rtol=1e-3)  # fails if temperature were ignored
    ly = sm.log_softmax(x, temperature=temperature)
    ref = ref64(sp.log_softmax, x, -1, temperature)
    np.testing.assert_allclose(ly, ref, rtol=rel, atol=1e-6)
    ls = sm.logsumexp(x, temperature=temperature)
    np.testing.assert_allclose(ls, sp.logsumexp(x.astype(np.float64) / temperature, axis=-1),
                               rtol=rel)
    assert not np.allclose(ls, sm.logsumexp(x), rtol=1e-3)
    t = torch.softmax(torch.from_numpy(x) / temperature, -1).numpy()
    np.testing.assert_allclose(y, t, rtol=1e-5, atol=1e-12)


def test_real_logits_from_shared_data():
    path = os.path.join(SHARED_DATA, "stories260K_logits.npy")
    if not os.path.exists(path):
        pytest.skip("shared data not present")
    x = np.load(path)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(sm.softmax(x), torch.softmax(t, -1).numpy(), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(sm.log_softmax(x), torch.log_softmax(t, -1).numpy(), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(sm.logsumexp(x), torch.logsumexp(t, -1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(sm.argmax(x), np.argmax(x, -1))


def test_sequences_and_scalars():
    np.testing.assert_allclose(sm.softmax([1, 2, 3]), sp.softmax([1.0, 2.0, 3.0]), rtol=1e-15)
    assert sm.softmax([1, 2, 3]).dtype == np.float64
    np.testing.assert_allclose(sm.sigmoid(0.5), sp.expit(0.5), rtol=1e-15)
    assert sm.softmax([[1.0, 2.0]], 0).tolist() == [[1.0, 1.0]]


# ---------------------------------------------------------------- strided inputs and outputs

def strided_cases(rng):
    base = (rng.standard_normal((12, 40)) * 4).astype(np.float32)
    b3 = (rng.standard_normal((4, 6, 10)) * 4).astype(np.float64)
    return {
        "slice": base[::2, 1::3],
        "negative": base[::-1, ::-2],
        "transposed": base.T,
        "broadcast": np.broadcast_to(base[:1], (5, 40)),
        "3d_permuted": b3.transpose(2, 0, 1),
        "3d_neg_mid": b3[:, ::-1, 2:],
        "fortran": np.asfortranarray(base),
    }


@pytest.mark.parametrize("case", ["slice", "negative", "transposed", "broadcast", "3d_permuted",
                                  "3d_neg_mid", "fortran"])
@pytest.mark.parametrize("axis", [0, -1])
def test_strided_inputs(rng, case, axis):
    x = strided_cases(rng)[case]
    xc = np.ascontiguousarray(x)
    eps = F32_EPS if x.dtype == np.float32 else F64_EPS
    for fn, ref in [(sm.softmax, sp.softmax), (sm.log_softmax, sp.log_softmax)]:
        got = fn(x, axis=axis)
        np.testing.assert_allclose(got, ref64(ref, xc, axis), rtol=6 * eps, atol=4 * eps)
        np.testing.assert_array_equal(got, fn(xc, axis=axis))  # strides change nothing
    np.testing.assert_array_equal(sm.logsumexp(x, axis), sm.logsumexp(xc, axis))
    np.testing.assert_array_equal(sm.argmax(x, axis), np.argmax(xc, axis))
    np.testing.assert_array_equal(sm.sigmoid(x), sm.sigmoid(xc))
    np.testing.assert_allclose(sm.sigmoid(x), sp.expit(xc.astype(np.float64)), rtol=4 * eps)


def test_strided_out_writes_only_its_elements(rng):
    x = rng.standard_normal((6, 20)).astype(np.float32)
    big = np.full((12, 40), 7.0, np.float32)
    out = big[::2, ::-2]
    r = sm.softmax(x, out=out)
    assert r is out
    np.testing.assert_array_equal(out, sm.softmax(x))
    mask = np.ones_like(big, bool)
    mask[::2, ::-2] = False
    assert np.all(big[mask] == 7.0)
    out_t = np.empty((20, 6), np.float32).T
    sm.log_softmax(x, out=out_t)
    np.testing.assert_array_equal(out_t, sm.log_softmax(x))


def test_misaligned_data(rng):
    buf = np.zeros(4 * 64 + 1, np.uint8)
    x = np.ndarray((64,), np.float32, buffer=buf, offset=1)
    x[...] = rng.standard_normal(64)
    assert x.ctypes.data % 4 != 0
    np.testing.assert_allclose(sm.softmax(x), ref64(sp.softmax, x), rtol=6 * F32_EPS)


def test_non_native_byte_order(rng):
    x = rng.standard_normal((3, 9)).astype(">f4")
    np.testing.assert_array_equal(sm.softmax(x), sm.softmax(x.astype(np.float32)))
    with pytest.raises(TypeError, match="byte order"):
        sm.softmax(x.astype(np.float32), out=np.empty((3, 9), ">f4"))


# ---------------------------------------------------------------- edge semantics (docs/ops/softmax.md)

@pytest.fixture(params=sm.available_targets())
def each_target(request):
    """Runs a test on every SIMD target (edge semantics must not depend on it)."""
    sm.set_target(request.param)
    yield request.param
    sm.set_target("")


def test_edges_softmax_log_softmax(each_target):
    inf, nan = np.inf, np.nan
    x = np.array([[0.0, -inf, 1.0, -inf],
                  [-inf, -inf, -inf, -inf],
                  [1.0, nan, 2.0, 3.0],
                  [1.0, inf, 2.0, 3.0],
                  [1e30, 1e30, 1e30, 1e30],
                  [-1e30, -1e30, -1e30, -1e30]], np.float32)
    y = sm.softmax(x)
    t = torch.softmax(torch.from_numpy(x), -1).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(t))
    assert y[0, 1] == 0.0 and y[0, 3] == 0.0
    assert np.all(np.isnan(y[1:4]))
    assert np.all(y[4:] == np.float32(0.25))
    ly = sm.log_softmax(x)
    assert ly[0, 1] == -inf and ly[0, 3] == -inf
    assert np.all(np.isnan(ly[1:4]))
    assert np.all(ly[4:] == np.float32(-np.log(4.0)))  # exactly -log(n), never log(softmax)
    tl = torch.log_softmax(torch.from_numpy(x), -1).numpy()
    np.testing.assert_allclose(ly[[0, 4, 5]], tl[[0, 4, 5]], rtol=1e-6)


def test_edges_logsumexp(each_target):
    inf, nan = np.inf, np.nan
    x = np.array([[-inf, -inf], [inf, 1.0], [nan, 1.0], [-inf, 0.0]])
    y = sm.logsumexp(x)
    assert y[0] == -inf and y[1] == inf and np.isnan(y[2]) and y[3] == 0.0
    assert sm.logsumexp(np.zeros((3, 0))).tolist() == [-inf] * 3
    assert torch.logsumexp(torch.zeros(3, 0), -1).tolist() == [-inf] * 3


def test_empty_tensors():
    for shape in [(0, 5), (5, 0), (0,), (2, 0, 3)]:
        x = np.zeros(shape, np.float32)
        for fn in (sm.softmax, sm.log_softmax, sm.hardmax, sm.sigmoid):
            y = fn(x)
            assert y.shape == shape and y.dtype == np.float32
    assert sm.logsumexp(np.zeros((0, 5))).shape == (0,)
    assert sm.argmax(np.zeros((0, 5))).shape == (0,)
    with pytest.raises(ValueError, match="empty row"):
        sm.argmax(np.zeros((3, 0)))
    t = sm.softmax(torch.zeros(0, 4))
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (0, 4)


def test_float16_low_precision_accumulates_in_f32(rng):
    x = np.zeros(1000, np.float16)
    assert sm.softmax(x)[0] == np.float16(1 / 1000)
    x = (rng.standard_normal((8, 300)) * 4).astype(np.float16)
    y = sm.softmax(x)
    assert y.dtype == np.float16
    ref = ref64(sp.softmax, x)
    # rounded once from an f32 result: within half an f16 ulp plus the f32 error
    np.testing.assert_allclose(y, ref.astype(np.float16), rtol=2 ** -10, atol=2 ** -24)
    y32 = sm.softmax(x, dtype=np.float32)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ref, rtol=6 * F32_EPS)
    np.testing.assert_allclose(sm.log_softmax(x, dtype="float32"), ref64(sp.log_softmax, x),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sm.logsumexp(x, dtype=np.float32),
                               sp.logsumexp(x.astype(np.float64), axis=-1), rtol=2 * F32_EPS)
    np.testing.assert_allclose(sm.sigmoid(x, dtype=np.float32), sp.expit(x.astype(np.float64)),
                               rtol=4 * F32_EPS)
    np.testing.assert_array_equal(sm.argmax(x), np.argmax(x, -1))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(sm.softmax(t).numpy(), torch.softmax(t.float(), -1).half().numpy(),
                               rtol=2 ** -10, atol=2 ** -24)


# ---------------------------------------------------------------- argmax, hardmax, sigmoid

def test_argmax_ties_nan_keepdims(rng, each_target):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 1.0, np.nan, 5.0], [2.0, 2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(sm.argmax(x), np.argmax(x, -1))
    np.testing.assert_array_equal(sm.argmax(x), torch.argmax(torch.from_numpy(x), -1).numpy())
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        got = sm.argmax(x, axis=axis, keepdims=True)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.argmax(x, axis, keepdims=True))
    got = sm.argmax(x, dim=1, dtype=np.int32)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.argmax(x, 1))
    out = np.empty((4, 6), np.int32)
    assert sm.argmax(x, 1, out=out) is out
    np.testing.assert_array_equal(out, np.argmax(x, 1))
    with pytest.raises(TypeError):
        sm.argmax(x, dtype=np.float32)


def test_hardmax(rng):
    x = rng.standard_normal((5, 7, 3))
    x[0, 0, :] = 1.0  # ties: lowest index
    for axis in (0, 1, -1):
        y = sm.hardmax(x, axis)
        ref = np.zeros_like(x)
        np.put_along_axis(ref, np.expand_dims(np.argmax(x, axis), axis), 1.0, axis)
        np.testing.assert_array_equal(y, ref)
    y = sm.hardmax(x.astype(np.float32), dtype=np.float64)
    assert y.dtype == np.float64
    xi = x.copy()
    assert sm.hardmax(xi, out=xi) is xi
    np.testing.assert_array_equal(xi, sm.hardmax(x))


def test_sigmoid_matches_scipy_and_torch(rng, each_target):
    x = np.concatenate([rng.standard_normal(1000) * 30,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e5, -1e5, 88.0, -104.0]])
    for dtype, eps in [(np.float32, F32_EPS), (np.float64, F64_EPS)]:
        xd = x.astype(dtype)
        y = sm.sigmoid(xd)
        ref = sp.expit(xd.astype(np.float64)).astype(dtype)  # rounded: f32 underflows at -104
        np.testing.assert_allclose(y, ref, rtol=4 * eps, atol=0)
        np.testing.assert_allclose(y, torch.sigmoid(torch.from_numpy(xd)).numpy(),
                                   rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)
    assert sm.expit(np.float64(0.0)) == 0.5
    y0 = sm.sigmoid(np.array(2.0))
    assert y0.shape == () and y0 == sp.expit(2.0)


# ---------------------------------------------------------------- out= and in place

def test_out_in_place_and_separate(rng):
    x = rng.standard_normal((4, 9))
    expect = sm.softmax(x.copy())
    xi = x.copy()
    assert sm.softmax(xi, out=xi) is xi
    np.testing.assert_array_equal(xi, expect)
    xi = x.copy()
    assert sm.log_softmax(xi, out=xi) is xi
    np.testing.assert_array_equal(xi, sm.log_softmax(x))
    xi = x.copy()
    sm.sigmoid(xi, out=xi)
    np.testing.assert_array_equal(xi, sm.sigmoid(x))
    out = np.empty(4)
    assert sm.logsumexp(x, out=out) is out
    np.testing.assert_array_equal(out, sm.logsumexp(x))
    out = np.empty((4, 1))
    sm.logsumexp(x, keepdims=True, out=out)
    np.testing.assert_array_equal(out[:, 0], sm.logsumexp(x))
    out16 = np.empty((4, 9), np.float16)
    sm.softmax(x.astype(np.float32), out=out16)
    np.testing.assert_allclose(out16, expect, rtol=2 ** -10)


def test_threads_do_not_change_results(rng):
    x = rng.standard_normal((3, 300000)).astype(np.float32)
    for fn in (sm.softmax, sm.log_softmax, sm.logsumexp, sm.sigmoid):
        np.testing.assert_array_equal(fn(x, threads=1), fn(x, threads=2))
    x = rng.standard_normal((20000, 8)).astype(np.float32)
    np.testing.assert_array_equal(sm.softmax(x, threads=1), sm.softmax(x, threads=2))


# ---------------------------------------------------------------- bad inputs -> exceptions

def test_bad_arguments_raise(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    cases = [
        (ValueError, "axis", lambda: sm.softmax(x, axis=2)),
        (ValueError, "axis", lambda: sm.log_softmax(x, axis=-3)),
        (ValueError, "axis", lambda: sm.logsumexp(x, axis=5)),
        (ValueError, "axis", lambda: sm.argmax(x, axis=2)),
        (ValueError, "axis", lambda: sm.hardmax(x, dim=-3)),
        (ValueError, "axis", lambda: sm.softmax(np.float32(1.0), axis=1)),  # rank 0: axis -1/0 only
        (ValueError, "axis", lambda: sm.softmax(x, axis=2 ** 70)),
        (TypeError, "not both", lambda: sm.softmax(x, axis=0, dim=0)),
        (TypeError, "not both", lambda: sm.logsumexp(x, keepdims=True, keepdim=True)),
        (TypeError, "integer", lambda: sm.softmax(x, axis=1.5)),
        (TypeError, "integer", lambda: sm.softmax(x, axis=(0, 1.5))),
        (ValueError, "repeated", lambda: sm.softmax(x, axis=(0, -2))),
        (ValueError, "temperature", lambda: sm.softmax(x, temperature=0.0)),
        (ValueError, "temperature", lambda: sm.softmax(x, temperature=-1.0)),
        (ValueError, "temperature", lambda: sm.log_softmax(x, temperature=float("nan"))),
        (ValueError, "temperature", lambda: sm.logsumexp(x, temperature=float("inf"))),
        (ValueError, "shape", lambda: sm.softmax(x, out=np.empty((4, 3), np.float32))),
        (ValueError, "shape", lambda: sm.logsumexp(x, out=np.empty((3, 1), np.float32))),
        (ValueError, "shape", lambda: sm.argmax(x, out=np.empty(4, np.int64))),
        (TypeError, "masked", lambda: sm.softmax(np.ma.masked_array(x, x > 0))),
        (TypeError, "disagrees", lambda: sm.softmax(x, dtype=np.float16,
                                                    out=np.empty((3, 4), np.float32))),
        (TypeError, "dtype", lambda: sm.softmax(x, dtype="int8")),
        (TypeError, "dtype", lambda: sm.softmax(x, dtype="not a dtype")),
        (TypeError, "bfloat16", lambda: sm.softmax(x, dtype="bfloat16")),  # NumPy has none
        (TypeError, "dtype i64", lambda: sm.softmax(torch.arange(4))),  # torch ints: no promotion
        (TypeError, "dtype", lambda: sm.softmax(x.astype(np.longdouble))),
        (TypeError, "complex", lambda: sm.softmax([1j, 2.0])),
        (TypeError, "numeric", lambda: sm.softmax(["a", "b"])),
        (TypeError, "NumPy array", lambda: sm.softmax(x, out=[0.0] * 12)),
        (ValueError, "read-only", lambda: sm.softmax(x, out=np.broadcast_to(
            np.zeros(4, np.float32), (3, 4)))),
        (ValueError, "overlap", lambda: sm.softmax(x, out=x[::-1])),
        (ValueError, "overlap", lambda: sm.logsumexp(x, out=x[:, 0])),
        (ValueError, "threads", lambda: sm.softmax(x, threads=-1)),
        (TypeError, "", lambda: sm.softmax(x, threads=2 ** 40)),
    ]
    for exc, match, fn in cases:
        with pytest.raises(exc, match=match):
            fn()


def test_odd_byte_strides_raise():
    rec = np.zeros(6, dtype=[("a", "u1"), ("b", "f4")])
    x = rec["b"]
    assert x.strides == (5,)
    with pytest.raises(ValueError, match="not a multiple of the item size"):
        sm.softmax(x)
    with pytest.raises(ValueError, match="not a multiple"):
        sm.softmax(np.zeros(6, np.float32), out=x)
    # a dimension of size 1 never uses its stride: accepted
    np.testing.assert_array_equal(sm.softmax(rec["b"][:1]), [1.0])


def test_errors_leave_output_untouched(rng):
    x = rng.standard_normal((3, 4))
    out = np.full((3, 4), 5.0)
    with pytest.raises(ValueError):
        sm.softmax(x, axis=7, out=out)
    with pytest.raises(ValueError):
        sm.softmax(x, temperature=0, out=out)
    assert np.all(out == 5.0)


def test_library_message_is_kept():
    with pytest.raises(ValueError) as e:
        sm.log_softmax(np.zeros((2, 3)), axis=3)
    assert str(e.value) == ("softmax::log_softmax: argument 'axis' = 3: must be in [-2, 1] for a "
                            "tensor of rank 2")


# ---------------------------------------------------------------- DLPack / torch

def test_torch_round_trip_f32_f64(rng):
    for dtype in (torch.float32, torch.float64):
        t = torch.randn(6, 17, dtype=dtype) * 4
        for fn, tf in [(sm.softmax, torch.softmax), (sm.log_softmax, torch.log_softmax)]:
            y = fn(t, dim=0)
            assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == t.shape
            torch.testing.assert_close(y, tf(t, 0), rtol=2e-6, atol=1e-6)
        y = sm.logsumexp(t, dim=1, keepdim=True)
        torch.testing.assert_close(y, torch.logsumexp(t, 1, keepdim=True))
        i = sm.argmax(t, 0)
        assert i.dtype == torch.int64
        assert torch.equal(i, torch.argmax(t, 0))
        torch.testing.assert_close(sm.sigmoid(t), torch.sigmoid(t))
        assert torch.equal(sm.hardmax(t, 1),
                           torch.nn.functional.one_hot(torch.argmax(t, 1), 17).to(dtype))


def test_torch_strided_views_without_copy(rng):
    base = torch.randn(10, 30)
    for t in (base.t(), base[::2, 1::3], base.unsqueeze(0).expand(3, 10, 30), base[:, 5]):
        torch.testing.assert_close(sm.softmax(t), torch.softmax(t, -1))
        torch.testing.assert_close(sm.log_softmax(t, 0), torch.log_softmax(t, 0))
    # out= into a torch view writes through to its storage (no copy)
    store = torch.full((30, 10), 9.0)
    out = store.t()
    assert sm.softmax(base, out=out) is out
    torch.testing.assert_close(store.t(), torch.softmax(base, -1))
    # in place on a tensor
    x = base.clone()
    assert sm.softmax(x, out=x) is x
    torch.testing.assert_close(x, torch.softmax(base, -1))


def test_torch_bfloat16_round_trip():
    t = (torch.randn(8, 1000) * 3).to(torch.bfloat16)
    y = sm.softmax(t)
    assert y.dtype == torch.bfloat16
    ref = torch.softmax(t.double(), -1)
    # rounded once from f32: within one bf16 ulp of the exact result
    torch.testing.assert_close(y.double(), ref, rtol=2 ** -8, atol=1e-30)
    y32 = sm.softmax(t, dtype=torch.float32)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), ref, rtol=1e-6, atol=1e-30)
    assert torch.all(sm.softmax(torch.zeros(1000, dtype=torch.bfloat16)) ==
                     torch.tensor(1 / 1000).to(torch.bfloat16))
    ls = sm.logsumexp(t, dtype=torch.float32)
    torch.testing.assert_close(ls.double(), torch.logsumexp(t.double(), -1), rtol=1e-6, atol=0)
    out = torch.empty(8, 1000, dtype=torch.bfloat16)
    sm.log_softmax(t.float(), out=out)
    torch.testing.assert_close(out.double(), torch.log_softmax(t.double(), -1), rtol=2 ** -8,
                               atol=1e-2)
    assert torch.equal(sm.argmax(t), torch.argmax(t.float(), -1))
    torch.testing.assert_close(sm.sigmoid(t).double(), torch.sigmoid(t.double()),
                               rtol=2 ** -8, atol=0)


def test_torch_requires_grad_and_mixed_containers():
    p = torch.randn(3, 5, requires_grad=True)
    torch.testing.assert_close(sm.softmax(p), torch.softmax(p.detach(), -1))
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    out = torch.empty(3, 5)
    assert sm.softmax(x, out=out) is out  # NumPy in, torch out=
    torch.testing.assert_close(out, torch.softmax(torch.from_numpy(x), -1))
    y = sm.softmax(torch.from_numpy(x), dtype=np.float16)
    assert y.dtype == torch.float16


class DLPackOnly:
    """A generic DLPack producer (not torch): output comes back as NumPy."""

    def __init__(self, t, device=(1, 0)):
        self.t, self.device = t, device

    def __dlpack__(self, stream=None):
        return self.t.__dlpack__()

    def __dlpack_device__(self):
        return self.device


def test_generic_dlpack_producer():
    t = torch.randn(4, 6)
    y = sm.softmax(DLPackOnly(t))
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, torch.softmax(t, -1).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="device"):
        sm.softmax(DLPackOnly(t, device=(2, 0)))  # CUDA
    with pytest.raises(TypeError, match="dtype"):
        sm.softmax(torch.arange(5))


# ---------------------------------------------------------------- GIL, docs

def test_gil_is_released():
    x = np.random.default_rng(0).standard_normal((64, 1 << 17)).astype(np.float32)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-3)
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    th = threading.Thread(target=spin)
    th.start()
    try:
        time.sleep(0.05)
        best = 0.0
        for _ in range(5):
            c0, t0 = count[0], time.perf_counter()
            sm.log_softmax(x, threads=1)
            c1, t1 = count[0], time.perf_counter()
            time.sleep(0.02)
            c2 = count[0]
            rate = (c2 - c1) / 0.02  # increments per second while the GIL is free
            # with the GIL held, at most ~2 switch intervals (2 ms) of increments get through
            best = max(best, (c1 - c0) / max(rate * (t1 - t0), 1.0))
            if best > 0.3 and (t1 - t0) > 0.02:
                break
        assert best > 0.3, best
    finally:
        stop.set()
        th.join()
        sys.setswitchinterval(old)


PUBLIC = ["softmax", "log_softmax", "logsumexp", "argmax", "hardmax", "sigmoid",
          "available_targets", "current_target", "set_target"]
OPTIONAL = ["softmax_backward", "log_softmax_backward", "cross_entropy", "nll_loss",
            "linear_cross_entropy", "masked_softmax", "masked_softmax_backward", "attention",
            "sample", "sample_from_probs", "top_logprobs"]
PUBLIC += [n for n in OPTIONAL if hasattr(sm, n)]


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc_docstrings_and_examples(name):
    fn = getattr(sm, name)
    doc = fn.__doc__
    assert doc.startswith(name + "(")
    for section in ("Examples\n--------",):
        assert section in doc
    if name not in ("available_targets", "current_target", "set_target"):
        for section in ("Parameters\n----------", "Returns\n-------", "Raises\n------"):
            assert section in doc
        assert "shape" in doc and "float32" in doc
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(fn, name, globs={}):
        runner.run(test)
    assert runner.failures == 0


def test_targets_do_not_change_results(rng):
    x = (rng.standard_normal((4, 777)) * 5).astype(np.float32)
    base = sm.softmax(x)
    try:
        for tgt in sm.available_targets():
            sm.set_target(tgt)
            assert sm.current_target() == tgt
            np.testing.assert_array_equal(sm.softmax(x), base)
    finally:
        sm.set_target("")
    with pytest.raises(ValueError):
        sm.set_target("NO_SUCH_TARGET")
