// tools/softmax_cli/cmd_sample_params.cc: per-row parameters of `softmax sample`
// (sample_params.hpp).
#include <charconv>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "softmax_cli/command.hpp"
#include "softmax_cli/sample_params.hpp"
#include "src/io/npy.hpp"

namespace softmax::cli {
namespace {

// "a,b,c" -> {"a", "b", "c"} (an empty text is one empty item).
std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t end = text.find(',', pos);
    items.push_back(text.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    if (end == std::string::npos) return items;
    pos = end + 1;
  }
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// "--flag 'TEXT': value 2 ('x') must be ..." for a list, "--flag 'TEXT': must be ..." for one
// value; an integer past the type's range: "... 'x' is out of range: must be ...".
[[noreturn]] void bad_value(const std::string& flag, const std::string& text, std::size_t index,
                            std::size_t count, const std::string& item, const std::string& rule,
                            bool out_of_range = false) {
  std::string where;
  if (count > 1) where = "value " + std::to_string(index + 1) + " (" + quoted(item) + ") ";
  if (out_of_range)
    where += (count > 1 ? "is out of range: " : quoted(item) + " is out of range: ");
  throw UsageError(flag + " " + quoted(text) + ": " + where + "must be " + rule +
                   " (one value for every row, or a comma-separated list of one per row)");
}

std::vector<double> parse_doubles(const std::string& flag, const std::string& text,
                                  const std::function<bool(double)>& ok, const std::string& rule) {
  const std::vector<std::string> items = split_commas(text);
  std::vector<double> v(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!io::parse_double(items[i], v[i]) || !ok(v[i])) {
      bad_value(flag, text, i, items.size(), items[i], rule);
    }
  }
  return v;
}

template <class T>
std::vector<T> parse_integers(const std::string& flag, const std::string& text,
                              const std::function<bool(T)>& ok, const std::string& rule) {
  const std::vector<std::string> items = split_commas(text);
  std::vector<T> v(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& s = items[i];
    const char* end = s.data() + s.size();
    const auto r = std::from_chars(s.data(), end, v[i]);
    if (!s.empty() && r.ec == std::errc::result_out_of_range && r.ptr == end) {
      bad_value(flag, text, i, items.size(), s, rule, true);
    }
    if (s.empty() || r.ec != std::errc() || r.ptr != end || !ok(v[i])) {
      bad_value(flag, text, i, items.size(), s, rule);
    }
  }
  return v;
}

const char* const kU64Rule = "an integer in [0, 18446744073709551615]";
const char* const kTopKRule = "an integer in [-1, 9223372036854775807] (0 or -1 = off)";

std::vector<uint64_t> parse_u64s(const std::string& flag, const std::string& text) {
  return parse_integers<uint64_t>(
      flag, text, [](uint64_t) { return true; }, kU64Rule);
}

template <class T>
void check_count(const std::string& flag, const std::string& text, const std::vector<T>& v,
                 int64_t rows, bool one_allowed = true) {
  const auto n = static_cast<int64_t>(v.size());
  if (n == rows || (one_allowed && n == 1)) return;
  throw UsageError(flag + " " + quoted(text) + ": " + std::to_string(n) +
                   (n == 1 ? " value" : " values") + " for " + std::to_string(rows) +
                   " rows (give " + (one_allowed ? "one value for every row, or " : "") +
                   "one per row)");
}

template <class T>
PerRow<T> per_row(const std::vector<T>& v) {
  return v.size() == 1 ? PerRow<T>(v[0]) : PerRow<T>(v);
}

}  // namespace

bool RowParams::processors_set() const {
  auto any = [](const auto& v, auto off) {
    for (auto x : v) {
      if (x != off) return true;
    }
    return false;
  };
  return any(repetition_penalty, 1.0) || any(presence_penalty, 0.0) ||
         any(frequency_penalty, 0.0) || any(min_tokens, int64_t{0}) ||
         any(num_generated, int64_t{-1});
}

RowParams parse_row_params(const RowArgs& a) {
  RowParams r;
  auto finite = [](double x) { return std::isfinite(x); };
  r.temperature = parse_doubles(
      "--temperature", a.temperature, [](double x) { return x >= 0 && std::isfinite(x); },
      "a finite number >= 0 (0 = greedy)");
  r.top_k = parse_integers<int64_t>(
      "--top-k", a.top_k, [](int64_t k) { return k >= -1; }, kTopKRule);
  r.top_p = parse_doubles(
      "--top-p", a.top_p, [](double p) { return p > 0 && p <= 1; }, "a number in (0, 1]");
  r.min_p = parse_doubles(
      "--min-p", a.min_p, [](double m) { return m >= 0 && m <= 1; }, "a number in [0, 1]");
  r.seed = parse_u64s("--seed", a.seed);
  r.offset = parse_u64s("--offset", a.offset);
  if (!a.streams.empty()) r.streams = parse_u64s("--streams", a.streams);
  r.repetition_penalty = parse_doubles(
      "--repetition-penalty", a.repetition_penalty,
      [](double x) { return x > 0 && std::isfinite(x); }, "a finite number > 0 (1 = off)");
  r.presence_penalty =
      parse_doubles("--presence-penalty", a.presence_penalty, finite, "a finite number");
  r.frequency_penalty =
      parse_doubles("--frequency-penalty", a.frequency_penalty, finite, "a finite number");
  r.min_tokens = parse_integers<int64_t>(
      "--min-tokens", a.min_tokens, [](int64_t n) { return n >= 0; }, "an integer >= 0");
  r.num_generated = parse_integers<int64_t>(
      "--num-generated", a.num_generated, [](int64_t n) { return n >= -1; },
      "an integer >= -1 (-1 = the row's --prev-tokens count)");
  return r;
}

void check_row_counts(const RowParams& r, const RowArgs& a, int64_t rows) {
  check_count("--temperature", a.temperature, r.temperature, rows);
  check_count("--top-k", a.top_k, r.top_k, rows);
  check_count("--top-p", a.top_p, r.top_p, rows);
  check_count("--min-p", a.min_p, r.min_p, rows);
  check_count("--seed", a.seed, r.seed, rows);
  check_count("--offset", a.offset, r.offset, rows);
  if (!r.streams.empty()) check_count("--streams", a.streams, r.streams, rows, false);
  check_count("--repetition-penalty", a.repetition_penalty, r.repetition_penalty, rows);
  check_count("--presence-penalty", a.presence_penalty, r.presence_penalty, rows);
  check_count("--frequency-penalty", a.frequency_penalty, r.frequency_penalty, rows);
  check_count("--min-tokens", a.min_tokens, r.min_tokens, rows);
  check_count("--num-generated", a.num_generated, r.num_generated, rows);
}

void apply_row_params(const RowParams& r, SamplingParams& params, LogitProcessors& lp,
                      uint64_t& seed, uint64_t& offset) {
  params.temperature = per_row(r.temperature);
  params.top_k = per_row(r.top_k);
  params.top_p = per_row(r.top_p);
  params.min_p = per_row(r.min_p);
  seed = r.seed.size() == 1 ? r.seed[0] : 0;
  offset = r.offset.size() == 1 ? r.offset[0] : 0;
  if (r.seed.size() > 1) params.seeds = r.seed;
  if (r.offset.size() > 1) params.offsets = r.offset;
  params.streams = r.streams;
  lp.repetition_penalty = per_row(r.repetition_penalty);
  lp.presence_penalty = per_row(r.presence_penalty);
  lp.frequency_penalty = per_row(r.frequency_penalty);
  lp.min_tokens = per_row(r.min_tokens);
  lp.num_generated = per_row(r.num_generated);
}

}  // namespace softmax::cli
