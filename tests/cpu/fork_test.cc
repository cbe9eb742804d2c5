// tests/cpu/fork_test.cc: fork() after multithreaded calls. OpenMP's thread pool does not
// survive fork (libgomp's child would wait forever for the parent's workers), so the library
// marks forked children (pthread_atfork) and runs every op on one thread there. The parent
// makes multithreaded calls (and an explicit two-thread OpenMP region, so the pool exists even
// on one CPU), forks, and the child runs every op family (linear_cross_entropy's oneDNN sgemm
// included) and compares with the parent's results; the parent waits with a timeout.
#include <gtest/gtest.h>
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "op_families.hpp"
#include "src/core/rows.hpp"

namespace {

// Exit codes of the child.
constexpr int kChildOk = 0, kChildMismatch = 3, kChildThrew = 4, kChildNotMarked = 5;

// Waits up to `seconds` for `pid`; kills it on timeout. Returns the wait status, or -1 on
// timeout.
int wait_with_timeout(pid_t pid, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return -1;
}

// In the child: every op family with `threads` equals `want` (one-thread results) bitwise.
int child_main(const stest::Results& want, int threads) {
  try {
    if (!softmax::detail::in_forked_child() || softmax::detail::resolve_threads(threads) != 1) {
      return kChildNotMarked;
    }
    const stest::Results got = stest::run_op_families(threads);
    for (const auto& [name, values] : want) {
      if (!stest::same_bits(got.at(name), values)) return kChildMismatch;
    }
    return kChildOk;
  } catch (...) {
    return kChildThrew;
  }
}

TEST(Fork, ChildRunsEveryOpAfterMultithreadedCalls) {
  const stest::Results one = stest::run_op_families(1);
  int team = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp atomic
    ++team;
  }
  ASSERT_GE(team, 1);
  const stest::Results two = stest::run_op_families(2);  // the pool is live now
  for (const auto& [name, values] : two) {
    if (name != "linear_cross_entropy") EXPECT_TRUE(stest::same_bits(values, one.at(name))) << name;
  }
  for (int threads : {2, 0, 100000}) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(child_main(one, threads));
    const int status = wait_with_timeout(pid, 300);
    ASSERT_NE(status, -1) << "the forked child hung (threads " << threads << ")";
    ASSERT_TRUE(WIFEXITED(status)) << "child died, status " << status;
    EXPECT_EQ(WEXITSTATUS(status), kChildOk) << "threads " << threads;
  }
  // The parent keeps its threads.
  EXPECT_FALSE(softmax::detail::in_forked_child());
  const stest::Results again = stest::run_op_families(2);
  for (const auto& [name, values] : again)
    EXPECT_TRUE(stest::same_bits(values, two.at(name))) << name;
}

// A grandchild (fork inside the forked child) works too.
TEST(Fork, GrandchildWorks) {
  const stest::Results one = stest::run_op_families(1);
  (void)stest::run_op_families(2);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const pid_t g = fork();
    if (g < 0) _exit(kChildThrew);
    if (g == 0) _exit(child_main(one, 2));
    const int st = wait_with_timeout(g, 280);
    _exit(st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : kChildThrew);
  }
  const int status = wait_with_timeout(pid, 300);
  ASSERT_NE(status, -1) << "the forked child hung";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kChildOk);
}

}  // namespace
