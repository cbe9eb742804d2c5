// python/common.cc: operands, argument parsing and error translation (see common.hpp).
#include "common.hpp"

#include "softmax/dlpack.hpp"

#include <dlpack/dlpack.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace softmax_py {
namespace {

using softmax::DType;

[[noreturn]] void type_error(const char* op, const std::string& msg) {
  throw py::type_error(std::string("softmax.") + op + ": " + msg);
}
[[noreturn]] void value_error(const char* op, const std::string& msg) {
  throw py::value_error(std::string("softmax.") + op + ": " + msg);
}

std::string py_repr(py::handle h) { return py::repr(h).cast<std::string>(); }

// torch.Tensor when torch is already imported (never imports torch just to ask).
bool is_torch_tensor(py::handle obj) {
  PyObject* torch = PyDict_GetItemString(PyImport_GetModuleDict(), "torch");  // borrowed
  if (torch == nullptr || !PyObject_HasAttrString(torch, "Tensor")) return false;
  return py::isinstance(obj, py::handle(torch).attr("Tensor"));
}

// torch._C._to_dlpack, the C function behind Tensor.__dlpack__: calling it directly skips
// that method's Python wrapper and Tensor.__dlpack_device__, which calls is_pinned() and
// costs tens of microseconds per call (the device is read from the DLTensor instead).
py::handle torch_to_dlpack() {
  static PyObject* fn =
      py::object(py::module_::import("torch").attr("_C").attr("_to_dlpack")).release().ptr();
  return fn;
}

py::module_ torch_module() { return py::module_::import("torch"); }

// "float32", "bfloat16", ... -> DType; nullopt when unknown.
std::optional<DType> dtype_from_name(const std::string& name) {
  if (name == "float32") return DType::f32;
  if (name == "float64") return DType::f64;
  if (name == "float16") return DType::f16;
  if (name == "bfloat16") return DType::bf16;
  if (name == "int32") return DType::i32;
  if (name == "int64") return DType::i64;
  return std::nullopt;
}

const char* numpy_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
  }
  return "?";
}

// The DType of a NumPy array dtype (native byte order assumed checked by the caller).
std::optional<DType> numpy_dtype(const py::dtype& dt) {
  const char k = dt.kind();
  const auto size = dt.itemsize();
  if (k == 'f') {
    if (size == 2) return DType::f16;
    if (size == 4) return DType::f32;
    if (size == 8) return DType::f64;
  } else if (k == 'i') {
    if (size == 4) return DType::i32;
    if (size == 8) return DType::i64;
  }
  return std::nullopt;
}

// An empty tensor touches no memory, so its strides are irrelevant; NumPy and torch may give
// stride 0 there, which the library rejects for outputs. Use C-order strides instead.
void fix_empty_strides(softmax::TensorView& v) {
  for (int64_t s : v.shape) {
    if (s == 0) {
      v.strides = softmax::contiguous_strides(v.shape);
      return;
    }
  }
}

bool is_float(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}

const char* kFloatList = "float16, float32 or float64 (bfloat16 through torch)";

// Element strides from NumPy byte strides. A dimension of size <= 1 never uses its stride, so
// an odd one there is harmless and becomes 0.
std::vector<int64_t> element_strides(const py::array& a, const char* op, const char* arg) {
  const auto nd = static_cast<std::size_t>(a.ndim());
  const auto es = static_cast<int64_t>(a.itemsize());
  std::vector<int64_t> strides(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    const auto bs = static_cast<int64_t>(a.strides(static_cast<py::ssize_t>(i)));
    if (bs % es != 0) {
      if (a.shape(static_cast<py::ssize_t>(i)) <= 1) {
        strides[i] = 0;
        continue;
      }
      value_error(op, std::string("argument '") + arg + "': byte stride " + std::to_string(bs) +
                          " of dimension " + std::to_string(i) +
                          " is not a multiple of the item size " + std::to_string(es) +
                          "; make a copy first (numpy.ascontiguousarray)");
    }
    strides[i] = bs / es;
  }
  return strides;
}

Operand from_numpy(py::array a, const char* op, const char* arg, bool writable, bool allow_int) {
  py::dtype dt = a.dtype();
  if (!py::cast<bool>(dt.attr("isnative"))) {
    if (writable) {
      type_error(op, std::string("argument '") + arg + "': dtype " + py_repr(dt) +
                         " is not in native byte order");
    }
    a = a.attr("astype")(dt.attr("newbyteorder")("="));  // a copy in native order
    dt = a.dtype();
  }
  const std::optional<DType> t = numpy_dtype(dt);
  if (!t || (!allow_int && !writable && !is_float(*t))) {
    type_error(op, std::string("argument '") + arg + "' has dtype " +
                       py::str(dt).cast<std::string>() + "; expected " + kFloatList +
                       (allow_int ? ", int32 or int64" : "") +
                       " (convert with x.astype(numpy.float32))");
  }
  if (writable && !a.writeable()) {
    value_error(op, std::string("argument '") + arg + "' is a read-only array");
  }
  std::vector<int64_t> strides = element_strides(a, op, arg);
  if (!writable && reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize() != 0) {
    // The library rejects misaligned data; an input is copied (as NumPy's ufuncs buffer it).
    a = py::module_::import("numpy").attr("array")(a);
    strides = element_strides(a, op, arg);
  }
  Operand o;
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  o.view =
      softmax::TensorView(const_cast<void*>(a.data()), *t, std::move(shape), std::move(strides));
  fix_empty_strides(o.view);
  o.owner = std::move(a);
  o.kind = Kind::kNumpy;
  return o;
}

Operand from_dlpack(py::object obj, Kind kind, const char* op, const char* arg, bool writable,
                    bool allow_int) {
  if (kind != Kind::kTorch && py::hasattr(obj, "__dlpack_device__")) {
    py::tuple dev = obj.attr("__dlpack_device__")();
    const int type = dev[0].cast<int>();
    if (type != kDLCPU && type != kDLCUDAHost) {
      value_error(op, std::string("argument '") + arg + "' lives on DLPack device " + py_repr(dev) +
                          "; the module runs on CPU memory (move it with .cpu())");
    }
  }
  py::object cap = kind == Kind::kTorch ? torch_to_dlpack()(obj) : obj.attr("__dlpack__")();
  if (!PyCapsule_IsValid(cap.ptr(), "dltensor")) {
    type_error(op, std::string("argument '") + arg +
                       "': __dlpack__() did not return a 'dltensor' capsule");
  }
  // Not consumed (the capsule keeps its name), so the producer's capsule destructor frees it.
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
  if (m == nullptr) throw py::error_already_set();
  const DLTensor& d = m->dl_tensor;
  if (d.device.device_type != kDLCPU && d.device.device_type != kDLCUDAHost) {
    value_error(op, std::string("argument '") + arg + "' lives on DLPack device type " +
                        std::to_string(d.device.device_type) + "; the module runs on CPU memory");
  }
  Operand o;
  try {
    o.view = softmax::from_dlpack(d);  // the public importer: dtype, device, alignment
  } catch (const softmax::Error& e) {
    const std::string msg = std::string("argument '") + arg + "': " + e.what();
    if (e.kind() == softmax::ErrorKind::kDTypeMismatch) type_error(op, msg);
    value_error(op, msg);
  }
  const DType t = o.view.dtype;
  if (!allow_int && !writable && !is_float(t)) {
    type_error(op, std::string("argument '") + arg + "' has dtype " + softmax::dtype_name(t) +
                       "; expected " + kFloatList);
  }
  fix_empty_strides(o.view);
  o.owner = std::move(obj);
  o.keepalive = std::move(cap);
  o.kind = kind;
  return o;
}

Operand make_operand(py::handle obj, const char* op, const char* arg, bool writable,
                     bool allow_int) {
  if (py::isinstance<py::array>(obj)) {
    return from_numpy(py::reinterpret_borrow<py::array>(obj), op, arg, writable, allow_int);
  }
  if (is_torch_tensor(obj)) {
    py::object t = py::reinterpret_borrow<py::object>(obj);
    // An input that requires grad is read through a detached alias (same memory);
    // writing into one (out=) is left to torch to refuse.
    if (!writable) t = t.attr("detach")();
    return from_dlpack(std::move(t), Kind::kTorch, op, arg, writable, allow_int);
  }
  if (py::hasattr(obj, "__dlpack__")) {
    return from_dlpack(py::reinterpret_borrow<py::object>(obj), Kind::kDlpack, op, arg, writable,
                       allow_int);
  }
  if (writable) {
    type_error(op, std::string("argument '") + arg +
                       "' must be a NumPy array or a tensor with "
                       "__dlpack__, not " +
                       py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
  }
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  const char k = a.dtype().kind();
  if (k == 'O' || k == 'U' || k == 'S' || k == 'V' || k == 'M' || k == 'm') {
    type_error(op, std::string("argument '") + arg + "' of type " +
                       py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>() +
                       " is not numeric");
  }
  if (k == 'c') {
    type_error(op, std::string("argument '") + arg + "' is complex; expected real numbers");
  }
  if (allow_int && (k == 'i' || k == 'u' || k == 'b')) {
    if (k != 'i' || a.itemsize() < 4) a = np.attr("asarray")(obj, "int64");  // class ids
  } else if (k != 'f') {
    a = np.attr("asarray")(obj, "float64");
  }
  return from_numpy(std::move(a), op, arg, false, allow_int);
}

py::object torch_dtype(DType t) {
  py::module_ torch = torch_module();
  switch (t) {
    case DType::f32: return torch.attr("float32");
    case DType::f64: return torch.attr("float64");
    case DType::f16: return torch.attr("float16");
    case DType::bf16: return torch.attr("bfloat16");
    case DType::i32: return torch.attr("int32");
    case DType::i64: return torch.attr("int64");
  }
  return py::none();
}

}  // namespace

Operand input(py::handle obj, const char* op, const char* arg, bool allow_int) {
  return make_operand(obj, op, arg, false, allow_int);
}

std::optional<Operand> optional_input(py::handle obj, const char* op, const char* arg,
                                      bool allow_int) {
  if (obj.is_none()) return std::nullopt;
  return make_operand(obj, op, arg, false, allow_int);
}

Operand mask_input(py::handle obj, const char* op, const char* arg) {
  if (py::isinstance<py::array>(obj)) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (a.dtype().kind() == 'b')
      return make_operand(a.attr("astype")("int32"), op, arg, false, true);
  } else if (is_torch_tensor(obj)) {
    py::module_ torch = torch_module();
    if (obj.attr("dtype").is(torch.attr("bool"))) {
      return make_operand(obj.attr("to")(torch.attr("int32")), op, arg, false, true);
    }
  }
  return make_operand(obj, op, arg, false, true);
}

Operand output_arg(py::handle obj, const char* op, const char* arg) {
  return make_operand(obj, op, arg, true, true);
}

Operand new_output(Kind like, const std::vector<int64_t>& shape, DType dtype, const char* op) {
  if (like == Kind::kTorch) {
    py::module_ torch = torch_module();
    py::tuple sh(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) sh[i] = py::int_(shape[i]);
    py::object t = torch.attr("empty")(sh, py::arg("dtype") = torch_dtype(dtype));
    return from_dlpack(std::move(t), Kind::kTorch, op, "out", true, true);
  }
  if (dtype == DType::bf16) {
    type_error(op, "NumPy has no bfloat16; pass a torch tensor (or dtype=numpy.float32)");
  }
  std::vector<py::ssize_t> sh(shape.begin(), shape.end());
  py::array a(py::dtype(numpy_name(dtype)), sh);
  Operand o = from_numpy(std::move(a), op, "out", true, true);
  return o;
}

Operand make_output(const Operand& like, py::handle out, py::handle dtype,
                    const std::vector<int64_t>& shape, DType default_dtype, const char* op) {
  const std::optional<DType> want = parse_dtype(dtype, op);
  if (!out.is_none()) {
    Operand o = output_arg(out, op, "out");
    if (want && *want != o.view.dtype) {
      type_error(op, std::string("dtype=") + numpy_name(*want) + " disagrees with out.dtype (" +
                         numpy_name(o.view.dtype) + ")");
    }
    return o;
  }
  return new_output(like.kind, shape, want ? *want : default_dtype, op);
}

std::optional<DType> parse_dtype(py::handle dtype, const char* op) {
  if (dtype.is_none()) return std::nullopt;
  std::string name;
  if (py::isinstance<py::str>(dtype) && dtype.cast<std::string>() == "bfloat16") {
    name = "bfloat16";
  } else if (py::str(py::type::handle_of(dtype).attr("__module__")).cast<std::string>() ==
                 "torch" &&
             py::str(py::type::handle_of(dtype).attr("__name__")).cast<std::string>() == "dtype") {
    name = py::str(dtype).cast<std::string>();  // "torch.float32"
    if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  } else {
    try {
      py::dtype dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(dtype));
      name = py::str(dt.attr("name")).cast<std::string>();
    } catch (py::error_already_set&) {
      type_error(op, "dtype=" + py_repr(dtype) + " is not a dtype");
    }
  }
  const std::optional<DType> t = dtype_from_name(name);
  if (!t) {
    type_error(op, "dtype=" + py_repr(dtype) +
                       " is not supported; expected float16, float32, float64, bfloat16, "
                       "int32 or int64 (as the op allows)");
  }
  return t;
}

int64_t parse_axis(py::handle axis, py::handle dim, const char* op) {
  if (!axis.is_none() && !dim.is_none()) {
    type_error(op, "pass either axis or dim (its alias), not both");
  }
  py::handle a = axis.is_none() ? dim : axis;
  if (a.is_none()) return -1;
  if (py::isinstance<py::bool_>(a)) type_error(op, "axis must be an integer, not bool");
  PyObject* idx = PyNumber_Index(a.ptr());
  if (idx == nullptr) {
    PyErr_Clear();
    type_error(op, "axis must be a single integer, not " + py_repr(a));
  }
  py::object i = py::reinterpret_steal<py::object>(idx);
  long long v = PyLong_AsLongLong(i.ptr());
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    value_error(op, "axis " + py_repr(i) + " is out of range");
  }
  return static_cast<int64_t>(v);
}

bool parse_keepdims(py::handle keepdims, py::handle keepdim, const char* op) {
  if (!keepdims.is_none() && !keepdim.is_none()) {
    type_error(op, "pass either keepdims or keepdim (its alias), not both");
  }
  py::handle k = keepdims.is_none() ? keepdim : keepdims;
  if (k.is_none()) return false;
  return py::cast<bool>(py::bool_(py::reinterpret_borrow<py::object>(k)));
}

int parse_threads(int threads, const char* op) {
  if (threads < 0) {
    value_error(op, "threads = " + std::to_string(threads) +
                        ": must be >= 0 (0 = OpenMP default; counts above the number of CPUs "
                        "are clamped to it)");
  }
  return threads;
}

std::vector<int64_t> reduced_shape(const std::vector<int64_t>& shape, int64_t axis, bool keepdims) {
  const auto rank = static_cast<int64_t>(shape.size());
  if (axis < -rank || axis >= rank) return shape;
  if (axis < 0) axis += rank;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < rank; ++i) {
    if (i != axis)
      out.push_back(shape[static_cast<std::size_t>(i)]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

void register_error_translator() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const softmax::Error& e) {
      PyErr_SetString(
          e.kind() == softmax::ErrorKind::kDTypeMismatch ? PyExc_TypeError : PyExc_ValueError,
          e.what());
    }
  });
}

softmax::Reduction parse_reduction(const std::string& r, const char* op) {
  if (r == "mean") return softmax::Reduction::kMean;
  if (r == "sum") return softmax::Reduction::kSum;
  if (r == "none") return softmax::Reduction::kNone;
  throw py::value_error(std::string("softmax.") + op + ": reduction = '" + r +
                        "': must be 'mean', 'sum' or 'none'");
}

}  // namespace softmax_py
