// The vocabulary-parallel ops over NcclCommunicator (softmax/dist_nccl.hpp): one rank per
// visible GPU (up to 4), each a thread of this process with its own device, stream and NCCL
// communicator (ncclCommInitAll). The transport's all-gather (uneven sizes, empty blocks) and
// all-to-all move the bytes they should; dist::softmax / log_softmax on the default layout give
// the single-process bits; linear_cross_entropy gives every rank the same grad_hidden. Skips
// without a GPU (this project's CI machines have none: compiled there, run on a GPU machine).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/dist.hpp"
#include "softmax/dist_nccl.hpp"
#include "softmax/ops.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::TensorView;

int gpus() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return std::min(n, 4);
}

// Runs fn(comm) on R ranks (threads), rank r on device r.
void on_ranks(int R, const std::function<void(softmax::dist::Communicator&)>& fn) {
  std::vector<ncclComm_t> comms(static_cast<std::size_t>(R));
  std::vector<int> devs(static_cast<std::size_t>(R));
  for (int r = 0; r < R; ++r) devs[r] = r;
  ASSERT_EQ(ncclCommInitAll(comms.data(), R, devs.data()), ncclSuccess);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<std::size_t>(R));
  for (int r = 0; r < R; ++r) {
    threads.emplace_back([&, r] {
      try {
        cudaSetDevice(r);
        cudaStream_t s;
        cudaStreamCreate(&s);
        {
          softmax::dist::NcclCommunicator c(comms[r], s, 60.0);
          fn(c);
        }
        cudaStreamDestroy(s);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < R; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    ncclCommDestroy(comms[r]);
  }
}

TEST(NcclCommunicator, AllGatherAndAllToAllMoveTheBytes) {
  const int R = gpus();
  if (R == 0) GTEST_SKIP() << "no CUDA device on this machine";
  on_ranks(R, [R](softmax::dist::Communicator& c) {
    const int me = c.rank();
    EXPECT_EQ(c.size(), R);
    // All-gather: rank r sends r * 3 bytes of value r + 1 (rank 0 sends nothing).
    std::vector<std::size_t> counts(static_cast<std::size_t>(R));
    std::size_t total = 0;
    for (int r = 0; r < R; ++r) total += counts[r] = static_cast<std::size_t>(r) * 3;
    std::vector<unsigned char> in(counts[me], static_cast<unsigned char>(me + 1)),
        out(total + 1, 0);
    c.all_gather(in.empty() ? nullptr : in.data(), out.data(), counts.data());
    std::size_t at = 0;
    for (int r = 0; r < R; ++r) {
      for (std::size_t i = 0; i < counts[r]; ++i) EXPECT_EQ(out[at + i], r + 1);
      at += counts[r];
    }
    // All-to-all: rank r sends q + 1 bytes of value 16 r + q to rank q.
    std::vector<std::size_t> sc(static_cast<std::size_t>(R)), rc(sc.size());
    std::vector<unsigned char> sin, rout;
    for (int q = 0; q < R; ++q) {
      sc[q] = static_cast<std::size_t>(q) + 1;
      rc[q] = static_cast<std::size_t>(me) + 1;
      sin.insert(sin.end(), sc[q], static_cast<unsigned char>(16 * me + q));
    }
    rout.assign(static_cast<std::size_t>(R) * rc[0], 0);
    c.all_to_all(sin.data(), sc.data(), rout.data(), rc.data());
    for (int q = 0; q < R; ++q) {
      for (std::size_t i = 0; i < rc[q]; ++i) EXPECT_EQ(rout[q * rc[0] + i], 16 * q + me);
    }
  });
}

TEST(NcclCommunicator, DistOpsGiveTheSingleProcessBits) {
  const int R = gpus();
  if (R == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const int64_t rows = 3, v = 2 * 32768 + 100, d = 8;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 3);
  std::vector<float> x(static_cast<std::size_t>(rows * v));
  for (auto& e : x) e = nd(rng);
  std::vector<float> want(x.size());
  softmax::log_softmax(ConstTensorView(x.data(), {rows, v}), TensorView(want.data(), {rows, v}));
  std::vector<float> h(static_cast<std::size_t>(rows * d)), w(static_cast<std::size_t>(v * d));
  for (auto& e : h) e = nd(rng);
  for (auto& e : w) e = nd(rng) * 0.1f;
  std::vector<int64_t> t = {0, v - 1, 40000};
  float want_loss = 0;
  {
    softmax::LinearCrossEntropyOutputs out;
    out.loss = TensorView(&want_loss, DType::f32, {});
    softmax::CrossEntropyOptions o;
    o.threads = 1;
    softmax::linear_cross_entropy(ConstTensorView(h.data(), {rows, d}),
                                  ConstTensorView(w.data(), {v, d}),
                                  ConstTensorView(t.data(), DType::i64, {rows}), out, o);
  }
  std::vector<float> got(x.size(), 0.0f);
  std::vector<std::vector<float>> gh(static_cast<std::size_t>(R));
  std::vector<float> loss(static_cast<std::size_t>(R));
  on_ranks(R, [&](softmax::dist::Communicator& c) {
    const int me = c.rank();
    const softmax::dist::Shard s = softmax::dist::default_shard(v, me, R);
    softmax::dist::log_softmax(
        c, ConstTensorView(x.data() + s.offset, DType::f32, {rows, s.size}, {v, 1}),
        TensorView(got.data() + s.offset, DType::f32, {rows, s.size}, {v, 1}), s.offset);
    gh[me].assign(static_cast<std::size_t>(rows * d), 0.0f);
    std::vector<float> gw(static_cast<std::size_t>(s.size * d));
    softmax::LinearCrossEntropyOutputs out;
    out.loss = TensorView(&loss[me], DType::f32, {});
    out.grad_hidden = TensorView(gh[me].data(), {rows, d});
    out.grad_weight = TensorView(gw.data(), {s.size, d});
    softmax::Context ctx;
    ctx.threads = 1;
    softmax::dist::linear_cross_entropy(c, ConstTensorView(h.data(), {rows, d}),
                                        ConstTensorView(w.data() + s.offset * d, {s.size, d}),
                                        ConstTensorView(t.data(), DType::i64, {rows}), out,
                                        s.offset, {}, ctx);
  });
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), 4 * got.size()));
  for (int r = 0; r < R; ++r) {
    EXPECT_EQ(loss[r], want_loss) << "rank " << r;
    EXPECT_EQ(gh[r], gh[0]) << "rank " << r;
  }
}

}  // namespace
