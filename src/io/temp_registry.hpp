// src/io/temp_registry.hpp: the temporary files an atomic write has created and not yet renamed
// or removed, kept where a signal handler can reach them, so a tool killed by SIGINT, SIGTERM,
// SIGHUP or SIGPIPE leaves no half-written temporary file behind.
//
// The registry is a fixed table of slots (no allocation) read by an async-signal-safe handler:
// it unlinks every live temporary file, restores the signal's default action and re-raises it,
// so the process still dies "killed by signal N". While outputs are being committed (renamed
// into place, begin_commit .. end_commit) a signal is held back and re-raised by end_commit, so
// a command's outputs appear together or not at all.
//
// Handlers are installed only by install_temp_cleanup_handlers() (the CLI's main calls it; a
// library user such as the Python module keeps its own handlers). Signals ignored at startup
// (nohup, background jobs) stay ignored.
#pragma once

#include <string>

namespace softmax::io {

// Stores `path` in a free slot and returns its id, or -1 when every slot is taken or the path
// is too long to store (the caller then refuses to create the file).
int register_temp(const std::string& path);
// Frees a slot (after the file was renamed or unlinked). -1 is ignored.
void unregister_temp(int slot);

void begin_commit();
// Re-raises a signal that arrived since begin_commit (after unlinking what is still live).
void end_commit();

void install_temp_cleanup_handlers();

}  // namespace softmax::io
