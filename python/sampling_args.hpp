// python/sampling_args.hpp: the keyword arguments of the sampling family's bindings
// (bind_sampling.cc): scalar-or-per-row parameters, 64-bit seeds / offsets / streams, and the
// logit processors (prev_tokens, logit_bias, banned_tokens, ...) turned into the library's
// SamplingParams / LogitProcessors. Each struct owns the values its views point into.
#pragma once

#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common.hpp"
#include "softmax/logit_processors.hpp"
#include "softmax/sampling.hpp"

namespace softmax_py {

inline std::string param_name(const char* op, const char* name) {
  return std::string("softmax.") + op + ": " + name;
}

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
        throw py::type_error(
            param_name(op, name) +
            (std::is_integral_v<T> ? " must be an integer that fits int64" : " must be a number") +
            " or one per row");
      }
      return;
    }
    py::module_ np = py::module_::import("numpy");
    py::array raw = np.attr("ravel")(np.attr("asarray")(h));
    if constexpr (std::is_integral_v<T>) {
      // Integer parameters: per-row floats must be whole numbers (2.5 is refused, as the
      // scalar form refuses it), never truncated.
      const char kind = raw.dtype().kind();
      if (kind != 'i' && kind != 'u' && kind != 'b' && raw.size() > 0) {
        const bool whole =
            kind == 'f' &&
            py::cast<bool>(np.attr("all")(np.attr("equal")(raw, np.attr("floor")(raw))));
        if (!whole) {
          throw py::type_error(param_name(op, name) + " must hold integers, not " +
                               py::str(raw.dtype()).cast<std::string>() + " values like " +
                               py::str(raw.attr("__getitem__")(0)).cast<std::string>());
        }
      }
      // ... that fit int64 (uint64 2^64 - 1 or a float 1e30 would wrap in the cast).
      if ((kind == 'u' || kind == 'f') && raw.size() > 0) {
        const double lim = 9223372036854775808.0;  // 2^63
        const bool fits =
            kind == 'u' ? py::cast<bool>(np.attr("all")(np.attr("less_equal")(
                              raw, py::int_(std::numeric_limits<int64_t>::max()))))
                        : py::cast<bool>(np.attr("all")(np.attr("logical_and")(
                              np.attr("greater_equal")(raw, -lim), np.attr("less")(raw, lim))));
        if (!fits) {
          throw py::value_error(param_name(op, name) + " must hold integers that fit int64");
        }
      }
    }
    py::array_t<T, py::array::c_style | py::array::forcecast> a = raw;
    values.assign(a.data(), a.data() + a.size());
    per_row = true;
  }
  softmax::PerRow<T> get() const {
    return per_row ? softmax::PerRow<T>(std::span<const T>(values)) : softmax::PerRow<T>(scalar);
  }
};

// Integers in [0, 2^64) (any integer dtype or Python ints); never wrapped or rounded.
inline std::vector<uint64_t> parse_u64s(py::handle obj, const char* op, const char* name) {
  py::module_ np = py::module_::import("numpy");
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    // Python ints one by one: numpy would turn [0, 2**63] into float64.
    std::vector<uint64_t> out;
    for (py::handle v : obj) {
      if (!py::hasattr(v, "__index__")) {
        throw py::type_error(param_name(op, name) + " must be integers, not " +
                             py::str(py::type::of(v).attr("__name__")).cast<std::string>());
      }
      const py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
      if (py::cast<bool>(i.attr("__lt__")(0)) ||
          py::cast<bool>(i.attr("__ge__")(py::int_(1).attr("__lshift__")(64)))) {
        throw py::value_error(param_name(op, name) + " must be in [0, 2^64)");
      }
      out.push_back(py::cast<uint64_t>(i));
    }
    return out;
  }
  py::array a = np.attr("ravel")(obj);
  const char kind = a.dtype().kind();
  if (kind == 'O')
    a = np.attr("ravel")(np.attr("array")(obj, "uint64"));  // ints >= 2^63 mix
  else if (kind != 'i' && kind != 'u' && a.size() > 0) {
    throw py::type_error(param_name(op, name) + " must be integers, not " +
                         py::str(a.dtype()).cast<std::string>());
  }
  if (a.dtype().kind() == 'i' && py::cast<bool>(np.attr("any")(np.attr("less")(a, 0)))) {
    throw py::value_error(param_name(op, name) + " must be in [0, 2^64)");
  }
  py::array_t<uint64_t, py::array::c_style | py::array::forcecast> s = a;
  return std::vector<uint64_t>(s.data(), s.data() + s.size());
}

// A value that is one integer (a Python int, a NumPy integer scalar such as np.int64(5) or
// rng.integers(...), a 0-d array), as opposed to a sequence of them.
inline bool is_one_integer(py::handle h) {
  if (py::isinstance<py::array>(h)) return py::reinterpret_borrow<py::array>(h).ndim() == 0;
  return py::hasattr(h, "__index__") && !py::hasattr(h, "__len__");
}

// One seed or offset for the whole call: an integer in [0, 2^64) (is_one_integer); anything
// else is a TypeError, out of range a ValueError, both naming the argument.
inline uint64_t u64_scalar(py::handle h, const char* op, const char* name) {
  if (!is_one_integer(h)) {
    throw py::type_error(param_name(op, name) + " must be an integer in [0, 2^64), not " +
                         py::str(py::type::of(h).attr("__name__")).cast<std::string>());
  }
  if (py::isinstance<py::array>(h)) return parse_u64s(h, op, name).at(0);  // 0-d
  return parse_u64s(py::make_tuple(h), op, name).at(0);
}

// One value per row (streams, per-row seeds / offsets): C++ reads an empty list as "not given",
// so an empty one is refused; `otherwise` says what to give instead.
inline std::vector<uint64_t> per_row_u64s(py::handle h, const char* op, const char* name,
                                          const char* otherwise) {
  std::vector<uint64_t> v = parse_u64s(h, op, name);
  if (v.empty()) {
    throw py::value_error(param_name(op, name) + " = []: give one value per row, or " + otherwise);
  }
  return v;
}

// seed / offset: a Python int in [0, 2^64) for every row, or one per row.
struct U64Param {
  uint64_t scalar = 0;
  std::vector<uint64_t> values;
  U64Param(py::handle h, const char* op, const char* name) {
    if (is_one_integer(h)) {
      scalar = u64_scalar(h, op, name);  // every row
    } else {
      values = per_row_u64s(h, op, name, "one value for every row");
    }
  }
};

// 1-d integer ids (numpy / torch / sequence).
inline std::vector<int64_t> int_list(py::handle obj, const char* op, const char* name) {
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("ravel")(np.attr("asarray")(obj));
  if (a.size() > 0 && a.dtype().kind() != 'i' && a.dtype().kind() != 'u') {
    throw py::type_error(param_name(op, name) + " must hold integer token ids");
  }
  py::array_t<int64_t, py::array::c_style | py::array::forcecast> s = a;
  return std::vector<int64_t>(s.data(), s.data() + s.size());
}

// prev_tokens / banned_tokens: None; a 1-d array (one list for every row); a 2-d array (B, L)
// padded with -1; or a sequence of per-row 1-d sequences (ragged).
struct ListsArg {
  std::vector<int64_t> ids, offsets;
  softmax::TokenLists get() const { return {ids, offsets}; }

  ListsArg(py::handle obj, const char* op, const char* name) {
    if (obj.is_none()) return;
    py::module_ np = py::module_::import("numpy");
    const bool ragged = (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) &&
                        py::len(obj) > 0 && !py::isinstance<py::int_>(obj[py::int_(0)]) &&
                        py::hasattr(obj[py::int_(0)], "__len__");
    if (ragged) {
      offsets.push_back(0);
      for (py::handle row : obj) {
        const std::vector<int64_t> r = int_list(row, op, name);
        ids.insert(ids.end(), r.begin(), r.end());
        offsets.push_back(static_cast<int64_t>(ids.size()));
      }
      return;
    }
    py::array a = np.attr("asarray")(obj);
    if (a.ndim() > 2)
      throw py::value_error(param_name(op, name) + " must be 1-d, 2-d (padded with -1) or ragged");
    const std::vector<int64_t> flat = int_list(a, op, name);
    if (a.ndim() < 2) {
      ids = flat;
      return;
    }
    const auto rows = static_cast<std::size_t>(a.shape(0)),
               cols = static_cast<std::size_t>(a.shape(1));
    offsets.push_back(0);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        if (flat[r * cols + c] != -1) ids.push_back(flat[r * cols + c]);  // -1: padding
      }
      offsets.push_back(static_cast<int64_t>(ids.size()));
    }
  }
};

// logit_bias: None, a dict {id: bias}, an (ids, values) pair (both for every row), or a
// sequence of per-row dicts (None for no bias).
struct BiasArg {
  std::vector<int64_t> ids, offsets;
  std::vector<double> values;

  // Keys: integer token ids (int or NumPy integer); values: numbers.
  void add_dict(py::handle d, const char* op) {
    for (auto item : py::reinterpret_borrow<py::dict>(d)) {
      if (!py::hasattr(item.first, "__index__")) {
        throw py::type_error(
            param_name(op, "logit_bias") + " keys must be integer token ids, not " +
            py::str(py::type::of(item.first).attr("__name__")).cast<std::string>());
      }
      try {
        ids.push_back(py::cast<int64_t>(item.first));
        values.push_back(py::cast<double>(item.second));
      } catch (py::cast_error&) {
        throw py::type_error(param_name(op, "logit_bias") + " must map int64 token ids to numbers");
      }
    }
  }
  BiasArg(py::handle obj, const char* op) {
    if (obj.is_none()) return;
    if (py::isinstance<py::dict>(obj)) {
      add_dict(obj, op);
      return;
    }
    if (py::isinstance<py::tuple>(obj) && py::len(obj) == 2 &&
        !py::isinstance<py::dict>(obj[py::int_(0)])) {
      ids = int_list(obj[py::int_(0)], op, "logit_bias ids");
      py::array_t<double, py::array::c_style | py::array::forcecast> v =
          py::module_::import("numpy").attr("ravel")(obj[py::int_(1)]);
      values.assign(v.data(), v.data() + v.size());
      return;
    }
    if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
      offsets.push_back(0);
      for (py::handle row : obj) {
        if (!row.is_none()) {
          if (!py::isinstance<py::dict>(row)) {
            throw py::type_error(param_name(op, "logit_bias") +
                                 " per row must be dicts {id: bias} or None");
          }
          add_dict(row, op);
        }
        offsets.push_back(static_cast<int64_t>(ids.size()));
      }
      return;
    }
    throw py::type_error(param_name(op, "logit_bias") +
                         " must be a dict {id: bias}, an (ids, values) pair or one dict per row");
  }
};

// The logit processors' keywords.
struct ProcessorArgs {
  ListsArg prev, banned;
  RowParam<double> repetition, presence, frequency;
  BiasArg bias;
  std::vector<int64_t> eos;
  RowParam<int64_t> min_tokens, num_generated;
  softmax::LogitProcessors lp;

  ProcessorArgs(const char* op, py::handle prev_tokens, py::handle repetition_penalty,
                py::handle presence_penalty, py::handle frequency_penalty, py::handle logit_bias,
                py::handle banned_tokens, py::handle min_tokens_, py::handle eos_token_ids,
                py::handle num_generated_)
      : prev(prev_tokens, op, "prev_tokens"),
        banned(banned_tokens, op, "banned_tokens"),
        repetition(repetition_penalty, op, "repetition_penalty"),
        presence(presence_penalty, op, "presence_penalty"),
        frequency(frequency_penalty, op, "frequency_penalty"),
        bias(logit_bias, op),
        min_tokens(min_tokens_, op, "min_tokens"),
        num_generated(num_generated_.is_none() ? py::int_(-1) : num_generated_, op,
                      "num_generated") {
    if (!eos_token_ids.is_none()) eos = int_list(eos_token_ids, op, "eos_token_ids");
    lp.prev_tokens = prev.get();
    lp.repetition_penalty = repetition.get();
    lp.presence_penalty = presence.get();
    lp.frequency_penalty = frequency.get();
    lp.logit_bias = {bias.ids, bias.offsets};
    lp.logit_bias_values = bias.values;
    lp.banned_tokens = banned.get();
    lp.eos_token_ids = eos;
    lp.min_tokens = min_tokens.get();
    lp.num_generated = num_generated.get();
  }
};

// Filters, method, seeds, offsets, streams and threads of a sampling call.
struct SampleArgs {
  RowParam<double> temperature;
  RowParam<int64_t> top_k;
  RowParam<double> top_p;
  RowParam<double> min_p;
  U64Param seed, offset;
  std::vector<uint64_t> streams;
  softmax::SamplingParams params;

  SampleArgs(const char* op, py::handle t, py::handle k, py::handle p, py::handle mp,
             const std::string& method, py::handle seed_, py::handle offset_,
             py::handle streams_obj, int threads)
      : temperature(t, op, "temperature"),
        top_k(k, op, "top_k"),
        top_p(p, op, "top_p"),
        min_p(mp, op, "min_p"),
        seed(seed_, op, "seed"),
        offset(offset_, op, "offset") {
    params.temperature = temperature.get();
    params.top_k = top_k.get();
    params.top_p = top_p.get();
    params.min_p = min_p.get();
    if (method == "inverse_cdf") {
      params.method = softmax::SamplingMethod::kInverseCdf;
    } else if (method == "gumbel_max") {
      params.method = softmax::SamplingMethod::kGumbelMax;
    } else {
      throw py::value_error(param_name(op, "method") + " = '" + method +
                            "': must be 'inverse_cdf' or 'gumbel_max'");
    }
    if (!streams_obj.is_none()) {
      streams = per_row_u64s(streams_obj, op, "streams", "None (the row index)");
      params.streams = streams;
    }
    params.seeds = seed.values;
    params.offsets = offset.values;
    params.threads = parse_threads(threads, op);
  }
};

// top_logprobs' result as (ids (rows, n) int64, log-probs (rows, n) float64 for f64 logits,
// float32 otherwise), arrays of the input's kind.
inline py::tuple top_logprobs_arrays(const Operand& xin, const softmax::TopLogprobs& r,
                                     const char* op) {
  const softmax::DType lt =
      xin.view.dtype == softmax::DType::f64 ? softmax::DType::f64 : softmax::DType::f32;
  Operand ids = new_output(xin.kind, {r.rows, r.n}, softmax::DType::i64, op);
  Operand lps = new_output(xin.kind, {r.rows, r.n}, lt, op);
  auto* ip = static_cast<int64_t*>(ids.view.data);
  if (!r.ids.empty()) std::memcpy(ip, r.ids.data(), r.ids.size() * sizeof(int64_t));
  for (std::size_t i = 0; i < r.logprobs.size(); ++i) {
    if (lt == softmax::DType::f64)
      static_cast<double*>(lps.view.data)[i] = r.logprobs[i];
    else
      static_cast<float*>(lps.view.data)[i] = static_cast<float>(r.logprobs[i]);
  }
  return py::make_tuple(ids.owner, lps.owner);
}

}  // namespace softmax_py
