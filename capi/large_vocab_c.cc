// capi/large_vocab_c.cc: C ABI of the large-vocabulary losses (softmax/large_vocab.hpp): sampled
// softmax and its candidate sampler (softmax/sampled_softmax.hpp), hierarchical softmax and its
// trees (softmax/hierarchical_softmax.hpp), adaptive softmax (softmax/adaptive_softmax.hpp).
// The C++ ops return their results (vectors); here they are computed first, every output view
// is checked against them, and only then stored (nothing is written when a check fails).
// Sparse row gradients (SparseRowGrad) go to caller buffers of a capacity R: rows (R) i64,
// values (R, D) f32, bias (R) f32, and the number of rows used.
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "capi/capi.hpp"
#include "softmax/large_vocab.hpp"
#include "src/core/checks.hpp"

struct softmax_hierarchical_tree {
  softmax::HierarchicalTree cpp;
};

namespace softmax::detail::capi {
namespace {

SampledSoftmaxOptions to_sampled_options(const char* op,
                                         const softmax_sampled_softmax_options_t* in,
                                         const softmax_context_t* ctx) {
  const SampledSoftmaxOptions d;
  softmax_sampled_softmax_options_t defaults{};
  defaults.struct_size = sizeof(softmax_sampled_softmax_options_t);
  defaults.num_sampled = d.num_sampled;
  defaults.num_classes = d.num_classes;
  defaults.num_true = d.num_true;
  defaults.sampler = static_cast<int64_t>(d.sampler);
  defaults.distortion = d.distortion;
  defaults.unique = d.unique ? 1 : 0;
  defaults.remove_accidental_hits = d.remove_accidental_hits ? 1 : 0;
  defaults.subtract_log_q = d.subtract_log_q ? 1 : 0;
  defaults.seed = d.seed;
  defaults.offset = d.offset;
  const softmax_sampled_softmax_options_t c = read_struct(op, "options", in, defaults);
  if (c.sampler < SOFTMAX_SAMPLER_LOG_UNIFORM || c.sampler > SOFTMAX_SAMPLER_UNIGRAM) {
    throw Error(ErrorKind::kInvalidArgument, op, "options.sampler", std::to_string(c.sampler),
                "must be a softmax_candidate_sampler_t (0 = log-uniform, 1 = uniform, "
                "2 = unigram)");
  }
  SampledSoftmaxOptions o;
  o.num_sampled = c.num_sampled;
  o.num_classes = c.num_classes;
  o.num_true = c.num_true;
  o.sampler = static_cast<CandidateSampler>(c.sampler);
  // The unigram counts are copied: their count must be num_classes before anything is read.
  if (c.unigrams != nullptr && c.unigrams_count != c.num_classes) {
    throw Error(ErrorKind::kShapeMismatch, op, "options.unigrams_count",
                std::to_string(c.unigrams_count),
                "must be options.num_classes (" + std::to_string(c.num_classes) + ")");
  }
  const std::span<const double> u =
      to_span(op, "options.unigrams", "options.unigrams_count", c.unigrams, c.unigrams_count);
  o.unigrams.assign(u.begin(), u.end());
  o.distortion = c.distortion;
  o.unique = c.unique != 0;
  o.remove_accidental_hits = c.remove_accidental_hits != 0;
  o.subtract_log_q = c.subtract_log_q != 0;
  o.seed = c.seed;
  o.offset = c.offset;
  if (auto g = to_optional_view(op, "options.grad_output", c.grad_output)) o.grad_output = *g;
  o.threads = threads_of(ctx);
  return o;
}

// The caller's buffers for a SparseRowGrad (names for the messages).
struct SparseOut {
  SparseOut(const char* rows_name, const char* values_name, const char* bias_name,
            const char* count_name)
      : rows_arg(rows_name), values_arg(values_name), bias_arg(bias_name), count_arg(count_name) {}
  const char* rows_arg;
  const char* values_arg;
  const char* bias_arg;
  const char* count_arg;
  std::optional<TensorView> rows, values, bias;
  int64_t* count = nullptr;

  bool wanted() const { return rows || values || bias || count; }

  // Checks the buffers (given together, capacity R, dtypes, shapes, room for g) before anything
  // is stored.
  void check(const char* op, const SparseRowGrad& g, int64_t dim) const {
    require(op, rows_arg, rows ? &*rows : nullptr);
    require(op, values_arg, values ? &*values : nullptr);
    require(op, count_arg, count);
    if (rows->dtype != DType::i64 || rows->shape.size() != 1) {
      throw Error(ErrorKind::kShapeMismatch, op, rows_arg,
                  std::string(dtype_name(rows->dtype)) + " " + shape_str(rows->shape),
                  "must be i64 of shape (R), R >= the touched rows");
    }
    const int64_t cap = rows->shape[0];
    check_result_output(op, rows_arg, *rows, DType::i64, {cap});
    check_result_output(op, values_arg, *values, DType::f32, {cap, dim});
    if (bias) {
      if (g.bias.empty()) {
        throw Error(ErrorKind::kInvalidArgument, op, bias_arg, "given",
                    "must be NULL when the op is given no bias");
      }
      check_result_output(op, bias_arg, *bias, DType::f32, {cap});
    }
    const auto touched = static_cast<int64_t>(g.rows.size());
    if (touched > cap) {
      throw Error(ErrorKind::kShapeMismatch, op, rows_arg, shape_str(rows->shape),
                  "must hold the " + std::to_string(touched) +
                      " touched rows of this call (capacity R too small)");
    }
  }

  void store(const SparseRowGrad& g, int64_t dim) const {
    const auto touched = static_cast<int64_t>(g.rows.size());
    TensorView r = *rows, v = *values;
    r.shape[0] = touched;
    v.shape[0] = touched;
    capi::store(r, g.rows.data());
    if (dim > 0) capi::store(v, g.values.data());
    if (bias) {
      TensorView b = *bias;
      b.shape[0] = touched;
      capi::store(b, g.bias.data());
    }
    *count = touched;
  }
};

// Adds the given outputs to a check_disjoint list.
void add(std::vector<std::pair<const char*, const TensorView*>>& list, const char* name,
         const std::optional<TensorView>& t) {
  if (t) list.emplace_back(name, &*t);
}

std::vector<AdaptiveTail> to_tails(const char* op, const softmax_tensor_t* projections,
                                   const softmax_tensor_t* outputs, int64_t num_tails) {
  if (num_tails < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "num_tails", std::to_string(num_tails),
                "must be >= 0");
  }
  // Arrays of num_tails descriptors: to_span checks NULL and a count no array can have.
  to_span(op, "tail_projections", "num_tails", projections, num_tails);
  to_span(op, "tail_outputs", "num_tails", outputs, num_tails);
  std::vector<AdaptiveTail> tails;
  for (int64_t i = 0; i < num_tails; ++i) {
    const std::string p = "tail_projections[" + std::to_string(i) + "]";
    const std::string o = "tail_outputs[" + std::to_string(i) + "]";
    tails.push_back({to_view(op, p.c_str(), &projections[i]), to_view(op, o.c_str(), &outputs[i])});
  }
  return tails;
}

struct AdaptiveModel {
  ConstTensorView input, head_weight;
  std::optional<ConstTensorView> head_bias;
  std::vector<AdaptiveTail> tails;
  std::span<const int64_t> cutoffs;
};

AdaptiveModel to_model(const char* op, const softmax_tensor_t* input,
                       const softmax_tensor_t* head_weight, const softmax_tensor_t* head_bias,
                       const softmax_tensor_t* tail_projections,
                       const softmax_tensor_t* tail_outputs, int64_t num_tails,
                       const int64_t* cutoffs, int64_t num_cutoffs) {
  AdaptiveModel m;
  // The counts first: the arrays are read only once they agree (num_tails tensors each).
  m.cutoffs = to_span(op, "cutoffs", "num_cutoffs", cutoffs, num_cutoffs);
  if (num_tails >= 0 && num_tails != num_cutoffs) {
    throw Error(ErrorKind::kShapeMismatch, op, "num_tails", std::to_string(num_tails),
                "must equal num_cutoffs (" + std::to_string(num_cutoffs) +
                    "): one (tail_projections[i], tail_outputs[i]) pair per cutoff");
  }
  m.input = to_view(op, "input", input);
  m.head_weight = to_view(op, "head_weight", head_weight);
  if (auto b = to_optional_view(op, "head_bias", head_bias)) m.head_bias = *b;
  m.tails = to_tails(op, tail_projections, tail_outputs, num_tails);
  return m;
}

std::vector<std::pair<const char*, ConstTensorView>> model_inputs(const AdaptiveModel& m) {
  std::vector<std::pair<const char*, ConstTensorView>> in{{"input", m.input},
                                                          {"head_weight", m.head_weight}};
  if (m.head_bias) in.emplace_back("head_bias", *m.head_bias);
  for (const AdaptiveTail& t : m.tails) {
    in.emplace_back("tail_projections[i]", t.projection);
    in.emplace_back("tail_outputs[i]", t.output);
  }
  return in;
}

}  // namespace
}  // namespace softmax::detail::capi

using namespace softmax::detail::capi;  // NOLINT(google-build-using-namespace)
using softmax::DType;
using softmax::TensorView;

extern "C" {

// ---- Sampled softmax ----

softmax_status_t softmax_candidate_probability(int64_t k,
                                               const softmax_sampled_softmax_options_t* options,
                                               double* probability) {
  const char* op = "candidate_probability";
  return guarded([&] {
    require(op, "probability", probability);
    const double p = softmax::candidate_probability(k, to_sampled_options(op, options, nullptr));
    *probability = p;
  });
}

softmax_status_t softmax_sample_candidates(softmax_context_t* ctx,
                                           const softmax_tensor_t* true_classes,
                                           const softmax_sampled_softmax_options_t* options,
                                           const softmax_tensor_t* sampled,
                                           const softmax_tensor_t* true_expected_count,
                                           const softmax_tensor_t* sampled_expected_count,
                                           int64_t* num_tries) {
  const char* op = "sample_candidates";
  return guarded([&] {
    const softmax::ConstTensorView tc = to_view(op, "true_classes", true_classes);
    const TensorView s = to_view(op, "sampled", sampled);
    const auto te = to_optional_view(op, "true_expected_count", true_expected_count);
    const auto se = to_optional_view(op, "sampled_expected_count", sampled_expected_count);
    const softmax::CandidateSample r =
        softmax::sample_candidates(tc, to_sampled_options(op, options, ctx));
    const auto ns = static_cast<int64_t>(r.sampled.size());
    check_result_output(op, "sampled", s, DType::i64, {ns});
    if (te) check_result_output(op, "true_expected_count", *te, DType::f32, tc.shape);
    if (se) check_result_output(op, "sampled_expected_count", *se, DType::f32, {ns});
    std::vector<std::pair<const char*, const TensorView*>> outs{{"sampled", &s}};
    add(outs, "true_expected_count", te);
    add(outs, "sampled_expected_count", se);
    check_disjoint(op, outs, {{"true_classes", tc}});
    store(s, r.sampled.data());
    if (te) store(*te, r.true_expected_count.data());
    if (se) store(*se, r.sampled_expected_count.data());
    if (num_tries) *num_tries = r.num_tries;
  });
}

softmax_status_t softmax_sampled_softmax_loss(
    softmax_context_t* ctx, const softmax_tensor_t* weights, const softmax_tensor_t* biases,
    const softmax_tensor_t* labels, const softmax_tensor_t* inputs,
    const softmax_sampled_softmax_options_t* options, const softmax_tensor_t* loss,
    const softmax_tensor_t* sampled, const softmax_tensor_t* true_expected_count,
    const softmax_tensor_t* sampled_expected_count, int64_t* num_tries,
    const softmax_tensor_t* grad_inputs, const softmax_tensor_t* grad_weight_rows,
    const softmax_tensor_t* grad_weight_values, const softmax_tensor_t* grad_bias_values,
    int64_t* grad_weight_count) {
  const char* op = "sampled_softmax_loss";
  return guarded([&] {
    const softmax::ConstTensorView w = to_view(op, "weights", weights);
    const softmax::ConstTensorView b = to_view(op, "biases", biases);
    const softmax::ConstTensorView l = to_view(op, "labels", labels);
    const softmax::ConstTensorView x = to_view(op, "inputs", inputs);
    const TensorView lo = to_view(op, "loss", loss);
    const auto s = to_optional_view(op, "sampled", sampled);
    const auto te = to_optional_view(op, "true_expected_count", true_expected_count);
    const auto se = to_optional_view(op, "sampled_expected_count", sampled_expected_count);
    const auto gi = to_optional_view(op, "grad_inputs", grad_inputs);
    SparseOut sp("grad_weight_rows", "grad_weight_values", "grad_bias_values", "grad_weight_count");
    sp.rows = to_optional_view(op, sp.rows_arg, grad_weight_rows);
    sp.values = to_optional_view(op, sp.values_arg, grad_weight_values);
    sp.bias = to_optional_view(op, sp.bias_arg, grad_bias_values);
    sp.count = grad_weight_count;
    softmax::SampledSoftmaxOptions o = to_sampled_options(op, options, ctx);
    o.compute_grad = gi.has_value() || sp.wanted();
    const softmax::SampledSoftmaxResult r = softmax::sampled_softmax_loss(w, b, l, x, o);
    const int64_t n = x.shape[0], d = x.shape[1];
    const auto ns = static_cast<int64_t>(r.samples.sampled.size());
    check_result_output(op, "loss", lo, DType::f32, {n});
    if (s) check_result_output(op, "sampled", *s, DType::i64, {ns});
    if (te) check_result_output(op, "true_expected_count", *te, DType::f32, l.shape);
    if (se) check_result_output(op, "sampled_expected_count", *se, DType::f32, {ns});
    if (gi) check_result_output(op, "grad_inputs", *gi, DType::f32, {n, d});
    if (sp.wanted()) sp.check(op, r.grad_weights, d);
    std::vector<std::pair<const char*, const TensorView*>> outs{{"loss", &lo}};
    add(outs, "sampled", s);
    add(outs, "true_expected_count", te);
    add(outs, "sampled_expected_count", se);
    add(outs, "grad_inputs", gi);
    add(outs, sp.rows_arg, sp.rows);
    add(outs, sp.values_arg, sp.values);
    add(outs, sp.bias_arg, sp.bias);
    check_disjoint(op, outs, {{"weights", w}, {"biases", b}, {"labels", l}, {"inputs", x}});
    store(lo, r.loss.data());
    if (s) store(*s, r.samples.sampled.data());
    if (te) store(*te, r.samples.true_expected_count.data());
    if (se) store(*se, r.samples.sampled_expected_count.data());
    if (num_tries) *num_tries = r.samples.num_tries;
    if (gi) store(*gi, r.grad_inputs.data());
    if (sp.wanted()) sp.store(r.grad_weights, d);
  });
}

// ---- Hierarchical softmax ----

softmax_status_t softmax_hierarchical_tree_create(const int32_t* children, int64_t children_count,
                                                  softmax_hierarchical_tree_t** tree) {
  const char* op = "hierarchical_tree_create";
  return guarded([&] {
    require(op, "tree", tree);
    const std::span<const int32_t> c =
        to_span(op, "children", "children_count", children, children_count);
    auto* t =
        new softmax_hierarchical_tree{softmax::HierarchicalTree(std::vector(c.begin(), c.end()))};
    *tree = t;
  });
}

softmax_status_t softmax_huffman_tree(const int64_t* counts, int64_t num_classes,
                                      softmax_hierarchical_tree_t** tree) {
  const char* op = "huffman_tree";
  return guarded([&] {
    require(op, "tree", tree);
    const std::span<const int64_t> c = to_span(op, "counts", "num_classes", counts, num_classes);
    auto* t = new softmax_hierarchical_tree{softmax::huffman_tree(c)};
    *tree = t;
  });
}

softmax_status_t softmax_balanced_tree(int64_t num_classes, softmax_hierarchical_tree_t** tree) {
  const char* op = "balanced_tree";
  return guarded([&] {
    require(op, "tree", tree);
    auto* t = new softmax_hierarchical_tree{softmax::balanced_tree(num_classes)};
    *tree = t;
  });
}

void softmax_hierarchical_tree_destroy(softmax_hierarchical_tree_t* tree) { delete tree; }

softmax_status_t softmax_hierarchical_tree_info(const softmax_hierarchical_tree_t* tree,
                                                int64_t* num_classes, int64_t* max_depth) {
  const char* op = "hierarchical_tree_info";
  return guarded([&] {
    require(op, "tree", tree);
    if (num_classes) *num_classes = tree->cpp.num_classes();
    if (max_depth) *max_depth = tree->cpp.max_depth();
  });
}

softmax_status_t softmax_hierarchical_tree_path(const softmax_hierarchical_tree_t* tree, int64_t k,
                                                int32_t* nodes, uint8_t* codes, int64_t capacity,
                                                int64_t* depth) {
  const char* op = "hierarchical_tree_path";
  return guarded([&] {
    require(op, "tree", tree);
    require(op, "depth", depth);
    const int64_t classes = tree->cpp.num_classes();
    if (k < 0 || k >= classes) {  // checked here so that the message names this function
      throw softmax::Error(softmax::ErrorKind::kInvalidArgument, op, "k", std::to_string(k),
                           "must be a class id in [0, " + std::to_string(classes) + ")");
    }
    const std::span<const int32_t> p = tree->cpp.paths(k);
    const std::span<const uint8_t> c = tree->cpp.codes(k);
    const auto n = static_cast<int64_t>(p.size());
    if (nodes || codes) {
      if (capacity < n) {
        throw softmax::Error(softmax::ErrorKind::kInvalidArgument, op, "capacity",
                             std::to_string(capacity),
                             "must be >= the depth of class " + std::to_string(k) + " (" +
                                 std::to_string(n) + "; max_depth always suffices)");
      }
      if (nodes) std::copy(p.begin(), p.end(), nodes);
      if (codes) std::copy(c.begin(), c.end(), codes);
    }
    *depth = n;
  });
}

softmax_status_t softmax_hierarchical_softmax_loss(
    softmax_context_t* ctx, const softmax_tensor_t* hidden, const softmax_tensor_t* targets,
    const softmax_hierarchical_tree_t* tree, const softmax_tensor_t* node_weights,
    const softmax_tensor_t* node_bias, const softmax_hierarchical_options_t* options,
    const softmax_tensor_t* loss, const softmax_tensor_t* grad_hidden,
    const softmax_tensor_t* grad_node_rows, const softmax_tensor_t* grad_node_values,
    const softmax_tensor_t* grad_node_bias, int64_t* grad_node_count) {
  const char* op = "hierarchical_softmax_loss";
  return guarded([&] {
    require(op, "tree", tree);
    const softmax::ConstTensorView h = to_view(op, "hidden", hidden);
    const softmax::ConstTensorView t = to_view(op, "targets", targets);
    const softmax::ConstTensorView w = to_view(op, "node_weights", node_weights);
    std::optional<softmax::ConstTensorView> b;
    if (auto v = to_optional_view(op, "node_bias", node_bias)) b = *v;
    const TensorView lo = to_view(op, "loss", loss);
    const auto gh = to_optional_view(op, "grad_hidden", grad_hidden);
    SparseOut sp("grad_node_rows", "grad_node_values", "grad_node_bias", "grad_node_count");
    sp.rows = to_optional_view(op, sp.rows_arg, grad_node_rows);
    sp.values = to_optional_view(op, sp.values_arg, grad_node_values);
    sp.bias = to_optional_view(op, sp.bias_arg, grad_node_bias);
    sp.count = grad_node_count;
    const softmax::HierarchicalOptions d;
    const softmax_hierarchical_options_t defaults{sizeof(softmax_hierarchical_options_t),
                                                  static_cast<int64_t>(d.reduction), d.grad_scale};
    const softmax_hierarchical_options_t c = read_struct(op, "options", options, defaults);
    if (c.reduction < SOFTMAX_REDUCTION_NONE || c.reduction > SOFTMAX_REDUCTION_MEAN) {
      throw softmax::Error(softmax::ErrorKind::kInvalidArgument, op, "options.reduction",
                           std::to_string(c.reduction),
                           "must be a softmax_reduction_t (0 = none, 1 = sum, 2 = mean)");
    }
    softmax::HierarchicalOptions o;
    o.reduction = static_cast<softmax::Reduction>(c.reduction);
    o.grad_scale = c.grad_scale;
    o.compute_grad = gh.has_value() || sp.wanted();
    o.threads = threads_of(ctx);
    const softmax::HierarchicalLossResult r =
        softmax::hierarchical_softmax_loss(h, t, tree->cpp, w, b, o);
    const int64_t n = h.shape[0], dim = h.shape[1];
    const std::vector<int64_t> loss_shape =
        o.reduction == softmax::Reduction::kNone ? std::vector<int64_t>{n} : std::vector<int64_t>{};
    check_result_output(op, "loss", lo, DType::f32, loss_shape);
    if (gh) check_result_output(op, "grad_hidden", *gh, DType::f32, {n, dim});
    if (sp.wanted()) sp.check(op, r.grad_nodes, dim);
    std::vector<std::pair<const char*, const TensorView*>> outs{{"loss", &lo}};
    add(outs, "grad_hidden", gh);
    add(outs, sp.rows_arg, sp.rows);
    add(outs, sp.values_arg, sp.values);
    add(outs, sp.bias_arg, sp.bias);
    std::vector<std::pair<const char*, softmax::ConstTensorView>> ins{
        {"hidden", h}, {"targets", t}, {"node_weights", w}};
    if (b) ins.emplace_back("node_bias", *b);
    check_disjoint(op, outs, ins);
    store(lo, r.loss.data());
    if (gh) store(*gh, r.grad_hidden.data());
    if (sp.wanted()) sp.store(r.grad_nodes, dim);
  });
}

softmax_status_t softmax_hierarchical_log_prob(softmax_context_t* ctx,
                                               const softmax_tensor_t* hidden,
                                               const softmax_hierarchical_tree_t* tree,
                                               const softmax_tensor_t* node_weights,
                                               const softmax_tensor_t* node_bias,
                                               const softmax_tensor_t* log_probs) {
  const char* op = "hierarchical_log_prob";
  return guarded([&] {
    require(op, "tree", tree);
    const softmax::ConstTensorView h = to_view(op, "hidden", hidden);
    const softmax::ConstTensorView w = to_view(op, "node_weights", node_weights);
    std::optional<softmax::ConstTensorView> b;
    if (auto v = to_optional_view(op, "node_bias", node_bias)) b = *v;
    const TensorView lp = to_view(op, "log_probs", log_probs);
    const std::vector<float> r =
        softmax::hierarchical_log_prob(h, tree->cpp, w, b, threads_of(ctx));
    check_result_output(op, "log_probs", lp, DType::f32, {h.shape[0], tree->cpp.num_classes()});
    std::vector<std::pair<const char*, softmax::ConstTensorView>> ins{{"hidden", h},
                                                                      {"node_weights", w}};
    if (b) ins.emplace_back("node_bias", *b);
    check_disjoint(op, {{"log_probs", &lp}}, ins);
    store(lp, r.data());
  });
}

softmax_status_t softmax_hierarchical_predict(
    softmax_context_t* ctx, const softmax_tensor_t* hidden, const softmax_hierarchical_tree_t* tree,
    const softmax_tensor_t* node_weights, const softmax_tensor_t* node_bias, int64_t k,
    const softmax_tensor_t* log_probs, const softmax_tensor_t* classes) {
  const char* op = "hierarchical_predict";
  return guarded([&] {
    require(op, "tree", tree);
    const softmax::ConstTensorView h = to_view(op, "hidden", hidden);
    const softmax::ConstTensorView w = to_view(op, "node_weights", node_weights);
    std::optional<softmax::ConstTensorView> b;
    if (auto v = to_optional_view(op, "node_bias", node_bias)) b = *v;
    const auto lp = to_optional_view(op, "log_probs", log_probs);
    const TensorView cl = to_view(op, "classes", classes);
    const softmax::TopKClasses r =
        softmax::hierarchical_predict(h, tree->cpp, w, b, k, threads_of(ctx));
    const int64_t n = h.shape[0];
    check_result_output(op, "classes", cl, DType::i64, {n, k});
    if (lp) check_result_output(op, "log_probs", *lp, DType::f32, {n, k});
    std::vector<std::pair<const char*, const TensorView*>> outs{{"classes", &cl}};
    add(outs, "log_probs", lp);
    std::vector<std::pair<const char*, softmax::ConstTensorView>> ins{{"hidden", h},
                                                                      {"node_weights", w}};
    if (b) ins.emplace_back("node_bias", *b);
    check_disjoint(op, outs, ins);
    store(cl, r.classes.data());
    if (lp) store(*lp, r.log_probs.data());
  });
}

// ---- Adaptive softmax ----

softmax_status_t softmax_adaptive_log_softmax_with_loss(
    softmax_context_t* ctx, const softmax_tensor_t* input, const softmax_tensor_t* target,
    const softmax_tensor_t* head_weight, const softmax_tensor_t* head_bias,
    const softmax_tensor_t* tail_projections, const softmax_tensor_t* tail_outputs,
    int64_t num_tails, const int64_t* cutoffs, int64_t num_cutoffs,
    const softmax_adaptive_options_t* options, const softmax_tensor_t* output, double* loss,
    const softmax_tensor_t* grad_input, const softmax_tensor_t* grad_head_weight,
    const softmax_tensor_t* grad_head_bias, const softmax_tensor_t* grad_tail_projections,
    const softmax_tensor_t* grad_tail_outputs) {
  const char* op = "adaptive_log_softmax_with_loss";
  return guarded([&] {
    const AdaptiveModel m = to_model(op, input, head_weight, head_bias, tail_projections,
                                     tail_outputs, num_tails, cutoffs, num_cutoffs);
    const softmax::ConstTensorView t = to_view(op, "target", target);
    const auto out = to_optional_view(op, "output", output);
    const auto gi = to_optional_view(op, "grad_input", grad_input);
    const auto ghw = to_optional_view(op, "grad_head_weight", grad_head_weight);
    const auto ghb = to_optional_view(op, "grad_head_bias", grad_head_bias);
    std::vector<std::optional<TensorView>> gtp(m.tails.size()), gto(m.tails.size());
    std::vector<std::string> gtp_names, gto_names;
    for (std::size_t i = 0; i < m.tails.size(); ++i) {
      gtp_names.push_back("grad_tail_projections[" + std::to_string(i) + "]");
      gto_names.push_back("grad_tail_outputs[" + std::to_string(i) + "]");
      if (grad_tail_projections) {
        gtp[i] = to_view(op, gtp_names[i].c_str(), &grad_tail_projections[i]);
      }
      if (grad_tail_outputs) gto[i] = to_view(op, gto_names[i].c_str(), &grad_tail_outputs[i]);
    }
    const softmax::AdaptiveSoftmaxOptions d;
    const softmax_adaptive_options_t defaults{sizeof(softmax_adaptive_options_t), d.grad_scale};
    const softmax_adaptive_options_t c = read_struct(op, "options", options, defaults);
    softmax::AdaptiveSoftmaxOptions o;
    o.grad_scale = c.grad_scale;
    o.compute_grad = gi || ghw || ghb || grad_tail_projections || grad_tail_outputs;
    o.threads = threads_of(ctx);
    if (ghb && !m.head_bias) {
      throw softmax::Error(softmax::ErrorKind::kInvalidArgument, op, "grad_head_bias", "given",
                           "must be NULL when head_bias is NULL");
    }
    const softmax::AdaptiveSoftmaxResult r = softmax::adaptive_log_softmax_with_loss(
        m.input, t, m.head_weight, m.tails, m.cutoffs, m.head_bias, o);
    const int64_t n = m.input.shape[0];
    if (out) check_result_output(op, "output", *out, DType::f32, {n});
    if (gi) check_result_output(op, "grad_input", *gi, DType::f32, m.input.shape);
    if (ghw) check_result_output(op, "grad_head_weight", *ghw, DType::f32, m.head_weight.shape);
    if (ghb) check_result_output(op, "grad_head_bias", *ghb, DType::f32, m.head_bias->shape);
    std::vector<std::pair<const char*, const TensorView*>> outs;
    add(outs, "output", out);
    add(outs, "grad_input", gi);
    add(outs, "grad_head_weight", ghw);
    add(outs, "grad_head_bias", ghb);
    for (std::size_t i = 0; i < m.tails.size(); ++i) {
      if (gtp[i]) {
        check_result_output(op, gtp_names[i].c_str(), *gtp[i], DType::f32,
                            m.tails[i].projection.shape);
      }
      if (gto[i]) {
        check_result_output(op, gto_names[i].c_str(), *gto[i], DType::f32, m.tails[i].output.shape);
      }
      add(outs, gtp_names[i].c_str(), gtp[i]);
      add(outs, gto_names[i].c_str(), gto[i]);
    }
    std::vector<std::pair<const char*, softmax::ConstTensorView>> ins = model_inputs(m);
    ins.emplace_back("target", t);
    check_disjoint(op, outs, ins);
    if (out) store(*out, r.output.data());
    if (loss) *loss = r.loss;
    if (gi) store(*gi, r.grad_input.data());
    if (ghw) store(*ghw, r.grad_head_weight.data());
    if (ghb) store(*ghb, r.grad_head_bias.data());
    for (std::size_t i = 0; i < m.tails.size(); ++i) {
      if (gtp[i]) store(*gtp[i], r.grad_tail_projection[i].data());
      if (gto[i]) store(*gto[i], r.grad_tail_output[i].data());
    }
  });
}

softmax_status_t softmax_adaptive_log_prob(softmax_context_t* ctx, const softmax_tensor_t* input,
                                           const softmax_tensor_t* head_weight,
                                           const softmax_tensor_t* head_bias,
                                           const softmax_tensor_t* tail_projections,
                                           const softmax_tensor_t* tail_outputs, int64_t num_tails,
                                           const int64_t* cutoffs, int64_t num_cutoffs,
                                           const softmax_tensor_t* log_probs) {
  const char* op = "adaptive_log_prob";
  return guarded([&] {
    const AdaptiveModel m = to_model(op, input, head_weight, head_bias, tail_projections,
                                     tail_outputs, num_tails, cutoffs, num_cutoffs);
    const TensorView lp = to_view(op, "log_probs", log_probs);
    const std::vector<float> r = softmax::adaptive_log_prob(
        m.input, m.head_weight, m.tails, m.cutoffs, m.head_bias, threads_of(ctx));
    // n_classes = the last cutoff + the last tail's output rows (validated by the op).
    const int64_t classes = m.cutoffs.back() + m.tails.back().output.shape[0];
    check_result_output(op, "log_probs", lp, DType::f32, {m.input.shape[0], classes});
    check_disjoint(op, {{"log_probs", &lp}}, model_inputs(m));
    store(lp, r.data());
  });
}

softmax_status_t softmax_adaptive_predict(softmax_context_t* ctx, const softmax_tensor_t* input,
                                          const softmax_tensor_t* head_weight,
                                          const softmax_tensor_t* head_bias,
                                          const softmax_tensor_t* tail_projections,
                                          const softmax_tensor_t* tail_outputs, int64_t num_tails,
                                          const int64_t* cutoffs, int64_t num_cutoffs,
                                          const softmax_tensor_t* classes) {
  const char* op = "adaptive_predict";
  return guarded([&] {
    const AdaptiveModel m = to_model(op, input, head_weight, head_bias, tail_projections,
                                     tail_outputs, num_tails, cutoffs, num_cutoffs);
    const TensorView cl = to_view(op, "classes", classes);
    const std::vector<int64_t> r = softmax::adaptive_predict(
        m.input, m.head_weight, m.tails, m.cutoffs, m.head_bias, threads_of(ctx));
    check_result_output(op, "classes", cl, DType::i64, {m.input.shape[0]});
    check_disjoint(op, {{"classes", &cl}}, model_inputs(m));
    store(cl, r.data());
  });
}

}  // extern "C"
