// src/dist/sampling.cc: next-token sampling on a class axis sharded across ranks
// (softmax/dist.hpp), exact: the token ids of the single-process sample (softmax/sampling.hpp)
// for every layout. Every token's tempered weight depends only on its logit and the row's
// global maximum (the weight kernels are elementwise), so once the maxima are gathered each
// rank holds the single-process weights, keys and integer masses of its classes. The exact
// filter engine (src/core/sampling_select.hpp) decides the kept set from any candidate list
// that holds the kept prefix; each mode gathers such a list (or, without top-k / top-p, only
// per-rank masses) and every rank then runs the same select and the same draws.
//
// Per row, after the agreement (modes from the replicated params, so every rank runs the same
// collectives):
//   1. all rows: each rank's (max, NaN, argmax) -> row errors, greedy rows, the global max.
//   2. top-k (0 < k < V): each rank's top min(k, n_r) positive tokens (padded to that count);
//        the union holds the global top-k; filter_list + draws on every rank.
//      top-p without top-k: each rank's mass M_r, local top-p boundary key tau_r and mass above
//        each binade boundary of weight.
//      neither, inverse CDF: each rank's kept mass S_r.  Gumbel-max: each rank's best key per
//        draw; the maximum (lowest id on ties) is the token.
//   3. top-p: the record counts, then every token with key >= both the minimum over ranks of
//        tau_r and the highest binade boundary whose gathered mass bound reaches the goal (a
//        superset of the global prefix: see below); filter_list with the global mass.
//      neither, inverse CDF: the rank whose class-order share of the kept mass holds the draw's
//        point walks its kept tokens and sends the id.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "softmax/dist.hpp"
#include "softmax/error.hpp"
#include "softmax/sampling.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/core/philox.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/sampling_kernels.hpp"
#include "src/core/sampling_rows.hpp"
#include "src/core/sampling_select.hpp"
#include "src/cpu/kernels.hpp"
#include "src/dist/agree.hpp"

namespace softmax::dist {
namespace {

namespace sd = softmax::detail;
using sd::RowError;
using sd::u128;
using softmax::detail::dist::agree;
using softmax::detail::dist::Hash;
using softmax::detail::dist::Layout;
using softmax::detail::dist::LocalInfo;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr const char* kOp = "dist::sample";

uint64_t bits_of(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

// The per-row parameters every rank passes must be the same: the agreement compares a hash.
template <class T>
void hash_param(Hash& h, const PerRow<T>& v, int64_t rows) {
  h.add(v.per_row() ? 1 : 0);
  const int64_t count = v.per_row() ? rows : 1;
  for (int64_t r = 0; r < count; ++r) {
    if constexpr (std::is_floating_point_v<T>)
      h.add(bits_of(static_cast<double>(v[r])));
    else
      h.add(static_cast<uint64_t>(v[r]));
  }
}
void hash_span(Hash& h, std::span<const uint64_t> s) {
  h.add(s.size());
  for (uint64_t v : s) h.add(v);
}

// How a row is decided (from the replicated params: the same on every rank).
enum class Mode : uint8_t { kGreedy, kTopK, kTopP, kLocal };

Mode row_mode(const SamplingParams& p, int64_t r, int64_t vocab) {
  if (p.temperature[r] == 0.0) return Mode::kGreedy;
  const int64_t k = p.top_k[r];
  if (k > 0 && k < vocab) return Mode::kTopK;
  if (p.top_p[r] < 1.0) return Mode::kTopP;
  return Mode::kLocal;
}

// ---- Wire records (plain integers and floats, no padding bytes left unset) ----

struct WireRange {  // collective 1
  double max;       // the largest non-NaN logit of the shard (-inf if none)
  double amax;      // greedy rows: the shard's first maximum and its global id
  int64_t amax_id;
  int64_t nan;  // 1 if the shard holds NaN
};
template <class W>
struct Rec {  // a candidate token: global id and weight (f32 rows: 8 bytes)
  uint32_t id;
  W w;
};
template <>
struct Rec<double> {
  uint32_t id;
  uint32_t pad;
  double w;
};
struct WireMass {  // a u128 mass
  uint64_t lo, hi;
};
// Binades of weight a top-p row reports: [2^-j, 2^(1-j)) for j < kBinades (lighter weights have
// mass 0: q = floor(w * 2^61)).
constexpr int kBinades = 63;
struct WireTopP {
  uint64_t lo, hi;  // M_r
  uint64_t tau;     // the local top-p boundary key (when has)
  uint64_t has;     // M_r > 0
  // floor(mass of the shard's tokens of weight >= 2^-j / 2^32): summed over ranks, a lower
  // bound of the global mass above each binade boundary.
  uint64_t above[kBinades];
};
struct WireGumbel {
  double g;
  int64_t id;  // -1: no kept token
};

WireMass to_wire(u128 m) {
  return WireMass{static_cast<uint64_t>(m), static_cast<uint64_t>(m >> 64)};
}
u128 from_wire(uint64_t lo, uint64_t hi) { return (static_cast<u128>(hi) << 64) | lo; }

// Offsets of a gathered buffer: rank r's block starts at first[r]; inside it row i's piece
// starts at at[r][i] (bytes).
struct Blocks {
  std::vector<std::size_t> counts, first;
  std::vector<std::vector<std::size_t>> at;
};
template <class Size>
Blocks make_blocks(int size, int64_t rows, Size&& piece) {
  Blocks b;
  b.counts.assign(static_cast<std::size_t>(size), 0);
  b.first.assign(static_cast<std::size_t>(size) + 1, 0);
  b.at.assign(static_cast<std::size_t>(size),
              std::vector<std::size_t>(static_cast<std::size_t>(rows) + 1, 0));
  for (int r = 0; r < size; ++r) {
    auto& at = b.at[static_cast<std::size_t>(r)];
    for (int64_t i = 0; i < rows; ++i) at[i + 1] = at[i] + piece(r, i);
    b.counts[r] = at[rows];
    b.first[r + 1] = b.first[r] + b.counts[r];
  }
  return b;
}

template <class T>
T read_at(const std::vector<unsigned char>& buf, std::size_t at) {
  T v;
  std::memcpy(&v, buf.data() + at, sizeof(T));
  return v;
}

// Everything a call needs, with this rank's rows as contiguous runs on demand.
template <class W>
struct Job {
  Communicator& comm;
  const Layout& lay;
  const ConstTensorView& x;
  const SamplingParams& p;
  uint64_t seed, offset;
  int64_t rows, n, draws, vocab, class_offset;
  int threads;
  const cpu::SamplingKernelTable& sk = cpu::sampling_kernels();
  const cpu::KernelTable& k = cpu::kernels();
  std::vector<Mode> mode{};
  std::vector<double> max{};   // global row maxima
  std::vector<int64_t> out{};  // rows * draws tokens

  int threads_for(int64_t count) const {
    return count > 1 && count * n >= sd::kMinParallelElems ? threads : 1;
  }
  // Row r's weights (the single-process kernel, with the global max) into s's buffer.
  const W* weights(int64_t r, sd::RowScratch& s) const {
    const void* xr = sd::row_ptr(x, r, s);
    const double t = p.temperature[r];
    if constexpr (std::is_same_v<W, double>) {
      s.wd.resize(static_cast<std::size_t>(n));
      sk.weights_f64(static_cast<const double*>(xr), n, max[r], t, s.wd.data());
      return s.wd.data();
    } else {
      s.wf.resize(static_cast<std::size_t>(n));
      sk.weights_f32(xr, x.dtype, n, static_cast<float>(max[r]), sd::kernel_temperature(t),
                     s.wf.data());
      return s.wf.data();
    }
  }
  sd::RowFilter<W>& filter_of(sd::RowScratch& s) const {
    if constexpr (std::is_same_v<W, double>)
      return s.fd;
    else
      return s.ff;
  }
  bool gumbel() const { return p.method == SamplingMethod::kGumbelMax; }
  const sd::MassScale scale = sd::MassScale::for_max(1.0);  // the global w_max is exactly 1
};

// Tokens of a merged candidate list (ids ascending) of row r: filter_list, then the draws.
template <class W>
void decide(Job<W>& job, int64_t r, const std::vector<uint32_t>& ids, const std::vector<W>& ws,
            u128 total, sd::RowFilter<W>& f) {
  sd::FilterSpec spec = sd::filter_spec(job.p, r);
  f.filter_list(ids.data(), ws.data(), ids.size(), job.vocab, W(1), spec, total);
  const sd::RowRandom rr = sd::row_random(job.p, r, job.seed, job.offset);
  int64_t* o = job.out.data() + r * job.draws;
  for (int64_t d = 0; d < job.draws; ++d) {
    const uint64_t off = rr.offset + static_cast<uint64_t>(d);
    if (!job.gumbel()) {
      o[d] = f.draw(sd::philox_u64(rr.seed, off, rr.stream, 0));
      continue;
    }
    // As RowFilter::draw_gumbel over the kept ids (a subset of ids: walk both in id order).
    int64_t best = -1;
    double best_g = -kInf;
    std::size_t j = 0;
    for (uint32_t id : f.kept_ids) {
      while (ids[j] != id) ++j;
      const double wi = static_cast<double>(ws[j]);
      if (!(wi > 0)) continue;
      const double g = sd::gumbel_key(wi, rr.seed, off, rr.stream, id);
      if (best < 0 || g > best_g) {
        best = id;
        best_g = g;
      }
    }
    o[d] = best;
  }
}

template <class W>
void run(Job<W>& job) {
  using Key = typename sd::WeightTraits<W>::Key;
  // A weight's key >> kMantBits is its biased exponent; kTopBinade: that of 1.0.
  constexpr int kMantBits = std::is_same_v<W, double> ? 52 : 23;
  constexpr int64_t kTopBinade = std::is_same_v<W, double> ? 1023 : 127;
  Communicator& comm = job.comm;
  const Layout& lay = job.lay;
  const int me = comm.rank(), size = comm.size();
  const int64_t rows = job.rows, n = job.n, draws = job.draws;
  const auto shard_n = [&](int q) { return lay.shards[static_cast<std::size_t>(q)].size; };

  // ---- 1. Row ranges and greedy argmaxes ----
  std::vector<WireRange> range(static_cast<std::size_t>(n > 0 ? rows : 0));
  if (n > 0) {
    sd::parallel_for(rows, job.threads_for(rows), [&](int64_t b, int64_t e) {
      sd::RowScratch& s = sd::thread_scratch();
      for (int64_t r = b; r < e; ++r) {
        const void* xr = sd::row_ptr(job.x, r, s);
        const cpu::RowRange rg = job.sk.row_range(xr, job.x.dtype, n);
        WireRange w{rg.max, 0.0, -1, rg.has_nan ? 1 : 0};
        if (job.p.temperature[r] == 0.0 && !rg.has_nan) {
          const cpu::ArgmaxResult a = job.k.argmax(xr, job.x.dtype, n);
          w.amax = a.value;
          w.amax_id = a.index + job.class_offset;
        }
        range[static_cast<std::size_t>(r)] = w;
      }
    });
  }
  {
    const Blocks bl = make_blocks(size, 1, [&](int q, int64_t) {
      return shard_n(q) > 0 ? static_cast<std::size_t>(rows) * sizeof(WireRange) : 0;
    });
    std::vector<WireRange> all(bl.first[size] / sizeof(WireRange));
    comm.all_gather(range.data(), all.data(), bl.counts.data());
    std::vector<RowError> errors(static_cast<std::size_t>(rows), RowError::kNone);
    job.max.assign(static_cast<std::size_t>(rows), -kInf);
    for (int64_t r = 0; r < rows; ++r) {
      bool nan = false, have = false;
      WireRange best{};
      for (int q : lay.order) {
        const WireRange& w = all[bl.first[q] / sizeof(WireRange) + static_cast<std::size_t>(r)];
        nan = nan || w.nan != 0;
        job.max[r] = std::max(job.max[r], w.max);
        if (!have || w.amax > best.amax) best = w;  // class order: the lowest id on ties
        have = true;
      }
      if (nan)
        errors[r] = RowError::kNaN;
      else if (job.max[r] == kInf)
        errors[r] = RowError::kPosInf;
      else if (job.max[r] == -kInf)
        errors[r] = RowError::kAllNegInf;
      else if (job.mode[r] == Mode::kGreedy) {
        std::fill_n(job.out.data() + r * draws, draws, best.amax_id);
      }
    }
    sd::throw_first_row_error(kOp, "logits", errors);
  }

  // ---- 2. Candidates / masses ----
  std::vector<int64_t> topp_rows, local_rows;
  bool any2 = false;
  for (int64_t r = 0; r < rows; ++r) {
    if (job.mode[r] == Mode::kTopP) topp_rows.push_back(r);
    if (job.mode[r] == Mode::kLocal && !job.gumbel()) local_rows.push_back(r);
    any2 = any2 || job.mode[r] != Mode::kGreedy;
  }
  if (!any2) return;
  const auto piece2 = [&](int q, int64_t r) -> std::size_t {
    const int64_t nq = shard_n(q);
    if (nq == 0) return 0;
    switch (job.mode[r]) {
      case Mode::kGreedy: return 0;
      case Mode::kTopK:
        return static_cast<std::size_t>(std::min(job.p.top_k[r], nq)) * sizeof(Rec<W>);
      case Mode::kTopP: return sizeof(WireTopP);
      case Mode::kLocal:
        return job.gumbel() ? static_cast<std::size_t>(draws) * sizeof(WireGumbel)
                            : sizeof(WireMass);
    }
    return 0;
  };
  const Blocks b2 = make_blocks(size, rows, piece2);
  std::vector<unsigned char> send2(b2.counts[me]);
  const auto& at2 = b2.at[static_cast<std::size_t>(me)];
  sd::parallel_for(rows, job.threads_for(rows), [&](int64_t b, int64_t e) {
    sd::RowScratch& s = sd::thread_scratch();
    for (int64_t r = b; r < e; ++r) {
      if (n == 0 || job.mode[r] == Mode::kGreedy) continue;
      unsigned char* dst = send2.data() + at2[r];
      const W* w = job.weights(r, s);
      sd::RowFilter<W>& f = job.filter_of(s);
      if (job.mode[r] == Mode::kTopK) {
        // The local top min(k, n) positive tokens (filter() with top-k alone; k >= n: all).
        sd::FilterSpec spec;
        spec.top_k = job.p.top_k[r];
        f.filter(w, n, W(1), spec);
        const std::size_t cap = static_cast<std::size_t>(std::min(job.p.top_k[r], n));
        for (std::size_t j = 0; j < cap; ++j) {
          Rec<W> rec{};
          if (j < f.kept_ids.size()) {
            rec.id = static_cast<uint32_t>(f.kept_ids[j] + job.class_offset);
            rec.w = w[f.kept_ids[j]];
          } else {
            rec.id = 0;
            rec.w = W(0);  // padding (real records have w > 0)
          }
          std::memcpy(dst + j * sizeof(Rec<W>), &rec, sizeof rec);
        }
      } else if (job.mode[r] == Mode::kTopP) {
        u128 m = 0, binade[kBinades] = {};
        for (int64_t i = 0; i < n; ++i) {
          const uint64_t q = job.scale.q(static_cast<double>(w[i]));
          m += q;
          const int64_t j = kTopBinade - static_cast<int64_t>(sd::weight_key(w[i]) >> kMantBits);
          if (q > 0 && j >= 0 && j < kBinades) binade[j] += q;
        }
        WireTopP t{};
        t.lo = static_cast<uint64_t>(m);
        t.hi = static_cast<uint64_t>(m >> 64);
        u128 acc = 0;
        for (int j = 0; j < kBinades; ++j) {
          acc += binade[j];
          t.above[j] = static_cast<uint64_t>(acc >> 32);
        }
        if (m > 0) {
          sd::FilterSpec spec;
          spec.top_p = job.p.top_p[r];
          f.filter(w, n, W(1), spec);
          Key tau = std::numeric_limits<Key>::max();
          for (uint32_t id : f.kept_ids) tau = std::min(tau, sd::weight_key(w[id]));
          t.tau = tau;
          t.has = 1;
        }
        std::memcpy(dst, &t, sizeof t);
      } else {
        const double t_min = job.p.min_p[r] * 1.0;
        const bool min_p = job.p.min_p[r] > 0.0;
        if (!job.gumbel()) {
          u128 m = 0;
          for (int64_t i = 0; i < n; ++i) {
            if (w[i] > W(0) && (!min_p || static_cast<double>(w[i]) >= t_min)) {
              m += job.scale.q(static_cast<double>(w[i]));
            }
          }
          const WireMass wm = to_wire(m);
          std::memcpy(dst, &wm, sizeof wm);
          continue;
        }
        const sd::RowRandom rr = sd::row_random(job.p, r, job.seed, job.offset);
        for (int64_t d = 0; d < draws; ++d) {
          const uint64_t off = rr.offset + static_cast<uint64_t>(d);
          WireGumbel best{-kInf, -1};
          for (int64_t i = 0; i < n; ++i) {
            const double wi = static_cast<double>(w[i]);
            if (!(wi > 0) || (min_p && wi < t_min)) continue;
            const auto id = static_cast<uint32_t>(i + job.class_offset);
            const double g = sd::gumbel_key(wi, rr.seed, off, rr.stream, id);
            if (best.id < 0 || g > best.g) best = WireGumbel{g, id};
          }
          std::memcpy(dst + d * sizeof(WireGumbel), &best, sizeof best);
        }
      }
    }
  });
  std::vector<unsigned char> recv2(b2.first[size]);
  comm.all_gather(send2.empty() ? nullptr : send2.data(), recv2.data(), b2.counts.data());

  // Merge: top-k and Gumbel rows are decided; top-p rows get tau_min and M; inverse-CDF rows
  // without filters get each draw's owner and its point inside the owner's share.
  std::vector<Key> tau_min(static_cast<std::size_t>(rows), std::numeric_limits<Key>::max());
  std::vector<u128> mass(static_cast<std::size_t>(rows), 0);
  std::vector<int> owner(static_cast<std::size_t>(rows * draws), -1);
  std::vector<u128> point(static_cast<std::size_t>(rows * draws), 0);
  sd::parallel_for(rows, job.threads_for(rows), [&](int64_t b, int64_t e) {
    sd::RowScratch& s = sd::thread_scratch();
    std::vector<uint32_t> ids;
    std::vector<W> ws;
    for (int64_t r = b; r < e; ++r) {
      const Mode m = job.mode[r];
      if (m == Mode::kTopK) {
        ids.clear();
        ws.clear();
        for (int q : lay.order) {
          const std::size_t base = b2.first[q] + b2.at[q][r];
          const std::size_t cnt = (b2.at[q][r + 1] - b2.at[q][r]) / sizeof(Rec<W>);
          for (std::size_t j = 0; j < cnt; ++j) {
            const auto rec = read_at<Rec<W>>(recv2, base + j * sizeof(Rec<W>));
            if (rec.w > W(0)) {
              ids.push_back(rec.id);
              ws.push_back(rec.w);
            }
          }
        }
        decide(job, r, ids, ws, 0, job.filter_of(s));
      } else if (m == Mode::kTopP) {
        u128 above[kBinades] = {};
        for (int q : lay.order) {
          const auto t = read_at<WireTopP>(recv2, b2.first[q] + b2.at[q][r]);
          mass[r] += from_wire(t.lo, t.hi);
          if (t.has) tau_min[r] = std::min<Key>(tau_min[r], static_cast<Key>(t.tau));
          for (int j = 0; j < kBinades; ++j) above[j] += t.above[j];
        }
        // Candidates: the tokens with key >= max(tau_min, K) hold the global prefix (key >
        // tau_g, plus ties at tau_g), i.e. tau_g >= both bounds, as the prefix is the shortest
        // one whose mass reaches G = ceil(p M): a prefix of every key >= t with mass >= G
        // forces tau_g >= t. t = tau_min: mass{key >= tau_min} = sum_r mass_r{key >= tau_min}
        // >= sum_r ceil(p M_r) >= G (rank r's local prefix lies at keys >= tau_r >= tau_min).
        // t = K, the first binade boundary with sum_r floor(mass_r{w >= 2^-j} / 2^32) * 2^32
        // >= G: a lower bound of the mass at keys >= K.
        const u128 goal = sd::ceil_mul(job.p.top_p[r], mass[r]);
        for (int j = 0; j < kBinades; ++j) {
          if ((above[j] << 32) >= goal) {
            const auto bkey = static_cast<Key>(static_cast<Key>(kTopBinade - j) << kMantBits);
            tau_min[r] = std::max(tau_min[r], bkey);
            break;
          }
        }
      } else if (m == Mode::kLocal && job.gumbel()) {
        for (int64_t d = 0; d < draws; ++d) {
          WireGumbel best{-kInf, -1};
          for (int q : lay.order) {
            const auto g =
                read_at<WireGumbel>(recv2, b2.first[q] + b2.at[q][r] + d * sizeof(WireGumbel));
            if (g.id >= 0 && (best.id < 0 || g.g > best.g)) best = g;  // class order: lowest id
          }
          job.out[r * draws + d] = best.id;
        }
      } else if (m == Mode::kLocal) {
        std::vector<u128> share;
        u128 total = 0;
        for (int q : lay.order) {
          const auto wm = read_at<WireMass>(recv2, b2.first[q] + b2.at[q][r]);
          share.push_back(from_wire(wm.lo, wm.hi));
          total += share.back();
        }
        const sd::RowRandom rr = sd::row_random(job.p, r, job.seed, job.offset);
        for (int64_t d = 0; d < draws; ++d) {
          const uint64_t off = rr.offset + static_cast<uint64_t>(d);
          u128 pt = sd::scale_uniform(total, sd::philox_u64(rr.seed, off, rr.stream, 0));
          for (std::size_t j = 0; j < share.size(); ++j) {
            if (pt < share[j]) {
              owner[r * draws + d] = lay.order[j];
              point[r * draws + d] = pt;
              break;
            }
            pt -= share[j];
          }
        }
      }
    }
  });
  if (topp_rows.empty() && local_rows.empty()) return;

  // ---- 3. Top-p candidates and inverse-CDF owners ----
  const auto count = static_cast<int64_t>(topp_rows.size());
  std::vector<std::vector<Rec<W>>> cand(static_cast<std::size_t>(count));
  std::vector<uint64_t> cand_n(static_cast<std::size_t>(n > 0 ? count : 0));
  if (n > 0) {
    sd::parallel_for(count, job.threads_for(count), [&](int64_t b, int64_t e) {
      sd::RowScratch& s = sd::thread_scratch();
      for (int64_t i = b; i < e; ++i) {
        const int64_t r = topp_rows[static_cast<std::size_t>(i)];
        const W* w = job.weights(r, s);
        const Key lo = std::max<Key>(tau_min[r], 1);  // w > 0
        auto& c = cand[static_cast<std::size_t>(i)];
        for (int64_t j = 0; j < n; ++j) {
          if (sd::weight_key(w[j]) >= lo) {
            Rec<W> rec{};
            rec.id = static_cast<uint32_t>(j + job.class_offset);
            rec.w = w[j];
            c.push_back(rec);
          }
        }
        cand_n[static_cast<std::size_t>(i)] = c.size();
      }
    });
  }
  std::vector<uint64_t> all_n;
  Blocks bn;
  if (count > 0) {
    bn = make_blocks(size, 1, [&](int q, int64_t) {
      return shard_n(q) > 0 ? static_cast<std::size_t>(count) * sizeof(uint64_t) : 0;
    });
    all_n.resize(bn.first[size] / sizeof(uint64_t));
    comm.all_gather(cand_n.data(), all_n.data(), bn.counts.data());
  }
  // Rank q's block: its top-p rows' records, then the ids of the draws it owns (row order).
  const auto piece3 = [&](int q, int64_t i) -> std::size_t {
    if (i < count) {
      if (shard_n(q) == 0) return 0;
      return all_n[bn.first[q] / sizeof(uint64_t) + static_cast<std::size_t>(i)] * sizeof(Rec<W>);
    }
    std::size_t owned = 0;
    for (int o : owner) owned += o == q ? 1 : 0;
    return owned * sizeof(int64_t);
  };
  const Blocks b3 = make_blocks(size, count + 1, piece3);
  std::vector<unsigned char> send3(b3.counts[me]);
  for (int64_t i = 0; i < count; ++i) {
    auto& c = cand[static_cast<std::size_t>(i)];
    if (!c.empty()) std::memcpy(send3.data() + b3.at[me][i], c.data(), c.size() * sizeof(Rec<W>));
  }
  {
    // The draws this rank owns: walk its kept tokens (id order) to the draw's point.
    std::vector<int64_t> mine;
    sd::RowScratch& s = sd::thread_scratch();
    for (int64_t r : local_rows) {
      const W* w = nullptr;
      for (int64_t d = 0; d < draws; ++d) {
        if (owner[r * draws + d] != me) continue;
        if (w == nullptr) w = job.weights(r, s);
        const double t_min = job.p.min_p[r] * 1.0;
        const bool min_p = job.p.min_p[r] > 0.0;
        const u128 pt = point[r * draws + d];
        u128 acc = 0;
        int64_t tok = -1;
        for (int64_t i = 0; i < n && tok < 0; ++i) {
          if (w[i] > W(0) && (!min_p || static_cast<double>(w[i]) >= t_min)) {
            acc += job.scale.q(static_cast<double>(w[i]));
            if (acc > pt) tok = i + job.class_offset;
          }
        }
        mine.push_back(tok);
      }
    }
    if (!mine.empty()) {
      std::memcpy(send3.data() + b3.at[me][count], mine.data(), mine.size() * sizeof(int64_t));
    }
  }
  std::vector<unsigned char> recv3(b3.first[size]);
  comm.all_gather(send3.empty() ? nullptr : send3.data(), recv3.data(), b3.counts.data());
  std::vector<std::size_t> next(static_cast<std::size_t>(size), 0);
  for (int64_t r : local_rows) {
    for (int64_t d = 0; d < draws; ++d) {
      const int q = owner[r * draws + d];
      const std::size_t at = b3.first[q] + b3.at[q][count] + next[q]++ * sizeof(int64_t);
      job.out[r * draws + d] = read_at<int64_t>(recv3, at);
    }
  }
  sd::parallel_for(count, job.threads_for(count), [&](int64_t b, int64_t e) {
    sd::RowScratch& s = sd::thread_scratch();
    std::vector<uint32_t> ids;
    std::vector<W> ws;
    for (int64_t i = b; i < e; ++i) {
      const int64_t r = topp_rows[static_cast<std::size_t>(i)];
      ids.clear();
      ws.clear();
      for (int q : lay.order) {
        const std::size_t base = b3.first[q] + b3.at[q][i];
        const std::size_t cnt = (b3.at[q][i + 1] - b3.at[q][i]) / sizeof(Rec<W>);
        for (std::size_t j = 0; j < cnt; ++j) {
          const auto rec = read_at<Rec<W>>(recv3, base + j * sizeof(Rec<W>));
          ids.push_back(rec.id);
          ws.push_back(rec.w);
        }
      }
      decide(job, r, ids, ws, mass[r], job.filter_of(s));
    }
  });
}

}  // namespace

void sample(Communicator& comm, ConstTensorView logits, TensorView tokens, int64_t class_offset,
            const SamplingParams& params, uint64_t seed, uint64_t offset, const Context& context) {
  std::optional<sd::ExecScope> scope;
  int64_t draws = 1;
  const Layout lay = agree(comm, kOp, [&] {
    scope.emplace(kOp, context, params.threads);
    sd::check_view(kOp, "logits", logits);
    sd::check_float_dtype(kOp, "logits", logits.dtype);
    if (logits.rank() != 2) {
      throw Error(ErrorKind::kShapeMismatch, kOp, "logits", sd::shape_str(logits.shape),
                  "must have rank 2: (batch, this rank's classes)");
    }
    if (class_offset < 0) {
      throw Error(ErrorKind::kInvalidArgument, kOp, "class_offset", std::to_string(class_offset),
                  "must be >= 0");
    }
    sd::check_output_view(kOp, "tokens", tokens);
    if (tokens.dtype != DType::i64) {
      throw Error(ErrorKind::kDTypeMismatch, kOp, "tokens", dtype_name(tokens.dtype),
                  "must be i64");
    }
    const int64_t b = logits.shape[0];
    if (!((tokens.rank() == 1 || tokens.rank() == 2) && tokens.shape[0] == b)) {
      throw Error(
          ErrorKind::kShapeMismatch, kOp, "tokens", sd::shape_str(tokens.shape),
          "must have shape (" + std::to_string(b) + ",) or (" + std::to_string(b) + ", draws)");
    }
    sd::check_no_overlap(kOp, logits, tokens, /*allow_alias=*/false, "tokens", "logits");
    draws = tokens.rank() == 2 ? tokens.shape[1] : 1;
    if (params.processors != nullptr) {
      throw Error(ErrorKind::kUnsupported, kOp, "processors", "given",
                  "logit processors act on global token ids and are not supported by the "
                  "vocabulary-parallel sample; apply them to the logits first");
    }
    sd::check_sampling_params(kOp, params, b, /*vocab=*/0, /*probs=*/false);
    LocalInfo info;
    info.offset = class_offset;
    info.n = logits.shape[1];
    auto key = [&](const char* name, int64_t v) { info.add(name, v); };
    key("the batch of logits", b);
    info.add_dtype("the dtype of logits", logits.dtype);
    key("the rank of tokens", tokens.rank());
    key("the draws per row", draws);
    key("seed", static_cast<int64_t>(seed));
    key("offset", static_cast<int64_t>(offset));
    info.add("method", static_cast<int64_t>(params.method),
             softmax::detail::dist::KeyKind::kSamplingMethod);
    Hash h;
    hash_param(h, params.temperature, b);
    hash_param(h, params.top_k, b);
    hash_param(h, params.top_p, b);
    hash_param(h, params.min_p, b);
    hash_span(h, params.streams);
    hash_span(h, params.seeds);
    hash_span(h, params.offsets);
    info.add_hash("temperature, top_k, top_p, min_p, streams, seeds or offsets", h.value());
    return info;
  });
  const int64_t rows = logits.shape[0];
  if (lay.vocab == 0) {  // the same verdict on every rank
    throw Error(ErrorKind::kInvalidArgument, kOp, "logits", sd::shape_str(logits.shape),
                "the vocabulary must not be empty (every shard is empty)");
  }
  if (lay.vocab >= (int64_t{1} << 32)) {
    throw Error(ErrorKind::kUnsupported, kOp, "logits", std::to_string(lay.vocab) + " classes",
                "the vocabulary must be < 2^32 tokens");
  }
  if (rows == 0 || draws == 0) return;
  const int threads = sd::current_exec().threads;
  auto go = [&](auto tag) {
    using W = decltype(tag);
    Job<W> job{comm,  lay,       logits,       params, seed, offset, rows, logits.shape[1],
               draws, lay.vocab, class_offset, threads};
    job.mode.resize(static_cast<std::size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) job.mode[r] = row_mode(params, r, lay.vocab);
    job.out.assign(static_cast<std::size_t>(rows * draws), -1);
    run(job);
    return std::move(job.out);
  };
  const std::vector<int64_t> out = logits.dtype == DType::f64 ? go(double{}) : go(float{});
  auto* dst = static_cast<int64_t*>(tokens.data);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < draws; ++d) {
      const int64_t o = r * tokens.strides[0] + (tokens.rank() == 2 ? d * tokens.strides[1] : 0);
      dst[o] = out[static_cast<std::size_t>(r * draws + d)];
    }
  }
}

}  // namespace softmax::dist
