// fuzz/api_fuzz.cc: libFuzzer target over the public C++ API (include/softmax/*.hpp).
// The input bytes choose an op, a dtype pair, a rank (1..4), a shape, strides (gaps, negative,
// zero, permuted storage), in place / shifted overlap / separate output, an axis (also invalid),
// a temperature (also 0, negative, NaN, inf, 1e-40, 1e300), a thread count (also 0, huge,
// negative) and the values (also -inf, +inf, NaN, subnormal, huge, runs of equal values).
// Every call must either throw softmax::Error leaving every output byte untouched, or succeed
// with every result within the documented bound of the long double reference (src/ref,
// fuzz/api_check.hpp), no byte outside the output view changed and the inputs unchanged.
// Invalid arguments (axis, temperature, dtype pair, overlap, negative threads) must throw.
// Anything else (another exception, a sanitizer report, a mismatch) prints what happened and
// traps. Input layout: byte 0 picks the op (run_one), then each driver reads its choices in
// order (dtype pair, rank, shape, axis / temperature / threads, layouts, values); past the end of
// the input, a SplitMix64 stream seeded from it supplies ordinary values (class Bytes).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/api_check.hpp"
#include "softmax/softmax.hpp"
#include "src/base/half.hpp"
#include "src/ref/reference.hpp"

namespace api_fuzz {
namespace {

using softmax::ConstTensorView;
using softmax::TensorView;
namespace ref = softmax::ref;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kMaxElems = 1 << 14;

std::string g_case;  // what the current input asks for, printed on a failure

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "api_fuzz: %s\n  case: %s\n", what.c_str(), g_case.c_str());
  std::fflush(stderr);
  __builtin_trap();
}
std::string num(LD v) {
  char b[48];
  std::snprintf(b, sizeof b, "%.17Lg", v);
  return b;
}

// The fuzz bytes; past their end, a SplitMix64 stream seeded from them.
class Bytes {
 public:
  Bytes(const uint8_t* p, std::size_t n) : p_(p), n_(n) {
    for (std::size_t i = 0; i < n; ++i) state_ = state_ * 131 + p[i];
  }
  bool exhausted() const { return i_ >= n_; }
  uint8_t u8() {
    if (i_ < n_) return p_[i_++];
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<uint8_t>((z ^ (z >> 31)) >> 56);
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  template <class T, std::size_t N>
  T pick(const T (&table)[N]) {
    return table[u8() % N];
  }

 private:
  const uint8_t* p_;
  std::size_t n_, i_ = 0;
  uint64_t state_ = 0x2545F4914F6CDD1Dull;
};

// ---- memory: one allocation per tensor (or shared for aliasing), snapshotted before the call.
struct Store {
  struct alignas(64) Line {
    unsigned char b[64];
  };
  std::vector<Line> lines;  // 64-byte aligned (copies too, so offsets keep their alignment)
  std::vector<unsigned char> before;
  std::vector<bool> written;  // bytes an output view may change
  explicit Store(std::size_t n) : lines((n + 63) / 64), written(lines.size() * 64, false) {
    std::memset(lines.data(), 0xA5, size());
  }
  std::size_t size() const { return lines.size() * 64; }
  unsigned char* base() { return reinterpret_cast<unsigned char*>(lines.data()); }
  std::vector<unsigned char> bytes() { return {base(), base() + size()}; }
};

struct Tensor {
  std::shared_ptr<Store> store;
  DType dtype = DType::f32;
  std::vector<int64_t> shape, strides;
  std::ptrdiff_t origin = 0;  // byte offset of element (0, ..., 0) from store->base()
  void* data() const { return store->base() + origin; }
  int64_t es() const { return static_cast<int64_t>(softmax::dtype_size(dtype)); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  ConstTensorView cview() const { return {data(), dtype, shape, strides}; }
  TensorView view() const { return {data(), dtype, shape, strides}; }
  int64_t offset(const std::vector<int64_t>& idx) const {
    int64_t o = 0;
    for (std::size_t d = 0; d < idx.size(); ++d) o += idx[d] * strides[d];
    return o;
  }
  LD get(int64_t off) const { return softmax::detail::load_as_double(data(), dtype, off); }
  void set(int64_t off, double v) const {
    softmax::detail::store_from_double(data(), dtype, off, v);
  }
  // Lowest and one-past-highest element offsets (0, 0 when empty).
  void extent(int64_t& lo, int64_t& hi) const {
    lo = hi = 0;
    if (numel() == 0) return;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      const int64_t s = (shape[d] - 1) * strides[d];
      (s < 0 ? lo : hi) += s;
    }
    hi += 1;
  }
};

// Calls fn(index) for every multi-index of `shape` in row-major order.
template <class Fn>
void for_each_index(const std::vector<int64_t>& shape, Fn&& fn) {
  for (int64_t d : shape) {
    if (d == 0) return;
  }
  std::vector<int64_t> idx(shape.size(), 0);
  while (true) {
    fn(idx);
    std::size_t d = shape.size();
    while (d > 0 && ++idx[d - 1] == shape[d - 1]) idx[--d] = 0;
    if (d == 0) return;
  }
}

// A layout for `shape`: storage order permuted, per dim a gap, a negative or (inputs only) a
// zero stride; a few spare elements each side and 0..3 elements off 64-byte alignment.
Tensor make_tensor(Bytes& in, DType dtype, const std::vector<int64_t>& shape, bool input) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  const std::size_t r = shape.size();
  std::vector<std::size_t> order(r);
  for (std::size_t i = 0; i < r; ++i) order[i] = i;
  const uint8_t layout = in.u8();
  if (layout & 1) {
    for (std::size_t i = r; i > 1; --i) std::swap(order[i - 1], order[in.u8() % i]);
  }
  t.strides.assign(r, 0);
  int64_t acc = 1, shift = 0;
  for (std::size_t k = r; k-- > 0;) {  // innermost storage dim first
    const std::size_t d = order[k];
    const uint8_t mode = (layout & 2) ? in.u8() % 8 : 0;
    if (mode == 7 && input) continue;  // stride 0 (broadcast)
    int64_t s = acc * (mode == 5 ? 2 : 1);
    acc = s * std::max<int64_t>(shape[d], 1);
    if (mode == 6 || (mode == 7 && !input)) {  // negative (outputs: no stride 0)
      shift += (shape[d] > 0 ? shape[d] - 1 : 0) * s;
      s = -s;
    }
    t.strides[d] = s;
  }
  const int64_t pad = 4, mis = (layout >> 2) & 3;
  const int64_t es = t.es();
  t.store = std::make_shared<Store>(static_cast<std::size_t>((acc + 2 * pad + mis) * es));
  t.origin = (pad + mis + shift) * es;
  return t;
}

// ---- values
struct ValueGen {
  DType t;
  double scale;
  double prev = 0;
  double next(Bytes& in) {
    const bool tail = in.exhausted();
    const uint8_t c = in.u8();
    const uint16_t m = in.u16();
    const double u = (m / 65535.0) * 2 - 1;
    double v = u * scale;
    if (!tail) {
      const bool f64 = t == DType::f64;
      const double huge = t == DType::f16 ? 65504.0 : f64 ? 1.7e308 : 3.3e38;
      const double sub = f64 ? 4.9e-324 : t == DType::f16 ? 6e-8 : 1.4e-45;
      if (c >= 242)
        v = prev;
      else if (c >= 236)
        v = u < 0 ? -huge : huge;
      else if (c >= 228)
        v = sub * (1 + (m & 0xFF)) * (m & 0x100 ? -1 : 1);
      else if (c >= 222)
        v = kNaN;
      else if (c >= 216)
        v = kInf;
      else if (c >= 206)
        v = -kInf;
      else if (c >= 200)
        v = 0;
    } else if (c >= 240) {
      v = prev;
    }
    prev = v;
    return v;
  }
};
void fill(Bytes& in, const Tensor& t, double scale) {
  ValueGen g{t.dtype, scale};
  for_each_index(t.shape,
                 [&](const std::vector<int64_t>& idx) { t.set(t.offset(idx), g.next(in)); });
}
double pick_scale(Bytes& in) {
  static const double kScales[] = {1, 4, 10, 100, 1e4, 1e30, 0.01, 88};
  return in.pick(kScales);
}

// ---- the call protocol
enum class Expect { kOk, kError, kEither };
struct Call {
  std::vector<std::shared_ptr<Store>> stores;
  Expect expect = Expect::kOk;
  void track(const Tensor& t) {
    for (const auto& s : stores) {
      if (s == t.store) return;
    }
    stores.push_back(t.store);
  }
  void mark_output(const Tensor& t) {
    track(t);
    const int64_t es = t.es();
    for_each_index(t.shape, [&](const std::vector<int64_t>& idx) {
      const std::ptrdiff_t b = t.origin + t.offset(idx) * es;
      for (int64_t k = 0; k < es; ++k) t.store->written[static_cast<std::size_t>(b + k)] = true;
    });
  }
  // Runs fn; returns true when it returned normally (then the results are to be checked).
  template <class Fn>
  bool run(Fn&& fn) {
    for (const auto& s : stores) s->before = s->bytes();
    bool threw = false;
    try {
      fn();
    } catch (const softmax::Error& e) {
      threw = true;
      if (expect == Expect::kOk) fail(std::string("unexpected softmax::Error: ") + e.what());
      for (const auto& s : stores) {
        if (s->bytes() != s->before)
          fail(std::string("bytes written before throwing: ") + e.what());
      }
    } catch (const std::exception& e) {
      fail(std::string("exception other than softmax::Error: ") + e.what());
    } catch (...) {
      fail("non-std exception");
    }
    if (!threw) {
      if (expect == Expect::kError) fail("invalid arguments accepted without softmax::Error");
      for (const auto& s : stores) {
        const unsigned char* now = s->base();
        for (std::size_t i = 0; i < s->size(); ++i) {
          if (!s->written[i] && now[i] != s->before[i]) {
            fail("byte " + std::to_string(i) + " outside the output view (or of an input) changed");
          }
        }
      }
    }
    return !threw;
  }
};

// ---- options
struct Common {
  int64_t axis = -1;
  bool axis_ok = true;
  double temperature = 1;
  bool temperature_ok = true;
  int threads = 1;
  bool threads_ok = true;
};
Common pick_common(Bytes& in, int64_t rank) {
  Common c;
  const uint8_t a = in.u8();
  c.axis = a < 200 ? static_cast<int64_t>(a % (2 * rank)) - rank
                   : static_cast<int64_t>(a % 5) + rank - (a & 8 ? 2 * rank + 4 : 0);
  c.axis_ok = c.axis >= -rank && c.axis < rank;
  static const double kT[] = {1,    1,     1,     1,     0.5,    2,      0.25, 3,
                              7,    1.5,   0.1,   1e-3,  100,    0,      -1,   kNaN,
                              kInf, -kInf, 1e-40, 1e300, 1e-300, 5e-324, 1e30};
  c.temperature = in.pick(kT);
  c.temperature_ok = std::isfinite(c.temperature) && c.temperature > 0;
  static const int kThreads[] = {1, 1, 0, 2, 3, 1, 2, 7, std::numeric_limits<int>::max(), -1, 1000};
  c.threads = in.pick(kThreads);
  c.threads_ok = c.threads >= 0;
  return c;
}
softmax::SoftmaxOptions axis_options(const Common& c, bool keepdims) {
  softmax::SoftmaxOptions o;
  o.axis = c.axis;
  o.temperature = c.temperature;
  o.threads = c.threads;
  o.keepdims = keepdims;
  return o;
}

std::vector<int64_t> pick_shape(Bytes& in, int64_t rank) {
  std::vector<int64_t> shape(static_cast<std::size_t>(rank));
  const uint8_t mode = in.u8();
  int64_t total = 1;
  for (auto& d : shape) {
    const uint8_t b = in.u8();
    d = b < 160 ? b % 6 : b < 240 ? b % 70 : 0;
    total *= std::max<int64_t>(d, 1);
  }
  if (mode >= 240) {  // one long row: around the 16-lane, 2048-block and 32768-chunk sizes
    static const int64_t kLong[] = {255, 257, 2047, 2048, 2049, 4097, 6143, 32769};
    shape.back() = in.pick(kLong);
    for (std::size_t i = 0; i + 1 < shape.size(); ++i) shape[i] = std::min<int64_t>(shape[i], 1);
    return shape;
  }
  while (total > kMaxElems) {  // keep each run short
    total = 1;
    for (auto& d : shape) {
      d = (d + 1) / 2;
      total *= std::max<int64_t>(d, 1);
    }
  }
  return shape;
}

struct Pair {
  DType x, y;
  bool ok;
};
Pair pick_pair(Bytes& in) {
  static const Pair kPairs[] = {{DType::f32, DType::f32, true},   {DType::f64, DType::f64, true},
                                {DType::bf16, DType::bf16, true}, {DType::f16, DType::f16, true},
                                {DType::f16, DType::f32, true},   {DType::bf16, DType::f32, true},
                                {DType::f32, DType::bf16, true},  {DType::f32, DType::f16, true},
                                {DType::f32, DType::f32, true},   {DType::f64, DType::f64, true},
                                {DType::f64, DType::f32, false},  {DType::f32, DType::f64, false},
                                {DType::i32, DType::f32, false},  {DType::f32, DType::i64, false}};
  return in.pick(kPairs);
}

// How the output relates to the input: separate, exactly the input (in place), or the input's
// layout shifted by one element in the same allocation (a partial overlap).
enum class Alias { kNone, kInPlace, kShifted };
Alias pick_alias(Bytes& in) {
  const uint8_t a = in.u8();
  return a < 150 ? Alias::kNone : a < 230 ? Alias::kInPlace : Alias::kShifted;
}
Tensor alias_of(const Tensor& x, DType y_dtype, Alias alias) {
  Tensor y = x;
  y.dtype = y_dtype;
  if (alias == Alias::kShifted) y.origin += x.es();
  return y;
}
// Whether the byte ranges of two views of one allocation overlap.
bool bytes_overlap(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0 || a.store != b.store) return false;
  int64_t alo, ahi, blo, bhi;
  a.extent(alo, ahi);
  b.extent(blo, bhi);
  const std::ptrdiff_t a0 = a.origin + alo * a.es(), a1 = a.origin + ahi * a.es();
  const std::ptrdiff_t b0 = b.origin + blo * b.es(), b1 = b.origin + bhi * b.es();
  return a0 < b1 && b0 < a1;
}
bool same_view(const Tensor& a, const Tensor& b) {
  return a.store == b.store && a.origin == b.origin && a.dtype == b.dtype && a.strides == b.strides;
}
// Output stride 0 on a dim > 1 (elements sharing memory) is rejected by every op.
bool self_overlapping(const Tensor& t) {
  for (std::size_t d = 0; d < t.shape.size(); ++d) {
    if (t.strides[d] == 0 && t.shape[d] > 1) return true;
  }
  return false;
}

// Rows of `t` along `axis`: calls fn(outer index with axis set to 0, offsets of the row).
template <class Fn>
void for_each_row(const Tensor& t, int64_t axis, Fn&& fn) {
  std::vector<int64_t> outer = t.shape;
  outer[static_cast<std::size_t>(axis)] = 1;
  const int64_t n = t.shape[static_cast<std::size_t>(axis)];
  for_each_index(outer, [&](const std::vector<int64_t>& idx) {
    std::vector<int64_t> offs;
    std::vector<int64_t> j = idx;
    for (int64_t i = 0; i < n; ++i) {
      j[static_cast<std::size_t>(axis)] = i;
      offs.push_back(t.offset(j));
    }
    fn(idx, offs);
  });
}
std::vector<LD> gather(const Tensor& t, const std::vector<int64_t>& offs) {
  std::vector<LD> v;
  for (int64_t o : offs) v.push_back(t.get(o));
  return v;
}
LD row_max(const std::vector<LD>& row) {
  LD m = -INFINITY;
  for (LD v : row) m = std::isnan(v) ? m : std::fmax(m, v);
  return m;
}
std::string row_str(const std::vector<LD>& row) {
  std::string s = "{";
  for (std::size_t i = 0; i < row.size() && i < 64; ++i) s += (i ? ", " : "") + num(row[i]);
  return s + (row.size() > 64 ? ", ... (" + std::to_string(row.size()) + ")}" : "}");
}
void check_value(DType out, double got, LD exact, LD bound, const std::string& what,
                 bool rounded = false) {
  if (!within(out, got, exact, bound, rounded)) {
    fail(what + ": got " + num(got) + ", exact " + num(exact) + ", bound " + num(bound) + " (err " +
         num(std::fabs(static_cast<LD>(got) - exact)) + ")");
  }
}
std::string describe(const char* op, const Tensor& x, const Tensor& y, const Common& c) {
  std::string s = std::string(op) + " " + softmax::dtype_name(x.dtype) + "->" +
                  softmax::dtype_name(y.dtype) + " shape (";
  for (int64_t d : x.shape) s += std::to_string(d) + ",";
  s += ") x strides (";
  for (int64_t d : x.strides) s += std::to_string(d) + ",";
  s += ") y strides (";
  for (int64_t d : y.strides) s += std::to_string(d) + ",";
  s += ") x@" + std::to_string(x.origin % 64) + " y@" + std::to_string(y.origin % 64) +
       (same_view(x, y)      ? " in place"
        : x.store == y.store ? " shifted"
                             : "") +
       " axis " + std::to_string(c.axis) + " T " + num(c.temperature) + " threads " +
       std::to_string(c.threads);
  return s;
}

// A deep copy (its own allocation): the inputs as they were before an in-place call.
Tensor clone(const Tensor& t) {
  Tensor c = t;
  c.store = std::make_shared<Store>(*t.store);
  return c;
}
Expect expect_of(bool invalid, bool empty_may_pass) {
  return invalid ? (empty_may_pass ? Expect::kEither : Expect::kError) : Expect::kOk;
}
// The output of an op whose input is x: separate (a fresh layout of `shape`), or an alias of x.
Tensor make_output(Bytes& in, const Tensor& x, DType dtype, const std::vector<int64_t>& shape,
                   Alias alias) {
  // (a wider output dtype would reach past x's allocation: then a separate output)
  if (alias == Alias::kNone || shape != x.shape ||
      softmax::dtype_size(dtype) > softmax::dtype_size(x.dtype)) {
    return make_tensor(in, dtype, shape, false);
  }
  return alias_of(x, dtype, alias);
}
// Errors an output view brings: overlap with an input other than an allowed exact alias, or
// elements sharing memory.
bool output_conflicts(const Tensor& y, const std::vector<const Tensor*>& inputs,
                      const std::vector<const Tensor*>& may_alias) {
  if (self_overlapping(y)) return true;
  for (const Tensor* x : inputs) {
    bool allowed = false;
    for (const Tensor* a : may_alias) allowed = allowed || (a == x && same_view(*x, y));
    if (!allowed && bytes_overlap(*x, y)) return true;
  }
  return false;
}

enum class Op {
  kSoftmax,
  kLogSoftmax,
  kLogsumexp,
  kArgmax,
  kHardmax,
  kSigmoid,
  kSoftmaxBackward,
  kLogSoftmaxBackward,
  kCrossEntropy,
  kNllLoss,
  kMaskedSoftmax,
  kCount
};
const char* const kOpNames[] = {
    "softmax",       "log_softmax", "logsumexp",        "argmax",
    "hardmax",       "sigmoid",     "softmax_backward", "log_softmax_backward",
    "cross_entropy", "nll_loss",    "masked_softmax"};

// ---- softmax, log_softmax, logsumexp, argmax, hardmax
void run_axis_op(Bytes& in, Op op) {
  const Pair p = pick_pair(in);
  const int64_t rank = 1 + in.u8() % 4;
  const std::vector<int64_t> shape = pick_shape(in, rank);
  const Common c = pick_common(in, rank);
  const bool keepdims = in.u8() & 1;
  Tensor x = make_tensor(in, p.x, shape, true);
  fill(in, x, pick_scale(in));
  const bool reduces = op == Op::kLogsumexp || op == Op::kArgmax;
  DType ydt = p.y;
  bool dtypes_ok = p.ok;
  if (op == Op::kArgmax) {
    static const DType kIdx[] = {DType::i64, DType::i64, DType::i32, DType::f32};
    ydt = in.pick(kIdx);
    dtypes_ok = p.x != DType::i32 && p.x != DType::i64 && ydt != DType::f32;
  } else if (op == Op::kHardmax) {  // any floating in and out
    dtypes_ok = p.x != DType::i32 && p.y != DType::i64;
  }
  std::vector<int64_t> yshape = shape;
  const int64_t ax = c.axis_ok ? (c.axis < 0 ? c.axis + rank : c.axis) : 0;
  if (reduces && c.axis_ok) {
    if (keepdims)
      yshape[static_cast<std::size_t>(ax)] = 1;
    else
      yshape.erase(yshape.begin() + ax);
  }
  const Alias alias = reduces ? Alias::kNone : pick_alias(in);
  Tensor y = make_output(in, x, ydt, yshape, alias);
  const Tensor x0 = clone(x);
  const int64_t n = shape[static_cast<std::size_t>(ax)];
  int64_t rows = 1;
  for (std::size_t d = 0; d < shape.size(); ++d)
    rows *= static_cast<int64_t>(d) == ax ? 1 : shape[d];
  const bool empty_row_error = op == Op::kArgmax && n == 0 && rows > 0;
  const bool bad_args = !c.axis_ok || !c.temperature_ok || !c.threads_ok || !dtypes_ok;
  const bool conflicts = output_conflicts(y, {&x}, {&x});
  Call call;
  call.track(x);
  call.mark_output(y);
  call.expect = bad_args || empty_row_error ? Expect::kError
                : conflicts                 ? expect_of(true, x.numel() == 0 || y.numel() == 0)
                                            : Expect::kOk;
  g_case = describe(kOpNames[static_cast<int>(op)], x, y, c) + (keepdims ? " keepdims" : "");
  const softmax::SoftmaxOptions o = axis_options(c, keepdims);
  const bool ok = call.run([&] {
    switch (op) {
      case Op::kSoftmax: softmax::softmax(x.cview(), y.view(), o); break;
      case Op::kLogSoftmax: softmax::log_softmax(x.cview(), y.view(), o); break;
      case Op::kLogsumexp: softmax::logsumexp(x.cview(), y.view(), o); break;
      case Op::kArgmax: softmax::argmax(x.cview(), y.view(), o); break;
      default: softmax::hardmax(x.cview(), y.view(), o); break;
    }
  });
  if (!ok) return;
  const DType ct = compute_type(p.x);
  const double t = c.temperature;
  for_each_row(x0, ax, [&](const std::vector<int64_t>& idx, const std::vector<int64_t>& offs) {
    const std::vector<LD> row = gather(x0, offs);
    const LD m = row_max(row);
    bool has_nan = false;  // (a NaN row is NaN everywhere, its -inf entries too)
    for (const LD v : row) has_nan = has_nan || std::isnan(v);
    const std::string at = " row " + row_str(row);
    if (reduces) {
      std::vector<int64_t> yi = idx;
      if (!keepdims) yi.erase(yi.begin() + ax);
      const int64_t yo = y.offset(yi);
      if (op == Op::kArgmax) {
        const auto got = static_cast<int64_t>(y.get(yo));
        if (got != ref::argmax(row)) fail("argmax " + std::to_string(got) + at);
      } else {
        const LD e = ref::logsumexp(row, t);
        check_value(y.dtype, static_cast<double>(y.get(yo)), e, logsumexp_bound(ct, e, m, t),
                    "logsumexp" + at);
      }
      return;
    }
    std::vector<LD> want;
    if (op == Op::kSoftmax)
      want = ref::softmax(row, t);
    else if (op == Op::kLogSoftmax)
      want = ref::log_softmax(row, t);
    else {
      want.assign(row.size(), 0);
      if (!row.empty()) want[static_cast<std::size_t>(ref::argmax(row))] = 1;
    }
    std::vector<int64_t> j = idx;  // y has its own layout: index it, not with x's offsets
    for (std::size_t i = 0; i < row.size(); ++i) {
      j[static_cast<std::size_t>(ax)] = static_cast<int64_t>(i);
      const double got = static_cast<double>(y.get(y.offset(j)));
      const std::string what =
          std::string(kOpNames[static_cast<int>(op)]) + " i=" + std::to_string(i) + at;
      if (op == Op::kHardmax) {
        if (got != want[i]) fail(what + ": got " + num(got));
      } else if (row[i] == -INFINITY && std::isfinite(m) && !has_nan) {  // exactly 0 / -inf
        if (got != (op == Op::kSoftmax ? 0.0 : -kInf)) fail(what + ": -inf entry gave " + num(got));
      } else {
        const LD b =
            op == Op::kSoftmax ? softmax_bound(ct, want[i]) : log_softmax_bound(ct, want[i]);
        check_value(y.dtype, got, want[i], b, what);
      }
    }
  });
}

// ---- sigmoid (elementwise)
void run_sigmoid(Bytes& in) {
  const Pair p = pick_pair(in);
  const int64_t rank = 1 + in.u8() % 4;
  const std::vector<int64_t> shape = pick_shape(in, rank);
  Common c = pick_common(in, rank);
  Tensor x = make_tensor(in, p.x, shape, true);
  fill(in, x, pick_scale(in));
  Tensor y = make_output(in, x, p.y, shape, pick_alias(in));
  const Tensor x0 = clone(x);
  Call call;
  call.track(x);
  call.mark_output(y);
  const bool conflicts = output_conflicts(y, {&x}, {&x});
  call.expect = !p.ok || !c.threads_ok ? Expect::kError : expect_of(conflicts, x.numel() == 0);
  c.axis = 0;
  c.temperature = 1;
  g_case = describe("sigmoid", x, y, c);
  softmax::ElementwiseOptions o;
  o.threads = c.threads;
  if (!call.run([&] { softmax::sigmoid(x.cview(), y.view(), o); })) return;
  const DType ct = compute_type(p.x);
  for_each_index(shape, [&](const std::vector<int64_t>& idx) {
    const LD v = x0.get(x0.offset(idx));
    const LD e = ref::sigmoid(v);
    check_value(y.dtype, static_cast<double>(y.get(y.offset(idx))), e, sigmoid_bound(ct, e),
                "sigmoid(" + num(v) + ")");
  });
}

// Fills y with softmax (or log_softmax) rows of fuzz logits along axis: a realistic forward
// output for the backward passes.
void fill_forward_output(Bytes& in, const Tensor& y, int64_t axis, bool log_mode) {
  Tensor logits = y;
  logits.store = std::make_shared<Store>(*y.store);
  fill(in, logits, pick_scale(in));
  for_each_row(y, axis, [&](const std::vector<int64_t>&, const std::vector<int64_t>& offs) {
    const std::vector<LD> row = gather(logits, offs);
    const std::vector<LD> v = log_mode ? ref::log_softmax(row) : ref::softmax(row);
    for (std::size_t i = 0; i < offs.size(); ++i) y.set(offs[i], static_cast<double>(v[i]));
  });
}

// ---- softmax_backward, log_softmax_backward
void run_backward(Bytes& in, bool log_mode) {
  const Pair p = pick_pair(in);
  const int64_t rank = 1 + in.u8() % 4;
  const std::vector<int64_t> shape = pick_shape(in, rank);
  const Common c = pick_common(in, rank);
  const int64_t ax = c.axis_ok ? (c.axis < 0 ? c.axis + rank : c.axis) : 0;
  Tensor y = make_tensor(in, p.x, shape, true);
  Tensor dy = make_tensor(in, p.x, shape, true);
  if (in.u8() < 160 && c.axis_ok)
    fill_forward_output(in, y, ax, log_mode);
  else
    fill(in, y, pick_scale(in));
  fill(in, dy, pick_scale(in));
  const uint8_t a = in.u8();  // dx: separate, exactly y, exactly dy, or shifted over dy
  const Alias alias = a < 150 ? Alias::kNone : a < 230 ? Alias::kInPlace : Alias::kShifted;
  Tensor dx = make_output(in, (a & 1) ? y : dy, p.y, shape, alias);
  const Tensor y0 = clone(y), dy0 = clone(dy);
  Call call;
  call.track(y);
  call.track(dy);
  call.mark_output(dx);
  const bool conflicts = output_conflicts(dx, {&y, &dy}, {&y, &dy});
  const bool bad = !c.axis_ok || !c.temperature_ok || !c.threads_ok || !p.ok;
  call.expect = bad ? Expect::kError : expect_of(conflicts, y.numel() == 0);
  const char* name = log_mode ? "log_softmax_backward" : "softmax_backward";
  g_case = describe(name, y, dx, c) + " dy strides (";
  for (int64_t d : dy.strides) g_case += std::to_string(d) + ",";
  g_case += ") dy@" + std::to_string(dy.origin % 64);
  const softmax::SoftmaxOptions o = axis_options(c, false);
  if (!call.run([&] {
        if (log_mode)
          softmax::log_softmax_backward(y.cview(), dy.cview(), dx.view(), o);
        else
          softmax::softmax_backward(y.cview(), dy.cview(), dx.view(), o);
      })) {
    return;
  }
  const DType ct = compute_type(p.x);
  for_each_row(y0, ax, [&](const std::vector<int64_t>& idx, const std::vector<int64_t>& offs) {
    const std::vector<LD> yr = gather(y0, offs);
    std::vector<int64_t> doffs;
    std::vector<int64_t> j = idx;
    for (std::size_t i = 0; i < offs.size(); ++i) {
      j[static_cast<std::size_t>(ax)] = static_cast<int64_t>(i);
      doffs.push_back(dy0.offset(j));
    }
    const std::vector<LD> dyr = gather(dy0, doffs);
    const RowGrad g = log_mode ? log_softmax_backward_ref(yr, dyr, ct, c.temperature)
                               : softmax_backward_ref(yr, dyr, ct, c.temperature);
    if (!g.in_range) return;  // beyond the compute type: IEEE overflow, no bound applies
    for (std::size_t i = 0; i < offs.size(); ++i) {
      j[static_cast<std::size_t>(ax)] = static_cast<int64_t>(i);
      check_value(dx.dtype, static_cast<double>(dx.get(dx.offset(j))), g.dx[i],
                  g.bound[i] + output_rounding(dx.dtype, g.dx[i]),
                  std::string(name) + " i=" + std::to_string(i) + " y " + row_str(yr) + " dy " +
                      row_str(dyr));
    }
  });
}

// ---- cross_entropy, nll_loss (hard targets)
void run_loss(Bytes& in, bool logits_mode) {
  const Pair p = pick_pair(in);
  const int64_t rank = 1 + in.u8() % 3;  // (C), (N, C), (N, C, d)
  std::vector<int64_t> shape = pick_shape(in, rank);
  const int64_t cax = rank == 1 ? 0 : 1;
  const int64_t classes = shape[static_cast<std::size_t>(cax)];
  std::vector<int64_t> rshape = shape;  // the rows' shape
  rshape.erase(rshape.begin() + cax);
  Tensor x = make_tensor(in, p.x, shape, true);
  if (!logits_mode && in.u8() < 128 && classes > 0)
    fill_forward_output(in, x, cax, true);
  else
    fill(in, x, pick_scale(in));
  // targets
  static const DType kTargetTypes[] = {DType::i64, DType::i64, DType::i32, DType::f32};
  const DType tdt = in.pick(kTargetTypes);
  static const int64_t kIgnore[] = {-100, -100, 0, -1, 1};
  LossParams q;
  q.logits = logits_mode;
  q.ignore_index = in.pick(kIgnore);
  Tensor tg = make_tensor(in, tdt, rshape, true);
  bool targets_ok = tdt != DType::f32;
  for_each_index(rshape, [&](const std::vector<int64_t>& idx) {
    const uint8_t b = in.u8();
    const int64_t v = b >= 240 ? q.ignore_index : static_cast<int64_t>(b % (classes + 2)) - 1;
    tg.set(tg.offset(idx), static_cast<double>(v));
  });
  // Read back: with a stride 0 (broadcast) every index holds the last value written.
  for_each_index(rshape, [&](const std::vector<int64_t>& idx) {
    const auto v = static_cast<int64_t>(tg.get(tg.offset(idx)));
    targets_ok = targets_ok && (v == q.ignore_index || (v >= 0 && v < classes));
  });
  // options
  softmax::CrossEntropyOptions o;
  static const softmax::Reduction kRed[] = {softmax::Reduction::kMean, softmax::Reduction::kSum,
                                            softmax::Reduction::kNone};
  o.reduction = in.pick(kRed);
  o.ignore_index = q.ignore_index;
  static const double kEps[] = {0, 0, 0, 0.1, 1, 0.5, -0.1, 1.5, kNaN};
  o.label_smoothing = in.pick(kEps);
  static const double kZ[] = {0, 0, 0, 1e-4, 1, -1, kInf};
  o.z_loss = logits_mode ? in.pick(kZ) : (in.u8() < 240 ? 0.0 : 1e-4);
  static const double kNorm[] = {1, 1, 1, 2, 0.25, 0, kNaN};
  o.normalizer = in.pick(kNorm);
  static const double kGrad[] = {1, 1, 0.5, -3, kInf};
  o.grad_scale = in.pick(kGrad);
  static const int kThreads[] = {1, 0, 2, std::numeric_limits<int>::max(), -1};
  o.threads = in.pick(kThreads);
  // (nll_loss takes log-probabilities, which have no logsumexp: z_loss must be 0 there)
  const bool opts_ok = o.label_smoothing >= 0 && o.label_smoothing <= 1 && o.z_loss >= 0 &&
                       (logits_mode || o.z_loss == 0) && std::isfinite(o.z_loss) &&
                       std::isfinite(o.normalizer) && o.normalizer > 0 &&
                       (o.normalizer == 1 || o.reduction == softmax::Reduction::kSum) &&
                       std::isfinite(o.grad_scale) && o.threads >= 0;
  q.eps = o.label_smoothing;
  q.z = o.z_loss;
  // class weights
  const uint8_t wm = in.u8();
  Tensor w;
  bool weights_ok = true;
  if (wm >= 128) {
    const int64_t wn = wm >= 250 ? classes + 1 : classes;
    w = make_tensor(in, wm & 1 ? DType::f64 : DType::f32, {wn}, true);
    for (int64_t i = 0; i < wn; ++i) {
      const uint8_t b = in.u8();
      const double v = b >= 252 ? kNaN : b >= 200 ? 0.0 : (1 + b) / 64.0;
      w.set(i * w.strides[0], v);
    }
    for (int64_t i = 0; i < wn; ++i) {  // read back (a stride 0 keeps the last value)
      q.w.push_back(w.get(i * w.strides[0]));
      weights_ok = weights_ok && std::isfinite(q.w.back());
    }
    weights_ok = weights_ok && wn == classes;
    o.weight = w.cview();
  }
  // outputs
  static const DType kLossTypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
  const DType ldt = in.pick(kLossTypes);
  const bool none = o.reduction == softmax::Reduction::kNone;
  Tensor loss = make_tensor(in, ldt, none ? rshape : std::vector<int64_t>{}, false);
  softmax::CrossEntropyOutputs out;
  out.loss = loss.view();
  const uint8_t want = in.u8();
  const DType gdt = p.y;
  Tensor grad, lse, lp;
  Call call;
  call.track(x);
  call.track(tg);
  if (w.store) call.track(w);
  call.mark_output(loss);
  bool conflicts = self_overlapping(loss);
  if (want & 1) {
    const uint8_t a = in.u8();
    grad = make_output(in, x, gdt, shape,
                       a < 150   ? Alias::kNone
                       : a < 230 ? Alias::kInPlace
                                 : Alias::kShifted);
    out.grad = grad.view();
    call.mark_output(grad);
    conflicts = conflicts || output_conflicts(grad, {&x, &tg}, {&x});
  }
  if (logits_mode && (want & 2)) {
    lse = make_tensor(in, want & 8 ? DType::f64 : DType::f32, rshape, false);
    out.lse = lse.view();
    call.mark_output(lse);
    conflicts = conflicts || self_overlapping(lse);
  }
  if (logits_mode && (want & 4)) {
    lp = make_tensor(in, gdt, shape, false);
    out.log_probs = lp.view();
    call.mark_output(lp);
    conflicts = conflicts || self_overlapping(lp);
  }
  const Tensor x0 = clone(x);
  // The dtype pair matters only for the outputs of the input's dtype class (grad, log_probs):
  // without them only the input dtype is checked (loss and lse take any floating dtype).
  const bool x_ok = p.x != DType::i32 && p.x != DType::i64;
  const bool pair_ok = grad.store || lp.store ? p.ok : x_ok;
  const bool bad = !pair_ok || !targets_ok || !opts_ok || !weights_ok;
  call.expect = bad ? Expect::kError : expect_of(conflicts, x.numel() == 0);
  Common c;
  c.threads = o.threads;
  g_case = describe(logits_mode ? "cross_entropy" : "nll_loss", x, grad.store ? grad : loss, c) +
           " pair " + softmax::dtype_name(p.x) + "->" + softmax::dtype_name(p.y) + " reduction " +
           std::to_string(static_cast<int>(o.reduction)) + " eps " + num(o.label_smoothing) +
           " z " + num(o.z_loss) + " ignore " + std::to_string(o.ignore_index) + " weights " +
           std::to_string(q.w.size()) + " loss " + softmax::dtype_name(ldt) + " outputs " +
           std::to_string(want & 7) + " targets " + softmax::dtype_name(tdt) + " normalizer " +
           num(o.normalizer) + " grad_scale " + num(o.grad_scale) +
           (targets_ok ? "" : " (bad targets)") + (opts_ok ? "" : " (bad options)") +
           (weights_ok ? "" : " (bad weights)");
  if (!call.run([&] {
        if (logits_mode)
          softmax::cross_entropy(x.cview(), tg.cview(), out, o);
        else
          softmax::nll_loss(x.cview(), tg.cview(), out, o);
      })) {
    return;
  }
  const DType ct = compute_type(p.x);
  std::vector<RowLoss> rl;
  std::vector<std::vector<int64_t>> ridx, roffs;
  LD total = 0, total_bound = 0, denom = 0;
  if (classes == 0) return;  // no rows to check (C = 0 leaves nothing to take a log-prob of)
  for_each_row(x0, cax, [&](const std::vector<int64_t>& idx, const std::vector<int64_t>& offs) {
    std::vector<int64_t> ti = idx;
    ti.erase(ti.begin() + cax);
    const auto t = static_cast<int64_t>(tg.get(tg.offset(ti)));
    const std::vector<LD> row = gather(x0, offs);
    RowLoss r = logits_mode
                    ? row_loss(ref::log_softmax(row), ref::softmax(row), ref::logsumexp(row), t, q)
                    : row_loss(row, {}, 0, t, q);
    if (r.kept) denom += r.weight_t;
    total += r.loss;
    total_bound += row_loss_bound(ct, r.loss);
    const std::string at = " row " + row_str(row) + " target " + std::to_string(t);
    if (none) {
      check_value(ldt, static_cast<double>(loss.get(loss.offset(ti))), r.loss,
                  row_loss_bound(ct, r.loss), "loss" + at, true);
    }
    if (lse.store) {  // no separate bound is stated: the loss row bound with the lse as loss
      check_value(lse.dtype, static_cast<double>(lse.get(lse.offset(ti))), r.lse,
                  row_loss_bound(ct, r.lse), "lse" + at, true);
    }
    if (lp.store) {
      for (std::size_t i = 0; i < offs.size(); ++i) {
        std::vector<int64_t> j = idx;
        j[static_cast<std::size_t>(cax)] = static_cast<int64_t>(i);
        check_value(lp.dtype, static_cast<double>(lp.get(lp.offset(j))), r.lp[i],
                    row_loss_bound(ct, r.lp[i]), "log_probs i=" + std::to_string(i) + at);
      }
    }
    rl.push_back(std::move(r));
    ridx.push_back(idx);
    roffs.push_back(offs);
  });
  const bool mean = o.reduction == softmax::Reduction::kMean;
  const LD div = mean ? denom : none ? 1 : static_cast<LD>(o.normalizer);
  if (!none) {
    const LD e = mean && denom == 0 ? static_cast<LD>(kNaN) : total / div;
    check_value(ldt, static_cast<double>(loss.get(0)), e, total_bound / std::fabs(div),
                "reduced loss over " + std::to_string(rl.size()) + " rows", true);
  }
  if (!grad.store) return;
  const LD g = mean && denom == 0 ? 0 : o.grad_scale / div;
  for (std::size_t r = 0; r < rl.size(); ++r) {
    std::vector<int64_t> ti = ridx[r];
    ti.erase(ti.begin() + cax);
    const auto t = static_cast<int64_t>(tg.get(tg.offset(ti)));
    std::vector<LD> ge, gb;
    row_grad(rl[r], t, q, g, ct, ge, gb);
    for (std::size_t i = 0; i < ge.size(); ++i) {
      std::vector<int64_t> j = ridx[r];
      j[static_cast<std::size_t>(cax)] = static_cast<int64_t>(i);
      check_value(grad.dtype, static_cast<double>(grad.get(grad.offset(j))), ge[i],
                  gb[i] + output_rounding(grad.dtype, ge[i]),
                  "grad i=" + std::to_string(i) + " row " + row_str(gather(x0, roffs[r])) +
                      " target " + std::to_string(t));
    }
  }
}

// ---- masked_softmax: scale and causal masking (the remaining options are covered by
// tests/cpu/masked_softmax_test.cc); rows along the last axis.
void run_masked_softmax(Bytes& in) {
  const Pair p = pick_pair(in);
  const int64_t rank = 2 + in.u8() % 3;
  const std::vector<int64_t> shape = pick_shape(in, rank);
  Tensor s = make_tensor(in, p.x, shape, true);
  fill(in, s, pick_scale(in));
  Tensor y = make_output(in, s, p.y, shape, pick_alias(in));
  softmax::MaskOptions o;
  static const double kScale[] = {1, 1, 0.5, 2, 0.125, 3, kNaN, kInf};
  const uint8_t sm = in.u8();
  if (sm & 1) o.scale = in.pick(kScale);
  o.causal = sm & 2;
  o.align = sm & 4 ? softmax::Align::kBottomRight : softmax::Align::kTopLeft;
  static const int kThreads[] = {1, 0, 2, std::numeric_limits<int>::max(), -1};
  o.threads = in.pick(kThreads);
  const double scale = o.scale.value_or(1.0);
  const Tensor s0 = clone(s);
  Call call;
  call.track(s);
  call.mark_output(y);
  const bool bad = !p.ok || !std::isfinite(scale) || o.threads < 0;
  call.expect = bad ? Expect::kError : expect_of(output_conflicts(y, {&s}, {&s}), s.numel() == 0);
  Common c;
  c.threads = o.threads;
  c.temperature = scale;
  g_case = describe("masked_softmax (T = scale)", s, y, c) + (o.causal ? " causal" : "") +
           (sm & 4 ? " bottom-right" : "");
  if (!call.run([&] { softmax::masked_softmax(s.cview(), y.view(), o); })) return;
  const DType ct = compute_type(p.x);
  const int64_t sq = shape[static_cast<std::size_t>(rank - 2)], sk = shape.back();
  for_each_row(
      s0, rank - 1, [&](const std::vector<int64_t>& idx, const std::vector<int64_t>& offs) {
        const int64_t i = idx[static_cast<std::size_t>(rank - 2)];
        const int64_t diag = i + (o.align == softmax::Align::kBottomRight ? sk - sq : 0);
        std::vector<LD> kept;
        std::vector<std::size_t> pos;
        LD amax = 0;
        bool has_nan = false;
        for (std::size_t j = 0; j < offs.size(); ++j) {
          if (o.causal && static_cast<int64_t>(j) > diag) continue;
          kept.push_back(
              round_to(ct, scale * s0.get(offs[j])));  // the transform, in the compute type
          has_nan = has_nan || std::isnan(kept.back());
          pos.push_back(j);
          if (std::isfinite(kept.back())) amax = std::fmax(amax, std::fabs(kept.back()));
        }
        const LD m = row_max(kept);
        std::vector<LD> want(offs.size(), 0);
        const bool fully_masked = m == -INFINITY && !has_nan;
        // A NaN or +inf among the kept entries makes the whole row NaN, masked entries included
        // (attention.hpp: in masked_softmax "every entry of the row NaN, the masked ones
        // included").
        const bool nan_row = has_nan || m == INFINITY;
        if (nan_row) {
          want.assign(offs.size(), static_cast<LD>(kNaN));
        } else if (!fully_masked) {
          const std::vector<LD> v = ref::softmax(kept, 1);
          for (std::size_t k = 0; k < pos.size(); ++k) want[pos[k]] = v[k];
        }
        for (std::size_t j = 0; j < offs.size(); ++j) {
          std::vector<int64_t> jj = idx;
          jj.back() = static_cast<int64_t>(j);
          const double got = static_cast<double>(y.get(y.offset(jj)));
          const LD xj = round_to(ct, scale * s0.get(offs[j]));
          // softmax's bound, plus the rounding of scale * s (0.5 ulp of each x: a relative change
          // of y_j by at most eps (|x_j| + max |x_k|))
          LD b = softmax_bound(ct, want[j]);
          if (scale != 1 && std::isfinite(xj))
            b += unit_roundoff(ct) * (std::fabs(xj) + amax) * std::fabs(want[j]);
          const bool masked = want[j] == 0 && (fully_masked || xj == -INFINITY ||
                                               (o.causal && static_cast<int64_t>(j) > diag));
          if (masked ? got != 0 : !within(y.dtype, got, want[j], b)) {
            fail("masked_softmax j=" + std::to_string(j) + " row " + row_str(gather(s0, offs)) +
                 ": got " + num(got) + ", exact " + num(want[j]) + ", bound " + num(b));
          }
        }
      });
}

void run_one(Bytes& in) {
  const auto op = static_cast<Op>(in.u8() % static_cast<int>(Op::kCount));
  switch (op) {
    case Op::kSigmoid: run_sigmoid(in); break;
    case Op::kSoftmaxBackward: run_backward(in, false); break;
    case Op::kLogSoftmaxBackward: run_backward(in, true); break;
    case Op::kCrossEntropy: run_loss(in, true); break;
    case Op::kNllLoss: run_loss(in, false); break;
    case Op::kMaskedSoftmax: run_masked_softmax(in); break;
    default: run_axis_op(in, op); break;
  }
}

}  // namespace
}  // namespace api_fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  api_fuzz::Bytes in(data, size);
  api_fuzz::run_one(in);
  return 0;
}
