// tests/cuda/plan_host_test.cc: the CUDA launch logic on the CPU (no GPU needed): which strategy
// each row length gets on an H200-like and an A100-like device, grid/block/shared-memory and
// workspace sizes, and the argument rules (softmax::Error before anything is launched).
#include <gtest/gtest.h>

#include <string>

#include "softmax/error.hpp"
#include "src/cuda/cuda_kernels.hpp"

namespace {

using softmax::DType;
using softmax::Error;
using softmax::ErrorKind;
namespace sc = softmax::cuda;

sc::DeviceCaps hopper() { return sc::DeviceCaps{9, 0, 132, 232448, 16}; }
sc::DeviceCaps ampere() { return sc::DeviceCaps{8, 0, 108, 166912, 0}; }

sc::RowsArgs args(int64_t rows, int64_t n, DType x = DType::f32, DType y = DType::f32,
                  sc::RowMode mode = sc::RowMode::kSoftmax) {
  static float dummy[4];
  sc::RowsArgs a;
  a.x = dummy;
  a.y = dummy;
  a.x_dtype = x;
  a.y_dtype = y;
  a.rows = rows;
  a.n = n;
  a.x_stride = n;
  a.y_stride = mode == sc::RowMode::kLogSumExp ? 1 : n;
  a.mode = mode;
  return a;
}

TEST(CudaPlan, StrategyPerRowLengthHopper) {
  const auto caps = hopper();
  EXPECT_EQ(sc::plan_rows(args(8, 1), caps).strategy, sc::Strategy::kWarpPerRow);
  EXPECT_EQ(sc::plan_rows(args(8, 2048), caps).strategy, sc::Strategy::kWarpPerRow);
  EXPECT_EQ(sc::plan_rows(args(8, 2049), caps).strategy, sc::Strategy::kCtaPerRow);
  EXPECT_EQ(sc::plan_rows(args(8, 32768), caps).strategy, sc::Strategy::kCtaPerRow);
  const auto c2 = sc::plan_rows(args(8, 32769), caps);
  EXPECT_EQ(c2.strategy, sc::Strategy::kClusterPerRow);
  EXPECT_EQ(c2.cluster, 2);
  const auto c16 = sc::plan_rows(args(4, 16 * 32768), caps);
  EXPECT_EQ(c16.strategy, sc::Strategy::kClusterPerRow);
  EXPECT_EQ(c16.cluster, 16);
  EXPECT_EQ(c16.smem_bytes, 32768u * 4);
  EXPECT_EQ(c16.workspace_bytes, 0u);
  const auto split = sc::plan_rows(args(4, 16 * 32768 + 1), caps);
  EXPECT_EQ(split.strategy, sc::Strategy::kSplitRow);
  EXPECT_EQ(split.chunks, 17);
  EXPECT_EQ(split.workspace_bytes, 2u * 4 * 17 * sc::kChunkRecordBytes);
  // bf16 rows are widened to f32 in shared memory: the same thresholds.
  EXPECT_EQ(sc::plan_rows(args(2, 100000, DType::bf16, DType::bf16), caps).strategy,
            sc::Strategy::kClusterPerRow);
}

TEST(CudaPlan, F64AndAmpereFallBack) {
  // f64: one-chunk rows fit in shared memory up to 16384 elements (128 KiB); no clusters.
  EXPECT_EQ(sc::plan_rows(args(2, 16384, DType::f64, DType::f64), hopper()).strategy,
            sc::Strategy::kCtaPerRow);
  EXPECT_EQ(sc::plan_rows(args(2, 32768, DType::f64, DType::f64), hopper()).strategy,
            sc::Strategy::kSplitRow);
  EXPECT_EQ(sc::plan_rows(args(2, 40000, DType::f32, DType::f32), ampere()).strategy,
            sc::Strategy::kSplitRow);
  EXPECT_EQ(sc::plan_rows(args(2, 32768, DType::f32, DType::f32), ampere()).strategy,
            sc::Strategy::kCtaPerRow);
}

TEST(CudaPlan, GridShapes) {
  const auto w = sc::plan_rows(args(4097, 256), hopper());
  EXPECT_EQ(w.threads, 128);
  EXPECT_EQ(w.grid_x, 1025);  // 4 rows per block
  EXPECT_EQ(w.tile_stride, 256);
  EXPECT_EQ(w.smem_bytes, 4u * 256 * 4);
  EXPECT_EQ(sc::plan_rows(args(1, 1001), hopper()).tile_stride, 1004);  // 16-byte tiles
  const auto c = sc::plan_rows(args(10, 12672), hopper());
  EXPECT_EQ(c.threads, 32 * 7);  // one warp per 2048-element block
  EXPECT_EQ(c.grid_x, 10);
  const auto big = sc::plan_rows(args(100000, 40000), ampere());
  EXPECT_EQ(big.row_batch, 65535);  // grid y limit: rows run in batches
  EXPECT_EQ(big.workspace_bytes, 2u * 65535 * 2 * sc::kChunkRecordBytes);
}

template <class Fn>
ErrorKind kind_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no softmax::Error";
  return ErrorKind::kIO;
}

TEST(CudaPlan, ArgumentRules) {
  const auto caps = hopper();
  EXPECT_EQ(kind_of([&] { sc::plan_rows(args(1, 8, DType::f64, DType::f32), caps); }),
            ErrorKind::kDTypeMismatch);
  EXPECT_EQ(kind_of([&] { sc::plan_rows(args(1, 8, DType::i32, DType::f32), caps); }),
            ErrorKind::kDTypeMismatch);
  EXPECT_EQ(kind_of([&] { sc::plan_rows(args(1, -1), caps); }), ErrorKind::kInvalidArgument);
  auto a = args(2, 8);
  a.y_stride = 7;
  EXPECT_EQ(kind_of([&] { sc::plan_rows(a, caps); }), ErrorKind::kInvalidArgument);
  a = args(2, 8);
  a.temperature = 0.0;
  EXPECT_EQ(kind_of([&] { sc::plan_rows(a, caps); }), ErrorKind::kInvalidArgument);
  a.temperature = 1e-40;  // 1/T beyond the f32 pair's range
  EXPECT_EQ(kind_of([&] { sc::plan_rows(a, caps); }), ErrorKind::kUnsupported);
  a = args(2, 8);
  a.y = nullptr;
  EXPECT_EQ(kind_of([&] { sc::plan_rows(a, caps); }), ErrorKind::kInvalidArgument);
  // Empty calls are valid and need no pointers.
  a = args(0, 8);
  a.x = a.y = nullptr;
  EXPECT_NO_THROW(sc::plan_rows(a, caps));
  try {
    sc::plan_rows(args(1, 8, DType::f32, DType::f64), caps);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("argument 'y' = f64"), std::string::npos) << e.what();
  }
}

TEST(CudaPlan, Backward) {
  sc::BackwardArgs b;
  static float dummy[4];
  b.y = b.dy = b.dx = dummy;
  b.rows = 3;
  b.n = 2048;
  b.stride = b.dx_stride = 2048;
  EXPECT_EQ(sc::plan_backward(b, hopper()).strategy, sc::Strategy::kWarpPerRow);
  b.n = b.stride = b.dx_stride = 10000;
  const auto p = sc::plan_backward(b, hopper());
  EXPECT_EQ(p.strategy, sc::Strategy::kSplitRow);
  EXPECT_EQ(p.blocks, 5);
  EXPECT_EQ(p.workspace_bytes, 3u * 5 * sizeof(double));
  b.mode = sc::RowMode::kLogSumExp;
  EXPECT_EQ(kind_of([&] { sc::plan_backward(b, hopper()); }), ErrorKind::kInvalidArgument);
}

TEST(CudaPlan, StrategyNames) {
  EXPECT_STREQ(sc::strategy_name(sc::Strategy::kWarpPerRow), "warp-per-row");
  EXPECT_STREQ(sc::strategy_name(sc::Strategy::kCtaPerRow), "block-per-row");
  EXPECT_STREQ(sc::strategy_name(sc::Strategy::kClusterPerRow), "cluster-per-row");
  EXPECT_STREQ(sc::strategy_name(sc::Strategy::kSplitRow), "split-row");
}

// Without a GPU, the runtime query reports none and never throws.
TEST(CudaPlan, DeviceAvailableNeverThrows) { EXPECT_NO_THROW(sc::device_available()); }

}  // namespace
