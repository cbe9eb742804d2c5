// tools/softmax_cli/sample_params.hpp: the per-row parameters of `softmax sample`.
//
// Every such flag takes one value (every row) or a comma-separated list of exactly B values,
// one per row of the (B, V) logits: `--temperature 0.7,1.0,0.5`. --streams takes one value per
// row only (a stream id names a row; B = 1 takes one value). Seeds, offsets and streams are
// full 64-bit decimal integers (no truncation). Values are parsed and range-checked before any
// file is read (UsageError naming the flag); the count is checked against B once the logits
// are loaded, still before anything is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "softmax/logit_processors.hpp"
#include "softmax/sampling.hpp"

namespace softmax::cli {

// The flags' text as typed.
struct RowArgs {
  std::string temperature = "1", top_k = "0", top_p = "1", min_p = "0";
  std::string seed = "0", offset = "0", streams;
  std::string repetition_penalty = "1", presence_penalty = "0", frequency_penalty = "0";
  std::string min_tokens = "0", num_generated = "-1";
};

// Parsed values: one entry (every row) or B entries (streams: empty or B entries).
struct RowParams {
  std::vector<double> temperature, top_p, min_p, repetition_penalty, presence_penalty,
      frequency_penalty;
  std::vector<int64_t> top_k, min_tokens, num_generated;
  std::vector<uint64_t> seed, offset, streams;

  // Whether any of the sampling parameters (temperature, filters) differs per row.
  bool temperature_per_row() const { return temperature.size() > 1; }
  // Whether any processor parameter is set away from its "off" value.
  bool processors_set() const;
};

// Syntax and range of every value; throws UsageError naming the flag.
RowParams parse_row_params(const RowArgs& a);
// Every list holds 1 or `rows` values (--streams: `rows`); throws UsageError naming the flag.
void check_row_counts(const RowParams& r, const RowArgs& a, int64_t rows);
// Points params (temperature, filters, seeds, offsets, streams) and lp (penalties, min_tokens,
// num_generated) at r's values (r must outlive them); returns the call's seed and offset
// (the single values, or 0 when per row).
void apply_row_params(const RowParams& r, SamplingParams& params, LogitProcessors& lp,
                      uint64_t& seed, uint64_t& offset);

}  // namespace softmax::cli
