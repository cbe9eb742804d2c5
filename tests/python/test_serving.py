# Serving-side sampling: logit processors against the same pipeline in torch ops, per-request
# seeds, processed outputs, speculative verification (chi-square), sampling without
# replacement, beam search, Gumbel-softmax and sparsemax.
import numpy as np
import pytest
import scipy.stats

import softmax as sm

torch = pytest.importorskip("torch")

if not hasattr(sm, "apply_penalties"):
    pytest.skip("serving ops not built", allow_module_level=True)


def torch_penalties(x, prev, rep, pres, freq, bias_ids, bias_vals):
    """vLLM's order in torch ops: counts by scatter_add, CTRL repetition, OpenAI penalties, bias."""
    B, V = x.shape
    counts = torch.zeros(B, V, dtype=x.dtype)
    for r, ids in enumerate(prev):
        counts[r].scatter_add_(0, torch.as_tensor(ids, dtype=torch.int64),
                               torch.ones(len(ids), dtype=x.dtype))
    seen = counts > 0
    rep_t = torch.where(seen, torch.as_tensor(rep, dtype=x.dtype)[:, None], torch.ones(()).to(x.dtype))
    x = torch.where(x > 0, x / rep_t, x * rep_t)
    x = x - torch.as_tensor(freq, dtype=x.dtype)[:, None] * counts \
          - torch.as_tensor(pres, dtype=x.dtype)[:, None] * seen.to(x.dtype)
    x[:, bias_ids] += torch.as_tensor(bias_vals, dtype=x.dtype)
    return x


def test_apply_penalties_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 200)) * 3
    prev = [[1, 1, 5, 9], [2], [], [7, 7, 7, 150, 199]]
    padded = np.full((4, 5), -1)
    for r, ids in enumerate(prev):
        padded[r, :len(ids)] = ids
    rep, pres, freq = [1.3, 0.7, 2.0, 1.1], [0.5, 0.0, -0.3, 1.0], [0.2, 0.1, 0.0, 0.6]
    got = sm.apply_penalties(x, padded, repetition_penalty=rep, presence_penalty=pres,
                             frequency_penalty=freq, logit_bias={3: 2.0, 9: -1.5})
    ref = torch_penalties(torch.from_numpy(x), prev, rep, pres, freq, [3, 9], [2.0, -1.5])
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-15, atol=1e-15)
    # Ragged per-row lists give the same; float32 within one rounding per step.
    np.testing.assert_array_equal(got, sm.apply_penalties(x, prev, repetition_penalty=rep,
                                                          presence_penalty=pres, frequency_penalty=freq,
                                                          logit_bias=([3, 9], [2.0, -1.5])))
    g32 = sm.apply_penalties(x.astype(np.float32), padded, repetition_penalty=rep,
                             presence_penalty=pres, frequency_penalty=freq)
    r32 = torch_penalties(torch.from_numpy(x.astype(np.float32)), prev, rep, pres, freq, [], [])
    np.testing.assert_allclose(g32, r32.numpy(), rtol=3e-7, atol=1e-6)


def test_repetition_penalty_lowers_both_signs():
    x = np.array([[2.0, -2.0, 0.0, 1.0]])
    y = sm.apply_penalties(x, [0, 1], repetition_penalty=2.0)
    np.testing.assert_array_equal(y, [[1.0, -4.0, 0.0, 1.0]])
    p0, p1 = sm.filtered_probs(x), sm.filtered_probs(x, prev_tokens=[0, 1], repetition_penalty=2.0)
    assert p1[0, 0] < p0[0, 0] and p1[0, 1] < p0[0, 1]


def test_sample_uses_processors():
    x = np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32)
    kw = dict(prev_tokens=[[1, 2], [3], [4, 4]], repetition_penalty=1.5, frequency_penalty=0.3,
              logit_bias=[{5: 3.0}, None, {6: -2.0}], banned_tokens=[7])
    y = sm.apply_penalties(x, kw["prev_tokens"], repetition_penalty=1.5, frequency_penalty=0.3,
                           logit_bias=kw["logit_bias"], banned_tokens=[7])
    for seed in range(5):
        np.testing.assert_array_equal(sm.sample(x, 8, seed=seed, top_p=0.9, **kw),
                                      sm.sample(y, 8, seed=seed, top_p=0.9))
    assert 7 not in sm.sample(x, 2000, seed=3, **kw)
    # EOS suppressed until the minimum length.
    z = np.zeros((1, 4), np.float32)
    z[0, 2] = 9
    assert sm.sample(z, temperature=0, eos_token_ids=[2], min_tokens=3, num_generated=2)[0] != 2
    assert sm.sample(z, temperature=0, eos_token_ids=[2], min_tokens=3, num_generated=3)[0] == 2


def test_per_request_seeds_and_batch_invariance():
    x = np.random.default_rng(2).standard_normal((4, 300))
    seeds = [5, 5 + 2**32, 5 + 2**40, 2**64 - 1]
    offsets = [0, 7, 2**63, 3]
    temps = [1.0, 0.5, 1.5, 0.8]
    a = sm.sample(x, 6, seed=seeds, offset=offsets, streams=[11, 11, 11, 2**50], temperature=temps,
                  top_k=[0, -1, 20, 5])
    for r in range(4):
        one = sm.sample(x[r:r + 1], 6, seed=seeds[r], offset=offsets[r],
                        streams=[[11, 11, 11, 2**50][r]], temperature=temps[r], top_k=[0, -1, 20, 5][r])
        np.testing.assert_array_equal(one, a[r:r + 1])
    flat = np.zeros((2, 4096))
    t = sm.sample(flat, 32, seed=[9, 9 + 2**32], streams=[0, 0])
    assert (t[0] == t[1]).sum() <= 2  # seeds differing only above bit 31 are independent


def torch_filtered(x, t, k, p):
    """top-k then top-p by sort + cumsum (the torch pipeline), renormalised."""
    probs = torch.softmax(x / t, -1)
    sp, idx = torch.sort(probs, descending=True)
    keep = torch.zeros_like(sp, dtype=torch.bool)
    keep[:k] = True
    sp = torch.where(keep, sp, torch.zeros(()).to(sp.dtype))
    cum = torch.cumsum(sp, 0)
    keep &= (cum - sp) < p * cum[-1]
    out = torch.zeros_like(probs)
    out[idx[keep]] = sp[keep]
    return out / out.sum()


def test_filtered_probs_and_logprobs_match_torch():
    x = torch.randn(300, dtype=torch.float64) * 2
    got = sm.filtered_probs(x[None], temperature=0.7, top_k=40, top_p=0.9)[0]
    torch.testing.assert_close(got, torch_filtered(x, 0.7, 40, 0.9), rtol=1e-12, atol=1e-15)
    tok = sm.sample(x[None], 16, temperature=0.7, top_k=40, top_p=0.9, seed=4)
    raw = sm.token_logprobs(x[None], tok)
    torch.testing.assert_close(raw[0], torch.log_softmax(x, 0)[tok[0]], rtol=1e-12, atol=1e-12)
    proc = sm.token_logprobs(x[None], tok, mode="processed", temperature=0.7, top_k=40, top_p=0.9)
    torch.testing.assert_close(proc[0], torch.log(got[tok[0]]), rtol=1e-12, atol=1e-12)
    ids, lp = sm.top_logprobs(x[None], 5, mode="processed", temperature=0.7, top_k=40, top_p=0.9)
    ref_p, ref_i = torch.topk(got, 5)
    assert torch.equal(ids[0], ref_i)
    torch.testing.assert_close(lp[0], torch.log(ref_p), rtol=1e-12, atol=1e-12)


def test_speculative_verify_follows_target():
    p = np.array([[[0.3, 0.2, 0.25, 0.15, 0.0, 0.1],
                   [0.05, 0.05, 0.4, 0.1, 0.2, 0.2],
                   [0.1, 0.2, 0.3, 0.15, 0.05, 0.2]]])
    q = np.array([[[0.5, 0.0, 0.1, 0.2, 0.2, 0.0],    # q = 0 where p > 0, p = 0 where q > 0
                   [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]]])
    n = 40000
    rng = np.random.default_rng(3)
    drafts = np.stack([rng.choice(6, n, p=q[0, j]) for j in range(2)], 1)
    na, tok = sm.speculative_verify(drafts, np.repeat(q, n, 0), np.repeat(p, n, 0), seed=11)
    assert tok.shape == (n, 3) and na.min() >= 0 and na.max() <= 2
    for j in range(3):
        at = tok[na >= j, j]
        counts = np.bincount(at, minlength=6)
        assert counts[p[0, j] == 0].sum() == 0
        live = p[0, j] > 0
        assert scipy.stats.chisquare(counts[live], p[0, j][live] * len(at)).pvalue > 1e-5
    np.testing.assert_allclose((na >= 1).mean(), np.minimum(p[0, 0], q[0, 0]).sum(), atol=0.01)
    with pytest.raises(ValueError, match="draft_probs"):
        sm.speculative_verify(drafts[:1], q * 2, p)


def test_without_replacement_and_beam_search():
    x = np.random.default_rng(4).standard_normal((5, 50))
    t = sm.sample_without_replacement(x, 10, seed=3)
    assert t.shape == (5, 10) and all(len(set(r)) == 10 for r in t)
    np.testing.assert_array_equal(t[:, 0], sm.sample(x, seed=3, method="gumbel_max"))
    np.testing.assert_array_equal(sm.sample_without_replacement(x, 3, temperature=0),
                                  np.argsort(-x, 1, kind="stable")[:, :3])
    lp = torch.log_softmax(torch.randn(4, 100, dtype=torch.float64), -1)
    scores = torch.tensor([-0.1, -0.5, -1.0, -2.0], dtype=torch.float64)
    bi, tk, sc = sm.beam_search_step(lp, scores, 3)
    ref_s, ref_i = torch.topk((scores[:, None] + lp).flatten(), 6)
    assert torch.equal(bi, ref_i // 100) and torch.equal(tk, ref_i % 100)
    torch.testing.assert_close(sc, ref_s, rtol=0, atol=0)


def test_gumbel_softmax():
    x = np.array([[0.5, -1.0, 2.0, 0.0]] * 20000)
    hard = sm.gumbel_softmax(x, hard=True, tau=0.5, seed=2)
    assert set(np.unique(hard)) == {0.0, 1.0} and (hard.sum(1) == 1).all()
    counts = hard.sum(0)
    p = torch.softmax(torch.from_numpy(x[0]), 0).numpy()
    assert scipy.stats.chisquare(counts, p * len(x)).pvalue > 1e-5
    soft = sm.gumbel_softmax(x[:3], tau=0.5, seed=2)
    np.testing.assert_allclose(soft.sum(1), 1, rtol=1e-14)
    assert (np.argmax(soft, 1) == np.argmax(hard[:3], 1)).all()  # same noise
    dy = np.random.default_rng(5).standard_normal((3, 4))
    dx = sm.gumbel_softmax_backward(x[:3], dy, tau=0.5, seed=2)
    ref = soft * (dy - (dy * soft).sum(1, keepdims=True)) / 0.5
    np.testing.assert_allclose(dx, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(dx, sm.gumbel_softmax_backward(x[:3], dy, tau=0.5, hard=True, seed=2))
    with pytest.raises(ValueError, match="tau"):
        sm.gumbel_softmax(x, tau=0.0)


def sparsemax_ref(z):
    zs = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = 1 + k * zs > np.cumsum(zs)
    kk = k[support][-1]
    tau = (np.cumsum(zs)[kk - 1] - 1) / kk
    return np.maximum(z - tau, 0)


def test_sparsemax():
    x = np.random.default_rng(6).standard_normal((6, 30)) * 2
    y = sm.sparsemax(x)
    np.testing.assert_allclose(y, np.stack([sparsemax_ref(r) for r in x]), atol=1e-14)
    assert (y == 0).any() and np.allclose(y.sum(1), 1)
    np.testing.assert_allclose(sm.sparsemax(x, 0), np.stack([sparsemax_ref(c) for c in x.T]).T, atol=1e-14)
    dy = np.random.default_rng(7).standard_normal(x.shape)
    dx = sm.sparsemax_backward(y, dy)
    h = 1e-7
    for i in range(0, 30, 7):
        e = np.zeros_like(x)
        e[:, i] = h
        fd = ((sm.sparsemax(x + e) - sm.sparsemax(x - e)) * dy).sum(1) / (2 * h)
        np.testing.assert_allclose(dx[:, i], fd, atol=1e-6)


def test_serving_errors():
    x = np.zeros((2, 8))
    with pytest.raises(ValueError, match="repetition_penalty"):
        sm.sample(x, prev_tokens=[1], repetition_penalty=0.0)
    with pytest.raises(ValueError, match="prev_tokens"):
        sm.apply_penalties(x, [8])
    with pytest.raises(ValueError, match="logit_bias"):
        sm.sample(x, logit_bias={1: float("nan")})
    with pytest.raises(ValueError, match="top_k"):
        sm.sample(x, top_k=-2)
    with pytest.raises(ValueError, match="mode"):
        sm.token_logprobs(x, [0, 1], mode="cooked")
    with pytest.raises(ValueError):
        sm.sample_without_replacement(x, 9)


def test_seed_scalars_of_any_integer_kind():
    # A NumPy integer scalar (rng.integers(...)) is one seed / offset for every row, as an int is.
    x = np.random.default_rng(3).standard_normal((3, 100))
    ref = sm.sample(x, 4, seed=5, offset=9)
    np.testing.assert_array_equal(sm.sample(x, 4, seed=np.int64(5), offset=np.uint64(9)), ref)
    np.testing.assert_array_equal(sm.sample(x, 4, seed=np.array(5), offset=9), ref)
    np.testing.assert_array_equal(
        sm.sample_without_replacement(x, 2, seed=np.int64(3)),
        sm.sample_without_replacement(x, 2, seed=3))
    # Out of range: the library's message, not an interpreter OverflowError.
    for bad in (2**64, -1):
        with pytest.raises(ValueError, match=r"seed must be in \[0, 2\^64\)"):
            sm.sample(x, seed=bad)
        with pytest.raises(ValueError, match=r"offset must be in \[0, 2\^64\)"):
            sm.sample(x, offset=bad)


def test_integer_per_row_parameters_refuse_fractions():
    x = np.random.default_rng(4).standard_normal((2, 50))
    with pytest.raises(TypeError, match="top_k must hold integers"):
        sm.filtered_probs(x, top_k=[1.7, 3])
    # Whole floats are the integers they hold.
    np.testing.assert_array_equal(sm.filtered_probs(x, top_k=[1.0, 3.0]),
                                  sm.filtered_probs(x, top_k=[1, 3]))
    with pytest.raises(TypeError, match="top_k must be an integer that fits int64"):
        sm.filtered_probs(x, top_k=2**63)


def test_top_logprobs_raw_mode_ignores_temperature():
    x = np.random.default_rng(5).standard_normal((2, 40))
    ids, lp = sm.top_logprobs(x, 3, mode="raw", temperature=0.5)
    ref = x - np.log(np.exp(x).sum(1, keepdims=True))
    np.testing.assert_array_equal(ids, np.argsort(-x, 1, kind="stable")[:, :3])
    np.testing.assert_allclose(lp, np.take_along_axis(ref, ids, 1), rtol=1e-13)


def test_hard_gumbel_softmax_of_invalid_rows_is_nan():
    for row in ([np.nan, 0.0], [np.inf, 0.0], [-np.inf, -np.inf]):
        x = np.array([row])
        assert np.isnan(sm.gumbel_softmax(x, seed=1)).all()
        assert np.isnan(sm.gumbel_softmax(x, hard=True, seed=1)).all()


def test_sparsemax_of_huge_equal_logits_is_uniform():
    np.testing.assert_array_equal(sm.sparsemax(np.array([[1e16, 1e16]])), [[0.5, 0.5]])
    np.testing.assert_allclose(sm.sparsemax(np.array([[1e16 + 2, 1e16, 1e16 - 8]])),
                               [[1.0, 0.0, 0.0]], atol=1e-12)


def test_call_seeds_take_numpy_scalars_and_name_range_errors():
    x = np.random.default_rng(8).standard_normal((2, 6))
    np.testing.assert_array_equal(sm.gumbel_softmax(x, seed=np.int64(3), offset=np.uint64(2)),
                                  sm.gumbel_softmax(x, seed=3, offset=2))
    for fn in (lambda s: sm.gumbel_softmax(x, seed=s),
               lambda s: sm.gumbel_softmax_backward(x, x, seed=s),
               lambda s: sm.log_uniform_candidate_sampler(np.zeros((1, 1), np.int64), 1, 2,
                                                          True, 6, seed=s)):
        for bad in (-1, 2**64):
            with pytest.raises(ValueError, match=r"seed must be in \[0, 2\^64\)"):
                fn(bad)
        with pytest.raises(TypeError, match="seed must be an integer"):
            fn(1.5)
    q = np.full((1, 1, 4), 0.25)
    p = np.full((1, 2, 4), 0.25)
    with pytest.raises(ValueError, match=r"offset must be in \[0, 2\^64\)"):
        sm.speculative_verify(np.zeros((1, 1), np.int64), q, p, offset=2**64)


def test_per_row_lists_that_would_be_ignored_or_wrap_are_refused():
    x = np.random.default_rng(9).standard_normal((2, 30))
    # Empty per-row lists read as "not given" in C++: refused rather than silently ignored.
    for kw in ("seed", "offset", "streams"):
        with pytest.raises(ValueError, match=kw + r" = \[\]"):
            sm.sample(x, **{kw: []})
    with pytest.raises(ValueError, match=r"streams = \[\]"):
        sm.speculative_verify(np.zeros((1, 1), np.int64), np.full((1, 1, 4), 0.25),
                              np.full((1, 2, 4), 0.25), streams=[])
    # Integers past int64 (uint64, huge or infinite floats) are refused, not wrapped to "off".
    for bad in (np.array([2**64 - 1, 2], np.uint64), [1e30, 2.0], [np.inf, 2.0]):
        with pytest.raises(ValueError, match="top_k must hold integers that fit int64"):
            sm.filtered_probs(x, top_k=bad)
    np.testing.assert_array_equal(sm.filtered_probs(x, top_k=np.array([3, 2], np.uint64)),
                                  sm.filtered_probs(x, top_k=[3, 2]))
    # logit_bias keys are token ids.
    with pytest.raises(TypeError, match="logit_bias keys must be integer token ids"):
        sm.sample(x, logit_bias={1.5: 1.0})
    np.testing.assert_array_equal(sm.sample(x, logit_bias={np.int64(1): 5.0}, seed=2),
                                  sm.sample(x, logit_bias={1: 5.0}, seed=2))
