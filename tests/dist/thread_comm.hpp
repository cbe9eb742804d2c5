// tests/dist/thread_comm.hpp: an in-process Communicator for tests: R ranks are R threads of
// one process, an all-gather is two barriers around plain copies. It lets one test binary try
// many rank counts and shard layouts; tests/dist/mpi_*.cc run the same ops over real MPI.
#pragma once

#include <barrier>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "softmax/dist.hpp"

namespace stest {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size)
      : size_(size),
        sync_(size),
        in_(static_cast<std::size_t>(size)),
        counts_(static_cast<std::size_t>(size)) {
    for (int r = 0; r < size; ++r) comms_.emplace_back(this, r);
  }

  class Comm final : public softmax::dist::Communicator {
   public:
    Comm(ThreadGroup* g, int r) : g_(g), r_(r) {}
    int rank() const override { return r_; }
    int size() const override { return g_->size_; }

   protected:
    void do_all_gather(const void* in, void* out, const std::size_t* counts) override {
      g_->in_[static_cast<std::size_t>(r_)] = in;
      g_->sync_.arrive_and_wait();
      std::size_t at = 0;
      for (int s = 0; s < g_->size_; ++s) {
        if (counts[s] > 0) {
          std::memcpy(static_cast<char*>(out) + at, g_->in_[static_cast<std::size_t>(s)],
                      counts[s]);
        }
        at += counts[s];
      }
      g_->sync_.arrive_and_wait();  // every rank has copied before any `in` may change
    }
    void do_all_to_all(const void* in, const std::size_t* send_counts, void* out,
                       const std::size_t* recv_counts) override {
      g_->in_[static_cast<std::size_t>(r_)] = in;
      g_->counts_[static_cast<std::size_t>(r_)] = send_counts;
      g_->sync_.arrive_and_wait();
      std::size_t at = 0;
      for (int s = 0; s < g_->size_; ++s) {
        const std::size_t* sc = g_->counts_[static_cast<std::size_t>(s)];
        std::size_t from = 0;
        for (int q = 0; q < r_; ++q) from += sc[q];
        if (sc[r_] != recv_counts[s]) std::abort();  // a caller bug: the sizes must agree
        if (recv_counts[s] > 0) {
          std::memcpy(static_cast<char*>(out) + at,
                      static_cast<const char*>(g_->in_[static_cast<std::size_t>(s)]) + from,
                      recv_counts[s]);
        }
        at += recv_counts[s];
      }
      g_->sync_.arrive_and_wait();
    }

   private:
    ThreadGroup* g_;
    int r_;
  };

  // Runs fn(comm) on every rank, one thread each; rethrows the first rank's exception (by
  // rank) after all have finished. `errors` (if given) receives each rank's what() or "".
  void run(const std::function<void(Comm&)>& fn, std::vector<std::string>* errors = nullptr) {
    std::vector<std::exception_ptr> ex(static_cast<std::size_t>(size_));
    std::vector<std::thread> threads;
    for (int r = 0; r < size_; ++r) {
      threads.emplace_back([&, r] {
        try {
          fn(comms_[static_cast<std::size_t>(r)]);
        } catch (...) {
          ex[static_cast<std::size_t>(r)] = std::current_exception();
        }
      });
    }
    for (auto& t : threads) t.join();
    if (errors) {
      errors->assign(static_cast<std::size_t>(size_), "");
      for (int r = 0; r < size_; ++r) {
        if (!ex[r]) continue;
        try {
          std::rethrow_exception(ex[r]);
        } catch (const std::exception& e) {
          (*errors)[static_cast<std::size_t>(r)] = e.what();
        }
      }
      return;
    }
    for (auto& e : ex) {
      if (e) std::rethrow_exception(e);
    }
  }

 private:
  int size_;
  std::barrier<> sync_;
  std::vector<const void*> in_;
  std::vector<const std::size_t*> counts_;
  std::vector<Comm> comms_;
};

}  // namespace stest
