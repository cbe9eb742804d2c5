# Tests of the row-statistics API (softmax_stats, merge_stats, softmax_from_stats,
# log_softmax_from_stats, logsumexp_from_stats) against NumPy / scipy.special and, bitwise,
# against softmax.softmax / log_softmax / logsumexp of the whole rows for aligned splits.
import doctest

import numpy as np
import pytest
import scipy.special as sp

import softmax as sm

C = sm.STATS_CHUNK


def split_stats(x, cuts, axis=-1, temperature=1.0, refine=True):
    """Statistics of the slices of x at `cuts` along `axis`, merged in class order (and refined)."""
    n = x.shape[axis]
    b = [0] + list(cuts) + [n]
    slices = [np.take(x, np.arange(b[i], b[i + 1]), axis=axis) for i in range(len(b) - 1)]
    m = None
    for s in slices:
        st = sm.softmax_stats(s, axis, temperature)
        m = st if m is None else sm.merge_stats(m, st)
    if refine:
        m2 = None
        for s in slices:
            st = sm.softmax_stats(s, axis, temperature, refine=m)
            m2 = st if m2 is None else sm.merge_stats(m2, st)
        m = m2
    return slices, m


def finish(slices, m, axis=-1):
    y = np.concatenate([sm.softmax_from_stats(s, m, axis) for s in slices], axis=axis)
    ly = np.concatenate([sm.log_softmax_from_stats(s, m, axis) for s in slices], axis=axis)
    return y, ly, sm.logsumexp_from_stats(m)


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint64 if a.itemsize == 8 else np.uint32 if a.itemsize == 4 else np.uint16)


def test_shape_and_fields():
    x = np.array([[1.0, 3.0, 2.0]], np.float32)
    s = sm.softmax_stats(x)
    assert s.shape == (1, 1, 8) and s.dtype == np.float64
    r = s[0, 0]
    assert r[0] == 3.0 and r[5] == 3 and r[6] == 0 and r[7] == 1.0
    np.testing.assert_allclose(r[1], np.exp(x - 3.0).sum(), rtol=1e-7)
    assert sm.softmax_stats(np.zeros((2, 3, 70001)), axis=2).shape == (2, 3, 3, 8)
    assert sm.softmax_stats(np.zeros((70001, 4)), axis=0).shape == (4, 3, 8)
    assert sm.softmax_stats(np.zeros((2, 0))).shape == (2, 1, 8)
    assert sm.softmax_stats(np.array([1.0, np.nan]))[0, 6] == 3.0  # NaN + f64 compute


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("n,cuts", [(7, []), (7, [0, 7]), (70001, [C]), (70001, [C, 2 * C]),
                                    (3 * C + 5, [C, 2 * C, 3 * C])])
def test_aligned_split_is_bitwise_equal(dtype, temperature, n, cuts):
    rng = np.random.default_rng(n)
    x = (rng.normal(size=(3, n)) * 3).astype(dtype)
    x[1, n // 2] = 40.0  # a near-certain row
    x[2, :] = -np.inf
    x[2, n - 1] = 0.0
    y, ly, lse = finish(*split_stats(x, cuts, temperature=temperature))
    assert (bits(y) == bits(sm.softmax(x, temperature=temperature))).all()
    assert (bits(ly) == bits(sm.log_softmax(x, temperature=temperature))).all()
    assert lse.dtype == sm.logsumexp(x).dtype or dtype == np.float16
    want = sm.logsumexp(x, temperature=temperature)
    assert (bits(lse.astype(want.dtype)) == bits(want)).all()


def test_aligned_split_strided_axis0():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 70001)).T  # axis 0 strided
    slices, m = split_stats(x, [C, 2 * C], axis=0)
    y, ly, lse = finish(slices, m, axis=0)
    assert (bits(y) == bits(sm.softmax(x, axis=0))).all()
    assert (bits(ly) == bits(sm.log_softmax(x, axis=0))).all()
    assert (bits(lse) == bits(sm.logsumexp(x, axis=0))).all()


@pytest.mark.parametrize("n,cuts", [(1000, [500]), (1000, [1, 2, 999]), (70001, [40000]),
                                    (70001, [10, 10, 50000])])
def test_other_splits_against_scipy(n, cuts):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, n)) * 4
    for temperature in (1.0, 0.7):
        y, ly, lse = finish(*split_stats(x, cuts, temperature=temperature))
        np.testing.assert_allclose(y, sp.softmax(x / temperature, axis=-1), rtol=1e-14, atol=0)
        # (SciPy rounds x / T first: its own error is about |x / T| eps)
        np.testing.assert_allclose(ly, sp.log_softmax(x / temperature, axis=-1), rtol=1e-13,
                                   atol=1e-13)
        np.testing.assert_allclose(lse, sp.logsumexp(x / temperature, axis=-1), rtol=1e-14)
        x32 = x.astype(np.float32)
        y, ly, lse = finish(*split_stats(x32, cuts, temperature=temperature))
        np.testing.assert_allclose(y, sp.softmax(x32.astype(np.float64) / temperature, axis=-1),
                                   rtol=5e-7, atol=0)
        np.testing.assert_allclose(lse, sp.logsumexp(x32.astype(np.float64) / temperature, axis=-1),
                                   rtol=3e-7)


def test_edge_rows():
    x = np.array([[1.0, np.nan, 2.0, 3.0], [1.0, np.inf, 2.0, 3.0],
                  [-np.inf] * 4, [0.0, -np.inf, 1.0, -np.inf]])
    y, ly, lse = finish(*split_stats(x, [2]))
    assert np.isnan(y[:3]).all() and np.isnan(ly[:3]).all()
    assert np.isnan(lse[0]) and lse[1] == np.inf and lse[2] == -np.inf
    assert y[3, 1] == 0 and ly[3, 3] == -np.inf
    np.testing.assert_allclose(lse[3], np.logaddexp(0.0, 1.0), rtol=1e-15)


def test_merge_is_associative_not_commutative():
    rng = np.random.default_rng(4)
    parts = [sm.softmax_stats(rng.normal(size=(2, 10))) for _ in range(3)]
    a = sm.merge_stats(sm.merge_stats(parts[0], parts[1]), parts[2])
    b = sm.merge_stats(parts[0], sm.merge_stats(parts[1], parts[2]))
    assert (bits(a) == bits(b)).all() and a.shape == (2, 3, 8)
    assert (sm.merge_stats(parts[1], parts[0])[:, 0] == parts[1][:, 0]).all()


def test_torch_and_bfloat16():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 70001).to(torch.bfloat16)
    s = sm.merge_stats(sm.softmax_stats(x[:, :C]), sm.softmax_stats(x[:, C:]))
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float64
    y = torch.cat([sm.softmax_from_stats(x[:, :C], s), sm.softmax_from_stats(x[:, C:], s)], 1)
    assert torch.equal(y.view(torch.int16), sm.softmax(x).view(torch.int16))


def test_errors():
    x = np.zeros((2, 5), np.float32)
    s = sm.softmax_stats(x)
    with pytest.raises(ValueError, match="softmax_stats.*temperature"):
        sm.softmax_stats(x, temperature=0.0)
    with pytest.raises(ValueError, match="merge_stats.*'b'.*temperature"):
        sm.merge_stats(s, sm.softmax_stats(x, temperature=2.0))
    with pytest.raises(ValueError, match="softmax_from_stats.*'stats'"):
        sm.softmax_from_stats(np.zeros((3, 5), np.float32), s)  # rows differ
    with pytest.raises(ValueError, match="log_softmax_from_stats.*'stats'.*classes"):
        sm.log_softmax_from_stats(np.zeros((2, 6), np.float32), s)  # more classes than the row
    with pytest.raises(ValueError, match="compute"):
        sm.softmax_from_stats(np.zeros((2, 5)), s)  # f64 x, f32 statistics
    with pytest.raises(TypeError, match="logsumexp_from_stats.*'y'"):
        sm.logsumexp_from_stats(s, dtype=np.float64)
    with pytest.raises(ValueError, match="softmax_stats.*'refine'"):
        sm.softmax_stats(x, refine=sm.softmax_stats(x, temperature=3.0))
    out = np.full((2, 5), 7.0, np.float32)
    with pytest.raises(ValueError):
        sm.softmax_from_stats(np.zeros((2, 5), np.float32), s[:1], out=out)
    assert (out == 7.0).all()  # nothing written


def test_docstring_examples():
    for fn in (sm.softmax_stats, sm.merge_stats, sm.softmax_from_stats, sm.log_softmax_from_stats,
               sm.logsumexp_from_stats):
        r = doctest.run_docstring_examples(fn, {"np": np, "softmax": sm}, verbose=False)
        assert r is None
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for fn in (sm.softmax_stats, sm.merge_stats, sm.softmax_from_stats, sm.log_softmax_from_stats,
               sm.logsumexp_from_stats):
        for t in finder.find(fn, fn.__name__, globs={"np": np, "softmax": sm}):
            runner.run(t)
    assert runner.failures == 0
