// tools/softmax_cli/common.hpp: input, output and formatting helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "softmax/tensor.hpp"
#include "src/io/file_util.hpp"
#include "src/io/npy.hpp"

#include <CLI/CLI.hpp>

namespace softmax::cli {

// argv[1..] in order, with numbers CLI11 would mistake for options made unambiguous:
// "-inf"/"-infinity" (any case) -> "-1e999" (parses to -inf), "-nan" -> "nan",
// "-.5" -> "-0.5". Every other argument is passed through unchanged.
std::vector<std::string> normalize_numeric_args(int argc, char** argv);

// Numbers given on the command line -> one f64 row of shape (n). Throws UsageError naming the
// first token that is not a number.
io::Array numbers_to_array(const std::vector<std::string>& tokens);

// Reads an array: ".npy" -> read_npy; ".csv"/".txt" -> read_text; "-" (stdin) and any other
// name: a .npy when the bytes start with the .npy magic, numeric text otherwise.
// Throws softmax::Error (kIO) for a missing, unreadable or malformed file.
io::Array load_array(const std::string& path);

// Output format chosen from a file name: ".npy" or ".csv"/".txt". "-" is CSV on stdout and
// "-.npy" / "-.csv" / "-.txt" are stdout in that format (a file of such a name: "./-.npy").
// Throws UsageError for any other extension (checked before any work is done).
enum class FileFormat { npy, csv };
FileFormat output_format(const std::string& path);
bool is_stdout(const std::string& path);  // "-", "-.npy", "-.csv", "-.txt"

// Rejects (UsageError, one line naming both flags) two outputs that are one file: the same
// name spelled differently ("a.npy", "./a.npy", "dir/../a.npy"), a symlink to the other, or a
// hard link (same st_dev and st_ino), or two stdout outputs. Each entry: {flag, path}; empty
// paths are skipped. Call it before reading any input.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

// This process's rank when an MPI launcher started it (OMPI_COMM_WORLD_RANK, PMIX_RANK or
// PMI_RANK in the environment), else -1. Under a launcher, stdout is the launcher's forwarding
// stream (Open MPI gives each rank a pty even when mpirun's stdout is a file), so it says
// nothing about the user's terminal.
int launcher_rank();

// How results go to stdout when there is no -o: "auto" is a readable table when stdout is a
// terminal and CSV otherwise; "npy" is a binary .npy (refused when stdout is a terminal and no
// MPI launcher started the process: see launcher_rank).
enum class Display { automatic, table, csv, npy };
Display parse_display(
    const std::string& name);  // "auto" | "table" | "csv" | "npy"; UsageError else
bool use_table(Display d);

// The bytes of `a` on stdout as `d` says: an aligned table (3 decimals; large arrays summarised
// with "..." like NumPy; `label` heads it), CSV (every value, shortest round-trip form) or .npy.
std::string stdout_image(const io::Array& a, Display d, const std::string& label = "");

// The outputs of one command, written together by commit(): every file and stdout, or none
// (io::write_files_atomic: file contents go to temporary files first, then stdout is
// written, then the files are renamed into place; a failure anywhere before the renames leaves
// no file created or changed).
class Outputs {
 public:
  // `a` in the format output_format(path) names (stdout for is_stdout(path)).
  void add_array(const std::string& path, const io::Array& a);
  void add_text(const std::string& path, std::string text);  // is_stdout(path): stdout
  void commit() const;

 private:
  std::vector<io::PendingWrite> files_;
};

// Whether stdin holds input the user piped or redirected: a FIFO, a socket, or a regular file
// with bytes left to read. A terminal, /dev/null (a character device) or an empty file is not.
bool stdin_has_input();

// A CLI11 transform for an integer flag of type T: a decimal integer (optional sign, leading
// zeros read as decimal, not octal) within T's range; anything else (1e20, 0x10, a value past
// the type's range) is a usage error quoting what was typed, never a saturated or wrapped value.
template <class T>
CLI::Validator strict_integer();

// A readable number: 3 decimals for magnitudes in [1e-3, 1e6) and 0, else 3 significant
// digits in exponent form; "nan", "inf", "-inf".
std::string readable(double v);

// Copy of `a` converted to dtype `to` (floating dtypes; f64 -> f16 rounds once, to nearest even).
io::Array convert(const io::Array& a, DType to);

// Parses "f16" | "f32" | "f64" (the CLI's --dtype values). Throws UsageError otherwise.
DType parse_float_dtype(const std::string& name);

}  // namespace softmax::cli
