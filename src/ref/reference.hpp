// src/ref/reference.hpp: scalar long double reference of the softmax family, the test oracle.
// Inputs are the exact values of the (f32/f64/bf16/f16) inputs; all arithmetic is in long
// double (64-bit mantissa on x86), so for f32/f64 outputs the reference is exact to well
// under 1e-3 ulp of the output type. Semantics match include/softmax/ops.hpp.
#pragma once

#include <cstdint>
#include <vector>

namespace softmax::ref {

using LD = long double;

// softmax(x / T) of one row (NaN row rules as the library).
std::vector<LD> softmax(const std::vector<LD>& x, LD temperature = 1);
std::vector<LD> log_softmax(const std::vector<LD>& x, LD temperature = 1);
LD logsumexp(const std::vector<LD>& x, LD temperature = 1);
// First index of the maximum; first NaN if any.
int64_t argmax(const std::vector<LD>& x);
LD sigmoid(LD x);
// The backward passes of one row: dx = y (dy - sum(dy y)) / T for y = softmax(x / T), and
// dx = (dy - exp(y) sum(dy)) / T for y = log_softmax(x / T) (softmax/backward.hpp).
std::vector<LD> softmax_backward(const std::vector<LD>& y, const std::vector<LD>& dy,
                                 LD temperature = 1);
std::vector<LD> log_softmax_backward(const std::vector<LD>& y, const std::vector<LD>& dy,
                                     LD temperature = 1);

// Distance between a computed value and the exact one, in units in the last place of the
// type of `got` (float or double) at the exact value; subnormals use the subnormal spacing.
// Returns 0 when both are the same NaN/inf, +inf on a NaN/inf mismatch.
double ulp_error(float got, LD exact);
double ulp_error(double got, LD exact);
// The same for a binary format with `digits` significand bits (including the implicit one) and
// smallest normal 2^(min_exponent - 1) (numeric_limits conventions): bf16 is (8, -125), f16 is
// (11, -13), f32 (24, -125), f64 (53, -1021). `got` must be a value of that format.
double ulp_error(LD got, LD exact, int digits, int min_exponent);

}  // namespace softmax::ref
