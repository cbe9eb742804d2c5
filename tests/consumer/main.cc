// Consumer check: the installed / add_subdirectory library computes the seed example.
#include <softmax/softmax.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const std::vector<float> x{2.0f, 1.0f, 0.1f};
  std::vector<float> y(3);
  softmax::softmax(x, y);
  // exp(2)/(e^2+e+e^0.1) etc., computed independently in double.
  const double s = std::exp(2.0) + std::exp(1.0) + std::exp(0.1);
  const double want[3] = {std::exp(2.0) / s, std::exp(1.0) / s, std::exp(0.1) / s};
  for (int i = 0; i < 3; ++i) {
    if (std::fabs(y[i] - want[i]) > 1e-6) {
      std::printf("consumer: y[%d] = %.9g, want %.9g\n", i, y[i], want[i]);
      return 1;
    }
  }
  try {
    softmax::SoftmaxOptions o;
    o.temperature = -1;
    softmax::softmax(softmax::ConstTensorView(x.data(), {3}), softmax::TensorView(y.data(), {3}),
                     o);
    std::printf("consumer: T = -1 was accepted\n");
    return 1;
  } catch (const softmax::Error& e) {
    std::printf("consumer ok: %.3f %.3f %.3f; error path: %s\n", y[0], y[1], y[2], e.what());
  }
  return 0;
}
