// src/io/text.cc: numeric text (CSV / whitespace separated) reader and CSV writer.
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "softmax/error.hpp"
#include "src/base/half.hpp"
#include "src/io/file_util.hpp"
#include "src/io/npy.hpp"

namespace softmax::io {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string quoted(std::string_view s) {
  constexpr std::size_t kShow = 40;
  std::string out = "'";
  for (char c : s.substr(0, kShow)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > kShow) out += "...";
  return out + "'";
}

}  // namespace

bool parse_double(std::string_view token, double& out) {
  if (token.empty()) return false;
  std::string_view t = token;
  if (t.front() == '+') {
    t.remove_prefix(1);
    if (t.empty() || t.front() == '-' || t.front() == '+') return false;
  }
  double v = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v, std::chars_format::general);
  if (r.ptr != t.data() + t.size()) return false;
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow gives +-inf and underflow +-0 or a subnormal, as strtod (and Python's float()).
    const std::string copy(t);
    errno = 0;
    char* end = nullptr;
    v = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size()) return false;
  } else if (r.ec != std::errc()) {
    return false;
  }
  out = v;
  return true;
}

Array parse_text(const std::string& text, const std::string& name) {
  std::vector<double> values;
  int64_t cols = -1, rows = 0;
  std::size_t pos = 0, line_no = 0;
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kIO, "read_text",
                "'" + name + "': line " + std::to_string(line_no) + ": " + what);
  };
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    std::size_t i = 0;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size() || line[i] == '#') continue;  // blank line or comment
    int64_t count = 0;
    for (;;) {
      // One field: up to a comma, whitespace or the end of the line.
      std::size_t j = i;
      while (j < line.size() && line[j] != ',' && !is_space(line[j])) ++j;
      const std::string_view field = line.substr(i, j - i);
      if (field.empty()) fail("empty field (two commas in a row, or a leading comma)");
      double v;
      if (!parse_double(field, v)) fail(quoted(field) + " is not a number");
      values.push_back(v);
      ++count;
      // Separator: whitespace, at most one comma, whitespace.
      while (j < line.size() && is_space(line[j])) ++j;
      if (j < line.size() && line[j] == ',') {
        ++j;
        while (j < line.size() && is_space(line[j])) ++j;
        if (j == line.size()) fail("trailing comma");
      }
      if (j == line.size()) break;
      i = j;
    }
    if (cols < 0) {
      cols = count;
    } else if (count != cols) {
      fail("has " + std::to_string(count) + " numbers but earlier lines have " +
           std::to_string(cols) + " (every row must have the same length)");
    }
    ++rows;
  }
  if (rows == 0) {
    throw Error(ErrorKind::kIO, "read_text", "'" + name + "': holds no numbers");
  }
  Array a;
  a.dtype = DType::f64;
  a.shape = {rows, cols};
  a.bytes.resize(values.size() * sizeof(double));
  std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
  return a;
}

Array read_text(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path, "read_text");
  return parse_text(std::string(bytes.begin(), bytes.end()), path == "-" ? "<stdin>" : path);
}

std::string format_value(const Array& array, int64_t i) {
  char buf[64];
  std::to_chars_result r{};
  const unsigned char* p = array.bytes.data();
  switch (array.dtype) {
    case DType::f64: {
      double v;
      std::memcpy(&v, p + i * 8, 8);
      if (std::isnan(v)) return "nan";
      r = std::to_chars(buf, buf + sizeof buf, v);
      break;
    }
    case DType::f32:
    case DType::f16:
    case DType::bf16: {
      const float v = static_cast<float>(softmax::detail::load_as_double(p, array.dtype, i));
      if (std::isnan(v)) return "nan";
      r = std::to_chars(buf, buf + sizeof buf, v);
      break;
    }
    case DType::i32: {
      int32_t v;
      std::memcpy(&v, p + i * 4, 4);
      r = std::to_chars(buf, buf + sizeof buf, v);
      break;
    }
    case DType::i64: {
      int64_t v;
      std::memcpy(&v, p + i * 8, 8);
      r = std::to_chars(buf, buf + sizeof buf, v);
      break;
    }
  }
  return std::string(buf, r.ptr);
}

std::string csv_image(const Array& array) {
  const int64_t n = array.numel();
  const int64_t cols = array.shape.empty() ? 1 : array.shape.back();
  std::string out;
  if (cols == 0) return out;  // rows of length 0 hold no numbers to write
  for (int64_t i = 0; i < n; ++i) {
    out += format_value(array, i);
    out += (i + 1) % cols == 0 ? '\n' : ',';
  }
  return out;
}

void write_csv(const std::string& path, const Array& array) {
  write_file_atomic(path, csv_image(array), "write_csv");
}

}  // namespace softmax::io
