"""tests/cli/test_sample_serving.py: the serving flags of `softmax sample`
(tools/softmax_cli/cmd_sample.cc, cmd_sample_params.cc): per-row parameters, 64-bit seeds,
offsets and stream ids, --token-logprobs and --logprobs-mode raw / processed.

Every flag is checked twice: it changes the draws (so it reaches the op), and the CLI's result
equals the Python module's (the same C++ op, softmax.sample / softmax.token_logprobs) on the
same input, or an expectation computed here with NumPy. Bad values: exit status 2, one error
line naming the flag, nothing written.

Environment: SOFTMAX_BIN (the `softmax` executable); SOFTMAX_PYTHONPATH (the folder holding the
built `softmax` package, default <SOFTMAX_BIN>/../../python; the comparisons with the module
skip when it cannot be imported). Run: SOFTMAX_BIN=build/tools/softmax /usr/bin/python3 -m
pytest -q tests/cli/test_sample_serving.py
"""
import os
import subprocess
import sys

import numpy as np
import pytest

BIN = os.environ.get("SOFTMAX_BIN", "softmax")
PYDIR = os.environ.get("SOFTMAX_PYTHONPATH",
                       os.path.join(os.path.dirname(os.path.abspath(BIN)), "..", "python"))

B, V, D = 4, 64, 32  # rows, vocabulary, draws per row


def module():
    if PYDIR not in sys.path:
        sys.path.insert(0, PYDIR)
    try:
        import softmax  # noqa: PLC0415
    except ImportError as e:
        pytest.skip("the softmax Python module is not importable from %s: %s" % (PYDIR, e))
    return softmax


def run(*args):
    return subprocess.run([BIN, "sample", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(16)
    x = (rng.standard_normal((B, V)) * 2).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    # Each row's history: its 3 most probable tokens (so the penalties move real mass), padded.
    top3 = np.argsort(-x, axis=1, kind="stable")[:, :3]
    prev = np.full((B, 4), -1, np.int64)
    prev[:, :3] = top3
    prev[0, 3] = top3[0, 0]  # a repeat: count 2 for the frequency penalty
    np.save(tmp_path / "prev.npy", prev)
    return x, str(path), prev, str(tmp_path / "prev.npy")


def draws(path, tmp_path, *args):
    out = tmp_path / "ids.npy"
    if out.exists():
        out.unlink()
    r = run("-i", path, "-n", D, "-o", out, *args)
    assert r.returncode == 0, r.stderr
    ids = np.load(out)
    assert ids.shape == (B, D) and ids.dtype == np.int64
    return ids


def rows_list(values):
    return ",".join(str(v) for v in values)


def prev_lists(prev):
    return [[int(t) for t in row if t != -1] for row in prev]


# flag, per-row values, the Python keyword, extra CLI args / keywords (processors need
# --prev-tokens; --min-tokens / --num-generated need EOS ids).
PER_ROW = [
    ("--temperature", [0.3, 1.0, 2.5, 0.0], "temperature", False),
    ("--top-k", [1, 5, 0, -1], "top_k", False),
    ("--top-p", [0.2, 0.5, 1.0, 0.9], "top_p", False),
    ("--min-p", [0.5, 0.0, 0.2, 0.9], "min_p", False),
    ("--seed", [1, 2, 2 ** 63 + 5, 18446744073709551615], "seed", False),
    ("--offset", [3, 2 ** 40, 0, 2 ** 64 - 1 - D], "offset", False),
    ("--streams", [7, 7 + 2 ** 32, 7 + 2 ** 40, 2 ** 64 - 1], "streams", False),
    ("--repetition-penalty", [3.0, 1.0, 0.5, 8.0], "repetition_penalty", True),
    ("--presence-penalty", [2.0, 0.0, -1.0, 4.0], "presence_penalty", True),
    ("--frequency-penalty", [1.5, 3.0, 0.0, -2.0], "frequency_penalty", True),
    ("--min-tokens", [10, 0, 4, 3], "min_tokens", True),
    ("--num-generated", [0, 5, -1, 2], "num_generated", True),
]


@pytest.mark.parametrize("flag,values,kw,proc", PER_ROW, ids=[p[0] for p in PER_ROW])
def test_per_row_flag_reaches_the_op(case, tmp_path, flag, values, kw, proc):
    x, path, prev, prev_path = case
    base_args, base_kw = [], {}
    if proc:
        base_args += ["--prev-tokens", prev_path]
        base_kw["prev_tokens"] = prev
    if flag in ("--min-tokens", "--num-generated"):
        eos = sorted(set(int(t) for t in prev[:, 0]))  # each row's argmax is an EOS id
        base_args += ["--eos-token-ids", rows_list(eos)]
        base_kw["eos_token_ids"] = eos
        if flag == "--num-generated":  # min 4 everywhere; num_generated decides per row
            base_args += ["--min-tokens", 4]
            base_kw["min_tokens"] = 4
    got = draws(path, tmp_path, *base_args, flag, rows_list(values))
    default = draws(path, tmp_path, *base_args)
    # The flag reaches the op: at least one row draws differently from the default.
    assert (got != default).any(), flag
    # A single value means every row: the same as the list of B copies.
    if flag != "--streams":  # --streams takes one value per row only
        one = draws(path, tmp_path, *base_args, flag, values[0])
        same = draws(path, tmp_path, *base_args, flag, rows_list([values[0]] * B))
        np.testing.assert_array_equal(one, same)
    # Batch invariance: row r with the scalar value r (and stream r) draws the row's tokens.
    for r in range(B):
        single = tmp_path / ("row%d.npy" % r)
        np.save(single, x[r:r + 1])
        args = list(base_args)
        if proc:
            np.save(tmp_path / "prev_row.npy", prev[r:r + 1])
            args[1] = tmp_path / "prev_row.npy"
        if flag != "--streams":
            args += ["--streams", r]
        res = run("-i", single, "-n", D, "-o", tmp_path / "one.npy", *args, flag, values[r])
        assert res.returncode == 0, res.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "one.npy")[0], got[r], err_msg=flag)
    # The Python module (the same C++ op) on the same input.
    sm = module()
    want = sm.sample(x, D, **base_kw, **{kw: values})
    np.testing.assert_array_equal(got, want)


def test_streams_and_seeds_use_all_64_bits(tmp_path):
    # Identical rows; stream ids (and seeds) differing only above bit 32 must draw differently.
    x = np.tile(np.linspace(0, 1, V, dtype=np.float32), (B, 1))
    path = tmp_path / "x.npy"
    np.save(path, x)
    s = [5, 5 + 2 ** 32, 5 + 2 ** 40, 5]
    ids = draws(str(path), tmp_path, "--streams", rows_list(s))
    np.testing.assert_array_equal(ids[0], ids[3])
    assert (ids[0] != ids[1]).any() and (ids[0] != ids[2]).any() and (ids[1] != ids[2]).any()
    ids = draws(str(path), tmp_path, "--streams", "9,9,9,9", "--seed", rows_list(s))
    np.testing.assert_array_equal(ids[0], ids[3])
    assert (ids[0] != ids[1]).any() and (ids[0] != ids[2]).any()
    sm = module()
    np.testing.assert_array_equal(
        draws(str(path), tmp_path, "--streams", rows_list(s)), sm.sample(x, D, streams=s))
    np.testing.assert_array_equal(
        draws(str(path), tmp_path, "--seed", rows_list(s)), sm.sample(x, D, seed=s))


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_token_logprobs_raw(case, tmp_path):
    x, path, _, _ = case
    lp = tmp_path / "lp.npy"
    r = run("-i", path, "-n", D, "-o", tmp_path / "ids.npy", "-t", "0.5,2,1,0", "--top-k", 3,
            "--token-logprobs", lp, "--logprobs-mode", "raw")
    assert r.returncode == 0, r.stderr
    ids, got = np.load(tmp_path / "ids.npy"), np.load(lp)
    assert got.shape == (B, D) and got.dtype == np.float64
    # raw: log_softmax of the logits as given (no temperature, no filter).
    want = np.take_along_axis(log_softmax(x.astype(np.float64)), ids, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_token_logprobs_processed(case, tmp_path):
    x, path, prev, prev_path = case
    lp = tmp_path / "lp.csv"
    t = [0.5, 2.0, 1.0, 0.0]
    r = run("-i", path, "-n", D, "-o", tmp_path / "ids.npy", "-t", rows_list(t), "--top-k", 3,
            "--prev-tokens", prev_path, "--presence-penalty", 0.5, "--token-logprobs", lp,
            "--logprobs-mode", "processed")
    assert r.returncode == 0, r.stderr
    ids = np.load(tmp_path / "ids.npy")
    got = np.loadtxt(lp, delimiter=",", ndmin=2)
    # Independently: presence penalty on each row's history, temperature, top-3, renormalised.
    z = x.astype(np.float64)
    for row in range(B):
        z[row, list(set(prev_lists(prev)[row]))] -= 0.5
    for row in range(B):
        keep = np.argsort(-z[row], kind="stable")[:3]
        if t[row] == 0:
            assert (ids[row] == keep[0]).all() and (got[row] == 0).all()
            continue
        w = np.exp((z[row, keep] - z[row, keep].max()) / t[row])
        lpk = dict(zip(keep.tolist(), np.log(w / w.sum())))
        np.testing.assert_allclose(got[row], [lpk[int(i)] for i in ids[row]], rtol=1e-5,
                                   atol=1e-6)
    sm = module()
    want = sm.token_logprobs(x, ids, mode="processed", temperature=t, top_k=3, prev_tokens=prev,
                             presence_penalty=0.5)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def top_pairs(line):
    return [(int(i), float(v)) for i, v in (p.split(":") for p in line.split("\t")[1].split())]


def test_logprobs_modes_top_n(case, tmp_path):
    x, path, _, _ = case
    t = [0.5, 2.0, 1.0, 0.0]
    z = x.astype(np.float64)
    for mode in ("tempered", "raw", "processed"):
        r = run("-i", path, "-t", rows_list(t), "--top-k", 4, "--logprobs", 3,
                "--logprobs-mode", mode)
        assert r.returncode == 0, (mode, r.stderr)
        for row, line in enumerate(r.stdout.splitlines()):
            order = np.argsort(-z[row], kind="stable")
            pairs = top_pairs(line)
            if mode == "processed" and t[row] == 0:  # p = 1 at the argmax; then 0s in id order
                rest = [i for i in range(V) if i != order[0]][:2]
                assert [i for i, _ in pairs] == [order[0]] + rest
            else:
                assert [i for i, _ in pairs] == list(order[:3]), mode
            if mode == "raw":
                want = log_softmax(z[row])[order[:3]]
            elif mode == "tempered":  # softmax(x / T), T = 1 for the greedy row
                want = log_softmax(z[row] / (t[row] or 1.0))[order[:3]]
            elif t[row] == 0:
                want = [0.0, -np.inf, -np.inf]
            else:
                want = log_softmax(z[row, order[:4]] / t[row])[:3]
            np.testing.assert_allclose([v for _, v in pairs], want, rtol=1e-5, atol=1e-6)  # %.6g


BAD = [
    (["--temperature", "-1"], "--temperature"),
    (["--temperature", "1,inf,1,1"], "--temperature"),
    (["--temperature", "1,2"], "--temperature"),          # 2 values for 4 rows
    (["--temperature", "1,,1,1"], "--temperature"),
    (["--top-k", "-2"], "--top-k"),
    (["--top-k", "1,2,3,x"], "--top-k"),
    (["--top-k", "1.5"], "--top-k"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "0.5,0.5,1.5,0.5"], "--top-p"),
    (["--min-p", "1.5"], "--min-p"),
    (["--min-p", "nan"], "--min-p"),
    (["--seed", "1,2,3,-1"], "--seed"),
    (["--seed", "1,2,3,18446744073709551616"], "--seed"),
    (["--seed", "1,2,3"], "--seed"),
    (["--offset", "1.5"], "--offset"),
    (["--streams", "3"], "--streams"),                     # one per row, 4 rows
    (["--streams", "1,2,3,4,5"], "--streams"),
    (["--streams", "1,2,3,x"], "--streams"),
    (["--repetition-penalty", "0"], "--repetition-penalty"),
    (["--repetition-penalty", "1,1,-2,1"], "--repetition-penalty"),
    (["--presence-penalty", "nan"], "--presence-penalty"),
    (["--frequency-penalty", "1,2"], "--frequency-penalty"),
    (["--min-tokens", "-1"], "--min-tokens"),
    (["--num-generated", "-2"], "--num-generated"),
    (["--logprobs-mode", "raw_logits"], "--logprobs-mode"),
    (["--token-logprobs", "LP"], "--token-logprobs"),      # tempered mode: refused
    (["--token-logprobs", "lp.bin", "--logprobs-mode", "raw"], "lp.bin"),
    (["--token-logprobs", "OUT", "--logprobs-mode", "raw"], "--token-logprobs"),  # == -o
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_value_is_one_line_naming_the_flag(case, tmp_path, args, needle):
    _, path, _, _ = case
    out, lp = tmp_path / "ids.npy", tmp_path / "lp.npy"
    args = [str(out) if a == "OUT" else str(lp) if a == "LP" else a for a in args]
    r = run("-i", path, "-o", out, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("softmax: error: ")
    assert r.stdout == ""
    assert not out.exists() and not lp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prev.npy", "x.npy"]
