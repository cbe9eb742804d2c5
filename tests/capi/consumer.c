/* tests/capi/consumer.c: a C99 program using the installed library through pkg-config
 * (capi_consumer_c). Checks log_softmax (f64) and cross_entropy with its gradient (f32) against
 * a long double reference computed here, greedy sampling, the logit processors
 * (apply_penalties, and greedy sampling through softmax_sampling_params_t.processors) on values
 * worked out by hand, and one error path (status, message, output untouched). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <softmax/softmax.h>

static int failures = 0;

static void check(int ok, const char* what, double got, double want) {
  if (!ok) {
    printf("consumer.c: %s: got %.17g, want %.17g\n", what, got, want);
    ++failures;
  }
}

static void test_log_softmax(void) {
  const double x[2][5] = {{1.0, -2.0, 3.5, 0.25, 3.5}, {-1e3, -1e3 + 1, -1e3 - 7, -1e3, -1e3}};
  double y[2][5];
  const int64_t shape[2] = {2, 5};
  softmax_tensor_t tx = softmax_tensor_make((void*)x, SOFTMAX_DTYPE_F64, 2, shape);
  softmax_tensor_t ty = softmax_tensor_make(y, SOFTMAX_DTYPE_F64, 2, shape);
  int r, i;
  if (softmax_log_softmax(NULL, &tx, &ty, NULL) != SOFTMAX_STATUS_OK) {
    printf("consumer.c: log_softmax failed: %s\n", softmax_last_error());
    ++failures;
    return;
  }
  for (r = 0; r < 2; ++r) {
    long double m = x[r][0], s = 0;
    for (i = 1; i < 5; ++i) m = x[r][i] > m ? x[r][i] : m;
    for (i = 0; i < 5; ++i) s += expl((long double)x[r][i] - m);
    for (i = 0; i < 5; ++i) {
      const long double want = (long double)x[r][i] - m - logl(s);
      check(fabsl(y[r][i] - want) <= 6 * 0x1p-53L * fabsl(want) + 1e-300L, "log_softmax", y[r][i],
            (double)want);
    }
  }
}

static void test_cross_entropy(void) {
  const float logits[3][4] = {
      {2.0f, 1.0f, 0.1f, -1.0f}, {0.5f, 0.5f, 3.0f, 0.0f}, {-2.0f, 4.0f, 1.0f, 1.0f}};
  const int64_t targets[3] = {0, 3, 1};
  float loss = 0, grad[3][4];
  const int64_t ls[2] = {3, 4}, rs[1] = {3};
  softmax_tensor_t tl = softmax_tensor_make((void*)logits, SOFTMAX_DTYPE_F32, 2, ls);
  softmax_tensor_t tt = softmax_tensor_make((void*)targets, SOFTMAX_DTYPE_I64, 1, rs);
  softmax_tensor_t tloss = softmax_tensor_make(&loss, SOFTMAX_DTYPE_F32, 0, NULL);
  softmax_tensor_t tgrad = softmax_tensor_make(grad, SOFTMAX_DTYPE_F32, 2, ls);
  long double want_loss = 0;
  int r, c;
  if (softmax_cross_entropy(NULL, &tl, &tt, &tloss, &tgrad, NULL, NULL, NULL) !=
      SOFTMAX_STATUS_OK) {
    printf("consumer.c: cross_entropy failed: %s\n", softmax_last_error());
    ++failures;
    return;
  }
  /* Mean over rows of -log p_t; gradient (p - onehot(t)) / N. */
  for (r = 0; r < 3; ++r) {
    long double s = 0;
    for (c = 0; c < 4; ++c) s += expl((long double)logits[r][c]);
    want_loss += (logl(s) - logits[r][targets[r]]) / 3;
    for (c = 0; c < 4; ++c) {
      const long double g = (expl((long double)logits[r][c]) / s - (c == targets[r])) / 3;
      check(fabsl(grad[r][c] - g) <= 1e-6L, "cross_entropy grad", grad[r][c], (double)g);
    }
  }
  check(fabsl(loss - want_loss) <= 0x1p-20L * (1 + want_loss), "cross_entropy loss", loss,
        (double)want_loss);
}

static void test_greedy_sample(void) {
  const float logits[2][6] = {{0, 1, 5, 2, 5, -1}, {-3, -2, -1, -4, -5, -6}};
  int64_t tokens[2] = {-1, -1};
  const int64_t ls[2] = {2, 6}, ts[1] = {2};
  softmax_tensor_t tl = softmax_tensor_make((void*)logits, SOFTMAX_DTYPE_F32, 2, ls);
  softmax_tensor_t tt = softmax_tensor_make(tokens, SOFTMAX_DTYPE_I64, 1, ts);
  softmax_sampling_params_t p;
  softmax_sampling_params_init(&p);
  p.temperature = 0; /* greedy: the argmax, lowest id on ties */
  if (softmax_sample(NULL, &tl, &tt, &p, 1, 0) != SOFTMAX_STATUS_OK) {
    printf("consumer.c: sample failed: %s\n", softmax_last_error());
    ++failures;
    return;
  }
  check(tokens[0] == 2 && tokens[1] == 2, "greedy tokens", (double)tokens[0], 2);
}

static void test_apply_penalties(void) {
  /* Previous tokens 1, 1, 3 (one list for every row); repetition 2, frequency 0.5, presence
   * 0.25; bias +1.5 on token 4; token 0 banned. By hand (all exact in f64):
   *   x0 -inf; x1 = 3 / 2 - (2 * 0.5 + 0.25) = 0.25; x2 = -2; x3 = 0.5 / 2 - 0.75 = -0.5;
   *   x4 = -1 + 1.5 = 0.5. */
  const double x[5] = {1.0, 3.0, -2.0, 0.5, -1.0};
  const double want[5] = {-INFINITY, 0.25, -2.0, -0.5, 0.5};
  double y[5];
  const int64_t prev[3] = {1, 1, 3}, bias_ids[1] = {4}, banned[1] = {0};
  const double bias[1] = {1.5};
  const int64_t shape[2] = {1, 5}, ts[1] = {1};
  int64_t token = -1;
  softmax_tensor_t tx = softmax_tensor_make((void*)x, SOFTMAX_DTYPE_F64, 2, shape);
  softmax_tensor_t ty = softmax_tensor_make(y, SOFTMAX_DTYPE_F64, 2, shape);
  softmax_tensor_t tt = softmax_tensor_make(&token, SOFTMAX_DTYPE_I64, 1, ts);
  softmax_logit_processors_t lp;
  softmax_sampling_params_t p;
  int i;
  softmax_logit_processors_init(&lp);
  lp.prev_tokens = prev;
  lp.prev_tokens_count = 3;
  lp.repetition_penalty = 2.0;
  lp.frequency_penalty = 0.5;
  lp.presence_penalty = 0.25;
  lp.logit_bias_ids = bias_ids;
  lp.logit_bias_values = bias;
  lp.logit_bias_count = 1;
  lp.banned_tokens = banned;
  lp.banned_tokens_count = 1;
  if (softmax_apply_penalties(NULL, &tx, &ty, &lp) != SOFTMAX_STATUS_OK) {
    printf("consumer.c: apply_penalties failed: %s\n", softmax_last_error());
    ++failures;
    return;
  }
  for (i = 0; i < 5; ++i) check(y[i] == want[i], "apply_penalties", y[i], want[i]);
  /* Greedy on the processed logits: token 4 (0.5), not the raw argmax 1. */
  softmax_sampling_params_init(&p);
  p.temperature = 0;
  p.processors = &lp;
  if (softmax_sample(NULL, &tx, &tt, &p, 1, 0) != SOFTMAX_STATUS_OK) {
    printf("consumer.c: sample with processors failed: %s\n", softmax_last_error());
    ++failures;
    return;
  }
  check(token == 4, "greedy token after the processors", (double)token, 4);
}

static void test_error_path(void) {
  const float x[3] = {1, 2, 3};
  float y[3] = {7, 7, 7};
  const int64_t shape[1] = {3};
  softmax_tensor_t tx = softmax_tensor_make((void*)x, SOFTMAX_DTYPE_F32, 1, shape);
  softmax_tensor_t ty = softmax_tensor_make(y, SOFTMAX_DTYPE_F32, 1, shape);
  softmax_options_t o;
  const char* want = "softmax::softmax: argument 'axis' = 5: must be in [-1, 0]";
  softmax_status_t st;
  softmax_options_init(&o);
  o.axis = 5;
  st = softmax_softmax(NULL, &tx, &ty, &o);
  check(st == SOFTMAX_STATUS_INVALID_ARGUMENT, "status of axis 5", st,
        SOFTMAX_STATUS_INVALID_ARGUMENT);
  if (strncmp(softmax_last_error(), want, strlen(want)) != 0) {
    printf("consumer.c: message '%s', want it to start with '%s'\n", softmax_last_error(), want);
    ++failures;
  }
  check(y[0] == 7 && y[1] == 7 && y[2] == 7, "y after the error", y[0], 7);
}

int main(void) {
  if (strcmp(softmax_version(), SOFTMAX_VERSION_STRING) != 0) {
    printf("consumer.c: library %s, header %s\n", softmax_version(), SOFTMAX_VERSION_STRING);
    ++failures;
  }
  test_log_softmax();
  test_cross_entropy();
  test_greedy_sample();
  test_apply_penalties();
  test_error_path();
  if (failures == 0) printf("consumer.c ok (libsoftmax %s)\n", softmax_version());
  return failures == 0 ? 0 : 1;
}
