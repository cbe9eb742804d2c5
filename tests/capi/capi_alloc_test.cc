// The C ABI's allocation-free path: with a context workspace of the size the query reports,
// softmax_softmax / log_softmax / logsumexp (and the queries) make no heap allocation once the
// calling thread has used the C layer (its per-thread views reserve SOFTMAX_MAX_RANK dims on
// first use), on strided and contiguous tensors, with the same bits as without a workspace.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "softmax/softmax.h"

#include "tests/support/count_allocations.hpp"

using count_allocations::g_allocations;
using count_allocations::g_counting;

namespace {

using Op = softmax_status_t (*)(softmax_context_t*, const softmax_tensor_t*,
                                const softmax_tensor_t*, const softmax_options_t*);
using Query = softmax_status_t (*)(softmax_context_t*, const softmax_tensor_t*,
                                   const softmax_tensor_t*, const softmax_options_t*, size_t*);

struct Layout {
  const char* name;
  std::vector<int64_t> shape, strides;  // strides empty: NULL (C order)
  int64_t axis;
};

TEST(CapiAlloc, WorkspaceCallsAllocateNothing) {
  const Layout layouts[] = {
      {"contiguous", {8, 300}, {}, -1},
      {"transposed", {300, 64}, {1, 300}, 0},
      {"long rows", {2, 70000}, {}, -1},
      {"rank 4 inner axis", {2, 3, 50, 7}, {}, 2},
  };
  const struct {
    const char* name;
    Op op;
    Query query;
    bool reduce;
  } ops[] = {{"softmax", softmax_softmax, softmax_softmax_workspace_bytes, false},
             {"log_softmax", softmax_log_softmax, softmax_log_softmax_workspace_bytes, false},
             {"logsumexp", softmax_logsumexp, softmax_logsumexp_workspace_bytes, true}};
  for (int threads : {1, 2}) {
    softmax_context_t* ctx = nullptr;
    ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
    ASSERT_EQ(softmax_context_set_threads(ctx, threads), SOFTMAX_STATUS_OK);
    for (const Layout& l : layouts) {
      for (const auto& o : ops) {
        SCOPED_TRACE(std::string(o.name) + " " + l.name + " threads " + std::to_string(threads));
        int64_t count = 1;
        for (int64_t d : l.shape) count *= d;
        std::vector<float> x(static_cast<std::size_t>(count));
        std::mt19937 rng(7);
        std::normal_distribution<float> dist(0.0f, 4.0f);
        for (float& v : x) v = dist(rng);
        const auto rank = static_cast<int64_t>(l.shape.size());
        const int64_t axis = l.axis < 0 ? l.axis + rank : l.axis;
        std::vector<int64_t> yshape = l.shape;
        if (o.reduce) yshape.erase(yshape.begin() + axis);
        int64_t ycount = 1;
        for (int64_t d : yshape) ycount *= d;
        std::vector<float> y_ref(static_cast<std::size_t>(ycount)),
            y_ws(static_cast<std::size_t>(ycount), 7.0f);
        softmax_tensor_t tx =
            softmax_tensor_make(x.data(), SOFTMAX_DTYPE_F32, rank, l.shape.data());
        if (!l.strides.empty()) tx.strides = l.strides.data();
        const softmax_tensor_t tref = softmax_tensor_make(
            y_ref.data(), SOFTMAX_DTYPE_F32, static_cast<int64_t>(yshape.size()), yshape.data());
        const softmax_tensor_t tws = softmax_tensor_make(
            y_ws.data(), SOFTMAX_DTYPE_F32, static_cast<int64_t>(yshape.size()), yshape.data());
        softmax_options_t opt;
        softmax_options_init(&opt);
        opt.axis = l.axis;
        ASSERT_EQ(softmax_context_set_workspace(ctx, nullptr, 0), SOFTMAX_STATUS_OK);
        ASSERT_EQ(o.op(ctx, &tx, &tref, &opt), SOFTMAX_STATUS_OK) << softmax_last_error();
        size_t need = 0;
        ASSERT_EQ(o.query(ctx, &tx, &tws, &opt, &need), SOFTMAX_STATUS_OK);
        void* ws = std::aligned_alloc(256, (need / 256 + 1) * 256);
        ASSERT_NE(ws, nullptr);
        ASSERT_EQ(softmax_context_set_workspace(ctx, ws, need), SOFTMAX_STATUS_OK);
        g_allocations = 0;
        g_counting = true;
        size_t again = 0;
        const softmax_status_t qs = o.query(ctx, &tx, &tws, &opt, &again);
        const softmax_status_t s = o.op(ctx, &tx, &tws, &opt);
        g_counting = false;
        EXPECT_EQ(qs, SOFTMAX_STATUS_OK);
        EXPECT_EQ(again, need);
        EXPECT_EQ(s, SOFTMAX_STATUS_OK) << softmax_last_error();
        EXPECT_EQ(g_allocations.load(), 0) << need << " bytes of workspace";
        EXPECT_EQ(std::memcmp(y_ref.data(), y_ws.data(), y_ref.size() * sizeof(float)), 0)
            << "bits differ";
        std::free(ws);
      }
    }
    softmax_context_destroy(ctx);
  }
}

// Control: the counter sees the library's allocations (a call without a workspace on a strided
// tensor allocates its gather scratch), so the zero above is not a blind counter.
TEST(CapiAlloc, WithoutAWorkspaceTheCallAllocates) {
  std::vector<float> x(300 * 64, 0.5f), y(x.size());
  const int64_t shape[2] = {300, 64}, strides[2] = {1, 300};
  softmax_tensor_t tx = softmax_tensor_make(x.data(), SOFTMAX_DTYPE_F32, 2, shape);
  tx.strides = strides;
  const softmax_tensor_t ty = softmax_tensor_make(y.data(), SOFTMAX_DTYPE_F32, 2, shape);
  softmax_options_t opt;
  softmax_options_init(&opt);
  opt.axis = 0;
  softmax_context_t* ctx = nullptr;
  ASSERT_EQ(softmax_context_create(&ctx), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_context_set_threads(ctx, 1), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_softmax(ctx, &tx, &ty, &opt), SOFTMAX_STATUS_OK);  // warm the thread's views
  g_allocations = 0;
  g_counting = true;
  const softmax_status_t s = softmax_softmax(ctx, &tx, &ty, &opt);
  g_counting = false;
  EXPECT_EQ(s, SOFTMAX_STATUS_OK);
  EXPECT_GT(g_allocations.load(), 0);
  for (float v : y) EXPECT_FLOAT_EQ(v, 1.0f / 300.0f);
  softmax_context_destroy(ctx);
}

}  // namespace
