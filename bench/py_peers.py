"""bench/py_peers.py: the PyTorch and NumPy cases of bench/cpu_compare.cc.

cpu_compare embeds Debian's Python (bench/python_peers.hpp), imports this module and asks make()
for one callable per case. The callables work on the C++ program's own buffers (wrapped without
copying), so PyTorch and NumPy take their turns in the same rounds, on the same memory, as the
C++ implementations; their time includes the Python call, as it does for a Python user.

make(impl, op, dtype, rows, n, in_addrs, out_addrs) -> callable(i) running the op on pair i, or
None when the peer has no such case (NumPy has no bf16; a missing torch). set_threads(t) sets
PyTorch's intra-op threads (called untimed before each PyTorch batch); NumPy is single-threaded.
"""
import ctypes

import numpy as np

try:
    import torch
except ImportError:  # the comparison runs without PyTorch
    torch = None


def versions():
    return {"numpy": np.__version__, "torch": torch.__version__ if torch is not None else None}


def set_threads(t):
    if torch is not None:
        torch.set_num_threads(t)


def _wrap(addrs, count, dtype, shape):
    """NumPy views of `count` elements at each address (no copy)."""
    es = 4 if dtype == "f32" else 2
    np_dt = np.float32 if dtype == "f32" else np.int16
    return [np.frombuffer((ctypes.c_char * (count * es)).from_address(a),
                          dtype=np_dt).reshape(shape) for a in addrs]


def _torch(op, dtype, xs, ys, ls):
    conv = (lambda a: torch.from_numpy(a)) if dtype == "f32" else (
        lambda a: torch.from_numpy(a).view(torch.bfloat16))
    tx, ty, tl = [conv(a) for a in xs], [conv(a) for a in ys], [conv(a) for a in ls]
    if op == "softmax":
        return lambda i: torch._softmax(tx[i], -1, False, out=ty[i])
    if op == "log_softmax":
        return lambda i: torch._log_softmax(tx[i], -1, False, out=ty[i])
    return lambda i: torch.logsumexp(tx[i], -1, out=tl[i])


def _np_softmax(x, y):
    m = x.max(axis=-1, keepdims=True)
    np.subtract(x, m, out=y)
    np.exp(y, out=y)
    np.divide(y, y.sum(axis=-1, keepdims=True), out=y)


def _np_log_softmax(x, y):
    m = x.max(axis=-1, keepdims=True)
    np.subtract(x, m, out=y)
    s = np.log(np.exp(y).sum(axis=-1, keepdims=True))
    np.subtract(y, s, out=y)


def _np_logsumexp(x, l):
    m = x.max(axis=-1, keepdims=True)
    l[...] = (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[:, 0]


def make(impl, op, dtype, rows, n, in_addrs, out_addrs):
    xs = _wrap(in_addrs, rows * n, dtype, (rows, n))
    ys = _wrap(out_addrs, rows * n, dtype, (rows, n))
    ls = _wrap(out_addrs, rows, dtype, (rows,))
    if impl == "torch":
        return None if torch is None else _torch(op, dtype, xs, ys, ls)
    if impl == "numpy" and dtype == "f32":
        fn = {"softmax": _np_softmax, "log_softmax": _np_log_softmax,
              "logsumexp": _np_logsumexp}[op]
        outs = ls if op == "logsumexp" else ys
        return lambda i: fn(xs[i], outs[i])
    return None
