// softmax/large_vocab.hpp: approximations of the full softmax over a large vocabulary:
// sampled softmax (TensorFlow's sampled_softmax_loss), hierarchical softmax (word2vec /
// fastText trees) and adaptive softmax (PyTorch's AdaptiveLogSoftmaxWithLoss).
// See docs/ops/sampled_softmax.md, hierarchical_softmax.md and adaptive_softmax.md.
#pragma once

#include "softmax/adaptive_softmax.hpp"
#include "softmax/hierarchical_softmax.hpp"
#include "softmax/sampled_softmax.hpp"
#include "softmax/sparse_rows.hpp"
