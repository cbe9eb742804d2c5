// src/cuda/runner.hpp: the CUDA backend of the public ops (src/core/backend.hpp): runs the
// device-neutral plans on the kernels of src/cuda, on the call's Context::cuda_stream, with the
// caller's workspace (or scratch from cudaMallocAsync on that stream when none is given).
#pragma once

#include "src/core/backend.hpp"

namespace softmax::cuda {

const detail::Backend& backend();

}  // namespace softmax::cuda
