// src/dist/agree.cc: see agree.hpp.
#include "src/dist/agree.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "softmax/error.hpp"
#include "src/base/half.hpp"
#include "src/core/row_stats.hpp"

namespace softmax::dist {

void Communicator::all_gather(const void* in, void* out, const std::size_t* counts) {
  const int r = rank(), s = size();
  std::size_t total = 0;
  for (int i = 0; i < s; ++i) total += counts[i];
  ++stats_.collectives;
  stats_.bytes_sent += static_cast<int64_t>(counts[r]);
  stats_.bytes_received += static_cast<int64_t>(total - counts[r]);
  do_all_gather(in, out, counts);
}

void Communicator::all_to_all(const void* in, const std::size_t* send_counts, void* out,
                              const std::size_t* recv_counts) {
  const int r = rank(), s = size();
  ++stats_.collectives;
  for (int i = 0; i < s; ++i) {
    if (i == r) continue;
    stats_.bytes_sent += static_cast<int64_t>(send_counts[i]);
    stats_.bytes_received += static_cast<int64_t>(recv_counts[i]);
  }
  do_all_to_all(in, send_counts, out, recv_counts);
}

void Communicator::all_gather(const void* in, std::size_t bytes, void* out) {
  const std::vector<std::size_t> counts(static_cast<std::size_t>(size()), bytes);
  all_gather(in, out, counts.data());
}

Shard default_shard(int64_t vocab, int rank, int ranks) {
  const char* op = "dist::default_shard";
  if (vocab < 0) {
    throw Error(ErrorKind::kInvalidArgument, op, "vocab", std::to_string(vocab), "must be >= 0");
  }
  if (ranks < 1) {
    throw Error(ErrorKind::kInvalidArgument, op, "ranks", std::to_string(ranks), "must be >= 1");
  }
  if (rank < 0 || rank >= ranks) {
    throw Error(ErrorKind::kInvalidArgument, op, "rank", std::to_string(rank),
                "must be in [0, " + std::to_string(ranks - 1) + "]");
  }
  const int64_t chunks = (vocab + kShardAlign - 1) / kShardAlign;
  const int64_t base = chunks / ranks, extra = chunks % ranks;
  const int64_t first = rank * base + std::min<int64_t>(rank, extra);
  const int64_t count = base + (rank < extra ? 1 : 0);
  const int64_t begin = std::min(vocab, first * kShardAlign);
  const int64_t end = std::min(vocab, (first + count) * kShardAlign);
  return Shard{begin, end - begin};
}

}  // namespace softmax::dist

namespace softmax::detail::dist {
namespace {

constexpr std::size_t kMsgBytes = 280;  // a 512-byte record

// The record each rank contributes (fixed size, plain integers: no padding-dependent bytes).
struct Record {
  int64_t failed;  // 0 ok, 1 failed
  int64_t kind;    // ErrorKind when failed
  int64_t offset;
  int64_t n;
  int64_t key_len;
  int64_t key[kMaxKey];
  char msg[kMsgBytes];  // what() when failed (truncated), NUL-terminated
};
static_assert(sizeof(Record) == 5 * 8 + kMaxKey * 8 + kMsgBytes);

std::string rank_str(int r, int size) {
  return "rank " + std::to_string(r) + " of " + std::to_string(size);
}

[[noreturn]] void fail(const char* op, ErrorKind kind, const std::string& msg) {
  throw Error(kind, op, msg);
}

// A failing rank's message without the "softmax::OP: " its Error already starts with (the
// agreed Error adds it again).
std::string without_prefix(const char* msg, const char* op) {
  const std::string prefix = std::string("softmax::") + op + ": ";
  return std::strncmp(msg, prefix.c_str(), prefix.size()) == 0 ? std::string(msg + prefix.size())
                                                               : std::string(msg);
}

// A key's value as the user wrote it: a dtype's name, a float, set / not set, a reduction.
std::string key_str(KeyKind kind, int64_t v) {
  switch (kind) {
    case KeyKind::kDType:
      return v >= 0 && v <= static_cast<int64_t>(DType::i64) ? dtype_name(static_cast<DType>(v))
                                                             : std::to_string(v);
    case KeyKind::kDouble: {
      double d;
      std::memcpy(&d, &v, 8);
      char buf[40];
      const auto res = std::to_chars(buf, buf + sizeof buf, d);  // shortest round trip
      return std::string(buf, res.ptr);
    }
    case KeyKind::kFlag: return v != 0 ? "set" : "not set";
    case KeyKind::kReduction:
      return v == static_cast<int64_t>(Reduction::kNone)   ? "none"
             : v == static_cast<int64_t>(Reduction::kSum)  ? "sum"
             : v == static_cast<int64_t>(Reduction::kMean) ? "mean"
                                                           : std::to_string(v);
    case KeyKind::kSamplingMethod:
      return v == static_cast<int64_t>(SamplingMethod::kInverseCdf)  ? "inverse_cdf"
             : v == static_cast<int64_t>(SamplingMethod::kGumbelMax) ? "gumbel_max"
                                                                     : std::to_string(v);
    case KeyKind::kHash:
    case KeyKind::kInt: break;
  }
  return std::to_string(v);
}

}  // namespace

// The end of a shard, offset + size, for messages ("beyond int64" where it overflows).
static std::string shard_end_str(const Shard& s) {
  int64_t e = 0;
  return __builtin_add_overflow(s.offset, s.size, &e) ? std::string("beyond int64")
                                                      : std::to_string(e);
}

Layout agree(Communicator& comm, const char* op, const std::function<LocalInfo()>& check) {
  Record mine{};
  LocalInfo info;
  try {
    info = check();
    if (static_cast<int>(info.key.size()) > kMaxKey) {
      throw Error(ErrorKind::kUnsupported, op, "too many dimensions to agree on");
    }
    mine.offset = info.offset;
    mine.n = info.n;
    mine.key_len = static_cast<int64_t>(info.key.size());
    std::copy(info.key.begin(), info.key.end(), mine.key);
    std::strncpy(mine.msg, op, kMsgBytes - 1);
  } catch (const Error& e) {
    mine.failed = 1;
    mine.kind = static_cast<int64_t>(e.kind());
    std::strncpy(mine.msg, e.what(), kMsgBytes - 1);
  } catch (const std::exception& e) {
    mine.failed = 1;
    mine.kind = static_cast<int64_t>(ErrorKind::kInvalidArgument);
    std::strncpy(mine.msg, e.what(), kMsgBytes - 1);
  }
  const int size = comm.size();
  std::vector<Record> all(static_cast<std::size_t>(size));
  comm.all_gather(&mine, sizeof(Record), all.data());
  for (int r = 0; r < size; ++r) {
    if (all[r].failed) {
      all[r].msg[kMsgBytes - 1] = '\0';
      fail(op, static_cast<ErrorKind>(all[r].kind),
           rank_str(r, size) + ": " + without_prefix(all[r].msg, op));
    }
  }
  // The same op on every rank (its name travels in msg of a passing record), then the same keys.
  for (int r = 1; r < size; ++r) {
    all[r].msg[kMsgBytes - 1] = '\0';
    if (std::strcmp(all[r].msg, all[0].msg) != 0) {
      // Under rank 0's op name on every rank, so every rank throws the same message.
      fail(all[0].msg, ErrorKind::kInvalidArgument,
           rank_str(r, size) + " calls softmax::" + all[r].msg +
               " where rank 0 calls softmax::" + all[0].msg + ": every rank must call the same op");
    }
  }
  for (int r = 1; r < size; ++r) {
    const Record& a = all[0];
    const Record& b = all[r];
    const int64_t common = std::min(a.key_len, b.key_len);
    for (int64_t i = 0; i < common; ++i) {
      if (a.key[i] == b.key[i]) continue;
      const auto k = static_cast<std::size_t>(i);
      const std::string what =
          k < info.key_names.size() ? info.key_names[k] : "argument " + std::to_string(i);
      const KeyKind kind = k < info.key_kinds.size() ? info.key_kinds[k] : KeyKind::kInt;
      const std::string detail = kind == KeyKind::kHash
                                     ? rank_str(r, size) + "'s " + what + " differs from rank 0's"
                                     : rank_str(r, size) + " has " + what + " = " +
                                           key_str(kind, b.key[i]) + " where rank 0 has " +
                                           key_str(kind, a.key[i]);
      fail(op, ErrorKind::kShapeMismatch,
           detail + ": every rank's arguments must agree except along the class axis");
    }
    if (a.key_len != b.key_len) {  // not reached while each op's keys follow from the earlier ones
      fail(op, ErrorKind::kShapeMismatch,
           rank_str(r, size) + " passes " + std::to_string(b.key_len) +
               " values to agree on where rank 0 passes " + std::to_string(a.key_len) +
               ": every rank's arguments must agree except along the class axis");
    }
  }
  // Shards: tile [0, V).
  Layout L;
  L.shards.resize(static_cast<std::size_t>(size));
  L.chunks.resize(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) {
    L.shards[r] = Shard{all[r].offset, all[r].n};
    L.chunks[r] = all[r].n == 0 ? 0 : (all[r].n + cpu::kChunkElems - 1) / cpu::kChunkElems;
    if (all[r].n > 0) L.order.push_back(r);
  }
  std::stable_sort(L.order.begin(), L.order.end(),
                   [&](int a, int b) { return L.shards[a].offset < L.shards[b].offset; });
  int64_t end = 0;
  int prev = -1;
  for (int r : L.order) {
    if (L.shards[r].offset != end) {
      const std::string where =
          prev < 0
              ? std::string("class 0")
              : "class " + std::to_string(end) + ", where " + rank_str(prev, size) + "'s shard [" +
                    std::to_string(L.shards[prev].offset) + ", " + std::to_string(end) + ") ends";
      fail(op, ErrorKind::kShapeMismatch,
           rank_str(r, size) + "'s shard [" + std::to_string(L.shards[r].offset) + ", " +
               shard_end_str(L.shards[r]) + ") " +
               (L.shards[r].offset < end ? "overlaps the classes before it" : "leaves a gap") +
               ": the next shard must start at " + where + " (shards must tile [0, V) exactly)");
    }
    if (__builtin_add_overflow(end, L.shards[r].size, &end)) {
      fail(op, ErrorKind::kOverflow,
           rank_str(r, size) + "'s shard [" + std::to_string(L.shards[r].offset) + ", " +
               shard_end_str(L.shards[r]) + ") ends past the int64 range");
    }
    prev = r;
  }
  L.vocab = end;
  for (int r = 0; r < size; ++r) {
    if (L.shards[r].size == 0 && L.shards[r].offset > end) {
      fail(op, ErrorKind::kShapeMismatch,
           rank_str(r, size) + "'s empty shard sits at class " +
               std::to_string(L.shards[r].offset) + ", past the vocabulary's end (" +
               std::to_string(end) + ")");
    }
  }
  return L;
}

void agree_ok(Communicator& comm, const char* op, bool ok, ErrorKind kind,
              const std::string& what) {
  Record mine{};
  if (!ok) {
    mine.failed = 1;
    mine.kind = static_cast<int64_t>(kind);
    std::strncpy(mine.msg, what.c_str(), kMsgBytes - 1);
  }
  const int size = comm.size();
  std::vector<Record> all(static_cast<std::size_t>(size));
  comm.all_gather(&mine, sizeof(Record), all.data());
  for (int r = 0; r < size; ++r) {
    if (all[r].failed) {
      all[r].msg[kMsgBytes - 1] = '\0';
      fail(op, static_cast<ErrorKind>(all[r].kind),
           rank_str(r, size) + ": " + without_prefix(all[r].msg, op));
    }
  }
}

void Hash::add_view(const ConstTensorView& v) {
  const int64_t n = v.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0, rem = i;
    for (std::size_t j = v.shape.size(); j-- > 0;) {
      off += (rem % v.shape[j]) * v.strides[j];
      rem /= v.shape[j];
    }
    if (v.dtype == DType::i64 || v.dtype == DType::i32) {
      add(static_cast<uint64_t>(v.dtype == DType::i64 ? static_cast<const int64_t*>(v.data)[off]
                                                      : static_cast<const int32_t*>(v.data)[off]));
    } else {
      const double d = load_as_double(v.data, v.dtype, off);
      uint64_t b;
      std::memcpy(&b, &d, 8);
      add(b);
    }
  }
}

void Hash::add_bytes(const void* p, std::size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, c + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, c + i, n - i);
    h = (h ^ w) * 0x100000001b3ull;
  }
  add(n);
}

void all_reduce_sum(Communicator& comm, const std::vector<int>& order, float* data, std::size_t n) {
  const int R = comm.size(), me = comm.rank();
  if (R == 1) return;
  // Slice q of the n elements: [n q / R, n (q + 1) / R).
  auto lo = [&](int q) { return n * static_cast<std::size_t>(q) / static_cast<std::size_t>(R); };
  std::vector<std::size_t> send(static_cast<std::size_t>(R)), recv(static_cast<std::size_t>(R));
  const std::size_t mine = lo(me + 1) - lo(me);
  for (int q = 0; q < R; ++q) {
    send[q] = (lo(q + 1) - lo(q)) * sizeof(float);
    recv[q] = mine * sizeof(float);
  }
  std::vector<float> parts(mine * static_cast<std::size_t>(R));
  comm.all_to_all(data, send.data(), parts.data(), recv.data());
  // Add in class order, then the ranks that hold no classes (their partials are zeros).
  std::vector<int> seq = order;
  for (int q = 0; q < R; ++q) {
    if (std::find(seq.begin(), seq.end(), q) == seq.end()) seq.push_back(q);
  }
  std::vector<float> sum(mine);
  for (std::size_t i = 0; i < mine; ++i) {
    double acc = 0.0;
    for (int q : seq) acc += static_cast<double>(parts[static_cast<std::size_t>(q) * mine + i]);
    sum[i] = static_cast<float>(acc);
  }
  comm.all_gather(sum.data(), data, send.data());
}

void LocalInfo::add_double(const std::string& name, double v) {
  int64_t b;
  std::memcpy(&b, &v, 8);
  add(name, b, KeyKind::kDouble);
}

void add_loss_option_keys(LocalInfo& info, const CrossEntropyOptions& o) {
  info.add("reduction", static_cast<int64_t>(o.reduction), KeyKind::kReduction);
  info.add("ignore_index", o.ignore_index);
  info.add_double("label_smoothing", o.label_smoothing);
  info.add_double("z_loss", o.z_loss);
  info.add_double("normalizer", o.normalizer);
  info.add_double("grad_scale", o.grad_scale);
  Hash hw;
  if (o.weight) hw.add_view(*o.weight);
  info.add_hash("weight (the whole (C) vector on every rank)", hw.value());
  Hash hg;
  if (o.grad_output) hg.add_view(*o.grad_output);
  info.add_hash("grad_output", hg.value());
}

}  // namespace softmax::detail::dist

namespace softmax::dist {

void fail_op(Communicator& comm, const char* op, const std::string& what, ErrorKind kind) {
  detail::dist::agree(comm, op, [&]() -> detail::dist::LocalInfo { throw Error(kind, op, what); });
  // agree() throws on every rank when one fails; not reached.
  throw Error(ErrorKind::kUnsupported, op, "fail_op: the agreement did not fail");
}

}  // namespace softmax::dist
