"""Tests of `softmax bench` (tools/softmax_cli/cmd_bench.cc): the --json contract that scripts
rely on (one object per line with impl, op, shape, dtype, threads, seconds, gbps), the readable
table, and exit status 2 for bad arguments. Tiny hot shapes keep it fast.

Environment: SOFTMAX_BIN (the binary; set by CTest).
"""
import json
import os
import subprocess

import pytest

BIN = os.environ.get("SOFTMAX_BIN", os.path.join(os.path.dirname(__file__),
                                                 "../../build/tools/softmax"))
KEYS = {"impl", "op", "shape", "dtype", "threads", "seconds", "gbps"}


def bench(*args):
    return subprocess.run([BIN, "bench", "--cache", "hot", "--min-time", "0.01", *map(str, args)],
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("op", ["softmax", "log-softmax", "logsumexp"])
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_json_lines_have_the_contract_keys(op, dtype):
    p = bench("--op", op, "--shape", "3x17", "--dtype", dtype, "--threads", 2, "--json")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stderr == b""  # no progress line in --json mode
    lines = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert [d["impl"] for d in lines] == ["softmax", "memcpy"]
    for d in lines:
        assert KEYS <= d.keys()
        assert (d["op"], d["shape"], d["dtype"], d["threads"]) == (op, "3x17", dtype, 2)
        assert d["seconds"] > 0 and d["gbps"] > 0
    es = 4 if dtype == "f32" else 2
    assert lines[0]["bytes"] == 3 * 17 * es + (3 if op == "logsumexp" else 3 * 17) * es
    assert lines[1]["bytes"] == 2 * 3 * 17 * es


def test_cold_cache_one_dimension():
    p = subprocess.run([BIN, "bench", "--shape", "4096", "--min-time", "0", "--json"],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    d = json.loads(p.stdout.decode().splitlines()[0])
    assert (d["shape"], d["cache"], d["threads"]) == ("4096", "cold", 1)


def test_table_and_progress():
    p = bench("--shape", "8x64")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    assert "median s/call" in out and "memcpy" in out and "GB/s" in out
    assert "softmax bench" in p.stderr.decode()


@pytest.mark.parametrize("args", [["--op", "soft-max"], ["--shape", "4x"], ["--shape", "0x3"],
                                  ["--shape", "ax3"], ["--dtype", "f16"], ["--threads", "-1"],
                                  ["--cache", "warm"], ["--min-time", "-1"]])
def test_bad_arguments_exit_2(args):
    p = bench(*args)
    assert p.returncode == 2
    assert p.stdout == b""
    err = p.stderr.decode()
    assert err.startswith("softmax: error:") and err.count("\n") == 1
