// src/cuda/softmax_rows.cu: kernels and launcher of softmax / log_softmax / logsumexp rows
// (strategies in src/cuda/cuda_kernels.hpp, reduction order in softmax_rows.cuh).
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "src/cuda/cuda_kernels.hpp"
#include "src/cuda/launch.hpp"
#include "src/cuda/softmax_rows.cuh"

namespace softmax::cuda {
namespace dev {
namespace cg = cooperative_groups;

constexpr int kWarpRowsPerBlock = 4;

// kWarpPerRow: warp w of block b handles row b * 4 + w (n <= 2048).
template <class XS, class YS>
__global__ void __launch_bounds__(128)
    rows_warp_kernel(const typename XS::Mem* x, int64_t xs, typename YS::Mem* y, int64_t ys,
                     int64_t rows, int n, int tile_stride, RowParams p) {
  using C = typename XS::Compute;
  __shared__ ChunkScratch scratch[kWarpRowsPerBlock];
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int w = static_cast<int>(threadIdx.x >> 5);
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + w;
  if (r >= rows) return;  // whole warps only: the groups below are single warps
  C* tile = reinterpret_cast<C*>(smem_raw) + w * tile_stride;
  load_tile<XS>(x + r * xs, n, tile, lane_id(), 32);
  __syncwarp();
  one_chunk_row<YS>(WarpGroup{}, tile, n, scratch[w], p, y + r * ys);
}

// kCtaPerRow: block b handles row b, the whole row in shared memory.
template <class XS, class YS>
__global__ void __launch_bounds__(512)
    rows_cta_kernel(const typename XS::Mem* x, int64_t xs, typename YS::Mem* y, int64_t ys, int n,
                    RowParams p) {
  using C = typename XS::Compute;
  __shared__ ChunkScratch scratch;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t r = blockIdx.x;
  C* tile = reinterpret_cast<C*>(smem_raw);
  load_tile<XS>(x + r * xs, n, tile, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  __syncthreads();
  one_chunk_row<YS>(BlockGroup{}, tile, n, scratch, p, y + r * ys);
}

// kClusterPerRow (f32 compute): cluster rank c holds chunk c of row blockIdx.y; the chunk
// partials are read from every block of the cluster (distributed shared memory) and merged in
// chunk order by each block, so all blocks agree on the row statistics.
template <class XS, class YS>
__global__ void __launch_bounds__(512)
    rows_cluster_kernel(const typename XS::Mem* x, int64_t xs, typename YS::Mem* y, int64_t ys,
                        int n, RowParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900  // clusters: sm_90 (never launched on sm_80)
  __shared__ ChunkScratch scratch;
  __shared__ ChunkStatsD published[2];  // pass 1 (plain), pass 2 (near-certain log rows)
  extern __shared__ __align__(16) unsigned char smem_raw[];
  cg::cluster_group cluster = cg::this_cluster();
  const int c = static_cast<int>(cluster.block_rank());
  const int chunks = static_cast<int>(cluster.num_blocks());
  const int64_t r = blockIdx.y;
  const int len = min(kChunk, n - c * kChunk);
  float* tile = reinterpret_cast<float*>(smem_raw);
  const BlockGroup g;
  load_tile<XS>(x + r * xs + static_cast<int64_t>(c) * kChunk, len, tile,
                static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  __syncthreads();
  const SmemRow<float> src{tile};
  const bool softmax = p.mode == 0;
  chunk_stats<float, false>(g, src, len, __builtin_nan(""), p.it32, p.it64, softmax, scratch);
  if (g.leader()) published[0] = scratch.stats;
  cluster.sync();
  auto peer = [&](int slot) {
    return [&cluster, slot](int k) {
      return *cluster.map_shared_rank(&published[slot], static_cast<unsigned>(k));
    };
  };
  ChunkStatsD row = merge_chunks(peer(0), chunks, p.it64);
  const bool second = !softmax && !row_special(row) && row.rest < kSplitOnesBelow;
  if (second) {  // uniform across the cluster: every block merged the same partials
    chunk_stats<double, true>(g, src, len, row.max, p.it64, p.it64, false, scratch);
    if (g.leader()) published[1] = scratch.stats;
    cluster.sync();
    row = merge_chunks(peer(1), chunks, p.it64);
  }
  if (p.mode == 2) {
    if (c == 0 && g.leader()) y[r * ys] = logsumexp_value<YS, float>(row, p);
  } else {
    const double log_sum =
        p.mode == 1 && !row_special(row) ? num::log_of_sum(row.ones, row.rest) : 0.0;
    write_chunk<YS>(g, src, len, scratch, row, log_sum, softmax, p,
                    y + r * ys + static_cast<int64_t>(c) * kChunk);
  }
  cluster.sync();  // no block leaves while a peer may still read its shared memory
#endif
}

// ---- kSplitRow: workspace records, one per (row, chunk) and pass ----
struct ChunkRecord {
  ChunkStatsD stats;
  double mrun[kBlocksPerChunk];
};

__device__ ChunkStatsD merge_records(const ChunkRecord* recs, int chunks, const RowParams& p) {
  return merge_chunks([&](int k) { return recs[k].stats; }, chunks, p.it64);
}

// Chunk maxima (f64 rows find the row max first, as the CPU does).
template <class XS>
__global__ void __launch_bounds__(512)
    split_max_kernel(const typename XS::Mem* x, int64_t xs, int n, ChunkRecord* out) {
  __shared__ ChunkScratch scratch;
  const int c = blockIdx.x, chunks = gridDim.x;
  const int64_t r = blockIdx.y;
  const int len = min(kChunk, n - c * kChunk);
  const GlobalRow<XS> src{x + r * xs + static_cast<int64_t>(c) * kChunk};
  const BlockGroup g;
  const int nb = (len + kBlock - 1) / kBlock;
  for (int b = g.warp(); b < nb; b += g.warps()) {
    bool nan;
    const auto m = warp_block_max(src.offset(b * kBlock), min(kBlock, len - b * kBlock), nan);
    if (lane_id() == 0) {
      scratch.bmax[b] = m;
      scratch.bnan[b] = nan;
    }
  }
  g.sync();
  if (g.leader()) {
    ChunkStatsD st{-kInf, 0.0, 0.0, 0.0, 0};
    for (int b = 0; b < nb; ++b) {
      st.has_nan |= scratch.bnan[b];
      if (scratch.bmax[b] > st.max) st.max = scratch.bmax[b];
    }
    out[r * chunks + c].stats = st;
  }
}

// Chunk statistics. pass 0: plain (f32 online; f64 relative to the row max from `prev`, the
// split_max records); pass 1: the f64 split sum of near-certain f32 log rows (others skip).
template <class XS, class S, bool kSplitOnes>
__global__ void __launch_bounds__(512)
    split_stats_kernel(const typename XS::Mem* x, int64_t xs, int n, const ChunkRecord* prev,
                       ChunkRecord* out, int pass, RowParams p) {
  __shared__ ChunkScratch scratch;
  const int c = blockIdx.x, chunks = gridDim.x;
  const int64_t r = blockIdx.y;
  const int len = min(kChunk, n - c * kChunk);
  const GlobalRow<XS> src{x + r * xs + static_cast<int64_t>(c) * kChunk};
  double known = __builtin_nan("");
  if (prev != nullptr) {
    const ChunkStatsD row = merge_records(prev + r * chunks, chunks, p);
    if (row_special(row)) return;  // the writer sees the same and writes the special row
    if (pass == 1 && !(row.rest < kSplitOnesBelow)) return;
    known = row.max;
  }
  chunk_stats<S, kSplitOnes>(BlockGroup{}, src, len, known, inv_t<S>(p), p.it64, false, scratch);
  if (threadIdx.x < kBlocksPerChunk)
    out[r * chunks + c].mrun[threadIdx.x] = scratch.mrun[threadIdx.x];
  if (threadIdx.x == 0) out[r * chunks + c].stats = scratch.stats;
}

// y of one chunk (grid: chunks x rows), or the logsumexp of a row (grid 1 x rows).
template <class XS, class YS>
__global__ void __launch_bounds__(512)
    split_write_kernel(const typename XS::Mem* x, int64_t xs, typename YS::Mem* y, int64_t ys,
                       int n, int chunks, const ChunkRecord* plain, const ChunkRecord* split,
                       bool f64_row, RowParams p) {
  using C = typename XS::Compute;
  __shared__ ChunkScratch scratch;
  const int c = blockIdx.x;
  const int64_t r = blockIdx.y;
  // f64 rows: `plain` holds the chunk maxima, `split` the sums relative to the row max.
  // f32 rows: `plain` the online sums, `split` the f64 sums of near-certain log rows.
  const ChunkRecord* recs = (f64_row ? split : plain) + r * chunks;
  ChunkStatsD row = merge_records(plain + r * chunks, chunks, p);
  if (f64_row) {
    if (!row_special(row)) row = merge_records(recs, chunks, p);
  } else if (p.mode != 0 && !row_special(row) && row.rest < kSplitOnesBelow) {
    row = merge_records(split + r * chunks, chunks, p);
  }
  if (p.mode == 2) {
    if (threadIdx.x == 0) y[r * ys] = logsumexp_value<YS, C>(row, p);
    return;
  }
  if (threadIdx.x < kBlocksPerChunk) scratch.mrun[threadIdx.x] = recs[c].mrun[threadIdx.x];
  __syncthreads();
  const int len = min(kChunk, n - c * kChunk);
  const GlobalRow<XS> src{x + r * xs + static_cast<int64_t>(c) * kChunk};
  const double log_sum =
      p.mode == 1 && !row_special(row) ? num::log_of_sum(row.ones, row.rest) : 0.0;
  write_chunk<YS>(BlockGroup{}, src, len, scratch, row, log_sum, false, p,
                  y + r * ys + static_cast<int64_t>(c) * kChunk);
}

static_assert(sizeof(ChunkRecord) == kChunkRecordBytes, "split-row record size");

}  // namespace dev

// The largest cluster of chunk-sized blocks the device can schedule (0: none; sm_90 only).
int max_cluster_blocks() {
  auto k = dev::rows_cluster_kernel<num::F32, num::F32>;
  const int smem = dev::kChunk * 4;
  if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess ||
      cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  for (int c = 16; c >= 2; c /= 2) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(c));
    cfg.blockDim = dim3(512);
    cfg.dynamicSmemBytes = smem;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = static_cast<unsigned>(c);
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, k, &cfg) == cudaSuccess && clusters > 0) return c;
    cudaGetLastError();
  }
  return 0;
}

namespace {

dev::RowParams make_params(const RowsArgs& a) {
  const cpu::Temperature tp = cpu::MakeTemperature(a.temperature);
  dev::RowParams p{};
  p.it64 = num::InvT<double>{tp.inv, tp.inv_lo, tp.t, tp.mode()};
  const float hi = static_cast<float>(tp.inv);
  const float lo = static_cast<float>((tp.inv - static_cast<double>(hi)) + tp.inv_lo);
  p.it32 = num::InvT<float>{hi, lo, 0.0f, tp.scaled() ? 1 : 0};
  p.t = tp.t;
  p.mode = static_cast<int>(a.mode);
  return p;
}

template <class XS, class YS>
void launch_long_rows(const RowsArgs& a, const RowsPlan& plan, const dev::RowParams& p,
                      const typename XS::Mem* x, typename YS::Mem* y, int64_t rows, void* ws,
                      cudaStream_t st) {
  const int n = static_cast<int>(a.n);
  const auto smem = static_cast<int>(plan.smem_bytes);
  const auto chunks = static_cast<int>(plan.chunks);
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(rows));
  constexpr bool kF64 = sizeof(typename XS::Compute) == 8;
  if (plan.strategy == Strategy::kClusterPerRow) {
    if constexpr (!kF64) {
      auto k = dev::rows_cluster_kernel<XS, YS>;
      set_smem(k, smem);
      allow_big_clusters(k);
      launch_cluster(k, grid, plan.threads, smem, plan.cluster, st, x, a.x_stride, y, a.y_stride, n,
                     p);
    }
    return;
  }
  auto* plain = static_cast<dev::ChunkRecord*>(ws);
  dev::ChunkRecord* split = plain + plan.row_batch * plan.chunks;
  if constexpr (kF64) {
    dev::split_max_kernel<XS><<<grid, plan.threads, 0, st>>>(x, a.x_stride, n, plain);
    if (a.mode == RowMode::kSoftmax) {
      dev::split_stats_kernel<XS, double, false>
          <<<grid, plan.threads, 0, st>>>(x, a.x_stride, n, plain, split, 0, p);
    } else {
      dev::split_stats_kernel<XS, double, true>
          <<<grid, plan.threads, 0, st>>>(x, a.x_stride, n, plain, split, 0, p);
    }
  } else {
    dev::split_stats_kernel<XS, float, false>
        <<<grid, plan.threads, 0, st>>>(x, a.x_stride, n, nullptr, plain, 0, p);
    if (a.mode != RowMode::kSoftmax) {
      dev::split_stats_kernel<XS, double, true>
          <<<grid, plan.threads, 0, st>>>(x, a.x_stride, n, plain, split, 1, p);
    }
  }
  const dim3 wgrid(a.mode == RowMode::kLogSumExp ? 1u : static_cast<unsigned>(chunks),
                   static_cast<unsigned>(rows));
  dev::split_write_kernel<XS, YS><<<wgrid, plan.threads, 0, st>>>(x, a.x_stride, y, a.y_stride, n,
                                                                  chunks, plain, split, kF64, p);
}

template <class XS, class YS>
void launch_rows(const RowsArgs& a, const RowsPlan& plan, void* ws, cudaStream_t st) {
  using XM = typename XS::Mem;
  using YM = typename YS::Mem;
  const auto* x = static_cast<const XM*>(a.x);
  auto* y = static_cast<YM*>(a.y);
  const dev::RowParams p = make_params(a);
  const int n = static_cast<int>(a.n);
  const auto smem = static_cast<int>(plan.smem_bytes);
  switch (plan.strategy) {
    case Strategy::kWarpPerRow: {
      auto k = dev::rows_warp_kernel<XS, YS>;
      set_smem(k, smem);
      k<<<grid1(plan.grid_x), plan.threads, smem, st>>>(x, a.x_stride, y, a.y_stride, a.rows, n,
                                                        plan.tile_stride, p);
      break;
    }
    case Strategy::kCtaPerRow: {
      auto k = dev::rows_cta_kernel<XS, YS>;
      set_smem(k, smem);
      k<<<grid1(plan.grid_x), plan.threads, smem, st>>>(x, a.x_stride, y, a.y_stride, n, p);
      break;
    }
    case Strategy::kClusterPerRow:
    case Strategy::kSplitRow:
      // grid y is at most 65535: batches of plan.row_batch rows, the workspace reused in
      // stream order.
      for (int64_t r0 = 0; r0 < a.rows; r0 += plan.row_batch) {
        const int64_t rb = std::min(plan.row_batch, a.rows - r0);
        launch_long_rows<XS, YS>(a, plan, p, x + r0 * a.x_stride, y + r0 * a.y_stride, rb, ws, st);
      }
      break;
  }
  check_launch("rows");
}

template <class XS>
void launch_rows_y(const RowsArgs& a, const RowsPlan& plan, void* ws, cudaStream_t st) {
  switch (a.y_dtype) {
    case DType::bf16: return launch_rows<XS, num::BF16>(a, plan, ws, st);
    case DType::f16: return launch_rows<XS, num::F16>(a, plan, ws, st);
    default: return launch_rows<XS, num::F32>(a, plan, ws, st);
  }
}

}  // namespace

std::size_t rows_workspace_bytes(const RowsArgs& a, int device) {
  return plan_rows(a, device_caps(device)).workspace_bytes;
}

void rows(const RowsArgs& a, void* workspace, std::size_t workspace_bytes, void* stream) {
  const RowsPlan plan = plan_rows(a, device_caps());
  check_workspace("rows", plan.workspace_bytes, workspace, workspace_bytes);
  log_plan(a.mode == RowMode::kSoftmax      ? "softmax"
           : a.mode == RowMode::kLogSoftmax ? "log_softmax"
                                            : "logsumexp",
           a.rows, a.n, a.x_dtype, a.y_dtype, strategy_name(plan.strategy), plan.why);
  if (a.rows == 0 || a.n == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  switch (a.x_dtype) {
    case DType::f64: return launch_rows<num::F64, num::F64>(a, plan, workspace, st);
    case DType::bf16: return launch_rows_y<num::BF16>(a, plan, workspace, st);
    case DType::f16: return launch_rows_y<num::F16>(a, plan, workspace, st);
    default: return launch_rows_y<num::F32>(a, plan, workspace, st);
  }
}

}  // namespace softmax::cuda
