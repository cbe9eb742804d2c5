# Safety rules shared by every op, through the Python module: thread counts (clamped, never a
# crash; negative rejected), fork() after multithreaded calls (multiprocessing's 'fork' start
# method), 64-bit sampling streams, misaligned data and DLPack byte offsets, and outputs whose
# elements share memory.
import ctypes
import multiprocessing
import os

import numpy as np
import pytest

import softmax as sm

torch = pytest.importorskip("torch")


def _inputs():
    x = (3 * np.sin(0.37 * np.arange(256 * 512))).astype(np.float32).reshape(256, 512)
    t = (np.arange(256) * 37) % 512
    q = (np.sin(0.19 * np.arange(2 * 4 * 64 * 32))).astype(np.float32).reshape(2, 4, 64, 32)
    h = (0.5 * np.sin(0.29 * np.arange(128 * 32))).astype(np.float32).reshape(128, 32)
    w = (0.5 * np.sin(0.53 * np.arange(512 * 32))).astype(np.float32).reshape(512, 32)
    return x, t, q, h, w


def _every_family(threads):
    """One call of each op family; returns a dict of NumPy results."""
    x, t, q, h, w = _inputs()
    loss, grad = sm.cross_entropy(x, t, label_smoothing=0.1, return_grad=True, threads=threads)
    lin, gh, gw = sm.linear_cross_entropy(h, w, t[:128], return_grad=True, threads=threads)
    return {
        "softmax": sm.softmax(x, threads=threads),
        "log_softmax": sm.log_softmax(x, threads=threads),
        "cross_entropy": np.append(np.asarray(grad).ravel(), loss),
        "linear_cross_entropy": np.concatenate([np.ravel(gh), np.ravel(gw), np.ravel(lin)]),
        "sample": sm.sample(x, 4, top_p=0.9, seed=3, threads=threads),
        "masked_softmax": sm.masked_softmax(q, causal=True, threads=threads),
        "attention": sm.attention(q, q, q, causal=True, threads=threads),
    }


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ---- threads ----

@pytest.mark.parametrize("threads", [100000, 40000, 2 ** 31 - 1])
def test_huge_thread_counts_are_clamped_and_match_one_thread(threads):
    one = _every_family(1)
    got = _every_family(threads)
    procs = _every_family(len(os.sched_getaffinity(0)))  # the clamp; oneDNN's sums may split
    for name, value in got.items():
        ref = procs if name == "linear_cross_entropy" else one
        assert _same_bits(value, ref[name]), name


def test_negative_threads_raise():
    x = np.zeros((2, 3), np.float32)
    for fn in (lambda: sm.softmax(x, threads=-1),
               lambda: sm.sample(x, threads=-5),
               lambda: sm.cross_entropy(x, [0, 1], threads=-1),
               lambda: sm.attention(x[None, None], x[None, None], x[None, None], threads=-2)):
        with pytest.raises(ValueError, match="threads"):
            fn()


# ---- fork ----

def _child(queue):
    queue.put({k: np.asarray(v) for k, v in _every_family(2).items()})


def test_forked_child_after_multithreaded_calls_finishes():
    parent_two = _every_family(2)  # the OpenMP pool is live now
    torch.softmax(torch.randn(512, 512), -1)  # and torch's own threads
    one = _every_family(1)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    try:
        got = queue.get(timeout=300)
    except Exception:  # queue.Empty: the child hung
        got = None
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert got is not None, "the forked child hung"
    assert proc.exitcode == 0
    for name, value in got.items():
        # The child runs on one thread: linear_cross_entropy equals the parent's 1-thread run.
        assert _same_bits(value, one[name]), name
        if name != "linear_cross_entropy":
            assert _same_bits(value, parent_two[name]), name


# ---- 64-bit streams ----

def _stream_logits():
    return (3 * np.sin(0.37 * np.arange(4 * 1000))).astype(np.float32).reshape(4, 1000)


def test_streams_below_2_32_draw_what_they_drew_before():
    # Recorded from the 32-bit implementation.
    x = _stream_logits()
    streams = [0, 1, 123456789, 4294967295]
    assert sm.sample(x, 3, seed=42, offset=7, streams=streams).tolist() == [
        [889, 72, 649], [652, 143, 991], [245, 908, 585], [436, 485, 62]]
    assert sm.sample(x, 3, seed=42, offset=7, streams=streams, method="gumbel_max").tolist() == [
        [192, 600, 326], [871, 670, 873], [312, 702, 94], [469, 488, 127]]
    assert sm.sample(x, 3, seed=42, offset=7,
                     streams=np.array([5, 6, 7, 8], np.int64)).tolist() == [
        [276, 667, 446], [771, 706, 633], [231, 620, 382], [941, 301, 317]]


@pytest.mark.parametrize("method", ["inverse_cdf", "gumbel_max"])
def test_streams_differing_above_bit_32_are_independent(method):
    flat = np.zeros((1, 1000), np.float32)  # every token 1 / 1000
    ids = [0, 2 ** 32, 2 ** 33, 2 ** 32 + 1, 1, 2 ** 63, 2 ** 64 - 1]
    draws = {s: sm.sample(flat, 512, seed=9, streams=[s], method=method)[0] for s in ids}
    for i, a in enumerate(ids):
        for b in ids[:i]:
            # Independent streams agree on about 0.5 of 512 draws; > 8 has p < 1e-6.
            assert np.count_nonzero(draws[a] == draws[b]) <= 8, (a, b)
    # A stream draws the same tokens wherever it sits in the batch.
    both = sm.sample(np.zeros((2, 1000), np.float32), 512, seed=9, streams=[7, 2 ** 40],
                     method=method)
    np.testing.assert_array_equal(both[1], sm.sample(flat, 512, seed=9, streams=[2 ** 40],
                                                     method=method)[0])


def test_bad_streams_raise():
    x = np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match="streams"):
        sm.sample(x, streams=[-1, 0])
    with pytest.raises((ValueError, OverflowError)):
        sm.sample(x, streams=[2 ** 64, 0])
    with pytest.raises(TypeError, match="streams"):
        sm.sample(x, streams=[0.5, 1.0])
    with pytest.raises(ValueError, match="streams"):
        sm.sample(x, streams=[1, 2, 3])


# ---- misaligned data and DLPack byte offsets ----

class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


class _Capsule:
    """A __dlpack__ producer of float32 data at storage + byte_offset (a uint8 storage
    reinterpreted), shape (n,)."""

    def __init__(self, storage, byte_offset, n):
        self.storage = storage  # keeps the memory alive
        self.shape = (ctypes.c_int64 * 1)(n)
        self.managed = _DLManagedTensor()
        t = self.managed.dl_tensor
        t.data = storage.ctypes.data
        t.device = _DLDevice(1, 0)  # kDLCPU
        t.ndim = 1
        t.dtype = _DLDataType(2, 32, 1)  # kDLFloat, 32 bits
        t.shape = self.shape
        t.strides = None
        t.byte_offset = byte_offset

    def __dlpack_device__(self):
        return (1, 0)

    def __dlpack__(self, stream=None):
        new = ctypes.pythonapi.PyCapsule_New
        new.restype = ctypes.py_object
        new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new(ctypes.addressof(self.managed), b"dltensor", None)


def test_dlpack_byte_offset_must_align_the_data():
    storage = np.zeros(64, np.uint8)
    storage[:] = np.arange(64, dtype=np.uint8)
    assert storage.ctypes.data % 4 == 0
    vals = np.frombuffer(storage.tobytes()[4:4 + 32], np.float32)
    np.testing.assert_array_equal(sm.softmax(_Capsule(storage, 4, 8)), sm.softmax(vals))
    for off in (1, 2, 3, 5):
        with pytest.raises(ValueError, match="byte_offset"):
            sm.softmax(_Capsule(storage, off, 8))


def test_misaligned_numpy_inputs_are_copied_outputs_raise():
    buf = np.zeros(8 * 9 + 8, np.uint8)
    buf[1:] = np.arange(1, buf.size) % 7
    for dtype in (np.float32, np.float64, np.float16):
        x = np.frombuffer(buf.data, dtype=dtype, count=8, offset=1)
        assert x.ctypes.data % x.itemsize != 0
        np.testing.assert_array_equal(sm.softmax(x), sm.softmax(x.copy()))
    logits = np.frombuffer(bytearray(b"\x01" * 44), np.float32, count=10, offset=2).reshape(2, 5)
    np.testing.assert_array_equal(sm.cross_entropy(logits, [0, 1]),
                                  sm.cross_entropy(logits.copy(), [0, 1]))
    np.testing.assert_array_equal(sm.sample(logits, seed=1), sm.sample(logits.copy(), seed=1))
    for dtype, arg, fn in (
            (np.float32, "y", lambda o: sm.softmax(np.zeros(8, np.float32), out=o)),
            (np.int64, "indices", lambda o: sm.argmax(np.zeros((8, 3), np.float32), out=o)),
            (np.float32, "out", lambda o: sm.attention(*[np.zeros((1, 1, 8, 1), np.float32)] * 3,
                                                       out=o.reshape(1, 1, 8, 1)))):
        out = np.frombuffer(bytearray(8 * 8 + 8), dtype=dtype, count=8, offset=1)
        with pytest.raises(ValueError, match=f"argument '{arg}'.*multiple of the element size"):
            fn(out)
        assert not np.frombuffer(out.base if out.base is not None else out, np.uint8).any()


# ---- outputs whose elements share memory ----

def test_self_overlapping_outputs_raise():
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    base = np.zeros(64, np.float32)
    rows_overlap = np.lib.stride_tricks.as_strided(base, (4, 8), (4 * 4, 4))  # row stride 4
    zero_stride = np.lib.stride_tricks.as_strided(base, (4, 8), (0, 4))
    for out in (rows_overlap, zero_stride):
        with pytest.raises(ValueError, match="share memory"):
            sm.softmax(x, out=out)
        assert not base.any()  # nothing written
    tb = torch.zeros(64)
    tout = tb.as_strided((4, 8), (2, 1))
    with pytest.raises(ValueError, match="share memory"):
        sm.log_softmax(torch.from_numpy(x), out=tout)
    assert not tb.any()
    q = np.zeros((1, 1, 4, 8), np.float32)
    aout = np.lib.stride_tricks.as_strided(np.zeros(64, np.float32), (1, 1, 4, 8), (0, 0, 4, 4))
    with pytest.raises(ValueError, match="share memory"):
        sm.attention(q, q, q, out=aout)
