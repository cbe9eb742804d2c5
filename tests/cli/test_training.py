"""CLI tests of the training commands (issue 4): `softmax cross-entropy`, `nll-loss`,
`softmax-backward`, `log-softmax-backward`, with the flags scripts depend on. NumPy (f64) is the
reference. Run by CTest (tests/cli/CMakeLists.txt) with SOFTMAX_BIN set to the binary."""
import os
import subprocess

import numpy as np
import pytest

BIN = os.environ.get("SOFTMAX_BIN", "softmax")


def run(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (x - m) - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ce_reference(x, t, w, eps, z, ignore, reduction):
    """loss and gradient of PyTorch's cross_entropy (+ z-loss), (N, C) f64."""
    n, c = x.shape
    lp = log_softmax(x, 1)
    p = np.exp(lp)
    lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
    w = np.ones(c) if w is None else w
    kept = t != ignore
    tt = np.where(kept, t, 0)
    rows = (1 - eps) * w[tt] * -lp[np.arange(n), tt] + eps / c * (w * -lp).sum(1) + z * lse**2
    rows = np.where(kept, rows, 0.0)
    grad = ((1 - eps) * w[tt] + eps / c * w.sum() + 2 * z * lse)[:, None] * p - eps / c * w[None, :]
    grad[np.arange(n), tt] -= (1 - eps) * w[tt]
    grad[~kept] = 0
    if reduction == "none":
        return rows, grad
    denom = 1.0 if reduction == "sum" else w[tt][kept].sum()
    return rows.sum() / denom, grad / denom


@pytest.fixture()
def data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 9)) * 2
    t = np.array([1, 8, -100, 0, 4, 4], dtype=np.int64)
    w = np.linspace(0.5, 2.0, 9)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "x32.npy", x.astype(np.float32))
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "t32.npy", t.astype(np.int32))
    np.save(tmp_path / "w.npy", w)
    return tmp_path, x, t, w


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_all_flags(data, reduction):
    d, x, t, w = data
    run("cross-entropy", "-i", str(d / "x.npy"), "--targets", str(d / "t32.npy"), "--weight",
        str(d / "w.npy"), "--ignore-index", "-100", "--reduction", reduction,
        "--label-smoothing", "0.1", "--z-loss", "0.01", "-o", str(d / "loss.npy"),
        "--grad-out", str(d / "g.npy"), "--log-prob-out", str(d / "lp.npy"))
    want_loss, want_grad = ce_reference(x, t, w, 0.1, 0.01, -100, reduction)
    np.testing.assert_allclose(np.load(d / "loss.npy"), want_loss, rtol=1e-12)
    np.testing.assert_allclose(np.load(d / "g.npy"), want_grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.load(d / "lp.npy"), log_softmax(x, 1), rtol=1e-13)


def test_cross_entropy_f32_and_ignore_index(data):
    d, x, t, w = data
    t2 = np.where(t == -100, 3, t)
    np.save(d / "t2.npy", t2)
    run("cross-entropy", "-i", str(d / "x32.npy"), "--targets", str(d / "t2.npy"),
        "--ignore-index", "3", "-o", str(d / "loss.npy"), "--grad-out", str(d / "g.npy"))
    want_loss, want_grad = ce_reference(x.astype(np.float32).astype(np.float64), t2, None, 0, 0,
                                        3, "mean")
    assert np.load(d / "loss.npy").dtype == np.float32
    assert np.load(d / "g.npy").dtype == np.float32
    np.testing.assert_allclose(np.load(d / "loss.npy"), want_loss, rtol=1e-6)
    np.testing.assert_allclose(np.load(d / "g.npy"), want_grad, atol=1e-7)


def test_nll_loss(data):
    d, x, t, w = data
    lp = log_softmax(x, 1)
    np.save(d / "lp.npy", lp)
    run("nll-loss", "-i", str(d / "lp.npy"), "--targets", str(d / "t.npy"), "--weight",
        str(d / "w.npy"), "--reduction", "sum", "-o", str(d / "loss.npy"), "--grad-out",
        str(d / "g.npy"))
    kept = t != -100
    tt = np.where(kept, t, 0)
    want = (w[tt] * -lp[np.arange(6), tt])[kept].sum()
    np.testing.assert_allclose(np.load(d / "loss.npy"), want, rtol=1e-13)
    g = np.load(d / "g.npy")
    assert g[0, 1] == -w[1] and g[2].tolist() == [0.0] * 9


@pytest.mark.parametrize("log_mode", [False, True])
def test_backward_commands(tmp_path, log_mode):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5, 3))
    e = np.exp(x - x.max(1, keepdims=True))
    y = e / e.sum(1, keepdims=True)
    if log_mode:
        y = np.log(y)
    dy = rng.normal(size=x.shape)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "dy.npy", dy)
    cmd = "log-softmax-backward" if log_mode else "softmax-backward"
    run(cmd, "-i", str(tmp_path / "y.npy"), "--grad", str(tmp_path / "dy.npy"), "-o",
        str(tmp_path / "dx.npy"), "--axis", "1")
    if log_mode:
        want = dy - np.exp(y) * dy.sum(1, keepdims=True)
    else:
        want = y * (dy - (dy * y).sum(1, keepdims=True))
    np.testing.assert_allclose(np.load(tmp_path / "dx.npy"), want, rtol=1e-12, atol=1e-15)


def test_errors_exit_2_and_write_nothing(data):
    d, x, t, w = data
    out = d / "never.npy"
    bad = np.array([1, 9, 0, 0, 0, 0], dtype=np.int64)  # 9 is out of range for C = 9
    np.save(d / "bad.npy", bad)
    for args in (
        ["cross-entropy", "-i", str(d / "x.npy"), "--targets", str(d / "bad.npy")],
        ["cross-entropy", "-i", str(d / "x.npy"), "--targets", str(d / "t.npy"), "--reduction",
         "avg"],
        ["cross-entropy", "-i", str(d / "x.npy"), "--targets", str(d / "t.npy"),
         "--label-smoothing", "2"],
        ["nll-loss", "-i", str(d / "x.npy"), "--targets", str(d / "t.npy"), "--z-loss", "0.1"],
        ["softmax-backward", "-i", str(d / "x.npy"), "--grad", str(d / "w.npy")],
    ):
        p = run(*args, "-o", str(out), "--grad-out" if args[0] != "softmax-backward" else "--axis",
                str(d / "never_g.npy") if args[0] != "softmax-backward" else "-1", ok=False)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.startswith("softmax: error:"), p.stderr
        assert not out.exists() and not (d / "never_g.npy").exists()
    p = run("cross-entropy", "-i", str(d / "x.npy"), "--targets", str(d / "bad.npy"), ok=False)
    assert "targets[1] = 9" in p.stderr


def test_cross_entropy_rejects_one_path_for_two_outputs(tmp_path):
    import numpy as np
    logits = tmp_path / "l.npy"
    targets = tmp_path / "t.npy"
    np.save(logits, np.zeros((2, 3), np.float32))
    np.save(targets, np.array([0, 1], np.int64))
    out = tmp_path / "o.npy"
    r = subprocess.run([BIN, "cross-entropy", "-i", str(logits), "--targets", str(targets),
                        "-o", str(out), "--grad-out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "name the same file" in r.stderr and not out.exists()
    assert not out.exists()
