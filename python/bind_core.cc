// python/bind_core.cc: softmax, log_softmax, logsumexp, argmax, hardmax, sigmoid (softmax/ops.hpp)
// and the SIMD target controls (softmax/dispatch.hpp).
#include "softmax/dispatch.hpp"
#include "softmax/ops.hpp"

#include <pybind11/stl.h>

#include "common.hpp"

namespace softmax_py {
namespace {

using softmax::DType;

using AxisOp = void (*)(softmax::ConstTensorView, softmax::TensorView,
                        const softmax::SoftmaxOptions&);

// softmax / log_softmax / hardmax: y has x's shape, by default x's dtype.
py::object same_shape_op(const char* op, AxisOp fn, py::handle x, py::handle axis, py::handle dim,
                         double temperature, py::handle dtype, py::handle out, int threads) {
  softmax::SoftmaxOptions o;
  o.axis = parse_axis(axis, dim, op);
  o.temperature = temperature;
  o.threads = parse_threads(threads, op);
  const Operand xin = input(x, op, "x");
  Operand y = make_output(xin, out, dtype, xin.view.shape, xin.view.dtype, op);
  nogil([&] { fn(xin.cview(), y.view, o); });
  return y.owner;
}

// logsumexp / argmax: the axis is reduced (dropped, or kept with size 1).
py::object reduce_op(const char* op, AxisOp fn, py::handle x, py::handle axis, py::handle dim,
                     py::handle keepdims, py::handle keepdim, double temperature, py::handle dtype,
                     py::handle out, int threads, bool index_out) {
  softmax::SoftmaxOptions o;
  o.axis = parse_axis(axis, dim, op);
  o.keepdims = parse_keepdims(keepdims, keepdim, op);
  o.temperature = temperature;
  o.threads = parse_threads(threads, op);
  const Operand xin = input(x, op, "x");
  const DType def = index_out ? DType::i64 : xin.view.dtype;
  Operand y =
      make_output(xin, out, dtype, reduced_shape(xin.view.shape, o.axis, o.keepdims), def, op);
  nogil([&] { fn(xin.cview(), y.view, o); });
  return y.owner;
}

void lib_softmax(softmax::ConstTensorView x, softmax::TensorView y,
                 const softmax::SoftmaxOptions& o) {
  softmax::softmax(std::move(x), std::move(y), o);
}
void lib_log_softmax(softmax::ConstTensorView x, softmax::TensorView y,
                     const softmax::SoftmaxOptions& o) {
  softmax::log_softmax(std::move(x), std::move(y), o);
}
void lib_logsumexp(softmax::ConstTensorView x, softmax::TensorView y,
                   const softmax::SoftmaxOptions& o) {
  softmax::logsumexp(std::move(x), std::move(y), o);
}
void lib_argmax(softmax::ConstTensorView x, softmax::TensorView y,
                const softmax::SoftmaxOptions& o) {
  softmax::argmax(std::move(x), std::move(y), o);
}
void lib_hardmax(softmax::ConstTensorView x, softmax::TensorView y,
                 const softmax::SoftmaxOptions& o) {
  softmax::hardmax(std::move(x), std::move(y), o);
}

constexpr const char* kSoftmaxDoc =
    R"doc(softmax(x, axis=-1, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0)

Softmax of ``x / temperature`` along one axis.

``y_i = exp((x_i - max) / T) / sum_j exp((x_j - max) / T)``, computed with max subtraction
and f32 accumulation (f64 for float64 input), so large logits never overflow.

Parameters
----------
x : array_like or tensor, shape (..., n, ...)
    A NumPy array of float16, float32 or float64 (any strides, including negative and
    transposed), or an object with ``__dlpack__`` on the CPU such as a ``torch.Tensor``
    (also bfloat16). Neither is copied. Lists and scalars go through ``numpy.asarray``.
axis : int, optional
    The axis to normalise over; negative counts from the end. Default -1.
dim : int, optional
    Alias of `axis` (PyTorch's name). Give at most one of the two.
temperature : float, optional
    ``T`` in ``softmax(x / T)``; must be finite and > 0. Default 1.
dtype : dtype, optional
    Output dtype (numpy or torch dtype, or a name). float32, float16 and bfloat16 pair with
    each other; float64 only with float64. Default: the dtype of `x`.
out : ndarray or tensor, optional
    Where to write the result: the shape of `x`, writeable. May be `x` itself (in place);
    any other overlap with `x` is an error.
threads : int, optional
    Worker threads; 0 (default) uses the OpenMP default. Results do not depend on it.

Returns
-------
y : ndarray or tensor, shape of `x`
    `out` if given; otherwise a new array of the same kind as `x` (NumPy in, NumPy out;
    torch tensor in, torch tensor out).

Raises
------
ValueError
    Bad axis, temperature <= 0 / NaN / inf, wrong `out` shape, overlapping `out`, byte
    strides that are not a multiple of the item size, a non-CPU tensor.
TypeError
    Unsupported dtypes or dtype combinations.

Notes
-----
Edge semantics: a row holding NaN or +inf, or all -inf, gives NaN in the whole row;
-inf entries of a row with a finite maximum give exactly 0. Empty inputs give empty
outputs. Matches ``torch.softmax`` and ``scipy.special.softmax`` (with an explicit axis).
The GIL is released while the kernel runs.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.softmax(np.array([1.0, 2.0, 3.0]))
array([0.09003057, 0.24472847, 0.66524096])
>>> softmax.softmax(np.zeros((2, 4), np.float32), axis=0)[:, 0]
array([0.5, 0.5], dtype=float32)
)doc";

constexpr const char* kLogSoftmaxDoc =
    R"doc(log_softmax(x, axis=-1, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0)

Log-softmax of ``x / temperature`` along one axis.

``y_i = (x_i - max) / T - log(sum_j exp((x_j - max) / T))``, computed in that form (never
as ``log(softmax)``), so ``n`` equal logits give exactly ``-log(n)`` whatever their size.

Parameters
----------
x : array_like or tensor, shape (..., n, ...)
    float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
    (also bfloat16), not copied.
axis : int, optional
    Axis to normalise over (default -1); `dim` is an alias.
dim : int, optional
    Alias of `axis`.
temperature : float, optional
    Finite and > 0; default 1.
dtype : dtype, optional
    Output dtype; default the dtype of `x` (float64 pairs only with float64).
out : ndarray or tensor, optional
    Output of the shape of `x`; may be `x` itself.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape of `x`
    Same container kind as `x` (or `out`).

Raises
------
ValueError
    Bad axis, temperature, `out` shape, overlap or strides.
TypeError
    Unsupported dtypes.

Notes
-----
A row holding NaN or +inf, or all -inf, gives NaN; -inf entries of a row with a finite
maximum give -inf. Matches ``torch.log_softmax`` and ``scipy.special.log_softmax``.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.log_softmax(np.array([1000.0, 1000.0]))
array([-0.69314718, -0.69314718])
)doc";

constexpr const char* kLogsumexpDoc =
    R"doc(logsumexp(x, axis=-1, *, dim=None, keepdims=None, keepdim=None, temperature=1.0, dtype=None, out=None, threads=0)

``log(sum(exp(x / temperature)))`` along one axis, without overflow.

Equals ``max / T + log(sum_i exp((x_i - max) / T))``, the log-normaliser of softmax, so
``log_softmax(x / T) = x / T - logsumexp(x / T)``.

Parameters
----------
x : array_like or tensor, shape (..., n, ...)
    float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
    (also bfloat16), not copied.
axis : int, optional
    The axis to reduce (default -1; unlike SciPy, None is not "all axes"). `dim` is an alias.
dim : int, optional
    Alias of `axis`.
keepdims : bool, optional
    Keep the reduced axis with size 1 (default False). `keepdim` is an alias.
keepdim : bool, optional
    Alias of `keepdims` (PyTorch's name).
temperature : float, optional
    Finite and > 0; default 1.
dtype : dtype, optional
    Output dtype; default the dtype of `x`.
out : ndarray or tensor, optional
    Output of the reduced shape; must not overlap `x`.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape of `x` without `axis` (or with it of size 1)
    Same container kind as `x` (or `out`).

Raises
------
ValueError
    Bad axis, temperature, `out` shape, overlap or strides.
TypeError
    Unsupported dtypes.

Notes
-----
An all -inf row or an empty row gives -inf; a row with +inf (and no NaN) gives +inf; a row
with NaN gives NaN. Matches ``torch.logsumexp`` and ``scipy.special.logsumexp``.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.logsumexp(np.array([[0.0, 0.0], [10.0, 10.0]]))
array([ 0.69314718, 10.69314718])
>>> softmax.logsumexp(np.zeros((2, 3)), axis=0, keepdims=True).shape
(1, 3)
)doc";

constexpr const char* kArgmaxDoc =
    R"doc(argmax(x, axis=-1, *, dim=None, keepdims=None, keepdim=None, dtype=None, out=None, threads=0)

Index of the largest element along one axis.

The lowest index wins ties; NaN counts as larger than every number (the first NaN wins),
as in NumPy and PyTorch.

Parameters
----------
x : array_like or tensor, shape (..., n, ...)
    float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
    (also bfloat16), not copied.
axis : int, optional
    The axis to reduce (default -1); `dim` is an alias.
dim : int, optional
    Alias of `axis`.
keepdims : bool, optional
    Keep the reduced axis with size 1 (default False); `keepdim` is an alias.
keepdim : bool, optional
    Alias of `keepdims`.
dtype : dtype, optional
    int64 (default) or int32.
out : ndarray or tensor, optional
    int64 or int32 output of the reduced shape.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
indices : ndarray or tensor of int64 (or int32), shape of `x` without `axis`
    Same container kind as `x` (or `out`).

Raises
------
ValueError
    Bad axis, an empty row (argmax undefined), bad `out` shape or strides.
TypeError
    A non-floating `x`, or an index dtype other than int32/int64.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.argmax(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]))
array([1, 0])
)doc";

constexpr const char* kHardmaxDoc =
    R"doc(hardmax(x, axis=-1, *, dim=None, dtype=None, out=None, threads=0)

One-hot of the argmax along one axis (ONNX Hardmax-13).

Parameters
----------
x : array_like or tensor, shape (..., n, ...)
    float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
    (also bfloat16), not copied.
axis : int, optional
    Axis (default -1); `dim` is an alias.
dim : int, optional
    Alias of `axis`.
dtype : dtype, optional
    Any floating output dtype; default the dtype of `x`.
out : ndarray or tensor, optional
    Output of the shape of `x`; may be `x` itself.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape of `x`
    1 at the argmax of each row (lowest index on ties, first NaN wins), 0 elsewhere.

Raises
------
ValueError
    Bad axis, `out` shape, overlap or strides.
TypeError
    Unsupported dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.hardmax(np.array([0.1, 0.7, 0.7]))
array([0., 1., 0.])
)doc";

constexpr const char* kSigmoidDoc = R"doc(sigmoid(x, *, dtype=None, out=None, threads=0)

Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise (``scipy.special.expit``).

Computed as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` for ``x < 0`` with
``e = exp(-|x|)``, so it never overflows; ``sigmoid(NaN) = NaN``, ``sigmoid(+-inf) = 1, 0``.

Parameters
----------
x : array_like or tensor, any shape (rank 0 included)
    float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
    (also bfloat16), not copied.
dtype : dtype, optional
    Output dtype; default the dtype of `x` (float64 pairs only with float64).
out : ndarray or tensor, optional
    Output of the shape of `x`; may be `x` itself.
threads : int, optional
    Worker threads, 0 = OpenMP default.

Returns
-------
y : ndarray or tensor, shape of `x`
    Same container kind as `x` (or `out`).

Raises
------
ValueError
    Wrong `out` shape, overlap or strides.
TypeError
    Unsupported dtypes.

Examples
--------
>>> import numpy as np, softmax
>>> softmax.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
array([0. , 0.5, 1. ])
)doc";

// --- the small-call path (python/softmax/_forms.py: fast) -----------------------------------
// Two private entry points with positional arguments only (pybind11's keyword matching costs
// about a microsecond per call) for C-contiguous inputs: _fast_np takes a NumPy array and
// returns a new one, _fast_torch a torch tensor (both None when the input is not eligible:
// the caller takes the general path). The GIL is released only for inputs large enough for
// that to pay.
constexpr int64_t kFastNogilElems = int64_t{1} << 15;
enum FastOp : int { kFastSoftmax = 0, kFastLogSoftmax = 1, kFastLogsumexp = 2, kFastSigmoid = 3 };

const char* fast_op_name(int op) {
  switch (op) {
    case kFastSoftmax: return "softmax";
    case kFastLogSoftmax: return "log_softmax";
    case kFastLogsumexp: return "logsumexp";
    case kFastSigmoid: return "sigmoid";
    default: break;
  }
  throw py::value_error("softmax._core: unknown small-call op " + std::to_string(op));
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

void run_fast(int op, const softmax::ConstTensorView& x, const softmax::TensorView& y, int64_t axis,
              double temperature, bool keepdims, int threads) {
  fast_op_name(op);  // validates the code
  auto run = [&] {
    if (op == kFastSigmoid) {
      softmax::ElementwiseOptions o;
      o.threads = threads;
      softmax::sigmoid(x, y, o);
      return;
    }
    softmax::SoftmaxOptions o;
    o.axis = axis;
    o.temperature = temperature;
    o.keepdims = keepdims;
    o.threads = threads;
    if (op == kFastSoftmax) {
      softmax::softmax(x, y, o);
    } else if (op == kFastLogSoftmax) {
      softmax::log_softmax(x, y, o);
    } else {
      softmax::logsumexp(x, y, o);
    }
  };
  if (numel_of(x.shape) >= kFastNogilElems) {
    nogil(run);
  } else {
    run();
  }
}

std::vector<int64_t> fast_out_shape(int op, const std::vector<int64_t>& shape, int64_t axis,
                                    bool keepdims) {
  return op == kFastLogsumexp ? reduced_shape(shape, axis, keepdims) : shape;
}

py::object fast_np(int op, py::handle xh, int64_t axis, double temperature, bool keepdims,
                   int threads) {
  if (!py::isinstance<py::array>(xh)) return py::none();
  auto* a = py::detail::array_proxy(xh.ptr());
  auto* d = py::detail::array_descriptor_proxy(a->descr);
  using api = py::detail::npy_api;
  const int need = api::NPY_ARRAY_C_CONTIGUOUS_ | api::NPY_ARRAY_ALIGNED_;
  if ((a->flags & need) != need || a->nd < 1 || d->byteorder == '>') return py::none();
  DType t;
  switch (d->type_num) {
    case api::NPY_FLOAT_: t = DType::f32; break;
    case api::NPY_DOUBLE_: t = DType::f64; break;
    case 23: t = DType::f16; break;  // NPY_HALF
    default: return py::none();
  }
  std::vector<int64_t> shape(a->dimensions, a->dimensions + a->nd);
  if (numel_of(shape) == 0) return py::none();
  const int th = parse_threads(threads, fast_op_name(op));
  py::array y(py::reinterpret_borrow<py::dtype>(a->descr),
              fast_out_shape(op, shape, axis, keepdims));
  const softmax::ConstTensorView xv(a->data, t, shape);
  const softmax::TensorView yv(y.mutable_data(), t, fast_out_shape(op, shape, axis, keepdims));
  run_fast(op, xv, yv, axis, temperature, keepdims, th);
  return y;
}

// _fast_torch(op, x, axis, temperature, threads, keepdims): the whole small-call path of a
// torch tensor in one C call (Python-level attribute reads and a second frame cost more than
// the kernel): x must be exactly torch.Tensor, float32/64/16 or bfloat16, on the CPU,
// contiguous, and not recording autograd; the result is torch.empty_like(x) (or x.new_empty of
// the reduced shape) written through data_ptr. Returns None when it did not run (not eligible,
// or an error the general path then reports). _fast_torch_init hands it torch's objects.
struct TorchRefs {
  PyObject* tensor_type = nullptr;
  PyObject* empty_like = nullptr;
  PyObject* is_grad_enabled = nullptr;
  PyObject* dtypes[4] = {nullptr, nullptr, nullptr, nullptr};  // in DType code order
  PyObject *s_dtype, *s_is_cpu, *s_requires_grad, *s_is_contiguous, *s_shape, *s_data_ptr,
      *s_new_empty;
};
TorchRefs g_torch;

void fast_torch_init(py::handle tensor_type, py::handle empty_like, py::handle is_grad_enabled,
                     py::tuple dtypes) {
  if (dtypes.size() != 4) throw py::value_error("softmax._core._fast_torch_init: 4 dtypes");
  auto keep = [](py::handle h) { return py::reinterpret_borrow<py::object>(h).release().ptr(); };
  TorchRefs r;
  r.tensor_type = keep(tensor_type);
  r.empty_like = keep(empty_like);
  r.is_grad_enabled = keep(is_grad_enabled);
  for (std::size_t i = 0; i < 4; ++i) r.dtypes[i] = keep(dtypes[i]);
  r.s_dtype = PyUnicode_InternFromString("dtype");
  r.s_is_cpu = PyUnicode_InternFromString("is_cpu");
  r.s_requires_grad = PyUnicode_InternFromString("requires_grad");
  r.s_is_contiguous = PyUnicode_InternFromString("is_contiguous");
  r.s_shape = PyUnicode_InternFromString("shape");
  r.s_data_ptr = PyUnicode_InternFromString("data_ptr");
  r.s_new_empty = PyUnicode_InternFromString("new_empty");
  g_torch = r;  // module lifetime (never released)
}

// A new reference to obj.name, or null (error cleared).
PyObject* get_attr(PyObject* obj, PyObject* name) {
  PyObject* v = PyObject_GetAttr(obj, name);
  if (v == nullptr) PyErr_Clear();
  return v;
}

// obj.name() is True (errors: false, cleared).
bool call_true(PyObject* obj, PyObject* name) {
  PyObject* v = PyObject_CallMethodNoArgs(obj, name);
  if (v == nullptr) {
    PyErr_Clear();
    return false;
  }
  const bool t = v == Py_True;
  Py_DECREF(v);
  return t;
}

// obj.data_ptr(), or 0 (errors cleared).
uintptr_t data_ptr_of(PyObject* obj) {
  PyObject* v = PyObject_CallMethodNoArgs(obj, g_torch.s_data_ptr);
  if (v == nullptr) {
    PyErr_Clear();
    return 0;
  }
  const auto p = static_cast<uintptr_t>(PyLong_AsUnsignedLongLong(v));
  Py_DECREF(v);
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return 0;
  }
  return p;
}

PyObject* fast_torch(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  const TorchRefs& T = g_torch;
  if (nargs != 6 || T.tensor_type == nullptr ||
      reinterpret_cast<PyObject*>(Py_TYPE(args[1])) != T.tensor_type) {
    Py_RETURN_NONE;
  }
  PyObject* x = args[1];
  const long op = PyLong_AsLong(args[0]);
  const long long axis = PyLong_AsLongLong(args[2]);
  const double temperature = PyFloat_AsDouble(args[3]);
  const long threads = PyLong_AsLong(args[4]);
  const int keepdims = PyObject_IsTrue(args[5]);
  if (PyErr_Occurred() || op < kFastSoftmax || op > kFastSigmoid || threads < 0) {
    PyErr_Clear();
    Py_RETURN_NONE;
  }
  PyObject* dt = get_attr(x, T.s_dtype);
  int code = -1;
  for (int i = 0; i < 4; ++i) {
    if (dt == T.dtypes[i]) code = i;
  }
  Py_XDECREF(dt);
  if (code < 0) Py_RETURN_NONE;
  PyObject* cpu = get_attr(x, T.s_is_cpu);
  const bool on_cpu = cpu == Py_True;
  Py_XDECREF(cpu);
  if (!on_cpu || !call_true(x, T.s_is_contiguous)) Py_RETURN_NONE;
  PyObject* rg = get_attr(x, T.s_requires_grad);
  const bool records = rg == Py_True;
  Py_XDECREF(rg);
  if (records) {
    PyObject* g = PyObject_CallNoArgs(T.is_grad_enabled);
    const bool enabled = g != Py_False;  // errors: treat as recording (the general path)
    if (g == nullptr) PyErr_Clear();
    Py_XDECREF(g);
    if (enabled) Py_RETURN_NONE;
  }
  PyObject* shape_obj = get_attr(x, T.s_shape);
  if (shape_obj == nullptr || !PyTuple_Check(shape_obj)) {
    Py_XDECREF(shape_obj);
    Py_RETURN_NONE;
  }
  const Py_ssize_t nd = PyTuple_GET_SIZE(shape_obj);
  std::vector<int64_t> shape(static_cast<std::size_t>(nd));
  for (Py_ssize_t i = 0; i < nd; ++i) {
    shape[static_cast<std::size_t>(i)] = PyLong_AsLongLong(PyTuple_GET_ITEM(shape_obj, i));
  }
  Py_DECREF(shape_obj);
  const uintptr_t xp = data_ptr_of(x);
  if (PyErr_Occurred() || xp == 0 || nd == 0) {
    PyErr_Clear();
    Py_RETURN_NONE;
  }
  std::vector<int64_t> out_shape = shape;
  PyObject* y = nullptr;
  if (op == kFastLogsumexp) {
    const int64_t a = axis < 0 ? axis + nd : axis;
    if (a < 0 || a >= nd) Py_RETURN_NONE;  // the general path reports it
    out_shape = reduced_shape(shape, a, keepdims != 0);
    PyObject* lst = PyList_New(static_cast<Py_ssize_t>(out_shape.size()));
    if (lst == nullptr) {
      PyErr_Clear();
      Py_RETURN_NONE;
    }
    for (std::size_t i = 0; i < out_shape.size(); ++i) {
      PyList_SET_ITEM(lst, static_cast<Py_ssize_t>(i), PyLong_FromLongLong(out_shape[i]));
    }
    y = PyObject_CallMethodOneArg(x, T.s_new_empty, lst);
    Py_DECREF(lst);
  } else {
    y = PyObject_CallOneArg(T.empty_like, x);
  }
  const uintptr_t yp = y == nullptr ? 0 : data_ptr_of(y);
  if (yp == 0) {
    PyErr_Clear();
    Py_XDECREF(y);
    Py_RETURN_NONE;
  }
  try {
    const auto t = static_cast<DType>(code);
    // The tensors' data_ptr() integers are the addresses: the cast is the point.
    const softmax::ConstTensorView xv(
        reinterpret_cast<const void*>(xp),  // NOLINT(performance-no-int-to-ptr)
        t, std::move(shape));
    const softmax::TensorView yv(reinterpret_cast<void*>(yp),  // NOLINT(performance-no-int-to-ptr)
                                 t, std::move(out_shape));
    run_fast(static_cast<int>(op), xv, yv, axis, temperature, keepdims != 0,
             static_cast<int>(threads));
  } catch (...) {
    Py_DECREF(y);
    Py_RETURN_NONE;
  }
  return y;
}

PyMethodDef kFastTorchDef = {
    "_fast_torch", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_torch)),
    METH_FASTCALL,
    "_fast_torch(op, x, axis, temperature, threads, keepdims): the small-call path of a torch "
    "tensor; None when it did not run. Private."};

}  // namespace

void register_core(py::module_& m) {
  m.def("_fast_np", &fast_np,
        "_fast_np(op, x, axis, temperature, keepdims, threads): the small-call path for a "
        "C-contiguous aligned float NumPy array (None when not eligible). Private.");
  m.def("_fast_torch_init", &fast_torch_init,
        "_fast_torch_init(Tensor, empty_like, is_grad_enabled, dtypes): torch's objects for "
        "_fast_torch. Private.");
  m.add_object("_fast_torch",
               py::reinterpret_steal<py::object>(PyCFunction_New(&kFastTorchDef, nullptr)));
  m.def(
      "softmax",
      [](py::handle x, py::handle axis, py::handle dim, double temperature, py::handle dtype,
         py::handle out, int threads) {
        return same_shape_op("softmax", lib_softmax, x, axis, dim, temperature, dtype, out,
                             threads);
      },
      py::arg("x"), py::arg("axis") = py::none(), py::kw_only(), py::arg("dim") = py::none(),
      py::arg("temperature") = 1.0, py::arg("dtype") = py::none(), py::arg("out") = py::none(),
      py::arg("threads") = 0, kSoftmaxDoc);
  m.def(
      "log_softmax",
      [](py::handle x, py::handle axis, py::handle dim, double temperature, py::handle dtype,
         py::handle out, int threads) {
        return same_shape_op("log_softmax", lib_log_softmax, x, axis, dim, temperature, dtype, out,
                             threads);
      },
      py::arg("x"), py::arg("axis") = py::none(), py::kw_only(), py::arg("dim") = py::none(),
      py::arg("temperature") = 1.0, py::arg("dtype") = py::none(), py::arg("out") = py::none(),
      py::arg("threads") = 0, kLogSoftmaxDoc);
  m.def(
      "logsumexp",
      [](py::handle x, py::handle axis, py::handle dim, py::handle keepdims, py::handle keepdim,
         double temperature, py::handle dtype, py::handle out, int threads) {
        return reduce_op("logsumexp", lib_logsumexp, x, axis, dim, keepdims, keepdim, temperature,
                         dtype, out, threads, false);
      },
      py::arg("x"), py::arg("axis") = py::none(), py::kw_only(), py::arg("dim") = py::none(),
      py::arg("keepdims") = py::none(), py::arg("keepdim") = py::none(),
      py::arg("temperature") = 1.0, py::arg("dtype") = py::none(), py::arg("out") = py::none(),
      py::arg("threads") = 0, kLogsumexpDoc);
  m.def(
      "argmax",
      [](py::handle x, py::handle axis, py::handle dim, py::handle keepdims, py::handle keepdim,
         py::handle dtype, py::handle out, int threads) {
        return reduce_op("argmax", lib_argmax, x, axis, dim, keepdims, keepdim, 1.0, dtype, out,
                         threads, true);
      },
      py::arg("x"), py::arg("axis") = py::none(), py::kw_only(), py::arg("dim") = py::none(),
      py::arg("keepdims") = py::none(), py::arg("keepdim") = py::none(),
      py::arg("dtype") = py::none(), py::arg("out") = py::none(), py::arg("threads") = 0,
      kArgmaxDoc);
  m.def(
      "hardmax",
      [](py::handle x, py::handle axis, py::handle dim, py::handle dtype, py::handle out,
         int threads) {
        return same_shape_op("hardmax", lib_hardmax, x, axis, dim, 1.0, dtype, out, threads);
      },
      py::arg("x"), py::arg("axis") = py::none(), py::kw_only(), py::arg("dim") = py::none(),
      py::arg("dtype") = py::none(), py::arg("out") = py::none(), py::arg("threads") = 0,
      kHardmaxDoc);
  auto sigmoid = [](py::handle x, py::handle dtype, py::handle out, int threads) {
    const char* op = "sigmoid";
    softmax::ElementwiseOptions o;
    o.threads = parse_threads(threads, op);
    const Operand xin = input(x, op, "x");
    Operand y = make_output(xin, out, dtype, xin.view.shape, xin.view.dtype, op);
    nogil([&] { softmax::sigmoid(xin.cview(), y.view, o); });
    return y.owner;
  };
  m.def("sigmoid", sigmoid, py::arg("x"), py::kw_only(), py::arg("dtype") = py::none(),
        py::arg("out") = py::none(), py::arg("threads") = 0, kSigmoidDoc);
  m.def("expit", sigmoid, py::arg("x"), py::kw_only(), py::arg("dtype") = py::none(),
        py::arg("out") = py::none(), py::arg("threads") = 0,
        "expit(x, *, dtype=None, out=None, threads=0)\n\nAlias of :func:`sigmoid` "
        "(SciPy's name).");

  m.def("available_targets", &softmax::available_targets,
        R"doc(available_targets()

SIMD targets compiled in and supported by this CPU, best first.

Returns
-------
list of str
    Highway target names, e.g. ``['AVX3_ZEN4', 'AVX3', 'AVX2', 'SSE4', 'EMU128']``.

Examples
--------
>>> import softmax
>>> 'EMU128' in softmax.available_targets() or len(softmax.available_targets()) > 0
True
)doc");
  m.def("current_target", &softmax::current_target, R"doc(current_target()

The SIMD target the kernels use now.

Returns
-------
str
    One of :func:`available_targets`.

Examples
--------
>>> import softmax
>>> softmax.current_target() in softmax.available_targets()
True
)doc");
  m.def("set_target", &softmax::set_target, py::arg("name"), R"doc(set_target(name)

Restricts the kernels to one SIMD target (for tests and benchmarks); results do not change.

Parameters
----------
name : str
    One of :func:`available_targets`, or ``""`` for the best again.

Raises
------
ValueError
    An unknown or unsupported name.

Examples
--------
>>> import softmax
>>> softmax.set_target(softmax.available_targets()[-1]); softmax.set_target("")
)doc");
}

}  // namespace softmax_py
