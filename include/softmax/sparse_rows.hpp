// softmax/sparse_rows.hpp: a sparse gradient of a (rows x dim) parameter matrix and its bias,
// holding only the rows a step touched (the sampled and true classes of sampled_softmax_loss,
// the internal nodes on the targets' paths of hierarchical_softmax_loss).
#pragma once

#include <cstdint>
#include <vector>

namespace softmax {

// rows: the touched row ids, strictly increasing. values: (rows.size(), dim) row-major f32,
// values[i * dim + j] = d objective / d matrix[rows[i], j]. bias: (rows.size()) f32,
// d objective / d bias[rows[i]] (empty when the op was given no bias). Rows not listed have a
// zero gradient.
struct SparseRowGrad {
  std::vector<int64_t> rows;
  std::vector<float> values;
  std::vector<float> bias;
  int64_t dim = 0;
};

}  // namespace softmax
