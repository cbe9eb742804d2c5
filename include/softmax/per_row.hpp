// softmax/per_row.hpp: a parameter given once for every row or once per row (sampling,
// logit processors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace softmax {

// One value for every row, or one value per row (a view: the caller keeps the values alive).
template <class T>
class PerRow {
 public:
  PerRow(T value) : value_(value) {}  // NOLINT(google-explicit-constructor)
  PerRow(std::span<const T> values) : values_(values), per_row_(true) {}        // NOLINT
  PerRow(const std::vector<T>& values) : PerRow(std::span<const T>(values)) {}  // NOLINT
  PerRow(std::vector<T>&&) = delete;                                            // would dangle

  bool per_row() const noexcept { return per_row_; }
  // Number of per-row values (0 for a scalar).
  std::size_t size() const noexcept { return per_row_ ? values_.size() : 0; }
  T operator[](int64_t row) const {
    return per_row_ ? values_[static_cast<std::size_t>(row)] : value_;
  }

 private:
  T value_{};
  std::span<const T> values_;
  bool per_row_ = false;
};

}  // namespace softmax
