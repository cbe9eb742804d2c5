"""Tests of the `softmax` command-line tool: the real binary on numbers, .npy/CSV files, the
real data in ../shared/data, and malformed input. References: NumPy and scipy.special.

Environment: SOFTMAX_BIN (the binary; set by CTest), SOFTMAX_DATA (folder of the real data;
tests that need it are skipped when it is missing).
"""
import io
import os
import re
import struct
import subprocess

import numpy as np
import pytest
from scipy import special

BIN = os.environ.get("SOFTMAX_BIN", os.path.join(os.path.dirname(__file__),
                                                 "../../build/tools/softmax"))
DATA = os.environ.get("SOFTMAX_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
LOGITS = os.path.join(DATA, "stories260K_logits.npy")
ATTN = os.path.join(DATA, "stories260K_attn_scores.npy")
need_data = pytest.mark.skipif(not (os.path.exists(LOGITS) and os.path.exists(ATTN)),
                               reason="../shared/data is missing")

# Tolerances of each output dtype relative to a float64 reference.
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}


def run(*args, stdin=None, ok=True):
    # No stdin given: /dev/null, so the tool never takes the test runner's stdin as input.
    io_kw = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, timeout=120, **io_kw)
    if ok:
        assert p.returncode == 0, p.stderr.decode()
        assert p.stderr == b""
    return p


def csv(*args, stdin=None):
    out = run(*args, stdin=stdin).stdout.decode()
    rows = [line for line in out.splitlines() if line and not line.startswith("#")]
    return np.array([[float(v) for v in line.split(",")] for line in rows])


def save(path, arr):
    np.save(path, arr)
    return str(path)


def close(got, want, dtype=np.float64):
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)


# ---- the worked example --------------------------------------------------------------------

def test_no_arguments_prints_worked_example():
    out = run().stdout.decode()
    x = np.array([2.0, 1.0, 0.1])
    p = special.softmax(x)
    rows = {}
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "probability" in line and "logit" in line)
    for line in lines[start + 1:start + 4]:
        m = re.match(r"\s*(\d)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            rows[int(m.group(1))] = [float(v) for v in m.groups()[1:]]
    assert sorted(rows) == [0, 1, 2]
    for i in range(3):
        assert rows[i] == [round(x[i], 3), round(np.exp(x[i]), 3), round(p[i], 3)]
    assert [rows[i][2] for i in range(3)] == [0.659, 0.242, 0.099]
    s = re.search(r"^\s*sum\s+(\S+)\s+(\S+)\s*$", out, re.M)
    assert s and float(s.group(1)) == round(np.exp(x).sum(), 3) and float(s.group(2)) == 1.0
    for t in (0.5, 1, 1.5):
        tsec = out[out.index("Temperature"):]
        m = re.search(r"^\s*%g\s+(\S+)\s+(\S+)\s+(\S+)\s*$" % t, tsec, re.M)
        assert m, t
        assert [float(v) for v in m.groups()] == [round(v, 3) for v in special.softmax(x / t)]
    assert re.search(r"argmax\s+0\b", out)
    assert re.search(r"hardmax\s+1 0 0\b", out)
    sig = " ".join("%.3f" % v for v in special.expit(x))
    assert "sigmoid  " + sig in out


def test_explain_large_logits_no_overflow():
    out = run("explain", 1000, 1001, 1002).stdout.decode()
    assert "0.090" in out and "0.245" in out and "0.665" in out
    assert "overflows" in out


def test_explain_other_logits_and_temperature():
    out = run("explain", "-t", 0.25, 1, 2).stdout.decode()
    m = re.search(r"^\s*0.25\s+(\S+)\s+(\S+)\s*$", out, re.M)
    assert m and [float(v) for v in m.groups()] == [round(v, 3) for v in special.softmax([4.0, 8.0])]
    assert re.search(r"argmax\s+1\b", out)


def test_table_format_2d(tmp_path):
    m = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, -np.inf]])
    out = run("--format", "table", "-i", save(tmp_path / "m.npy", m)).stdout.decode().splitlines()
    p = special.softmax(m, axis=-1)
    assert len(out) == 2
    for i, line in enumerate(out):
        cells = line.split()
        assert cells[0] == "[%d]" % i
        assert cells[1:] == ["%.3f" % v for v in p[i]]


def test_help_exits_zero():
    p = run("--help")
    assert b"--temperature" in p.stdout and b"--top" in p.stdout


# ---- numbers on the command line -----------------------------------------------------------

def test_1000_1001_1002():
    got = csv(1000, 1001, 1002)
    close(got[0], special.softmax([1000.0, 1001.0, 1002.0]))
    assert run("--format", "table", 1000, 1001, 1002).stdout.decode().split() == \
        ["0.090", "0.245", "0.665"]


def test_negative_numbers_and_inf_as_positionals():
    got = csv(-1.5, "-inf", "-.5", "2e0")
    x = np.array([-1.5, -np.inf, -0.5, 2.0])
    close(got[0], special.softmax(x))
    assert got[0][1] == 0.0


@pytest.mark.parametrize("op,ref", [
    ("softmax", lambda x: special.softmax(x, axis=-1)),
    ("log-softmax", lambda x: special.log_softmax(x, axis=-1)),
    ("logsumexp", lambda x: special.logsumexp(x, axis=-1)),
    ("argmax", lambda x: np.argmax(x, axis=-1)),
    ("hardmax", lambda x: np.eye(x.shape[-1])[np.argmax(x, axis=-1)]),
    ("sigmoid", special.expit),
])
def test_every_op_on_numbers_and_files(op, ref, tmp_path):
    x = np.array([3.0, -1.25, 3.0, 0.5, -7.0])
    close(csv(op, *x).ravel(), np.ravel(ref(x)))
    m = np.random.default_rng(1).standard_normal((4, 6)) * 3
    got = csv(op, "-i", save(tmp_path / "m.npy", m))
    close(got.reshape(np.shape(ref(m))), ref(m))
    out = tmp_path / "y.npy"
    run(op, "-i", tmp_path / "m.npy", "-o", out)
    y = np.load(out)
    assert y.dtype == (np.int64 if op == "argmax" else np.float64)
    close(y, ref(m))


# ---- files: dtypes, layouts, axes, options -------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_npy_round_trip_each_dtype(dtype, tmp_path):
    x = (np.random.default_rng(2).standard_normal((5, 7)) * 4).astype(dtype)
    out = tmp_path / "y.npy"
    run("-i", save(tmp_path / "x.npy", x), "-o", out)
    y = np.load(out)
    assert y.dtype == dtype and y.shape == x.shape
    close(y, special.softmax(x.astype(np.float64), axis=-1), dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fortran_order_and_big_endian(dtype, tmp_path):
    x = (np.random.default_rng(3).standard_normal((3, 4, 5)) * 2).astype(dtype)
    c = tmp_path / "c.npy"
    run("-i", save(tmp_path / "x.npy", x), "-o", c)
    for name, variant in [("f.npy", np.asfortranarray(x)),
                          ("be.npy", x.astype(x.dtype.newbyteorder(">")))]:
        out = tmp_path / ("out_" + name)
        run("-i", save(tmp_path / name, variant), "-o", out)
        assert np.array_equal(np.load(out), np.load(c))


def test_axis_on_3d(tmp_path):
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    path = save(tmp_path / "x.npy", x)
    for axis in (0, 1, 2, -1, -2, -3):
        out = tmp_path / ("a%d.npy" % axis)
        run("--axis", axis, "-i", path, "-o", out)
        close(np.load(out), special.softmax(x.astype(np.float64), axis=axis), np.float32)
        out = tmp_path / ("l%d.npy" % axis)
        run("logsumexp", "--axis", axis, "-i", path, "-o", out)
        close(np.load(out), special.logsumexp(x.astype(np.float64), axis=axis), np.float32)


def test_temperature(tmp_path):
    x = np.array([2.0, 1.0, 0.1])
    for t in (0.5, 1.0, 3.0):
        close(csv("-t", t, *x)[0], special.softmax(x / t))
        close(csv("log-softmax", "--temperature", t, *x)[0], special.log_softmax(x / t))
        close(csv("logsumexp", "-t", t, *x).ravel(), [special.logsumexp(x / t)])
    assert not np.allclose(csv("-t", 0.5, *x), csv(*x))


def test_keepdims(tmp_path):
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    path = save(tmp_path / "x.npy", x)
    out = tmp_path / "k.npy"
    run("logsumexp", "--keepdims", "--axis", 1, "-i", path, "-o", out)
    y = np.load(out)
    assert y.shape == (2, 1, 4)
    close(y, special.logsumexp(x, axis=1, keepdims=True))
    run("logsumexp", "--axis", 1, "-i", path, "-o", out)
    assert np.load(out).shape == (2, 4)
    run("argmax", "--keepdims", "-i", path, "-o", out)
    assert np.array_equal(np.load(out), np.argmax(x, axis=-1)[..., None])


def test_dtype_conversions(tmp_path):
    x = (np.random.default_rng(6).standard_normal((4, 9)) * 5)
    ref = special.softmax(x, axis=-1)
    for src in (np.float16, np.float32, np.float64):
        xs = x.astype(src)
        path = save(tmp_path / ("x_%s.npy" % np.dtype(src).name), xs)
        exact = special.softmax(xs.astype(np.float64), axis=-1)
        for name, dst in (("f16", np.float16), ("f32", np.float32), ("f64", np.float64)):
            out = tmp_path / "y.npy"
            run("--dtype", name, "-i", path, "-o", out)
            y = np.load(out)
            assert y.dtype == dst, (src, name)
            close(y, exact, dst if np.dtype(dst).itemsize <= np.dtype(src).itemsize else src)
            if dst == np.float64:  # f64 output computes in f64 from the converted input
                close(y, exact, np.float64)
    assert ref.shape == x.shape


def test_threads_give_identical_bits(tmp_path):
    x = np.random.default_rng(7).standard_normal((64, 3000)).astype(np.float32)
    path = save(tmp_path / "x.npy", x)
    outs = []
    for t in (1, 2):
        out = tmp_path / ("t%d.npy" % t)
        run("--threads", t, "-i", path, "-o", out)
        outs.append(np.load(out))
    assert np.array_equal(outs[0], outs[1])


def test_csv_in_and_out_and_stdin(tmp_path):
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 10.0]])
    src = tmp_path / "x.csv"
    src.write_text("1, 2, 3\n# a comment\n-1 0 1e1\n")
    close(csv("-i", src), special.softmax(x, axis=-1))
    close(csv("-i", "-", stdin=b"1,2,3\n-1,0,10\n"), special.softmax(x, axis=-1))
    buf = io.BytesIO()
    np.save(buf, x.astype(np.float32))
    close(csv("-i", "-", stdin=buf.getvalue()), special.softmax(x, axis=-1), np.float32)
    out = tmp_path / "y.csv"
    run("log-softmax", "-i", src, "-o", out)
    close(np.loadtxt(out, delimiter=",", ndmin=2), special.log_softmax(x, axis=-1))


def test_top_on_numbers():
    out = run("--top", 2, 0.5, 3.0, 3.0, -1.0).stdout.decode().splitlines()
    assert out[0] == "# row,rank,index,probability"
    p = special.softmax([0.5, 3.0, 3.0, -1.0])
    rows = [line.split(",") for line in out[1:]]
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in rows] == [(0, 1, 1), (0, 2, 2)]  # ties: lower index
    close([float(r[3]) for r in rows], p[[1, 2]])


@need_data
def test_top_on_real_logits():
    x = np.load(LOGITS)
    out = run("--top", 5, "-i", LOGITS).stdout.decode().splitlines()
    assert out[0].startswith("#")
    rows = np.array([[float(v) for v in line.split(",")] for line in out[1:]])
    assert rows.shape == (x.shape[0] * 5, 4)
    p = special.softmax(x.astype(np.float64), axis=-1)
    order = np.argsort(-p, axis=-1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows[:, 0].astype(int), np.repeat(np.arange(x.shape[0]), 5))
    np.testing.assert_array_equal(rows[:, 1].astype(int), np.tile(np.arange(1, 6), x.shape[0]))
    np.testing.assert_array_equal(rows[:, 2].astype(int).reshape(-1, 5), order)
    close(rows[:, 3].reshape(-1, 5), np.take_along_axis(p, order, -1), np.float32)
    table = run("--top", 5, "--format", "table", "-i", LOGITS).stdout.decode()
    assert "probability" in table and len(table.splitlines()) == 1 + 5 * x.shape[0]


@need_data
def test_real_attention_scores(tmp_path):
    s = np.load(ATTN)
    out = tmp_path / "p.npy"
    run("-i", ATTN, "-o", out)
    p = np.load(out)
    assert p.dtype == np.float32 and p.shape == s.shape
    masked = np.isneginf(s)
    assert masked.any() and np.all(p[masked] == 0.0)
    close(p, special.softmax(s.astype(np.float64), axis=-1), np.float32)


# ---- bad input: exit 2, one stderr line, no output file ------------------------------------

def npy_bytes(header, data=b"", version=1):
    h = header.encode()
    pre = 10 if version == 1 else 12
    h += b" " * ((64 - (pre + len(h) + 1) % 64) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def good_header(shape="(3,)", descr="<f4"):
    return "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)


BAD_FILES = {
    "bad_magic.npy": b"\x93NUMPZ" + npy_bytes(good_header(), b"\0" * 12)[6:],
    "not_npy.npy": b"hello world",
    "lying_header.npy": npy_bytes(good_header("(4,)"), b"\0" * 12),
    "lying_header_short.npy": npy_bytes(good_header("(2,)"), b"\0" * 12),
    "overflow_shape.npy": npy_bytes(good_header("(4294967296, 4294967296, 16)"), b"\0" * 12),
    "overflow_zero.npy": npy_bytes(good_header("(0, 9223372036854775807, 4)"), b""),
    "truncated_data.npy": npy_bytes(good_header(), b"\0" * 11),
    "truncated_header.npy": npy_bytes(good_header(), b"\0" * 12)[:40],
    "huge_header_len.npy": b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{",
    "complex.npy": npy_bytes(good_header(descr="<c8"), b"\0" * 24),
    "bool.npy": npy_bytes(good_header(descr="|b1"), b"\0" * 3),
    "object.npy": npy_bytes(good_header(descr="|O"), b"\0" * 24),
    "bad_version.npy": npy_bytes(good_header(), b"\0" * 12)[:6] + b"\x09\x00" +
    npy_bytes(good_header(), b"\0" * 12)[8:],
    "bad_dict.npy": npy_bytes("{'descr': '<f4', 'shape': (3,), }", b"\0" * 12),
    "int32.npy": npy_bytes(good_header(descr="<i4"), b"\0" * 12),
    "not_a_number.csv": b"1,2,3\n4,five,6\n",
    "ragged.csv": b"1,2,3\n4,5\n",
    "double_comma.csv": b"1,,3\n",
    "empty.csv": b"\n# nothing\n",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files(name, tmp_path):
    src = tmp_path / name
    src.write_bytes(BAD_FILES[name])
    out = tmp_path / "out.npy"
    p = run("-i", src, "-o", out, ok=False)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert err.startswith("softmax: error: ") and err.count("\n") == 1, err
    assert name in err  # names the file
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f not in (name,)]  # no temp files either


@pytest.mark.parametrize("args", [
    ["1", "abc"],
    ["--axis", "1", "1", "2"],
    ["--axis", "-2", "1", "2"],
    ["logsumexp", "--axis", "5", "1", "2"],
    ["-t", "0", "1", "2"],
    ["-t", "-0.5", "1", "2"],
    ["-t", "nan", "1", "2"],
    ["log-softmax", "-t", "inf", "1", "2"],
    ["--top", "0", "1", "2"],
    ["argmax", "--top", "2", "1", "2"],
    ["--keepdims", "1", "2"],
    ["sigmoid", "-t", "2", "1"],
    ["--dtype", "f8", "1", "2"],
    ["--threads", "-1", "1"],
    ["-i", "/nonexistent/x.npy"],
    ["-t", "2", "log-softmax", "1", "2"],
    ["--no-such-flag", "1"],
    ["softmax"],
])
def test_bad_arguments(args, tmp_path):
    out = tmp_path / "out.csv"
    p = run(*args, "-o", out, ok=False)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert err.startswith("softmax: error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_failure_leaves_existing_output_alone(tmp_path):
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep me")
    p = run("-t", "-1", "1", "2", "-o", out, ok=False)
    assert p.returncode == 2 and out.read_bytes() == b"keep me"


def test_bad_output_extension(tmp_path):
    p = run("1", "2", "-o", tmp_path / "out.bin", ok=False)
    assert p.returncode == 2 and not (tmp_path / "out.bin").exists()
