"""CLI tests of how the `softmax` tool writes its outputs: all of a command's outputs land
together or none does, two outputs naming one file are refused, write errors on stdout are
exit 2, .npy on stdout, and no half-written temporary file survives SIGTERM / SIGINT.
NumPy (f64) is the reference for the values. Run by CTest with SOFTMAX_BIN set."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest

BIN = os.environ.get("SOFTMAX_BIN", "softmax")


def run(*args, stdout=None, ok=True):
    kw = {"stdout": stdout, "stderr": subprocess.PIPE} if stdout is not None else {"capture_output": True}
    p = subprocess.run([BIN, *map(str, args)], stdin=subprocess.DEVNULL, timeout=120, **kw)
    if ok:
        assert p.returncode == 0, p.stderr.decode()
    return p


def one_error_line(p):
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert err.startswith("softmax: error: ") and err.count("\n") == 1, err
    return err


def leftovers(folder):
    return sorted(f for f in os.listdir(folder) if ".tmp." in f)


@pytest.fixture
def ce_inputs(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5))
    t = np.array([0, 4, 2, 1, 3, 0], np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    return tmp_path, x, t


def ce_loss_grad(x, t):
    lp = (x - x.max(1, keepdims=True))
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    g = np.exp(lp)
    g[np.arange(len(t)), t] -= 1
    return -lp[np.arange(len(t)), t].mean(), g / len(t)


# ---- all outputs or none --------------------------------------------------------------------

def test_cross_entropy_second_output_in_missing_folder_writes_neither(ce_inputs):
    d, _, _ = ce_inputs
    p = run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "--grad-out",
            d / "g.npy", "-o", d / "missing_dir" / "l.npy", ok=False)
    assert "missing_dir" in one_error_line(p)
    assert not (d / "g.npy").exists()
    assert leftovers(d) == []


def test_cross_entropy_full_stdout_writes_no_gradient(ce_inputs):
    d, _, _ = ce_inputs
    with open("/dev/full", "wb") as full:
        p = run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "--grad-out",
                d / "g.npy", stdout=full, ok=False)
    assert "stdout" in one_error_line(p)
    assert not (d / "g.npy").exists()
    assert leftovers(d) == []


def test_cross_entropy_existing_outputs_are_left_as_they_were(ce_inputs):
    d, _, _ = ce_inputs
    (d / "g.npy").write_bytes(b"old")
    p = run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "--grad-out",
            d / "g.npy", "--log-prob-out", d / "lp.npy", "-o", d / "nope" / "l.npy", ok=False)
    one_error_line(p)
    assert (d / "g.npy").read_bytes() == b"old"
    assert not (d / "lp.npy").exists()


def test_cross_entropy_all_outputs_land_with_the_right_values(ce_inputs):
    d, x, t = ce_inputs
    run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "--grad-out", d / "g.npy",
        "-o", d / "l.npy")
    loss, grad = ce_loss_grad(x, t)
    np.testing.assert_allclose(np.load(d / "l.npy"), loss, rtol=1e-13)
    np.testing.assert_allclose(np.load(d / "g.npy"), grad, rtol=1e-12, atol=1e-15)
    assert leftovers(d) == []


def test_attention_lse_in_missing_folder_writes_no_output(tmp_path):
    q = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    np.save(tmp_path / "q.npy", q)
    p = run("attention", "-q", tmp_path / "q.npy", "-k", tmp_path / "q.npy", "-v",
            tmp_path / "q.npy", "-o", tmp_path / "out.npy", "--lse-out",
            tmp_path / "no" / "lse.npy", ok=False)
    one_error_line(p)
    assert not (tmp_path / "out.npy").exists()
    assert leftovers(tmp_path) == []


def test_sample_ids_file_not_written_when_logprobs_cannot_be(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0, 2.0, 3.0]]))
    with open("/dev/full", "wb") as full:
        p = run("sample", "-i", tmp_path / "x.npy", "-o", tmp_path / "ids.npy", "--logprobs", 2,
                stdout=full, ok=False)
    one_error_line(p)
    assert not (tmp_path / "ids.npy").exists()


# ---- two outputs, one file ------------------------------------------------------------------

def same_file_spellings(d):
    (d / "a.npy").write_bytes(b"keep")
    os.symlink("a.npy", d / "link.npy")
    os.link(d / "a.npy", d / "hard.npy")
    os.mkdir(d / "sub")
    return [
        (d / "a.npy", d / "a.npy"),
        ("a.npy", "./a.npy"),
        ("a.npy", "sub/../a.npy"),
        ("a.npy", str(d / "a.npy")),
        ("a.npy", "link.npy"),
        ("a.npy", "hard.npy"),
        ("new.npy", "./new.npy"),  # not there yet: the names still resolve to one file
    ]


def test_two_outputs_naming_one_file_are_refused_before_work(ce_inputs):
    d, _, _ = ce_inputs
    for first, second in same_file_spellings(d):
        p = subprocess.run([BIN, "cross-entropy", "-i", "x.npy", "--targets", "t.npy", "-o",
                            str(first), "--grad-out", str(second)], cwd=d, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        assert "name the same file" in one_error_line(p), (first, second)
        assert (d / "a.npy").read_bytes() == b"keep"
        assert os.path.islink(d / "link.npy")
        assert not (d / "new.npy").exists()


def test_attention_output_and_lse_naming_one_file_are_refused(tmp_path):
    np.save(tmp_path / "q.npy", np.zeros((1, 2, 4), np.float32))
    p = subprocess.run([BIN, "attention", "-q", "q.npy", "-k", "q.npy", "-v", "q.npy", "-o",
                        "o.npy", "--lse-out", "./o.npy"], cwd=tmp_path, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert "name the same file" in one_error_line(p)
    assert not (tmp_path / "o.npy").exists()


def test_two_stdout_outputs_are_refused(ce_inputs):
    d, _, _ = ce_inputs
    p = run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "--grad-out", "-",
            ok=False)
    assert "same stdout" in one_error_line(p)
    assert p.stdout == b""


def test_distinct_outputs_next_to_each_other_are_fine(ce_inputs):
    d, _, _ = ce_inputs
    run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "--grad-out", d / "g.npy",
        "--log-prob-out", d / "g.csv", "-o", d / "l.npy")
    assert np.load(d / "g.npy").shape == (6, 5)


# ---- write errors on stdout -----------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["sample", "-i", "X", "-n", "3"],
    ["bench", "--shape", "64", "--min-time", "0", "--cache", "hot"],
    ["bench", "--shape", "64", "--min-time", "0", "--cache", "hot", "--json"],
    ["--help"],
    ["sample", "--help"],
    ["--version"],
    ["1", "2", "3"],
    [],
])
def test_write_error_on_stdout_is_exit_2(tmp_path, args):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    args = [str(tmp_path / "x.npy") if a == "X" else a for a in args]
    with open("/dev/full", "wb") as full:
        p = run(*args, stdout=full, ok=False)
    if args[:1] == ["bench"] and "--json" not in args:  # its progress line comes first
        p.stderr = p.stderr.decode().rsplit("...", 1)[-1].lstrip("\n").encode()
    err = one_error_line(p)
    assert "cannot write" in err and "stdout" in err


# ---- .npy on stdout -------------------------------------------------------------------------

@pytest.mark.parametrize("how", [["-o", "-.npy"], ["--format", "npy"]])
def test_npy_to_stdout(tmp_path, how):
    import io
    x = np.random.default_rng(5).standard_normal((3, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = run("log-softmax", "-i", tmp_path / "x.npy", *how).stdout
    y = np.load(io.BytesIO(out))
    x64 = x.astype(np.float64)
    ref = x64 - x64.max(1, keepdims=True)
    ref -= np.log(np.exp(ref).sum(1, keepdims=True))
    assert y.dtype == np.float32 and y.shape == (3, 7)
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-7)


def test_cross_entropy_gradient_npy_to_stdout(ce_inputs):
    import io
    d, x, t = ce_inputs
    out = run("cross-entropy", "-i", d / "x.npy", "--targets", d / "t.npy", "-o", d / "l.npy",
              "--grad-out", "-.npy").stdout
    np.testing.assert_allclose(np.load(io.BytesIO(out)), ce_loss_grad(x, t)[1], rtol=1e-12,
                               atol=1e-15)


# ---- signals --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    # 1000 x 10000 f32: a CSV output of about 130 MB, long enough to catch its write.
    x = np.random.default_rng(6).standard_normal((1000, 10000)).astype(np.float32)
    np.save(d / "big.npy", x)
    return d / "big.npy"


def open_in(pid, folder):
    """The paths of `pid`'s open descriptors inside `folder` (an unnamed O_TMPFILE file reads as
    'FOLDER/#INODE (deleted)')."""
    found = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(folder) + "/"):
                found.append(target)
    except OSError:
        pass
    return found


def start_large_write(tmp_path, big_input):
    """Starts a CSV write of about 130 MB; returns (process, output path, its temp's paths) once
    the temporary output file is open."""
    out = tmp_path / "out.csv"
    p = subprocess.Popen([BIN, "-i", str(big_input), "-o", str(out)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not open_in(p.pid, tmp_path) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    writing = open_in(p.pid, tmp_path)
    assert writing, "the temporary file never appeared (the write finished first)"
    return p, out, writing


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_large_write_leaves_no_temporary_file(tmp_path, big_input, sig):
    p, out, _ = start_large_write(tmp_path, big_input)
    p.send_signal(sig)
    p.wait(timeout=60)
    assert p.returncode == -sig, p.stderr.read()
    assert leftovers(tmp_path) == []
    assert not out.exists()


def test_sigkill_during_a_large_write_leaves_nothing_where_o_tmpfile_works(tmp_path, big_input):
    # mpirun sends SIGKILL shortly after SIGTERM: no handler runs, so the file being written
    # must have no name (O_TMPFILE) until the moment it is renamed into place.
    p, out, writing = start_large_write(tmp_path, big_input)
    if any(".tmp." in w for w in writing):
        p.kill()
        p.wait(timeout=60)
        pytest.skip(f"this file system gave a named temporary ({writing}): no O_TMPFILE")
    assert all(w.endswith("(deleted)") for w in writing), writing
    p.kill()
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert sorted(os.listdir(tmp_path)) == []
