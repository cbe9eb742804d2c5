// python/bind_sampling.cc: the sampling family: sample, sample_from_probs, top_logprobs
// (softmax/sampling.hpp), apply_penalties (softmax/logit_processors.hpp), filtered_probs,
// token_logprobs, sample_without_replacement, speculative_verify (softmax/speculative.hpp) and
// beam_search_step (softmax/beam_search.hpp). Keyword parsing: sampling_args.hpp.
#include "softmax/sampling.hpp"

#include <cstring>
#include <string>

#include "common.hpp"
#include "sampling_args.hpp"
#include "softmax/beam_search.hpp"
#include "softmax/speculative.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

py::object sample_op(bool from_probs, py::handle x, py::handle num_samples, const SampleArgs& a,
                     const char* op) {
  const Operand xin = input(x, op, from_probs ? "probs" : "logits");
  std::vector<int64_t> shape{xin.view.shape.empty() ? 0 : xin.view.shape[0]};
  if (!num_samples.is_none()) {
    const auto d = py::cast<int64_t>(num_samples);
    if (d < 0) {
      throw py::value_error(std::string("softmax.") + op + ": num_samples = " + std::to_string(d) +
                            ": must be >= 0");
    }
    shape.push_back(d);
  }
  Operand tokens = new_output(xin.kind, shape, DType::i64, op);
  nogil([&] {
    if (from_probs) {
      softmax::sample_from_probs(xin.cview(), tokens.view, a.params, a.seed.scalar,
                                 a.offset.scalar);
    } else {
      softmax::sample(xin.cview(), tokens.view, a.params, a.seed.scalar, a.offset.scalar);
    }
  });
  return tokens.owner;
}

// An int64 array of any integer input (numpy, torch, sequences); a copy when needed.
py::array_t<int64_t, py::array::c_style> int64_array(py::handle obj, const char* op,
                                                     const char* arg) {
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  if (a.size() > 0 && a.dtype().kind() != 'i' && a.dtype().kind() != 'u') {
    throw py::type_error(std::string("softmax.") + op + ": " + arg + " must be integers, not " +
                         py::str(a.dtype()).cast<std::string>());
  }
  return np.attr("ascontiguousarray")(a, "int64");
}

softmax::ConstTensorView i64_view(const py::array_t<int64_t, py::array::c_style>& a) {
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  return softmax::ConstTensorView(a.data(), DType::i64, shape);
}

#define SOFTMAX_PY_FILTER_DOC                                                                  \
  "temperature : float or sequence of float (one per row), optional\n"                         \
  "    0 = greedy (argmax, lowest id on ties); otherwise finite and > 0. Default 1.\n"         \
  "top_k : int or sequence of int, optional\n"                                                 \
  "    Keep the k most probable tokens; 0 or -1 = off.\n"                                      \
  "top_p : float or sequence of float, optional\n"                                             \
  "    Keep the smallest most-probable set whose probability reaches p; in (0, 1], 1 = off.\n" \
  "min_p : float or sequence of float, optional\n"                                             \
  "    Keep tokens with ``p >= min_p * p_max``; in [0, 1], 0 = off.\n"

#define SOFTMAX_PY_SEED_DOC                                                                \
  "seed : int or sequence of int (one per row), optional\n"                                \
  "    Philox key (64 bits); per row: one seed per request.\n"                             \
  "offset : int or sequence of int, optional\n"                                            \
  "    Philox counter offset (e.g. the decoding step), 64 bits, scalar or per row.\n"      \
  "streams : sequence of int, shape (B,), optional\n"                                      \
  "    Philox stream per row, integers in [0, 2^64) (e.g. request ids); default the row\n" \
  "    index.\n"

#define SOFTMAX_PY_PROCESSORS_DOC                                                               \
  "prev_tokens : array_like of int, optional\n"                                                 \
  "    Earlier token ids: 1-d (the same list for every row), 2-d (B, L) padded with -1, or\n"   \
  "    one 1-d sequence per row. Repeats count (frequency penalty).\n"                          \
  "repetition_penalty : float or sequence of float, optional\n"                                 \
  "    CTRL rule on prev_tokens: positive logits divided, negative multiplied; > 0, 1 = off.\n" \
  "presence_penalty, frequency_penalty : float or sequence of float, optional\n"                \
  "    OpenAI's: ``x -= count * frequency_penalty + (count > 0) * presence_penalty``.\n"        \
  "logit_bias : dict {id: bias}, (ids, biases) pair, or one dict per row, optional\n"           \
  "    Added to the logits (after the penalties); -inf bans.\n"                                 \
  "banned_tokens : array_like of int, optional\n"                                               \
  "    Ids never drawn (same forms as prev_tokens).\n"                                          \
  "min_tokens : int or sequence of int, optional\n"                                             \
  "    While num_generated < min_tokens, the eos_token_ids are never drawn.\n"                  \
  "eos_token_ids : array_like of int, optional\n"                                               \
  "num_generated : int or sequence of int, optional\n"                                          \
  "    Tokens generated so far; default the length of the row's prev_tokens.\n"

#define SOFTMAX_PY_PROCESSORS_SIG                                                           \
  "prev_tokens=None, repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0, " \
  "logit_bias=None, banned_tokens=None, min_tokens=0, eos_token_ids=None, num_generated=None"

constexpr const char* kSampleDoc =
    "sample(logits, num_samples=None, *, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, "
    "method='inverse_cdf', seed=0, offset=0, streams=None, " SOFTMAX_PY_PROCESSORS_SIG
    ", threads=0)\n\n"
    "Draws next tokens from logits: logit processors (penalties, bias, bans, min length), then\n"
    "temperature, top-k, top-p, min-p, then a draw.\n\n"
    "A row's tokens depend only on its logits, parameters, seed, offset and stream (not on\n"
    "the batch or thread count). A zero-probability token is never returned.\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "    float16, float32, float64 (bfloat16 via torch), any strides.\n"
    "num_samples : int, optional\n"
    "    Draws per row (draw d uses offset + d); None = one draw, tokens of shape "
    "(B,).\n" SOFTMAX_PY_FILTER_DOC
    "method : {'inverse_cdf', 'gumbel_max'}, optional\n"
    "    Drawing method (same distribution, different random streams).\n" SOFTMAX_PY_SEED_DOC
        SOFTMAX_PY_PROCESSORS_DOC
    "threads : int, optional\n    Worker threads over rows, 0 = OpenMP default.\n"
    "\nReturns\n-------\n"
    "tokens : ndarray or tensor of int64, shape (B,) or (B, num_samples)\n"
    "    Same container kind as `logits`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Bad shapes or parameters, a row holding NaN or +inf or all -inf.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.sample(np.array([[0.0, 5.0, 1.0]]), temperature=0)\n"
    "array([1])\n"
    ">>> softmax.sample(np.array([[0.0, 5.0, 1.0]]), temperature=0, banned_tokens=[1])\n"
    "array([2])\n";

constexpr const char* kSampleFromProbsDoc =
    "sample_from_probs(probs, num_samples=None, *, temperature=1.0, top_k=0, top_p=1.0, "
    "min_p=0.0, method='inverse_cdf', seed=0, offset=0, streams=None, threads=0)\n\n"
    "As :func:`sample`, from probabilities (each row normalised by its sum); no logit\n"
    "processors.\n\n"
    "Parameters\n----------\n"
    "probs : array_like or tensor, shape (B, V)\n"
    "    Finite, >= 0, not all zero in a row; float16, float32, float64 (bfloat16 via torch).\n"
    "num_samples : int, optional\n    Draws per row.\n" SOFTMAX_PY_FILTER_DOC
    "    (temperature must be 1 or 0 here.)\n"
    "method : {'inverse_cdf', 'gumbel_max'}, optional\n" SOFTMAX_PY_SEED_DOC
    "threads : int, optional\n"
    "\nReturns\n-------\n"
    "tokens : ndarray or tensor of int64, shape (B,) or (B, num_samples)\n"
    "    Same container kind as `probs`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Negative/NaN/inf probabilities, a zero row, bad parameters.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.sample_from_probs(np.array([[0.0, 1.0, 0.0]]), seed=7)\n"
    "array([1])\n";

constexpr const char* kTopLogprobsDoc =
    "top_logprobs(logits, n, *, temperature=1.0, threads=0, mode=None, top_k=0, top_p=1.0, "
    "min_p=0.0, " SOFTMAX_PY_PROCESSORS_SIG
    ")\n\n"
    "The n most probable tokens of each row and their log-probabilities, most probable first\n"
    "(lower id first on ties).\n\n"
    "mode=None: under softmax(logits / temperature) (vLLM's raw log-probs at temperature 1).\n"
    "mode='raw': under softmax(logits) whatever the temperature (vLLM's raw_logprobs; the\n"
    "CLI's --logprobs-mode raw).\n"
    "mode='processed': under the distribution :func:`sample` draws from with the same\n"
    "parameters (processors, temperature, top-k / top-p / min-p, renormalised); tokens of\n"
    "probability 0 follow in id order with -inf.\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "    float16, float32, float64 (bfloat16 via torch).\n"
    "n : int\n    0 <= n <= V.\n"
    "temperature : float (or per row with mode='processed'), optional\n    Finite and > 0 "
    "(0 = greedy with mode='processed').\n"
    "threads : int, optional\n    Worker threads, 0 = OpenMP default.\n"
    "mode : {None, 'raw', 'processed'}, optional\n"
    "top_k, top_p, min_p, prev_tokens, ... : as :func:`sample` (mode='processed' only).\n\n"
    "Returns\n-------\n"
    "ids : ndarray or tensor of int64, shape (B, n)\n    Token ids.\n"
    "logprobs : ndarray or tensor, shape (B, n)\n"
    "    float32 (float64 for float64 logits); same container kind as `logits`.\n\n"
    "Raises\n------\n"
    "ValueError\n    n out of range, bad parameters, rows holding NaN or +inf or all -inf.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> ids, lp = softmax.top_logprobs(np.log(np.array([[0.2, 0.5, 0.3]])), 2)\n"
    ">>> ids, np.round(np.exp(lp), 6)\n"
    "(array([[1, 2]]), array([[0.5, 0.3]]))\n";

constexpr const char* kApplyPenaltiesDoc =
    "apply_penalties(logits, prev_tokens=None, *, repetition_penalty=1.0, presence_penalty=0.0, "
    "frequency_penalty=0.0, logit_bias=None, banned_tokens=None, min_tokens=0, "
    "eos_token_ids=None, num_generated=None, threads=0)\n\n"
    "The processed logits :func:`sample` draws from before temperature and the filters:\n"
    "repetition penalty (CTRL), presence and frequency penalties (OpenAI), logit bias, banned\n"
    "tokens, minimum-length EOS suppression, in that order (vLLM's).\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "    float16, float32, float64 (bfloat16 via torch), any strides.\n" SOFTMAX_PY_PROCESSORS_DOC
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "ndarray or tensor, shape (B, V)\n    The logits' dtype and container kind.\n\n"
    "Raises\n------\n"
    "ValueError\n    A penalty <= 0 (repetition) or not finite, ids out of range, bad shapes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.apply_penalties(np.array([[2.0, -2.0, 1.0]]), [0, 1], repetition_penalty=2.0)\n"
    "array([[ 1., -4.,  1.]])\n";

constexpr const char* kFilteredProbsDoc =
    "filtered_probs(logits, *, temperature=1.0, top_k=0, top_p=1.0, "
    "min_p=0.0, " SOFTMAX_PY_PROCESSORS_SIG
    ", threads=0)\n\n"
    "The distribution :func:`sample` draws from with these parameters: processors,\n"
    "temperature, top-k / top-p / min-p, renormalised over the kept tokens (FlashInfer's\n"
    "top_k_renorm_probs / top_p_renorm_probs). A greedy row is one-hot at its argmax.\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n" SOFTMAX_PY_FILTER_DOC SOFTMAX_PY_PROCESSORS_DOC
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "probs : ndarray or tensor, shape (B, V)\n    float32 (float64 for float64 logits).\n\n"
    "Raises\n------\n"
    "ValueError\n    As :func:`sample`.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.filtered_probs(np.log(np.array([[0.5, 0.25, 0.25]])), top_k=1)\n"
    "array([[1., 0., 0.]])\n";

constexpr const char* kTokenLogprobsDoc =
    "token_logprobs(logits, tokens, *, mode='raw', temperature=1.0, top_k=0, top_p=1.0, "
    "min_p=0.0, " SOFTMAX_PY_PROCESSORS_SIG
    ", threads=0)\n\n"
    "The log-probability of given tokens (e.g. the sampled ones) under each row's raw\n"
    "distribution (log_softmax(logits), mode='raw') or processed one (what :func:`sample`\n"
    "draws from, mode='processed'; -inf for a filtered-out token), as vLLM's logprobs_mode.\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "tokens : array_like of int, shape (B,) or (B, D)\n    Ids in [0, V).\n"
    "mode : {'raw', 'processed'}, optional\n" SOFTMAX_PY_FILTER_DOC SOFTMAX_PY_PROCESSORS_DOC
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "logprobs : ndarray or tensor, the tokens' shape\n    float32 (float64 for float64 logits).\n\n"
    "Raises\n------\n"
    "ValueError\n    As :func:`sample`; token ids out of range.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> x = np.log(np.array([[0.5, 0.25, 0.25]]))\n"
    ">>> np.exp(softmax.token_logprobs(x, [0], mode='processed', top_k=2))\n"
    "array([0.66666667])\n";

constexpr const char* kWithoutReplacementDoc =
    "sample_without_replacement(logits, k, *, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, "
    "seed=0, offset=0, streams=None, " SOFTMAX_PY_PROCESSORS_SIG
    ", threads=0)\n\n"
    "k distinct tokens per row drawn without replacement, in draw order (Gumbel-top-k over\n"
    "the processed distribution; exact). The first column is :func:`sample`'s draw with\n"
    "method='gumbel_max'. A greedy row gives its k largest logits.\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "k : int\n    >= 0, at most the tokens of positive probability after the "
    "filters.\n" SOFTMAX_PY_FILTER_DOC SOFTMAX_PY_SEED_DOC SOFTMAX_PY_PROCESSORS_DOC
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "tokens : ndarray or tensor of int64, shape (B, k)\n\n"
    "Raises\n------\n"
    "ValueError\n    As :func:`sample`; k too large for a row.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.sample_without_replacement(np.array([[0.0, 3.0, 2.0]]), 2, temperature=0)\n"
    "array([[1, 2]])\n";

constexpr const char* kSpeculativeDoc =
    "speculative_verify(draft_tokens, draft_probs, target_probs, *, seed=0, offset=0, "
    "streams=None, threads=0)\n\n"
    "Speculative-decoding verification (Leviathan et al. 2023): accept the longest prefix of\n"
    "the draft tokens by the rejection rule min(1, p / q), then a correction token from the\n"
    "normalised residual max(0, p - q), or a bonus token from the last target row when all\n"
    "are accepted. The emitted tokens follow the target distributions exactly.\n\n"
    "Parameters\n----------\n"
    "draft_tokens : array_like of int, shape (B, k)\n"
    "draft_probs : array_like or tensor, shape (B, k, V)\n    float32 or float64 rows summing to "
    "1.\n"
    "target_probs : array_like or tensor, shape (B, k + 1, V)\n"
    "seed, offset : int, optional\n    Philox key and counter offset.\n"
    "streams : sequence of int, shape (B,), optional\n    Philox stream per row (request ids).\n"
    "threads : int, optional\n\n"
    "Returns\n-------\n"
    "num_accepted : ndarray or tensor of int64, shape (B,)\n"
    "tokens : ndarray or tensor of int64, shape (B, k + 1)\n"
    "    Accepted drafts, then the correction or bonus token, then -1 padding.\n\n"
    "Raises\n------\n"
    "ValueError\n    Rows that are not distributions, ids out of range, bad shapes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> p = np.array([[[0.0, 1.0], [1.0, 0.0]]]); q = np.array([[[0.0, 1.0]]])\n"
    ">>> softmax.speculative_verify([[1]], q, p)\n"
    "(array([1]), array([[1, 0]]))\n";

constexpr const char* kBeamDoc =
    "beam_search_step(log_probs, beam_scores, beam_width)\n\n"
    "The 2 * beam_width best continuations (beam, token) of B beams by beam_scores[b] +\n"
    "log_probs[b, v] (in float64), best first; ties by lower beam, then lower token. Exact\n"
    "selection without a full sort.\n\n"
    "Parameters\n----------\n"
    "log_probs : array_like or tensor, shape (B, V)\n    float32 or float64.\n"
    "beam_scores : array_like or tensor, shape (B,)\n"
    "beam_width : int\n    >= 1.\n\n"
    "Returns\n-------\n"
    "beam_indices, tokens : ndarray or tensor of int64, shape (2 * beam_width,)\n"
    "scores : ndarray or tensor, shape (2 * beam_width,)\n"
    "    float64 if either input is float64, else float32.\n\n"
    "Raises\n------\n"
    "ValueError\n    NaN / +inf inputs, fewer than 2 * beam_width finite candidates.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.beam_search_step(np.log([[0.6, 0.4], [0.9, 0.1]]), np.log([0.5, 0.5]), 1)[:2]\n"
    "(array([1, 0]), array([0, 0]))\n";

// The processors' pybind arguments, in SOFTMAX_PY_PROCESSORS_SIG order.
#define SOFTMAX_PY_PROCESSORS_ARGS                                           \
  py::arg("prev_tokens") = py::none(), py::arg("repetition_penalty") = 1.0,  \
  py::arg("presence_penalty") = 0.0, py::arg("frequency_penalty") = 0.0,     \
  py::arg("logit_bias") = py::none(), py::arg("banned_tokens") = py::none(), \
  py::arg("min_tokens") = 0, py::arg("eos_token_ids") = py::none(),          \
  py::arg("num_generated") = py::none()
#define SOFTMAX_PY_PROCESSORS_PARAMS                                                  \
  py::handle prev, py::handle rep, py::handle pres, py::handle freq, py::handle bias, \
      py::handle banned, py::handle min_tokens, py::handle eos, py::handle num_generated
#define SOFTMAX_PY_PROCESSORS_PASS \
  prev, rep, pres, freq, bias, banned, min_tokens, eos, num_generated

// Logits-shaped float output: f64 for f64 logits, else f32.
DType real_dtype(const Operand& x) { return x.view.dtype == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace

void register_sampling(py::module_& m) {
  m.def(
      "sample",
      [](py::handle x, py::handle num_samples, py::handle t, py::handle k, py::handle p,
         py::handle mp, const std::string& method, py::handle seed, py::handle offset,
         py::handle streams, SOFTMAX_PY_PROCESSORS_PARAMS, int threads) {
        const char* op = "sample";
        SampleArgs a(op, t, k, p, mp, method, seed, offset, streams, threads);
        ProcessorArgs pa(op, SOFTMAX_PY_PROCESSORS_PASS);
        a.params.processors = &pa.lp;
        return sample_op(false, x, num_samples, a, op);
      },
      py::arg("logits"), py::arg("num_samples") = py::none(), py::kw_only(),
      py::arg("temperature") = 1.0, py::arg("top_k") = 0, py::arg("top_p") = 1.0,
      py::arg("min_p") = 0.0, py::arg("method") = "inverse_cdf", py::arg("seed") = 0,
      py::arg("offset") = 0, py::arg("streams") = py::none(), SOFTMAX_PY_PROCESSORS_ARGS,
      py::arg("threads") = 0, kSampleDoc);
  m.def(
      "sample_from_probs",
      [](py::handle x, py::handle num_samples, py::handle t, py::handle k, py::handle p,
         py::handle mp, const std::string& method, py::handle seed, py::handle offset,
         py::handle streams, int threads) {
        const char* op = "sample_from_probs";
        SampleArgs a(op, t, k, p, mp, method, seed, offset, streams, threads);
        return sample_op(true, x, num_samples, a, op);
      },
      py::arg("probs"), py::arg("num_samples") = py::none(), py::kw_only(),
      py::arg("temperature") = 1.0, py::arg("top_k") = 0, py::arg("top_p") = 1.0,
      py::arg("min_p") = 0.0, py::arg("method") = "inverse_cdf", py::arg("seed") = 0,
      py::arg("offset") = 0, py::arg("streams") = py::none(), py::arg("threads") = 0,
      kSampleFromProbsDoc);
  m.def(
      "top_logprobs",
      [](py::handle x, int64_t n, py::handle temperature, int threads, py::handle mode,
         py::handle k, py::handle p, py::handle mp, SOFTMAX_PY_PROCESSORS_PARAMS) {
        const char* op = "top_logprobs";
        const Operand xin = input(x, op, "logits");
        const int t = parse_threads(threads, op);
        softmax::TopLogprobs r;
        if (mode.is_none()) {
          double temp = 1.0;
          try {
            temp = py::cast<double>(temperature);
          } catch (py::cast_error&) {
            throw py::type_error(
                "softmax.top_logprobs: temperature must be a number "
                "(per-row values need mode='processed')");
          }
          nogil([&] { r = softmax::top_logprobs(xin.cview(), n, temp, t); });
        } else if (py::isinstance<py::str>(mode) && py::cast<std::string>(mode) == "raw") {
          nogil([&] { r = softmax::top_logprobs(xin.cview(), n, 1.0, t); });
        } else if (py::isinstance<py::str>(mode) && py::cast<std::string>(mode) == "processed") {
          SampleArgs a(op, temperature, k, p, mp, "inverse_cdf", py::int_(0), py::int_(0),
                       py::none(), threads);
          ProcessorArgs pa(op, SOFTMAX_PY_PROCESSORS_PASS);
          a.params.processors = &pa.lp;
          nogil([&] {
            r = softmax::top_logprobs(xin.cview(), n, a.params, softmax::LogprobsMode::kProcessed);
          });
        } else {
          throw py::value_error(
              "softmax.top_logprobs: mode = " + py::str(mode).cast<std::string>() +
              ": must be None, 'raw' or 'processed'");
        }
        return top_logprobs_arrays(xin, r, op);
      },
      py::arg("logits"), py::arg("n"), py::kw_only(), py::arg("temperature") = 1.0,
      py::arg("threads") = 0, py::arg("mode") = py::none(), py::arg("top_k") = 0,
      py::arg("top_p") = 1.0, py::arg("min_p") = 0.0, SOFTMAX_PY_PROCESSORS_ARGS, kTopLogprobsDoc);
  m.def(
      "apply_penalties",
      [](py::handle x, SOFTMAX_PY_PROCESSORS_PARAMS, int threads) {
        const char* op = "apply_penalties";
        const Operand xin = input(x, op, "logits");
        ProcessorArgs pa(op, SOFTMAX_PY_PROCESSORS_PASS);
        const int t = parse_threads(threads, op);
        Operand out = new_output(xin.kind, xin.view.shape, xin.view.dtype, op);
        nogil([&] { softmax::apply_penalties(xin.cview(), out.view, pa.lp, t); });
        return out.owner;
      },
      py::arg("logits"), py::arg("prev_tokens") = py::none(), py::kw_only(),
      py::arg("repetition_penalty") = 1.0, py::arg("presence_penalty") = 0.0,
      py::arg("frequency_penalty") = 0.0, py::arg("logit_bias") = py::none(),
      py::arg("banned_tokens") = py::none(), py::arg("min_tokens") = 0,
      py::arg("eos_token_ids") = py::none(), py::arg("num_generated") = py::none(),
      py::arg("threads") = 0, kApplyPenaltiesDoc);
  m.def(
      "filtered_probs",
      [](py::handle x, py::handle t, py::handle k, py::handle p, py::handle mp,
         SOFTMAX_PY_PROCESSORS_PARAMS, int threads) {
        const char* op = "filtered_probs";
        SampleArgs a(op, t, k, p, mp, "inverse_cdf", py::int_(0), py::int_(0), py::none(), threads);
        ProcessorArgs pa(op, SOFTMAX_PY_PROCESSORS_PASS);
        a.params.processors = &pa.lp;
        const Operand xin = input(x, op, "logits");
        Operand out = new_output(xin.kind, xin.view.shape, real_dtype(xin), op);
        nogil([&] { softmax::filtered_probs(xin.cview(), out.view, a.params); });
        return out.owner;
      },
      py::arg("logits"), py::kw_only(), py::arg("temperature") = 1.0, py::arg("top_k") = 0,
      py::arg("top_p") = 1.0, py::arg("min_p") = 0.0, SOFTMAX_PY_PROCESSORS_ARGS,
      py::arg("threads") = 0, kFilteredProbsDoc);
  m.def(
      "token_logprobs",
      [](py::handle x, py::handle tokens, const std::string& mode, py::handle t, py::handle k,
         py::handle p, py::handle mp, SOFTMAX_PY_PROCESSORS_PARAMS, int threads) {
        const char* op = "token_logprobs";
        if (mode != "raw" && mode != "processed") {
          throw py::value_error("softmax.token_logprobs: mode = '" + mode +
                                "': must be 'raw' or 'processed'");
        }
        SampleArgs a(op, t, k, p, mp, "inverse_cdf", py::int_(0), py::int_(0), py::none(), threads);
        ProcessorArgs pa(op, SOFTMAX_PY_PROCESSORS_PASS);
        a.params.processors = &pa.lp;
        const Operand xin = input(x, op, "logits");
        const auto tok = int64_array(tokens, op, "tokens");
        const softmax::ConstTensorView tv = i64_view(tok);
        Operand out = new_output(xin.kind, tv.shape, real_dtype(xin), op);
        const auto m_ =
            mode == "raw" ? softmax::LogprobsMode::kRaw : softmax::LogprobsMode::kProcessed;
        nogil([&] { softmax::token_logprobs(xin.cview(), tv, out.view, a.params, m_); });
        return out.owner;
      },
      py::arg("logits"), py::arg("tokens"), py::kw_only(), py::arg("mode") = "raw",
      py::arg("temperature") = 1.0, py::arg("top_k") = 0, py::arg("top_p") = 1.0,
      py::arg("min_p") = 0.0, SOFTMAX_PY_PROCESSORS_ARGS, py::arg("threads") = 0,
      kTokenLogprobsDoc);
  m.def(
      "sample_without_replacement",
      [](py::handle x, int64_t k, py::handle t, py::handle tk, py::handle p, py::handle mp,
         py::handle seed, py::handle offset, py::handle streams, SOFTMAX_PY_PROCESSORS_PARAMS,
         int threads) {
        const char* op = "sample_without_replacement";
        SampleArgs a(op, t, tk, p, mp, "inverse_cdf", seed, offset, streams, threads);
        ProcessorArgs pa(op, SOFTMAX_PY_PROCESSORS_PASS);
        a.params.processors = &pa.lp;
        if (k < 0)
          throw py::value_error("softmax.sample_without_replacement: k = " + std::to_string(k) +
                                ": must be >= 0");
        const Operand xin = input(x, op, "logits");
        const int64_t rows = xin.view.shape.empty() ? 0 : xin.view.shape[0];
        Operand out = new_output(xin.kind, {rows, k}, DType::i64, op);
        nogil([&] {
          softmax::sample_without_replacement(xin.cview(), out.view, a.params, a.seed.scalar,
                                              a.offset.scalar);
        });
        return out.owner;
      },
      py::arg("logits"), py::arg("k"), py::kw_only(), py::arg("temperature") = 1.0,
      py::arg("top_k") = 0, py::arg("top_p") = 1.0, py::arg("min_p") = 0.0, py::arg("seed") = 0,
      py::arg("offset") = 0, py::arg("streams") = py::none(), SOFTMAX_PY_PROCESSORS_ARGS,
      py::arg("threads") = 0, kWithoutReplacementDoc);
  m.def(
      "speculative_verify",
      [](py::handle draft_tokens, py::handle draft_probs, py::handle target_probs,
         py::handle seed_arg, py::handle offset_arg, py::handle streams, int threads) {
        const char* op = "speculative_verify";
        const uint64_t seed = u64_scalar(seed_arg, op, "seed");
        const uint64_t offset = u64_scalar(offset_arg, op, "offset");
        const auto dt = int64_array(draft_tokens, op, "draft_tokens");
        const Operand q = input(draft_probs, op, "draft_probs");
        const Operand p = input(target_probs, op, "target_probs");
        std::vector<uint64_t> st;
        if (!streams.is_none()) st = per_row_u64s(streams, op, "streams", "None (the row index)");
        const int t = parse_threads(threads, op);
        const softmax::ConstTensorView dv = i64_view(dt);
        const int64_t b = dv.rank() >= 1 ? dv.shape[0] : 0, k = dv.rank() == 2 ? dv.shape[1] : 0;
        Operand na = new_output(p.kind, {b}, DType::i64, op);
        Operand tok = new_output(p.kind, {b, k + 1}, DType::i64, op);
        nogil([&] {
          softmax::speculative_verify(dv, q.cview(), p.cview(), na.view, tok.view, seed, offset, st,
                                      t);
        });
        return py::make_tuple(na.owner, tok.owner);
      },
      py::arg("draft_tokens"), py::arg("draft_probs"), py::arg("target_probs"), py::kw_only(),
      py::arg("seed") = 0, py::arg("offset") = 0, py::arg("streams") = py::none(),
      py::arg("threads") = 0, kSpeculativeDoc);
  m.def(
      "beam_search_step",
      [](py::handle log_probs, py::handle beam_scores, int64_t beam_width) {
        const char* op = "beam_search_step";
        const Operand lp = input(log_probs, op, "log_probs");
        const Operand bs = input(beam_scores, op, "beam_scores");
        const int64_t m2 = beam_width >= 1 && beam_width <= (int64_t{1} << 40) ? 2 * beam_width : 0;
        const DType st =
            lp.view.dtype == DType::f64 || bs.view.dtype == DType::f64 ? DType::f64 : DType::f32;
        Operand bi = new_output(lp.kind, {m2}, DType::i64, op);
        Operand tk = new_output(lp.kind, {m2}, DType::i64, op);
        Operand sc = new_output(lp.kind, {m2}, st, op);
        nogil([&] {
          softmax::beam_search_step(lp.cview(), bs.cview(), beam_width, bi.view, tk.view, sc.view);
        });
        return py::make_tuple(bi.owner, tk.owner, sc.owner);
      },
      py::arg("log_probs"), py::arg("beam_scores"), py::arg("beam_width"), kBeamDoc);
}

}  // namespace softmax_py
