// python/common.hpp: what every binding family shares: turning Python objects (NumPy arrays,
// __dlpack__ producers such as PyTorch CPU tensors, sequences) into softmax views without
// copying, allocating outputs of the caller's container type, parsing axis / dtype / threads
// keyword arguments, and running a kernel with the GIL released.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "softmax/cross_entropy.hpp"
#include "softmax/error.hpp"
#include "softmax/tensor.hpp"

namespace softmax_py {

namespace py = pybind11;

// Where an operand's memory comes from; outputs are allocated as the same kind.
enum class Kind {
  kNumpy,   // numpy.ndarray (also what sequences and scalars become)
  kTorch,   // torch.Tensor, read through __dlpack__
  kDlpack,  // another __dlpack__ producer (outputs for it are NumPy arrays)
};

// A Python object and a view of its memory. `owner` is the array / tensor (what is returned
// for outputs); `keepalive` holds the DLPack capsule (and so the producer's memory) while the
// view is used. Never outlive the Python call that made it.
struct Operand {
  py::object owner;
  py::object keepalive;
  softmax::TensorView view;
  Kind kind = Kind::kNumpy;

  softmax::ConstTensorView cview() const { return view; }
};

// An input. NumPy arrays of float16/32/64 and __dlpack__ objects (CPU, float16/32/64, bfloat16;
// plus int32/int64 when `allow_int`) are viewed without a copy; byte strides become element
// strides (ValueError when not a multiple of the item size). A NumPy array whose data address
// is not a multiple of its item size is copied (the library rejects misaligned views); a
// __dlpack__ object whose data + byte_offset is misaligned raises ValueError (the importer of
// softmax/dlpack.hpp). Other objects go through numpy.asarray (integer or bool results become
// float64, or int64 when `allow_int`). TypeError for other dtypes.
Operand input(py::handle obj, const char* op, const char* arg, bool allow_int = false);

// `input` for an optional argument: None -> nullopt.
std::optional<Operand> optional_input(py::handle obj, const char* op, const char* arg,
                                      bool allow_int = false);

// A keep-mask: like `input` with allow_int, and boolean NumPy arrays / torch tensors become
// int32 (a copy; the library has no bool dtype).
Operand mask_input(py::handle obj, const char* op, const char* arg);

// A caller-provided output (out=): a writeable NumPy array or a __dlpack__ object, any dtype
// the op accepts (the library checks it, and rejects misaligned data); never copied.
Operand output_arg(py::handle obj, const char* op, const char* arg);

// A new C-contiguous output of `shape` and `dtype`, of the same container kind as `like`
// (NumPy for NumPy and generic DLPack inputs, torch.Tensor for torch inputs).
Operand new_output(Kind like, const std::vector<int64_t>& shape, softmax::DType dtype,
                   const char* op);

// out= if given (checked against `dtype` when both are given), else a new output of `shape`
// and `dtype` (else `default_dtype`) like `like`.
Operand make_output(const Operand& like, py::handle out, py::handle dtype,
                    const std::vector<int64_t>& shape, softmax::DType default_dtype,
                    const char* op);

// A dtype argument: numpy dtypes and their names ("float32", np.float16, "f4"), torch dtypes
// (torch.bfloat16) and "bfloat16". None -> nullopt. TypeError for anything else.
std::optional<softmax::DType> parse_dtype(py::handle dtype, const char* op);

// axis / dim (PyTorch's name): at most one may be given; default -1. Must be an integer.
int64_t parse_axis(py::handle axis, py::handle dim, const char* op);
// keepdims / keepdim (PyTorch's name): at most one may be given; default false.
bool parse_keepdims(py::handle keepdims, py::handle keepdim, const char* op);
// threads >= 0 (0 = OpenMP default); the library clamps larger counts to the CPUs available
// (see softmax/options.hpp). ValueError for threads < 0.
int parse_threads(int threads, const char* op);

// Shape of a reduction along `axis` (normalised if in range; otherwise returned unchanged so
// the library reports the bad axis).
std::vector<int64_t> reduced_shape(const std::vector<int64_t>& shape, int64_t axis, bool keepdims);

// Runs f() with the GIL released (the operands' Python objects stay referenced by the caller).
template <class F>
void nogil(F&& f) {
  py::gil_scoped_release release;
  std::forward<F>(f)();
}

// 'mean' / 'sum' / 'none' as softmax::Reduction; ValueError naming softmax.`op` otherwise.
softmax::Reduction parse_reduction(const std::string& r, const char* op);

// Maps softmax::Error to TypeError (dtype errors) or ValueError (everything else).
void register_error_translator();

}  // namespace softmax_py
