"""`mpirun -np R softmax OP --vocab-parallel -i x.npy`: the same output bytes as one process,
for R = 1..3 (oversubscribed on this host), every op, dtypes f16/f32/f64, keepdims, stdout CSV;
and one error line, exit 2, nothing written, for the misuse cases. Skipped without mpiexec or
when the tool was built without MPI."""
import os
import shutil
import subprocess

import numpy as np
import pytest

BIN = os.environ.get("SOFTMAX_BIN", "softmax")
MPIEXEC = shutil.which("mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")


def run(args, np_=None):
    cmd = ([MPIEXEC, "--oversubscribe", "-np", str(np_)] if np_ else []) + [BIN] + args
    return subprocess.run(cmd, capture_output=True, env=ENV, timeout=120)


def has_mpi():
    if MPIEXEC is None:
        return False
    r = run(["softmax", "--vocab-parallel", "-i", "/nonexistent.npy"])
    return b"no MPI" not in r.stderr


pytestmark = pytest.mark.skipif(not has_mpi(), reason="mpiexec or the tool's MPI support missing")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("vp")
    rng = np.random.default_rng(5)
    files = {}
    for name, shape, dt in (("f32", (5, 70001), np.float32), ("f16", (2, 3, 33000), np.float16),
                            ("f64", (3, 1000), np.float64)):
        x = rng.normal(0, 3, shape).astype(dt)
        x.reshape(-1, shape[-1])[0, 11] = 40  # a near-certain row
        p = d / f"{name}.npy"
        np.save(p, x)
        files[name] = p
    return d, files


@pytest.mark.parametrize("op,extra", [("softmax", ["-t", "0.8"]), ("log-softmax", ["-t", "1.3"]),
                                      ("logsumexp", ["--keepdims"]), ("argmax", [])])
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_same_bytes_as_one_process(inputs, op, extra, ranks):
    d, files = inputs
    for name, path in files.items():
        want, got = d / f"want_{op}_{name}.npy", d / f"got_{op}_{name}_{ranks}.npy"
        r1 = run([op, "-i", str(path), "-o", str(want)] + extra)
        assert r1.returncode == 0, r1.stderr
        r2 = run([op, "--vocab-parallel", "-i", str(path), "-o", str(got)] + extra, ranks)
        assert r2.returncode == 0, r2.stderr
        assert want.read_bytes() == got.read_bytes(), (op, name, ranks)
        # The single-process output itself against NumPy (an independent reference).
        x = np.load(path).astype(np.float64)
        y = np.load(got)
        if op == "argmax":
            assert np.array_equal(y, np.argmax(x, axis=-1))


def test_stdout_csv_matches(inputs):
    d, files = inputs
    small = d / "small.npy"
    np.save(small, np.array([[2, 1, 0.1], [1, 2, 3]], np.float32))
    one = run(["softmax", "-i", str(small), "--format", "csv"])
    two = run(["softmax", "--vocab-parallel", "-i", str(small)], 2)
    assert one.returncode == 0 and two.returncode == 0
    assert one.stdout == two.stdout


@pytest.mark.parametrize("ranks", [1, 3])
def test_stdout_npy_matches(inputs, ranks):
    # Open MPI gives each rank a pty for stdout even when mpirun's stdout is a file: binary
    # .npy on stdout is not refused there, and arrives byte for byte.
    d, files = inputs
    want = d / "want_stdout.npy"
    assert run(["log-softmax", "-i", str(files["f32"]), "-o", str(want)]).returncode == 0
    for spelling in (["-o", "-.npy"], ["--format", "npy"]):
        got = run(["log-softmax", "--vocab-parallel", "-i", str(files["f32"])] + spelling, ranks)
        assert got.returncode == 0, got.stderr
        assert got.stdout == want.read_bytes(), spelling


@pytest.mark.parametrize("args,needle", [
    (["softmax", "--vocab-parallel", "-i", "missing.npy"], b"cannot open 'missing.npy'"),
    (["softmax", "--vocab-parallel", "-i", "SMALL", "--axis", "0"], b"shards the last axis"),
    (["sigmoid", "--vocab-parallel", "-i", "SMALL"], b"applies to softmax, log-softmax"),
    (["softmax", "--vocab-parallel", "1", "2", "3"], b"reads a .npy file"),
    (["softmax", "--vocab-parallel", "-i", "FORTRAN"], b"Fortran order"),
    # A usage error is met by every rank while parsing: printed once (by rank 0).
    (["softmax", "--vocab-parallel", "-i", "SMALL", "--no-such-flag"], b"--no-such-flag"),
    (["log-softmax", "--vocab-parallel", "-i", "SMALL", "-t", "abc"], b"abc"),
])
def test_errors_one_line_exit_2(inputs, tmp_path, args, needle):
    d, _ = inputs
    small = d / "small2.npy"
    np.save(small, np.ones((2, 3), np.float32))
    fortran = d / "fortran.npy"
    np.save(fortran, np.asfortranarray(np.ones((3, 4), np.float32)))
    args = [str(small) if a == "SMALL" else str(fortran) if a == "FORTRAN" else a for a in args]
    out = tmp_path / "o.npy"
    r = run(args + ["-o", str(out)], 2)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert r.stderr.count(b"softmax: error") == 1, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("other,needle", [
    (["-i", "CSV"], b"rank 1 of 2: --vocab-parallel reads a .npy file"),
    (["-i", "SMALL", "--no-such-flag"], b"rank 1 of 2: The following argument was not expected"),
    (["-i", "SMALL", "-o", "OUT.xyz"], b"rank 1 of 2: output file"),
])
def test_one_rank_with_other_arguments_fails_every_rank(inputs, tmp_path, other, needle):
    # MPMD (mpiexec A : B): rank 1 fails a usage check before the first agreement; it joins
    # that agreement as a failing rank, so rank 0 does not wait for it: one error line, exit 2.
    d, _ = inputs
    small = d / "small3.npy"
    np.save(small, np.ones((2, 3), np.float32))
    csv = d / "small3.csv"
    csv.write_text("1,2,3\n")
    out = tmp_path / "o.npy"
    other = [str(small) if a == "SMALL" else str(csv) if a == "CSV" else
             str(tmp_path / "o.xyz") if a == "OUT.xyz" else a for a in other]
    cmd = [MPIEXEC, "--oversubscribe", "-np", "1", BIN, "softmax", "--vocab-parallel", "-i",
           str(small), "-o", str(out), ":", "-np", "1", BIN, "softmax", "--vocab-parallel"]
    cmd += other + ([] if "-o" in other else ["-o", str(out)])
    r = subprocess.run(cmd, capture_output=True, env=ENV, timeout=60)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert r.stderr.count(b"softmax: error") == 1, r.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def loss_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("vpce")
    rng = np.random.default_rng(8)
    v = 70001
    x = rng.normal(0, 3, (5, v)).astype(np.float32)
    x[1, 3] = 50  # a near-certain row
    np.save(d / "x.npy", x)
    np.save(d / "x64.npy", x.astype(np.float64))
    np.save(d / "t.npy", np.array([0, 3, -100, v - 1, 40000]))
    np.save(d / "t3.npy", np.array([0, 3, 5, v - 1, 3]))  # --ignore-index 3
    q = np.abs(rng.normal(size=(5, v))).astype(np.float32)
    np.save(d / "q.npy", q / q.sum(1, keepdims=True))
    np.save(d / "w.npy", (0.5 + (np.arange(v) % 3) * 0.5).astype(np.float32))
    np.save(d / "bad.npy", np.array([0, v, 1, 2, 3]))
    return d


@pytest.mark.parametrize("extra", [
    [],
    ["--weight", "w.npy", "--label-smoothing", "0.1", "--z-loss", "1e-4"],
    ["--reduction", "none", "--label-smoothing", "0.2"],
    ["--reduction", "sum", "--ignore-index", "3"],
])
@pytest.mark.parametrize("logits,targets", [("x.npy", "t.npy"), ("x64.npy", "t.npy"),
                                            ("x.npy", "q.npy")])
@pytest.mark.parametrize("ranks", [1, 3])
def test_cross_entropy_same_bytes(loss_inputs, extra, logits, targets, ranks):
    d = loss_inputs
    if targets == "q.npy" and "--ignore-index" in extra:
        pytest.skip("ignore_index applies to hard targets")
    extra = [str(d / e) if e.endswith(".npy") else e for e in extra]
    if "--ignore-index" in extra:
        targets = "t3.npy"
    base = ["cross-entropy", "-i", str(d / logits), "--targets", str(d / targets)] + extra
    outs = {}
    for tag, np_ in (("one", None), ("vp", ranks)):
        files = [d / f"{tag}_{k}_{ranks}.npy" for k in ("loss", "grad", "lp")]
        for f in files:
            f.unlink(missing_ok=True)
        args = base + ["-o", str(files[0]), "--grad-out", str(files[1]),
                       "--log-prob-out", str(files[2])]
        if np_:
            args.insert(1, "--vocab-parallel")
        r = run(args, np_)
        assert r.returncode == 0, r.stderr
        outs[tag] = [f.read_bytes() for f in files]
    assert outs["one"] == outs["vp"]
    # The single-process loss itself against NumPy in f64 (independent reference), plain case.
    if not extra and targets == "t.npy":
        x = np.load(d / logits).astype(np.float64)
        t = np.load(d / "t.npy")
        lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
        keep = t != -100
        want = np.mean(lse[keep] - x[keep, t[keep]])
        got = float(np.load(d / f"one_loss_{ranks}.npy"))
        assert abs(got - want) <= 1e-5 * (1 + abs(want))


@pytest.mark.parametrize("args,needle", [
    (["cross-entropy", "--vocab-parallel", "-i", "x.npy", "--targets", "bad.npy"],
     b"class ids must be in [0, 70001)"),
    (["nll-loss", "--vocab-parallel", "-i", "x.npy", "--targets", "t.npy"],
     b"--vocab-parallel"),
    (["cross-entropy", "--vocab-parallel", "-i", "missing.npy", "--targets", "t.npy"],
     b"cannot open"),
])
def test_cross_entropy_errors(loss_inputs, tmp_path, args, needle):
    d = loss_inputs
    args = [str(d / a) if a.endswith(".npy") and a != "missing.npy" else a for a in args]
    out = tmp_path / "o.npy"
    r = run(args + ["-o", str(out)], 2)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert r.stderr.count(b"softmax: error") == 1, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("extra", [
    ["-t", "0"],
    ["-t", "0.8", "--top-k", "40", "-n", "3"],
    ["--top-p", "0.9", "--seed", "11"],
    ["--min-p", "0.05", "--offset", "5", "-n", "2"],
    ["--gumbel", "--top-k", "7"],
    # Per-row values, 64-bit seeds and stream ids (differing only above bit 32).
    ["-t", "0.5,1,0,2,0.9", "--top-k", "0,5,3,-1,40", "--seed", "1,2,3,4,4294967297",
     "--streams", "1,4294967297,3,1099511627777,5", "-n", "2"],
    ["--top-p", "0.5,0.9,1,0.95,0.8", "--min-p", "0,0.1,0,0.05,0", "--offset",
     "0,1,2,3,18446744073709551000", "--gumbel"],
])
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_sample_same_ids(loss_inputs, extra, ranks):
    d = loss_inputs
    for logits in ("x.npy", "x64.npy"):
        one, vp = d / f"s1_{ranks}.npy", d / f"svp_{ranks}.npy"
        for f in (one, vp):
            f.unlink(missing_ok=True)
        r1 = run(["sample", "-i", str(d / logits), "-o", str(one)] + extra)
        assert r1.returncode == 0, r1.stderr
        r2 = run(["sample", "--vocab-parallel", "-i", str(d / logits), "-o", str(vp)] + extra, ranks)
        assert r2.returncode == 0, r2.stderr
        assert one.read_bytes() == vp.read_bytes(), (logits, extra, ranks)
    if extra == ["-t", "0"]:  # greedy: NumPy's argmax is an independent reference
        assert np.array_equal(np.load(vp)[:, 0], np.argmax(np.load(d / "x64.npy"), axis=1))


@pytest.mark.parametrize("extra", [["--logprobs", "5"], ["-t", "0.7", "--logprobs", "3", "-n", "2"],
                                   ["-t", "0", "--top-k", "4", "--logprobs", "1"]])
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_sample_logprobs_same_stdout(loss_inputs, extra, ranks):
    """--logprobs N: the same stdout bytes (ids, then id:logprob) as one process; ids and values
    checked against NumPy in f64."""
    d = loss_inputs
    for logits in ("x.npy", "x64.npy"):
        r1 = run(["sample", "-i", str(d / logits)] + extra)
        assert r1.returncode == 0, r1.stderr
        r2 = run(["sample", "--vocab-parallel", "-i", str(d / logits)] + extra, ranks)
        assert r2.returncode == 0, r2.stderr
        assert r1.stdout == r2.stdout, (logits, extra, ranks)
    n = int(extra[extra.index("--logprobs") + 1])
    t = float(extra[extra.index("-t") + 1]) if "-t" in extra else 1.0
    t = t if t > 0 else 1.0
    x = np.load(d / "x64.npy") / t
    lp = x - x.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    for row, line in enumerate(r2.stdout.decode().splitlines()):
        pairs = [p.split(":") for p in line.split("\t")[1].split()]
        ids = [int(i) for i, _ in pairs]
        assert ids == list(np.argsort(-lp[row], kind="stable")[:n])
        assert np.allclose([float(v) for _, v in pairs], lp[row, ids], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args,needle", [
    (["sample", "--vocab-parallel", "-i", "x.npy", "--logprobs", "2", "--logprobs-mode", "processed"],
     b"tempered log-probs only"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "--logprobs", "-1"], b"N must be >= 0"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "--banned-tokens", "3"], b"logit processors"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "--top-p", "2"], b"--top-p"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "--top-p", "0.5,1"], b"2 values for 5 rows"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "-t", "1,1,1,1,2", "--logprobs", "2"],
     b"one temperature for every row"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "--repetition-penalty", "1,1,1,1,2"],
     b"logit processors"),
    (["sample", "--vocab-parallel", "-i", "x.npy", "--token-logprobs", "lp.csv"],
     b"--token-logprobs"),
])
def test_sample_errors(loss_inputs, tmp_path, args, needle):
    d = loss_inputs
    args = [str(d / a) if a.endswith(".npy") else a for a in args]
    out = tmp_path / "o.npy"
    r = run(args + ["-o", str(out)], 2)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert r.stderr.count(b"softmax: error") == 1, r.stderr
    assert not out.exists()
