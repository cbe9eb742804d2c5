// src/core/attention.cc: softmax::attention, fused scaled-dot-product attention.
// Semantics, shapes and the algorithm: include/softmax/attention.hpp; the kernels and their
// lane layout: src/cpu/attention_kernels.hpp.
//
// Work is cut into items (b, hq, query tile of kAttnQueryTile rows). An item packs its query
// tile transposed (D, kAttnQueryTile) once, then for each fixed key split [s * kAttnKeySplit,
// ...) runs the FlashAttention-2 loop over key tiles of kAttnKeyTile:
//   S = scale * q k^T (kernel) -> transform + masks by selection (here, only on tiles that need
//   them) -> online (max, sum) update and P = exp(S - max) (kernel) -> O = O * alpha + P v.
// Each split's partial (max, sum, O) merges into the row's total in split order. When there
// are fewer items than threads (decode: Sq = 1, long Sk) the splits of an item run in parallel
// into a workspace and are merged afterwards in the same order: the same bits either way.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "src/core/attention_mask.hpp"
#include "src/core/checks.hpp"
#include "src/core/exec.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/attention_kernels.hpp"

namespace softmax {
namespace {

constexpr int64_t kQ = cpu::kAttnQueryTile;
constexpr int64_t kK = cpu::kAttnKeyTile;
constexpr int64_t kSplit = cpu::kAttnKeySplit;
static_assert(kSplit % kK == 0, "a key split holds whole key tiles");
constexpr float kInfF = std::numeric_limits<float>::infinity();

// 64-byte aligned f32 scratch.
struct AlignedBuf {
  std::vector<float> v;
  float* p = nullptr;
  float* get(int64_t n) {
    const auto need = static_cast<std::size_t>(n + 16);
    if (v.size() < need) {
      v.assign(need, 0.0f);
    }
    auto addr = reinterpret_cast<std::uintptr_t>(v.data());
    p = v.data() + ((64 - addr % 64) % 64) / sizeof(float);
    return p;
  }
};

// The online-softmax state of one query tile: per lane (row) max m, sum l, NaN flag, and the
// unnormalised output O^T (Dv, kQ).
struct State {
  std::vector<float> m, l, bad;
  AlignedBuf o;
  float* ot = nullptr;
  void init(int64_t dv) {
    m.assign(kQ, -kInfF);
    l.assign(kQ, 0.0f);
    bad.assign(kQ, 0.0f);
    ot = o.get(std::max<int64_t>(dv, 1) * kQ);
    std::fill(ot, ot + std::max<int64_t>(dv, 1) * kQ, 0.0f);
  }
};

struct Problem {
  const char* op;
  ConstTensorView q, k, v;
  TensorView out;
  const TensorView* lse;
  detail::MaskPlan plan;
  int64_t B, Hq, Hkv, G, Sq, Sk, D, Dv, qtiles, splits;
  const cpu::AttentionKernelTable* kt;
};

// Per-thread scratch.
struct Scratch {
  AlignedBuf qt, st, kbuf, vbuf;
  std::vector<float> alpha = std::vector<float>(kQ);
  std::vector<detail::MaskRow> rows;
};

float load_f32(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::bf16: return detail::bf16_to_f32(static_cast<const uint16_t*>(base)[off]);
    case DType::f16: return detail::f16_to_f32(static_cast<const uint16_t*>(base)[off]);
    default: return static_cast<const float*>(base)[off];
  }
}

// Rows [r0, r0 + n) of a (.., S, X) head slice as f32 rows of stride ld; returns a pointer to
// them, the source itself when it already is contiguous f32.
const float* rows_f32(const Problem& P, const ConstTensorView& t, int64_t head_off, int64_t r0,
                      int64_t n, int64_t x, AlignedBuf& buf, int64_t& ld) {
  const int64_t rs = t.strides[2], cs = t.strides[3];
  if (t.dtype == DType::f32 && cs == 1) {
    ld = rs;
    return static_cast<const float*>(t.data) + head_off + r0 * rs;
  }
  float* dst = buf.get(std::max<int64_t>(n * x, 1));
  ld = x;
  const auto es = static_cast<int64_t>(dtype_size(t.dtype));
  for (int64_t r = 0; r < n; ++r) {
    const int64_t off = head_off + (r0 + r) * rs;
    if (cs == 1) {
      P.kt->widen(static_cast<const char*>(t.data) + off * es, t.dtype, x, dst + r * x);
    } else {
      for (int64_t c = 0; c < x; ++c) dst[r * x + c] = load_f32(t.data, t.dtype, off + c * cs);
    }
  }
  return dst;
}

// Software prefetch of rows [r0, r0 + n) of a head slice (decode streams k and v once, and
// the broadcast access pattern of the kernels hides memory latency poorly). No effect on results.
void prefetch_rows(const ConstTensorView& t, int64_t head_off, int64_t r0, int64_t n, int64_t x) {
  if (n <= 0) return;
  const auto es = static_cast<int64_t>(dtype_size(t.dtype));
  const int64_t row_bytes = x * es;
  const char* base = static_cast<const char*>(t.data);
  for (int64_t r = 0; r < n; ++r) {
    const char* row = base + (head_off + (r0 + r) * t.strides[2]) * es;
    for (int64_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(row + b);
  }
}

// Item (b, h, qtile): pack q transposed into s.qt and the per-row mask views.
void pack_queries(const Problem& P, int64_t b, int64_t h, int64_t i0, int64_t br, Scratch& s) {
  float* qt = s.qt.get(std::max<int64_t>(P.D, 1) * kQ);
  std::fill(qt, qt + std::max<int64_t>(P.D, 1) * kQ, 0.0f);
  const ConstTensorView& q = P.q;
  const int64_t base = b * q.strides[0] + h * q.strides[1];
  for (int64_t i = 0; i < br; ++i) {
    const int64_t off = base + (i0 + i) * q.strides[2];
    for (int64_t x = 0; x < P.D; ++x)
      qt[x * kQ + i] = load_f32(q.data, q.dtype, off + x * q.strides[3]);
  }
  s.rows.clear();
  if (P.plan.elementwise()) {
    for (int64_t i = 0; i < br; ++i) {
      const int64_t idx[4] = {b, h, i0 + i, 0};
      s.rows.emplace_back(P.plan, idx, 4);
    }
  }
}

// Runs key split `sp` of item (b, h, rows [i0, i0 + br)) into `st` (initialised here).
void run_split(const Problem& P, int64_t b, int64_t h, int64_t i0, int64_t br, int64_t sp,
               Scratch& s, State& out) {
  out.init(P.Dv);
  const int64_t ks = sp * kSplit, ke = std::min(P.Sk, ks + kSplit);
  // Union and intersection of the rows' kept key ranges (geometry only).
  int64_t lo_min = P.Sk, hi_max = -1, lo_max = 0, hi_min = P.Sk - 1;
  for (int64_t i = i0; i < i0 + br; ++i) {
    int64_t lo, hi;
    P.plan.key_range(i, P.Sk, lo, hi);
    if (lo > hi) continue;  // this row keeps nothing
    lo_min = std::min(lo_min, lo);
    hi_max = std::max(hi_max, hi);
    lo_max = std::max(lo_max, lo);
    hi_min = std::min(hi_min, hi);
  }
  if (hi_max < 0) return;  // no row keeps any key
  const int64_t hk = h / P.G;
  const int64_t koff = b * P.k.strides[0] + hk * P.k.strides[1];
  const int64_t voff = b * P.v.strides[0] + hk * P.v.strides[1];
  const float scale = static_cast<float>(P.plan.scale);
  float* st = s.st.get(kK * kQ);
  const bool elementwise = P.plan.elementwise();
  for (int64_t t = ks; t < ke; t += kK) {
    const int64_t nk = std::min(kK, ke - t);
    if (t > hi_max || t + nk - 1 < lo_min) continue;  // masked for every row of the tile
    prefetch_rows(P.k, koff, t + kK, std::min(kK, ke - t - kK), P.D);  // the next tile
    prefetch_rows(P.v, voff, t + kK, std::min(kK, ke - t - kK), P.Dv);
    int64_t ldk, ldv;
    const float* kp = rows_f32(P, P.k, koff, t, nk, P.D, s.kbuf, ldk);
    P.kt->scores(s.qt.p, P.D, br, kp, ldk, nk, scale, st);
    const bool inside = t >= lo_max && t + nk - 1 <= hi_min;  // kept for every row by geometry
    if (elementwise || !inside) {
      for (int64_t i = 0; i < br; ++i) {
        int64_t lo, hi;
        P.plan.key_range(i0 + i, P.Sk, lo, hi);
        for (int64_t j = 0; j < nk; ++j) {
          float& x = st[j * kQ + i];
          const int64_t kj = t + j;
          if (kj < lo || kj > hi || (elementwise && !s.rows[i].mask_keeps(kj))) {
            x = -kInfF;  // selection
          } else if (elementwise) {
            x = s.rows[i].finish<float>(x, kj);
          }
        }
      }
    }
    P.kt->online(st, nk, br, out.m.data(), out.l.data(), s.alpha.data(), out.bad.data());
    const float* vp = rows_f32(P, P.v, voff, t, nk, P.Dv, s.vbuf, ldv);
    P.kt->pv(st, nk, br, vp, ldv, P.Dv, s.alpha.data(), out.ot);
  }
}

// total <- merge(total, part), lane by lane for the first br lanes (fixed formula and order).
void merge(const Problem& P, int64_t br, State& total, const State& part) {
  for (int64_t i = 0; i < br; ++i) {
    if (part.bad[i] != 0) total.bad[i] = 1;
    const float mp = part.m[i];
    if (mp == -kInfF) continue;  // the split kept nothing for this row: identity
    const float mt = total.m[i];
    const float mn = std::max(mt, mp);
    const float at = mt == -kInfF ? 0.0f : P.kt->exp_nonpos(mt - mn);
    const float ap = P.kt->exp_nonpos(mp - mn);
    total.l[i] = total.l[i] * at + part.l[i] * ap;
    total.m[i] = mn;
    for (int64_t c = 0; c < P.Dv; ++c) {
      total.ot[c * kQ + i] = total.ot[c * kQ + i] * at + part.ot[c * kQ + i] * ap;
    }
  }
}

// Normalises and writes rows [i0, i0 + br) of (b, h).
void finish(const Problem& P, int64_t b, int64_t h, int64_t i0, int64_t br, const State& t) {
  const TensorView& o = P.out;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (int64_t i = 0; i < br; ++i) {
    const int64_t off = b * o.strides[0] + h * o.strides[1] + (i0 + i) * o.strides[2];
    const bool bad = t.bad[i] != 0;
    const bool empty = t.m[i] == -kInfF;
    for (int64_t c = 0; c < P.Dv; ++c) {
      const double val = bad ? kNaN : empty ? 0.0 : static_cast<double>(t.ot[c * kQ + i] / t.l[i]);
      detail::store_from_double(o.data, o.dtype, off + c * o.strides[3], val);
    }
    if (P.lse) {
      const TensorView& L = *P.lse;
      const float lv = bad     ? std::numeric_limits<float>::quiet_NaN()
                       : empty ? -kInfF
                               : t.m[i] + std::log(t.l[i]);
      detail::store_from_double(L.data, L.dtype,
                                b * L.strides[0] + h * L.strides[1] + (i0 + i) * L.strides[2], lv);
    }
  }
}

void check_rank4(const char* op, const char* arg, const std::vector<int64_t>& shape,
                 const char* dims) {
  if (shape.size() != 4) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + detail::shape_str(shape),
                std::string("must have rank 4: ") + dims);
  }
}

void run(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v,
         const TensorView& out, const TensorView* lse, const MaskOptions& o) {
  const char* op = "attention";
  detail::check_threads(op, o.threads);
  detail::check_view(op, "q", q);
  detail::check_view(op, "k", k);
  detail::check_view(op, "v", v);
  detail::check_output_view(op, "out", out);
  check_rank4(op, "q", q.shape, "(B, Hq, Sq, D)");
  check_rank4(op, "k", k.shape, "(B, Hkv, Sk, D)");
  check_rank4(op, "v", v.shape, "(B, Hkv, Sk, Dv)");
  check_rank4(op, "out", out.shape, "(B, Hq, Sq, Dv)");
  detail::check_attention_dtype(op, "q", q.dtype);
  if (k.dtype != q.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "k", dtype_name(k.dtype),
                std::string("must have q's dtype (") + dtype_name(q.dtype) + ")");
  }
  if (v.dtype != q.dtype) {
    throw Error(ErrorKind::kDTypeMismatch, op, "v", dtype_name(v.dtype),
                std::string("must have q's dtype (") + dtype_name(q.dtype) + ")");
  }
  detail::check_attention_dtype(op, "out", out.dtype);
  const int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2], D = q.shape[3];
  const int64_t Hkv = k.shape[1], Sk = k.shape[2], Dv = v.shape[3];
  if (k.shape[0] != B || k.shape[3] != D) {
    throw Error(ErrorKind::kShapeMismatch, op, "k", "shape " + detail::shape_str(k.shape),
                "must be (B, Hkv, Sk, D) with q's B = " + std::to_string(B) +
                    " and D = " + std::to_string(D));
  }
  if (v.shape[0] != B || v.shape[1] != Hkv || v.shape[2] != Sk) {
    throw Error(ErrorKind::kShapeMismatch, op, "v", "shape " + detail::shape_str(v.shape),
                "must be (B, Hkv, Sk, Dv) with B, Hkv, Sk of q and k (" + std::to_string(B) + ", " +
                    std::to_string(Hkv) + ", " + std::to_string(Sk) + ")");
  }
  if ((Hkv == 0 && Hq != 0) || (Hkv != 0 && Hq % Hkv != 0)) {
    throw Error(ErrorKind::kShapeMismatch, op, "k", "shape " + detail::shape_str(k.shape),
                "its head count Hkv = " + std::to_string(Hkv) +
                    " must divide q's head count Hq = " + std::to_string(Hq) +
                    " (grouped-query attention)");
  }
  detail::check_same_shape(op, "out", {B, Hq, Sq, Dv}, out.shape);
  const double default_scale = D > 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0;
  Problem P{op,
            q,
            k,
            v,
            out,
            lse,
            detail::make_mask_plan(op, o, {B, Hq, Sq, Sk}, default_scale),
            B,
            Hq,
            Hkv,
            Hkv ? Hq / Hkv : 1,
            Sq,
            Sk,
            D,
            Dv,
            (Sq + kQ - 1) / kQ,
            std::max<int64_t>(1, (Sk + kSplit - 1) / kSplit),
            &cpu::attention_kernels()};
  detail::check_disjoint(op, "q", q, "out", out);
  detail::check_disjoint(op, "k", k, "out", out);
  detail::check_disjoint(op, "v", v, "out", out);
  if (P.plan.bias) detail::check_disjoint(op, "bias", o.bias, "out", out);
  if (P.plan.mask) detail::check_disjoint(op, "mask", o.mask, "out", out);
  if (lse) {
    detail::check_output_view(op, "lse", *lse);
    if (lse->dtype != DType::f32) {
      throw Error(ErrorKind::kDTypeMismatch, op, "lse", dtype_name(lse->dtype), "must be f32");
    }
    detail::check_same_shape(op, "lse", {B, Hq, Sq}, lse->shape);
    detail::check_disjoint(op, "q", q, "lse", *lse);
    detail::check_disjoint(op, "k", k, "lse", *lse);
    detail::check_disjoint(op, "v", v, "lse", *lse);
    detail::check_disjoint(op, "out", out, "lse", *lse);
    if (P.plan.bias) detail::check_disjoint(op, "bias", o.bias, "lse", *lse);
    if (P.plan.mask) detail::check_disjoint(op, "mask", o.mask, "lse", *lse);
  }
  const int64_t items = B * Hq * P.qtiles;
  if (items == 0) return;
  const int threads = detail::current_exec().threads;
  // Items in (b, h, zigzag tile) order: tiles 0, n-1, 1, n-2, ... so that the contiguous item
  // ranges of the threads get similar causal work. (Which thread runs an item never changes
  // its result.)
  auto item_pos = [&](int64_t it, int64_t& b, int64_t& h, int64_t& i0, int64_t& br) {
    const int64_t z = it % P.qtiles;
    const int64_t tile = z % 2 == 0 ? z / 2 : P.qtiles - 1 - z / 2;
    h = (it / P.qtiles) % Hq;
    b = it / (P.qtiles * Hq);
    i0 = tile * kQ;
    br = std::min(kQ, Sq - i0);
  };
  const bool split_parallel = items < threads && P.splits > 1;
  if (!split_parallel) {
    const int outer =
        items * std::max<int64_t>(Sk, 1) * std::max<int64_t>(D, 1) >= detail::kMinParallelElems
            ? threads
            : 1;
    detail::parallel_for(items, outer, [&](int64_t ib, int64_t ie) {
      Scratch s;
      State total, part;
      for (int64_t it = ib; it < ie; ++it) {
        int64_t b, h, i0, br;
        item_pos(it, b, h, i0, br);
        pack_queries(P, b, h, i0, br, s);
        total.init(Dv);
        for (int64_t sp = 0; sp < P.splits; ++sp) {
          run_split(P, b, h, i0, br, sp, s, part);
          merge(P, br, total, part);
        }
        finish(P, b, h, i0, br, total);
      }
    });
    return;
  }
  // Split-parallel (decode): every (item, split) pair is a task; partials merge in split order.
  const int64_t tasks = items * P.splits;
  std::vector<State> parts(static_cast<std::size_t>(tasks));
  detail::parallel_for(tasks, threads, [&](int64_t tb, int64_t te) {
    Scratch s;
    int64_t packed = -1;
    for (int64_t task = tb; task < te; ++task) {
      const int64_t it = task / P.splits, sp = task % P.splits;
      int64_t b, h, i0, br;
      item_pos(it, b, h, i0, br);
      if (packed != it) {
        pack_queries(P, b, h, i0, br, s);
        packed = it;
      }
      run_split(P, b, h, i0, br, sp, s, parts[static_cast<std::size_t>(task)]);
    }
  });
  for (int64_t it = 0; it < items; ++it) {
    int64_t b, h, i0, br;
    item_pos(it, b, h, i0, br);
    State total;
    total.init(Dv);
    for (int64_t sp = 0; sp < P.splits; ++sp)
      merge(P, br, total, parts[static_cast<std::size_t>(it * P.splits + sp)]);
    finish(P, b, h, i0, br, total);
  }
}

}  // namespace

void attention(ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out,
               const MaskOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("attention", context, options.threads);
  run(q, k, v, out, nullptr, options);
}

void attention(ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out,
               TensorView lse, const MaskOptions& options, const Context& context) {
  const detail::ExecScope exec_scope("attention", context, options.threads);
  run(q, k, v, out, &lse, options);
}

}  // namespace softmax
