// src/io/temp_registry.cc: live temporary files, unlinked by an async-signal-safe handler.
#include "src/io/temp_registry.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace softmax::io {

namespace {

constexpr int kSlots = 16;
constexpr std::size_t kMaxPath = 4096;
enum State : int { kFree = 0, kFilling = 1, kLive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  char path[kMaxPath];
};
Slot g_slots[kSlots];
std::atomic<int> g_committing{0};
std::atomic<int> g_pending_signal{0};
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

static_assert(std::atomic<int>::is_always_lock_free, "the handler needs lock-free atomics");

// Async-signal-safe: lock-free atomic loads and unlink(2) only.
void unlink_live() {
  for (Slot& s : g_slots) {
    if (s.state.load() == kLive) ::unlink(s.path);
  }
}

// Default action, then raise: the signal stays blocked while a handler runs, so it is
// delivered (and kills the process) as soon as the handler returns.
void reraise(int sig) {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, nullptr);
  ::raise(sig);
}

void on_signal(int sig) {
  const int saved = errno;
  if (g_committing.load()) {
    g_pending_signal.store(sig);
  } else {
    unlink_live();
    reraise(sig);
  }
  errno = saved;
}

}  // namespace

int register_temp(const std::string& path) {
  if (path.size() >= kMaxPath) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].state.store(kLive);
    return i;
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(kFree);
}

void begin_commit() { g_committing.store(1); }

void end_commit() {
  g_committing.store(0);
  const int sig = g_pending_signal.exchange(0);
  if (sig != 0) {
    unlink_live();
    reraise(sig);
  }
}

void install_temp_cleanup_handlers() {
  for (int sig : kSignals) {
    struct sigaction old;
    if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) continue;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int other : kSignals) sigaddset(&sa.sa_mask, other);  // one handler at a time
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace softmax::io
