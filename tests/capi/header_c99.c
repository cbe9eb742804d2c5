/* tests/capi/header_c99.c: compiled (not linked) as C99 and as C++11 with
 * -Wall -Wextra -pedantic -Werror by the capi_header_* tests: the C header must be clean in
 * both languages. Touches every type, macro and inline function of softmax/softmax.h. */
#include "softmax/softmax.h"

#if SOFTMAX_ABI_VERSION != SOFTMAX_VERSION_MAJOR || SOFTMAX_VERSION_MINOR < 0 || \
    SOFTMAX_VERSION_PATCH < 0
#error "version macros"
#endif

int header_check(float* x, float* y, int64_t n);

int header_check(float* x, float* y, int64_t n) {
  const int64_t shape[1] = {n};
  softmax_tensor_t tx = softmax_tensor_make(x, SOFTMAX_DTYPE_F32, 1, shape);
  softmax_tensor_t ty = softmax_tensor_make(y, SOFTMAX_DTYPE_F32, 1, shape);
  softmax_options_t o;
  softmax_cross_entropy_options_t ce;
  softmax_sampling_params_t sp;
  softmax_mask_options_t mo;
  softmax_logit_processors_t lp;
  softmax_gumbel_softmax_options_t go;
  softmax_sampled_softmax_options_t so;
  softmax_hierarchical_options_t ho;
  softmax_adaptive_options_t ao;
  softmax_hierarchical_tree_t* tree = NULL;
  softmax_context_t* ctx = NULL;
  softmax_status_t st;
  softmax_options_init(&o);
  softmax_cross_entropy_options_init(&ce);
  softmax_sampling_params_init(&sp);
  softmax_mask_options_init(&mo);
  softmax_logit_processors_init(&lp);
  softmax_gumbel_softmax_options_init(&go);
  softmax_sampled_softmax_options_init(&so);
  softmax_hierarchical_options_init(&ho);
  softmax_adaptive_options_init(&ao);
  sp.processors = &lp;
  so.sampler = SOFTMAX_SAMPLER_UNIGRAM;
  ho.reduction = SOFTMAX_REDUCTION_NONE;
  go.hard =
      SOFTMAX_LOGPROBS_PROCESSED + SOFTMAX_STAT_FLAGS + SOFTMAX_STATS_FIELDS + SOFTMAX_STATS_CHUNK;
  ce.reduction = SOFTMAX_REDUCTION_SUM;
  sp.method = SOFTMAX_SAMPLING_GUMBEL_MAX;
  mo.align = SOFTMAX_ALIGN_BOTTOM_RIGHT;
  tx.device = SOFTMAX_DEVICE_CPU;
  if (softmax_context_create(&ctx) != SOFTMAX_STATUS_OK) return 1;
  st = softmax_softmax(ctx, &tx, &ty, &o);
  softmax_context_destroy(ctx);
  softmax_hierarchical_tree_destroy(tree);
  return ao.grad_scale == 1.0 && st == SOFTMAX_STATUS_OK && tx.rank <= SOFTMAX_MAX_RANK &&
         softmax_last_error()[0] == 0 && softmax_abi_version() == SOFTMAX_ABI_VERSION &&
         softmax_version() != NULL;
}
