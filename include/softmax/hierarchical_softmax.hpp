// softmax/hierarchical_softmax.hpp: hierarchical softmax over a binary tree (Morin & Bengio
// 2005; Mikolov et al. 2013, word2vec; fastText's `-loss hs`).
//
// Tree: num_classes = V >= 2 leaves (the classes) and V - 1 internal nodes with ids 0..V-2;
// the root is V - 2 and every internal node's children have smaller ids than it. paths(k) lists
// the internal nodes from the root to class k, codes(k) the branch taken at each (0 or 1).
// node_weights (V - 1, D) f32 holds row j for internal node j, node_bias (V - 1) f32.
//
// Probability: at internal node j with score s = node_weights[j] . h + node_bias[j], the child
// with code 1 has probability sigma(s) and the child with code 0 sigma(-s) (fastText's
// convention; word2vec's labels are flipped). So
//   log p(k | h) = sum over (j, c) on k's path of log sigma((2c - 1) s_j),
// which sums to 1 over the classes for every h. Loss of example i: -log p(target_i | h_i).
// Gradient: d(-log p)/d s_j = sigma(s_j) - c_j per node on the path; hidden gets
// sum_j (sigma(s_j) - c_j) node_weights[j], node j's row (sigma(s_j) - c_j) h and its bias
// sigma(s_j) - c_j (summed over the examples whose path passes through j): SparseRowGrad.
//
// Numerics: scores are f32 dot products accumulated in f64 (hierarchical_softmax_loss,
// hierarchical_predict) or f32 sgemm (hierarchical_log_prob); log sigma is evaluated in f64
// as -log1p(exp(-|s|)) + min(s, 0) and summed in f64 along the path. Error bound per
// log-prob: <= sum over the path of e_j + 2^-24 (1 + |log p|), e_j = D * 2^-24 * (sum_d
// |w_jd h_d| + |b_j|) the score's error (a score error e moves a log sigma by at most e);
// loss and gradients likewise from the scores' errors.
//
// Errors (softmax::Error): counts empty, of one class, or holding a count <= 0; hidden not
// (N, D) f32, node_weights not (V - 1, D) f32 (unit column stride), node_bias not (V - 1) f32,
// targets not (N) i32/i64 or out of [0, V), k outside [1, V], a class id out of range for
// paths / codes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/sparse_rows.hpp"
#include "softmax/tensor.hpp"

namespace softmax {

class HierarchicalTree {
 public:
  // From each internal node's two children: children[2 j + c] is the child with code c of
  // internal node j, encoded as an internal id (>= 0, < j) or a leaf -(k + 1). Validates that
  // this is a binary tree over all V = children.size() / 2 + 1 leaves rooted at V - 2.
  // Throws softmax::Error.
  explicit HierarchicalTree(std::vector<int32_t> children);

  int64_t num_classes() const noexcept { return num_classes_; }
  int64_t num_internal() const noexcept { return num_classes_ - 1; }
  int64_t root() const noexcept { return num_classes_ - 2; }
  // Internal node ids from the root to class k; codes(k) the branch (0/1) at each.
  // Throws softmax::Error for k outside [0, num_classes).
  std::span<const int32_t> paths(int64_t k) const;
  std::span<const uint8_t> codes(int64_t k) const;
  int64_t depth(int64_t k) const { return static_cast<int64_t>(paths(k).size()); }
  int64_t max_depth() const noexcept { return max_depth_; }
  // Child with code c (0 or 1) of internal node j: internal id (>= 0) or leaf -(k + 1).
  int32_t child(int64_t j, int c) const noexcept {
    return children_[static_cast<std::size_t>(2 * j + c)];
  }

 private:
  int64_t num_classes_ = 0, max_depth_ = 0;
  std::vector<int32_t> children_;
  std::vector<int64_t> offsets_;  // (V + 1) into nodes_ / codes_
  std::vector<int32_t> nodes_;
  std::vector<uint8_t> codes_;
};

// word2vec's Huffman tree (CreateBinaryTree): classes ordered by decreasing count (ties: lower
// id first), the two smallest subtrees merged repeatedly, the second smallest taking code 1.
// Equal counts give a balanced tree (depths floor/ceil of log2 V). counts: V >= 2 entries,
// each > 0. Throws softmax::Error.
HierarchicalTree huffman_tree(std::span<const int64_t> counts);

// A balanced tree over num_classes >= 2 classes (Huffman over equal counts).
HierarchicalTree balanced_tree(int64_t num_classes);

struct HierarchicalOptions {
  Reduction reduction = Reduction::kMean;  // of the per-example losses
  bool compute_grad = false;
  double grad_scale = 1.0;  // upstream gradient of the (reduced) loss; finite
  int threads = 0;          // 0 = OpenMP default; results do not depend on it
};

struct HierarchicalLossResult {
  std::vector<float> loss;         // (N) for Reduction::kNone, else 1 value
  std::vector<float> grad_hidden;  // (N, D), compute_grad only
  SparseRowGrad grad_nodes;        // touched internal nodes (bias filled when a bias is given)
};

// -log p(targets_i | hidden_i), O(depth * D) per example. hidden (N, D) f32, targets (N)
// i32/i64. Throws softmax::Error.
HierarchicalLossResult hierarchical_softmax_loss(ConstTensorView hidden, ConstTensorView targets,
                                                 const HierarchicalTree& tree,
                                                 ConstTensorView node_weights,
                                                 std::optional<ConstTensorView> node_bias,
                                                 const HierarchicalOptions& options = {});

// All log-probabilities: (N, V) row-major f32 (each row's exp sums to 1 within V * 2^-23).
// One sgemm for the (N, V - 1) scores, then one pass down the tree. Throws softmax::Error.
std::vector<float> hierarchical_log_prob(ConstTensorView hidden, const HierarchicalTree& tree,
                                         ConstTensorView node_weights,
                                         std::optional<ConstTensorView> node_bias, int threads = 0);

struct TopKClasses {
  std::vector<float> log_probs;  // (N, k) row-major, decreasing
  std::vector<int64_t> classes;  // (N, k); ties: lower class id first
};

// The exact top-k classes per row by best-first search from the root (log-probs only decrease
// along a path, so the first k leaves reached are the top k); it scores only the nodes it
// expands, not every class. Throws softmax::Error.
TopKClasses hierarchical_predict(ConstTensorView hidden, const HierarchicalTree& tree,
                                 ConstTensorView node_weights,
                                 std::optional<ConstTensorView> node_bias, int64_t k = 1,
                                 int threads = 0);

}  // namespace softmax
