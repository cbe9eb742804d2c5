// softmax/options.hpp: options structs with defaults.
#pragma once

#include <cstdint>

namespace softmax {

// Options for the axis ops (softmax, log_softmax, logsumexp, argmax, hardmax).
struct SoftmaxOptions {
  // The axis the op reduces over; negative counts from the end (-1 = last), as in
  // ONNX opset >= 13 and PyTorch. Must lie in [-rank, rank - 1].
  int64_t axis = -1;
  // softmax(x / temperature). Must be finite and > 0. Ignored by argmax/hardmax (the
  // argmax of x / T is the argmax of x for every T > 0) but still validated.
  double temperature = 1.0;
  // Worker threads (OpenMP). 0 = the OpenMP default (OMP_NUM_THREADS or all CPUs). Any
  // count is clamped to the number of CPUs the process may use (omp_get_num_procs()), and
  // to 1 in a child created by fork() (OpenMP's thread pool does not survive fork).
  // threads < 0 throws softmax::Error (kInvalidArgument).
  // Results do not depend on this value.
  int threads = 0;
  // logsumexp / argmax only: keep the reduced axis with size 1.
  bool keepdims = false;
};

// Options for elementwise ops (sigmoid).
struct ElementwiseOptions {
  int threads = 0;  // as SoftmaxOptions::threads
};

}  // namespace softmax
