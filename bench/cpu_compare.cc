// bench/cpu_compare.cc: softmax, log-softmax and logsumexp, ours against every peer, measured
// fairly: all implementations of one case group take turns round-robin in one process, on the
// same buffers, in the same rounds, with the copy and read baselines measured in those rounds
// too (src/base/timing.hpp: interleave). bench/run_cpu.py runs it twice and writes
// bench/results/cpu.md; docs/benchmarks.md explains the numbers.
//
// A case group is (regime, shape, dtype, threads). Its implementations (impl/op):
//   memcpy/copy    glibc memcpy of the input's bytes (one contiguous range per thread)
//   ntcopy/copy    the same copy with streaming (non-temporal) stores: no read-for-ownership
//   read/sum       the read-only pass: the sum of the input (the floor for logsumexp)
//   ours/softmax, ours/log_softmax, ours/logsumexp   the public API, SoftmaxOptions::threads
//   sol/softmax    the three-pass AVX-512 yardstick (bench/yardsticks.hpp)
//   onednn/softmax, onednn/log_softmax   oneDNN forward_inference primitives, made beforehand
//   xnnpack/softmax   xnn_softmax_nc_f32 (f32 only), a pthreadpool of N threads for t2
//   torch/*, numpy/*  through the embedded Python (bench/python_peers.hpp); NumPy f32, t1 only
// Regimes (the L3 size is measured, bench/cache_probe.hpp; --l3-bytes / SOFTMAX_BENCH_L3_BYTES
// override it):
//   cache  one buffer pair used over and over (it stays in L1/L2)
//   l3     buffer pairs filling up to half the measured L3, walked in turn (skipped when one
//          pair does not fit): resident in L3 with room for what else the machine runs
//   dram   buffer pairs totalling >= max(4 x L3, 256 MiB), walked in turn: every call misses
//
// Output: --json prints JSON lines: first {"context": {...}} (L3 sweep, load averages, nice,
// versions), then one object per case (regime, shape, dtype, threads, impl, op, median_s, min_s,
// max_s, rounds, calls_per_round, bytes, label), then {"end": {...}} (load averages after).
// Without --json a readable table per group. Progress goes to stderr.
//
//   build-bench/bench/cpu_compare [--json] [--filter REGEX] [--rounds N] [--batch-ms MS]
//       [--nice N] [--realtime] [--l3-bytes B] [--no-python] [--quick]
// --filter matches "regime/shape/dtype/tN", e.g. 'cache/.*/f32/t1'. --nice N (default -5)
// raises the priority when allowed (root); 0 leaves it. --realtime runs under SCHED_RR priority
// 1 (root): on a shared machine the other processes then get only what the kernel's real-time
// throttling leaves them (5% by default), so two-thread cases are not left waiting in a barrier
// for a core another process holds.
#include <omp.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache_probe.hpp"
#include "python_peers.hpp"
#include "softmax/softmax.hpp"
#include "src/base/timing.hpp"
#include "yardsticks.hpp"

#if defined(SOFTMAX_BENCH_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if defined(SOFTMAX_BENCH_HAVE_XNNPACK)
#include <pthreadpool.h>
#include <xnnpack.h>
#endif

namespace {

using namespace softmax_bench;
namespace tm = softmax::timing;

constexpr int64_t kMiB = int64_t{1} << 20;

enum class Dt { f32, bf16 };
const char* dt_name(Dt d) { return d == Dt::f32 ? "f32" : "bf16"; }
std::size_t dt_size(Dt d) { return d == Dt::f32 ? 4 : 2; }

struct Shape {
  int64_t rows, n;
  std::string str() const { return std::to_string(rows) + "x" + std::to_string(n); }
  int64_t numel() const { return rows * n; }
};

struct Group {
  std::string regime;
  Shape s;
  Dt dt;
  int threads;
  std::string name() const {
    return regime + "/" + s.str() + "/" + dt_name(dt) + "/t" + std::to_string(threads);
  }
};

// The shapes per regime. cache: per-call overhead (1x512), the thread crossover (16x1024), the
// in-cache cases of the issue (64x1024, 8x50257); l3: pairs of 2-8 MiB in f32 (a 4096x1024 or
// 32x131072 f32 pair is 32 MiB, more than half of a ~48 MiB usable L3); dram: the out-of-cache
// shapes.
std::vector<Group> all_groups() {
  const std::vector<std::pair<std::string, std::vector<Shape>>> regimes = {
      {"cache", {{1, 512}, {16, 1024}, {64, 1024}, {8, 50257}}},
      {"l3", {{1024, 1024}, {8, 131072}, {16384, 64}, {1, 262144}}},
      {"dram", {{4096, 1024}, {32, 131072}, {65536, 64}, {1, 1048576}}}};
  std::vector<Group> g;
  for (Dt dt : {Dt::f32, Dt::bf16}) {
    for (const auto& [regime, shapes] : regimes) {
      for (const Shape& s : shapes) {
        for (int t : {1, 2}) g.push_back({regime, s, dt, t});
      }
    }
  }
  return g;
}

struct Args {
  bool json = false, python = true, quick = false;
  std::string filter;
  int rounds = 11;
  double batch_ms = 1.0;
  int nice = -5;
  bool realtime = false;
  int64_t l3_bytes = 0;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "cpu_compare: %s\nusage: cpu_compare [--json] [--filter REGEX] "
               "[--rounds N] [--batch-ms MS] [--nice N] [--realtime] [--l3-bytes B] [--no-python] "
               "[--quick]\n",
               why.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(k + " needs a value");
      return argv[++i];
    };
    auto number = [&](double lo, double hi) {
      const std::string v = value();
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(d >= lo && d <= hi)) {
        usage(k + " " + v + ": must be a number in [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "]");
      }
      return d;
    };
    if (k == "--json")
      a.json = true;
    else if (k == "--no-python")
      a.python = false;
    else if (k == "--realtime")
      a.realtime = true;
    else if (k == "--quick")
      a.quick = true;
    else if (k == "--filter")
      a.filter = value();
    else if (k == "--rounds")
      a.rounds = static_cast<int>(number(1, 100000));
    else if (k == "--batch-ms")
      a.batch_ms = number(0, 60000);
    else if (k == "--nice")
      a.nice = static_cast<int>(number(-20, 19));
    else if (k == "--l3-bytes")
      a.l3_bytes = static_cast<int64_t>(number(1, 1e13));
    else
      usage("unknown argument '" + k + "'");
  }
  if (a.quick) {
    a.rounds = std::min(a.rounds, 3);
    a.batch_ms = std::min(a.batch_ms, 0.2);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Buffers: one input and one output arena for the whole run, pair i at i * stride.

class Arena {
 public:
  // Makes room for `pairs` pairs of `stride` bytes, inputs holding logits of dtype dt.
  void ensure(std::size_t bytes, Dt dt) {
    if (cap_ < bytes) {
      in_.reset();
      out_.reset();
      in_ = tm::alloc_buffer(bytes);
      out_ = tm::alloc_buffer(bytes);
      cap_ = bytes;
      filled_ = -1;
    }
    if (filled_ != static_cast<int>(dt)) {
      tm::fill_logits(in_.get(), dt_size(dt), static_cast<int64_t>(cap_ / dt_size(dt)));
      filled_ = static_cast<int>(dt);
    }
  }
  unsigned char* in() const { return in_.get(); }
  unsigned char* out() const { return out_.get(); }

 private:
  tm::Buffer in_, out_;
  std::size_t cap_ = 0;
  int filled_ = -1;
};

// One measured implementation of a group.
struct Case {
  std::string impl, op;
  double bytes;  // moved per call by an ideal kernel (read once, write once)
  tm::Impl run;
  std::string label;
};

// What every builder gets: the group and its buffer pairs.
struct Ctx {
  Group g;
  std::vector<void*> in, out;
  std::size_t in_bytes() const { return static_cast<std::size_t>(g.s.numel()) * dt_size(g.dt); }
  double op_bytes(const std::string& op) const {
    const double in = static_cast<double>(in_bytes());
    if (op == "logsumexp") return in + static_cast<double>(g.s.rows * dt_size(g.dt));
    return op == "sum" ? in : 2 * in;
  }
};

void add_baselines(const Ctx& c, std::vector<Case>& cases) {
  const std::size_t bytes = c.in_bytes();
  const int t = c.g.threads;
  for (auto [name, kind] :
       {std::pair{"memcpy", tm::CopyKind::libc}, std::pair{"ntcopy", tm::CopyKind::streaming}}) {
    cases.push_back(
        {name,
         "copy",
         c.op_bytes("copy"),
         {[&c, bytes, t, kind](int64_t i) { tm::parallel_copy(c.out[i], c.in[i], bytes, t, kind); },
          {},
          {}},
         ""});
  }
  if (!sol_supported()) return;
  const int64_t count = c.g.s.numel();
  const bool f32 = c.g.dt == Dt::f32;
  auto sink = std::make_shared<float>();
  cases.push_back({"read",
                   "sum",
                   c.op_bytes("sum"),
                   {[&c, count, t, f32, sink](int64_t i) {
                      if (f32)
                        read_sum<F32>(c.in[i], count, t, sink.get());
                      else
                        read_sum<BF16>(c.in[i], count, t, sink.get());
                    },
                    {},
                    {}},
                   ""});
  cases.push_back({"sol",
                   "softmax",
                   c.op_bytes("softmax"),
                   {[&c, t, f32](int64_t i) {
                      if (f32)
                        sol_softmax<F32>(c.in[i], c.out[i], c.g.s.rows, c.g.s.n, t);
                      else
                        sol_softmax<BF16>(c.in[i], c.out[i], c.g.s.rows, c.g.s.n, t);
                    },
                    {},
                    {}},
                   ""});
}

void add_ours(const Ctx& c, std::vector<Case>& cases) {
  const softmax::DType t = c.g.dt == Dt::f32 ? softmax::DType::f32 : softmax::DType::bf16;
  struct Views {
    std::vector<softmax::ConstTensorView> x;
    std::vector<softmax::TensorView> y, lse;
    softmax::SoftmaxOptions o;
  };
  auto v = std::make_shared<Views>();
  v->o.threads = c.g.threads;
  for (std::size_t i = 0; i < c.in.size(); ++i) {
    v->x.emplace_back(c.in[i], t, std::vector<int64_t>{c.g.s.rows, c.g.s.n});
    v->y.emplace_back(c.out[i], t, std::vector<int64_t>{c.g.s.rows, c.g.s.n});
    v->lse.emplace_back(c.out[i], t, std::vector<int64_t>{c.g.s.rows});
  }
  cases.push_back({"ours",
                   "softmax",
                   c.op_bytes("softmax"),
                   {[v](int64_t i) { softmax::softmax(v->x[i], v->y[i], v->o); }, {}, {}},
                   ""});
  cases.push_back({"ours",
                   "log_softmax",
                   c.op_bytes("log_softmax"),
                   {[v](int64_t i) { softmax::log_softmax(v->x[i], v->y[i], v->o); }, {}, {}},
                   ""});
  cases.push_back({"ours",
                   "logsumexp",
                   c.op_bytes("logsumexp"),
                   {[v](int64_t i) { softmax::logsumexp(v->x[i], v->lse[i], v->o); }, {}, {}},
                   ""});
}

#if defined(SOFTMAX_BENCH_HAVE_DNNL)
void add_onednn(const Ctx& c, std::vector<Case>& cases) {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  // oneDNN sizes its parallel regions from the ICV; a primitive made under a different thread
  // count than it runs with still opens regions of the old size.
  omp_set_num_threads(c.g.threads);
  const auto mdt = c.g.dt == Dt::f32 ? dnnl::memory::data_type::f32 : dnnl::memory::data_type::bf16;
  const dnnl::memory::desc md({c.g.s.rows, c.g.s.n}, mdt, dnnl::memory::format_tag::ab);
  for (const std::string op : {"softmax", "log_softmax"}) {
    struct State {
      dnnl::stream strm{eng};
      dnnl::primitive prim;
      std::vector<std::unordered_map<int, dnnl::memory>> args;
    };
    auto st = std::make_shared<State>();
    std::string impl;
    try {
      if (op == "softmax") {
        dnnl::softmax_forward::primitive_desc pd(
            dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng);
        impl = pd.impl_info_str();
        st->prim = dnnl::softmax_forward(pd);
      } else {
        dnnl::logsoftmax_forward::primitive_desc pd(
            dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng);
        impl = pd.impl_info_str();
        st->prim = dnnl::logsoftmax_forward(pd);
      }
    } catch (const dnnl::error& e) {
      std::fprintf(stderr, "cpu_compare: %s: oneDNN %s: %s\n", c.g.name().c_str(), op.c_str(),
                   e.what());
      continue;
    }
    for (std::size_t i = 0; i < c.in.size(); ++i) {
      st->args.push_back({{DNNL_ARG_SRC, dnnl::memory(md, eng, c.in[i])},
                          {DNNL_ARG_DST, dnnl::memory(md, eng, c.out[i])}});
    }
    const int t = c.g.threads;
    cases.push_back({"onednn",
                     op,
                     c.op_bytes(op),
                     {[st](int64_t i) {
                        st->prim.execute(st->strm, st->args[i]);
                        st->strm.wait();
                      },
                      // oneDNN's OpenMP runtime follows the calling thread's ICV
                      [t] { omp_set_num_threads(t); },
                      {}},
                     impl});
  }
}
#endif

#if defined(SOFTMAX_BENCH_HAVE_XNNPACK)
void add_xnnpack(const Ctx& c, std::vector<Case>& cases) {
  static const bool ok = xnn_initialize(nullptr) == xnn_status_success;
  if (!ok || c.g.dt != Dt::f32) return;
  // One operator per buffer pair, made beforehand. The pthreadpool (t2) exists only during
  // XNNPACK's own batches: its spinning workers would otherwise take a core from the next
  // implementation. Binding the operators to it (setup) is untimed too.
  struct Ops {
    pthreadpool_t pool = nullptr;
    std::vector<xnn_operator_t> ops;
    ~Ops() {
      for (xnn_operator_t op : ops) xnn_delete_operator(op);
      if (pool != nullptr) pthreadpool_destroy(pool);
    }
  };
  auto st = std::make_shared<Ops>();
  const auto n = static_cast<size_t>(c.g.s.n);
  const auto rows = static_cast<size_t>(c.g.s.rows);
  for (std::size_t i = 0; i < c.in.size(); ++i) {
    xnn_operator_t op = nullptr;
    if (xnn_create_softmax_nc_f32(n, n, n, 0, &op) != xnn_status_success) return;
    st->ops.push_back(op);
  }
  const int t = c.g.threads;
  const auto setup = [&c, st, rows, t] {
    if (t > 1) st->pool = pthreadpool_create(static_cast<size_t>(t));
    for (std::size_t i = 0; i < st->ops.size(); ++i) {
      if (xnn_setup_softmax_nc_f32(st->ops[i], rows, static_cast<const float*>(c.in[i]),
                                   static_cast<float*>(c.out[i]), st->pool) != xnn_status_success) {
        throw std::runtime_error("xnn_setup_softmax_nc_f32 failed");
      }
    }
  };
  const auto teardown = [st] {
    if (st->pool != nullptr) pthreadpool_destroy(st->pool);
    st->pool = nullptr;
  };
  try {
    setup();
    teardown();
  } catch (const std::runtime_error&) {
    return;
  }
  cases.push_back({"xnnpack",
                   "softmax",
                   c.op_bytes("softmax"),
                   {[st](int64_t i) { xnn_run_operator(st->ops[i], st->pool); }, setup, teardown},
                   ""});
}
#endif

void add_python(const Ctx& c, std::vector<Case>& cases) {
  PythonPeers* py = PythonPeers::get();
  if (py == nullptr) return;
  for (const std::string impl : {"torch", "numpy"}) {
    if (impl == "numpy" && c.g.threads != 1) continue;  // NumPy runs these on one thread
    for (const std::string op : {"softmax", "log_softmax", "logsumexp"}) {
      auto r = py->make(impl, op, dt_name(c.g.dt), c.g.s.rows, c.g.s.n, c.in, c.out, c.g.threads);
      if (r) cases.push_back({impl, op, c.op_bytes(op), *r, ""});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Output

std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') r += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) r += ch;
  }
  return r + "\"";
}

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

void print_group(const Args& a, const Group& g, int64_t pairs, const std::vector<Case>& cases,
                 const std::vector<tm::Stats>& st) {
  if (a.json) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      std::printf(
          "{\"regime\": %s, \"shape\": %s, \"dtype\": %s, \"threads\": %d, \"pairs\": %lld,"
          " \"impl\": %s, \"op\": %s, \"median_s\": %s, \"min_s\": %s, \"max_s\": %s,"
          " \"rounds\": %d, \"calls_per_round\": %lld, \"bytes\": %s, \"label\": %s}\n",
          json_str(g.regime).c_str(), json_str(g.s.str()).c_str(), json_str(dt_name(g.dt)).c_str(),
          g.threads, static_cast<long long>(pairs), json_str(cases[i].impl).c_str(),
          json_str(cases[i].op).c_str(), num(st[i].median).c_str(), num(st[i].min).c_str(),
          num(st[i].max).c_str(), st[i].rounds, static_cast<long long>(st[i].calls_per_round),
          num(cases[i].bytes).c_str(), json_str(cases[i].label).c_str());
    }
  } else {
    std::printf("== %s (%lld buffer pair%s)\n", g.name().c_str(), static_cast<long long>(pairs),
                pairs == 1 ? "" : "s");
    const double copy = cases[0].bytes / st[0].median;  // memcpy is always first
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const double gbps = cases[i].bytes / st[i].median;
      std::printf("  %-20s %11.3f us  [%9.3f, %9.3f]  %8.2f GB/s  %5.2f x memcpy\n",
                  (cases[i].impl + "/" + cases[i].op).c_str(), st[i].median * 1e6, st[i].min * 1e6,
                  st[i].max * 1e6, gbps * 1e-9, gbps / copy);
    }
  }
  std::fflush(stdout);
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Raises the priority (a lower nice value) when allowed; returns the nice value in effect.
int apply_nice(int want) {
  if (want != 0 && setpriority(PRIO_PROCESS, 0, want) != 0) {
    std::fprintf(stderr, "cpu_compare: could not set nice %d (%s); running at the default\n", want,
                 std::strerror(errno));
  }
  errno = 0;
  return getpriority(PRIO_PROCESS, 0);
}

// The yardstick computes softmax: sol's output on pair 0 matches ours within 1e-4 relative
// (f32; sol is ~45 ulp off) or 2^-6 (bf16, rounded twice). True when there is no sol.
bool sol_agrees(const Ctx& c, const std::vector<Case>& cases) {
  const auto find = [&](const char* impl) -> const Case* {
    for (const Case& k : cases) {
      if (k.impl == impl && k.op == "softmax") return &k;
    }
    return nullptr;
  };
  const Case* sol = find("sol");
  const Case* ours = find("ours");
  if (sol == nullptr || ours == nullptr) return true;
  const auto count = static_cast<std::size_t>(c.g.s.numel());
  const auto value = [&](std::size_t i) {
    if (c.g.dt == Dt::f32) return static_cast<const float*>(c.out[0])[i];
    const uint32_t b = uint32_t{static_cast<const uint16_t*>(c.out[0])[i]} << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  sol->run.call(0);
  std::vector<float> s(count);
  for (std::size_t i = 0; i < count; ++i) s[i] = value(i);
  ours->run.call(0);
  const double tol = c.g.dt == Dt::f32 ? 1e-4 : 0x1p-6;
  for (std::size_t i = 0; i < count; ++i) {
    const double o = value(i);
    if (!(std::abs(s[i] - o) <= tol * std::abs(o) + 1e-30)) return false;
  }
  return true;
}

// SCHED_RR priority 1 for this thread and every thread it starts; the policy in effect.
std::string apply_realtime(bool want) {
  if (want) {
    sched_param p{};
    p.sched_priority = 1;
    if (sched_setscheduler(0, SCHED_RR, &p) != 0) {
      std::fprintf(stderr, "cpu_compare: could not switch to SCHED_RR (%s)\n",
                   std::strerror(errno));
    }
  }
  return sched_getscheduler(0) == SCHED_RR ? "SCHED_RR 1" : "SCHED_OTHER";
}

// The number of buffer pairs of a group's regime, 0 when the regime cannot hold one pair.
int64_t pairs_for(const Group& g, std::size_t stride, int64_t l3) {
  const auto pair = static_cast<int64_t>(2 * stride);
  if (g.regime == "cache") return 1;
  if (g.regime == "l3") return 2 * pair <= l3 ? l3 / (2 * pair) : 0;
  const int64_t footprint = std::max<int64_t>(4 * l3, 256 * kMiB);
  return std::max<int64_t>(2, (footprint + pair - 1) / pair);
}

void run_group(const Args& a, const Group& g, int64_t l3, Arena& arena) {
  const std::size_t in_bytes = static_cast<std::size_t>(g.s.numel()) * dt_size(g.dt);
  const std::size_t stride = (in_bytes + 4095) / 4096 * 4096;
  const int64_t pairs = pairs_for(g, stride, l3);
  if (pairs == 0) {
    std::fprintf(stderr,
                 "cpu_compare: %s: one buffer pair (%zu bytes) exceeds half the L3 "
                 "(%lld bytes): skipped\n",
                 g.name().c_str(), 2 * stride, static_cast<long long>(l3));
    return;
  }
  arena.ensure(stride * static_cast<std::size_t>(pairs), g.dt);
  Ctx c{g, {}, {}};
  for (int64_t i = 0; i < pairs; ++i) {
    c.in.push_back(arena.in() + static_cast<std::size_t>(i) * stride);
    c.out.push_back(arena.out() + static_cast<std::size_t>(i) * stride);
  }
  std::vector<Case> cases;
  add_baselines(c, cases);
  add_ours(c, cases);
#if defined(SOFTMAX_BENCH_HAVE_DNNL)
  add_onednn(c, cases);
#endif
#if defined(SOFTMAX_BENCH_HAVE_XNNPACK)
  add_xnnpack(c, cases);
#endif
  if (a.python) add_python(c, cases);
  if (!sol_agrees(c, cases)) {
    std::fprintf(stderr, "cpu_compare: %s: sol's output differs from ours: group left out\n",
                 g.name().c_str());
    return;
  }
  std::vector<tm::Impl> impls;
  for (const Case& k : cases) impls.push_back(k.run);
  tm::InterleaveOptions o;
  o.pairs = pairs;
  o.min_rounds = o.max_rounds = a.rounds;
  o.batch_seconds = a.batch_ms * 1e-3;
  std::fprintf(stderr, "cpu_compare: %s: %zu implementations x %d rounds\n", g.name().c_str(),
               impls.size(), a.rounds);
  try {
    print_group(a, g, pairs, cases, tm::interleave(impls, o));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpu_compare: %s: %s: group left out\n", g.name().c_str(), e.what());
  }
}

void print_context(const Args& a, const CacheProbe& p, int nice_now, const std::string& sched,
                   const std::string& load0) {
  std::string sweep = "[";
  for (const SweepPoint& s : p.sweep) {
    sweep += (sweep.size() > 1 ? ", [" : "[") + std::to_string(s.bytes) + ", " + num(s.gbps) + "]";
  }
  sweep += "]";
  std::string onednn = "null";
#if defined(SOFTMAX_BENCH_HAVE_DNNL)
  const dnnl_version_t* v = dnnl_version();
  onednn = json_str(std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                    std::to_string(v->patch));
#endif
  PythonPeers* py = a.python ? PythonPeers::get() : nullptr;
  std::string versions = py ? py->versions() : "{}";
  for (char& ch : versions) {
    if (ch == '\'') ch = '"';
  }
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  std::printf(
      "{\"context\": {\"simd_target\": %s, \"onednn\": %s, \"python_peers\": %s, "
      "\"cpus\": %ld, \"nice\": %d, \"sched\": %s, \"loadavg_start\": %s, "
      "\"l3_bytes\": %lld, "
      "\"l3_measured\": %s, \"l3_sysfs_bytes\": %lld, \"copy_gbps_cache\": %s, "
      "\"copy_gbps_dram\": %s, \"sweep\": %s, \"rounds\": %d, \"batch_ms\": %s}}\n",
      json_str(softmax::current_target()).c_str(), onednn.c_str(), versions.c_str(), cpus, nice_now,
      json_str(sched).c_str(), json_str(load0).c_str(), static_cast<long long>(p.l3_bytes),
      p.measured ? "true" : "false", static_cast<long long>(tm::sysfs_llc_bytes()),
      num(p.cache_gbps).c_str(), num(p.dram_gbps).c_str(), sweep.c_str(), a.rounds,
      num(a.batch_ms).c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const int nice_now = apply_nice(a.nice);  // before any thread exists: they inherit both
  const std::string sched = apply_realtime(a.realtime);
  const std::string load0 = loadavg();
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (std::strtod(load0.c_str(), nullptr) > 0.5 * static_cast<double>(cpus)) {
    std::fprintf(stderr,
                 "cpu_compare: warning: load average %s on %ld CPUs: other work is "
                 "running, the timings will be noisy (see the min-max spread)\n",
                 load0.c_str(), cpus);
  }
  CacheProbe probe;
  const int64_t l3_env = std::getenv("SOFTMAX_BENCH_L3_BYTES")
                             ? std::strtoll(std::getenv("SOFTMAX_BENCH_L3_BYTES"), nullptr, 10)
                             : 0;
  if (a.l3_bytes > 0 || l3_env > 0) {
    probe.l3_bytes = a.l3_bytes > 0 ? a.l3_bytes : l3_env;
  } else {
    std::fprintf(stderr, "cpu_compare: measuring the usable L3 (copy bandwidth sweep)...\n");
    probe = probe_cache();
  }
  std::fprintf(stderr, "cpu_compare: L3 %lld MiB (%s)\n",
               static_cast<long long>(probe.l3_bytes / kMiB),
               probe.measured ? "measured" : "sysfs or given");
  if (a.json) print_context(a, probe, nice_now, sched, load0);
  std::regex filter;
  try {
    filter = std::regex(a.filter.empty() ? ".*" : a.filter);
  } catch (const std::regex_error&) {
    usage("--filter '" + a.filter + "': not a valid regular expression");
  }
  Arena arena;
  for (const Group& g : all_groups()) {
    if (!std::regex_search(g.name(), filter)) continue;
    run_group(a, g, probe.l3_bytes, arena);
  }
  if (a.json) std::printf("{\"end\": {\"loadavg_end\": %s}}\n", json_str(loadavg()).c_str());
  return 0;
}
