// src/core/hierarchical_tree.cc: HierarchicalTree (paths and codes from the children table),
// word2vec's Huffman construction and the balanced tree.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>

#include "softmax/error.hpp"
#include "softmax/hierarchical_softmax.hpp"

namespace softmax {
namespace {

constexpr const char* kTreeOp = "HierarchicalTree";
// Sum of all path lengths a tree may hold (a chain over V classes has V^2 / 2).
constexpr int64_t kMaxPathEntries = int64_t{1} << 31;

[[noreturn]] void bad_tree(const std::string& arg, const std::string& value,
                           const std::string& rule) {
  throw Error(ErrorKind::kInvalidArgument, kTreeOp, arg, value, rule);
}

}  // namespace

HierarchicalTree::HierarchicalTree(std::vector<int32_t> children) : children_(std::move(children)) {
  if (children_.size() < 2 || children_.size() % 2 != 0 ||
      children_.size() / 2 + 1 > static_cast<std::size_t>(std::numeric_limits<int32_t>::max())) {
    bad_tree("children", "length " + std::to_string(children_.size()),
             "must hold 2 entries per internal node, 2 (V - 1) for V >= 2 classes");
  }
  num_classes_ = static_cast<int64_t>(children_.size() / 2) + 1;
  const int64_t v = num_classes_, ni = v - 1;
  // parent (internal id) and code of every node: leaves at [0, V), internal j at V + j.
  std::vector<int64_t> parent(static_cast<std::size_t>(v + ni), -1);
  std::vector<uint8_t> code(static_cast<std::size_t>(v + ni), 0);
  for (int64_t j = 0; j < ni; ++j) {
    for (int c = 0; c < 2; ++c) {
      const int32_t ch = child(j, c);
      const std::string arg = "children[" + std::to_string(2 * j + c) + "]";
      int64_t slot;
      if (ch >= 0) {
        if (ch >= j)
          bad_tree(arg, std::to_string(ch),
                   "an internal child id must be < its parent's id " + std::to_string(j));
        slot = v + ch;
      } else {
        const int64_t k = -static_cast<int64_t>(ch) - 1;
        if (k >= v)
          bad_tree(arg, std::to_string(ch), "a leaf -(k + 1) needs k < " + std::to_string(v));
        slot = k;
      }
      if (parent[static_cast<std::size_t>(slot)] >= 0)
        bad_tree(arg, std::to_string(ch), "each node must have one parent");
      parent[static_cast<std::size_t>(slot)] = j;
      code[static_cast<std::size_t>(slot)] = static_cast<uint8_t>(c);
    }
  }
  // Every node but the root has a parent (V + V - 2 child slots, all distinct), so the tree
  // is connected; depths follow in decreasing internal id (parents before children).
  std::vector<int64_t> idepth(static_cast<std::size_t>(ni), 0);
  for (int64_t j = ni - 2; j >= 0; --j) {
    idepth[static_cast<std::size_t>(j)] =
        idepth[static_cast<std::size_t>(parent[static_cast<std::size_t>(v + j)])] + 1;
  }
  offsets_.assign(static_cast<std::size_t>(v + 1), 0);
  for (int64_t k = 0; k < v; ++k) {
    const int64_t dk = idepth[static_cast<std::size_t>(parent[static_cast<std::size_t>(k)])] + 1;
    max_depth_ = std::max(max_depth_, dk);
    offsets_[static_cast<std::size_t>(k + 1)] = offsets_[static_cast<std::size_t>(k)] + dk;
    if (offsets_[static_cast<std::size_t>(k + 1)] > kMaxPathEntries) {
      bad_tree("children",
               "a tree with paths longer than " + std::to_string(kMaxPathEntries) + " in total",
               "the sum of the classes' depths must be <= 2^31");
    }
  }
  nodes_.resize(static_cast<std::size_t>(offsets_.back()));
  codes_.resize(nodes_.size());
  for (int64_t k = 0; k < v; ++k) {
    int64_t pos = offsets_[static_cast<std::size_t>(k + 1)], slot = k;
    while (pos > offsets_[static_cast<std::size_t>(k)]) {
      --pos;
      const int64_t j = parent[static_cast<std::size_t>(slot)];
      nodes_[static_cast<std::size_t>(pos)] = static_cast<int32_t>(j);
      codes_[static_cast<std::size_t>(pos)] = code[static_cast<std::size_t>(slot)];
      slot = v + j;
    }
  }
}

std::span<const int32_t> HierarchicalTree::paths(int64_t k) const {
  if (k < 0 || k >= num_classes_) {
    throw Error(ErrorKind::kInvalidArgument, kTreeOp, "k", std::to_string(k),
                "must be a class id in [0, " + std::to_string(num_classes_) + ")");
  }
  const auto b = static_cast<std::size_t>(offsets_[static_cast<std::size_t>(k)]);
  const auto e = static_cast<std::size_t>(offsets_[static_cast<std::size_t>(k + 1)]);
  return {nodes_.data() + b, e - b};
}

std::span<const uint8_t> HierarchicalTree::codes(int64_t k) const {
  const std::span<const int32_t> p = paths(k);
  const auto b = static_cast<std::size_t>(p.data() - nodes_.data());
  return {codes_.data() + b, p.size()};
}

HierarchicalTree huffman_tree(std::span<const int64_t> counts) {
  const char* op = "huffman_tree";
  const auto v = static_cast<int64_t>(counts.size());
  if (v < 2 || v > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::kInvalidArgument, op, "counts", "length " + std::to_string(v),
                "must hold between 2 and 2^31 - 1 classes");
  }
  for (int64_t k = 0; k < v; ++k) {
    if (counts[static_cast<std::size_t>(k)] <= 0) {
      throw Error(ErrorKind::kInvalidArgument, op, "counts[" + std::to_string(k) + "]",
                  std::to_string(counts[static_cast<std::size_t>(k)]), "must be > 0");
    }
  }
  // word2vec's CreateBinaryTree on the classes sorted by decreasing count: leaves at
  // positions [0, V), merged nodes at [V, 2V - 1); two cursors walk the sorted leaves
  // (pos1, downwards) and the merged nodes (pos2, upwards).
  std::vector<int64_t> order(static_cast<std::size_t>(v));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return counts[static_cast<std::size_t>(a)] > counts[static_cast<std::size_t>(b)];
  });
  std::vector<__int128> count(static_cast<std::size_t>(2 * v),
                              std::numeric_limits<__int128>::max());
  for (int64_t i = 0; i < v; ++i)
    count[static_cast<std::size_t>(i)] =
        counts[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])];
  std::vector<int32_t> children(static_cast<std::size_t>(2 * (v - 1)));
  int64_t pos1 = v - 1, pos2 = v;
  auto take_min = [&]() {
    if (pos1 >= 0 && count[static_cast<std::size_t>(pos1)] < count[static_cast<std::size_t>(pos2)])
      return pos1--;
    return pos2++;
  };
  auto encode = [&](int64_t node) {
    return node < v ? static_cast<int32_t>(-order[static_cast<std::size_t>(node)] - 1)
                    : static_cast<int32_t>(node - v);
  };
  for (int64_t a = 0; a < v - 1; ++a) {
    const int64_t m1 = take_min(), m2 = take_min();
    count[static_cast<std::size_t>(v + a)] =
        count[static_cast<std::size_t>(m1)] + count[static_cast<std::size_t>(m2)];
    children[static_cast<std::size_t>(2 * a)] = encode(m1);      // code 0
    children[static_cast<std::size_t>(2 * a + 1)] = encode(m2);  // code 1 (word2vec's binary)
  }
  return HierarchicalTree(std::move(children));
}

HierarchicalTree balanced_tree(int64_t num_classes) {
  if (num_classes < 2 || num_classes > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::kInvalidArgument, "balanced_tree", "num_classes",
                std::to_string(num_classes), "must be in [2, 2^31 - 1]");
  }
  const std::vector<int64_t> ones(static_cast<std::size_t>(num_classes), 1);
  return huffman_tree(ones);
}

}  // namespace softmax
