// src/core/cross_entropy.cc: cross_entropy (fused log-softmax + NLL + gradient) and nll_loss.
// Order of work: validate every argument and every target (nothing written on failure); fix
// the reduction's denominator (it depends on targets and weights only, so the gradient can be
// written in the same pass as the loss); then per row, in parallel: the row's (max, sum) in one
// read, the loss terms in f64, and one more read of the row (from cache) writing the gradient
// and/or log-probs; finally the per-row losses are reduced in row order (thread-independent).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/core/cross_entropy_impl.hpp"
#include "src/core/cross_entropy_rows.hpp"
#include "src/base/half.hpp"
#include "src/core/row_stats.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/kernels.hpp"
#include "src/cpu/training_kernels.hpp"

namespace softmax {
namespace detail {

namespace {
// Shortest decimal that reads back as v ("0.1", not "0.10000000000000001").
std::string num(double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v || std::isnan(v)) break;
  }
  return buf;
}
}  // namespace

void check_ce_options(const char* op, const CrossEntropyOptions& o, bool allow_z) {
  check_threads(op, o.threads);
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0)) {
    throw Error(ErrorKind::kInvalidArgument, op, "label_smoothing", num(o.label_smoothing),
                "must be in [0, 1]");
  }
  if (!allow_z && o.z_loss != 0.0) {
    throw Error(ErrorKind::kInvalidArgument, op, "z_loss", num(o.z_loss),
                "must be 0: nll_loss takes log-probabilities, which have no logsumexp "
                "(use cross_entropy for z-loss)");
  }
  if (!(o.z_loss >= 0.0 && std::isfinite(o.z_loss))) {
    throw Error(ErrorKind::kInvalidArgument, op, "z_loss", num(o.z_loss),
                "must be finite and >= 0");
  }
  if (!(std::isfinite(o.normalizer) && o.normalizer > 0.0)) {
    throw Error(ErrorKind::kInvalidArgument, op, "normalizer", num(o.normalizer),
                "must be finite and > 0");
  }
  if (o.normalizer != 1.0 && o.reduction != Reduction::kSum) {
    throw Error(ErrorKind::kInvalidArgument, op, "normalizer", num(o.normalizer),
                "applies only to reduction sum (it would be ignored otherwise)");
  }
  if (!std::isfinite(o.grad_scale)) {
    throw Error(ErrorKind::kInvalidArgument, op, "grad_scale", num(o.grad_scale), "must be finite");
  }
  if (o.vocab_chunk < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "vocab_chunk", std::to_string(o.vocab_chunk),
                "must be >= 0 (0 = automatic)");
  }
}

std::vector<double> read_class_weights(const char* op, const CrossEntropyOptions& o, int64_t c,
                                       bool& present) {
  present = o.weight.has_value();
  if (!present) return {};  // all 1: class_weight()
  std::vector<double> w(static_cast<std::size_t>(c), 1.0);
  const ConstTensorView& v = *o.weight;
  check_view(op, "weight", v);
  check_float_dtype(op, "weight", v.dtype);
  if (v.rank() != 1 || v.shape[0] != c) {
    throw Error(ErrorKind::kShapeMismatch, op, "weight", "shape " + shape_str(v.shape),
                "must be (C,) = (" + std::to_string(c) + ",), one weight per class");
  }
  for (int64_t i = 0; i < c; ++i) {
    const double x = load_as_double(v.data, v.dtype, i * v.strides[0]);
    if (!std::isfinite(x)) {
      throw Error(ErrorKind::kInvalidArgument, op, "weight",
                  "weight[" + std::to_string(i) + "] = " + num(x), "weights must be finite");
    }
    w[static_cast<std::size_t>(i)] = x;
  }
  return w;
}

std::vector<int64_t> read_targets(const char* op, const ConstTensorView& t, int64_t c,
                                  int64_t ignore_index) {
  const int64_t rows = t.numel();
  std::vector<int64_t> out(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = row_offset(r, t.shape, t.strides);
    const int64_t v = t.dtype == DType::i64 ? static_cast<const int64_t*>(t.data)[off]
                                            : static_cast<const int32_t*>(t.data)[off];
    if (v != ignore_index && (v < 0 || v >= c)) {
      throw Error(ErrorKind::kInvalidArgument, op, "targets",
                  "targets[" + std::to_string(r) + "] = " + std::to_string(v),
                  "class ids must be in [0, " + std::to_string(c) + ") or equal ignore_index (" +
                      std::to_string(ignore_index) + ")");
    }
    out[static_cast<std::size_t>(r)] = v;
  }
  return out;
}

ReductionPlan plan_reduction(const CrossEntropyOptions& o, double mean_denom) {
  switch (o.reduction) {
    case Reduction::kNone: return {1.0, o.grad_scale};
    case Reduction::kSum: return {o.normalizer, o.grad_scale / o.normalizer};
    case Reduction::kMean: return {mean_denom, mean_denom == 0.0 ? 0.0 : o.grad_scale / mean_denom};
  }
  return {1.0, o.grad_scale};
}

std::vector<double> read_grad_output(const char* op, const CrossEntropyOptions& o,
                                     const std::vector<int64_t>& rows_shape) {
  std::vector<double> go;
  if (!o.grad_output) return go;
  const ConstTensorView& v = *o.grad_output;
  if (o.reduction != Reduction::kNone) {
    throw Error(ErrorKind::kInvalidArgument, op, "grad_output", "set",
                "applies only to reduction none (use grad_scale for the scalar upstream "
                "gradient of sum and mean)");
  }
  check_view(op, "grad_output", v);
  check_float_dtype(op, "grad_output", v.dtype);
  check_same_shape(op, "grad_output", rows_shape, v.shape);
  const int64_t rows = v.numel();
  go.resize(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    go[static_cast<std::size_t>(r)] =
        load_as_double(v.data, v.dtype, row_offset(r, v.shape, v.strides));
  }
  return go;
}

void store_loss(const TensorView& v, int64_t off, double value) {
  store_from_double(v.data, v.dtype, off, value);
}

}  // namespace detail

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using detail::LossJob;
using detail::RowGlobals;

template <typename CT>  // compute type: float or double
void run_rows(LossJob& job, int threads) {
  const cpu::KernelTable& sk = cpu::kernels();
  const int64_t c = job.c;
  const DType xt = job.x.dtype;
  const auto xes = static_cast<int64_t>(dtype_size(xt));
  std::vector<CT> wct;
  if (job.has_w) wct.assign(job.w.begin(), job.w.end());
  const auto* xb = static_cast<const char*>(job.x.data);

  detail::parallel_for(
      job.rows, job.rows * c >= detail::kMinParallelElems ? threads : 1, [&](int64_t b, int64_t e) {
        std::vector<unsigned char> xs, gs, ls;
        std::vector<CT> v;
        std::vector<double> sums;
        for (int64_t r = b; r < e; ++r) {
          const char* xrow = xb + detail::row_offset(r, job.row_dims, job.x_row_strides) * xes;
          const void* src = xrow;
          if (job.class_step != 1) {
            xs.resize(static_cast<std::size_t>(c * xes));
            detail::gather(xrow, job.class_step, c, static_cast<std::size_t>(xes), xs.data());
            src = xs.data();
          }
          RowGlobals g;
          // log_softmax's statistics (src/core/row_stats.hpp), so the log-probs are its bits.
          if (job.logits) g.st = detail::row_stats_log(sk, src, xt, c, cpu::Temperature{}, 1);
          const double m = job.logits && !g.st.special() ? g.st.max : 0.0;
          const int64_t t = job.soft ? -1 : job.hard[static_cast<std::size_t>(r)];
          if (!job.soft && t != job.ignore_index) g.xt = detail::load_as_double(src, xt, t);
          if (job.soft) {
            detail::soft_weights(job, r, v, sums);
            for (double part : sums) g.s += part;
          }
          const bool kept = job.soft || t != job.ignore_index;
          if (job.needs_dot() && kept) {
            const CT* wv = job.soft ? v.data() : job.has_w ? wct.data() : nullptr;
            const std::vector<detail::DotPart> parts = detail::chunk_dots(src, xt, wv, c, m);
            g.dot = detail::combine_dots(parts.data(), static_cast<int64_t>(parts.size()));
          }
          detail::finish_row(job, r, src, g, job.soft ? v.data() : nullptr,
                             job.has_w ? wct.data() : nullptr, gs, ls);
        }
      });
}

void loss_op(const char* op, bool logits, const ConstTensorView& x, const ConstTensorView& targets,
             const CrossEntropyOutputs& out, const CrossEntropyOptions& o) {
  LossJob job = detail::prepare_loss(op, logits, x, targets, out, o);
  if (job.c > 0 || job.rows == 0) {
    const int threads = detail::current_exec().threads;
    if (x.dtype == DType::f64)
      run_rows<double>(job, threads);
    else
      run_rows<float>(job, threads);
  } else {
    // C == 0: every row is empty: lse -inf; a kept row's loss is NaN (no class to pick cannot
    // happen: targets were validated against C = 0, so every row is ignored).
    std::fill(job.lse.begin(), job.lse.end(), -kInf);
  }
  detail::store_loss_outputs(job, out, o);
}

}  // namespace

void cross_entropy(ConstTensorView logits, ConstTensorView targets, const CrossEntropyOutputs& out,
                   const CrossEntropyOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("cross_entropy", context, options.threads);
  loss_op("cross_entropy", true, logits, targets, out, options);
}

void nll_loss(ConstTensorView log_probs, ConstTensorView targets, const CrossEntropyOutputs& out,
              const CrossEntropyOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("nll_loss", context, options.threads);
  loss_op("nll_loss", false, log_probs, targets, out, options);
}

}  // namespace softmax

namespace softmax::detail {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const char* reduction_name(Reduction r) {
  return r == Reduction::kNone ? "none" : r == Reduction::kSum ? "sum" : "mean";
}
void split_strides(const std::vector<int64_t>& strides, int64_t rank, std::vector<int64_t>& row,
                   int64_t& class_step) {
  row.clear();
  if (rank == 1) {
    class_step = strides[0];
    return;
  }
  class_step = strides[1];
  for (int64_t j = 0; j < rank; ++j) {
    if (j != 1) row.push_back(strides[static_cast<std::size_t>(j)]);
  }
}
template <typename CT>
long double dot_ld(const void* x, DType t, const CT* v, int64_t c, double shift) {
  long double s = 0;
  for (int64_t i = 0; i < c; ++i) {
    const long double vi = v ? static_cast<long double>(v[i]) : 1.0L;
    if (vi != 0) s += vi * (static_cast<long double>(load_as_double(x, t, i)) - shift);
  }
  return s;
}
}  // namespace

LossJob prepare_loss(const char* op, bool logits, const ConstTensorView& x,
                     const ConstTensorView& targets, const CrossEntropyOutputs& out,
                     const CrossEntropyOptions& o, int64_t class_count, int64_t offset,
                     bool global_checks) {
  const char* xname = logits ? "logits" : "log_probs";
  check_view(op, xname, x);
  check_float_dtype(op, xname, x.dtype);
  if (x.rank() < 1) {
    throw Error(ErrorKind::kShapeMismatch, op, xname, "shape " + shape_str(x.shape),
                "must be (C), (N, C) or (N, C, d1, ..., dk): rank >= 1");
  }
  check_view(op, "targets", targets);
  check_ce_options(op, o, logits);

  LossJob job;
  job.logits = logits;
  job.x = x;
  const int64_t rank = x.rank();
  job.n = rank == 1 ? x.shape[0] : x.shape[1];
  job.c = class_count < 0 ? job.n : class_count;
  job.offset = offset;
  for (int64_t j = 0; j < rank; ++j) {
    if (rank > 1 && j != 1) job.row_dims.push_back(x.shape[static_cast<std::size_t>(j)]);
  }
  split_strides(x.strides, rank, job.x_row_strides, job.class_step);
  job.rows = 1;
  for (int64_t d : job.row_dims) job.rows *= d;

  // Targets: integer class ids of the rows' shape, or probabilities of x's shape.
  if (targets.dtype == DType::i32 || targets.dtype == DType::i64) {
    check_same_shape(op, "targets", job.row_dims, targets.shape);
  } else if (targets.dtype == DType::f32 || targets.dtype == DType::f64 ||
             targets.dtype == DType::bf16 || targets.dtype == DType::f16) {
    job.soft = true;
    check_same_shape(op, "targets", x.shape, targets.shape);
    job.q = targets;
    split_strides(targets.strides, rank, job.q_row_strides, job.q_class_step);
  }
  if (global_checks) {
    job.w = read_class_weights(op, o, job.c, job.has_w);
    job.w_sum = class_weight_sum(job.w, job.c);
  }
  job.eps = o.label_smoothing;
  job.z = o.z_loss;
  job.ignore_index = o.ignore_index;

  // Outputs.
  check_output_view(op, "loss", out.loss);
  check_float_dtype(op, "loss", out.loss.dtype);
  const std::vector<int64_t> loss_shape =
      o.reduction == Reduction::kNone ? job.row_dims : std::vector<int64_t>{};
  if (out.loss.shape != loss_shape) {
    throw Error(ErrorKind::kShapeMismatch, op, "loss", "shape " + shape_str(out.loss.shape),
                std::string("must be ") + shape_str(loss_shape) + " for reduction " +
                    reduction_name(o.reduction));
  }
  auto check_full = [&](const char* name, const TensorView& v) {
    check_output_view(op, name, v);
    check_compute_pair(op, x.dtype, name, v.dtype);
    check_same_shape(op, name, x.shape, v.shape);
  };
  job.go = read_grad_output(op, o, job.row_dims);
  if (out.grad) check_full("grad", *out.grad);
  if (out.log_probs) {
    if (!logits) {
      throw Error(ErrorKind::kInvalidArgument, op, "log_probs output", "set",
                  "nll_loss takes log-probs as input and has no log-prob output");
    }
    check_full("log_probs", *out.log_probs);
  }
  if (out.lse) {
    if (!logits) {
      throw Error(ErrorKind::kInvalidArgument, op, "lse", "set",
                  "nll_loss has no logsumexp output (its input is already normalised)");
    }
    check_output_view(op, "lse", *out.lse);
    check_float_dtype(op, "lse", out.lse->dtype);
    check_same_shape(op, "lse", job.row_dims, out.lse->shape);
  }
  // Overlaps: grad and log_probs may each be x exactly (not both); nothing else may overlap.
  std::vector<std::pair<const char*, ConstTensorView>> ins{{xname, x}, {"targets", targets}};
  if (o.weight) ins.emplace_back("weight", *o.weight);
  if (o.grad_output) ins.emplace_back("grad_output", *o.grad_output);
  std::vector<std::pair<const char*, ConstTensorView>> outs{{"loss", out.loss}};
  if (out.grad) outs.emplace_back("grad", *out.grad);
  if (out.log_probs) outs.emplace_back("log_probs", *out.log_probs);
  if (out.lse) outs.emplace_back("lse", *out.lse);
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const bool may_alias_x =
        std::string(outs[i].first) == "grad" || std::string(outs[i].first) == "log_probs";
    for (const auto& in : ins) {
      check_no_overlap(op, in.second, outs[i].second, may_alias_x && &in == &ins[0], outs[i].first,
                       in.first);
    }
    for (std::size_t j = 0; j < i; ++j) {
      check_no_overlap(op, outs[j].second, outs[i].second, false, outs[i].first, outs[j].first);
    }
  }
  if (!job.soft && targets.dtype != DType::i32 && targets.dtype != DType::i64) {
    throw Error(ErrorKind::kDTypeMismatch, op, "targets", dtype_name(targets.dtype),
                "must be i32/i64 class ids or a floating tensor of probabilities");
  }
  if (!global_checks) return job;
  if (!job.soft) job.hard = read_targets(op, targets, job.c, o.ignore_index);
  // Everything is valid from here on: nothing above wrote any output.

  double mean_denom = static_cast<double>(job.rows);
  if (!job.soft) {
    mean_denom = 0.0;
    for (int64_t t : job.hard) {
      if (t != o.ignore_index) mean_denom += class_weight(job.w, t);
    }
  }
  job.plan = plan_reduction(o, mean_denom);
  job.g = job.plan.g;
  job.grad = out.grad ? &*out.grad : nullptr;
  job.lp = out.log_probs ? &*out.log_probs : nullptr;
  if (job.grad) split_strides(job.grad->strides, rank, job.grad_row_strides, job.grad_class_step);
  if (job.lp) split_strides(job.lp->strides, rank, job.lp_row_strides, job.lp_class_step);
  job.loss.assign(static_cast<std::size_t>(job.rows), 0.0);
  job.lse.assign(static_cast<std::size_t>(job.rows), 0.0);
  return job;
}

template <typename CT>
void soft_weights(const LossJob& job, int64_t r, std::vector<CT>& v, std::vector<double>& sums) {
  const int64_t n = job.n;
  const double cd = static_cast<double>(job.c);
  v.resize(static_cast<std::size_t>(n));
  sums.clear();
  const char* qrow =
      static_cast<const char*>(job.q.data) + row_offset(r, job.row_dims, job.q_row_strides) *
                                                 static_cast<int64_t>(dtype_size(job.q.dtype));
  double s_chunk = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double q = load_as_double(qrow, job.q.dtype, i * job.q_class_step);
    const double vq = class_weight(job.w, job.offset + i) * ((1.0 - job.eps) * q + job.eps / cd);
    v[static_cast<std::size_t>(i)] = static_cast<CT>(vq);
    s_chunk += vq;
    if ((i + 1) % cpu::kChunkElems == 0 || i + 1 == n) {
      sums.push_back(s_chunk);
      s_chunk = 0.0;
    }
  }
}

template <typename CT>
std::vector<DotPart> chunk_dots(const void* x, DType t, const CT* v, int64_t n, double shift) {
  const cpu::CrossEntropyKernels& k = cpu::cross_entropy_kernels();
  const auto es = static_cast<int64_t>(dtype_size(t));
  std::vector<DotPart> parts;
  for (int64_t off = 0; off < n; off += cpu::kChunkElems) {
    const int64_t len = std::min(cpu::kChunkElems, n - off);
    const char* xc = static_cast<const char*>(x) + off * es;
    DotPart p;
    p.d = k.shifted_dot(xc, t, v ? v + off : nullptr, len, shift);
    if (std::isinf(p.d)) p.ld = dot_ld(xc, t, v ? v + off : nullptr, len, shift);
    parts.push_back(p);
  }
  return parts;
}

ChunkedDot combine_dots(const DotPart* parts, int64_t count) {
  ChunkedDot r;
  for (int64_t j = 0; j < count; ++j) r.d += parts[j].d;
  if (!std::isinf(r.d)) return r;
  r.wide = true;
  for (int64_t j = 0; j < count; ++j) {
    r.ld += std::isinf(parts[j].d) ? parts[j].ld : static_cast<long double>(parts[j].d);
  }
  return r;
}

template <typename CT>
void finish_row(LossJob& job, int64_t r, const void* src, const RowGlobals& gl, const CT* v,
                const CT* w_ct, std::vector<unsigned char>& gs, std::vector<unsigned char>& ls) {
  using cpu::CeWrite;
  using cpu::RowOut;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const cpu::CrossEntropyKernels& k = cpu::cross_entropy_kernels();
  const cpu::KernelTable& sk = cpu::kernels();
  const DType xt = job.x.dtype;
  const int64_t n = job.n;
  const double cd = static_cast<double>(job.c);
  double m = 0.0, log_sum = 0.0, inv_sum = 1.0, lse = 0.0;
  bool special = false;
  if (job.logits) {
    const RowStats& st = gl.st;
    if (st.has_nan) {
      special = true;
      lse = kNaN;
    } else if (!(st.max > -kInf && st.max < kInf)) {
      special = true;
      lse = job.c == 0 ? -kInf : st.max;  // +inf, or -inf for an all -inf or empty row
    } else {
      m = st.max;
      log_sum = st.log_sum();
      inv_sum = 1.0 / st.sum;
      lse = m + log_sum;
    }
  }
  job.lse[static_cast<std::size_t>(r)] = lse;

  // Loss terms and gradient coefficients.
  const double g = job.go.empty() ? job.g : job.g * job.go[static_cast<std::size_t>(r)];
  bool kept = true;
  double loss = 0.0;
  CeWrite p{m, inv_sum, log_sum, 0.0, 0.0, 0.0, -1, nullptr, job.logits};
  if (!job.soft) {
    const int64_t t = job.hard[static_cast<std::size_t>(r)];
    kept = t != job.ignore_index;
    if (kept) {
      const double wt = class_weight(job.w, t);
      const double xt_v = gl.xt;
      const double lp_t = (xt_v - m) - log_sum;
      const double a = (1.0 - job.eps) * wt;
      loss = a == 0.0 ? 0.0 : a * -lp_t;  // 0 * log 0 = 0 (zero weight, or eps = 1)
      if (a != 0.0 && std::isinf(lp_t) && std::isfinite(xt_v) && !special) {
        // f64: x_t - max overflowed (finite logits of opposite huge signs)
        loss = static_cast<double>(a * -((static_cast<long double>(xt_v) - m) - log_sum));
      }
      if (job.eps != 0.0) {
        if (gl.dot.wide && !special) {  // f64 lanes overflowed (f32 rows: never)
          loss = static_cast<double>(static_cast<long double>(loss) +
                                     job.eps / cd * (job.w_sum * log_sum - gl.dot.ld));
        } else {
          loss += job.eps / cd * (job.w_sum * log_sum - gl.dot.d);
        }
      }
      if (job.z != 0.0) loss += job.z * lse * lse;
      const auto co = hard_row_coeffs(g, wt, job.eps, cd, job.w_sum, job.z, lse, job.logits);
      p.alpha = co.alpha;
      p.beta = co.beta;
      p.gamma = co.gamma;
      p.target = t >= job.offset && t < job.offset + n ? t - job.offset : -1;
      p.v = job.has_w && job.eps != 0.0 ? w_ct + job.offset : nullptr;
      if (!p.v && job.eps == 0.0) p.beta = 0.0;
    }
  } else {
    loss = gl.s * log_sum - gl.dot.d;
    if (gl.dot.wide && !special) {  // f64 lanes overflowed (f32 rows: never)
      loss = static_cast<double>(gl.s * log_sum - gl.dot.ld);
    }
    if (job.z != 0.0) loss += job.z * lse * lse;
    p.alpha = job.logits ? g * (gl.s + 2.0 * job.z * lse) : 0.0;
    p.beta = g;
    p.v = v;
  }
  if (special && kept) loss = kNaN;
  job.loss[static_cast<std::size_t>(r)] = kept ? loss : 0.0;

  // Outputs over the classes held: log-probs first unless they overwrite the input in place.
  auto write = [&](const TensorView* out, const std::vector<int64_t>& rs, int64_t step, RowOut what,
                   std::vector<unsigned char>& scratch) {
    const auto oes = static_cast<int64_t>(dtype_size(out->dtype));
    char* orow = static_cast<char*>(out->data) + row_offset(r, job.row_dims, rs) * oes;
    void* dst = orow;
    if (step != 1) {
      scratch.resize(static_cast<std::size_t>(n * oes));
      dst = scratch.data();
    }
    const bool nan_row = special && (what == RowOut::kLogProb || kept);
    if (nan_row) {
      for (int64_t i = 0; i < n; ++i) store_from_double(dst, out->dtype, i, kNaN);
    } else if (what == RowOut::kGrad && !kept) {
      for (int64_t i = 0; i < n; ++i) store_from_double(dst, out->dtype, i, 0.0);
    } else if (what == RowOut::kLogProb && job.logits) {
      // log_softmax's own kernel and statistics: the same bits as softmax::log_softmax.
      sk.normalize(src, xt, dst, out->dtype, n, m, cpu::Temperature{}, log_sum,
                   cpu::RowMode::kLogSoftmax);
    } else {
      k.write(src, xt, dst, out->dtype, n, p, what);
    }
    if (step != 1) scatter(dst, n, static_cast<std::size_t>(oes), orow, step);
  };
  const bool lp_in_place = job.lp && job.lp->data == job.x.data;
  if (job.lp && !lp_in_place)
    write(job.lp, job.lp_row_strides, job.lp_class_step, RowOut::kLogProb, ls);
  if (job.grad) write(job.grad, job.grad_row_strides, job.grad_class_step, RowOut::kGrad, gs);
  if (lp_in_place) write(job.lp, job.lp_row_strides, job.lp_class_step, RowOut::kLogProb, ls);
}

void store_loss_outputs(const LossJob& job, const CrossEntropyOutputs& out,
                        const CrossEntropyOptions& o) {
  if (o.reduction == Reduction::kNone) {
    for (int64_t r = 0; r < job.rows; ++r) {
      store_loss(out.loss, row_offset(r, job.row_dims, out.loss.strides),
                 job.loss[static_cast<std::size_t>(r)]);
    }
  } else {
    double s = 0.0;
    for (double l : job.loss) s += l;
    store_loss(out.loss, 0, job.plan.denom == 0.0 ? kNaN : s / job.plan.denom);
  }
  if (out.lse) {
    for (int64_t r = 0; r < job.rows; ++r) {
      store_loss(*out.lse, row_offset(r, job.row_dims, out.lse->strides),
                 job.lse[static_cast<std::size_t>(r)]);
    }
  }
}

template void soft_weights<float>(const LossJob&, int64_t, std::vector<float>&,
                                  std::vector<double>&);
template void soft_weights<double>(const LossJob&, int64_t, std::vector<double>&,
                                   std::vector<double>&);
template std::vector<DotPart> chunk_dots<float>(const void*, DType, const float*, int64_t, double);
template std::vector<DotPart> chunk_dots<double>(const void*, DType, const double*, int64_t,
                                                 double);
template void finish_row<float>(LossJob&, int64_t, const void*, const RowGlobals&, const float*,
                                const float*, std::vector<unsigned char>&,
                                std::vector<unsigned char>&);
template void finish_row<double>(LossJob&, int64_t, const void*, const RowGlobals&, const double*,
                                 const double*, std::vector<unsigned char>&,
                                 std::vector<unsigned char>&);

}  // namespace softmax::detail
