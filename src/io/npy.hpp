// src/io/npy.hpp: reading and writing NumPy .npy files and numeric text (CSV) for the tools.
// (Owned by the CLI layer; the library proper never touches files.)
//
// Contract:
// - read_npy accepts format versions 1.0, 2.0 and 3.0, little- or big-endian (byte-swapped on
//   read), dtypes f2 f4 f8 i4 i8 (byte order '<', '>' or '='; anything else, e.g. |b1, <c8,
//   structured or object dtypes, is rejected), C or Fortran order (Fortran is converted to C
//   order). The data must be exactly as long as the header's shape says (no trailing bytes).
//   Anything malformed, truncated, lying about its size, overflowing, or of another dtype throws
//   softmax::Error(ErrorKind::kIO) whose message names the file and the problem. It never reads
//   past the file's end and never allocates more than the file can hold.
// - write_npy writes version 1.0 little-endian C order; it writes to a temporary file in the
//   same folder and renames it, so a failure never leaves a half-written file.
// - read_text parses one row per line, numbers separated by commas and/or whitespace; "-" reads
//   stdin; all rows must have the same length; "nan", "inf", "-inf" accepted; blank lines and
//   lines starting with '#' are skipped. Result is f64 of shape (rows, cols). Empty fields, a
//   trailing comma, anything that is not a number, or no numbers at all throw kIO naming the
//   file and the line.
// - write_csv writes one line per row of the last axis, values separated by ',', each value in
//   the shortest form that reads back to the same bits (std::to_chars); "nan", "inf", "-inf".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "softmax/tensor.hpp"

namespace softmax::io {

// An owning, C-contiguous array.
struct Array {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;  // numel * dtype_size bytes, C order, native endian

  int64_t numel() const;
  ConstTensorView view() const { return ConstTensorView(bytes.data(), dtype, shape); }
  TensorView view() { return TensorView(bytes.data(), dtype, shape); }
  // A zero-filled array of the given dtype and shape (throws kOverflow when too large).
  static Array zeros(DType dtype, std::vector<int64_t> shape);
};

Array read_npy(const std::string& path);

// A validated .npy header: every declared size checked against the file's `size` bytes.
struct NpyHeader {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  bool fortran = false;  // Fortran order (rank > 1)
  bool swap = false;     // big-endian data
  std::size_t data_offset = 0;
  int64_t numel = 0, nbytes = 0;
};
NpyHeader parse_npy_header(const unsigned char* data, std::size_t size, const std::string& name);
void write_npy(const std::string& path, const Array& array);

Array read_text(const std::string& path);                     // "-" = stdin
void write_csv(const std::string& path, const Array& array);  // rows = last axis; "-" = stdout

// Parses a whole .npy image held in memory (used by read_npy and by the fuzz target).
// `name` is the file name used in error messages.
Array parse_npy(const unsigned char* data, std::size_t size, const std::string& name);
// Parses numeric text held in memory (used by read_text and by the fuzz target).
Array parse_text(const std::string& text, const std::string& name);

// The bytes write_npy writes (1.0 header padded to 64 bytes; 2.0 when the header needs it).
// Throws softmax::Error (kUnsupported) for bf16, (kShapeMismatch) when bytes != numel * size.
std::string npy_image(const Array& array);
// The text write_csv writes.
std::string csv_image(const Array& array);
// Element i (flat, C order) in the shortest round-trip decimal form ("nan", "inf", "-inf";
// f16/bf16 values printed as the f32 they convert to exactly).
std::string format_value(const Array& array, int64_t i);
// Parses one number: decimal or exponent form with an optional sign, "inf", "infinity", "nan"
// (any case). Overflow gives +-inf and underflow +-0, as Python's float(). Returns false (and
// leaves `out` alone) when `token` is not entirely one number.
bool parse_double(std::string_view token, double& out);

}  // namespace softmax::io
