"""softmax.dist under mpiexec (CTest mpi_dist_python_np*): every rank checks its shard against
the single-process call on the whole tensor, bit for bit on the default layout, and that an
invalid argument on one rank raises the same error on every rank. Exit 0 on every rank = pass."""
import sys

import numpy as np
from mpi4py import MPI

import softmax
import softmax.dist

comm = MPI.COMM_WORLD
rank, size = comm.rank, comm.size
failures = []

rng = np.random.default_rng(11)
for vocab in (1000, 2 * 32768 + 123):
    x = rng.normal(0.0, 3.0, size=(4, vocab)).astype(np.float32)
    x[0, 7] = 60.0  # a near-certain row
    off, n = softmax.dist.default_shard(vocab, rank, size)
    xs = np.ascontiguousarray(x[:, off:off + n])
    for name in ("softmax", "log_softmax"):
        got = getattr(softmax.dist, name)(comm, xs, off, temperature=0.7)
        want = getattr(softmax, name)(x, temperature=0.7)[:, off:off + n]
        if got.shape != want.shape or got.tobytes() != want.tobytes():
            failures.append(f"{name} V={vocab}: not the single-process bits")
    # dtype= as in softmax.softmax: float64 output of float32 input computes in float64, float32
    # output of float64 input is the float64 result rounded once.
    for name in ("softmax", "log_softmax", "logsumexp"):
        for xin, dt in ((x, np.float64), (x.astype(np.float64), np.float32)):
            sl = np.ascontiguousarray(xin[:, off:off + n])
            got = getattr(softmax.dist, name)(comm, sl, off, dtype=dt)
            want = getattr(softmax, name)(xin, dtype=dt)
            if name != "logsumexp":
                want = want[:, off:off + n]
            if got.dtype != dt or got.tobytes() != want.tobytes():
                failures.append(f"{name} V={vocab} dtype={dt.__name__}: not the single-process bits")
    lse = softmax.dist.logsumexp(comm, xs, off)
    if lse.tobytes() != softmax.logsumexp(x).tobytes():
        failures.append(f"logsumexp V={vocab}")
    am = softmax.dist.argmax(comm, xs, off)
    if not np.array_equal(am, np.argmax(x, axis=-1)):
        failures.append(f"argmax V={vocab}: {am} vs {np.argmax(x, axis=-1)}")

    # cross_entropy: hard targets on every rank's classes (one ignored), weights, smoothing,
    # z-loss; loss, lse, grad and log-probs against the single-process call.
    tgt = np.array([0, vocab - 1, -100, vocab // 2])
    w = (0.5 + (np.arange(vocab) % 5) * 0.25).astype(np.float32)
    for kw in (dict(), dict(weight=w, label_smoothing=0.1, z_loss=1e-4),
               dict(reduction="none", label_smoothing=0.2)):
        kws = dict(kw)
        got = softmax.dist.cross_entropy(comm, xs, tgt, off, return_grad=True, return_lse=True,
                                         return_log_probs=True, **kws)
        want = softmax.cross_entropy(x, tgt, return_grad=True, return_lse=True,
                                     return_log_probs=True, **kws)
        for i, part in enumerate(("loss", "grad", "lse", "log_probs")):
            wp = want[i][:, off:off + n] if part in ("grad", "log_probs") else want[i]
            if got[i].shape != wp.shape or got[i].tobytes() != np.ascontiguousarray(wp).tobytes():
                failures.append(f"cross_entropy {kw.keys()} V={vocab}: {part} not the single-process bits")

    # linear_cross_entropy: this rank's rows of the classifier.
    d = 8
    h = rng.normal(size=(4, d)).astype(np.float32)
    wmat = (0.5 * rng.normal(size=(vocab, d))).astype(np.float32)
    got = softmax.dist.linear_cross_entropy(comm, h, np.ascontiguousarray(wmat[off:off + n]), tgt,
                                            off, label_smoothing=0.1, return_grad=True,
                                            return_lse=True, threads=1)
    want = softmax.linear_cross_entropy(h, wmat, tgt, label_smoothing=0.1, return_grad=True,
                                        return_lse=True, threads=1)
    for i, part in ((0, "loss"), (2, "grad_weight"), (3, "lse")):
        wp = want[i][off:off + n] if part == "grad_weight" else want[i]
        if got[i].tobytes() != np.ascontiguousarray(wp).tobytes():
            failures.append(f"linear_cross_entropy V={vocab}: {part} not the single-process bits")
    gh_tol = 1e-5 * np.abs(want[1]).max() + 1e-7
    if size == 1 and got[1].tobytes() != want[1].tobytes():
        failures.append(f"linear_cross_entropy V={vocab}: grad_hidden not the single-process bits")
    if np.abs(got[1] - want[1]).max() > gh_tol:
        failures.append(f"linear_cross_entropy V={vocab}: grad_hidden off by {np.abs(got[1] - want[1]).max()}")
    if comm.allgather(got[1].tobytes()) != [got[1].tobytes()] * size:
        failures.append(f"linear_cross_entropy V={vocab}: grad_hidden differs across ranks")

    # sample: the same ids as the single-process call, for several filters and an uneven layout.
    for kw in (dict(temperature=0.0), dict(temperature=0.8, top_k=50), dict(top_p=0.9),
               dict(min_p=0.05, num_samples=3), dict(method="gumbel_max", top_k=5),
               dict(temperature=[0.5, 1.0, 2.0, 0.0], seed=[1, 2, 3, 4])):
        kws = dict(kw)
        seed = kws.pop("seed", 7)
        want = softmax.sample(x, seed=seed, offset=3, **kws)
        got = softmax.dist.sample(comm, xs, off, seed=seed, offset=3, **kws)
        # an uneven, unaligned layout: rank r holds [cut_r, cut_{r+1})
        cuts = [0] + [vocab * (r + 1) // (size + 1) for r in range(size - 1)] + [vocab]
        xu = np.ascontiguousarray(x[:, cuts[rank]:cuts[rank + 1]])
        got_u = softmax.dist.sample(comm, xu, cuts[rank], seed=seed, offset=3, **kws)
        if not (np.array_equal(got, want) and np.array_equal(got_u, want)):
            failures.append(f"sample {kw} V={vocab}: {got} / {got_u} vs {want}")

    # top_logprobs: the single-process ids and bits on the default layout, the ids on the
    # uneven one (log-probs within 1e-12), checked against NumPy in f64 too.
    for n_top, temp in ((1, 1.0), (5, 0.7), (min(vocab, 40), 2.0)):
        want_ids, want_lp = softmax.top_logprobs(x, n_top, temperature=temp)
        got_ids, got_lp = softmax.dist.top_logprobs(comm, xs, n_top, off, temperature=temp)
        cuts = [0] + [vocab * (r + 1) // (size + 1) for r in range(size - 1)] + [vocab]
        xu = np.ascontiguousarray(x[:, cuts[rank]:cuts[rank + 1]])
        u_ids, u_lp = softmax.dist.top_logprobs(comm, xu, n_top, cuts[rank], temperature=temp)
        z = x.astype(np.float64) / temp
        ref = z - z.max(1, keepdims=True)
        ref -= np.log(np.exp(ref).sum(1, keepdims=True))
        ref_ids = np.argsort(-ref, axis=1, kind="stable")[:, :n_top]
        if not (np.array_equal(got_ids, want_ids) and np.array_equal(u_ids, want_ids)
                and np.array_equal(want_ids, ref_ids)):
            failures.append(f"top_logprobs n={n_top} V={vocab}: ids differ")
        elif got_lp.tobytes() != want_lp.tobytes():
            failures.append(f"top_logprobs n={n_top} V={vocab}: log-probs not the single-process bits")
        elif np.abs(u_lp - want_lp).max() > 1e-12 * (1 + np.abs(want_lp).max()):
            failures.append(f"top_logprobs n={n_top} V={vocab}: uneven layout off by "
                            f"{np.abs(u_lp - want_lp).max()}")
        elif np.abs(got_lp - np.take_along_axis(ref, ref_ids, 1)).max() > 1e-5:
            failures.append(f"top_logprobs n={n_top} V={vocab}: far from NumPy")

# linear_cross_entropy with an output bias sharded like the classifier rows.
vocab, dim = 700, 8
hid = rng.normal(0, 1, (5, dim)).astype(np.float32)
wfull = rng.normal(0, 0.5, (vocab, dim)).astype(np.float32)
bfull = rng.normal(0, 1, vocab).astype(np.float32)
tg = np.array([0, vocab - 1, 3, -100, vocab // 2])
off = vocab * rank // size  # an even split: every rank holds classes
n = vocab * (rank + 1) // size - off
got = softmax.dist.linear_cross_entropy(comm, hid, np.ascontiguousarray(wfull[off:off + n]), tg,
                                        off, bias=bfull[off:off + n], return_grad=True)
want = softmax.linear_cross_entropy(hid, wfull, tg, bias=bfull, return_grad=True)
ref_logits = hid.astype(np.float64) @ wfull.T.astype(np.float64) + bfull
keep = tg != -100
ref_loss = np.mean(np.log(np.exp(ref_logits[keep]).sum(1)) - ref_logits[keep, tg[keep]])
if len(got) != 4:
    failures.append(f"linear_cross_entropy with bias returns {len(got)} items, not 4")
elif abs(float(got[0]) - ref_loss) > 1e-5 * (1 + abs(ref_loss)):
    failures.append(f"linear_cross_entropy bias loss {float(got[0])} vs {ref_loss}")
else:
    for i, name in ((1, "grad_hidden"), (2, "grad_weight"), (3, "grad_bias")):
        w_i = want[i] if i == 1 else want[i][off:off + n]
        if got[i].shape != w_i.shape or np.abs(got[i] - w_i).max(initial=0) > 1e-6:
            failures.append(f"linear_cross_entropy bias {name} differs from the single-process call")

# A target outside every shard: every rank raises the same error.
try:
    softmax.dist.cross_entropy(comm, np.zeros((1, 3), np.float32), np.array([3 * size]), 3 * rank)
    failures.append("no error for a target outside every shard")
except ValueError as e:
    if f"[0, {3 * size})" not in str(e):
        failures.append(f"target error does not give the class range: {e}")

# The last rank passes a negative temperature: every rank raises the same error.
t = -1.0 if rank == size - 1 else 1.0
try:
    softmax.dist.softmax(comm, np.zeros((2, 3), np.float32), 3 * rank, temperature=t)
    failures.append("no error for a negative temperature on one rank")
except ValueError as e:
    want = f"rank {size - 1} of {size}"
    if want not in str(e) or "temperature" not in str(e):
        failures.append(f"error does not name {want} and the temperature: {e}")

# The last rank passes arguments rejected before the op's agreement (a float class_offset that
# pybind11 refuses, an integer array, a float n): it joins the agreement as a failing rank, so
# every rank raises the same error naming it instead of the others waiting forever.
bad = rank == size - 1
x3 = np.zeros((2, 3), np.float32)
for what, call in [
        ("class_offset 0.5", lambda: softmax.dist.softmax(comm, x3, 0.5 if bad else 3 * rank)),
        ("int64 logits", lambda: softmax.dist.log_softmax(
            comm, x3.astype(np.int64) if bad else x3, 3 * rank)),
        ("n = 2.5", lambda: softmax.dist.top_logprobs(comm, x3, 2.5 if bad else 2, 3 * rank)),
        ("reduction = 3", lambda: softmax.dist.cross_entropy(
            comm, x3, np.array([0, 1]), 3 * rank, reduction=3 if bad else "mean"))]:
    try:
        call()
        failures.append(f"no error for {what} on the last rank")
    except (ValueError, TypeError) as e:
        if f"rank {size - 1} of {size}" not in str(e):
            failures.append(f"{what}: the error does not name rank {size - 1}: {e}")
        # The failing rank's class (pybind11's TypeError, a ValueError) on every rank.
        types = comm.allgather(type(e).__name__)
        if len(set(types)) != 1:
            failures.append(f"{what}: the ranks raise different classes {types}")
# Messages: the same text on every rank, no private binding names, no repeated prefixes.
for what, call, needle in [
        ("a different op", lambda: (softmax.dist.log_softmax if bad else softmax.dist.softmax)(
            comm, x3, 3 * rank), "calls softmax::dist::log_softmax where rank 0 calls"),
        ("a float class_offset", lambda: softmax.dist.softmax(comm, x3, 0.5 if bad else 3 * rank),
         "has a type it does not take; it takes (x:"),
        ("a bad dtype", lambda: softmax.dist.softmax(comm, x3, 3 * rank,
                                                     dtype="float99" if bad else None),
         f"rank {size - 1} of {size}: dtype='float99'")]:
    if size == 1 and what == "a different op":
        continue
    try:
        call()
        failures.append(f"no error for {what} on the last rank")
    except (ValueError, TypeError) as e:
        msgs = comm.allgather(f"{type(e).__name__}: {e}")
        if len(set(msgs)) != 1:
            failures.append(f"{what}: the ranks raise different errors {msgs}")
        if needle not in str(e) or "_dist_" in str(e) or str(e).count("softmax.dist.softmax:") > 0:
            failures.append(f"{what}: message {e!r} lacks {needle!r} or leaks internals")
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    xt = torch.zeros((2, 3), requires_grad=bad)
    try:
        softmax.dist.softmax(comm, xt, 3 * rank)
        failures.append("no error for a tensor that requires grad")
    except ValueError as e:
        if "records no autograd graph" not in str(e):
            failures.append(f"requires_grad: unexpected message {e}")
    with torch.no_grad():  # no graph wanted: accepted
        softmax.dist.softmax(comm, torch.zeros((2, 3), requires_grad=True), 3 * rank)
# ... and the communicator still works afterwards.
y = softmax.dist.softmax(comm, x3, 3 * rank)
if np.abs(y - 1.0 / (3 * size)).max() > 1e-7:
    failures.append("softmax after the failed calls is wrong")

try:
    softmax.dist.softmax(object(), xs, 0)
    failures.append("no TypeError for a non-communicator")
except TypeError:
    pass

for f in failures:
    print(f"rank {rank}: FAIL {f}", file=sys.stderr)
total = comm.allreduce(len(failures))
if rank == 0:
    print(f"dist_python_check: {size} ranks, {total} failures")
sys.exit(1 if total else 0)
