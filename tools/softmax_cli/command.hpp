// tools/softmax_cli/command.hpp: how a CLI subcommand plugs into the `softmax` tool.
//
// Each subcommand lives in its own file tools/softmax_cli/cmd_<name>.cc (compiled straight into
// the executable, so static registration is kept) and registers itself:
//
//   static const bool registered = softmax::cli::register_command(
//       [](CLI::App& app) {
//         auto* sub = app.add_subcommand("sample", "Draw next tokens from logits");
//         ... add options ...
//         sub->callback([=] { ... });
//       });
//
// Callbacks report bad input by throwing softmax::Error (library or I/O errors) or
// softmax::cli::UsageError; main() prints one line "softmax: error: <message>" to stderr and
// exits with status 2. Outputs are written only after every input has been validated.
#pragma once

#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

namespace softmax::cli {

using Setup = void (*)(CLI::App& app);

// Adds `setup` to the list main() runs on its CLI::App. Returns true (for static init).
bool register_command(Setup setup);

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace softmax::cli
