// python/bind_sampling.cc: sample, sample_from_probs, top_logprobs (softmax/sampling.hpp).
#include "softmax/sampling.hpp"

#include <cstring>
#include <string>

#include "common.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

// A scalar or per-row parameter; owns the per-row values while the call runs.
template <class T>
struct RowParam {
  std::vector<T> values;
  T scalar{};
  bool per_row = false;

  RowParam(py::handle h, const char* op, const char* name) {
    if (py::isinstance<py::float_>(h) || py::isinstance<py::int_>(h) ||
        (py::isinstance<py::array>(h) && py::reinterpret_borrow<py::array>(h).ndim() == 0) ||
        (py::hasattr(h, "__float__") && !py::hasattr(h, "__len__"))) {
      try {
        scalar = py::cast<T>(h);
      } catch (py::cast_error&) {
        throw py::type_error(std::string("softmax.") + op + ": " + name + " must be a number "
                             "or one number per row");
      }
      return;
    }
    py::array_t<T, py::array::c_style | py::array::forcecast> a =
        py::module_::import("numpy").attr("ravel")(h);
    values.assign(a.data(), a.data() + a.size());
    per_row = true;
  }
  softmax::PerRow<T> get() const {
    return per_row ? softmax::PerRow<T>(std::span<const T>(values)) : softmax::PerRow<T>(scalar);
  }
};

// streams: integers in [0, 2^64) (any integer dtype or Python ints); never wrapped or rounded.
std::vector<uint64_t> parse_streams(py::handle obj, const char* op) {
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("ravel")(obj);
  const char kind = a.dtype().kind();
  if (kind == 'O') a = np.attr("ravel")(np.attr("array")(obj, "uint64"));  // ints >= 2^63 mix
  else if (kind != 'i' && kind != 'u' && a.size() > 0) {
    throw py::type_error(std::string("softmax.") + op + ": streams must be integers, not " +
                         py::str(a.dtype()).cast<std::string>());
  }
  if (a.dtype().kind() == 'i' && py::cast<bool>(np.attr("any")(np.attr("less")(a, 0)))) {
    throw py::value_error(std::string("softmax.") + op + ": streams must be in [0, 2^64)");
  }
  py::array_t<uint64_t, py::array::c_style | py::array::forcecast> s = a;
  return std::vector<uint64_t>(s.data(), s.data() + s.size());
}

struct SampleArgs {
  RowParam<double> temperature;
  RowParam<int64_t> top_k;
  RowParam<double> top_p;
  RowParam<double> min_p;
  std::vector<uint64_t> streams;
  softmax::SamplingParams params;

  SampleArgs(const char* op, py::handle t, py::handle k, py::handle p, py::handle mp,
             const std::string& method, py::handle streams_obj, int threads)
      : temperature(t, op, "temperature"),
        top_k(k, op, "top_k"),
        top_p(p, op, "top_p"),
        min_p(mp, op, "min_p") {
    params.temperature = temperature.get();
    params.top_k = top_k.get();
    params.top_p = top_p.get();
    params.min_p = min_p.get();
    if (method == "inverse_cdf") {
      params.method = softmax::SamplingMethod::kInverseCdf;
    } else if (method == "gumbel_max") {
      params.method = softmax::SamplingMethod::kGumbelMax;
    } else {
      throw py::value_error(std::string("softmax.") + op + ": method = '" + method +
                            "': must be 'inverse_cdf' or 'gumbel_max'");
    }
    if (!streams_obj.is_none()) {
      streams = parse_streams(streams_obj, op);
      params.streams = streams;
    }
    params.threads = parse_threads(threads, op);
  }
};

py::object sample_op(bool from_probs, py::handle x, py::handle num_samples, py::handle t,
                     py::handle k, py::handle p, py::handle mp, const std::string& method,
                     uint64_t seed, uint64_t offset, py::handle streams, int threads) {
  const char* op = from_probs ? "sample_from_probs" : "sample";
  SampleArgs a(op, t, k, p, mp, method, streams, threads);
  const Operand xin = input(x, op, from_probs ? "probs" : "logits");
  std::vector<int64_t> shape{xin.view.shape.empty() ? 0 : xin.view.shape[0]};
  if (!num_samples.is_none()) {
    const auto d = py::cast<int64_t>(num_samples);
    if (d < 0) {
      throw py::value_error(std::string("softmax.") + op + ": num_samples = " +
                            std::to_string(d) + ": must be >= 0");
    }
    shape.push_back(d);
  }
  Operand tokens = new_output(xin.kind, shape, DType::i64, op);
  nogil([&] {
    if (from_probs) softmax::sample_from_probs(xin.cview(), tokens.view, a.params, seed, offset);
    else softmax::sample(xin.cview(), tokens.view, a.params, seed, offset);
  });
  return tokens.owner;
}

#define SOFTMAX_PY_SAMPLE_PARAMS_DOC                                                            \
  "num_samples : int, optional\n"                                                               \
  "    Draws per row (draw d uses offset + d); None = one draw, tokens of shape (B,).\n"        \
  "temperature : float or sequence of float (one per row), optional\n"                          \
  "    0 = greedy (argmax, lowest id on ties); otherwise finite and > 0. Default 1.\n"          \
  "top_k : int or sequence of int, optional\n"                                                  \
  "    Keep the k most probable tokens; 0 = off.\n"                                             \
  "top_p : float or sequence of float, optional\n"                                              \
  "    Keep the smallest most-probable set whose probability reaches p; in (0, 1], 1 = off.\n"  \
  "min_p : float or sequence of float, optional\n"                                              \
  "    Keep tokens with ``p >= min_p * p_max``; in [0, 1], 0 = off.\n"                          \
  "method : {'inverse_cdf', 'gumbel_max'}, optional\n"                                          \
  "    Drawing method (same distribution, different random streams).\n"                         \
  "seed : int, optional\n"                                                                      \
  "    Philox key (64 bits).\n"                                                                 \
  "offset : int, optional\n"                                                                    \
  "    Philox counter offset (e.g. the decoding step).\n"                                       \
  "streams : sequence of int, shape (B,), optional\n"                                           \
  "    Philox stream per row, integers in [0, 2^64) (e.g. request ids); default the row\n"    \
  "    index.\n"                                                                                \
  "threads : int, optional\n"                                                                   \
  "    Worker threads over rows, 0 = OpenMP default.\n"

constexpr const char* kSampleDoc =
    "sample(logits, num_samples=None, *, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, "
    "method='inverse_cdf', seed=0, offset=0, streams=None, threads=0)\n\n"
    "Draws next tokens from logits: temperature, then top-k, top-p, min-p, then a draw.\n\n"
    "A row's tokens depend only on its logits, parameters, seed, offset and stream (not on\n"
    "the batch or thread count). A zero-probability token is never returned.\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "    float16, float32, float64 (bfloat16 via torch), any strides.\n" SOFTMAX_PY_SAMPLE_PARAMS_DOC
    "\nReturns\n-------\n"
    "tokens : ndarray or tensor of int64, shape (B,) or (B, num_samples)\n"
    "    Same container kind as `logits`.\n\n"
    "Raises\n------\n"
    "ValueError\n    Bad shapes or parameters, a row holding NaN or +inf or all -inf.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> softmax.sample(np.array([[0.0, 5.0, 1.0]]), temperature=0)\n"
    "array([1])\n";

constexpr const char* kSampleFromProbsDoc =
    "sample_from_probs(probs, num_samples=None, *, temperature=1.0, top_k=0, top_p=1.0, "
    "min_p=0.0, method='inverse_cdf', seed=0, offset=0, streams=None, threads=0)\n\n"
    "As :func:`sample`, from probabilities (each row normalised by its sum).\n\n"
    "Parameters\n----------\n"
    "probs : array_like or tensor, shape (B, V)\n"
    "    Finite, >= 0, not all zero in a row; float16, float32, float64 (bfloat16 via torch).\n"
    SOFTMAX_PY_SAMPLE_PARAMS_DOC
    "    (temperature must be 1 or 0 here.)\n"
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
    "top_logprobs(logits, n, *, temperature=1.0, threads=0)\n\n"
    "The n most probable tokens of each row and their log-probabilities under\n"
    "softmax(logits / temperature), most probable first (lower id first on ties).\n\n"
    "Parameters\n----------\n"
    "logits : array_like or tensor, shape (B, V)\n"
    "    float16, float32, float64 (bfloat16 via torch).\n"
    "n : int\n    0 <= n <= V.\n"
    "temperature : float, optional\n    Finite and > 0.\n"
    "threads : int, optional\n    Worker threads, 0 = OpenMP default.\n\n"
    "Returns\n-------\n"
    "ids : ndarray or tensor of int64, shape (B, n)\n    Token ids.\n"
    "logprobs : ndarray or tensor, shape (B, n)\n"
    "    float32 (float64 for float64 logits); same container kind as `logits`.\n\n"
    "Raises\n------\n"
    "ValueError\n    n out of range, bad temperature, rows holding NaN or +inf or all -inf.\n"
    "TypeError\n    Unsupported dtypes.\n\n"
    "Examples\n--------\n"
    ">>> import numpy as np, softmax\n"
    ">>> ids, lp = softmax.top_logprobs(np.log(np.array([[0.2, 0.5, 0.3]])), 2)\n"
    ">>> ids, np.round(np.exp(lp), 6)\n"
    "(array([[1, 2]]), array([[0.5, 0.3]]))\n";

}  // namespace

void register_sampling(py::module_& m) {
  auto bind_sample = [&m](const char* name, bool from_probs, const char* doc) {
    m.def(
        name,
        [from_probs](py::handle x, py::handle num_samples, py::handle t, py::handle k,
                     py::handle p, py::handle mp, const std::string& method, uint64_t seed,
                     uint64_t offset, py::handle streams, int threads) {
          return sample_op(from_probs, x, num_samples, t, k, p, mp, method, seed, offset,
                           streams, threads);
        },
        py::arg(from_probs ? "probs" : "logits"), py::arg("num_samples") = py::none(),
        py::kw_only(), py::arg("temperature") = 1.0, py::arg("top_k") = 0,
        py::arg("top_p") = 1.0, py::arg("min_p") = 0.0, py::arg("method") = "inverse_cdf",
        py::arg("seed") = 0, py::arg("offset") = 0, py::arg("streams") = py::none(),
        py::arg("threads") = 0, doc);
  };
  bind_sample("sample", false, kSampleDoc);
  bind_sample("sample_from_probs", true, kSampleFromProbsDoc);
  m.def(
      "top_logprobs",
      [](py::handle x, int64_t n, double temperature, int threads) {
        const char* op = "top_logprobs";
        const Operand xin = input(x, op, "logits");
        const int t = parse_threads(threads, op);
        softmax::TopLogprobs r;
        nogil([&] { r = softmax::top_logprobs(xin.cview(), n, temperature, t); });
        const DType lt = xin.view.dtype == DType::f64 ? DType::f64 : DType::f32;
        Operand ids = new_output(xin.kind, {r.rows, r.n}, DType::i64, op);
        Operand lps = new_output(xin.kind, {r.rows, r.n}, lt, op);
        auto* ip = static_cast<int64_t*>(ids.view.data);
        if (!r.ids.empty()) std::memcpy(ip, r.ids.data(), r.ids.size() * sizeof(int64_t));
        for (std::size_t i = 0; i < r.logprobs.size(); ++i) {
          if (lt == DType::f64) static_cast<double*>(lps.view.data)[i] = r.logprobs[i];
          else static_cast<float*>(lps.view.data)[i] = static_cast<float>(r.logprobs[i]);
        }
        return py::make_tuple(ids.owner, lps.owner);
      },
      py::arg("logits"), py::arg("n"), py::kw_only(), py::arg("temperature") = 1.0,
      py::arg("threads") = 0, kTopLogprobsDoc);
}

}  // namespace softmax_py
