// src/core/rows.hpp: walking the rows of a strided view along one axis, gathering strided
// rows into contiguous scratch, and splitting work across OpenMP threads.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "softmax/tensor.hpp"

namespace softmax::detail {

// A short list of dims or strides: up to 16 inline (no allocation), more on the heap.
class DimVec {
 public:
  static constexpr std::size_t kInline = 16;
  DimVec() = default;
  DimVec(const DimVec& o) { *this = o; }
  DimVec& operator=(const DimVec& o) {
    if (this == &o) return *this;
    clear();
    for (int64_t v : o) push_back(v);
    return *this;
  }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() {
    size_ = 0;
    heap_.clear();
  }
  void push_back(int64_t v) {
    if (size_ < kInline) {
      inline_[size_] = v;
    } else {
      if (size_ == kInline) heap_.assign(inline_, inline_ + kInline);
      heap_.push_back(v);
    }
    ++size_;
  }
  int64_t* data() { return size_ > kInline ? heap_.data() : inline_; }
  const int64_t* data() const { return size_ > kInline ? heap_.data() : inline_; }
  int64_t& operator[](std::size_t i) { return data()[i]; }
  int64_t operator[](std::size_t i) const { return data()[i]; }
  int64_t& back() { return data()[size_ - 1]; }
  int64_t back() const { return data()[size_ - 1]; }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + size_; }

 private:
  int64_t inline_[kInline] = {};
  std::vector<int64_t> heap_;  // all elements once there are more than kInline
  std::size_t size_ = 0;
};

// The rows of x along `axis`, paired with where each row's result goes in y.
//   x: shape (d0, ..., n at axis, ..., dk); y either has x's shape (elementwise over the row)
//   or is a reduction output (the axis dropped or kept with size 1).
struct RowGeometry {
  int64_t n = 0;                      // row length
  int64_t rows = 0;                   // product of the other dims
  int64_t x_step = 1;                 // x stride along the axis (elements)
  int64_t y_step = 1;                 // y stride along the axis (elements; 0 for reductions)
  DimVec dims, x_strides, y_strides;  // the other dims, outermost first (merged where uniform)
};

// y_reduced: y's shape lacks the axis (or has it with size 1, keepdims) instead of matching x.
RowGeometry make_row_geometry(const ConstTensorView& x, const ConstTensorView& y, int64_t axis,
                              bool y_reduced);
RowGeometry make_row_geometry(const ConstTensorView& x, const TensorView& y, int64_t axis,
                              bool y_reduced);

// Calls fn(row_index, x_offset, y_offset) for rows [begin, end) in row-major order of the
// non-axis dims. Offsets are in elements.
template <class Fn>
void for_each_row(const RowGeometry& g, int64_t begin, int64_t end, Fn&& fn) {
  if (begin >= end) return;
  const std::size_t k = g.dims.size();
  DimVec idx;
  for (std::size_t j = 0; j < k; ++j) idx.push_back(0);
  int64_t xo = 0, yo = 0, r = begin;
  for (std::size_t j = k; j-- > 0;) {
    idx[j] = r % g.dims[j];
    r /= g.dims[j];
    xo += idx[j] * g.x_strides[j];
    yo += idx[j] * g.y_strides[j];
  }
  for (int64_t row = begin; row < end; ++row) {
    fn(row, xo, yo);
    for (std::size_t j = k; j-- > 0;) {  // odometer increment
      if (++idx[j] < g.dims[j]) {
        xo += g.x_strides[j];
        yo += g.y_strides[j];
        break;
      }
      xo -= (g.dims[j] - 1) * g.x_strides[j];
      yo -= (g.dims[j] - 1) * g.y_strides[j];
      idx[j] = 0;
    }
  }
}

// Scratch of one worker range, in named slots: each slot from the caller's workspace (the
// range's slice of it, laid out by the runner: `arena` + offset[slot]) or grown on the heap.
struct GatherScratch {
  enum Slot { kX, kY, kWork, kBlockMax, kParts, kSlots };
  unsigned char* arena = nullptr;
  std::size_t offset[kSlots] = {};
  std::vector<unsigned char> heap[kSlots];
  void* get(Slot s, std::size_t bytes) {
    if (arena != nullptr) return arena + offset[s];
    if (heap[s].size() < bytes) heap[s].resize(bytes);
    return heap[s].data();
  }
};

// Copies n elements of `elem` bytes from src (stride `step` elements) to contiguous dst.
inline void gather(const void* src, int64_t step, int64_t n, std::size_t elem, void* dst) {
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(d + i * elem, s + i * step * static_cast<int64_t>(elem), elem);
}
inline void scatter(const void* src, int64_t n, std::size_t elem, void* dst, int64_t step) {
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(d + i * step * static_cast<int64_t>(elem), s + i * elem, elem);
}

// Number of threads to use for `requested`, the one thread rule of every op:
//   0 = the OpenMP default (omp_get_max_threads(): OMP_NUM_THREADS or all CPUs); the count is
//   then clamped to [1, omp_get_num_procs()] (the CPUs this process may run on, read at the
//   first call), so a huge request runs on every CPU instead of failing to create threads; and
//   in a child created by fork() it is 1 (OpenMP's thread pool does not survive fork, see
//   in_forked_child).
// Throws softmax::Error (kInvalidArgument) for requested < 0; ops call check_threads first so
// the message names them.
int resolve_threads(int requested);

// Throws softmax::Error (kInvalidArgument, argument 'threads') naming `op` when threads < 0.
void check_threads(const char* op, int threads);

// True in a process created by fork() from the one that loaded the library (any fork after
// load: a pthread_atfork child handler sets it). parallel_ranges then runs inline and
// resolve_threads returns 1, so no OpenMP region is entered in the child.
bool in_forked_child() noexcept;

// Work below this many elements runs on one thread: spawning costs more than it saves.
inline constexpr int64_t kMinParallelElems = 1 << 15;

// Runs fn(begin, end) over [0, count) split into `threads` contiguous static ranges (at most
// count ranges and the CPU count; one inline call when threads <= 1 or in a forked child).
// `threads` should come from resolve_threads. Exceptions must not escape fn.
void parallel_ranges(int64_t count, int threads, void (*fn)(int64_t, int64_t, void*), void* ctx);

template <class Fn>
void parallel_for(int64_t count, int threads, Fn&& fn) {
  parallel_ranges(
      count, threads, [](int64_t b, int64_t e, void* c) { (*static_cast<Fn*>(c))(b, e); },
      static_cast<void*>(&fn));
}

}  // namespace softmax::detail
