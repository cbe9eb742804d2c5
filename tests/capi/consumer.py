"""tests/capi/consumer.py <install prefix> <libsoftmax.so.N>: Python ctypes on the installed
shared library (capi_consumer_python). Checks log_softmax along axis 0 and logsumexp with
keepdims and temperature on a transposed (strided) view of f64 data against math.fsum / log1p
references, speculative_verify on cases whose outcome does not depend on the random draws
(identical draft and target models accept every draft; a draft the target gives probability 0
is rejected and replaced from the residual), one error path (status, message, output untouched)
and the version."""
import ctypes as C
import math
import pathlib
import sys

F64, I64 = 1, 5
OK, INVALID_ARGUMENT, SHAPE_MISMATCH = 0, 1, 2


class Tensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("dtype", C.c_int32), ("device", C.c_int32),
                ("rank", C.c_int64), ("shape", C.POINTER(C.c_int64)),
                ("strides", C.POINTER(C.c_int64))]


class Options(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("axis", C.c_int64), ("temperature", C.c_double),
                ("keepdims", C.c_int64)]


def tensor(buf, shape, strides=None, dtype=F64):
    """A view of a ctypes array; the returned objects keep shape/strides alive."""
    sh = (C.c_int64 * len(shape))(*shape)
    st = (C.c_int64 * len(strides))(*strides) if strides else None
    t = Tensor(C.cast(buf, C.c_void_p), dtype, 0, len(shape), sh,
               C.cast(st, C.POINTER(C.c_int64)) if st else None)
    return t, (sh, st)


def lse_f64(values):
    """(max, logsumexp - max) in f64, the latter as log1p(sum of the other terms), so that
    (x - max) - (logsumexp - max) keeps its accuracy near 0."""
    m = max(values)
    rest = list(values)
    rest.remove(m)
    return m, math.log1p(math.fsum(math.exp(v - m) for v in rest))


def options(axis=-1, temperature=1.0, keepdims=0):
    return Options(C.sizeof(Options), axis, temperature, keepdims)


def speculative_verify(lib):
    """softmax_speculative_verify on outcomes fixed by the rule, whatever the uniforms."""
    fn = lib.softmax_speculative_verify
    fn.restype = C.c_int
    fn.argtypes = [C.c_void_p] + [C.POINTER(Tensor)] * 5 + [C.c_uint64, C.c_uint64,
                                                             C.POINTER(C.c_uint64), C.c_int64]
    failures = []
    b, k, v = 2, 3, 5
    # Row 0: draft = target at every position (any draft is accepted, then a bonus token).
    # Row 1: the target puts all mass on token 2 everywhere, the draft all on token 0 and draws
    # token 0: p(0) = 0 rejects it at once, and the residual max(0, p - q) is all on token 2.
    draft = [0.1, 0.2, 0.3, 0.2, 0.2] * k + [1.0, 0.0, 0.0, 0.0, 0.0] * k
    target = [0.1, 0.2, 0.3, 0.2, 0.2] * (k + 1) + [0.0, 0.0, 1.0, 0.0, 0.0] * (k + 1)
    dt = (C.c_int64 * (b * k))(4, 1, 2, 0, 0, 0)
    dp = (C.c_double * len(draft))(*draft)
    tp = (C.c_double * len(target))(*target)
    na = (C.c_int64 * b)(-9, -9)
    tok = (C.c_int64 * (b * (k + 1)))(*([-9] * (b * (k + 1))))
    t_dt, k1 = tensor(dt, [b, k], dtype=I64)
    t_dp, k2 = tensor(dp, [b, k, v])
    t_tp, k3 = tensor(tp, [b, k + 1, v])
    t_na, k4 = tensor(na, [b], dtype=I64)
    t_tok, k5 = tensor(tok, [b, k + 1], dtype=I64)
    streams = (C.c_uint64 * b)(2**40 + 1, 7)
    st = fn(None, t_dt, t_dp, t_tp, t_na, t_tok, 1234, 0, streams, b)
    if st != OK:
        return [f"speculative_verify: status {st}: {lib.softmax_last_error().decode()}"]
    if list(na) != [k, 0]:
        failures.append(f"speculative_verify: num_accepted {list(na)}, want [{k}, 0]")
    row0, row1 = list(tok[:k + 1]), list(tok[k + 1:])
    if row0[:k] != [4, 1, 2] or not 0 <= row0[k] < v:
        failures.append(f"speculative_verify: row 0 tokens {row0}")
    if row1 != [2, -1, -1, -1]:
        failures.append(f"speculative_verify: row 1 tokens {row1}, want [2, -1, -1, -1]")
    # Error: a streams array of the wrong length; nothing written.
    na[0] = na[1] = -3
    st = fn(None, t_dt, t_dp, t_tp, t_na, t_tok, 1234, 0, streams, 1)
    msg = lib.softmax_last_error().decode()
    if st == OK or not msg.startswith("softmax::speculative_verify: ") or list(na) != [-3, -3]:
        failures.append(f"speculative_verify error: status {st}, message {msg!r}, {list(na)}")
    return failures


def main():
    prefix, name = pathlib.Path(sys.argv[1]), sys.argv[2]
    path = next(prefix.rglob(name))
    lib = C.CDLL(str(path))
    lib.softmax_version.restype = C.c_char_p
    lib.softmax_last_error.restype = C.c_char_p
    for fn in (lib.softmax_log_softmax, lib.softmax_logsumexp):
        fn.restype = C.c_int
        fn.argtypes = [C.c_void_p, C.POINTER(Tensor), C.POINTER(Tensor), C.POINTER(Options)]
    failures = []

    # x is (4, 3) in C order; log_softmax of its columns (axis 0).
    rows = [[0.5, -1.0, 30.0], [2.0, 2.0, -30.0], [-7.25, 0.0, 1e-3], [1.0, 3.0, 0.0]]
    x = (C.c_double * 12)(*[v for r in rows for v in r])
    y = (C.c_double * 12)()
    tx, keep_x = tensor(x, [4, 3])
    ty, keep_y = tensor(y, [4, 3])
    st = lib.softmax_log_softmax(None, tx, ty, options(axis=0))
    if st != OK:
        failures.append(f"log_softmax: status {st}: {lib.softmax_last_error().decode()}")
    for j in range(3):
        col = [rows[i][j] for i in range(4)]
        m, log_sum = lse_f64(col)
        for i in range(4):
            want = (col[i] - m) - log_sum
            if abs(y[i * 3 + j] - want) > 6 * 2**-53 * abs(want) + 1e-300:
                failures.append(f"log_softmax[{i},{j}] = {y[i * 3 + j]!r}, want {want!r}")

    # logsumexp of each row of the same buffer read as (3, 4) with strides (1, 3): x^T.
    z = (C.c_double * 3)()
    txt, keep_t = tensor(x, [3, 4], [1, 3])
    tz, keep_z = tensor(z, [3, 1])
    st = lib.softmax_logsumexp(None, txt, tz, options(temperature=0.5, keepdims=1))
    if st != OK:
        failures.append(f"logsumexp: status {st}: {lib.softmax_last_error().decode()}")
    for j in range(3):
        m, log_sum = lse_f64([rows[i][j] / 0.5 for i in range(4)])
        want = m + log_sum
        if abs(z[j] - want) > 2**-51 * abs(want) + 2**-52:
            failures.append(f"logsumexp[{j}] = {z[j]!r}, want {want!r}")

    # Error path: y of the wrong shape. Status, message, nothing written.
    small = (C.c_double * 3)(9.0, 9.0, 9.0)
    tsmall, keep_s = tensor(small, [3])
    st = lib.softmax_log_softmax(None, tx, tsmall, None)
    msg = lib.softmax_last_error().decode()
    if st != SHAPE_MISMATCH or not msg.startswith("softmax::log_softmax: argument 'y'") or \
            list(small) != [9.0, 9.0, 9.0]:
        failures.append(f"shape error: status {st}, message {msg!r}, y {list(small)}")

    failures += speculative_verify(lib)

    version = lib.softmax_version().decode()
    if failures:
        print("\n".join(failures))
        return 1
    print(f"consumer.py ok: {path.name} {version}; error path: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
