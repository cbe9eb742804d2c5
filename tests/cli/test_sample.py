"""tests/cli/test_sample.py: `softmax sample` (tools/softmax_cli/cmd_sample.cc), run as a binary.

Environment: SOFTMAX_BIN (the `softmax` executable), SOFTMAX_DATA (../shared/data; the real-data
tests skip without it). Run: SOFTMAX_BIN=build/tools/softmax /usr/bin/python3 -m pytest -q
tests/cli/test_sample.py
"""
import os
import subprocess

import numpy as np
import pytest

BIN = os.environ.get("SOFTMAX_BIN", "softmax")
DATA = os.environ.get("SOFTMAX_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
LOGITS = os.path.join(DATA, "stories260K_logits.npy")


def run(*args):
    return subprocess.run([BIN, "sample", *args], capture_output=True, text=True)


@pytest.fixture
def logits():
    if not os.path.exists(LOGITS):
        pytest.skip("no " + LOGITS)
    return np.load(LOGITS)


def ids_of(stdout):
    return [[int(t) for t in line.split("\t")[0].split()] for line in stdout.splitlines()]


def test_greedy_is_argmax(logits):
    r = run("-i", LOGITS, "-t", "0")
    assert r.returncode == 0, r.stderr
    assert [row[0] for row in ids_of(r.stdout)] == list(np.argmax(logits, axis=1))


def test_output_file_draws_offsets_threads(logits, tmp_path):
    out = tmp_path / "ids.npy"
    r = run("-i", LOGITS, "-t", "0.8", "--top-p", "0.9", "--seed", "5", "-n", "3", "-o", str(out))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    ids = np.load(out)
    assert ids.dtype == np.int64 and ids.shape == (logits.shape[0], 3)
    # -n 3 == three runs at offsets 0, 1, 2; the thread count changes nothing.
    for d in range(3):
        one = run("-i", LOGITS, "-t", "0.8", "--top-p", "0.9", "--seed", "5", "--offset", str(d),
                  "--threads", "1" if d % 2 else "2")
        assert [row[0] for row in ids_of(one.stdout)] == list(ids[:, d])
    other = run("-i", LOGITS, "-t", "0.8", "--top-p", "0.9", "--seed", "6")
    assert [row[0] for row in ids_of(other.stdout)] != list(ids[:, 0])


def test_top_k_one_and_logprobs(logits):
    r = run("-i", LOGITS, "--top-k", "1", "--logprobs", "3")
    assert r.returncode == 0, r.stderr
    x = logits.astype(np.float64)
    lsm = x - x.max(1, keepdims=True)
    lsm -= np.log(np.exp(lsm).sum(1, keepdims=True))
    for row, line in enumerate(r.stdout.splitlines()):
        ids, top = line.split("\t")
        assert int(ids) == int(np.argmax(x[row]))
        pairs = [p.split(":") for p in top.split()]
        assert [int(i) for i, _ in pairs] == list(np.argsort(-x[row], kind="stable")[:3])
        for i, lp in pairs:
            assert abs(float(lp) - lsm[row, int(i)]) < 1e-5


@pytest.mark.parametrize("args,needle", [
    (["--top-p", "0"], "--top-p"),
    (["--min-p", "1.5"], "--min-p"),
    (["-t", "-1"], "--temperature"),
    (["--top-k", "-2"], "--top-k"),
    (["-n", "0"], "DRAWS"),
])
def test_errors_write_nothing(logits, tmp_path, args, needle):
    out = tmp_path / "ids.npy"
    r = run("-i", LOGITS, "-o", str(out), *args)
    assert r.returncode == 2
    assert needle in r.stderr and len(r.stderr.splitlines()) == 1
    assert not out.exists()


def test_nan_row_is_an_error(tmp_path):
    x = np.zeros((3, 5), np.float32)
    x[1, 2] = np.nan
    p = tmp_path / "x.npy"
    np.save(p, x)
    r = run("-i", str(p))
    assert r.returncode == 2 and "row 1 holds NaN" in r.stderr


@pytest.mark.parametrize("flag", ["--seed", "--offset"])
@pytest.mark.parametrize("bad", ["-1", "18446744073709551616", "99999999999999999999999", "1.5", "7x", ""])
def test_seed_and_offset_reject_values_outside_uint64(tmp_path, flag, bad):
    logits = tmp_path / "l.npy"
    np.save(logits, np.array([[0.0, 1.0, 2.0]], np.float32))
    out = tmp_path / "ids.npy"
    p = subprocess.run([BIN, "sample", "-i", str(logits), flag, bad, "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 2, p.stdout + p.stderr
    assert flag in p.stderr
    assert not out.exists()


def test_seed_accepts_the_largest_uint64(tmp_path):
    logits = tmp_path / "l.npy"
    np.save(logits, np.array([[0.0, 1.0, 2.0]], np.float32))
    p = subprocess.run([BIN, "sample", "-i", str(logits), "--seed", "18446744073709551615"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.split()[0]) in (0, 1, 2)


# ---- Logit processors (penalties, bias, bans, min length) and processed log-probs ----

def small_logits(tmp_path):
    x = np.array([[2.0, -2.0, 1.0, 0.5, 3.0], [0.0, 1.0, 4.0, -1.0, 2.0]])
    path = tmp_path / "x.npy"
    np.save(path, x)
    return x, str(path)


def test_processors_change_greedy_choice(tmp_path):
    x, path = small_logits(tmp_path)
    r = run("-i", path, "-t", "0")
    assert r.returncode == 0, r.stderr
    assert [row[0] for row in ids_of(r.stdout)] == [4, 2]
    # Banning the argmax of every row, biasing token 1 up, penalising the repeats.
    r = run("-i", path, "-t", "0", "--banned-tokens", "4,2")
    assert [row[0] for row in ids_of(r.stdout)] == [0, 1], r.stderr
    r = run("-i", path, "-t", "0", "--logit-bias", "1=10,0=-1")
    assert [row[0] for row in ids_of(r.stdout)] == [1, 1], r.stderr
    prev = tmp_path / "prev.npy"
    np.save(prev, np.array([[4, 4, -1], [2, -1, -1]]))
    # Repetition 4: row 0's 3 -> 0.75 < 2 (token 0 wins); row 1's 4 -> 1 < 2 (token 4 wins).
    r = run("-i", path, "-t", "0", "--prev-tokens", str(prev), "--repetition-penalty", "4")
    assert [row[0] for row in ids_of(r.stdout)] == [0, 4], r.stderr
    # Frequency 0.6 on token 4 twice (3 - 1.2 = 1.8 < 2): token 0 wins row 0.
    r = run("-i", path, "-t", "0", "--prev-tokens", str(prev), "--frequency-penalty", "0.6")
    assert [row[0] for row in ids_of(r.stdout)] == [0, 2], r.stderr
    # Presence 2.5 on row 1's token 2 (4 - 2.5 = 1.5 < 2): token 4.
    r = run("-i", path, "-t", "0", "--prev-tokens", str(prev), "--presence-penalty", "2.5")
    assert [row[0] for row in ids_of(r.stdout)] == [0, 4], r.stderr
    # EOS (token 4, 2) suppressed while fewer than 3 previous tokens.
    r = run("-i", path, "-t", "0", "--prev-tokens", str(prev), "--eos-token-ids", "4,2",
            "--min-tokens", "3")
    assert [row[0] for row in ids_of(r.stdout)] == [0, 1], r.stderr


def test_processed_logprobs(tmp_path):
    x, path = small_logits(tmp_path)
    r = run("-i", path, "--top-k", "2", "--logprobs", "3", "--logprobs-mode", "processed")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0].split("\t")[1].split()
    ids = [int(e.split(":")[0]) for e in first]
    lps = [float(e.split(":")[1]) for e in first]
    e = np.exp(x[0, [4, 0]] - x[0, 4])
    assert ids[:2] == [4, 0]
    np.testing.assert_allclose(lps[:2], np.log(e / e.sum()), rtol=1e-5)
    assert lps[2] == -np.inf


def test_processor_errors(tmp_path):
    _, path = small_logits(tmp_path)
    for args, needle in [(["--repetition-penalty", "0"], "--repetition-penalty"),
                         (["--banned-tokens", "9"], "banned_tokens"),
                         (["--banned-tokens", "1,x"], "--banned-tokens"),
                         (["--logit-bias", "1:2"], "--logit-bias"),
                         # An empty id, ids or biases past range, a trailing comma: errors, never
                         # a bias on token 0 or a bias of 0.
                         (["--logit-bias", "=5"], "--logit-bias"),
                         (["--logit-bias", "99999999999999999999=1"], "--logit-bias"),
                         (["--logit-bias", "2=1e400"], "--logit-bias"),
                         (["--logit-bias", "2=-1e400"], "--logit-bias"),
                         (["--logit-bias", "0=5,"], "--logit-bias"),
                         (["--logit-bias", "0=5,,1=2"], "--logit-bias"),
                         (["--logprobs-mode", "cooked"], "--logprobs-mode"),
                         (["--min-tokens", "-1"], "--min-tokens")]:
        r = run("-i", path, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and r.stdout == "", (args, r.stderr)


def test_prev_tokens_one_text_line_is_every_rows_history(tmp_path):
    # A one-line text file reads as (1, L); with several rows it means (L): the same ids for
    # every row, as a 1-D .npy does.
    x = np.zeros((3, 6), np.float32)
    x[:, 2] = 2.0
    x[:, 4] = 1.9
    path = tmp_path / "x.npy"
    np.save(path, x)
    (tmp_path / "prev.txt").write_text("2,2\n")
    np.save(tmp_path / "prev.npy", np.array([2, 2]))
    txt = run("-i", path, "-t", "0", "--prev-tokens", tmp_path / "prev.txt", "--frequency-penalty", "0.1")
    npy = run("-i", path, "-t", "0", "--prev-tokens", tmp_path / "prev.npy", "--frequency-penalty", "0.1")
    assert txt.returncode == 0, txt.stderr
    assert txt.stdout == npy.stdout
    assert [row[0] for row in ids_of(txt.stdout)] == [4, 4, 4]  # 2 - 0.2 < 1.9
