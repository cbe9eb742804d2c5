// python/bind_large_vocab.cc: sampled, hierarchical and adaptive softmax
// (softmax/large_vocab.hpp) with TensorFlow's and PyTorch's argument names. Inputs are float32
// NumPy arrays or torch tensors (class ids int32/int64); results come back as the same kind.
#include "softmax/large_vocab.hpp"

#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"
#include "sampling_args.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::f32;
  else
    return DType::i64;
}

// A new array / tensor of `shape` (like `kind`) holding `v`.
template <class T>
py::object result(Kind kind, const std::vector<T>& v, const std::vector<int64_t>& shape,
                  const char* op) {
  Operand o = new_output(kind, shape, dtype_of<T>(), op);
  if (!v.empty()) std::memcpy(o.view.data, v.data(), v.size() * sizeof(T));
  return o.owner;
}

py::object scalar_result(Kind kind, double v, const char* op) {
  return result(kind, std::vector<float>{static_cast<float>(v)}, {}, op);
}

softmax::CandidateSampler parse_sampler(const std::string& s, const char* op) {
  if (s == "log_uniform") return softmax::CandidateSampler::kLogUniform;
  if (s == "uniform") return softmax::CandidateSampler::kUniform;
  if (s == "unigram") return softmax::CandidateSampler::kUnigram;
  throw py::value_error(std::string("softmax.") + op + ": sampler = '" + s +
                        "': must be 'log_uniform', 'uniform' or 'unigram'");
}

std::vector<double> to_doubles(py::handle obj) {
  py::array_t<double, py::array::c_style | py::array::forcecast> a =
      py::module_::import("numpy").attr("asarray")(obj, "float64");
  return {a.data(), a.data() + a.size()};
}

py::tuple sparse_result(Kind kind, const softmax::SparseRowGrad& g, const char* op) {
  const auto nr = static_cast<int64_t>(g.rows.size());
  return py::make_tuple(result(kind, g.rows, {nr}, op), result(kind, g.values, {nr, g.dim}, op),
                        g.bias.empty() ? py::object(py::none()) : result(kind, g.bias, {nr}, op));
}

// --- sampled softmax ---------------------------------------------------------------------

struct SamplerArgs {
  int64_t num_true, num_sampled, num_classes;
  bool unique;
  std::string sampler;
  py::handle unigrams;
  double distortion;
  uint64_t seed, offset;
};

softmax::SampledSoftmaxOptions sampler_options(const SamplerArgs& a, const char* op) {
  softmax::SampledSoftmaxOptions o;
  o.num_true = a.num_true;
  o.num_sampled = a.num_sampled;
  o.num_classes = a.num_classes;
  o.unique = a.unique;
  o.sampler = parse_sampler(a.sampler, op);
  if (!a.unigrams.is_none()) o.unigrams = to_doubles(a.unigrams);
  o.distortion = a.distortion;
  o.seed = a.seed;
  o.offset = a.offset;
  return o;
}

py::tuple samples_result(Kind kind, const softmax::CandidateSample& s, int64_t n, int64_t nt,
                         const char* op) {
  const auto ns = static_cast<int64_t>(s.sampled.size());
  return py::make_tuple(result(kind, s.sampled, {ns}, op),
                        result(kind, s.true_expected_count, {n, nt}, op),
                        result(kind, s.sampled_expected_count, {ns}, op));
}

py::object candidate_sampler(py::handle true_classes, const SamplerArgs& a, const char* op) {
  const Operand t = input(true_classes, op, "true_classes", true);
  const softmax::SampledSoftmaxOptions o = sampler_options(a, op);
  softmax::CandidateSample s;
  nogil([&] { s = softmax::sample_candidates(t.cview(), o); });
  const int64_t n = t.view.rank() == 2 ? t.view.shape[0] : 0;
  return samples_result(t.kind, s, n, a.num_true, op);
}

py::object sampled_softmax_loss(py::handle weights, py::handle biases, py::handle labels,
                                py::handle inputs, const SamplerArgs& a,
                                bool remove_accidental_hits, bool subtract_log_q,
                                bool return_samples, bool return_grad, py::handle grad_output,
                                int threads) {
  const char* op = "sampled_softmax_loss";
  const Operand w = input(weights, op, "weights"), b = input(biases, op, "biases");
  const Operand l = input(labels, op, "labels", true), x = input(inputs, op, "inputs");
  const std::optional<Operand> go = optional_input(grad_output, op, "grad_output");
  softmax::SampledSoftmaxOptions o = sampler_options(a, op);
  o.remove_accidental_hits = remove_accidental_hits;
  o.subtract_log_q = subtract_log_q;
  o.compute_grad = return_grad;
  if (go) o.grad_output = go->cview();
  o.threads = parse_threads(threads, op);
  softmax::SampledSoftmaxResult r;
  nogil([&] { r = softmax::sampled_softmax_loss(w.cview(), b.cview(), l.cview(), x.cview(), o); });
  const int64_t n = x.view.shape[0], d = x.view.shape[1];
  py::list out;
  out.append(result(x.kind, r.loss, {n}, op));
  if (return_samples) {
    for (auto item : samples_result(x.kind, r.samples, n, a.num_true, op)) out.append(item);
  }
  if (return_grad) {
    py::dict g;
    g["inputs"] = result(x.kind, r.grad_inputs, {n, d}, op);
    py::tuple sp = sparse_result(x.kind, r.grad_weights, op);
    g["rows"] = sp[0];
    g["weights"] = sp[1];
    g["biases"] = sp[2];
    out.append(g);
  }
  if (out.size() == 1) return out[0];
  return py::tuple(out);
}

// --- hierarchical softmax ----------------------------------------------------------------

std::optional<softmax::ConstTensorView> opt_view(const std::optional<Operand>& o) {
  if (!o) return std::nullopt;
  return o->cview();
}

py::object hs_log_prob(py::handle hidden, const softmax::HierarchicalTree& tree,
                       py::handle node_weights, py::handle node_bias, int threads) {
  const char* op = "hierarchical_log_prob";
  const Operand h = input(hidden, op, "hidden"), w = input(node_weights, op, "node_weights");
  const std::optional<Operand> b = optional_input(node_bias, op, "node_bias");
  const int t = parse_threads(threads, op);
  std::vector<float> lp;
  nogil([&] { lp = softmax::hierarchical_log_prob(h.cview(), tree, w.cview(), opt_view(b), t); });
  return result(h.kind, lp, {h.view.shape[0], tree.num_classes()}, op);
}

py::object hs_loss(py::handle hidden, py::handle targets, const softmax::HierarchicalTree& tree,
                   py::handle node_weights, py::handle node_bias, const std::string& reduction,
                   double grad_scale, bool return_grad, int threads) {
  const char* op = "hierarchical_softmax_loss";
  const Operand h = input(hidden, op, "hidden"), t = input(targets, op, "targets", true);
  const Operand w = input(node_weights, op, "node_weights");
  const std::optional<Operand> b = optional_input(node_bias, op, "node_bias");
  softmax::HierarchicalOptions o;
  o.reduction = parse_reduction(reduction, op);
  o.grad_scale = grad_scale;
  o.compute_grad = return_grad;
  o.threads = parse_threads(threads, op);
  softmax::HierarchicalLossResult r;
  nogil([&] {
    r = softmax::hierarchical_softmax_loss(h.cview(), t.cview(), tree, w.cview(), opt_view(b), o);
  });
  const int64_t n = h.view.shape[0], d = h.view.shape[1];
  py::object loss = o.reduction == softmax::Reduction::kNone ? result(h.kind, r.loss, {n}, op)
                                                             : scalar_result(h.kind, r.loss[0], op);
  if (!return_grad) return loss;
  py::dict g;
  g["hidden"] = result(h.kind, r.grad_hidden, {n, d}, op);
  py::tuple sp = sparse_result(h.kind, r.grad_nodes, op);
  g["rows"] = sp[0];
  g["node_weights"] = sp[1];
  g["node_bias"] = sp[2];
  return py::make_tuple(loss, g);
}

py::object hs_predict(py::handle hidden, const softmax::HierarchicalTree& tree,
                      py::handle node_weights, py::handle node_bias, int64_t k, int threads) {
  const char* op = "hierarchical_predict";
  const Operand h = input(hidden, op, "hidden"), w = input(node_weights, op, "node_weights");
  const std::optional<Operand> b = optional_input(node_bias, op, "node_bias");
  const int t = parse_threads(threads, op);
  softmax::TopKClasses r;
  nogil([&] { r = softmax::hierarchical_predict(h.cview(), tree, w.cview(), opt_view(b), k, t); });
  const int64_t n = h.view.shape[0];
  return py::make_tuple(result(h.kind, r.log_probs, {n, k}, op),
                        result(h.kind, r.classes, {n, k}, op));
}

std::vector<int64_t> to_int64s(py::handle obj, const char* op, const char* arg) {
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  if (a.ndim() != 1) {
    throw py::value_error(std::string("softmax.") + op + ": " + arg + " must be 1-d (got " +
                          std::to_string(a.ndim()) + " dimensions)");
  }
  const char kind = a.dtype().kind();
  if (kind == 'f') {
    py::array r = np.attr("round")(a);
    if (!np.attr("isfinite")(a).attr("all")().cast<bool>() ||
        !np.attr("array_equal")(r, a).cast<bool>()) {
      throw py::value_error(std::string("softmax.") + op + ": " + arg + " must be integers");
    }
  } else if (kind != 'i' && kind != 'u' && kind != 'b') {
    throw py::type_error(std::string("softmax.") + op + ": " + arg + " must be integers");
  }
  py::array_t<int64_t, py::array::c_style | py::array::forcecast> c =
      np.attr("asarray")(a, "int64");
  return {c.data(), c.data() + c.size()};
}

// --- adaptive softmax --------------------------------------------------------------------

struct AdaptiveArgs {
  Operand head;
  std::optional<Operand> head_bias;
  std::vector<Operand> tail_ops;
  std::vector<softmax::AdaptiveTail> tails;
  std::vector<int64_t> cutoffs;
};

AdaptiveArgs adaptive_args(py::handle head_weight, py::handle tail_weights, py::handle cutoffs,
                           py::handle head_bias, const char* op) {
  AdaptiveArgs a{input(head_weight, op, "head_weight"),
                 optional_input(head_bias, op, "head_bias"),
                 {},
                 {},
                 to_int64s(cutoffs, op, "cutoffs")};
  for (py::handle pair : tail_weights) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(pair);
    if (s.size() != 2) {
      throw py::value_error(std::string("softmax.") + op +
                            ": each tail_weights entry must be a (projection, output) pair");
    }
    a.tail_ops.push_back(input(s[0], op, "tail_weights[i][0]"));
    a.tail_ops.push_back(input(s[1], op, "tail_weights[i][1]"));
  }
  for (std::size_t i = 0; i + 1 < a.tail_ops.size(); i += 2) {
    a.tails.push_back({a.tail_ops[i].cview(), a.tail_ops[i + 1].cview()});
  }
  return a;
}

std::vector<int64_t> shape_of(const softmax::ConstTensorView& v) { return v.shape; }

py::object asm_forward(py::handle input_obj, py::handle target, py::handle head_weight,
                       py::handle tail_weights, py::handle cutoffs, py::handle head_bias,
                       bool return_grad, double grad_scale, int threads) {
  const char* op = "adaptive_log_softmax_with_loss";
  const Operand x = input(input_obj, op, "input"), t = input(target, op, "target", true);
  const AdaptiveArgs a = adaptive_args(head_weight, tail_weights, cutoffs, head_bias, op);
  softmax::AdaptiveSoftmaxOptions o;
  o.compute_grad = return_grad;
  o.grad_scale = grad_scale;
  o.threads = parse_threads(threads, op);
  softmax::AdaptiveSoftmaxResult r;
  nogil([&] {
    r = softmax::adaptive_log_softmax_with_loss(x.cview(), t.cview(), a.head.cview(), a.tails,
                                                a.cutoffs, opt_view(a.head_bias), o);
  });
  py::object output = result(x.kind, r.output, {x.view.shape[0]}, op);
  py::object loss = scalar_result(x.kind, r.loss, op);
  if (!return_grad) return py::make_tuple(output, loss);
  py::dict g;
  g["input"] = result(x.kind, r.grad_input, shape_of(x.view), op);
  g["head_weight"] = result(x.kind, r.grad_head_weight, shape_of(a.head.view), op);
  g["head_bias"] = a.head_bias ? result(x.kind, r.grad_head_bias, shape_of(a.head_bias->view), op)
                               : py::object(py::none());
  py::list tails;
  for (std::size_t i = 0; i < a.tails.size(); ++i) {
    tails.append(
        py::make_tuple(result(x.kind, r.grad_tail_projection[i], a.tails[i].projection.shape, op),
                       result(x.kind, r.grad_tail_output[i], a.tails[i].output.shape, op)));
  }
  g["tail_weights"] = tails;
  return py::make_tuple(output, loss, g);
}

py::object asm_log_prob(py::handle input_obj, py::handle head_weight, py::handle tail_weights,
                        py::handle cutoffs, py::handle head_bias, int threads) {
  const char* op = "adaptive_log_prob";
  const Operand x = input(input_obj, op, "input");
  const AdaptiveArgs a = adaptive_args(head_weight, tail_weights, cutoffs, head_bias, op);
  const int th = parse_threads(threads, op);
  std::vector<float> lp;
  nogil([&] {
    lp = softmax::adaptive_log_prob(x.cview(), a.head.cview(), a.tails, a.cutoffs,
                                    opt_view(a.head_bias), th);
  });
  const int64_t n = x.view.rank() == 2 ? x.view.shape[0] : 0;
  return result(x.kind, lp, {n, n == 0 ? 0 : static_cast<int64_t>(lp.size()) / n}, op);
}

py::object asm_predict(py::handle input_obj, py::handle head_weight, py::handle tail_weights,
                       py::handle cutoffs, py::handle head_bias, int threads) {
  const char* op = "adaptive_predict";
  const Operand x = input(input_obj, op, "input");
  const AdaptiveArgs a = adaptive_args(head_weight, tail_weights, cutoffs, head_bias, op);
  const int th = parse_threads(threads, op);
  std::vector<int64_t> p;
  nogil([&] {
    p = softmax::adaptive_predict(x.cview(), a.head.cview(), a.tails, a.cutoffs,
                                  opt_view(a.head_bias), th);
  });
  return result(x.kind, p, {static_cast<int64_t>(p.size())}, op);
}

constexpr const char* kSampledDoc =
    R"doc(sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampler='log_uniform', unigrams=None, distortion=1.0, unique=False, remove_accidental_hits=True, subtract_log_q=True, seed=0, offset=0, return_samples=False, *, return_grad=False, grad_output=None, threads=0)

Sampled softmax loss with ``tf.nn.sampled_softmax_loss``'s semantics (Jean et al. 2015).

One sample set of `num_sampled` classes per call (shared by the batch), drawn on Philox
counters from (`seed`, `offset`): the same arguments give the same samples on any thread count.

Parameters
----------
weights : float32 array or tensor, shape (num_classes, D)
biases : float32 array or tensor, shape (num_classes,)
labels : int32/int64, shape (N, num_true)
inputs : float32, shape (N, D)
sampler : {'log_uniform', 'uniform', 'unigram'}
    'unigram' uses `unigrams` (num_classes counts) raised to `distortion`.
unique : bool
    Sample without replacement (rejection; expected counts ``1 - (1 - P)**num_tries``).
remove_accidental_hits, subtract_log_q : bool
    As TensorFlow (mask sampled copies of a true class; subtract log expected counts).
return_samples : bool
    Also return ``sampled`` (num_sampled,), ``true_expected_count`` (N, num_true) and
    ``sampled_expected_count`` (num_sampled,), as TF's candidate samplers.
return_grad : bool
    Also return a dict of gradients of ``sum(grad_output * loss)``: 'inputs' (N, D),
    'rows' (touched class ids, increasing), 'weights' (len(rows), D), 'biases' (len(rows),).
grad_output : float array, shape (N,), optional
    Upstream gradient per example (default 1).

Returns
-------
loss : float32, shape (N,)
    Alone, or ``(loss, sampled, true_expected_count, sampled_expected_count)`` with
    `return_samples`; the gradient dict is appended with `return_grad`.

Raises
------
ValueError
    Labels out of range, num_sampled > num_classes with unique=True, bad shapes or unigrams.
TypeError
    Non-float32 weights or inputs.
)doc";

constexpr const char* kSamplerDoc =
    R"doc((true_classes, num_true, num_sampled, unique, range_max, seed=0, offset=0)

TensorFlow's candidate sampler: returns ``(sampled_candidates, true_expected_count,
sampled_expected_count)``, shapes (num_sampled,), (N, num_true), (num_sampled,). Expected
counts: ``num_sampled * P(k)``, or ``1 - (1 - P(k))**num_tries`` when unique needed rejections.
)doc";

constexpr const char* kUnigramDoc =
    R"doc(fixed_unigram_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, unigrams, distortion=1.0, seed=0, offset=0)

TensorFlow's fixed unigram sampler: P(k) proportional to ``unigrams[k]**distortion``. Returns
``(sampled_candidates, true_expected_count, sampled_expected_count)``.
)doc";

constexpr const char* kHuffmanDoc = R"doc(huffman_tree(counts)

word2vec's Huffman tree over ``len(counts)`` >= 2 classes (each count > 0). Returns a
HierarchicalTree: ``num_classes``, ``num_internal`` (V - 1), ``paths(k)`` (internal node ids
from the root), ``codes(k)`` (0/1 per step; code 1 has probability sigma(s)).
)doc";

constexpr const char* kHsLossDoc =
    R"doc(hierarchical_softmax_loss(hidden, targets, tree, node_weights, node_bias=None, reduction='mean', *, grad_scale=1.0, return_grad=False, threads=0)

``-log p(target | hidden)`` over the tree, O(depth * D) per example. hidden (N, D) float32,
targets (N,) int, node_weights (V - 1, D), node_bias (V - 1,). With `return_grad` returns
``(loss, grads)``, grads a dict: 'hidden' (N, D), 'rows' (touched internal nodes),
'node_weights' (len(rows), D), 'node_bias' (len(rows),) or None.
)doc";

constexpr const char* kHsLogProbDoc =
    R"doc(hierarchical_log_prob(hidden, tree, node_weights, node_bias=None, *, threads=0)

All log-probabilities (N, V) float32 of the tree's distribution (rows sum to 1).
)doc";

constexpr const char* kHsPredictDoc =
    R"doc(hierarchical_predict(hidden, tree, node_weights, node_bias=None, k=1, *, threads=0)

Exact top-k by best-first search: ``(log_probs, classes)``, each (N, k), decreasing (ties: lower
class id first).
)doc";

constexpr const char* kAsmDoc =
    R"doc(adaptive_log_softmax_with_loss(input, target, head_weight, tail_weights, cutoffs, head_bias=None, *, return_grad=False, grad_scale=1.0, threads=0)

``torch.nn.AdaptiveLogSoftmaxWithLoss.forward`` given its weights: returns ``(output, loss)``
(output (N,) = log p(target), loss = mean(-output)). head_weight (cutoffs[0] + len(cutoffs), D);
tail_weights a list of (tail[i][0].weight, tail[i][1].weight) pairs; cutoffs as torch's
constructor takes them. With `return_grad` a third item, a dict of the gradients of
``grad_scale * loss``: 'input', 'head_weight', 'head_bias', 'tail_weights' (list of pairs).
)doc";

constexpr const char* kAsmLogProbDoc =
    R"doc(adaptive_log_prob(input, head_weight, tail_weights, cutoffs, head_bias=None, *, threads=0)

torch's ``log_prob(input)``: (N, n_classes) float32.
)doc";

constexpr const char* kAsmPredictDoc =
    R"doc(adaptive_predict(input, head_weight, tail_weights, cutoffs, head_bias=None, *, threads=0)

torch's ``predict(input)``: (N,) int64 class ids.
)doc";

}  // namespace

void register_large_vocab(py::module_& m) {
  m.def(
      "sampled_softmax_loss",
      [](py::handle weights, py::handle biases, py::handle labels, py::handle inputs,
         int64_t num_sampled, int64_t num_classes, int64_t num_true, const std::string& sampler,
         py::handle unigrams, double distortion, bool unique, bool remove_accidental_hits,
         bool subtract_log_q, py::handle seed, py::handle offset, bool return_samples,
         bool return_grad, py::handle grad_output, int threads) {
        const char* op = "sampled_softmax_loss";
        const SamplerArgs a{num_true,
                            num_sampled,
                            num_classes,
                            unique,
                            sampler,
                            unigrams,
                            distortion,
                            u64_scalar(seed, op, "seed"),
                            u64_scalar(offset, op, "offset")};
        return sampled_softmax_loss(weights, biases, labels, inputs, a, remove_accidental_hits,
                                    subtract_log_q, return_samples, return_grad, grad_output,
                                    threads);
      },
      py::arg("weights"), py::arg("biases"), py::arg("labels"), py::arg("inputs"),
      py::arg("num_sampled"), py::arg("num_classes"), py::arg("num_true") = 1,
      py::arg("sampler") = "log_uniform", py::arg("unigrams") = py::none(),
      py::arg("distortion") = 1.0, py::arg("unique") = false,
      py::arg("remove_accidental_hits") = true, py::arg("subtract_log_q") = true,
      py::arg("seed") = 0, py::arg("offset") = 0, py::arg("return_samples") = false, py::kw_only(),
      py::arg("return_grad") = false, py::arg("grad_output") = py::none(), py::arg("threads") = 0,
      kSampledDoc);
  for (const char* name : {"log_uniform_candidate_sampler", "uniform_candidate_sampler"}) {
    const std::string kind = std::string(name).rfind("log_", 0) == 0 ? "log_uniform" : "uniform";
    const std::string doc = std::string(name) + kSamplerDoc;
    m.def(
        name,
        [kind, name](py::handle true_classes, int64_t num_true, int64_t num_sampled, bool unique,
                     int64_t range_max, py::handle seed, py::handle offset) {
          const SamplerArgs a{num_true,
                              num_sampled,
                              range_max,
                              unique,
                              kind,
                              py::none(),
                              1.0,
                              u64_scalar(seed, name, "seed"),
                              u64_scalar(offset, name, "offset")};
          return candidate_sampler(true_classes, a, name);
        },
        py::arg("true_classes"), py::arg("num_true"), py::arg("num_sampled"), py::arg("unique"),
        py::arg("range_max"), py::arg("seed") = 0, py::arg("offset") = 0, doc.c_str());
  }
  m.def(
      "fixed_unigram_candidate_sampler",
      [](py::handle true_classes, int64_t num_true, int64_t num_sampled, bool unique,
         int64_t range_max, py::handle unigrams, double distortion, py::handle seed,
         py::handle offset) {
        const char* op = "fixed_unigram_candidate_sampler";
        const SamplerArgs a{num_true,
                            num_sampled,
                            range_max,
                            unique,
                            "unigram",
                            unigrams,
                            distortion,
                            u64_scalar(seed, op, "seed"),
                            u64_scalar(offset, op, "offset")};
        return candidate_sampler(true_classes, a, "fixed_unigram_candidate_sampler");
      },
      py::arg("true_classes"), py::arg("num_true"), py::arg("num_sampled"), py::arg("unique"),
      py::arg("range_max"), py::arg("unigrams"), py::arg("distortion") = 1.0, py::arg("seed") = 0,
      py::arg("offset") = 0, kUnigramDoc);

  py::class_<softmax::HierarchicalTree>(m, "HierarchicalTree",
                                        "A binary tree over the classes (see huffman_tree).")
      .def(py::init([](py::handle children) {
             std::vector<int64_t> c = to_int64s(children, "HierarchicalTree", "children");
             return softmax::HierarchicalTree(std::vector<int32_t>(c.begin(), c.end()));
           }),
           py::arg("children"),
           "HierarchicalTree(children)\n\nchildren[2 j + c]: child with code c of internal node j "
           "(an internal id < j, or -(k + 1) for class k); root V - 2.")
      .def_property_readonly("num_classes", &softmax::HierarchicalTree::num_classes)
      .def_property_readonly("num_internal", &softmax::HierarchicalTree::num_internal)
      .def_property_readonly("root", &softmax::HierarchicalTree::root)
      .def_property_readonly("max_depth", &softmax::HierarchicalTree::max_depth)
      .def(
          "paths",
          [](const softmax::HierarchicalTree& t, int64_t k) {
            const auto p = t.paths(k);
            return py::array_t<int64_t>(static_cast<py::ssize_t>(p.size()),
                                        std::vector<int64_t>(p.begin(), p.end()).data());
          },
          py::arg("k"), "paths(k)\n\nInternal node ids from the root to class k (int64 array).")
      .def(
          "codes",
          [](const softmax::HierarchicalTree& t, int64_t k) {
            const auto c = t.codes(k);
            return py::array_t<int64_t>(static_cast<py::ssize_t>(c.size()),
                                        std::vector<int64_t>(c.begin(), c.end()).data());
          },
          py::arg("k"), "codes(k)\n\nThe branch (0 or 1) taken at each node of paths(k).");
  m.def(
      "huffman_tree",
      [](py::handle counts) {
        const std::vector<int64_t> c = to_int64s(counts, "huffman_tree", "counts");
        return softmax::huffman_tree(c);
      },
      py::arg("counts"), kHuffmanDoc);
  m.def("balanced_tree", &softmax::balanced_tree, py::arg("num_classes"),
        "balanced_tree(num_classes)\n\nA balanced tree (Huffman over equal counts).");
  m.def("hierarchical_log_prob", &hs_log_prob, py::arg("hidden"), py::arg("tree"),
        py::arg("node_weights"), py::arg("node_bias") = py::none(), py::kw_only(),
        py::arg("threads") = 0, kHsLogProbDoc);
  m.def("hierarchical_softmax_loss", &hs_loss, py::arg("hidden"), py::arg("targets"),
        py::arg("tree"), py::arg("node_weights"), py::arg("node_bias") = py::none(),
        py::arg("reduction") = "mean", py::kw_only(), py::arg("grad_scale") = 1.0,
        py::arg("return_grad") = false, py::arg("threads") = 0, kHsLossDoc);
  m.def("hierarchical_predict", &hs_predict, py::arg("hidden"), py::arg("tree"),
        py::arg("node_weights"), py::arg("node_bias") = py::none(), py::arg("k") = 1, py::kw_only(),
        py::arg("threads") = 0, kHsPredictDoc);
  m.def("adaptive_log_softmax_with_loss", &asm_forward, py::arg("input"), py::arg("target"),
        py::arg("head_weight"), py::arg("tail_weights"), py::arg("cutoffs"),
        py::arg("head_bias") = py::none(), py::kw_only(), py::arg("return_grad") = false,
        py::arg("grad_scale") = 1.0, py::arg("threads") = 0, kAsmDoc);
  m.def("adaptive_log_prob", &asm_log_prob, py::arg("input"), py::arg("head_weight"),
        py::arg("tail_weights"), py::arg("cutoffs"), py::arg("head_bias") = py::none(),
        py::kw_only(), py::arg("threads") = 0, kAsmLogProbDoc);
  m.def("adaptive_predict", &asm_predict, py::arg("input"), py::arg("head_weight"),
        py::arg("tail_weights"), py::arg("cutoffs"), py::arg("head_bias") = py::none(),
        py::kw_only(), py::arg("threads") = 0, kAsmPredictDoc);
}

}  // namespace softmax_py
