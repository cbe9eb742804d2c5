// tools/softmax_cli/common.hpp: input, output and formatting helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "softmax/tensor.hpp"
#include "src/io/npy.hpp"

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

// Output format chosen from a file name: ".npy" or ".csv"/".txt"; "-" is CSV on stdout.
// Throws UsageError for any other extension (checked before any work is done).
enum class FileFormat { npy, csv };
FileFormat output_format(const std::string& path);
// Writes `a` to `path` in the format output_format(path) names (atomically for files).
void save_array(const std::string& path, const io::Array& a);

// How results go to stdout when there is no -o: "auto" is a readable table when stdout is a
// terminal and CSV otherwise.
enum class Display { automatic, table, csv };
Display parse_display(const std::string& name);  // "auto" | "table" | "csv"; UsageError else
bool use_table(Display d);

// Prints `a` to stdout as CSV (every value, shortest round-trip form) or as an aligned table
// (3 decimals; large arrays summarised with "..." like NumPy). `label` heads the table.
void print_array(const io::Array& a, bool table, const std::string& label = "");

// A readable number: 3 decimals for magnitudes in [1e-3, 1e6) and 0, else 3 significant
// digits in exponent form; "nan", "inf", "-inf".
std::string readable(double v);

// Copy of `a` converted to dtype `to` (floating dtypes; f64 -> f16 rounds once, to nearest even).
io::Array convert(const io::Array& a, DType to);

// Parses "f16" | "f32" | "f64" (the CLI's --dtype values). Throws UsageError otherwise.
DType parse_float_dtype(const std::string& name);

}  // namespace softmax::cli
