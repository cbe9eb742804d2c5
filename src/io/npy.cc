// src/io/npy.cc: strict reader and atomic writer for NumPy .npy files (format 1.0, 2.0, 3.0).
//
// Format (numpy/lib/format.py, NEP 1): the magic "\x93NUMPY", a major and minor version byte,
// a little-endian header length (uint16 for 1.0, uint32 for 2.0/3.0), then an ASCII (3.0: UTF-8)
// Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with spaces
// and a newline, then the raw element bytes.
#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "softmax/error.hpp"
#include "src/io/file_util.hpp"
#include "src/io/npy.hpp"

namespace softmax::io {

namespace {

constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// Numpy caps the rank at 64 (NPY_MAXDIMS in numpy 2); anything above is hostile.
constexpr std::size_t kMaxRank = 64;

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw Error(ErrorKind::kIO, "read_npy", "'" + name + "': " + problem);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// A tiny parser for the header dict: only the three keys numpy writes, Python literal syntax.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    skip_ws();
    while (!at('}')) {
      const std::string key = parse_string("a key");
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr) bad("key 'descr' appears twice");
        if (at('[')) bad("structured dtypes are not supported (descr is a list)");
        descr = parse_string("the 'descr' string");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran) bad("key 'fortran_order' appears twice");
        fortran = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        if (have_shape) bad("key 'shape' appears twice");
        shape = parse_shape();
        have_shape = true;
      } else {
        bad("unexpected key '" + key + "'");
      }
      skip_ws();
      if (at(',')) {
        ++i_;
        skip_ws();
      } else if (!at('}')) {
        bad("expected ',' or '}' after the value of '" + key + "'");
      }
    }
    ++i_;  // '}'
    for (; i_ < s_.size(); ++i_) {
      if (s_[i_] != ' ' && s_[i_] != '\n' && s_[i_] != '\t' && s_[i_] != '\r' && s_[i_] != '\0') {
        bad("unexpected text after the header dict");
      }
    }
    if (!have_descr) bad("key 'descr' is missing");
    if (!have_fortran) bad("key 'fortran_order' is missing");
    if (!have_shape) bad("key 'shape' is missing");
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(name_, "malformed header at byte " + std::to_string(i_) + ": " + what);
  }
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void skip_ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  void expect(char c) {
    if (!at(c)) bad(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string parse_string(const char* what) {
    if (!at('\'') && !at('"')) bad(std::string("expected ") + what);
    const char q = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\' || s_[i_] == '\n') bad("unsupported character in a string");
      out += s_[i_++];
      if (out.size() > 64) bad("string longer than 64 characters");
    }
    if (i_ >= s_.size()) bad("unterminated string");
    ++i_;
    return out;
  }
  bool parse_bool() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    bad("'fortran_order' must be True or False");
  }
  int64_t parse_int() {
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') bad("a dimension must be an integer >= 0");
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (__builtin_mul_overflow(v, int64_t{10}, &v) ||
          __builtin_add_overflow(v, int64_t{s_[i_] - '0'}, &v)) {
        bad("a dimension does not fit in int64");
      }
      ++i_;
    }
    if (at('L')) ++i_;  // Python 2 long literal, as written by old numpy
    return v;
  }
  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    skip_ws();
    while (!at(')')) {
      shape.push_back(parse_int());
      if (shape.size() > kMaxRank) bad("rank above " + std::to_string(kMaxRank));
      skip_ws();
      if (at(',')) {
        ++i_;
        skip_ws();
      } else if (!at(')')) {
        bad("expected ',' or ')' in the shape");
      }
    }
    ++i_;
    return shape;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t i_ = 0;
};

struct DescrInfo {
  DType dtype;
  bool swap;  // stored big-endian on this little-endian host (or the reverse)
};

DescrInfo parse_descr(const std::string& descr, const std::string& name) {
  auto unsupported = [&](const std::string& why) -> DescrInfo {
    fail(name, "unsupported dtype '" + descr + "'" + why +
                   " (supported: float16, float32, float64, int32, int64)");
  };
  if (descr.size() != 3) return unsupported("");
  const char order = descr[0];
  const std::string code = descr.substr(1);
  DType t;
  if (code == "f2")
    t = DType::f16;
  else if (code == "f4")
    t = DType::f32;
  else if (code == "f8")
    t = DType::f64;
  else if (code == "i4")
    t = DType::i32;
  else if (code == "i8")
    t = DType::i64;
  else
    return unsupported("");
  constexpr bool kLittle = std::endian::native == std::endian::little;
  bool big;
  if (order == '<')
    big = false;
  else if (order == '>')
    big = true;
  else if (order == '=')
    big = !kLittle;
  else
    return unsupported(": byte order must be '<', '>' or '='");
  return {t, big == kLittle};
}

void byteswap_elements(unsigned char* p, std::size_t count, std::size_t elem) {
  for (std::size_t i = 0; i < count; ++i, p += elem) std::reverse(p, p + elem);
}

// Fortran order -> C order: element (i0, ..., ik) is at sum_j i_j * prod_{l<j} d_l in `src`.
void fortran_to_c(const unsigned char* src, unsigned char* dst, const std::vector<int64_t>& shape,
                  int64_t numel, std::size_t elem) {
  const std::size_t k = shape.size();
  if (numel == 0) return;
  std::vector<int64_t> fstride(k), idx(k, 0);
  int64_t s = 1;
  for (std::size_t j = 0; j < k; ++j) {
    fstride[j] = s;
    s *= shape[j];
  }
  int64_t off = 0;  // Fortran offset of the C-order element `i`
  for (int64_t i = 0; i < numel; ++i) {
    std::memcpy(dst + static_cast<std::size_t>(i) * elem,
                src + static_cast<std::size_t>(off) * elem, elem);
    for (std::size_t j = k; j-- > 0;) {  // odometer over C order (last index fastest)
      if (++idx[j] < shape[j]) {
        off += fstride[j];
        break;
      }
      off -= (shape[j] - 1) * fstride[j];
      idx[j] = 0;
    }
  }
}

}  // namespace

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Array Array::zeros(DType dtype, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      throw Error(ErrorKind::kInvalidArgument, "io::Array::zeros", "shape", shape_string(shape),
                  "dimensions must be >= 0");
    }
    if (__builtin_mul_overflow(n, d, &n)) {
      throw Error(ErrorKind::kOverflow, "io::Array::zeros", "shape", shape_string(shape),
                  "the element count overflows int64");
    }
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<int64_t>(dtype_size(dtype)), &bytes)) {
    throw Error(ErrorKind::kOverflow, "io::Array::zeros", "shape", shape_string(shape),
                "the byte size overflows int64");
  }
  Array a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.bytes.assign(static_cast<std::size_t>(bytes), 0);
  return a;
}

NpyHeader parse_npy_header(const unsigned char* data, std::size_t size, const std::string& name) {
  if (size < 6 || std::memcmp(data, kMagic, 6) != 0) {
    fail(name, "not a .npy file (bad magic: the file must start with \\x93NUMPY)");
  }
  if (size < 10) fail(name, "truncated: the file ends inside the preamble");
  const unsigned major = data[6], minor = data[7];
  std::size_t header_len, pre;
  if (major == 1) {
    header_len = static_cast<std::size_t>(data[8]) | (static_cast<std::size_t>(data[9]) << 8);
    pre = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail(name, "truncated: the file ends inside the preamble");
    header_len = static_cast<std::size_t>(data[8]) | (static_cast<std::size_t>(data[9]) << 8) |
                 (static_cast<std::size_t>(data[10]) << 16) |
                 (static_cast<std::size_t>(data[11]) << 24);
    pre = 12;
  } else {
    fail(name, "unsupported format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (supported: 1.0, 2.0, 3.0)");
  }
  if (minor != 0) {
    fail(name, "unsupported format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (supported: 1.0, 2.0, 3.0)");
  }
  if (header_len > size - pre) {
    fail(name, "truncated: the header claims " + std::to_string(header_len) + " bytes but only " +
                   std::to_string(size - pre) + " follow the preamble");
  }
  const std::string_view header(reinterpret_cast<const char*>(data + pre), header_len);
  for (unsigned char c : header) {
    if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t' && c != '\r' && c != '\0')) {
      fail(name, "malformed header: non-ASCII or control byte");
    }
  }
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser(header, name).parse(descr, fortran, shape);
  const DescrInfo info = parse_descr(descr, name);
  const std::size_t elem = dtype_size(info.dtype);

  // Element count, and the product of the nonzero dims too: it bounds every stride the array's
  // views compute, so it must fit even when a zero dim makes the array empty.
  int64_t numel = 1, span = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(span, d == 0 ? 1 : d, &span) ||
        __builtin_mul_overflow(numel, d, &numel)) {
      fail(name, "shape " + shape_string(shape) + " overflows: its element count exceeds int64");
    }
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(elem), &nbytes)) {
    fail(name, "shape " + shape_string(shape) + " overflows: its byte size exceeds int64");
  }
  const std::size_t have = size - pre - header_len;
  if (static_cast<uint64_t>(nbytes) > have) {
    fail(name, "truncated data: shape " + shape_string(shape) + " of " + descr + " needs " +
                   std::to_string(nbytes) + " bytes but the file holds " + std::to_string(have));
  }
  if (static_cast<uint64_t>(nbytes) < have) {
    fail(name, "the header does not match the data: shape " + shape_string(shape) + " of " + descr +
                   " needs " + std::to_string(nbytes) + " bytes but the file holds " +
                   std::to_string(have));
  }

  NpyHeader h;
  h.dtype = info.dtype;
  h.shape = std::move(shape);
  h.fortran = fortran && h.shape.size() > 1;
  h.swap = info.swap;
  h.data_offset = pre + header_len;
  h.numel = numel;
  h.nbytes = nbytes;
  return h;
}

Array parse_npy(const unsigned char* data, std::size_t size, const std::string& name) {
  NpyHeader h = parse_npy_header(data, size, name);
  const std::size_t elem = dtype_size(h.dtype);
  const int64_t numel = h.numel, nbytes = h.nbytes;
  const unsigned char* src = data + h.data_offset;
  Array a;
  a.dtype = h.dtype;
  a.shape = std::move(h.shape);
  a.bytes.resize(static_cast<std::size_t>(nbytes));
  if (h.fortran) {
    fortran_to_c(src, a.bytes.data(), a.shape, numel, elem);
  } else if (nbytes > 0) {
    std::memcpy(a.bytes.data(), src, static_cast<std::size_t>(nbytes));
  }
  if (h.swap) byteswap_elements(a.bytes.data(), static_cast<std::size_t>(numel), elem);
  return a;
}

Array read_npy(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path, "read_npy");
  return parse_npy(bytes.data(), bytes.size(), path == "-" ? "<stdin>" : path);
}

std::string npy_image(const Array& array) {
  const char* descr = nullptr;
  switch (array.dtype) {
    case DType::f16: descr = "<f2"; break;
    case DType::f32: descr = "<f4"; break;
    case DType::f64: descr = "<f8"; break;
    case DType::i32: descr = "<i4"; break;
    case DType::i64: descr = "<i8"; break;
    case DType::bf16:
      throw Error(ErrorKind::kUnsupported, "write_npy", "array.dtype", "bf16",
                  ".npy has no bfloat16 dtype; convert to f32 first");
  }
  const int64_t n = array.numel();
  if (static_cast<uint64_t>(n) * dtype_size(array.dtype) != array.bytes.size()) {
    throw Error(ErrorKind::kShapeMismatch, "write_npy", "array.bytes",
                std::to_string(array.bytes.size()) + " bytes",
                "must hold exactly the shape " + shape_string(array.shape) + " of " +
                    dtype_name(array.dtype));
  }
  std::string dict = std::string("{'descr': '") + descr +
                     "', 'fortran_order': False, 'shape': " + shape_string(array.shape) + ", }";
  // Pad so the data starts at a multiple of 64 bytes (as numpy does); header ends with '\n'.
  std::size_t pre = 10;
  std::size_t total = pre + dict.size() + 1;
  if (total + (64 - total % 64) % 64 - pre > 65535) {
    pre = 12;
    total = pre + dict.size() + 1;
  }
  const std::size_t padded = total + (64 - total % 64) % 64;
  const std::size_t header_len = padded - pre;
  std::string out(reinterpret_cast<const char*>(kMagic), 6);
  out += static_cast<char>(pre == 10 ? 1 : 2);
  out += '\0';
  for (std::size_t b = 0; b < pre - 8; ++b)
    out += static_cast<char>((header_len >> (8 * b)) & 0xFF);
  out += dict;
  out.append(header_len - dict.size() - 1, ' ');
  out += '\n';
  const std::size_t data_at = out.size();
  out.append(reinterpret_cast<const char*>(array.bytes.data()), array.bytes.size());
  if constexpr (std::endian::native == std::endian::big) {
    byteswap_elements(reinterpret_cast<unsigned char*>(out.data() + data_at),
                      static_cast<std::size_t>(n), dtype_size(array.dtype));
  }
  return out;
}

void write_npy(const std::string& path, const Array& array) {
  write_file_atomic(path, npy_image(array), "write_npy");
}

}  // namespace softmax::io
