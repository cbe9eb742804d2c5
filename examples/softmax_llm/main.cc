// examples/softmax_llm/main.cc: `softmax-llm`, generation from a llama2.c checkpoint (e.g. the
// stories260K model) with this library's attention, softmax and sampler.
//
//   softmax-llm --model PATH --steps N --temperature T [--top-p P] [--seed S]
//
// Starts from BOS (token 1) and prints the generated token ids separated by spaces (no tokenizer:
// ids only). T = 0 is greedy (softmax::argmax); T > 0 draws with softmax::sample (temperature,
// then top-p; Philox stream seeded by S, offset = the step), so a run is reproducible. Any error
// (a bad flag, a checkpoint whose header does not match its size) is one line on stderr, exit 2.
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <cstring>
#include <span>
#include <string>

#include <CLI/CLI.hpp>

#include "examples/softmax_llm/llama2.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "softmax/sampling.hpp"

namespace {

// One line "softmax-llm: error: <message>" on stderr; exit status 2.
int fail(std::string m) {
  for (const char* prefix : {"softmax::softmax-llm: ", "softmax::"}) {
    if (m.rfind(prefix, 0) == 0) m = m.substr(std::strlen(prefix));
  }
  std::fprintf(stderr, "softmax-llm: error: %s\n", m.c_str());
  return 2;
}

int run(int argc, char** argv) {
  CLI::App app{
      "Generate token ids from a llama2.c checkpoint with the softmax library's "
      "attention, softmax and sampler"};
  std::string model_path;
  int64_t steps = 256;
  double temperature = 0.0, top_p = 1.0;
  uint64_t seed = 0;
  app.add_option("--model", model_path, "llama2.c checkpoint (e.g. stories260K.bin)")->required();
  app.add_option("--steps", steps, "Tokens to generate (at most seq_len)")->default_str("256");
  app.add_option("--temperature", temperature, "0 = greedy; > 0 samples softmax(logits / T)")
      ->default_str("0");
  app.add_option("--top-p", top_p, "Nucleus sampling: keep the smallest set reaching P, in (0, 1]")
      ->default_str("1");
  app.add_option("--seed", seed, "Sampler seed")->default_str("0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help: its text must arrive (a full stdout is an error)
      const int rc = app.exit(e);
      std::cout.flush();
      if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
        return fail("cannot write to stdout: write error");
      }
      return rc;
    }
    return fail(e.what());
  }
  try {
    if (steps < 0) {
      throw softmax::Error(softmax::ErrorKind::kInvalidArgument, "softmax-llm", "steps",
                           std::to_string(steps), "must be >= 0");
    }
    const softmax_llm::Model model = softmax_llm::Model::load(model_path);
    if (steps > model.c.seq_len) {
      throw softmax::Error(
          softmax::ErrorKind::kInvalidArgument, "softmax-llm", "steps", std::to_string(steps),
          "must be <= the model's seq_len (" + std::to_string(model.c.seq_len) + ")");
    }
    softmax::SamplingParams params;
    params.temperature = temperature;
    params.top_p = top_p;
    params.threads = 1;
    // Validate the sampling parameters before generating anything.
    {
      std::vector<float> probe(static_cast<size_t>(model.c.vocab_size), 0.0f);
      softmax::sample(std::span<const float>(probe), params, seed, 0);
    }
    softmax_llm::Transformer tf(model, steps);  // a KV cache for the steps run, not seq_len
    int64_t token = 1;                          // BOS
    std::string line;
    for (int64_t pos = 0; pos < steps; ++pos) {
      const std::vector<float>& logits = tf.forward(token, pos);
      token = temperature == 0.0 ? softmax::argmax(std::span<const float>(logits))
                                 : softmax::sample(std::span<const float>(logits), params, seed,
                                                   static_cast<uint64_t>(pos));
      line += (pos ? " " : "") + std::to_string(token);
    }
    std::printf("%s\n", line.c_str());
    if (std::fflush(stdout) != 0)
      return fail(std::string("cannot write to stdout: ") + std::strerror(errno));
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc while setting up the parser
    return fail(e.what());
  } catch (...) {
    return fail("unknown error");
  }
}
