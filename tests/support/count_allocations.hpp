// tests/support/count_allocations.hpp: replaces the global operator new / delete of a test
// binary so that every allocation in the process (the library's too, from any thread) is counted
// while g_counting is set. Include it in exactly one source file of the binary.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace count_allocations {
inline std::atomic<bool> g_counting{false};
inline std::atomic<long> g_allocations{0};
}  // namespace count_allocations

void* operator new(std::size_t n) {
  if (count_allocations::g_counting.load(std::memory_order_relaxed)) {
    count_allocations::g_allocations.fetch_add(1);
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (count_allocations::g_counting.load(std::memory_order_relaxed)) {
    count_allocations::g_allocations.fetch_add(1);
  }
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
