# sample / sample_from_probs / top_logprobs: greedy, filters, determinism and the distribution.
import numpy as np
import pytest
import scipy.stats

import softmax as sm

torch = pytest.importorskip("torch")

if not hasattr(sm, "sample"):
    pytest.skip("sampling family not built", allow_module_level=True)


def test_greedy_and_top_k_1_are_argmax():
    x = np.random.default_rng(0).standard_normal((16, 300)).astype(np.float32)
    am = np.argmax(x, -1)
    np.testing.assert_array_equal(sm.sample(x, temperature=0), am)
    np.testing.assert_array_equal(sm.sample(x, top_k=1, seed=5), am)
    t = torch.from_numpy(x)
    out = sm.sample(t, temperature=0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int64
    assert torch.equal(out, torch.argmax(t, -1))


def test_deterministic_and_batch_independent():
    x = np.random.default_rng(1).standard_normal((8, 50))
    a = sm.sample(x, 4, seed=123, offset=7)
    assert a.shape == (8, 4)
    np.testing.assert_array_equal(a, sm.sample(x, 4, seed=123, offset=7, threads=1))
    # row 3 alone with stream 3 draws what it drew inside the batch
    np.testing.assert_array_equal(sm.sample(x[3:4], 4, seed=123, offset=7, streams=[3]), a[3:4])


def test_distribution_matches_softmax():
    logits = np.array([[1.0, 0.0, -1.0, 2.0, 0.5]])
    n = 20000
    draws = sm.sample(logits, n, seed=42, temperature=1.5).ravel()
    p = torch.softmax(torch.from_numpy(logits[0]) / 1.5, 0).numpy()
    counts = np.bincount(draws, minlength=5)
    assert scipy.stats.chisquare(counts, p * n).pvalue > 1e-4


def test_filters_keep_only_allowed_tokens():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    d = sm.sample(logits, 2000, seed=1, top_p=0.7).ravel()
    assert set(np.unique(d)) == {0, 1}
    d = sm.sample(logits, 2000, seed=1, min_p=0.5).ravel()
    assert set(np.unique(d)) == {0, 1}
    d = sm.sample(logits, 2000, seed=1, top_k=3).ravel()
    assert set(np.unique(d)) == {0, 1, 2}
    d = sm.sample_from_probs(np.array([[0.0, 0.2, 0.0, 0.8]]), 500, seed=3).ravel()
    assert set(np.unique(d)) <= {1, 3}
    # per-row parameters
    two = np.repeat(logits, 2, axis=0)
    d = sm.sample(two, 500, seed=2, top_k=[1, 2])
    assert set(np.unique(d[0])) == {0} and set(np.unique(d[1])) == {0, 1}


def test_top_logprobs_matches_torch():
    x = torch.randn(5, 100, dtype=torch.float64)
    ids, lp = sm.top_logprobs(x, 7, temperature=0.8)
    ref_lp, ref_ids = torch.topk(torch.log_softmax(x / 0.8, -1), 7)
    assert torch.equal(ids, ref_ids)
    torch.testing.assert_close(lp, ref_lp, rtol=1e-12, atol=1e-12)
    ids32, lp32 = sm.top_logprobs(x.float().numpy(), 3)
    assert lp32.dtype == np.float32 and ids32.dtype == np.int64


def test_sampling_errors():
    x = np.zeros((2, 4))
    with pytest.raises(ValueError, match="temperature"):
        sm.sample(x, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        sm.sample(x, top_p=0.0)
    with pytest.raises(ValueError):
        sm.sample(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="method"):
        sm.sample(x, method="beam")
    with pytest.raises(ValueError):
        sm.sample(np.zeros(4))  # rank 1
