"""CLI tests of what a newcomer meets first: stdin as input when it is a pipe or a file,
--version, the README's commands running as written (on the shipped examples/data inputs),
integer flags that are out of range, and error messages that never print raw bytes.
References: NumPy / scipy.special. Run by CTest with SOFTMAX_BIN and SOFTMAX_DATA set."""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from scipy import special

BIN = os.environ.get("SOFTMAX_BIN", "softmax")
DATA = os.environ.get("SOFTMAX_DATA", "")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args, stdin=subprocess.DEVNULL, cwd=None):
    return subprocess.run([BIN, *map(str, args)], stdin=stdin, capture_output=True, timeout=120,
                          cwd=cwd)


def csv_values(out):
    return np.array([float(v) for v in out.decode().replace("\n", ",").split(",") if v])


def is_worked_example(out):
    return b"softmax turns logits into probabilities" in out


# ---- stdin ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["softmax"], ["log-softmax", "-t", "2"]])
def test_numbers_on_a_pipe_are_the_input(args):
    p = subprocess.run([BIN, *args], input=b"2 1 0.1\n", capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    x = np.array([2.0, 1.0, 0.1])
    if "log-softmax" in args:
        np.testing.assert_allclose(csv_values(p.stdout), special.log_softmax(x / 2), rtol=1e-14)
    else:
        np.testing.assert_allclose(csv_values(p.stdout), special.softmax(x), rtol=1e-14)


def test_a_redirected_file_is_the_input(tmp_path):
    x = np.random.default_rng(7).standard_normal((3, 4))
    np.save(tmp_path / "x.npy", x)
    with open(tmp_path / "x.npy", "rb") as f:
        p = run(stdin=f)
    assert p.returncode == 0, p.stderr.decode()
    np.testing.assert_allclose(csv_values(p.stdout).reshape(3, 4), special.softmax(x, axis=1),
                               rtol=1e-14)


def test_dev_null_and_an_empty_file_show_the_worked_example(tmp_path):
    assert is_worked_example(run().stdout)  # stdin = /dev/null (CI)
    (tmp_path / "empty").write_bytes(b"")
    with open(tmp_path / "empty", "rb") as f:
        p = run(stdin=f)
    assert p.returncode == 0 and is_worked_example(p.stdout)


def test_numbers_on_the_command_line_win_over_a_pipe():
    p = subprocess.run([BIN, "0", "0"], input=b"5 1 2\n", capture_output=True, timeout=60)
    np.testing.assert_array_equal(csv_values(p.stdout), [0.5, 0.5])


# ---- --version ------------------------------------------------------------------------------

def test_version_is_the_cmake_project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        version = re.search(r"project\(softmax VERSION ([0-9.]+)", f.read()).group(1)
    p = run("--version")
    assert p.returncode == 0 and p.stderr == b""
    assert p.stdout.decode() == f"softmax {version}\n"


# ---- the README's commands ------------------------------------------------------------------

def readme_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("## The command-line tool", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines()
            if line.startswith("$B")]


def test_readme_has_the_file_commands():
    cmds = readme_commands()
    assert any(c.startswith("$B cross-entropy") for c in cmds)
    assert any(c.startswith("$B attention") for c in cmds)


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_as_written(tmp_path, command):
    if "../shared/data" in command and not os.path.isdir(os.path.join(ROOT, "..", "shared", "data")):
        pytest.skip("../shared/data is missing")
    args = [a.replace("/tmp/", str(tmp_path) + "/") for a in shlex.split(command)[1:]]
    p = run(*args, cwd=ROOT)
    assert p.returncode == 0, (command, p.stderr.decode())
    for a in args:
        if a.startswith(str(tmp_path)):
            assert os.path.getsize(a) > 0, a


def test_readme_cross_entropy_on_the_example_data(tmp_path):
    d = os.path.join(ROOT, "examples", "data")
    x = np.load(os.path.join(d, "logits.npy")).astype(np.float64)
    t = np.load(os.path.join(d, "targets.npy"))
    p = run("cross-entropy", "-i", os.path.join(d, "logits.npy"), "--targets",
            os.path.join(d, "targets.npy"), "-o", tmp_path / "loss.npy")
    assert p.returncode == 0, p.stderr.decode()
    keep = t != -100
    lp = special.log_softmax(x, axis=1)
    want = -lp[np.arange(len(t))[keep], t[keep]].mean()
    np.testing.assert_allclose(np.load(tmp_path / "loss.npy"), want, rtol=2e-6)


def test_example_data_is_what_its_script_makes(tmp_path):
    script = os.path.join(ROOT, "examples", "data", "make_example_data.py")
    subprocess.run([sys.executable, script, str(tmp_path)], check=True, timeout=60)
    for name in ["logits", "targets", "q", "k", "v"]:
        committed = np.load(os.path.join(ROOT, "examples", "data", name + ".npy"))
        made = np.load(tmp_path / (name + ".npy"))
        assert committed.dtype == made.dtype and committed.shape == made.shape
        np.testing.assert_array_equal(committed, made)
        assert os.path.getsize(os.path.join(ROOT, "examples", "data", name + ".npy")) < 8192


# ---- integer flags --------------------------------------------------------------------------

@pytest.mark.parametrize("args,flag,typed", [
    (["--axis", "99999999999999999999", "1", "2"], "--axis", "99999999999999999999"),
    (["--axis", "-99999999999999999999", "1", "2"], "--axis", "-99999999999999999999"),
    (["--top", "100000000000000000000", "1", "2"], "--top", "100000000000000000000"),
    (["--threads", "99999999999", "1", "2"], "--threads", "99999999999"),
    (["sample", "-i", "X", "--top-k", "99999999999999999999999"], "--top-k",
     "99999999999999999999999"),
    (["sample", "-i", "X", "-n", "18446744073709551616"], "--draws", "18446744073709551616"),
    (["softmax-backward", "-i", "X", "--grad", "X", "--axis", "9223372036854775808"], "--axis",
     "9223372036854775808"),
])
def test_integer_flag_out_of_range_quotes_what_was_typed(tmp_path, args, flag, typed):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    args = [str(tmp_path / "x.npy") if a == "X" else a for a in args]
    p = run(*args)
    err = p.stderr.decode()
    assert p.returncode == 2 and err.count("\n") == 1, err
    assert flag in err and f"'{typed}'" in err and "out of range" in err, err
    assert "9223372036854775807 " not in err.split("[")[0], err  # no saturated value reported


def test_integer_flag_not_an_integer():
    p = run("--top", "1e3", "1", "2")
    assert p.returncode == 2 and "'1e3' is not an integer" in p.stderr.decode()


def test_leading_zeros_are_decimal_not_octal():
    p = run("--top", "010", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")
    assert p.returncode == 0, p.stderr.decode()
    rows = [line for line in p.stdout.decode().splitlines() if not line.startswith("#")]
    assert len(rows) == 10  # K = 10, not octal 8


# ---- raw bytes in messages ------------------------------------------------------------------

def test_binary_file_error_shows_an_escaped_excerpt(tmp_path):
    (tmp_path / "blob.dat").write_bytes(bytes(range(256)) * 4)
    p = run("-i", tmp_path / "blob.dat")
    err = p.stderr
    assert p.returncode == 2 and err.count(b"\n") == 1, err
    assert all(b >= 0x20 and b < 0x7F for b in err[:-1]), err
    assert b"\\x" in err


def test_control_bytes_in_a_file_name_are_escaped(tmp_path):
    name = str(tmp_path / "a\x1b[31mb\x07.bin")
    p = run("-i", "x.npy", "-o", name)
    err = p.stderr
    assert p.returncode == 2 and err.count(b"\n") == 1, err
    assert b"\x1b" not in err and b"\x07" not in err and b"\\x1b[31mb\\x07" in err, err


def test_utf8_file_names_are_kept(tmp_path):
    p = run("-i", str(tmp_path / "donn\u00e9es.npy"))
    assert p.returncode == 2 and "donn\u00e9es.npy" in p.stderr.decode("utf-8")
