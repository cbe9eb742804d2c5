"""`softmax attention` (tools/softmax_cli/cmd_attention.cc) against a pure-Python float64
reference (no NumPy needed): masks, scale, window, softcap, --lse-out, rank-3 inputs, and usage
errors that must write nothing. Run: SOFTMAX_BIN=build/tools/softmax python3 -m pytest -q
tests/cli/test_attention.py"""
import array
import math
import os
import random
import struct
import subprocess

import pytest

BIN = os.environ.get("SOFTMAX_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="SOFTMAX_BIN not set")


def write_npy(path, shape, values):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % dims
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(array.array("f", values).tobytes())


def read_npy(path):
    data = open(path, "rb").read()
    assert data[:6] == b"\x93NUMPY"
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode()
    assert "'<f4'" in header
    shape = tuple(int(x) for x in header.split("(")[1].split(")")[0].split(",") if x.strip())
    values = array.array("f")
    values.frombytes(data[10 + hlen:])
    return shape, list(values)


def reference(q, k, v, H, sq, sk, d, dv, scale=None, causal=None, window=-1, softcap=0.0):
    scale = 1 / math.sqrt(d) if scale is None else scale
    out, lse = [], []
    for h in range(H):
        for i in range(sq):
            p = i + (sk - sq if causal == "bottom-right" else 0)
            xs = []
            for j in range(sk):
                keep = True
                if causal and j > p:
                    keep = False
                if window >= 0 and j < p - window:
                    keep = False
                if window >= 0 and not causal and j > p + window:
                    keep = False
                if not keep:
                    xs.append(None)
                    continue
                s = scale * sum(q[(h * sq + i) * d + x] * k[(h * sk + j) * d + x] for x in range(d))
                if softcap > 0:
                    s = softcap * math.tanh(s / softcap)
                xs.append(s)
            kept = [x for x in xs if x is not None]
            if not kept:
                out += [0.0] * dv
                lse.append(-math.inf)
                continue
            m = max(kept)
            w = [math.exp(x - m) if x is not None else 0.0 for x in xs]
            z = sum(w)
            out += [sum(w[j] / z * v[(h * sk + j) * dv + c] for j in range(sk)) for c in range(dv)]
            lse.append(m + math.log(z))
    return out, lse


@pytest.fixture
def inputs(tmp_path):
    random.seed(3)
    H, sq, sk, d, dv = 2, 5, 9, 4, 3
    q = [random.uniform(-2, 2) for _ in range(H * sq * d)]
    k = [random.uniform(-2, 2) for _ in range(H * sk * d)]
    v = [random.uniform(-1, 1) for _ in range(H * sk * dv)]
    write_npy(tmp_path / "q.npy", (1, H, sq, d), q)
    write_npy(tmp_path / "k.npy", (1, H, sk, d), k)
    write_npy(tmp_path / "v.npy", (1, H, sk, dv), v)
    write_npy(tmp_path / "q3.npy", (H, sq, d), q)
    write_npy(tmp_path / "k3.npy", (H, sk, d), k)
    write_npy(tmp_path / "v3.npy", (H, sk, dv), v)
    return tmp_path, (q, k, v, H, sq, sk, d, dv)


def run(tmp, *args):
    return subprocess.run([BIN, "attention", "-q", str(tmp / "q.npy"), "-k", str(tmp / "k.npy"),
                           "-v", str(tmp / "v.npy"), "-o", str(tmp / "out.npy"),
                           "--lse-out", str(tmp / "lse.npy"), *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args,kw", [
    ([], {}),
    (["--causal", "top-left"], {"causal": "top-left"}),
    (["--causal", "bottom-right"], {"causal": "bottom-right"}),
    (["--scale", "0.3"], {"scale": 0.3}),
    (["--causal", "bottom-right", "--window", "2"], {"causal": "bottom-right", "window": 2}),
    (["--window", "1"], {"window": 1}),
    (["--softcap", "0.5"], {"softcap": 0.5}),
])
def test_matches_reference(inputs, args, kw):
    tmp, (q, k, v, H, sq, sk, d, dv) = inputs
    r = run(tmp, *args)
    assert r.returncode == 0, r.stderr
    shape, out = read_npy(tmp / "out.npy")
    lshape, lse = read_npy(tmp / "lse.npy")
    assert shape == (1, H, sq, dv) and lshape == (1, H, sq)
    ro, rl = reference(q, k, v, H, sq, sk, d, dv, **kw)
    assert max(abs(a - b) for a, b in zip(out, ro)) < 1e-5
    for a, b in zip(lse, rl):
        assert (a == b) if math.isinf(b) else abs(a - b) < 1e-5
    if args:  # the option changed the result
        base, _ = reference(q, k, v, H, sq, sk, d, dv)
        assert max(abs(a - b) for a, b in zip(out, base)) > 1e-3


def test_rank3_inputs(inputs):
    tmp, (q, k, v, H, sq, sk, d, dv) = inputs
    r = subprocess.run([BIN, "attention", "-q", str(tmp / "q3.npy"), "-k", str(tmp / "k3.npy"),
                        "-v", str(tmp / "v3.npy"), "-o", str(tmp / "o3.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shape, out = read_npy(tmp / "o3.npy")
    assert shape == (H, sq, dv)
    ro, _ = reference(q, k, v, H, sq, sk, d, dv)
    assert max(abs(a - b) for a, b in zip(out, ro)) < 1e-5


@pytest.mark.parametrize("args", [["--causal", "diagonal"], ["--softcap", "-1"],
                                  ["--window", "-3"], ["--scale", "inf"]])
def test_errors_write_nothing(inputs, args):
    tmp, _ = inputs
    r = run(tmp, *args)
    assert r.returncode == 2
    assert "error" in r.stderr
    assert not (tmp / "out.npy").exists() and not (tmp / "lse.npy").exists()


def test_shape_mismatch(inputs):
    tmp, _ = inputs
    r = subprocess.run([BIN, "attention", "-q", str(tmp / "q.npy"), "-k", str(tmp / "q.npy"),
                        "-v", str(tmp / "v.npy"), "-o", str(tmp / "out.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "'v'" in r.stderr
    assert not (tmp / "out.npy").exists()
