// tools/softmax_cli/cmd_backward.cc: gradients of softmax and log-softmax.
//
//   softmax softmax-backward -i y.npy --grad dy.npy -o dx.npy [--axis N] [-t T] [--threads N]
//   softmax log-softmax-backward -i y.npy --grad dy.npy -o dx.npy [--axis N] [-t T]
//
// y is the forward output, dy the gradient with respect to it; both of one shape. They are
// brought to one dtype (f64 if either is f64, else f32 if either is f32, else f16) and dx is
// written in that dtype. Numbers come from softmax::softmax_backward / log_softmax_backward.
#include <string>

#include "softmax/backward.hpp"
#include "softmax/error.hpp"
#include "softmax_cli/command.hpp"
#include "softmax_cli/common.hpp"

namespace softmax::cli {
namespace {

struct BackwardArgs {
  std::string input, grad, output, format = "auto";
  int64_t axis = -1;
  double temperature = 1.0;
  int threads = 0;
};

DType common_dtype(DType a, DType b) {
  if (a == DType::f64 || b == DType::f64) return DType::f64;
  if (a == DType::f32 || b == DType::f32) return DType::f32;
  return a;
}

void run_backward(bool log_mode, const BackwardArgs& a) {
  const std::string name = log_mode ? "log-softmax-backward" : "softmax-backward";
  if (a.input.empty()) throw UsageError(name + ": -i/--input (y) is required");
  if (a.grad.empty()) throw UsageError(name + ": --grad (dy) is required");
  if (a.threads < 0) throw UsageError("--threads must be >= 0");
  if (!a.output.empty()) output_format(a.output);
  const Display display = parse_display(a.format);
  io::Array y = load_array(a.input);
  io::Array dy = load_array(a.grad);
  for (const io::Array* p : {&y, &dy}) {
    if (p->dtype != DType::f16 && p->dtype != DType::f32 && p->dtype != DType::f64) {
      throw Error(ErrorKind::kDTypeMismatch, name, p == &y ? "input" : "grad", dtype_name(p->dtype),
                  "must be float16, float32 or float64");
    }
  }
  const DType t = common_dtype(y.dtype, dy.dtype);
  if (y.dtype != t) y = convert(y, t);
  if (dy.dtype != t) dy = convert(dy, t);
  io::Array dx = io::Array::zeros(t, y.shape);
  SoftmaxOptions o;
  o.axis = a.axis;
  o.temperature = a.temperature;
  o.threads = a.threads;
  if (log_mode)
    log_softmax_backward(y.view(), dy.view(), dx.view(), o);
  else
    softmax_backward(y.view(), dy.view(), dx.view(), o);
  Outputs out;
  if (!a.output.empty())
    out.add_array(a.output, dx);
  else
    out.add_text("-", stdout_image(dx, display, "dx"));
  out.commit();
}

void setup(CLI::App& app) {
  static BackwardArgs sm, lsm;
  const char* help[2] = {"Gradient of softmax: dx = y * (dy - sum(dy * y)) / T",
                         "Gradient of log-softmax: dx = (dy - exp(y) * sum(dy)) / T"};
  BackwardArgs* args[2] = {&sm, &lsm};
  for (int k = 0; k < 2; ++k) {
    CLI::App* sub = app.add_subcommand(k ? "log-softmax-backward" : "softmax-backward", help[k]);
    BackwardArgs& a = *args[k];
    sub->add_option("-i,--input", a.input, "y: the forward output (.npy/.csv)");
    sub->add_option("--grad", a.grad, "dy: the gradient with respect to y, y's shape");
    sub->add_option("-o,--output", a.output, "dx output (.npy/.csv); default: stdout");
    sub->add_option("--axis", a.axis, "Axis of the rows; negative counts from the end")
        ->transform(strict_integer<int64_t>())
        ->default_str("-1");
    sub->add_option("-t,--temperature", a.temperature, "The forward temperature T > 0")
        ->default_str("1");
    sub->add_option("--threads", a.threads, "Worker threads (0 = all cores)")
        ->transform(strict_integer<int>())
        ->default_str("0");
    sub->add_option("--format", a.format, "Output on stdout: auto|table|csv|npy")
        ->default_str("auto");
    const bool log_mode = k == 1;
    sub->callback([log_mode, &a] { run_backward(log_mode, a); });
  }
}

const bool registered = register_command(setup);

}  // namespace
}  // namespace softmax::cli
