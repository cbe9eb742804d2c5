// src/core/backend.hpp: the seam between the device-neutral drivers and the code that runs a
// plan on one kind of device. A backend is a table of runners, one per plan kind (plan.hpp),
// each with the scratch size it needs; the drivers never name a device. The backend is chosen in
// one place, backend_for, from the device of the call's tensors (checks.hpp call_device).
//
// Backends: cpu (src/core/cpu_runner.cc over the Highway kernels of src/cpu) and cuda
// (src/cuda/runner.cc over the kernels of src/cuda, in builds with SOFTMAX_BUILD_CUDA). Adding
// one means writing its runner file and naming it in backend_for (docs/design.md, "Adding a
// backend"). A runner that does not serve some plan (a layout, a dtype) throws softmax::Error
// (kUnsupported) naming what it lacks, before it writes anything.
#pragma once

#include <cstddef>

#include "softmax/tensor.hpp"
#include "src/core/exec.hpp"
#include "src/core/plan.hpp"

namespace softmax::detail {

struct Backend {
  const char* name;  // "cpu", "cuda"
  // Scratch bytes a run needs with `exec` (0: none); a run given exec.workspace of at least that
  // many bytes makes no allocation of its own.
  std::size_t (*axis_workspace_bytes)(const AxisPlan& plan, const Exec& exec);
  void (*run_axis)(const AxisPlan& plan, const Exec& exec);
  std::size_t (*backward_workspace_bytes)(const BackwardPlan& plan, const Exec& exec);
  void (*run_backward)(const BackwardPlan& plan, const Exec& exec);
};

const Backend& cpu_backend();

// The backend of `device`; softmax::Error (kUnsupported) naming `op` when this build has none for
// it (CUDA views in a build without SOFTMAX_BUILD_CUDA).
const Backend& backend_for(const char* op, Device device);

// The caller's workspace for a run that needs `needed` bytes: exec.workspace when it is at least
// that large (and aligned to 256 bytes), null when the caller gave none (the runner allocates);
// softmax::Error (kInvalidArgument) naming `op` for a given workspace that is too small or
// misaligned.
void* caller_workspace(const char* op, const Exec& exec, std::size_t needed);

}  // namespace softmax::detail
