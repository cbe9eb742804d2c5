/* softmax/softmax.h: the C ABI of the softmax library (C99; usable from C++).
 *
 * Every op of the single-process C++ API (softmax/softmax.hpp) has one C function here, named
 * softmax_<op> (softmax_softmax, softmax_log_softmax, ...), with the same semantics, shapes,
 * dtypes, edge cases and error bounds as the C++ function it calls; the C++ function named beside
 * each declaration documents them. Where C++ overloads one name, C has one function per form
 * (softmax_top_logprobs / softmax_top_logprobs_mode; optional outputs are NULL-able pointers);
 * where C++ returns vectors, C writes caller views and checks them first. Not in C, and why:
 * - the vocabulary-parallel ops softmax::dist::* (softmax/dist.hpp): they take a C++
 *   softmax::dist::Communicator (a class with virtual collectives; MPI / NCCL adapters in
 *   dist_mpi.hpp / dist_nccl.hpp). Their building blocks are here: the row statistics
 *   (softmax_softmax_stats, softmax_merge_stats, softmax_*_from_stats) let a C caller run the
 *   same protocol over its own collectives (docs/ops/row_stats.md).
 * - the std::span convenience overloads (one row of softmax, log_softmax, logsumexp, argmax,
 *   sample): a rank-1 (or (1, V)) softmax_tensor_t is the same call.
 * - softmax/dlpack.hpp (inline DLTensor -> view helpers): fill a softmax_tensor_t from the
 *   DLTensor's fields directly.
 * - softmax::set_target / current_target (a per-thread default SIMD target): C selects the
 *   target per context (softmax_context_set_target, softmax_available_targets).
 * - the tensor utilities (dtype_size, dtype_name, contiguous_strides, normalize_axis,
 *   reduced_shape), which are not ops.
 * The rules of this interface:
 *
 * - Status: every function returns a softmax_status_t; SOFTMAX_STATUS_OK (0) is success.
 *   softmax_last_error() returns the message of the last call made on this thread: the text of
 *   the C++ softmax::Error ("softmax::log_softmax: argument 'axis' = 3: must be in [-2, 1] ...")
 *   on failure, "" after a success. No C++ exception crosses this interface (out of memory is
 *   SOFTMAX_STATUS_OUT_OF_MEMORY), and when a function fails it has written nothing to its
 *   outputs.
 * - Tensors: a softmax_tensor_t describes a strided view of caller memory (no copy, no
 *   ownership); strides are in elements and may be NULL for C order. Optional tensors (class
 *   weights, gradients, lse, bias, mask) are passed as pointers: NULL = not given.
 * - Options: one struct per op family. Its first field, struct_size, must be set to
 *   sizeof(the struct) as the caller compiled it; the softmax_*_init() functions below set it
 *   and every default. A NULL options pointer means all defaults. A struct_size smaller than
 *   this library's (a caller built against an older header) gives the missing tail fields their
 *   defaults; a larger one (a newer header) is accepted only when the bytes past the fields this
 *   library knows are zero, otherwise SOFTMAX_STATUS_INVALID_ARGUMENT. Every field is 8 bytes
 *   wide on 64-bit platforms, so the structs have no padding. A struct_size that is not a
 *   multiple of 8 or lies outside [8, 1024] is rejected.
 * - Context: an opaque softmax_context_t (softmax_context_create) holds a softmax::Context
 *   (softmax/context.hpp): the worker thread count, a caller's parallel-for (thread pool), the
 *   SIMD target, a caller workspace and a CUDA stream; it is the first argument of every op; NULL =
 * defaults (0 threads: the OpenMP default; OpenMP; the best target). Ops whose C++ function takes a
 * Context (the axis ops, backward passes, convert, losses, masked_softmax, attention, row
 * statistics) use all of it; the others (sampling and serving, sparsemax, gumbel_softmax,
 * attention_backward, the large-vocabulary losses) take only its thread count, and beam_search_step
 * none, as their C++ functions do. Results never depend on it. A context may be shared by
 * concurrent calls; its setters must not run concurrently with calls that use it.
 * - Threads: calls on different threads with disjoint outputs may run concurrently.
 *
 * ABI promise: within one SOFTMAX_ABI_VERSION (the SONAME libsoftmax.so.<ABI version>), a newer
 * library runs programs built against an older header: minor versions only add functions, add
 * enum values at the end and append fields at the end of options structs (struct_size tells the
 * library which fields the caller has). Existing functions, enum values, field order and the
 * layout of softmax_tensor_t never change without a new ABI version. See docs/c_api.md.
 */
#ifndef SOFTMAX_SOFTMAX_H_
#define SOFTMAX_SOFTMAX_H_

#include <stddef.h>
#include <stdint.h>

#include "softmax/version.hpp" /* SOFTMAX_VERSION_MAJOR/MINOR/PATCH/STRING: plain #defines */

/* The ABI generation of this interface: the shared library's SONAME is libsoftmax.so.N. */
#define SOFTMAX_ABI_VERSION SOFTMAX_VERSION_MAJOR

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of a call. Values map one to one onto softmax::ErrorKind, plus out of memory and
 * internal errors (a C++ exception that is not a softmax::Error). */
typedef enum softmax_status {
  SOFTMAX_STATUS_OK = 0,
  SOFTMAX_STATUS_INVALID_ARGUMENT = 1, /* a value outside its domain (axis, temperature, ...) */
  SOFTMAX_STATUS_SHAPE_MISMATCH = 2,   /* shapes of inputs/outputs disagree */
  SOFTMAX_STATUS_DTYPE_MISMATCH = 3,   /* a dtype (combination) the op does not support */
  SOFTMAX_STATUS_OVERLAP = 4,          /* an output partially overlaps an input */
  SOFTMAX_STATUS_OVERFLOW = 5,         /* a size, stride or byte extent overflows int64 */
  SOFTMAX_STATUS_UNSUPPORTED = 6,      /* valid but not served by this build (a CUDA view) */
  SOFTMAX_STATUS_IO = 7,               /* malformed, truncated or unreadable file */
  SOFTMAX_STATUS_OUT_OF_MEMORY = 8,    /* an allocation failed */
  SOFTMAX_STATUS_INTERNAL = 9          /* any other failure inside the library */
} softmax_status_t;

/* Element types (bf16 and f16 are storage formats; ops compute in f32 on them). */
typedef enum softmax_dtype {
  SOFTMAX_DTYPE_F32 = 0,
  SOFTMAX_DTYPE_F64 = 1,
  SOFTMAX_DTYPE_BF16 = 2,
  SOFTMAX_DTYPE_F16 = 3,
  SOFTMAX_DTYPE_I32 = 4,
  SOFTMAX_DTYPE_I64 = 5
} softmax_dtype_t;

typedef enum softmax_device { SOFTMAX_DEVICE_CPU = 0, SOFTMAX_DEVICE_CUDA = 1 } softmax_device_t;

/* Reduction of the losses (softmax::Reduction). */
typedef enum softmax_reduction {
  SOFTMAX_REDUCTION_NONE = 0,
  SOFTMAX_REDUCTION_SUM = 1,
  SOFTMAX_REDUCTION_MEAN = 2
} softmax_reduction_t;

/* The diagonal of causal masks, windows and ALiBi when Sq != Sk (softmax::Align). */
typedef enum softmax_align {
  SOFTMAX_ALIGN_TOP_LEFT = 0,    /* p(i) = i (PyTorch's is_causal) */
  SOFTMAX_ALIGN_BOTTOM_RIGHT = 1 /* p(i) = i + Sk - Sq (FlashAttention >= 2.1, KV cache) */
} softmax_align_t;

/* How a token is drawn (softmax::SamplingMethod). */
typedef enum softmax_sampling_method {
  SOFTMAX_SAMPLING_INVERSE_CDF = 0, /* one uniform per row and draw (default) */
  SOFTMAX_SAMPLING_GUMBEL_MAX = 1   /* one uniform per kept token */
} softmax_sampling_method_t;

/* Which distribution token_logprobs reports (softmax::LogprobsMode). */
typedef enum softmax_logprobs_mode {
  SOFTMAX_LOGPROBS_RAW = 0,      /* log softmax(logits): no processors, temperature or filters */
  SOFTMAX_LOGPROBS_PROCESSED = 1 /* the distribution sample() draws from with the same params */
} softmax_logprobs_mode_t;

/* The candidate sampler of sampled softmax (softmax::CandidateSampler). */
typedef enum softmax_candidate_sampler {
  SOFTMAX_SAMPLER_LOG_UNIFORM = 0, /* Zipfian over ids sorted by decreasing frequency (default) */
  SOFTMAX_SAMPLER_UNIFORM = 1,
  SOFTMAX_SAMPLER_UNIGRAM = 2 /* unigrams^distortion, normalised */
} softmax_candidate_sampler_t;

/* A non-owning strided view: element (i0, ..., ik) lives at
 * (char*)data + (i0 * strides[0] + ... + ik * strides[k]) * element size.
 * rank in [0, 64] (rank 0 holds one element); shape and strides hold rank values (shape may be
 * NULL only for rank 0; strides NULL = C order). Input data is only read. */
typedef struct softmax_tensor {
  void* data;
  int32_t dtype;  /* a softmax_dtype_t */
  int32_t device; /* a softmax_device_t */
  int64_t rank;
  const int64_t* shape;
  const int64_t* strides; /* in elements, may be negative or zero; NULL = C order */
} softmax_tensor_t;

/* Largest rank a softmax_tensor_t may declare. */
#define SOFTMAX_MAX_RANK 64

/* Row statistics (softmax/row_stats.hpp): classes per record, fields per record, the fields'
 * positions in a record and the bits of its flags field. */
#define SOFTMAX_STATS_CHUNK 32768
#define SOFTMAX_STATS_FIELDS 8
#define SOFTMAX_STAT_MAX 0
#define SOFTMAX_STAT_SUM 1
#define SOFTMAX_STAT_LOG_MAX 2
#define SOFTMAX_STAT_ONES 3
#define SOFTMAX_STAT_REST 4
#define SOFTMAX_STAT_COUNT 5
#define SOFTMAX_STAT_FLAGS 6
#define SOFTMAX_STAT_TEMPERATURE 7
#define SOFTMAX_STAT_FLAG_NAN 1
#define SOFTMAX_STAT_FLAG_F64 2

/* Options of the axis ops (softmax, log_softmax, logsumexp, argmax, hardmax) and the backward
 * passes: softmax::SoftmaxOptions (softmax/options.hpp). */
typedef struct softmax_options {
  size_t struct_size;
  int64_t axis;       /* default -1 (last); in [-rank, rank - 1] */
  double temperature; /* default 1; finite and > 0 */
  int64_t keepdims;   /* default 0; logsumexp / argmax: nonzero keeps the axis with size 1 */
} softmax_options_t;

/* Options of cross_entropy, nll_loss and linear_cross_entropy: softmax::CrossEntropyOptions
 * (softmax/cross_entropy.hpp). */
typedef struct softmax_cross_entropy_options {
  size_t struct_size;
  const softmax_tensor_t* weight;      /* class weights (C), any floating dtype; NULL = all 1 */
  int64_t ignore_index;                /* default -100 */
  int64_t reduction;                   /* a softmax_reduction_t; default SOFTMAX_REDUCTION_MEAN */
  double label_smoothing;              /* default 0; in [0, 1] */
  double z_loss;                       /* default 0; >= 0, finite (not nll_loss) */
  double normalizer;                   /* default 1; reduction sum only: the sum is divided by it */
  double grad_scale;                   /* default 1; multiplies the gradient outputs */
  const softmax_tensor_t* grad_output; /* reduction none: per-row upstream gradients; NULL = 1 */
  int64_t vocab_chunk;                 /* linear_cross_entropy: columns per chunk; 0 = automatic */
} softmax_cross_entropy_options_t;

/* The logit processors of a serving engine: softmax::LogitProcessors
 * (softmax/logit_processors.hpp: the order of the steps, their formulas and rules). Used by
 * apply_penalties and, through softmax_sampling_params_t.processors, by every sampling op.
 * Token lists are in CSR form, as softmax::TokenLists: X (X_count ids) and X_offsets
 * (X_offsets_count entries): row r holds X[X_offsets[r], X_offsets[r + 1]); X_offsets NULL (count
 * 0) = one list shared by every row; otherwise B + 1 nondecreasing entries from 0 to X_count. Every
 * id in [0, V). A *_per_row array (NULL = the scalar field for every row) holds per_row_length
 * values, which must equal B. */
typedef struct softmax_logit_processors {
  size_t struct_size;
  const int64_t* prev_tokens; /* earlier tokens (repeats count); the penalties' history */
  int64_t prev_tokens_count;
  const int64_t* prev_tokens_offsets;
  int64_t prev_tokens_offsets_count;
  double repetition_penalty;       /* default 1 (off); > 0 and finite */
  double presence_penalty;         /* default 0 (off); finite */
  double frequency_penalty;        /* default 0 (off); finite */
  const int64_t* logit_bias_ids;   /* logit x[id] += the matching logit_bias_values entry */
  const double* logit_bias_values; /* one per id (logit_bias_count); finite or -inf */
  int64_t logit_bias_count;
  const int64_t* logit_bias_offsets;
  int64_t logit_bias_offsets_count;
  const int64_t* banned_tokens; /* logit -inf */
  int64_t banned_tokens_count;
  const int64_t* banned_tokens_offsets;
  int64_t banned_tokens_offsets_count;
  const int64_t* eos_token_ids; /* -inf while num_generated < min_tokens */
  int64_t eos_token_ids_count;
  int64_t min_tokens;    /* default 0 (off); >= 0 */
  int64_t num_generated; /* default -1 = the length of the row's prev_tokens; >= -1 */
  int64_t per_row_length;
  const double* repetition_penalty_per_row;
  const double* presence_penalty_per_row;
  const double* frequency_penalty_per_row;
  const int64_t* min_tokens_per_row;
  const int64_t* num_generated_per_row;
} softmax_logit_processors_t;

/* Parameters of the sampling ops (sample, sample_from_probs, filtered_probs, token_logprobs,
 * sample_without_replacement): softmax::SamplingParams (softmax/sampling.hpp). A *_per_row
 * array (NULL = the scalar field for every row), streams, seeds and offsets hold per_row_length
 * values, which must equal the batch size B. */
typedef struct softmax_sampling_params {
  size_t struct_size;
  double temperature; /* default 1; 0 = greedy (argmax); otherwise finite and > 0 */
  int64_t top_k;      /* default 0 (off); >= -1 (-1 is off too) */
  double top_p;       /* default 1 (off); in (0, 1] */
  double min_p;       /* default 0 (off); in [0, 1] */
  int64_t method;     /* a softmax_sampling_method_t; default SOFTMAX_SAMPLING_INVERSE_CDF */
  int64_t per_row_length;
  const double* temperature_per_row;
  const int64_t* top_k_per_row;
  const double* top_p_per_row;
  const double* min_p_per_row;
  const uint64_t* streams; /* Philox stream per row (any 64-bit value); NULL = the row index.
                            * Set per_row_length (= B) with any array: a length of 0 with
                            * streams, seeds or offsets set is refused (SHAPE_MISMATCH) when
                            * B > 0 */
  /* Appended after streams: a caller whose struct_size ends at streams gets the defaults. */
  const uint64_t* seeds;   /* Philox key per row (64 bits); NULL = the call's seed */
  const uint64_t* offsets; /* counter offset per row (64 bits); NULL = the call's offset */
  const softmax_logit_processors_t* processors; /* applied before temperature; NULL = none.
                                                 * Logits only (sample_from_probs rejects it) */
} softmax_sampling_params_t;

/* Mask and score-transform options of masked_softmax and attention: softmax::MaskOptions
 * (softmax/attention.hpp). */
typedef struct softmax_mask_options {
  size_t struct_size;
  const double* scale;       /* NULL = the op's default (masked_softmax 1, attention 1 / sqrt(D)) */
  double softcap;            /* default 0 (off); otherwise finite and > 0 */
  int64_t causal;            /* default 0; nonzero = causal masking */
  int64_t align;             /* a softmax_align_t; default SOFTMAX_ALIGN_TOP_LEFT */
  int64_t window_left;       /* default -1 (unbounded) */
  int64_t window_right;      /* default -1 (unbounded) */
  const float* alibi_slopes; /* per-head ALiBi slopes; NULL = off */
  int64_t alibi_slopes_count;   /* number of slopes: H (> 0) when alibi_slopes is set, else 0 */
  const softmax_tensor_t* bias; /* additive bias, broadcastable to the scores; NULL = none */
  const softmax_tensor_t* mask; /* keep-mask (i32 / i64, nonzero = keep); NULL = none */
} softmax_mask_options_t;

/* Options of gumbel_softmax and its backward: softmax::GumbelSoftmaxOptions
 * (softmax/gumbel_softmax.hpp); threads come from the context. */
typedef struct softmax_gumbel_softmax_options {
  size_t struct_size;
  int64_t axis; /* default -1; in [-rank, rank - 1] */
  double tau;   /* default 1; finite and > 0 */
  int64_t hard; /* default 0; nonzero = straight-through one-hot forward */
} softmax_gumbel_softmax_options_t;

/* Options of sampled_softmax_loss, sample_candidates and candidate_probability:
 * softmax::SampledSoftmaxOptions (softmax/sampled_softmax.hpp). The gradients are computed
 * when a gradient output is given; threads come from the context. */
typedef struct softmax_sampled_softmax_options {
  size_t struct_size;
  int64_t num_sampled;    /* >= 1 (no default: 0 is rejected) */
  int64_t num_classes;    /* >= 1; the rows of weights (no default: 0 is rejected) */
  int64_t num_true;       /* default 1; the labels' second dimension */
  int64_t sampler;        /* a softmax_candidate_sampler_t; default SOFTMAX_SAMPLER_LOG_UNIFORM */
  const double* unigrams; /* SOFTMAX_SAMPLER_UNIGRAM: num_classes values, >= 0, finite */
  int64_t unigrams_count;
  double distortion;                   /* default 1; finite */
  int64_t unique;                      /* default 0 */
  int64_t remove_accidental_hits;      /* default 1 */
  int64_t subtract_log_q;              /* default 1 */
  uint64_t seed;                       /* default 0 */
  uint64_t offset;                     /* default 0 */
  const softmax_tensor_t* grad_output; /* (N) floating, d objective / d loss_i; NULL = 1 */
} softmax_sampled_softmax_options_t;

/* Options of hierarchical_softmax_loss: softmax::HierarchicalOptions
 * (softmax/hierarchical_softmax.hpp). The gradients are computed when a gradient output is
 * given; threads come from the context. */
typedef struct softmax_hierarchical_options {
  size_t struct_size;
  int64_t reduction; /* a softmax_reduction_t; default SOFTMAX_REDUCTION_MEAN */
  double grad_scale; /* default 1; finite: the upstream gradient of the (reduced) loss */
} softmax_hierarchical_options_t;

/* Options of adaptive_log_softmax_with_loss: softmax::AdaptiveSoftmaxOptions
 * (softmax/adaptive_softmax.hpp). The gradients are computed when a gradient output is given. */
typedef struct softmax_adaptive_options {
  size_t struct_size;
  double grad_scale; /* default 1; finite: multiplies the gradients of the mean loss */
} softmax_adaptive_options_t;

/* Defaults (the same as the C++ structs' defaults). */
static inline void softmax_options_init(softmax_options_t* o) {
  o->struct_size = sizeof(*o);
  o->axis = -1;
  o->temperature = 1.0;
  o->keepdims = 0;
}
static inline void softmax_cross_entropy_options_init(softmax_cross_entropy_options_t* o) {
  o->struct_size = sizeof(*o);
  o->weight = NULL;
  o->ignore_index = -100;
  o->reduction = SOFTMAX_REDUCTION_MEAN;
  o->label_smoothing = 0.0;
  o->z_loss = 0.0;
  o->normalizer = 1.0;
  o->grad_scale = 1.0;
  o->grad_output = NULL;
  o->vocab_chunk = 0;
}
static inline void softmax_sampling_params_init(softmax_sampling_params_t* p) {
  p->struct_size = sizeof(*p);
  p->temperature = 1.0;
  p->top_k = 0;
  p->top_p = 1.0;
  p->min_p = 0.0;
  p->method = SOFTMAX_SAMPLING_INVERSE_CDF;
  p->per_row_length = 0;
  p->temperature_per_row = NULL;
  p->top_k_per_row = NULL;
  p->top_p_per_row = NULL;
  p->min_p_per_row = NULL;
  p->streams = NULL;
  p->seeds = NULL;
  p->offsets = NULL;
  p->processors = NULL;
}
static inline void softmax_logit_processors_init(softmax_logit_processors_t* p) {
  p->struct_size = sizeof(*p);
  p->prev_tokens = NULL;
  p->prev_tokens_count = 0;
  p->prev_tokens_offsets = NULL;
  p->prev_tokens_offsets_count = 0;
  p->repetition_penalty = 1.0;
  p->presence_penalty = 0.0;
  p->frequency_penalty = 0.0;
  p->logit_bias_ids = NULL;
  p->logit_bias_values = NULL;
  p->logit_bias_count = 0;
  p->logit_bias_offsets = NULL;
  p->logit_bias_offsets_count = 0;
  p->banned_tokens = NULL;
  p->banned_tokens_count = 0;
  p->banned_tokens_offsets = NULL;
  p->banned_tokens_offsets_count = 0;
  p->eos_token_ids = NULL;
  p->eos_token_ids_count = 0;
  p->min_tokens = 0;
  p->num_generated = -1;
  p->per_row_length = 0;
  p->repetition_penalty_per_row = NULL;
  p->presence_penalty_per_row = NULL;
  p->frequency_penalty_per_row = NULL;
  p->min_tokens_per_row = NULL;
  p->num_generated_per_row = NULL;
}
static inline void softmax_gumbel_softmax_options_init(softmax_gumbel_softmax_options_t* o) {
  o->struct_size = sizeof(*o);
  o->axis = -1;
  o->tau = 1.0;
  o->hard = 0;
}
static inline void softmax_sampled_softmax_options_init(softmax_sampled_softmax_options_t* o) {
  o->struct_size = sizeof(*o);
  o->num_sampled = 0;
  o->num_classes = 0;
  o->num_true = 1;
  o->sampler = SOFTMAX_SAMPLER_LOG_UNIFORM;
  o->unigrams = NULL;
  o->unigrams_count = 0;
  o->distortion = 1.0;
  o->unique = 0;
  o->remove_accidental_hits = 1;
  o->subtract_log_q = 1;
  o->seed = 0;
  o->offset = 0;
  o->grad_output = NULL;
}
static inline void softmax_hierarchical_options_init(softmax_hierarchical_options_t* o) {
  o->struct_size = sizeof(*o);
  o->reduction = SOFTMAX_REDUCTION_MEAN;
  o->grad_scale = 1.0;
}
static inline void softmax_adaptive_options_init(softmax_adaptive_options_t* o) {
  o->struct_size = sizeof(*o);
  o->grad_scale = 1.0;
}
static inline void softmax_mask_options_init(softmax_mask_options_t* o) {
  o->struct_size = sizeof(*o);
  o->scale = NULL;
  o->softcap = 0.0;
  o->causal = 0;
  o->align = SOFTMAX_ALIGN_TOP_LEFT;
  o->window_left = -1;
  o->window_right = -1;
  o->alibi_slopes = NULL;
  o->alibi_slopes_count = 0;
  o->bias = NULL;
  o->mask = NULL;
}

/* A contiguous (C order) CPU view of `rank` dims; `shape` must outlive the view's use. */
static inline softmax_tensor_t softmax_tensor_make(void* data, softmax_dtype_t dtype, int64_t rank,
                                                   const int64_t* shape) {
  softmax_tensor_t t;
  t.data = data;
  t.dtype = (int32_t)dtype;
  t.device = (int32_t)SOFTMAX_DEVICE_CPU;
  t.rank = rank;
  t.shape = shape;
  t.strides = NULL;
  return t;
}

/* ---- Library information and errors ---- */

/* The library's version, "MAJOR.MINOR.PATCH" (compare with SOFTMAX_VERSION_STRING). */
const char* softmax_version(void);
/* The library's SOFTMAX_ABI_VERSION (the N of its SONAME libsoftmax.so.N). */
int softmax_abi_version(void);
/* The message of the last call on this thread ("" after a success). Valid until the next call
 * on this thread. Never NULL. */
const char* softmax_last_error(void);
/* A constant name for a status ("ok", "invalid argument", ...; "unknown status" otherwise). */
const char* softmax_status_name(softmax_status_t status);

/* ---- Execution context ---- */

typedef struct softmax_context softmax_context_t;

/* *ctx = a new context with default settings (threads 0). INVALID_ARGUMENT for ctx == NULL. */
softmax_status_t softmax_context_create(softmax_context_t** ctx);
/* Frees a context (NULL is a no-op). */
void softmax_context_destroy(softmax_context_t* ctx);
/* Worker threads of every op run with this context (OpenMP): 0 = the OpenMP default
 * (OMP_NUM_THREADS or all cores), counts above the CPUs are clamped. Must be >= 0. Results do not
 * depend on it (except the oneDNN products of linear_cross_entropy). */
softmax_status_t softmax_context_set_threads(softmax_context_t* ctx, int threads);

/* A caller's parallel-for (e.g. an engine's thread pool): it must call task(task_ctx, begin, end)
 * for disjoint ranges that together cover [0, count) exactly once, on any threads and in any
 * order, and return when all have returned. max_tasks is a hint (the context's thread count).
 * Results do not depend on how the ranges are chosen. Tasks do not fail. */
typedef void (*softmax_parallel_for_fn)(void* pool, int64_t count, int64_t max_tasks,
                                        void (*task)(void* task_ctx, int64_t begin, int64_t end),
                                        void* task_ctx);
/* Parallel work of every op with this context goes to parallel_for(pool, ...) instead of OpenMP
 * (NULL restores OpenMP). */
softmax_status_t softmax_context_set_parallel_for(softmax_context_t* ctx,
                                                  softmax_parallel_for_fn parallel_for, void* pool);
/* SIMD target of the CPU kernels ("AVX3", "AVX2", ...; NULL or "" = the best). Results do not
 * depend on it. INVALID_ARGUMENT for a name this build and CPU cannot run. */
softmax_status_t softmax_context_set_target(softmax_context_t* ctx, const char* target);
/* Caller scratch memory (softmax::Context::workspace) for the ops that report a size
 * (softmax_softmax_workspace_bytes, softmax_log_softmax_workspace_bytes,
 * softmax_logsumexp_workspace_bytes): host memory for CPU tensors, device memory for CUDA
 * tensors, aligned to 256 bytes. Given at least the reported bytes, those ops take all their
 * scratch from it and make no heap allocation (no cudaMalloc on CUDA either; the descriptors are
 * read into per-thread views reserved on a thread's first C call); NULL (the default) lets them
 * allocate; a workspace
 * that is too small or misaligned makes the op fail with INVALID_ARGUMENT before it writes
 * anything. The other ops ignore it (they allocate their own scratch). The context does not own
 * the memory; calls that use it must not run at the same time.
 */
softmax_status_t softmax_context_set_workspace(softmax_context_t* ctx, void* workspace,
                                               size_t bytes);
/* The CUDA stream (a cudaStream_t) that ops on CUDA tensors enqueue on (softmax::Context::
 * cuda_stream); NULL = the legacy default stream. The ops do not synchronise it. */
softmax_status_t softmax_context_set_cuda_stream(softmax_context_t* ctx, void* stream);
/* Whether this build and machine run ops on tensors of `device` (softmax::device_available):
 * 1 for SOFTMAX_DEVICE_CPU; for SOFTMAX_DEVICE_CUDA, 1 when built with CUDA and a GPU answers. */
int softmax_device_available(softmax_device_t device);

/* The SIMD targets this build and CPU can run, best first, comma-separated ("AVX3,AVX2,SSE4,...";
 * softmax::available_targets, softmax/dispatch.hpp): the names softmax_context_set_target
 * takes. A constant string, never NULL. */
const char* softmax_available_targets(void);

/* ---- Axis ops (softmax/ops.hpp); options: softmax_options_t ---- */

/* y = softmax(x / T) along options->axis (softmax::softmax). */
softmax_status_t softmax_softmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y, const softmax_options_t* options);
/* y = log_softmax(x / T) (softmax::log_softmax). */
softmax_status_t softmax_log_softmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                     const softmax_tensor_t* y, const softmax_options_t* options);
/* y = logsumexp(x / T), the axis dropped (or kept by keepdims) (softmax::logsumexp). */
softmax_status_t softmax_logsumexp(softmax_context_t* ctx, const softmax_tensor_t* x,
                                   const softmax_tensor_t* y, const softmax_options_t* options);
/* *bytes = the workspace (softmax_context_set_workspace) that softmax_softmax / log_softmax /
 * logsumexp need for these arguments with ctx (softmax::softmax_workspace_bytes, ...): 0 when the
 * call needs no scratch. The same argument checks (and statuses) as the op; writes only *bytes. */
softmax_status_t softmax_softmax_workspace_bytes(softmax_context_t* ctx, const softmax_tensor_t* x,
                                                 const softmax_tensor_t* y,
                                                 const softmax_options_t* options, size_t* bytes);
softmax_status_t softmax_log_softmax_workspace_bytes(softmax_context_t* ctx,
                                                     const softmax_tensor_t* x,
                                                     const softmax_tensor_t* y,
                                                     const softmax_options_t* options,
                                                     size_t* bytes);
softmax_status_t softmax_logsumexp_workspace_bytes(softmax_context_t* ctx,
                                                   const softmax_tensor_t* x,
                                                   const softmax_tensor_t* y,
                                                   const softmax_options_t* options, size_t* bytes);
/* indices (i64 or i32) = argmax along the axis, lowest index on ties (softmax::argmax). */
softmax_status_t softmax_argmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                const softmax_tensor_t* indices, const softmax_options_t* options);
/* y = one_hot(argmax(x)) along the axis (softmax::hardmax). */
softmax_status_t softmax_hardmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y, const softmax_options_t* options);
/* y = 1 / (1 + exp(-x)) elementwise (softmax::sigmoid). */
softmax_status_t softmax_sigmoid(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y);

/* y = x in y's dtype, each value rounded once to nearest even (softmax::convert,
 * softmax/convert.hpp): x f32, f64, bf16, f16, i32 or i64; y f32, f64, bf16 or f16 of x's shape;
 * y may be x only for equal dtypes. Errors: shapes, dtypes, overlap. */
softmax_status_t softmax_convert(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y);

/* ---- Backward passes (softmax/backward.hpp) ---- */

/* dx = (y * (dy - sum(dy * y))) / T, the gradient of y = softmax(x / T). */
softmax_status_t softmax_softmax_backward(softmax_context_t* ctx, const softmax_tensor_t* y,
                                          const softmax_tensor_t* dy, const softmax_tensor_t* dx,
                                          const softmax_options_t* options);
/* dx = (dy - exp(y) * sum(dy)) / T, the gradient of y = log_softmax(x / T). */
softmax_status_t softmax_log_softmax_backward(softmax_context_t* ctx, const softmax_tensor_t* y,
                                              const softmax_tensor_t* dy,
                                              const softmax_tensor_t* dx,
                                              const softmax_options_t* options);

/* ---- Losses (softmax/cross_entropy.hpp); options: softmax_cross_entropy_options_t ---- */

/* Fused log-softmax + NLL (softmax::cross_entropy). loss is required; grad, lse and log_probs
 * are computed when not NULL. */
softmax_status_t softmax_cross_entropy(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                       const softmax_tensor_t* targets,
                                       const softmax_tensor_t* loss, const softmax_tensor_t* grad,
                                       const softmax_tensor_t* lse,
                                       const softmax_tensor_t* log_probs,
                                       const softmax_cross_entropy_options_t* options);
/* NLL on log-probabilities (softmax::nll_loss); grad optional. */
softmax_status_t softmax_nll_loss(softmax_context_t* ctx, const softmax_tensor_t* log_probs,
                                  const softmax_tensor_t* targets, const softmax_tensor_t* loss,
                                  const softmax_tensor_t* grad,
                                  const softmax_cross_entropy_options_t* options);
/* cross_entropy(hidden @ weight^T, targets) without the logits (softmax::linear_cross_entropy);
 * grad_hidden, grad_weight and lse optional. */
softmax_status_t softmax_linear_cross_entropy(
    softmax_context_t* ctx, const softmax_tensor_t* hidden, const softmax_tensor_t* weight,
    const softmax_tensor_t* targets, const softmax_tensor_t* loss,
    const softmax_tensor_t* grad_hidden, const softmax_tensor_t* grad_weight,
    const softmax_tensor_t* lse, const softmax_cross_entropy_options_t* options);
/* *bytes = the scratch linear_cross_entropy allocates for (N, D) hidden and V classes
 * (softmax::linear_cross_entropy_workspace_bytes). n, d, v and options->vocab_chunk must be >= 0
 * (INVALID_ARGUMENT); a size past INT64_MAX is OVERFLOW. */
softmax_status_t softmax_linear_cross_entropy_workspace_bytes(
    int64_t n, int64_t d, int64_t v, const softmax_cross_entropy_options_t* options,
    int64_t* bytes);

/* ---- Sampling (softmax/sampling.hpp); params: softmax_sampling_params_t ---- */

/* tokens (B) or (B, D), i64 = tokens drawn from logits (B, V) (softmax::sample). */
softmax_status_t softmax_sample(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                const softmax_tensor_t* tokens,
                                const softmax_sampling_params_t* params, uint64_t seed,
                                uint64_t offset);
/* As softmax_sample, from probabilities (softmax::sample_from_probs). */
softmax_status_t softmax_sample_from_probs(softmax_context_t* ctx, const softmax_tensor_t* probs,
                                           const softmax_tensor_t* tokens,
                                           const softmax_sampling_params_t* params, uint64_t seed,
                                           uint64_t offset);
/* The n most probable tokens of each row of logits (B, V) and their log-probabilities under
 * softmax(x / T), most probable first (softmax::top_logprobs): ids (B, n) i64 and logprobs
 * (B, n) f64, any strides, not overlapping each other or logits. */
softmax_status_t softmax_top_logprobs(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                      int64_t n, double temperature, const softmax_tensor_t* ids,
                                      const softmax_tensor_t* logprobs);

/* ---- Attention (softmax/attention.hpp); options: softmax_mask_options_t ---- */

/* y = softmax(transform(scores)) along the last axis with masks (softmax::masked_softmax);
 * lse (scores' shape without the last axis) optional. */
softmax_status_t softmax_masked_softmax(softmax_context_t* ctx, const softmax_tensor_t* scores,
                                        const softmax_tensor_t* y, const softmax_tensor_t* lse,
                                        const softmax_mask_options_t* options);
/* dscores from dy and the forward output y (softmax::masked_softmax_backward); scores is
 * needed only when softcap > 0 (NULL otherwise allowed). */
softmax_status_t softmax_masked_softmax_backward(softmax_context_t* ctx, const softmax_tensor_t* dy,
                                                 const softmax_tensor_t* y,
                                                 const softmax_tensor_t* scores,
                                                 const softmax_tensor_t* dscores,
                                                 const softmax_mask_options_t* options);
/* out = softmax(transform(q k^T)) v, tile by tile (softmax::attention); lse (B, Hq, Sq) f32
 * optional. */
softmax_status_t softmax_attention(softmax_context_t* ctx, const softmax_tensor_t* q,
                                   const softmax_tensor_t* k, const softmax_tensor_t* v,
                                   const softmax_tensor_t* out, const softmax_tensor_t* lse,
                                   const softmax_mask_options_t* options);

/* Backward of attention (softmax::attention_backward): dq (B, Hq, Sq, D), dk (B, Hkv, Sk, D),
 * dv (B, Hkv, Sk, Dv) from the forward's q, k, v, its output out (B, Hq, Sq, Dv) and lse
 * (B, Hq, Sq) f32 (softmax_attention with lse), and dout = d loss / d out (out's shape), with
 * the forward's options. q, k, v, out, dout: one dtype of f32 / bf16 / f16; dq, dk, dv f32 /
 * bf16 / f16. Errors: the forward's, mismatched shapes or dtypes, overlapping outputs. Uses the
 * context's thread count only (not its pool or target). */
softmax_status_t softmax_attention_backward(
    softmax_context_t* ctx, const softmax_tensor_t* q, const softmax_tensor_t* k,
    const softmax_tensor_t* v, const softmax_tensor_t* out, const softmax_tensor_t* lse,
    const softmax_tensor_t* dout, const softmax_tensor_t* dq, const softmax_tensor_t* dk,
    const softmax_tensor_t* dv, const softmax_mask_options_t* options);

/* ---- Serving (softmax/logit_processors.hpp, sampling.hpp, speculative.hpp, beam_search.hpp);
 * params: softmax_sampling_params_t. These take the context's thread count only. ---- */

/* out (B, V) = logits (B, V) after the logit processors (softmax::apply_penalties): f32, f64,
 * bf16 or f16, out of logits' dtype, any strides, out may be logits itself (in place).
 * processors NULL = none (a copy). Errors: shapes, dtypes, overlap, and every processors rule
 * (lengths, penalties, token ids outside [0, V), offsets, bias values). */
softmax_status_t softmax_apply_penalties(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                         const softmax_tensor_t* out,
                                         const softmax_logit_processors_t* processors);
/* probs (B, V) f32 or f64 = the processed distribution sample() draws from, renormalised over the
 * kept tokens (softmax::filtered_probs); logits (B, V) as in softmax_sample. params' seeds,
 * offsets, streams and method are unused. Errors as softmax_sample, and probs' shape / dtype. */
softmax_status_t softmax_filtered_probs(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                        const softmax_tensor_t* probs,
                                        const softmax_sampling_params_t* params);
/* logprobs (tokens' shape, f32 or f64) = log p(tokens) of each row of logits (B, V), tokens (B) or
 * (B, D) i64, under the raw or processed distribution; mode a softmax_logprobs_mode_t
 * (softmax::token_logprobs). Errors as softmax_sample, token ids outside [0, V), a bad mode. */
softmax_status_t softmax_token_logprobs(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                        const softmax_tensor_t* tokens,
                                        const softmax_tensor_t* logprobs,
                                        const softmax_sampling_params_t* params, int64_t mode);
/* The n most probable tokens under the raw or processed distribution (the C++ overload
 * softmax::top_logprobs(logits, n, params, mode)): ids (B, n) i64, logprobs (B, n) f64, most
 * probable first, as softmax_top_logprobs. 0 <= n <= V. Errors as softmax_top_logprobs, a bad
 * mode, and (SOFTMAX_LOGPROBS_PROCESSED) as softmax_sample. SOFTMAX_LOGPROBS_RAW ignores the
 * sampling values (temperature, top-k / top-p / min-p, processors: vLLM's raw_logprobs), so an
 * out-of-range value there is not an error; the struct itself (struct_size, method, array
 * lengths) is still checked. */
softmax_status_t softmax_top_logprobs_mode(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                           int64_t n, const softmax_sampling_params_t* params,
                                           int64_t mode, const softmax_tensor_t* ids,
                                           const softmax_tensor_t* logprobs);
/* tokens (B, k) i64 = k distinct tokens per row of logits (B, V), drawn without replacement by
 * Gumbel-top-k from the processed distribution (softmax::sample_without_replacement). Errors as
 * softmax_sample, and a row with fewer than k tokens of positive probability. */
softmax_status_t softmax_sample_without_replacement(softmax_context_t* ctx,
                                                    const softmax_tensor_t* logits,
                                                    const softmax_tensor_t* tokens,
                                                    const softmax_sampling_params_t* params,
                                                    uint64_t seed, uint64_t offset);
/* Speculative-decoding verification (softmax::speculative_verify): draft_tokens (B, k) i64,
 * draft_probs (B, k, V) and target_probs (B, k + 1, V) f32 or f64; outputs num_accepted (B) i64
 * and tokens (B, k + 1) i64 (accepted drafts, the correction or bonus token, then -1). streams:
 * streams_count (B) Philox streams, NULL (count 0) = the row index; set with a count of 0 on
 * B > 0 rows is SHAPE_MISMATCH. Errors: shapes, dtypes, token
 * ids, a probability < 0 or not finite, a row not summing to 1 within 1e-3, the streams'
 * length, overlapping outputs. */
softmax_status_t softmax_speculative_verify(
    softmax_context_t* ctx, const softmax_tensor_t* draft_tokens,
    const softmax_tensor_t* draft_probs, const softmax_tensor_t* target_probs,
    const softmax_tensor_t* num_accepted, const softmax_tensor_t* tokens, uint64_t seed,
    uint64_t offset, const uint64_t* streams, int64_t streams_count);
/* The 2 * beam_width best (beam, token) continuations by beam_scores[b] + log_probs[b, v]
 * (softmax::beam_search_step): log_probs (B, V), beam_scores (B) f32 or f64; beam_indices (2W)
 * i64, tokens (2W) i64, scores (2W) f32 or f64. Errors: shapes, dtypes, beam_width < 1, NaN or
 * +inf inputs, fewer than 2W finite candidates. Runs on the calling thread. */
softmax_status_t softmax_beam_search_step(softmax_context_t* ctx, const softmax_tensor_t* log_probs,
                                          const softmax_tensor_t* beam_scores, int64_t beam_width,
                                          const softmax_tensor_t* beam_indices,
                                          const softmax_tensor_t* tokens,
                                          const softmax_tensor_t* scores);

/* ---- Sparsemax and Gumbel-softmax (softmax/sparsemax.hpp, softmax/gumbel_softmax.hpp) ---- */

/* y = sparsemax(x / T) along options->axis (softmax::sparsemax): x f32, f64, bf16 or f16, y of
 * x's shape with a dtype softmax allows, y may be x. options->keepdims is unused. Errors: axis,
 * temperature, shapes, dtypes, overlap. */
softmax_status_t softmax_sparsemax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                   const softmax_tensor_t* y, const softmax_options_t* options);
/* dx = the gradient through y = sparsemax(x / T) (softmax::sparsemax_backward): dy of y's shape
 * and dtype, dx of y's shape (dtype as softmax_backward allows), dx may be dy. Errors as
 * softmax_softmax_backward (axis, temperature, shapes, dtypes, overlap). */
softmax_status_t softmax_sparsemax_backward(softmax_context_t* ctx, const softmax_tensor_t* y,
                                            const softmax_tensor_t* dy, const softmax_tensor_t* dx,
                                            const softmax_options_t* options);
/* y = softmax((logits + g) / tau), g Gumbel noise from Philox (seed, offset, row, position);
 * options->hard: the one-hot of the argmax (softmax::gumbel_softmax). logits f32, f64, bf16 or
 * f16, y of its shape (dtype as softmax allows). Errors: axis, tau, shapes, dtypes, overlap. */
softmax_status_t softmax_gumbel_softmax(softmax_context_t* ctx, const softmax_tensor_t* logits,
                                        const softmax_tensor_t* y,
                                        const softmax_gumbel_softmax_options_t* options,
                                        uint64_t seed, uint64_t offset);
/* dx = the gradient of sum(dy * y_soft) w.r.t. logits for the same (logits, options, seed,
 * offset) (softmax::gumbel_softmax_backward; also for hard, straight-through). dy: logits'
 * shape and dtype; dx: logits' shape (dtype as softmax_backward allows). Errors as
 * softmax_gumbel_softmax, and dy / dx of the wrong shape or dtype. */
softmax_status_t softmax_gumbel_softmax_backward(softmax_context_t* ctx,
                                                 const softmax_tensor_t* logits,
                                                 const softmax_tensor_t* dy,
                                                 const softmax_tensor_t* dx,
                                                 const softmax_gumbel_softmax_options_t* options,
                                                 uint64_t seed, uint64_t offset);

/* ---- Row statistics (softmax/row_stats.hpp); options: softmax_options_t ----
 * Statistics are f64 tensors (rows..., C, SOFTMAX_STATS_FIELDS): x's shape without the axis,
 * then one record per SOFTMAX_STATS_CHUNK classes (SOFTMAX_STAT_* name the fields). */

/* stats_shape (rank + 1 values) = the statistics' shape for x of shape x_shape (rank >= 1) along
 * axis (softmax::softmax_stats_shape). Errors: a bad rank or axis, NULL pointers. */
softmax_status_t softmax_softmax_stats_shape(const int64_t* x_shape, int64_t rank, int64_t axis,
                                             int64_t* stats_shape);
/* stats = the statistics of every row of x along options->axis with options->temperature
 * (softmax::softmax_stats); refine (NULL = a first pass): the merged first-pass statistics of
 * the whole rows, for the exact second pass. Errors: views, axis, temperature, dtypes, shapes,
 * overlap, statistics that disagree. */
softmax_status_t softmax_softmax_stats(softmax_context_t* ctx, const softmax_tensor_t* x,
                                       const softmax_tensor_t* refine,
                                       const softmax_tensor_t* stats,
                                       const softmax_options_t* options);
/* out (rows..., Ca + Cb, F) = a (rows..., Ca, F) followed by b (rows..., Cb, F), all f64
 * (softmax::merge_stats). Errors: mismatched rows, fields, temperatures or compute types. */
softmax_status_t softmax_merge_stats(softmax_context_t* ctx, const softmax_tensor_t* a,
                                     const softmax_tensor_t* b, const softmax_tensor_t* out);
/* y = this slice x of softmax(row / T) from the merged statistics of the whole rows
 * (softmax::softmax_from_stats; T is the statistics'; options->axis only). x f32, f64, bf16 or
 * f16, y of x's shape (dtype pairs and in place as softmax); stats (rows..., C, F) f64 with
 * rows... = x's shape without the axis. Errors: views, axis, dtypes, shapes, statistics that
 * disagree with x (compute type, counts shorter than the slice). */
softmax_status_t softmax_softmax_from_stats(softmax_context_t* ctx, const softmax_tensor_t* x,
                                            const softmax_tensor_t* stats,
                                            const softmax_tensor_t* y,
                                            const softmax_options_t* options);
/* y = this slice x of log_softmax(row / T) from merged statistics
 * (softmax::log_softmax_from_stats). Shapes, dtypes and errors as softmax_softmax_from_stats. */
softmax_status_t softmax_log_softmax_from_stats(softmax_context_t* ctx, const softmax_tensor_t* x,
                                                const softmax_tensor_t* stats,
                                                const softmax_tensor_t* y,
                                                const softmax_options_t* options);
/* y (rows...) = logsumexp(row / T) from merged statistics (softmax::logsumexp_from_stats):
 * stats (rows..., C, F) f64; y f32 / bf16 / f16, or f64 for f64-computed statistics (see the
 * C++ doc for extreme T); options unused (NULL). Errors: views, dtypes, shapes, statistics. */
softmax_status_t softmax_logsumexp_from_stats(softmax_context_t* ctx, const softmax_tensor_t* stats,
                                              const softmax_tensor_t* y,
                                              const softmax_options_t* options);

/* ---- Large-vocabulary losses (softmax/large_vocab.hpp). These ops compute their results, then
 * check every output view against them and store them (nothing is written on failure).
 * Outputs are f32 (losses, log-probabilities, gradients) or i64 (classes), any strides.
 * Sparse row gradients (softmax::SparseRowGrad: only the parameter rows a call touched) go to
 * caller buffers of a capacity R: *_rows (R) i64 (strictly increasing row ids), *_values (R, D)
 * f32, a bias (R) f32 (optional), and *_count = the rows written (the first *_count of R; an R
 * too small is SHAPE_MISMATCH). Gradients are computed when any gradient output is given;
 * threads come from the context. ---- */

/* *probability = P(k) of class k under options' sampler (softmax::candidate_probability).
 * Errors: a bad sampler configuration, k outside [0, num_classes), probability NULL. */
softmax_status_t softmax_candidate_probability(int64_t k,
                                               const softmax_sampled_softmax_options_t* options,
                                               double* probability);
/* TensorFlow's candidate samplers (softmax::sample_candidates): true_classes (N, num_true)
 * i32/i64; sampled (num_sampled) i64 required; true_expected_count (N, num_true) f32,
 * sampled_expected_count (num_sampled) f32 and num_tries optional (NULL). Errors: the sampler
 * configuration, true classes out of range, outputs of the wrong dtype or shape, overlap. */
softmax_status_t softmax_sample_candidates(softmax_context_t* ctx,
                                           const softmax_tensor_t* true_classes,
                                           const softmax_sampled_softmax_options_t* options,
                                           const softmax_tensor_t* sampled,
                                           const softmax_tensor_t* true_expected_count,
                                           const softmax_tensor_t* sampled_expected_count,
                                           int64_t* num_tries);
/* tf.nn.sampled_softmax_loss (softmax::sampled_softmax_loss): weights (num_classes, D) f32 (unit
 * column stride), biases (num_classes) f32, labels (N, num_true) i32/i64, inputs (N, D) f32;
 * loss (N) f32 required; the samples (as softmax_sample_candidates) optional; grad_inputs (N, D)
 * optional; the sparse weight gradient grad_weight_rows / grad_weight_values / grad_weight_count
 * (together) with grad_bias_values optional; R = min(num_classes, num_sampled + N * num_true)
 * always suffices. Errors: the C++ op's (shapes, dtypes, labels outside [0, num_classes),
 * num_sampled / num_true / num_classes, unique draws, unigrams, grad_output), an output of the
 * wrong dtype or shape, R too small, overlapping outputs. */
softmax_status_t softmax_sampled_softmax_loss(
    softmax_context_t* ctx, const softmax_tensor_t* weights, const softmax_tensor_t* biases,
    const softmax_tensor_t* labels, const softmax_tensor_t* inputs,
    const softmax_sampled_softmax_options_t* options, const softmax_tensor_t* loss,
    const softmax_tensor_t* sampled, const softmax_tensor_t* true_expected_count,
    const softmax_tensor_t* sampled_expected_count, int64_t* num_tries,
    const softmax_tensor_t* grad_inputs, const softmax_tensor_t* grad_weight_rows,
    const softmax_tensor_t* grad_weight_values, const softmax_tensor_t* grad_bias_values,
    int64_t* grad_weight_count);

/* A binary tree of hierarchical softmax (softmax::HierarchicalTree), opaque and immutable: it
 * may be shared by concurrent calls. */
typedef struct softmax_hierarchical_tree softmax_hierarchical_tree_t;

/* *tree = the tree of children (children_count = 2 (V - 1) entries: children[2 j + c] is the
 * child with code c of internal node j, an internal id in [0, j) or a leaf -(k + 1))
 * (softmax::HierarchicalTree). Errors: not a binary tree over V >= 2 leaves rooted at V - 2. */
softmax_status_t softmax_hierarchical_tree_create(const int32_t* children, int64_t children_count,
                                                  softmax_hierarchical_tree_t** tree);
/* *tree = word2vec's Huffman tree of num_classes >= 2 counts, each > 0 (softmax::huffman_tree). */
softmax_status_t softmax_huffman_tree(const int64_t* counts, int64_t num_classes,
                                      softmax_hierarchical_tree_t** tree);
/* *tree = a balanced tree over num_classes >= 2 classes (softmax::balanced_tree). */
softmax_status_t softmax_balanced_tree(int64_t num_classes, softmax_hierarchical_tree_t** tree);
/* Frees a tree (NULL is a no-op). */
void softmax_hierarchical_tree_destroy(softmax_hierarchical_tree_t* tree);
/* The tree's number of classes V and its largest depth (either pointer may be NULL). */
softmax_status_t softmax_hierarchical_tree_info(const softmax_hierarchical_tree_t* tree,
                                                int64_t* num_classes, int64_t* max_depth);
/* *depth = the depth of class k; nodes / codes (capacity >= depth entries each, or NULL) = the
 * internal nodes from the root to k and the branch (0 / 1) taken at each
 * (HierarchicalTree::paths / codes). Errors: k outside [0, V), capacity too small. */
softmax_status_t softmax_hierarchical_tree_path(const softmax_hierarchical_tree_t* tree, int64_t k,
                                                int32_t* nodes, uint8_t* codes, int64_t capacity,
                                                int64_t* depth);
/* -log p(targets_i | hidden_i) (softmax::hierarchical_softmax_loss): hidden (N, D) f32, targets
 * (N) i32/i64, node_weights (V - 1, D) f32 (unit column stride), node_bias (V - 1) f32 or NULL;
 * loss (N) f32 for SOFTMAX_REDUCTION_NONE, else rank 0; grad_hidden (N, D) optional; the sparse
 * node gradient grad_node_rows / grad_node_values / grad_node_count (together) with
 * grad_node_bias (only with node_bias) optional; R = V - 1 always suffices. Errors: the C++ op's
 * (shapes, dtypes, targets outside [0, V), grad_scale not finite), a bad reduction, tree NULL,
 * outputs of the wrong dtype or shape, R too small, overlap. */
softmax_status_t softmax_hierarchical_softmax_loss(
    softmax_context_t* ctx, const softmax_tensor_t* hidden, const softmax_tensor_t* targets,
    const softmax_hierarchical_tree_t* tree, const softmax_tensor_t* node_weights,
    const softmax_tensor_t* node_bias, const softmax_hierarchical_options_t* options,
    const softmax_tensor_t* loss, const softmax_tensor_t* grad_hidden,
    const softmax_tensor_t* grad_node_rows, const softmax_tensor_t* grad_node_values,
    const softmax_tensor_t* grad_node_bias, int64_t* grad_node_count);
/* log_probs (N, V) f32 = every class's log-probability (softmax::hierarchical_log_prob);
 * hidden, node_weights, node_bias as softmax_hierarchical_softmax_loss. Errors: those inputs'
 * shapes and dtypes, log_probs' dtype or shape, overlap. */
softmax_status_t softmax_hierarchical_log_prob(softmax_context_t* ctx,
                                               const softmax_tensor_t* hidden,
                                               const softmax_hierarchical_tree_t* tree,
                                               const softmax_tensor_t* node_weights,
                                               const softmax_tensor_t* node_bias,
                                               const softmax_tensor_t* log_probs);
/* The exact top-k classes per row (softmax::hierarchical_predict): classes (N, k) i64 and
 * log_probs (N, k) f32 (optional), decreasing, ties by lower class id. k in [1, V]. Errors as
 * softmax_hierarchical_log_prob, and k outside [1, V]. */
softmax_status_t softmax_hierarchical_predict(
    softmax_context_t* ctx, const softmax_tensor_t* hidden, const softmax_hierarchical_tree_t* tree,
    const softmax_tensor_t* node_weights, const softmax_tensor_t* node_bias, int64_t k,
    const softmax_tensor_t* log_probs, const softmax_tensor_t* classes);

/* Adaptive softmax: the model as torch's AdaptiveLogSoftmaxWithLoss holds it
 * (softmax/adaptive_softmax.hpp): head_weight (c_0 + m, D) f32, head_bias (c_0 + m) f32 or NULL,
 * tail_projections[i] (h_i, D) and tail_outputs[i] (c_{i+1} - c_i, h_i) f32 (arrays of num_tails
 * tensors), cutoffs (num_cutoffs = m values, as torch's constructor takes them); input (N, D)
 * f32 (unit column stride). Errors of all three: the C++ model rules (cutoffs empty, not
 * increasing or c_0 <= 0, a tail count other than the cutoffs', weights of the wrong shape or
 * dtype), outputs of the wrong dtype or shape, overlap. */

/* torch's forward(input, target) (softmax::adaptive_log_softmax_with_loss): target (N)
 * i32/i64; output (N) f32 = log p(target | input) and *loss = mean(-output) (either may be
 * NULL); the gradients of grad_scale * loss, each optional and of its parameter's shape:
 * grad_input, grad_head_weight, grad_head_bias (only with head_bias), and arrays of num_tails
 * tensors grad_tail_projections, grad_tail_outputs. */
softmax_status_t softmax_adaptive_log_softmax_with_loss(
    softmax_context_t* ctx, const softmax_tensor_t* input, const softmax_tensor_t* target,
    const softmax_tensor_t* head_weight, const softmax_tensor_t* head_bias,
    const softmax_tensor_t* tail_projections, const softmax_tensor_t* tail_outputs,
    int64_t num_tails, const int64_t* cutoffs, int64_t num_cutoffs,
    const softmax_adaptive_options_t* options, const softmax_tensor_t* output, double* loss,
    const softmax_tensor_t* grad_input, const softmax_tensor_t* grad_head_weight,
    const softmax_tensor_t* grad_head_bias, const softmax_tensor_t* grad_tail_projections,
    const softmax_tensor_t* grad_tail_outputs);
/* log_probs (N, n_classes) f32 = torch's log_prob(input) (softmax::adaptive_log_prob). */
softmax_status_t softmax_adaptive_log_prob(softmax_context_t* ctx, const softmax_tensor_t* input,
                                           const softmax_tensor_t* head_weight,
                                           const softmax_tensor_t* head_bias,
                                           const softmax_tensor_t* tail_projections,
                                           const softmax_tensor_t* tail_outputs, int64_t num_tails,
                                           const int64_t* cutoffs, int64_t num_cutoffs,
                                           const softmax_tensor_t* log_probs);
/* classes (N) i64 = torch's predict(input) (softmax::adaptive_predict). */
softmax_status_t softmax_adaptive_predict(softmax_context_t* ctx, const softmax_tensor_t* input,
                                          const softmax_tensor_t* head_weight,
                                          const softmax_tensor_t* head_bias,
                                          const softmax_tensor_t* tail_projections,
                                          const softmax_tensor_t* tail_outputs, int64_t num_tails,
                                          const int64_t* cutoffs, int64_t num_cutoffs,
                                          const softmax_tensor_t* classes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SOFTMAX_SOFTMAX_H_ */
