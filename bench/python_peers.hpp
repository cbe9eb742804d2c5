// bench/python_peers.hpp: PyTorch and NumPy inside bench/cpu_compare through an embedded
// Python (Debian's libpython3), so they run in the same process, the same rounds and on the same
// buffers as the C++ implementations. The Python side is bench/py_peers.py (found through
// SOFTMAX_BENCH_DIR). Without SOFTMAX_BENCH_HAVE_PYTHON, or when the import fails, the peers are
// left out with a message.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/base/timing.hpp"

#if defined(SOFTMAX_BENCH_HAVE_PYTHON)
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif

namespace softmax_bench {

#if defined(SOFTMAX_BENCH_HAVE_PYTHON)
class PythonPeers {
 public:
  // Starts the interpreter and imports py_peers once; nullptr when that fails (printed).
  static PythonPeers* get() {
    static PythonPeers* p = [] {
      Py_Initialize();
      PyRun_SimpleString("import sys; sys.path.insert(0, '" SOFTMAX_BENCH_DIR "')");
      PyObject* m = PyImport_ImportModule("py_peers");
      if (m == nullptr) {
        PyErr_Print();
        std::fprintf(stderr, "cpu_compare: bench/py_peers.py did not import: no PyTorch/NumPy\n");
        return static_cast<PythonPeers*>(nullptr);
      }
      return new PythonPeers(m);
    }();
    return p;
  }

  // {"numpy": "...", "torch": "..."} as Python's repr.
  std::string versions() const {
    Ref v(PyObject_CallMethod(module_, "versions", nullptr));
    Ref s(v ? PyObject_Repr(v.get()) : nullptr);
    return s ? PyUnicode_AsUTF8(s.get()) : "?";
  }

  // The case as a timing::Impl, or nullopt when the peer has none (or its first call fails).
  std::optional<softmax::timing::Impl> make(const std::string& impl, const std::string& op,
                                            const std::string& dtype, int64_t rows, int64_t n,
                                            const std::vector<void*>& in,
                                            const std::vector<void*>& out, int threads) const {
    Ref ins(addresses(in)), outs(addresses(out));
    auto fn = std::make_shared<Ref>(PyObject_CallMethod(
        module_, "make", "sssLLOO", impl.c_str(), op.c_str(), dtype.c_str(),
        static_cast<long long>(rows), static_cast<long long>(n), ins.get(), outs.get()));
    if (!*fn || fn->get() == Py_None) {
      if (PyErr_Occurred()) PyErr_Print();
      return std::nullopt;
    }
    auto args = std::make_shared<std::vector<Ref>>();
    for (std::size_t i = 0; i < in.size(); ++i) args->emplace_back(PyLong_FromSize_t(i));
    PyObject* module = module_;
    softmax::timing::Impl r;
    r.call = [fn, args](int64_t i) {
      PyObject* res = PyObject_CallOneArg(fn->get(), (*args)[static_cast<std::size_t>(i)].get());
      if (res == nullptr) {
        PyErr_Print();
        throw std::runtime_error("a Python peer raised");
      }
      Py_DECREF(res);
    };
    if (impl == "torch") {
      r.before = [module, threads] {
        Ref res(PyObject_CallMethod(module, "set_threads", "i", threads));
        if (!res) PyErr_Print();
      };
    }
    try {
      if (r.before) r.before();
      r.call(0);
    } catch (const std::runtime_error&) {
      return std::nullopt;
    }
    return r;
  }

 private:
  // An owned reference.
  struct Ref {
    explicit Ref(PyObject* p = nullptr) : p_(p) {}
    Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { Py_XDECREF(p_); }
    PyObject* get() const { return p_; }
    explicit operator bool() const { return p_ != nullptr; }

   private:
    PyObject* p_;
  };

  explicit PythonPeers(PyObject* m) : module_(m) {}

  static PyObject* addresses(const std::vector<void*>& ps) {
    PyObject* l = PyList_New(static_cast<Py_ssize_t>(ps.size()));
    for (std::size_t i = 0; i < ps.size(); ++i) {
      PyList_SET_ITEM(l, static_cast<Py_ssize_t>(i), PyLong_FromVoidPtr(ps[i]));
    }
    return l;
  }

  PyObject* module_;
};
#else
class PythonPeers {
 public:
  static PythonPeers* get() {
    static const bool said = [] {
      std::fprintf(stderr, "cpu_compare: built without Python (python3-dev): no PyTorch/NumPy\n");
      return true;
    }();
    (void)said;
    return nullptr;
  }
  std::string versions() const { return "{}"; }
  std::optional<softmax::timing::Impl> make(const std::string&, const std::string&,
                                            const std::string&, int64_t, int64_t,
                                            const std::vector<void*>&, const std::vector<void*>&,
                                            int) const {
    return std::nullopt;
  }
};
#endif

}  // namespace softmax_bench
