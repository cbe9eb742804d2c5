// src/core/axis_ops.hpp: the axis ops (softmax, log_softmax, logsumexp) and their workspace
// queries on views the caller keeps, for front ends that hold their views across calls (the C
// ABI's per-thread views, capi/capi.hpp): passed by reference, nothing of them is copied, so a
// call with a large enough Context::workspace allocates nothing. The public functions
// (softmax/ops.hpp) are these with their views moved in.
#pragma once

#include <cstddef>

#include "softmax/context.hpp"
#include "softmax/options.hpp"
#include "softmax/tensor.hpp"
#include "src/core/plan.hpp"

namespace softmax::detail {

// kind: kSoftmax, kLogSoftmax or kLogSumExp; the same checks, errors and bits as softmax(),
// log_softmax() and logsumexp().
void run_axis_op(AxisOp kind, const ConstTensorView& x, const TensorView& y,
                 const SoftmaxOptions& options, const Context& context);
// The bytes of workspace run_axis_op needs (softmax_workspace_bytes, ...).
std::size_t axis_op_workspace_bytes(AxisOp kind, const ConstTensorView& x, const TensorView& y,
                                    const SoftmaxOptions& options, const Context& context);

}  // namespace softmax::detail
