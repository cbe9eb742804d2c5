// fuzz/text_fuzz.cc: libFuzzer target for the numeric text reader (softmax::io::parse_text).
// Any input must either parse or throw softmax::Error of kind kIO. A parsed array must be
// rectangular, and writing it as CSV and parsing that again must give the same values (NaN as
// NaN, every other value bit for bit).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "softmax/error.hpp"
#include "src/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using softmax::io::Array;
  Array a;
  try {
    a = softmax::io::parse_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
  } catch (const softmax::Error& e) {
    if (e.kind() != softmax::ErrorKind::kIO) {
      std::fprintf(stderr, "non-kIO error: %s\n", e.what());
      std::abort();
    }
    return 0;
  }
  if (a.dtype != softmax::DType::f64 || a.shape.size() != 2 || a.shape[0] < 1 || a.shape[1] < 1 ||
      a.bytes.size() != static_cast<std::size_t>(a.numel()) * sizeof(double)) {
    std::fprintf(stderr, "inconsistent array\n");
    std::abort();
  }
  const Array b = softmax::io::parse_text(softmax::io::csv_image(a), "roundtrip.csv");
  if (b.shape != a.shape) {
    std::fprintf(stderr, "round trip changed the shape\n");
    std::abort();
  }
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x, y;
    std::memcpy(&x, a.bytes.data() + 8 * i, 8);
    std::memcpy(&y, b.bytes.data() + 8 * i, 8);
    const bool same = std::isnan(x) ? std::isnan(y) : std::memcmp(&x, &y, 8) == 0;
    if (!same) {
      std::fprintf(stderr, "round trip changed element %lld: %.17g -> %.17g\n",
                   static_cast<long long>(i), x, y);
      std::abort();
    }
  }
  return 0;
}
