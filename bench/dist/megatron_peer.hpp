// bench/dist/megatron_peer.hpp: the Megatron-LM-style vocabulary-parallel peer of dist_bench
// (bench/dist/megatron_peer.cc).
#pragma once

#include <mpi.h>

#include <cstdint>

// softmax (op 0), log_softmax (1) or logsumexp (2) of rows x (rows, n) sharded over comm:
// local max, MPI_Allreduce(MAX), local sum of exp(x - max) in f32, MPI_Allreduce(SUM), then the
// normalisation. y: (rows, n), or (rows) for logsumexp.
void megatron(MPI_Comm comm, const float* x, float* y, int64_t rows, int64_t n, int op);

// Megatron-LM's fused vocab-parallel cross-entropy (mean over rows, hard targets t): local max,
// MPI_Allreduce(MAX), then one MPI_Allreduce(SUM) of the (target logit, sum exp) pair.
double megatron_ce(MPI_Comm comm, const float* x, const int64_t* t, int64_t rows, int64_t n,
                   int64_t offset);
