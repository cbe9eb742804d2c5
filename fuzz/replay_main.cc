// fuzz/replay_main.cc: runs a libFuzzer target without libFuzzer, with any compiler:
//   replay PATH...                       every file under the folders (or the files) once
//                                        (the corpus replay CTest)
//   replay --mutate SECONDS SEED RUNS PATH...
//                                        after the replay, RUNS mutated copies of those inputs
//                                        (random byte flips, inserts, erases, splices of two
//                                        inputs, fresh random inputs; up to 4096 bytes),
//                                        reproducibly from SEED, stopping early after SECONDS:
//                                        the bounded fuzz run of the sanitizer CI stage
//                                        (scripts/sanitize.sh), which needs no
//                                        coverage-instrumented build. With a fixed SEED and
//                                        RUNS every run tries the same inputs (or a prefix).
// A failing input aborts the process (the target's checks, a sanitizer); in --mutate mode the
// input is first written to ./replay-crash-<SEED> so it can be replayed and added to the
// corpus. Exit status 0 when every input was handled, 1 when no input was found, 2 on usage.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<uint8_t>;
constexpr std::size_t kMaxLen = 4096;

// Writes the input about to run, so a crash leaves it on disk.
void save(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes mutate(const std::vector<Bytes>& pool, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % (n == 0 ? 1 : n)); };
  Bytes b;
  if (pool.empty() || rng() % 16 == 0) {  // a fresh random input
    b.resize(pick(kMaxLen + 1));
    for (auto& c : b) c = static_cast<uint8_t>(rng());
    return b;
  }
  b = pool[pick(pool.size())];
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!b.empty()) b[pick(b.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // a random byte
        if (!b.empty()) b[pick(b.size())] = static_cast<uint8_t>(rng());
        break;
      case 2:  // an interesting byte (0, 0xff, 0x7f, 0x80, 1)
        if (!b.empty()) {
          static const uint8_t kSpecial[] = {0, 0xff, 0x7f, 0x80, 1};
          b[pick(b.size())] = kSpecial[rng() % 5];
        }
        break;
      case 3:  // insert random bytes
        if (b.size() < kMaxLen) {
          const std::size_t at = pick(b.size() + 1), n = 1 + pick(16);
          Bytes ins(n);
          for (auto& c : ins) c = static_cast<uint8_t>(rng());
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
        }
        break;
      case 4:  // erase a run
        if (!b.empty()) {
          const std::size_t at = pick(b.size()),
                            n = 1 + pick(std::min<std::size_t>(16, b.size() - at));
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                  b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + n)));
        }
        break;
      default: {  // splice: this input's head, another's tail
        const Bytes& o = pool[pick(pool.size())];
        const std::size_t cut = pick(b.size() + 1), from = pick(o.size() + 1);
        b.resize(cut);
        b.insert(b.end(), o.begin() + static_cast<std::ptrdiff_t>(from), o.end());
        break;
      }
    }
  }
  if (b.size() > kMaxLen) b.resize(kMaxLen);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  double seconds = -1;
  uint64_t seed = 0, max_runs = 0;
  int first = 1;
  if (argc > 1 && std::strcmp(argv[1], "--mutate") == 0) {
    char* end = nullptr;
    if (argc < 5 || (seconds = std::strtod(argv[2], &end), *end != 0) || seconds < 0) {
      std::fprintf(stderr, "usage: replay --mutate SECONDS SEED RUNS PATH...\n");
      return 2;
    }
    seed = std::strtoull(argv[3], &end, 10);
    if (*end != 0) {
      std::fprintf(stderr, "replay: SEED must be a decimal integer\n");
      return 2;
    }
    max_runs = std::strtoull(argv[4], &end, 10);
    if (*end != 0) {
      std::fprintf(stderr, "replay: RUNS must be a decimal integer\n");
      return 2;
    }
    first = 5;
  }
  std::vector<fs::path> files;
  for (int i = first; i < argc; ++i) {
    const fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());  // the same pool order on every file system
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 1;
  }
  std::vector<Bytes> pool;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    pool.push_back(std::move(bytes));
  }
  std::printf("replay: %zu inputs OK\n", files.size());
  if (seconds < 0) return 0;
  std::mt19937_64 rng(seed);
  const std::string crash = "replay-crash-" + std::to_string(seed);
  const auto start = std::chrono::steady_clock::now();
  uint64_t runs = 0;
  while (runs < max_runs &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
             seconds) {
    const Bytes b = mutate(pool, rng);
    save(crash, b);  // left behind only if this input fails
    LLVMFuzzerTestOneInput(b.data(), b.size());
    ++runs;
  }
  fs::remove(crash);
  std::printf("replay: %llu mutated inputs OK in %.0f s (seed %llu)\n",
              static_cast<unsigned long long>(runs),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              static_cast<unsigned long long>(seed));
  return 0;
}
