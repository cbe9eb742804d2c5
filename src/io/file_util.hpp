// src/io/file_util.hpp: whole-file reads and atomic writes for the I/O layer.
#pragma once

#include <string>
#include <vector>

namespace softmax::io::detail {

// Reads all bytes of `path` ("-" = stdin). Throws softmax::Error (kIO) naming `op` and the
// file when it cannot be opened or read (missing, a directory, a read error).
std::vector<unsigned char> read_file_bytes(const std::string& path, const char* op);

// Writes `content` to `path` atomically: a temporary file in the same folder, flushed, then
// renamed over `path`, so readers never see a partial file and a failure leaves nothing behind.
// "-" writes to stdout instead. Throws softmax::Error (kIO) naming `op` and the file.
void write_file_atomic(const std::string& path, const std::string& content, const char* op);

}  // namespace softmax::io::detail
