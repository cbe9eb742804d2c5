// tools/softmax_cli/common.cc: input, output and formatting helpers shared by the subcommands.
#include "softmax_cli/common.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <climits>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "softmax/error.hpp"
#include "softmax_cli/command.hpp"
#include "softmax/convert.hpp"
#include "src/io/file_util.hpp"

namespace softmax::cli {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string extension(const std::string& path) {
  const auto slash = path.rfind('/');
  const auto dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return lower(path.substr(dot));
}

bool looks_numeric_option(const std::string& s, std::string& replacement) {
  if (s.size() < 2 || s[0] != '-' || s[1] == '-') return false;
  const std::string l = lower(s);
  if (l == "-inf" || l == "-infinity") {
    replacement = "-1e999";
    return true;
  }
  if (l == "-nan") {
    replacement = "nan";
    return true;
  }
  if (s[1] == '.' && s.size() > 2 && std::isdigit(static_cast<unsigned char>(s[2]))) {
    double v;
    if (io::parse_double(s, v)) {
      replacement = "-0" + s.substr(1);
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> normalize_numeric_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i], r;
    out.push_back(looks_numeric_option(s, r) ? r : s);
  }
  return out;
}

io::Array numbers_to_array(const std::vector<std::string>& tokens) {
  std::vector<double> v(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (!io::parse_double(tokens[i], v[i])) {
      throw UsageError("'" + tokens[i] + "' is not a number (nor an operation or an option; " +
                       "see softmax --help)");
    }
  }
  io::Array a = io::Array::zeros(DType::f64, {static_cast<int64_t>(v.size())});
  if (!v.empty()) std::memcpy(a.bytes.data(), v.data(), v.size() * sizeof(double));
  return a;
}

io::Array load_array(const std::string& path) {
  const std::string ext = extension(path);
  if (path != "-" && ext == ".npy") return io::read_npy(path);
  if (path != "-" && (ext == ".csv" || ext == ".txt")) return io::read_text(path);
  const std::vector<unsigned char> bytes = io::read_file_bytes(path, "read_input");
  const std::string name = path == "-" ? "<stdin>" : path;
  if (bytes.size() >= 6 && bytes[0] == 0x93 && std::memcmp(bytes.data() + 1, "NUMPY", 5) == 0) {
    return io::parse_npy(bytes.data(), bytes.size(), name);
  }
  return io::parse_text(std::string(bytes.begin(), bytes.end()), name);
}

FileFormat output_format(const std::string& path) {
  if (path == "-") return FileFormat::csv;
  const std::string ext = extension(path);
  if (ext == ".npy") return FileFormat::npy;
  if (ext == ".csv" || ext == ".txt") return FileFormat::csv;
  throw UsageError("output file '" + path +
                   "' must end in .npy, .csv or .txt (or be - or -.npy for stdout)");
}

bool is_stdout(const std::string& path) {
  return path == "-" || path == "-.npy" || path == "-.csv" || path == "-.txt";
}

namespace {

// Where a path leads: the resolved name (symlinks followed; for a file that does not exist
// yet, its folder resolved plus its name) and, when it exists, its device and inode.
struct FileIdentity {
  std::string resolved;
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
};

FileIdentity identify(const std::string& path) {
  FileIdentity id;
  id.resolved = path;
  if (char* r = ::realpath(path.c_str(), nullptr)) {
    id.resolved = r;
    std::free(r);
  } else {
    const auto slash = path.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
    if (char* d = ::realpath(dir.c_str(), nullptr)) {
      id.resolved = std::string(d) + "/" + path.substr(slash == std::string::npos ? 0 : slash + 1);
      std::free(d);
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    id.exists = true;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
  }
  return id;
}

}  // namespace

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  std::vector<std::pair<const std::pair<std::string, std::string>*, FileIdentity>> seen;
  for (const auto& o : outputs) {
    if (o.second.empty()) continue;
    const bool out = is_stdout(o.second);
    const FileIdentity id = out ? FileIdentity{"<stdout>"} : identify(o.second);
    for (const auto& [prev, pid] : seen) {
      const bool same = pid.resolved == id.resolved ||
                        (pid.exists && id.exists && pid.dev == id.dev && pid.ino == id.ino);
      if (!same) continue;
      throw UsageError(prev->first + " '" + prev->second + "' and " + o.first + " '" + o.second +
                       "' name the same " + (out ? "stdout" : "file") +
                       ": give each output its own file");
    }
    seen.emplace_back(&o, id);
  }
}

Display parse_display(const std::string& name) {
  if (name == "auto") return Display::automatic;
  if (name == "table") return Display::table;
  if (name == "csv") return Display::csv;
  if (name == "npy") return Display::npy;
  throw UsageError("--format '" + name + "': must be auto, table, csv or npy");
}

bool use_table(Display d) {
  if (d == Display::automatic) return ::isatty(STDOUT_FILENO) == 1;
  return d == Display::table;
}

int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == 0) continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    if (*end == 0 && r >= 0 && r <= INT_MAX) return static_cast<int>(r);
  }
  return -1;
}

namespace {

// Binary output on a terminal would only garble it. Under an MPI launcher stdout is its pty,
// which passes bytes unchanged (Open MPI turns off its output translation).
void refuse_binary_on_terminal() {
  if (::isatty(STDOUT_FILENO) == 1 && launcher_rank() < 0) {
    throw UsageError(
        "refusing to write binary .npy to a terminal: redirect stdout (> file.npy) "
        "or use -o FILE.npy");
  }
}

std::string table_image(const io::Array& a, const std::string& label);

}  // namespace

std::string stdout_image(const io::Array& a, Display d, const std::string& label) {
  if (d == Display::npy) {
    refuse_binary_on_terminal();
    return io::npy_image(a);
  }
  return use_table(d) ? table_image(a, label) : io::csv_image(a);
}

void Outputs::add_array(const std::string& path, const io::Array& a) {
  if (output_format(path) == FileFormat::npy) {
    if (is_stdout(path)) refuse_binary_on_terminal();
    add_text(path, io::npy_image(a));
  } else {
    add_text(path, io::csv_image(a));
  }
}

void Outputs::add_text(const std::string& path, std::string text) {
  files_.push_back({is_stdout(path) ? "-" : path, std::move(text)});
}

void Outputs::commit() const { io::write_files_atomic(files_, "write_output"); }

bool stdin_has_input() {
  struct stat st;
  if (::fstat(STDIN_FILENO, &st) != 0) return false;
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) return true;
  if (!S_ISREG(st.st_mode)) return false;
  const off_t pos = ::lseek(STDIN_FILENO, 0, SEEK_CUR);
  return st.st_size > (pos > 0 ? pos : 0);
}

template <class T>
CLI::Validator strict_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string_view t = text;
        if (!t.empty() && t.front() == '+') t.remove_prefix(1);
        T v{};
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        const std::string range = "[" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                                  std::to_string(std::numeric_limits<T>::max()) + "]";
        if (t.empty() || r.ptr != t.data() + t.size() ||
            (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
          return "'" + text + "' is not an integer (decimal digits, e.g. 3 or -1)";
        }
        if (r.ec == std::errc::result_out_of_range) {
          return "'" + text + "' is out of range: must be an integer in " + range;
        }
        text = std::to_string(v);  // "010" -> "10": CLI11 would read it as octal
        return "";
      },
      "");  // no extra text in --help: the option already reads "INT"
}
template CLI::Validator strict_integer<int>();
template CLI::Validator strict_integer<int64_t>();

std::string readable(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const double a = std::fabs(v);
  if (v == 0 || (a >= 1e-3 && a < 1e6)) {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2e", v);
  }
  return buf;
}

namespace {

std::string table_image(const io::Array& a, const std::string& label) {
  constexpr int64_t kEdgeRows = 10, kEdgeCols = 6;
  const bool is_int = a.dtype == DType::i32 || a.dtype == DType::i64;
  const int64_t n = a.numel();
  const int64_t cols = a.shape.empty() ? 1 : a.shape.back();
  const int64_t rows = cols == 0 ? 0 : n / cols;
  const io::Array f64 = is_int ? io::Array() : convert(a, DType::f64);
  auto cell = [&](int64_t i) {
    if (is_int) return io::format_value(a, i);
    double v;
    std::memcpy(&v, f64.bytes.data() + i * 8, 8);
    return readable(v);
  };
  auto shown = [](int64_t count, int64_t edge) {
    std::vector<int64_t> idx;  // -1 marks "..."
    if (count <= 2 * edge + 1) {
      for (int64_t i = 0; i < count; ++i) idx.push_back(i);
    } else {
      for (int64_t i = 0; i < edge; ++i) idx.push_back(i);
      idx.push_back(-1);
      for (int64_t i = count - edge; i < count; ++i) idx.push_back(i);
    }
    return idx;
  };
  const std::vector<int64_t> rsel = shown(rows, kEdgeRows), csel = shown(cols, kEdgeCols);
  // Row labels: the index over the leading dims, e.g. "[3, 1]".
  auto row_label = [&](int64_t r) {
    if (a.shape.size() < 2) return std::string();
    std::vector<int64_t> idx(a.shape.size() - 1);
    for (std::size_t j = idx.size(); j-- > 0;) {
      idx[j] = r % a.shape[j];
      r /= a.shape[j];
    }
    std::string s = "[";
    for (std::size_t j = 0; j < idx.size(); ++j) s += (j ? ", " : "") + std::to_string(idx[j]);
    return s + "]";
  };
  std::size_t width = 1, label_width = 0;
  for (int64_t r : rsel) {
    if (r < 0) continue;
    label_width = std::max(label_width, row_label(r).size());
    for (int64_t c : csel) {
      if (c >= 0) width = std::max(width, cell(r * cols + c).size());
    }
  }
  std::string out;
  if (!label.empty()) out += label + "\n";
  if (rows == 0) out += "(empty)\n";
  for (int64_t r : rsel) {
    if (r < 0) {
      out += std::string(label_width, ' ') + (label_width ? " " : "") + "...\n";
      continue;
    }
    std::string line;
    if (label_width) {
      const std::string l = row_label(r);
      line += l + std::string(label_width - l.size(), ' ') + " ";
    }
    bool first = true;
    for (int64_t c : csel) {
      const std::string s = c < 0 ? "..." : cell(r * cols + c);
      line += (first ? "" : "  ") + std::string(width - std::min(width, s.size()), ' ') + s;
      first = false;
    }
    out += line + "\n";
  }
  if (rows > static_cast<int64_t>(rsel.size()) || cols > static_cast<int64_t>(csel.size())) {
    std::string shape;
    for (std::size_t j = 0; j < a.shape.size(); ++j)
      shape += (j ? " x " : "") + std::to_string(a.shape[j]);
    out +=
        "(" + shape + " values, shown in part; use -o FILE or pipe the output for all of them)\n";
  }
  return out;
}

}  // namespace

io::Array convert(const io::Array& a, DType to) {
  if (a.dtype == to) return a;
  io::Array out = io::Array::zeros(to, a.shape);
  softmax::convert(a.view(), out.view());  // one rounding from the exact value
  return out;
}

DType parse_float_dtype(const std::string& name) {
  if (name == "f16" || name == "float16") return DType::f16;
  if (name == "f32" || name == "float32") return DType::f32;
  if (name == "f64" || name == "float64") return DType::f64;
  throw UsageError("--dtype '" + name + "': must be f16, f32 or f64");
}

}  // namespace softmax::cli
