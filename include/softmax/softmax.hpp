// softmax/softmax.hpp: umbrella header of the softmax library.
#pragma once

#include "softmax/attention.hpp"
#include "softmax/backward.hpp"
#include "softmax/cross_entropy.hpp"
#include "softmax/dispatch.hpp"
#include "softmax/error.hpp"
#include "softmax/ops.hpp"
#include "softmax/options.hpp"
#include "softmax/sampling.hpp"
#include "softmax/tensor.hpp"
