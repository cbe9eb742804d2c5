// python/loss_args.hpp: the shared keyword arguments and outputs of the loss bindings
// (bind_cross_entropy.cc, and bind_dist.cc's softmax.dist.cross_entropy / linear_cross_entropy):
// PyTorch's argument names turned into CrossEntropyOptions, and the (loss, grad, lse, log_probs)
// result tuple.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "softmax/cross_entropy.hpp"

namespace softmax_py {

// Rows' shape of logits (N, C, d...) -> (N, d...); (C) -> ().
inline std::vector<int64_t> rows_shape(const std::vector<int64_t>& s) {
  if (s.size() < 2) return {};
  std::vector<int64_t> r{s[0]};
  r.insert(r.end(), s.begin() + 2, s.end());
  return r;
}

inline softmax::DType stat_dtype(softmax::DType t) {
  return t == softmax::DType::f64 ? softmax::DType::f64 : softmax::DType::f32;
}

struct LossArgs {
  py::handle weight;
  int64_t ignore_index;
  std::string reduction;
  double label_smoothing, z_loss, normalizer, grad_scale;
  int threads;
};

inline softmax::CrossEntropyOptions make_options(const LossArgs& a, const std::optional<Operand>& w,
                                                 const char* op) {
  softmax::CrossEntropyOptions o;
  if (w) o.weight = w->cview();
  o.ignore_index = a.ignore_index;
  o.reduction = parse_reduction(a.reduction, op);
  o.label_smoothing = a.label_smoothing;
  o.z_loss = a.z_loss;
  o.normalizer = a.normalizer;
  o.grad_scale = a.grad_scale;
  o.threads = parse_threads(a.threads, op);
  return o;
}

// Validates the operands, allocates the requested outputs (loss: () or the rows' shape; grad and
// log_probs: input's shape; lse: the rows' shape), runs run(x, target, outputs, options) without
// the GIL and returns loss alone or the tuple of the requested items.
template <class Run>
py::object loss_call(const char* op, py::handle input_obj, py::handle target_obj, const LossArgs& a,
                     bool return_grad, bool return_lse, bool return_log_probs, Run&& run) {
  const Operand x = input(input_obj, op, "input");
  const Operand t = input(target_obj, op, "target", /*allow_int=*/true);
  const std::optional<Operand> w = optional_input(a.weight, op, "weight");
  const softmax::CrossEntropyOptions o = make_options(a, w, op);
  const std::vector<int64_t> rows = rows_shape(x.view.shape);
  Operand loss =
      new_output(x.kind, o.reduction == softmax::Reduction::kNone ? rows : std::vector<int64_t>{},
                 x.view.dtype, op);
  softmax::CrossEntropyOutputs out;
  out.loss = loss.view;
  py::tuple result(1 + return_grad + return_lse + return_log_probs);
  std::vector<Operand> extra;
  extra.reserve(3);
  if (return_grad) {
    extra.push_back(new_output(x.kind, x.view.shape, x.view.dtype, op));
    out.grad = extra.back().view;
  }
  if (return_lse) {
    extra.push_back(new_output(x.kind, rows, stat_dtype(x.view.dtype), op));
    out.lse = extra.back().view;
  }
  if (return_log_probs) {
    extra.push_back(new_output(x.kind, x.view.shape, x.view.dtype, op));
    out.log_probs = extra.back().view;
  }
  nogil([&] { run(x.cview(), t.cview(), out, o); });
  if (extra.empty()) return loss.owner;
  result[0] = loss.owner;
  for (std::size_t i = 0; i < extra.size(); ++i) result[i + 1] = extra[i].owner;
  return result;
}

// linear_cross_entropy's operands and outputs (loss: () or (N,); with return_grad grad_hidden
// (N, D) and grad_weight (weight's shape); with return_lse lse (N,)), all f32; runs
// run(hidden, weight, target, outputs, options) without the GIL.
template <class Run>
py::object linear_loss_call(const char* op, py::handle hidden_obj, py::handle weight_obj,
                            py::handle target_obj, const LossArgs& a, int64_t vocab_chunk,
                            bool return_grad, bool return_lse, py::handle grad_output, Run&& run) {
  const Operand h = input(hidden_obj, op, "hidden");
  const Operand w = input(weight_obj, op, "weight");
  const Operand t = input(target_obj, op, "target", /*allow_int=*/true);
  const std::optional<Operand> cw = optional_input(a.weight, op, "class_weight");
  softmax::CrossEntropyOptions o = make_options(a, cw, op);
  o.vocab_chunk = vocab_chunk;
  const std::optional<Operand> go = optional_input(grad_output, op, "grad_output");
  if (go) o.grad_output = go->cview();
  const int64_t n = h.view.shape.empty() ? 0 : h.view.shape[0];
  Operand loss = new_output(
      h.kind,
      o.reduction == softmax::Reduction::kNone ? std::vector<int64_t>{n} : std::vector<int64_t>{},
      softmax::DType::f32, op);
  softmax::LinearCrossEntropyOutputs out;
  out.loss = loss.view;
  std::vector<Operand> extra;
  extra.reserve(3);
  if (return_grad) {
    extra.push_back(new_output(h.kind, h.view.shape, softmax::DType::f32, op));
    out.grad_hidden = extra.back().view;
    extra.push_back(new_output(h.kind, w.view.shape, softmax::DType::f32, op));
    out.grad_weight = extra.back().view;
  }
  if (return_lse) {
    extra.push_back(new_output(h.kind, {n}, softmax::DType::f32, op));
    out.lse = extra.back().view;
  }
  nogil([&] { run(h.cview(), w.cview(), t.cview(), out, o); });
  if (extra.empty()) return loss.owner;
  py::tuple result(1 + extra.size());
  result[0] = loss.owner;
  for (std::size_t i = 0; i < extra.size(); ++i) result[i + 1] = extra[i].owner;
  return py::object(std::move(result));
}

}  // namespace softmax_py
