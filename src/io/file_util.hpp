// src/io/file_util.hpp: whole-file reads and atomic writes for the I/O layer.
#pragma once

#include <string>
#include <vector>

namespace softmax::io {

// Reads all bytes of `path` ("-" = stdin). Throws softmax::Error (kIO) naming `op` and the
// file when it cannot be opened or read (missing, a directory, a read error).
std::vector<unsigned char> read_file_bytes(const std::string& path, const char* op);

// One output of an all-or-nothing write: `path` ("-" = stdout) and the bytes it gets.
struct PendingWrite {
  std::string path;
  std::string content;
};

// Writes every entry or none of them. First each file's bytes go to a temporary file in its
// folder, flushed: an unnamed one (O_TMPFILE) where the file system allows, so even a SIGKILL
// mid-write leaves nothing; else ".NAME.tmp.XXXXXX", registered with temp_registry.hpp so a
// SIGINT/SIGTERM removes it. Then the stdout entries are written, then each unnamed temporary
// is linked as ".NAME.tmp.XXXXXX" (registered), then every temporary file is renamed over its
// path. Any failure before the renames (a folder that does not exist, a
// target that is a directory, a full disk, a write error on stdout) removes every temporary
// file and throws, so no file is created or changed. A rename failing part-way (very rare: the
// temporaries sit beside their targets and directories were refused up front) throws too and
// cannot undo the renames already done. Throws softmax::Error (kIO) naming `op` and the path.
void write_files_atomic(const std::vector<PendingWrite>& files, const char* op);

// write_files_atomic of one entry: readers never see a partial file and a failure leaves
// nothing behind. "-" writes to stdout instead.
void write_file_atomic(const std::string& path, const std::string& content, const char* op);

}  // namespace softmax::io
