// src/core/candidate_sampler.hpp: TensorFlow's candidate samplers (see
// softmax/sampled_softmax.hpp), shared by sample_candidates and sampled_softmax_loss.
#pragma once

#include <cstdint>
#include <vector>

#include "softmax/sampled_softmax.hpp"

namespace softmax::detail {

// Draws the sample set and the expected counts of `true_ids` ((N, num_true) row-major, already
// checked to be in range). Validates the sampler options; errors name `op`.
CandidateSample draw_candidates(const char* op, const std::vector<int64_t>& true_ids,
                                const SampledSoftmaxOptions& o);

// Checks num_sampled, num_true and num_classes (errors name `op`).
void check_sampled_counts(const char* op, const SampledSoftmaxOptions& o);

}  // namespace softmax::detail
