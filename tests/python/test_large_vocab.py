# Sampled, hierarchical and adaptive softmax against torch 1.13: nn.AdaptiveLogSoftmaxWithLoss
# with the same weights, torch autograd of the sampled-softmax and tree formulas (given our
# samples / tree), and TensorFlow's published expected-count formulas.
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import softmax as sm
from conftest import SHARED_DATA

torch = pytest.importorskip("torch")

if not hasattr(sm, "adaptive_log_softmax_with_loss"):
    pytest.skip("large-vocabulary family not built", allow_module_level=True)


def tf_log_uniform_p(k, v):
    return np.log((k + 2.0) / (k + 1.0)) / np.log(v + 1.0)


@pytest.mark.parametrize("unique", [False, True])
def test_log_uniform_expected_counts_follow_tf_formula(unique):
    v, ns = 5000, 200
    true = np.array([[0, 17], [4999, 3]], dtype=np.int64)
    sampled, tec, sec = sm.log_uniform_candidate_sampler(true, 2, ns, unique, v, seed=4)
    assert sampled.shape == (ns,) and tec.shape == (2, 2) and sec.shape == (ns,)
    assert sampled.min() >= 0 and sampled.max() < v
    if unique:
        assert len(set(sampled.tolist())) == ns
        # num_tries is not returned; recover it from one count and check the rest against it
        p0 = tf_log_uniform_p(sampled[0], v)
        tries = math.log1p(-float(sec[0])) / math.log1p(-p0)
        assert tries > ns
        want = lambda k: 1 - (1 - tf_log_uniform_p(k, v)) ** tries
    else:
        want = lambda k: ns * tf_log_uniform_p(k, v)
    np.testing.assert_allclose(sec, want(sampled.astype(np.float64)), rtol=1e-5)
    np.testing.assert_allclose(tec, want(true.astype(np.float64)), rtol=1e-5)


def test_unigram_sampler_chi_square_and_errors():
    from scipy import stats
    v = 30
    unigrams = np.arange(1, v + 1, dtype=np.float64) ** 1.5
    sampled, _, sec = sm.fixed_unigram_candidate_sampler(np.zeros((1, 1), np.int64), 1, 100000, False,
                                                         v, unigrams, distortion=0.5, seed=9)
    p = unigrams ** 0.5 / (unigrams ** 0.5).sum()
    np.testing.assert_allclose(sec, 100000 * p[sampled], rtol=1e-5)
    counts = np.bincount(sampled, minlength=v)
    assert stats.chisquare(counts, 100000 * p).pvalue > 1e-6
    with pytest.raises(ValueError, match="num_sampled"):
        sm.uniform_candidate_sampler(np.zeros((1, 1), np.int64), 1, 31, True, 30)
    with pytest.raises(ValueError, match="true_classes"):
        sm.uniform_candidate_sampler(np.full((1, 1), 30), 1, 3, False, 30)


def torch_sampled_loss(w, b, x, labels, sampled, tec, sec, remove_hits=True):
    """tf.nn.sampled_softmax_loss's formula in torch (float64)."""
    true_logits = (x[:, None, :] * w[labels]).sum(-1) + b[labels] - torch.log(tec)
    samp_logits = x @ w[sampled].T + b[sampled] - torch.log(sec)
    if remove_hits:
        hits = (labels[:, :, None] == sampled[None, None, :]).any(1)
        samp_logits = samp_logits.masked_fill(hits, -math.inf)
    logits = torch.cat([true_logits, samp_logits], 1)
    nt = labels.shape[1]
    return torch.logsumexp(logits, 1) - true_logits.sum(1) / nt


def test_sampled_softmax_loss_and_gradients_match_torch_autograd():
    g = torch.Generator().manual_seed(0)
    v, d, n, nt = 60, 12, 7, 2
    w = torch.randn(v, d, generator=g) * 0.5
    b = torch.randn(v, generator=g) * 0.2
    x = torch.randn(n, d, generator=g)
    labels = torch.randint(0, 15, (n, nt), generator=g)
    go = torch.rand(n, generator=g) + 0.5
    loss, sampled, tec, sec, grads = sm.sampled_softmax_loss(
        w, b, labels, x, 20, v, num_true=nt, sampler="uniform", seed=3, return_samples=True,
        return_grad=True, grad_output=go)
    assert isinstance(loss, torch.Tensor) and loss.shape == (n,)
    w64, b64, x64 = (t.double().requires_grad_() for t in (w, b, x))
    ref = torch_sampled_loss(w64, b64, x64, labels, sampled, tec.double(), sec.double())
    torch.testing.assert_close(loss.double(), ref.detach(), rtol=2e-5, atol=2e-5)
    gw, gb, gx = torch.autograd.grad((ref * go.double()).sum(), (w64, b64, x64))
    torch.testing.assert_close(grads["inputs"].double(), gx, rtol=1e-4, atol=1e-5)
    rows = grads["rows"]
    assert torch.equal(rows, torch.unique(torch.cat([sampled, labels.flatten()])))
    torch.testing.assert_close(grads["weights"].double(), gw[rows], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads["biases"].double(), gb[rows], rtol=1e-4, atol=1e-5)
    untouched = torch.ones(v, dtype=torch.bool)
    untouched[rows] = False
    assert torch.all(gw[untouched] == 0)  # sparse: nothing else moves
    # NumPy in, NumPy out, the same numbers; same seed, same samples
    ln, sn, _, _ = sm.sampled_softmax_loss(w.numpy(), b.numpy(), labels.numpy(), x.numpy(), 20, v,
                                           num_true=nt, sampler="uniform", seed=3, return_samples=True)
    assert isinstance(ln, np.ndarray)
    np.testing.assert_array_equal(sn, sampled.numpy())
    np.testing.assert_allclose(ln, loss.numpy(), rtol=1e-6)


def test_sampled_softmax_errors():
    w = np.zeros((10, 4), np.float32)
    b = np.zeros(10, np.float32)
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="num_sampled"):
        sm.sampled_softmax_loss(w, b, np.zeros((2, 1), np.int64), x, 11, 10, unique=True)
    with pytest.raises(ValueError, match="labels"):
        sm.sampled_softmax_loss(w, b, np.full((2, 1), 10), x, 3, 10)
    with pytest.raises(TypeError, match="f32"):
        sm.sampled_softmax_loss(w.astype(np.float64), b, np.zeros((2, 1), np.int64), x, 3, 10)
    with pytest.raises(ValueError, match="sampler"):
        sm.sampled_softmax_loss(w, b, np.zeros((2, 1), np.int64), x, 3, 10, sampler="zipf")


def torch_tree_log_prob(tree, w, b, h):
    cols = []
    for k in range(tree.num_classes):
        p = torch.as_tensor(tree.paths(k))
        c = torch.as_tensor(tree.codes(k)).to(h.dtype)
        s = h @ w[p].T + b[p]
        cols.append(torch.nn.functional.logsigmoid((2 * c - 1) * s).sum(1))
    return torch.stack(cols, 1)


def test_hierarchical_softmax_matches_torch_tree_formula():
    g = torch.Generator().manual_seed(1)
    counts = (1000 / np.arange(1, 51)).astype(np.int64) + 1
    tree = sm.huffman_tree(counts)
    assert tree.num_classes == 50 and tree.num_internal == 49
    d, n = 10, 9
    w = torch.randn(49, d, generator=g) * 0.5
    b = torch.randn(49, generator=g) * 0.3
    h = torch.randn(n, d, generator=g)
    lp = sm.hierarchical_log_prob(h, tree, w, b)
    ref = torch_tree_log_prob(tree, w.double(), b.double(), h.double())
    torch.testing.assert_close(lp.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.exp(ref).sum(1), torch.ones(n, dtype=torch.float64))
    t = torch.randint(0, 50, (n,), generator=g)
    h64, w64, b64 = (a.double().requires_grad_() for a in (h, w, b))
    refloss = -torch_tree_log_prob(tree, w64, b64, h64).gather(1, t[:, None]).mean()
    gh, gw, gb = torch.autograd.grad(refloss, (h64, w64, b64))
    loss, grads = sm.hierarchical_softmax_loss(h, t, tree, w, b, return_grad=True)
    torch.testing.assert_close(loss.double(), refloss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads["hidden"].double(), gh, rtol=1e-5, atol=1e-6)
    rows = grads["rows"]
    torch.testing.assert_close(grads["node_weights"].double(), gw[rows], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads["node_bias"].double(), gb[rows], rtol=1e-5, atol=1e-6)
    top_lp, top_cls = sm.hierarchical_predict(h, tree, w, b, k=3)
    assert top_cls.shape == (n, 3)
    ref_top = torch.topk(ref, 3, dim=1)
    torch.testing.assert_close(top_lp.double(), ref_top.values, rtol=1e-5, atol=1e-5)
    assert torch.equal(top_cls, ref_top.indices)
    with pytest.raises(ValueError, match="counts"):
        sm.huffman_tree([3, 0, 1])


def test_hierarchical_sign_convention():
    tree = sm.huffman_tree([1, 3])
    w = np.array([[2.0]], np.float32)
    lp = sm.hierarchical_log_prob(np.ones((1, 1), np.float32), tree, w)
    one = [k for k in range(2) if tree.codes(k)[0] == 1][0]
    assert math.isclose(math.exp(lp[0, one]), 1 / (1 + math.exp(-2.0)), rel_tol=1e-6)


def make_asm(seed, d=16, n_classes=200, cutoffs=(20, 80), head_bias=True):
    torch.manual_seed(seed)
    return torch.nn.AdaptiveLogSoftmaxWithLoss(d, n_classes, list(cutoffs), div_value=2.0,
                                               head_bias=head_bias)


def asm_args(m):
    tails = [(t[0].weight.detach(), t[1].weight.detach()) for t in m.tail]
    return m.head.weight.detach(), tails, m.cutoffs[:-1], (
        m.head.bias.detach() if m.head.bias is not None else None)


@pytest.mark.parametrize("head_bias", [False, True])
def test_adaptive_softmax_matches_torch_module(head_bias):
    m = make_asm(0, head_bias=head_bias)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(33, 16, generator=g)
    target = torch.cat([torch.randint(0, 20, (11,), generator=g),
                        torch.randint(20, 80, (11,), generator=g),
                        torch.randint(80, 200, (11,), generator=g)])
    hw, tails, cutoffs, hb = asm_args(m)
    xr = x.clone().requires_grad_()
    ref = m(xr, target)
    output, loss, grads = sm.adaptive_log_softmax_with_loss(x, target, hw, tails, cutoffs, hb,
                                                            return_grad=True)
    torch.testing.assert_close(output, ref.output.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, ref.loss.detach(), rtol=1e-5, atol=1e-5)
    params = [xr, m.head.weight] + ([m.head.bias] if head_bias else [])
    for t in m.tail:
        params += [t[0].weight, t[1].weight]
    gref = torch.autograd.grad(ref.loss, params)
    got = [grads["input"], grads["head_weight"]] + ([grads["head_bias"]] if head_bias else [])
    for gp, go in grads["tail_weights"]:
        got += [gp, go]
    for a, b in zip(got, gref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(sm.adaptive_log_prob(x, hw, tails, cutoffs, hb),
                               m.log_prob(x).detach(), rtol=1e-5, atol=1e-5)
    assert torch.equal(sm.adaptive_predict(x, hw, tails, cutoffs, hb), m.predict(x))
    # NumPy path
    out_np, loss_np = sm.adaptive_log_softmax_with_loss(
        x.numpy(), target.numpy(), hw.numpy(), [(a.numpy(), b.numpy()) for a, b in tails], cutoffs,
        None if hb is None else hb.numpy())
    assert isinstance(out_np, np.ndarray)
    np.testing.assert_allclose(out_np, ref.output.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_adaptive_softmax_errors_as_torch():
    m = make_asm(1)
    hw, tails, cutoffs, hb = asm_args(m)
    x = torch.randn(2, 16)
    with pytest.raises(ValueError, match="target"):
        sm.adaptive_log_softmax_with_loss(x, torch.tensor([0, 200]), hw, tails, cutoffs, hb)
    with pytest.raises(ValueError, match="cutoffs"):
        sm.adaptive_log_prob(x, hw, tails, [80, 20], hb)
    with pytest.raises(ValueError, match="tail_weights"):
        sm.adaptive_log_prob(x, hw, tails[:1], cutoffs, hb)


KJV = os.path.join(SHARED_DATA, "kjv.txt.xz")


@pytest.mark.skipif(not os.path.exists(KJV), reason="shared corpus not present")
@pytest.mark.parametrize("loss", ["full", "sampled", "hierarchical", "adaptive"])
def test_word_lm_example_learns(loss, tmp_path):
    """The word_lm example (a real client) trains 150 steps on 2000 KJV verses with each loss:
    its exact held-out perplexity must fall well below the untrained model's."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "word_lm", "word_lm.py")
    # where `import softmax` found the module: a package's parent, or an extension's folder
    where = os.path.dirname(sm.__file__)
    if os.path.basename(sm.__file__).startswith("__init__."):
        where = os.path.dirname(where)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([where, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, script, "--loss", loss, "--minutes", "5", "--max-steps", "150", "--max-verses", "2000",
                        "--eval-every", "100", "--corpus", KJV, "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(tmp_path / "results.json") as f:
        res = json.load(f)
    (run,) = res["results"]
    start, final = run["curve"][0][1], run["final_ppl"]
    assert math.isfinite(final) and run["steps"] > 0
    assert final < 0.6 * start, (start, final)


def test_huffman_counts_must_be_finite_1d_integers():
    with pytest.raises(ValueError, match="counts must be integers"):
        sm.huffman_tree([1, np.inf, 2])
    with pytest.raises(ValueError, match="counts must be 1-d"):
        sm.huffman_tree(np.ones((2, 2), dtype=np.int64))
    assert sm.huffman_tree([3, 1, 2]).num_classes == 3
