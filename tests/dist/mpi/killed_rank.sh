#!/usr/bin/env bash
# A rank that dies makes the job exit non-zero, never hang: runs `mpi_dist_test --die` (rank 1
# kills itself while the others wait in a collective) under a timeout.
#   killed_rank.sh MPIEXEC NP_FLAG TEST_BINARY
set -u
mpiexec=$1 npflag=$2 bin=$3
start=$SECONDS
timeout 120 "$mpiexec" --oversubscribe "$npflag" 3 "$bin" --die >/dev/null 2>&1
rc=$?
echo "killed_rank: exit $rc after $((SECONDS - start)) s"
if [ "$rc" -eq 124 ]; then echo "killed_rank: FAIL: the job hung (killed by timeout)"; exit 1; fi
if [ "$rc" -eq 0 ]; then echo "killed_rank: FAIL: the job exited 0"; exit 1; fi
echo "killed_rank: ok (non-zero exit, no hang)"
