"""`softmax attention-backward` (tools/softmax_cli/cmd_attention_backward.cc) against a NumPy
float64 reference that materialises the scores and backpropagates through them: masks, scale,
window, softcap, GQA, rank-3 inputs, and usage errors that must write nothing. Run:
SOFTMAX_BIN=build/tools/softmax python3 -m pytest -q tests/cli/test_attention_backward.py"""
import os
import subprocess

import numpy as np
import pytest

BIN = os.environ.get("SOFTMAX_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="SOFTMAX_BIN not set")


def reference(q, k, v, dout, scale=None, causal=None, window=-1, softcap=0.0):
    """(dq, dk, dv) in float64 for (B, H, S, D) operands (GQA: kv heads repeated)."""
    g = q.shape[1] // k.shape[1]
    kr, vr = np.repeat(k, g, 1), np.repeat(v, g, 1)
    sq, sk = q.shape[2], k.shape[2]
    scale = 1 / np.sqrt(q.shape[3]) if scale is None else scale
    s = q @ kr.swapaxes(-1, -2) * scale
    fac = np.ones_like(s)
    if softcap:
        th = np.tanh(s / softcap)
        s, fac = softcap * th, 1 - th * th
    i = np.arange(sq)[:, None] + (sk - sq if causal == "bottom-right" else 0)
    j = np.arange(sk)[None, :]
    keep = np.ones((sq, sk), bool)
    if causal:
        keep &= j <= i
    if window >= 0:
        keep &= j >= i - window
        if not causal:
            keep &= j <= i + window
    s = np.where(keep, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    dp = dout @ vr.swapaxes(-1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * fac * scale
    dq = ds @ kr
    dkr, dvr = ds.swapaxes(-1, -2) @ q, p.swapaxes(-1, -2) @ dout
    b, hk = k.shape[0], k.shape[1]
    return dq, dkr.reshape(b, hk, g, sk, -1).sum(2), dvr.reshape(b, hk, g, sk, -1).sum(2)


def run(tmp, arrays, extra):
    for name, a in arrays.items():
        np.save(tmp / f"{name}.npy", a.astype(np.float32))
    args = [BIN, "attention-backward", "-q", str(tmp / "q.npy"), "-k", str(tmp / "k.npy"),
            "-v", str(tmp / "v.npy"), "--dout", str(tmp / "dout.npy"),
            "--dq", str(tmp / "dq.npy"), "--dk", str(tmp / "dk.npy"), "--dv", str(tmp / "dv.npy")]
    return subprocess.run(args + extra, capture_output=True, text=True)


CASES = [
    ([], {}),
    (["--causal", "top-left"], dict(causal="top-left")),
    (["--causal", "bottom-right", "--window", "7"], dict(causal="bottom-right", window=7)),
    (["--scale", "0.3", "--softcap", "2"], dict(scale=0.3, softcap=2.0)),
    (["--window", "4", "--threads", "1"], dict(window=4)),
]


@pytest.mark.parametrize("flags,kw", CASES)
def test_gradients_match_float64_reference(tmp_path, flags, kw):
    rng = np.random.default_rng(len(flags))
    q = rng.standard_normal((2, 4, 37, 8))
    k = rng.standard_normal((2, 2, 70, 8))
    v = rng.standard_normal((2, 2, 70, 5))
    dout = rng.standard_normal((2, 4, 37, 5))
    r = run(tmp_path, dict(q=q, k=k, v=v, dout=dout), flags)
    assert r.returncode == 0, r.stderr
    want = reference(*(a.astype(np.float32).astype(np.float64) for a in (q, k, v, dout)), **kw)
    for name, w in zip(("dq", "dk", "dv"), want):
        got = np.load(tmp_path / f"{name}.npy")
        assert got.dtype == np.float32 and got.shape == w.shape
        np.testing.assert_allclose(got, w, atol=1e-4 * max(1.0, np.abs(w).max()))


def test_rank3_inputs(tmp_path):
    rng = np.random.default_rng(7)
    q, k, v, dout = (rng.standard_normal(s) for s in ((2, 9, 4), (2, 11, 4), (2, 11, 3), (2, 9, 3)))
    r = run(tmp_path, dict(q=q, k=k, v=v, dout=dout), ["--causal", "top-left"])
    assert r.returncode == 0, r.stderr
    want = reference(*(a.astype(np.float32).astype(np.float64)[None] for a in (q, k, v, dout)),
                     causal="top-left")
    np.testing.assert_allclose(np.load(tmp_path / "dk.npy"), want[1][0], atol=1e-4)
    assert np.load(tmp_path / "dq.npy").shape == (2, 9, 4)


@pytest.mark.parametrize("flags,message", [
    (["--causal", "sideways"], "--causal"),
    (["--window", "-3"], "--window"),
])
def test_usage_errors_write_nothing(tmp_path, flags, message):
    rng = np.random.default_rng(0)
    arrays = dict(q=rng.standard_normal((1, 1, 3, 2)), k=rng.standard_normal((1, 1, 4, 2)),
                  v=rng.standard_normal((1, 1, 4, 2)), dout=rng.standard_normal((1, 1, 3, 2)))
    r = run(tmp_path, arrays, flags)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not any((tmp_path / f"{n}.npy").exists() for n in ("dq", "dk", "dv"))


def test_shape_error_names_dout_and_writes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(q=rng.standard_normal((1, 1, 3, 2)), k=rng.standard_normal((1, 1, 4, 2)),
                  v=rng.standard_normal((1, 1, 4, 2)), dout=rng.standard_normal((1, 1, 2, 2)))
    r = run(tmp_path, arrays, [])
    assert r.returncode == 2 and "dout" in r.stderr, r.stderr
    assert not any((tmp_path / f"{n}.npy").exists() for n in ("dq", "dk", "dv"))


def test_needs_an_output(tmp_path):
    np.save(tmp_path / "q.npy", np.zeros((1, 1, 2, 2), np.float32))
    q = str(tmp_path / "q.npy")
    r = subprocess.run([BIN, "attention-backward", "-q", q, "-k", q, "-v", q, "--dout", q],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--dq" in r.stderr
