// tests/cpu/view_rules_test.cc: the view rules every op shares (src/core/checks.cc), swept
// over every op and every argument:
//   - an output whose own elements share memory (a zero stride, or strides that make rows
//     interleave, as torch.as_strided / numpy.lib.stride_tricks can build) is rejected with
//     kOverlap naming the output;
//   - an input or output whose data is not element-aligned (address not a multiple of the
//     element size) is rejected with kInvalidArgument naming it;
// and in both cases nothing is written to any output.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "softmax/softmax.hpp"
#include "src/base/half.hpp"

namespace {

using softmax::ConstTensorView;
using softmax::DType;
using softmax::ErrorKind;
using softmax::TensorView;

constexpr unsigned char kSentinel = 0xA5;

// One buffer per argument, with room for a shifted (misaligned) view; filled with valid values
// for inputs and with a sentinel for outputs.
class Arena {
 public:
  // A view of `shape` (C order) in a fresh buffer of `dtype`.
  TensorView make(const std::string& name, DType dtype, std::vector<int64_t> shape, bool output,
                  double value = 0.25) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto& buf = bufs_[name];
    buf.assign(static_cast<std::size_t>(n + 4) * 8 / sizeof(double) + 8, 0.0);
    auto* base = reinterpret_cast<unsigned char*>(buf.data());
    if (output) {
      std::memset(base, kSentinel, buf.size() * sizeof(double));
      outputs_.push_back(name);
    } else {
      for (int64_t i = 0; i < n; ++i) softmax::detail::store_from_double(base, dtype, i, value);
    }
    return TensorView(base, dtype, std::move(shape));
  }
  // True when no output buffer changed.
  bool outputs_untouched() const {
    for (const auto& name : outputs_) {
      const auto& buf = bufs_.at(name);
      const auto* b = reinterpret_cast<const unsigned char*>(buf.data());
      for (std::size_t i = 0; i < buf.size() * sizeof(double); ++i) {
        if (b[i] != kSentinel) return false;
      }
    }
    return true;
  }

 private:
  std::map<std::string, std::vector<double>> bufs_;
  std::vector<std::string> outputs_;
};

// How one argument is broken.
enum class Defect { kNone, kZeroStride, kInterleaved, kMisaligned };

struct Breaker {
  std::string arg;
  Defect defect = Defect::kNone;
  // Whether the op built `arg`, and whether the defect applies to its shape (interleaving
  // needs two dims of size > 1).
  std::shared_ptr<bool> seen = std::make_shared<bool>(false);
  std::shared_ptr<bool> applied = std::make_shared<bool>(false);

  // `v` as the op receives it: unchanged unless it is the broken argument.
  TensorView operator()(const std::string& name, TensorView v) const {
    if (name != arg) return v;
    *seen = true;
    const TensorView before = v;
    switch (defect) {
      case Defect::kNone: break;
      case Defect::kZeroStride:
        for (std::size_t i = v.shape.size(); i-- > 0;) {
          if (v.shape[i] > 1) {
            v.strides[i] = 0;
            break;
          }
        }
        break;
      case Defect::kInterleaved:  // the outer dims > 1 step by 1: rows overlap their neighbours
        for (std::size_t i = 0; i + 1 < v.shape.size(); ++i) {
          if (v.shape[i] > 1) v.strides[i] = 1;
        }
        break;
      case Defect::kMisaligned: v.data = static_cast<char*>(v.data) + 1; break;
    }
    *applied = v.data != before.data || v.strides != before.strides;
    return v;
  }
};

// An op: its argument names (inputs, outputs) and a call that builds every argument through
// the breaker.
struct OpCase {
  std::string op;
  std::vector<std::string> inputs, outputs;
  std::function<void(Arena&, const Breaker&)> call;
};

std::vector<OpCase> all_ops() {
  std::vector<OpCase> ops;
  const int64_t R = 4, C = 8;
  auto axis_op = [&](const char* name, bool reduces, bool index,
                     void (*fn)(ConstTensorView, TensorView, const softmax::SoftmaxOptions&,
                                const softmax::Context&)) {
    ops.push_back({name, {"x"}, {index ? "indices" : "y"}, [=](Arena& a, const Breaker& b) {
                     const TensorView x = b("x", a.make("x", DType::f32, {R, C}, false));
                     const std::vector<int64_t> ys =
                         reduces ? std::vector<int64_t>{R} : std::vector<int64_t>{R, C};
                     const char* yn = index ? "indices" : "y";
                     const TensorView y =
                         b(yn, a.make(yn, index ? DType::i64 : DType::f32, ys, true));
                     fn(x, y, {}, {});
                   }});
  };
  axis_op("softmax", false, false, &softmax::softmax);
  axis_op("log_softmax", false, false, &softmax::log_softmax);
  axis_op("logsumexp", true, false, &softmax::logsumexp);
  axis_op("argmax", true, true, &softmax::argmax);
  axis_op("hardmax", false, false, &softmax::hardmax);
  ops.push_back({"sigmoid", {"x"}, {"y"}, [=](Arena& a, const Breaker& b) {
                   softmax::sigmoid(b("x", a.make("x", DType::f32, {R, C}, false)),
                                    b("y", a.make("y", DType::f32, {R, C}, true)));
                 }});
  ops.push_back({"softmax_backward", {"y", "dy"}, {"dx"}, [=](Arena& a, const Breaker& b) {
                   softmax::softmax_backward(b("y", a.make("y", DType::f32, {R, C}, false, 0.125)),
                                             b("dy", a.make("dy", DType::f32, {R, C}, false)),
                                             b("dx", a.make("dx", DType::f32, {R, C}, true)));
                 }});
  for (bool logits : {true, false}) {
    for (bool soft : {false, true}) {
      std::vector<std::string> outs{"loss", "grad"};
      if (logits) outs.insert(outs.end(), {"lse", "log_probs"});
      ops.push_back({std::string(logits ? "cross_entropy" : "nll_loss") + (soft ? " soft" : ""),
                     {logits ? "logits" : "log_probs", "targets", "weight", "grad_output"},
                     outs,
                     [=](Arena& a, const Breaker& b) {
                       const char* xn = logits ? "logits" : "log_probs";
                       const TensorView x = b(xn, a.make(xn, DType::f32, {R, C}, false, -2.0));
                       const TensorView t =
                           b("targets", soft ? a.make("targets", DType::f32, {R, C}, false, 0.125)
                                             : a.make("targets", DType::i64, {R}, false, 3));
                       softmax::CrossEntropyOptions o;
                       o.reduction = softmax::Reduction::kNone;
                       o.weight = b("weight", a.make("weight", DType::f64, {C}, false, 1.0));
                       o.grad_output =
                           b("grad_output", a.make("grad_output", DType::f32, {R}, false, 1.0));
                       softmax::CrossEntropyOutputs out;
                       out.loss = b("loss", a.make("loss", DType::f32, {R}, true));
                       out.grad = b("grad", a.make("grad", DType::f32, {R, C}, true));
                       if (logits) {
                         out.lse = b("lse", a.make("lse", DType::f32, {R}, true));
                         out.log_probs =
                             b("log_probs_out", a.make("log_probs_out", DType::f32, {R, C}, true));
                       }
                       if (logits)
                         softmax::cross_entropy(x, t, out, o);
                       else
                         softmax::nll_loss(x, t, out, o);
                     }});
      if (logits) ops.back().outputs.back() = "log_probs_out";
    }
  }
  ops.push_back({"linear_cross_entropy",
                 {"hidden", "weight", "targets"},
                 {"loss", "grad_hidden", "grad_weight", "lse"},
                 [=](Arena& a, const Breaker& b) {
                   softmax::linear_cross_entropy(
                       b("hidden", a.make("hidden", DType::f32, {R, C}, false)),
                       b("weight", a.make("weight", DType::f32, {16, C}, false)),
                       b("targets", a.make("targets", DType::i64, {R}, false, 5)),
                       {b("loss", a.make("loss", DType::f32, {R}, true)),
                        b("grad_hidden", a.make("grad_hidden", DType::f32, {R, C}, true)),
                        b("grad_weight", a.make("grad_weight", DType::f32, {16, C}, true)),
                        b("lse", a.make("lse", DType::f32, {R}, true))},
                       [] {
                         softmax::CrossEntropyOptions o;
                         o.reduction = softmax::Reduction::kNone;
                         return o;
                       }());
                 }});
  for (bool probs : {false, true}) {
    ops.push_back({probs ? "sample_from_probs" : "sample",
                   {probs ? "probs" : "logits"},
                   {"tokens"},
                   [=](Arena& a, const Breaker& b) {
                     const char* xn = probs ? "probs" : "logits";
                     const TensorView x = b(xn, a.make(xn, DType::f32, {R, C}, false));
                     const TensorView t = b("tokens", a.make("tokens", DType::i64, {R, 3}, true));
                     if (probs)
                       softmax::sample_from_probs(x, t, {}, 1);
                     else
                       softmax::sample(x, t, {}, 1);
                   }});
  }
  ops.push_back(
      {"top_logprobs", {"logits"}, {}, [=](Arena& a, const Breaker& b) {
         softmax::top_logprobs(b("logits", a.make("logits", DType::f32, {R, C}, false)), 3);
       }});
  ops.push_back(
      {"masked_softmax", {"scores", "bias", "mask"}, {"y", "lse"}, [=](Arena& a, const Breaker& b) {
         softmax::MaskOptions o;
         o.bias = b("bias", a.make("bias", DType::f32, {R, C}, false));
         o.mask = b("mask", a.make("mask", DType::i32, {R, C}, false, 1));
         softmax::masked_softmax(b("scores", a.make("scores", DType::f32, {2, R, C}, false)),
                                 b("y", a.make("y", DType::f32, {2, R, C}, true)),
                                 b("lse", a.make("lse", DType::f32, {2, R}, true)), o);
       }});
  ops.push_back({"masked_softmax_backward",
                 {"dy", "y", "scores"},
                 {"dscores"},
                 [=](Arena& a, const Breaker& b) {
                   softmax::MaskOptions o;
                   o.softcap = 5.0;  // needs the scores
                   softmax::masked_softmax_backward(
                       b("dy", a.make("dy", DType::f32, {R, C}, false)),
                       b("y", a.make("y", DType::f32, {R, C}, false, 0.125)),
                       b("scores", a.make("scores", DType::f32, {R, C}, false)),
                       b("dscores", a.make("dscores", DType::f32, {R, C}, true)), o);
                 }});
  ops.push_back({"attention",
                 {"q", "k", "v", "bias", "mask"},
                 {"out", "lse"},
                 [=](Arena& a, const Breaker& b) {
                   softmax::MaskOptions o;
                   o.bias = b("bias", a.make("bias", DType::f32, {R, R}, false));
                   o.mask = b("mask", a.make("mask", DType::i64, {R, R}, false, 1));
                   softmax::attention(b("q", a.make("q", DType::f32, {1, 2, R, C}, false)),
                                      b("k", a.make("k", DType::f32, {1, 2, R, C}, false)),
                                      b("v", a.make("v", DType::f32, {1, 2, R, C}, false)),
                                      b("out", a.make("out", DType::f32, {1, 2, R, C}, true)),
                                      b("lse", a.make("lse", DType::f32, {1, 2, R}, true)), o);
                 }});
  return ops;
}

// The argument name as the library's messages spell it.
std::string message_name(const std::string& arg) {
  return arg == "log_probs_out" ? "log_probs" : arg;
}

void expect_rejected(const OpCase& op, const std::string& arg, Defect defect, ErrorKind kind,
                     const char* what) {
  Arena arena;
  const Breaker breaker{arg, defect};
  try {
    op.call(arena, breaker);
    EXPECT_TRUE(*breaker.seen) << op.op << " has no argument '" << arg << "'";
    if (!*breaker.applied) return;  // the defect does not apply to this shape
    ADD_FAILURE() << op.op << ": " << what << " '" << arg << "' accepted";
  } catch (const softmax::Error& e) {
    EXPECT_EQ(e.kind(), kind) << op.op << " " << arg << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("argument '" + message_name(arg) + "'"), std::string::npos)
        << op.op << " " << arg << ": " << e.what();
  }
  EXPECT_TRUE(arena.outputs_untouched()) << op.op << ": " << what << " '" << arg << "'";
}

TEST(ViewRules, EveryOpRunsOnValidViews) {
  for (const OpCase& op : all_ops()) {
    Arena arena;
    EXPECT_NO_THROW(op.call(arena, Breaker{})) << op.op;
  }
}

TEST(ViewRules, OutputsWhoseElementsShareMemoryAreRejected) {
  for (const OpCase& op : all_ops()) {
    for (const std::string& arg : op.outputs) {
      expect_rejected(op, arg, Defect::kZeroStride, ErrorKind::kOverlap, "zero-stride output");
      expect_rejected(op, arg, Defect::kInterleaved, ErrorKind::kOverlap, "interleaved output");
    }
  }
}

TEST(ViewRules, MisalignedViewsAreRejected) {
  for (const OpCase& op : all_ops()) {
    for (const auto* args : {&op.inputs, &op.outputs}) {
      for (const std::string& arg : *args) {
        expect_rejected(op, arg, Defect::kMisaligned, ErrorKind::kInvalidArgument, "misaligned");
      }
    }
  }
}

// The rule itself, on hand-made layouts of one output (softmax's y).
TEST(ViewRules, DistinctElementRule) {
  std::vector<float> x(64, 0.5f), y(256, -7.0f);
  const ConstTensorView xv(x.data(), {4, 4});
  auto accepts = [&](std::vector<int64_t> strides) {  // y's middle: negative strides stay inside
    try {
      softmax::softmax(xv, TensorView(y.data() + 128, DType::f32, {4, 4}, std::move(strides)));
      return true;
    } catch (const softmax::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kOverlap) << e.what();
      return false;
    }
  };
  EXPECT_TRUE(accepts({4, 1}));   // C order
  EXPECT_TRUE(accepts({1, 4}));   // transposed
  EXPECT_TRUE(accepts({-4, 1}));  // negative strides
  EXPECT_TRUE(accepts({16, 2}));  // gaps
  EXPECT_TRUE(accepts({4, -1}));
  EXPECT_TRUE(accepts({1, -4}));
  EXPECT_FALSE(accepts({0, 1}));  // every row the same memory
  EXPECT_FALSE(accepts({3, 1}));  // row r's last element is row r + 1's first
  EXPECT_FALSE(accepts({2, 1}));
  EXPECT_FALSE(accepts({1, 1}));
  EXPECT_FALSE(accepts({4, 0}));
  EXPECT_FALSE(accepts({-3, 1}));
}

}  // namespace
