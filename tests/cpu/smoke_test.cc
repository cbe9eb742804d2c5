#include <gtest/gtest.h>
#include <cstdio>
#include "softmax/softmax.hpp"
TEST(Smoke, Basic) {
  std::vector<float> x{2.0f, 1.0f, 0.1f}, y(3);
  softmax::softmax(x, y);
  printf("%.9g %.9g %.9g target=%s\n", y[0], y[1], y[2], softmax::current_target().c_str());
  for (auto& t : softmax::available_targets()) printf("  %s\n", t.c_str());
}
