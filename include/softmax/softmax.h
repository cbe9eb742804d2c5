/* softmax/softmax.h: the C ABI of the softmax library (C99; usable from C++).
 *
 * Every op of the C++ API (softmax/softmax.hpp) has one C function here, named softmax_<op>
 * (softmax_softmax, softmax_log_softmax, ...), with the same semantics, shapes, dtypes, edge
 * cases and error bounds as the C++ function it calls; the C++ header named beside each
 * function states them. The rules of this interface:
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
 * - Context: an opaque softmax_context_t (softmax_context_create) carries execution settings
 *   (today the worker thread count) and is the first argument of every op; NULL = defaults
 *   (0 threads: the OpenMP default). A context may be shared by concurrent calls; its setters
 *   must not run concurrently with calls that use it.
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

/* Parameters of sample and sample_from_probs: softmax::SamplingParams (softmax/sampling.hpp).
 * A *_per_row array (NULL = the scalar field for every row) and streams hold per_row_length
 * values, which must equal the batch size B. */
typedef struct softmax_sampling_params {
  size_t struct_size;
  double temperature; /* default 1; 0 = greedy (argmax); otherwise finite and > 0 */
  int64_t top_k;      /* default 0 (off); >= 0 */
  double top_p;       /* default 1 (off); in (0, 1] */
  double min_p;       /* default 0 (off); in [0, 1] */
  int64_t method;     /* a softmax_sampling_method_t; default SOFTMAX_SAMPLING_INVERSE_CDF */
  int64_t per_row_length;
  const double* temperature_per_row;
  const int64_t* top_k_per_row;
  const double* top_p_per_row;
  const double* min_p_per_row;
  const uint64_t* streams; /* Philox stream per row (any 64-bit value); NULL = the row index */
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
  int64_t alibi_slopes_count;   /* number of slopes (H) when alibi_slopes is set */
  const softmax_tensor_t* bias; /* additive bias, broadcastable to the scores; NULL = none */
  const softmax_tensor_t* mask; /* keep-mask (i32 / i64, nonzero = keep); NULL = none */
} softmax_mask_options_t;

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
/* indices (i64 or i32) = argmax along the axis, lowest index on ties (softmax::argmax). */
softmax_status_t softmax_argmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                const softmax_tensor_t* indices, const softmax_options_t* options);
/* y = one_hot(argmax(x)) along the axis (softmax::hardmax). */
softmax_status_t softmax_hardmax(softmax_context_t* ctx, const softmax_tensor_t* x,
                                 const softmax_tensor_t* y, const softmax_options_t* options);
/* y = 1 / (1 + exp(-x)) elementwise (softmax::sigmoid). */
softmax_status_t softmax_sigmoid(softmax_context_t* ctx, const softmax_tensor_t* x,
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
 * (softmax::linear_cross_entropy_workspace_bytes). */
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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SOFTMAX_SOFTMAX_H_ */
