// softmax/shape.hpp: the axis and shape rules of the ops, for callers that size outputs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace softmax {

// The axis in [0, rank) for `axis` in [-rank, rank - 1] (negative counts from the end, as in
// ONNX opset >= 13 and PyTorch). rank >= 1.
// Throws softmax::Error (kInvalidArgument) naming `op` for an axis outside that range or rank 0.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* op = "normalize_axis");

// The shape of a reduction along `axis` (already normalised): the axis dropped, or kept with
// size 1 when keepdims. This is the shape logsumexp and argmax write.
std::vector<int64_t> reduced_shape(std::span<const int64_t> shape, int64_t axis, bool keepdims);

}  // namespace softmax
