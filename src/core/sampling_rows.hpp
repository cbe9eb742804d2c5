// src/core/sampling_rows.hpp: what every sampling-family op does to one row before choosing
// tokens: validation shared by the ops, gathering a strided row, the logit processors, the
// NaN / +inf / all -inf checks, greedy detection and the tempered weights (SIMD kernels), and
// the per-row Philox key / offset / stream. Consumers (sample, filtered_probs, token_logprobs,
// sample_without_replacement) then run the exact filter engine (sampling_select.hpp) on the
// weights. Row errors are recorded per row and reported after the parallel loop, before any
// output is written.
#pragma once

#include <cstdint>
#include <vector>

#include "softmax/sampling.hpp"
#include "src/core/logit_processors.hpp"
#include "src/cpu/sampling_kernels.hpp"
#include "src/core/sampling_select.hpp"
#include "src/cpu/kernels.hpp"

namespace softmax::detail {

// What went wrong in a row (found during the computation).
enum class RowError : uint8_t { kNone, kNaN, kPosInf, kAllNegInf, kNegative, kAllZero };

[[noreturn]] void throw_row_error(const char* op, const char* arg, int64_t row, RowError e);
// Throws the first recorded row error, if any.
void throw_first_row_error(const char* op, const char* arg, const std::vector<RowError>& errors);

// logits / probs: rank 2, non-empty vocabulary < 2^32, float dtype.
void check_sampling_rows(const char* op, const char* arg, const ConstTensorView& x);
// Every SamplingParams rule for B = rows (probs: temperature 0 or 1, no processors).
void check_sampling_params(const char* op, const SamplingParams& p, int64_t rows, int64_t vocab,
                           bool probs);
// f32 temperature as the kernel divides by it: clamped to [FLT_TRUE_MIN, FLT_MAX].
float kernel_temperature(double t);
struct RowScratch;
// A contiguous view of row r (gathered into s.gathered when strided).
const void* row_ptr(const ConstTensorView& x, int64_t r, RowScratch& s);
// Row threads: 1 for small work.
int sampling_threads(int requested, int64_t rows, int64_t n);

// One thread's row scratch.
struct RowScratch {
  std::vector<unsigned char> gathered;
  std::vector<float> wf, pf;   // weights, processed logits (f32)
  std::vector<double> wd, pd;  // the same in f64
  RowFilter<float> ff;
  RowFilter<double> fd;
  RowProcessor proc;
};

// This thread's scratch, kept across calls (a row of V weights is reused, not reallocated and
// page-faulted on every call). One op uses it at a time on a thread (ops do not nest).
RowScratch& thread_scratch();

// A row ready for a consumer: either an error, a greedy row (its argmax), or weights.
struct PreparedRow {
  RowError error = RowError::kNone;
  bool greedy = false;
  int64_t argmax = 0;
  const void* x = nullptr;   // the (processed) row, contiguous
  DType dtype = DType::f32;  // its dtype (f32 or f64 after processing)
  double max = 0;            // its maximum
  // Weights (w_max: their maximum): f64 rows use wd, the others wf.
  bool f64 = false;
  const float* wf = nullptr;
  const double* wd = nullptr;
  float wf_max = 0;
  double wd_max = 0;
  uint64_t seed = 0, offset = 0, stream = 0;
};

struct RowPreparer {
  ConstTensorView x;
  const SamplingParams* p;
  bool probs;
  uint64_t seed, offset;
  const cpu::KernelTable* k;
  const cpu::SamplingKernelTable* sk;

  RowPreparer(const ConstTensorView& x_, const SamplingParams& p_, bool probs_, uint64_t seed_,
              uint64_t offset_)
      : x(x_),
        p(&p_),
        probs(probs_),
        seed(seed_),
        offset(offset_),
        k(&cpu::kernels()),
        sk(&cpu::sampling_kernels()) {}

  // Row r (the weights are only computed when `weights`).
  PreparedRow prepare(int64_t r, RowScratch& s, bool weights = true) const;
};

// Row r's Philox key, offset and stream: SamplingParams::seeds / offsets / streams when given,
// else the call's seed and offset and the row index.
struct RowRandom {
  uint64_t seed = 0, offset = 0, stream = 0;
};
inline RowRandom row_random(const SamplingParams& p, int64_t r, uint64_t seed, uint64_t offset) {
  RowRandom out;
  out.seed = p.seeds.empty() ? seed : p.seeds[static_cast<std::size_t>(r)];
  out.offset = p.offsets.empty() ? offset : p.offsets[static_cast<std::size_t>(r)];
  out.stream =
      p.streams.empty() ? static_cast<uint64_t>(r) : p.streams[static_cast<std::size_t>(r)];
  return out;
}

// The filter spec of row r.
inline FilterSpec filter_spec(const SamplingParams& p, int64_t r) {
  FilterSpec spec;
  spec.top_k = p.top_k[r];
  spec.top_p = p.top_p[r];
  spec.min_p = p.min_p[r];
  return spec;
}

// top_logprobs on a slice of a row (classes [offset, offset + len), contiguous x of dtype):
// the f64 sums of the tempered weights exp((x - max) / T) per piece between multiples of
// kLogprobChunk (the whole row's log-sum is log of the pieces added in order), and the slice's
// top min(n, len) entries by (logit desc, id asc): key (order-preserving bits of the logit in
// the compute type), global id, z = (x - max) / T. max: the whole row's maximum.
inline constexpr int64_t kLogprobChunk = 32768;
struct LogprobCandidate {
  uint64_t key;
  int64_t id;
  double z;
};
void top_logprobs_slice(const void* x, DType dtype, int64_t len, int64_t n, int64_t offset,
                        double max, double temperature, std::vector<double>& piece_sums,
                        std::vector<LogprobCandidate>& top);

}  // namespace softmax::detail
