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
    lse = softmax.dist.logsumexp(comm, xs, off)
    if lse.tobytes() != softmax.logsumexp(x).tobytes():
        failures.append(f"logsumexp V={vocab}")
    am = softmax.dist.argmax(comm, xs, off)
    if not np.array_equal(am, np.argmax(x, axis=-1)):
        failures.append(f"argmax V={vocab}: {am} vs {np.argmax(x, axis=-1)}")

# The last rank passes a negative temperature: every rank raises the same error.
t = -1.0 if rank == size - 1 else 1.0
try:
    softmax.dist.softmax(comm, np.zeros((2, 3), np.float32), 3 * rank, temperature=t)
    failures.append("no error for a negative temperature on one rank")
except ValueError as e:
    want = f"rank {size - 1} of {size}"
    if want not in str(e) or "temperature" not in str(e):
        failures.append(f"error does not name {want} and the temperature: {e}")

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
