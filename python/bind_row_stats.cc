// python/bind_row_stats.cc: softmax_stats, merge_stats, softmax_from_stats,
// log_softmax_from_stats, logsumexp_from_stats (softmax/row_stats.hpp).
#include "softmax/row_stats.hpp"

#include <cstring>

#include "common.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

// Whether the first record of a statistics operand says f64 compute (false when empty or not
// statistics: the library then reports the problem).
bool stats_f64(const Operand& s) {
  const softmax::TensorView& v = s.view;
  if (v.dtype != DType::f64 || v.rank() < 2 || v.shape.back() != softmax::kStatsFields) {
    return false;
  }
  for (int64_t d : v.shape) {
    if (d == 0) return true;  // no records: f64 output (any dtype is accepted then)
  }
  const double flags = static_cast<const double*>(v.data)[softmax::kStatFlags * v.strides.back()];
  return flags >= 2.0;
}

constexpr const char* kStatsDoc =
    R"doc(softmax_stats(x, axis=-1, temperature=1.0, *, refine=None, out=None, threads=0)

Partial softmax statistics of every row of `x` (or of a slice of every row) along `axis`.

A row of ``n`` classes is cut into chunks of 32768 classes (``softmax.STATS_CHUNK``) from its
first class, as the single-process softmax family cuts it; the statistics are one record per
chunk, in class order. Merge the statistics of the slices of a row in class order
(:func:`merge_stats`) and finish each slice with :func:`softmax_from_stats`,
:func:`log_softmax_from_stats`, or the row with :func:`logsumexp_from_stats`.

Parameters
----------
x : array_like or tensor, shape (..., n, ...)
    float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor (also
    bfloat16), not copied: the row (or the slice of the row) this caller holds.
axis : int, optional
    The class axis (default -1).
temperature : float, optional
    ``T`` in ``softmax(x / T)``, finite and > 0 (recorded in the statistics). Default 1.
refine : ndarray, optional
    The merged first-pass statistics of the whole rows: the records are recomputed with the
    row's maximum known where the single-process ops do so (f64 rows longer than 32768 classes,
    near-certain rows in the log modes), which makes aligned splits bit-identical for every
    dtype. Running it when not needed returns the first-pass records.
out : ndarray, optional
    float64 output of the statistics' shape.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
stats : ndarray or tensor of float64, shape (rows..., C, 8)
    ``rows...`` is the shape of `x` without `axis`, ``C = max(1, ceil(n / 32768))``. Fields of
    each record (last axis): 0 max, 1 sum of exp((x - max) / T), 2 max of the log-mode sum,
    3 ones, 4 rest (log-mode sum = ones + rest), 5 count of classes, 6 flags (1: NaN seen,
    2: computed in f64), 7 temperature.

Raises
------
ValueError
    Bad axis, temperature, `out` shape, `refine` that disagrees with `x` or the temperature.
TypeError
    Unsupported dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> x = np.array([[1.0, 2.0, 3.0, 4.0]])
>>> s = softmax.merge_stats(softmax.softmax_stats(x[:, :2]), softmax.softmax_stats(x[:, 2:]))
>>> np.allclose(softmax.logsumexp_from_stats(s), softmax.logsumexp(x))
True
)doc";

constexpr const char* kMergeDoc = R"doc(merge_stats(a, b, *, out=None)

The statistics of two consecutive slices of the same rows, `a` first (class order).

The records are kept (concatenated along axis -2), so the merge is exact and associative but
not commutative; the finishing functions apply the online-softmax merge rule (Milakov &
Gimelshein 2018: ``M = max m_c``, ``S = sum s_c exp((m_c - M) / T)``, compensated, in class
order) to all records of a row, as the single-process ops do.

Parameters
----------
a, b : ndarray, shape (rows..., Ca, 8) and (rows..., Cb, 8), float64
    Statistics from :func:`softmax_stats` (or earlier merges) with the same temperature and
    compute type.
out : ndarray, optional
    float64 output of shape (rows..., Ca + Cb, 8).

Returns
-------
stats : ndarray or tensor of float64, shape (rows..., Ca + Cb, 8)

Raises
------
ValueError
    Mismatched rows, temperatures or compute types.

Examples
--------
>>> import numpy as np, softmax
>>> a = softmax.softmax_stats(np.zeros((2, 3)))
>>> softmax.merge_stats(a, a).shape
(2, 2, 8)
)doc";

constexpr const char* kSoftmaxFromDoc =
    R"doc(softmax_from_stats(x, stats, axis=-1, *, dtype=None, out=None, threads=0)

This slice's part of ``softmax(row / T)``, from the merged statistics of the whole rows.

Parameters
----------
x : array_like or tensor, shape (..., n_slice, ...)
    The slice (float16/32/64, bfloat16 tensors), any strides, not copied.
stats : ndarray, shape (rows..., C, 8), float64
    The merged statistics of the whole rows (``rows...``: the shape of `x` without `axis`);
    `T` is taken from them.
axis : int, optional
    The class axis of `x` (default -1).
dtype : dtype, optional
    Output dtype; default the dtype of `x` (float64 pairs only with float64).
out : ndarray or tensor, optional
    Output of the shape of `x`; may be `x` itself.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape of `x`

Raises
------
ValueError
    Statistics that do not match `x` (rows, compute type, fewer classes than the slice).
TypeError
    Unsupported dtypes.

Notes
-----
Bit-identical to the slice of ``softmax(row)`` when the slice starts at a multiple of 32768
and the statistics come from slices on that grid, merged in class order and refined
(see :func:`softmax_stats`); otherwise within softmax's error bound.

Examples
--------
>>> import numpy as np, softmax
>>> x = np.array([1.0, 2.0, 3.0])
>>> softmax.softmax_from_stats(x[1:], softmax.softmax_stats(x))
array([0.24472847, 0.66524096])
)doc";

constexpr const char* kLogSoftmaxFromDoc =
    R"doc(log_softmax_from_stats(x, stats, axis=-1, *, dtype=None, out=None, threads=0)

This slice's part of ``log_softmax(row / T)``, from the merged statistics of the whole rows.

Parameters
----------
x : array_like or tensor, shape (..., n_slice, ...)
    The slice (float16/32/64, bfloat16 tensors), any strides, not copied.
stats : ndarray, shape (rows..., C, 8), float64
    The merged statistics of the whole rows; `T` is taken from them.
axis : int, optional
    The class axis of `x` (default -1).
dtype : dtype, optional
    Output dtype; default the dtype of `x`.
out : ndarray or tensor, optional
    Output of the shape of `x`; may be `x` itself.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape of `x`

Raises
------
ValueError
    Statistics that do not match `x`.
TypeError
    Unsupported dtypes.

Notes
-----
Bit-identical to the slice of ``log_softmax(row)`` for any slice when the statistics are exact
(aligned slices, refined); otherwise within log_softmax's error bound.

Examples
--------
>>> import numpy as np, softmax
>>> x = np.array([1000.0, 1000.0])
>>> softmax.log_softmax_from_stats(x[:1], softmax.softmax_stats(x))
array([-0.69314718])
)doc";

constexpr const char* kLogsumexpFromDoc =
    R"doc(logsumexp_from_stats(stats, *, dtype=None, out=None, threads=0)

``logsumexp(row / T)`` of every row, from its merged statistics.

Parameters
----------
stats : ndarray, shape (rows..., C, 8), float64
    The merged statistics of the whole rows; `T` is taken from them.
dtype : dtype, optional
    Output dtype: float64 (default) for f64-computed statistics, float32 (default), float16 or
    bfloat16 for f32-computed ones (those of float32/16 and bfloat16 inputs).
out : ndarray or tensor, optional
    Output of shape ``rows...``.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape rows...

Raises
------
ValueError
    Not statistics (bad shape or fields).
TypeError
    An output dtype that does not match the statistics' compute type.

Notes
-----
An all -inf or empty row gives -inf, +inf gives +inf, NaN gives NaN. Bit-identical to
``logsumexp`` of the whole row for exact statistics; otherwise within its error bound.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.logsumexp_from_stats(softmax.softmax_stats(np.array([[0.0, 0.0], [10.0, 10.0]])))
array([ 0.69314718, 10.69314718])
)doc";

using FromFn = void (*)(softmax::ConstTensorView, softmax::ConstTensorView, softmax::TensorView,
                        const softmax::SoftmaxOptions&, const softmax::Context&);

py::object from_stats(const char* op, FromFn fn, py::handle x, py::handle stats, py::handle axis,
                      py::handle dtype, py::handle out, int threads) {
  softmax::SoftmaxOptions o;
  o.axis = parse_axis(axis, py::none(), op);
  o.threads = parse_threads(threads, op);
  const Operand xin = input(x, op, "x");
  const Operand sin = input(stats, op, "stats");
  Operand y = make_output(xin, out, dtype, xin.view.shape, xin.view.dtype, op);
  nogil([&] { fn(xin.cview(), sin.cview(), y.view, o, softmax::Context{}); });
  return y.owner;
}

void lib_softmax_from(softmax::ConstTensorView x, softmax::ConstTensorView s, softmax::TensorView y,
                      const softmax::SoftmaxOptions& o, const softmax::Context& c) {
  softmax::softmax_from_stats(std::move(x), std::move(s), std::move(y), o, c);
}
void lib_log_softmax_from(softmax::ConstTensorView x, softmax::ConstTensorView s,
                          softmax::TensorView y, const softmax::SoftmaxOptions& o,
                          const softmax::Context& c) {
  softmax::log_softmax_from_stats(std::move(x), std::move(s), std::move(y), o, c);
}

}  // namespace

void register_row_stats(py::module_& m) {
  m.attr("STATS_CHUNK") = softmax::kStatsChunk;
  m.def(
      "softmax_stats",
      [](py::handle x, py::handle axis, double temperature, py::handle refine, py::handle out,
         int threads) {
        const char* op = "softmax_stats";
        softmax::SoftmaxOptions o;
        o.axis = parse_axis(axis, py::none(), op);
        o.temperature = temperature;
        o.threads = parse_threads(threads, op);
        const Operand xin = input(x, op, "x");
        std::vector<int64_t> shape;
        if (xin.view.rank() >= 1 && o.axis >= -xin.view.rank() && o.axis < xin.view.rank()) {
          shape = softmax::softmax_stats_shape(xin.view.shape, o.axis);
        } else {
          shape = {1, softmax::kStatsFields};  // the library reports the bad axis
        }
        Operand s = make_output(xin, out, py::none(), shape, DType::f64, op);
        const std::optional<Operand> ref = optional_input(refine, op, "refine");
        nogil([&] {
          if (ref)
            softmax::softmax_stats(xin.cview(), ref->cview(), s.view, o);
          else
            softmax::softmax_stats(xin.cview(), s.view, o);
        });
        return s.owner;
      },
      py::arg("x"), py::arg("axis") = py::none(), py::arg("temperature") = 1.0, py::kw_only(),
      py::arg("refine") = py::none(), py::arg("out") = py::none(), py::arg("threads") = 0,
      kStatsDoc);
  m.def(
      "merge_stats",
      [](py::handle a, py::handle b, py::handle out) {
        const char* op = "merge_stats";
        const Operand ain = input(a, op, "a");
        const Operand bin = input(b, op, "b");
        std::vector<int64_t> shape = ain.view.shape;
        if (shape.size() >= 2 && bin.view.rank() >= 2) {
          shape[shape.size() - 2] += bin.view.shape[bin.view.shape.size() - 2];
        }
        Operand o = make_output(ain, out, py::none(), shape, DType::f64, op);
        nogil([&] { softmax::merge_stats(ain.cview(), bin.cview(), o.view); });
        return o.owner;
      },
      py::arg("a"), py::arg("b"), py::kw_only(), py::arg("out") = py::none(), kMergeDoc);
  m.def(
      "softmax_from_stats",
      [](py::handle x, py::handle stats, py::handle axis, py::handle dtype, py::handle out,
         int threads) {
        return from_stats("softmax_from_stats", lib_softmax_from, x, stats, axis, dtype, out,
                          threads);
      },
      py::arg("x"), py::arg("stats"), py::arg("axis") = py::none(), py::kw_only(),
      py::arg("dtype") = py::none(), py::arg("out") = py::none(), py::arg("threads") = 0,
      kSoftmaxFromDoc);
  m.def(
      "log_softmax_from_stats",
      [](py::handle x, py::handle stats, py::handle axis, py::handle dtype, py::handle out,
         int threads) {
        return from_stats("log_softmax_from_stats", lib_log_softmax_from, x, stats, axis, dtype,
                          out, threads);
      },
      py::arg("x"), py::arg("stats"), py::arg("axis") = py::none(), py::kw_only(),
      py::arg("dtype") = py::none(), py::arg("out") = py::none(), py::arg("threads") = 0,
      kLogSoftmaxFromDoc);
  m.def(
      "logsumexp_from_stats",
      [](py::handle stats, py::handle dtype, py::handle out, int threads) {
        const char* op = "logsumexp_from_stats";
        softmax::SoftmaxOptions o;
        o.threads = parse_threads(threads, op);
        const Operand sin = input(stats, op, "stats");
        std::vector<int64_t> shape = sin.view.shape;
        if (shape.size() >= 2) shape.resize(shape.size() - 2);
        Operand y =
            make_output(sin, out, dtype, shape, stats_f64(sin) ? DType::f64 : DType::f32, op);
        nogil([&] { softmax::logsumexp_from_stats(sin.cview(), y.view, o); });
        return y.owner;
      },
      py::arg("stats"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("out") = py::none(),
      py::arg("threads") = 0, kLogsumexpFromDoc);
}

}  // namespace softmax_py
