// fuzz/npy_fuzz.cc: libFuzzer target for the .npy reader (softmax::io::parse_npy).
// Any input must either parse or throw softmax::Error of kind kIO; anything else (a crash, a
// sanitizer report, another exception, an allocation beyond the input's size) is a bug. A parsed
// array must be self-consistent and survive a write/read round trip bit for bit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "softmax/error.hpp"
#include "src/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using softmax::io::Array;
  Array a;
  try {
    a = softmax::io::parse_npy(data, size, "fuzz.npy");
  } catch (const softmax::Error& e) {
    if (e.kind() != softmax::ErrorKind::kIO) {
      std::fprintf(stderr, "non-kIO error: %s\n", e.what());
      std::abort();
    }
    return 0;
  }
  // The array holds exactly numel * dtype_size bytes, never more than the input.
  if (a.bytes.size() != static_cast<std::size_t>(a.numel()) * softmax::dtype_size(a.dtype) ||
      a.bytes.size() > size) {
    std::fprintf(stderr, "inconsistent array: %zu bytes\n", a.bytes.size());
    std::abort();
  }
  const std::string image = softmax::io::npy_image(a);
  const Array b = softmax::io::parse_npy(reinterpret_cast<const unsigned char*>(image.data()),
                                         image.size(), "roundtrip.npy");
  if (b.dtype != a.dtype || b.shape != a.shape || b.bytes != a.bytes) {
    std::fprintf(stderr, "round trip changed the array\n");
    std::abort();
  }
  return 0;
}
