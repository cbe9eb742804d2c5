"""CLI tests of `softmax-llm` on crafted llama2.c checkpoints: every size the header declares is
checked against the file's real size before anything is allocated, so a 28-byte file declaring
27 GB of weights, negative or zero sizes, a truncated file or trailing bytes give one error line
and exit 2 at once, under a 1 GiB address-space limit. A tiny valid checkpoint still runs.
Run by CTest with SOFTMAX_LLM_BIN set (skipped without it)."""
import os
import resource
import struct
import subprocess
import time

import numpy as np
import pytest

LLM = os.environ.get("SOFTMAX_LLM_BIN", "")
pytestmark = pytest.mark.skipif(not LLM or not os.path.exists(LLM), reason="softmax-llm not built")

NAMES = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"]
TINY = dict(dim=8, hidden_dim=12, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=7, seq_len=5)


def weight_count(c, shared=True):
    d, hd, l, v, s = c["dim"], c["hidden_dim"], c["n_layers"], c["vocab_size"], c["seq_len"]
    hs = d // c["n_heads"]
    kv = hs * c["n_kv_heads"]
    return (v * d + l * d + l * d * d + 2 * l * kv * d + l * d * d + l * d + 3 * l * hd * d + d +
            s * hs + (0 if shared else v * d))


def checkpoint(path, header, weights=b""):
    path.write_bytes(struct.pack("<7i", *header) + weights)
    return path


def tiny_weights(shared=True):
    w = np.random.default_rng(8).standard_normal(weight_count(TINY, shared)).astype(np.float32)
    return (w * 0.3).tobytes()


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(model, *args):
    t0 = time.monotonic()
    p = subprocess.run([LLM, "--model", str(model), *map(str, args)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60, preexec_fn=limit_memory)
    return p, time.monotonic() - t0


def rejected(model, *args):
    p, seconds = run(model, *args)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert err.startswith("softmax-llm: error: ") and err.count("\n") == 1, err
    assert p.stdout == b""
    assert seconds < 10, seconds
    return err


def test_tiny_valid_checkpoint_runs(tmp_path):
    for shared in (True, False):
        header = [TINY[n] for n in NAMES]
        if not shared:
            header[5] = -header[5]
        m = checkpoint(tmp_path / f"tiny{shared}.bin", header, tiny_weights(shared))
        p, _ = run(m, "--steps", 5, "--temperature", 0)
        assert p.returncode == 0, p.stderr.decode()
        ids = [int(v) for v in p.stdout.split()]
        assert len(ids) == 5 and all(0 <= i < TINY["vocab_size"] for i in ids)


def test_28_byte_file_declaring_27_gb_is_rejected_before_allocating(tmp_path):
    m = checkpoint(tmp_path / "llama7b_header.bin", [4096, 11008, 32, 32, 32, 32000, 2048])
    err = rejected(m, "--steps", 4)
    want = weight_count(dict(zip(NAMES, [4096, 11008, 32, 32, 32, 32000, 2048]))) * 4
    assert f"declares {want} bytes" in err and "holds 0" in err and "truncated" in err, err


def test_largest_plausible_header_is_rejected_by_size(tmp_path):
    header = [65536, 262144, 1024, 2, 2, 4194304, 1048576]
    err = rejected(checkpoint(tmp_path / "max.bin", header, b"\0" * 64))
    assert "declares" in err and "holds 64" in err, err


@pytest.mark.parametrize("field", range(7))
@pytest.mark.parametrize("value", [0, -1, -2147483648, 2147483647])
def test_zero_negative_and_huge_sizes_are_implausible(tmp_path, field, value):
    header = [TINY[n] for n in NAMES]
    if field == 5 and value == -1:
        return  # vocab_size -1: an unshared classifier of 1 token, a different valid header
    header[field] = value
    err = rejected(checkpoint(tmp_path / "bad.bin", header, tiny_weights()))
    assert "implausible header" in err or "declares" in err, err
    assert f"{NAMES[field]}={value}" in err, err


@pytest.mark.parametrize("cut", [1, 4, 1000])
def test_truncated_weights(tmp_path, cut):
    w = tiny_weights()
    err = rejected(checkpoint(tmp_path / "cut.bin", [TINY[n] for n in NAMES], w[:-cut]))
    assert f"holds {len(w) - cut} after the 28-byte header (truncated)" in err, err


def test_trailing_bytes(tmp_path):
    err = rejected(checkpoint(tmp_path / "long.bin", [TINY[n] for n in NAMES], tiny_weights() + b"x"))
    assert "trailing bytes" in err, err


@pytest.mark.parametrize("size", [0, 5, 27])
def test_truncated_header(tmp_path, size):
    m = tmp_path / "short.bin"
    m.write_bytes(struct.pack("<7i", *[TINY[n] for n in NAMES])[:size])
    assert f"holds {size} bytes, the header needs 28" in rejected(m)


def test_not_a_file(tmp_path):
    assert "not a regular file" in rejected(tmp_path)
    assert "cannot open" in rejected(tmp_path / "missing.bin")


def test_steps_beyond_seq_len_and_bad_flags(tmp_path):
    m = checkpoint(tmp_path / "tiny.bin", [TINY[n] for n in NAMES], tiny_weights())
    assert "seq_len" in rejected(m, "--steps", 6)
    assert "steps" in rejected(m, "--steps", "x")


def test_help_to_a_full_stdout_is_an_error():
    with open("/dev/full", "wb") as full:
        r = subprocess.run([LLM, "--help"], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2
    assert b"cannot write to stdout" in r.stderr
