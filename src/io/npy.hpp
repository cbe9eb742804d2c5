// src/io/npy.hpp: reading and writing NumPy .npy files and numeric text (CSV) for the tools.
// (Owned by the CLI layer; the library proper never touches files.)
//
// Contract:
// - read_npy accepts format versions 1.0, 2.0 and 3.0, little- or big-endian (byte-swapped on
//   read), dtypes <f2 <f4 <f8 <i4 <i8 (and |b1 as i32? no: rejected), C or Fortran order
//   (Fortran is converted to C order). Anything malformed, truncated, lying about its size,
//   overflowing, or of another dtype throws softmax::Error(ErrorKind::kIO) whose message names
//   the file and the problem. It never reads past the file's end and never allocates more than
//   the file can hold.
// - write_npy writes version 1.0 little-endian C order; it writes to a temporary file in the
//   same folder and renames it, so a failure never leaves a half-written file.
// - read_text parses one row per line, numbers separated by commas and/or whitespace; "-" reads
//   stdin; all rows must have the same length; "nan", "inf", "-inf" accepted. Result is f64.
#pragma once

#include <cstdint>
#include <string>
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
void write_npy(const std::string& path, const Array& array);

Array read_text(const std::string& path);   // "-" = stdin
void write_csv(const std::string& path, const Array& array);  // rows = last axis; "-" = stdout

// Parses a whole .npy image held in memory (used by read_npy and by the fuzz target).
Array parse_npy(const unsigned char* data, std::size_t size, const std::string& name);
// Parses numeric text held in memory (used by read_text and by the fuzz target).
Array parse_text(const std::string& text, const std::string& name);

}  // namespace softmax::io
