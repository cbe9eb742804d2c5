// python/module.cc: the extension module `softmax._core` (the package python/softmax/ wraps it).
// Each op family registers itself from its own bind_<family>.cc; optional families are compiled in
// when CMake finds their public header and defines SOFTMAX_PY_HAS_<FAMILY>.
#include "common.hpp"

namespace softmax_py {
void register_core(py::module_& m);
#ifdef SOFTMAX_PY_HAS_BACKWARD
void register_backward(py::module_& m);
#endif
#ifdef SOFTMAX_PY_HAS_CROSS_ENTROPY
void register_cross_entropy(py::module_& m);
#endif
#ifdef SOFTMAX_PY_HAS_SAMPLING
void register_sampling(py::module_& m);
#endif
#ifdef SOFTMAX_PY_HAS_ATTENTION
void register_attention(py::module_& m);
#endif
#ifdef SOFTMAX_PY_HAS_LARGE_VOCAB
void register_large_vocab(py::module_& m);
#endif
#ifdef SOFTMAX_PY_HAS_DIST
void register_dist(py::module_& m);  // softmax.dist (MPI)
#endif
#ifdef SOFTMAX_PY_HAS_SPARSEMAX
void register_sparsemax(py::module_& m);  // sparsemax, gumbel_softmax
#endif
#ifdef SOFTMAX_PY_HAS_ROW_STATS
void register_row_stats(py::module_& m);  // softmax_stats, merge_stats, *_from_stats
#endif
}  // namespace softmax_py

PYBIND11_MODULE(_core, m) {
  m.doc() = R"doc(softmax: softmax, log-softmax, logsumexp and their neighbours on strided tensors.

Every function takes NumPy arrays (float16/32/64, any strides) or CPU tensors with
``__dlpack__`` (torch, including bfloat16) without copying, and returns the same kind of
object. Keyword arguments follow torch.nn.functional / scipy.special (``axis`` or ``dim``,
``keepdims`` or ``keepdim``, ``temperature``, ``dtype``, ``out``, ``threads``). Library errors
raise ValueError (TypeError for dtype errors) with the library's message.
)doc";
  m.attr("__version__") = SOFTMAX_VERSION;
  // Every docstring starts with its own Python-style signature line.
  pybind11::options options;
  options.disable_function_signatures();
  softmax_py::register_error_translator();
  softmax_py::register_core(m);
#ifdef SOFTMAX_PY_HAS_DIST
  softmax_py::register_dist(m);
#endif
#ifdef SOFTMAX_PY_HAS_BACKWARD
  softmax_py::register_backward(m);
#endif
#ifdef SOFTMAX_PY_HAS_CROSS_ENTROPY
  softmax_py::register_cross_entropy(m);
#endif
#ifdef SOFTMAX_PY_HAS_SAMPLING
  softmax_py::register_sampling(m);
#endif
#ifdef SOFTMAX_PY_HAS_ATTENTION
  softmax_py::register_attention(m);
#endif
#ifdef SOFTMAX_PY_HAS_LARGE_VOCAB
  softmax_py::register_large_vocab(m);
#endif
#ifdef SOFTMAX_PY_HAS_SPARSEMAX
  softmax_py::register_sparsemax(m);
#endif
#ifdef SOFTMAX_PY_HAS_ROW_STATS
  softmax_py::register_row_stats(m);
#endif
}
