// src/core/attention_backward.cc: softmax::attention_backward, the FlashAttention-2 backward
// (Dao 2023, arXiv:2307.08691, Algorithm 2) on the CPU. Semantics and shapes:
// include/softmax/attention.hpp.
//
// Never materialises the (Sq, Sk) scores: every (query tile, key tile) pair recomputes its
// score tile with the forward's kernels (the same bits as the forward), applies the forward's
// transform and masks (src/core/attention_mask.hpp), turns it into probabilities from the saved
// logsumexp, P = exp(x - lse), and then
//   dP = dO V^T,  dS = P o (dP - delta) * scale (* the softcap tanh factor),
//   delta_i = sum_c dO_ic O_ic,
//   dQ += dS K,  dK += dS^T Q,  dV += P^T dO.
// Two passes so that no output is shared between threads (no atomics; results do not depend on
// the thread count): pass 1 owns a query tile (b, hq, tile) and sums dQ over its key tiles;
// pass 2 owns a key tile (b, hkv, tile) and sums dK, dV over the query tiles of every query
// head of its group (GQA), in a fixed order. Each pass recomputes P (FlashAttention-2 computes
// it once and accumulates dQ with atomics).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "softmax/attention.hpp"
#include "softmax/error.hpp"
#include "src/core/attention_mask.hpp"
#include "src/core/checks.hpp"
#include "src/base/half.hpp"
#include "src/core/rows.hpp"
#include "src/cpu/attention_backward_kernels.hpp"
#include "src/cpu/attention_kernels.hpp"

namespace softmax {
namespace {

constexpr int64_t kT = cpu::kAttnQueryTile;  // query rows and key rows per tile (both 64)
constexpr int64_t kL = cpu::kAttnLanes;
static_assert(cpu::kAttnQueryTile == cpu::kAttnKeyTile && cpu::kAttnKeyTile == kL,
              "the backward swaps the roles of query and key tiles");
constexpr float kInfF = std::numeric_limits<float>::infinity();

// 64-byte aligned f32 scratch.
struct Buf {
  std::vector<float> v;
  float* get(int64_t n) {
    v.assign(static_cast<std::size_t>(std::max<int64_t>(n, 1) + 16), 0.0f);
    const auto addr = reinterpret_cast<std::uintptr_t>(v.data());
    return v.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
};

struct Problem {
  ConstTensorView q, k, v, out, lse, dout;
  TensorView dq, dk, dv;
  detail::MaskPlan plan;
  int64_t B, Hq, Hkv, G, Sq, Sk, D, Dv;
  std::vector<float> delta;  // (B, Hq, Sq): sum_c dO_ic O_ic
  const cpu::AttentionKernelTable* kt;
  const cpu::AttentionBackwardKernelTable* bt;
};

int64_t head_off(const ConstTensorView& t, int64_t b, int64_t h) {
  return b * t.strides[0] + h * t.strides[1];
}

// Rows [r0, r0 + n) of head slice `off` of t as f32 rows (n, x) of stride x.
void rows_f32(const Problem& P, const ConstTensorView& t, int64_t off, int64_t r0, int64_t n,
              int64_t x, float* dst) {
  const auto es = static_cast<int64_t>(dtype_size(t.dtype));
  for (int64_t r = 0; r < n; ++r) {
    const int64_t o = off + (r0 + r) * t.strides[2];
    if (t.strides[3] == 1) {
      P.kt->widen(static_cast<const char*>(t.data) + o * es, t.dtype, x, dst + r * x);
    } else {
      for (int64_t c = 0; c < x; ++c) {
        dst[r * x + c] =
            static_cast<float>(detail::load_as_double(t.data, t.dtype, o + c * t.strides[3]));
      }
    }
  }
}

// The same rows transposed into (x, kL) lanes (zero padding past n).
void rows_transposed(const ConstTensorView& t, int64_t off, int64_t r0, int64_t n, int64_t x,
                     float* dst) {
  std::fill(dst, dst + std::max<int64_t>(x, 1) * kL, 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t o = off + (r0 + r) * t.strides[2];
    for (int64_t c = 0; c < x; ++c) {
      dst[c * kL + r] =
          static_cast<float>(detail::load_as_double(t.data, t.dtype, o + c * t.strides[3]));
    }
  }
}

// Geometry of a (query tile, key tile) pair: false when every pair is masked by causal /
// window; `inside` when every pair is kept by geometry.
bool tile_live(const Problem& P, int64_t i0, int64_t nq, int64_t t, int64_t nk, bool& inside) {
  bool any = false;
  inside = true;
  for (int64_t i = i0; i < i0 + nq; ++i) {
    int64_t lo, hi;
    P.plan.key_range(i, P.Sk, lo, hi);
    if (lo <= hi && lo <= t + nk - 1 && hi >= t) any = true;
    if (lo > t || hi < t + nk - 1) inside = false;
  }
  return any;
}

// The forward's transform and masks (by selection) on the score tile of head (b, h), queries
// [i0, i0 + nq), keys [t, t + nk): entry (i, j) at st[i * si + j * sj]. With softcap, fac gets
// d x / d (scale s) = 1 - tanh^2 at the same place.
void mask_tile(const Problem& P, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t t,
               int64_t nk, bool inside, float* st, int64_t si, int64_t sj, float* fac) {
  const bool elementwise = P.plan.elementwise();
  if (!elementwise && inside) return;
  const float cap = static_cast<float>(P.plan.softcap);
  for (int64_t i = 0; i < nq; ++i) {
    int64_t lo, hi;
    P.plan.key_range(i0 + i, P.Sk, lo, hi);
    const int64_t idx[4] = {b, h, i0 + i, 0};
    const detail::MaskRow row(P.plan, idx, 4);
    for (int64_t j = 0; j < nk; ++j) {
      float& x = st[i * si + j * sj];
      const int64_t kj = t + j;
      if (kj < lo || kj > hi || (elementwise && !row.mask_keeps(kj))) {
        x = -kInfF;
        continue;
      }
      if (!elementwise) continue;
      if (cap > 0) {
        const float th = std::tanh(x / cap);
        fac[i * si + j * sj] = 1.0f - th * th;
      }
      x = row.finish<float>(x, kj);
    }
  }
}

// dpt *= fac entrywise (softcap only) over a (nr, nl) tile.
void apply_fac(const Problem& P, float* dpt, const float* fac, int64_t nr, int64_t nl) {
  if (!(P.plan.softcap > 0)) return;
  for (int64_t r = 0; r < nr; ++r)
    for (int64_t l = 0; l < nl; ++l) dpt[r * kL + l] *= fac[r * kL + l];
}

void store_rows(const TensorView& o, int64_t b, int64_t h, int64_t r0, int64_t n, int64_t x,
                const float* src_t) {
  for (int64_t r = 0; r < n; ++r) {
    const int64_t off = b * o.strides[0] + h * o.strides[1] + (r0 + r) * o.strides[2];
    for (int64_t c = 0; c < x; ++c) {
      detail::store_from_double(o.data, o.dtype, off + c * o.strides[3], src_t[c * kL + r]);
    }
  }
}

struct Scratch {
  Buf qt, dot, kp, vp, st, dp, fac, acc1, acc2;
  std::vector<float> lse = std::vector<float>(kL), delta = std::vector<float>(kL);
  std::vector<float> ones = std::vector<float>(kL, 1.0f);
};

float lse_at(const Problem& P, int64_t b, int64_t h, int64_t i) {
  return static_cast<float>(detail::load_as_double(
      P.lse.data, P.lse.dtype, b * P.lse.strides[0] + h * P.lse.strides[1] + i * P.lse.strides[2]));
}
float delta_at(const Problem& P, int64_t b, int64_t h, int64_t i) {
  return P.delta[static_cast<std::size_t>((b * P.Hq + h) * P.Sq + i)];
}

// Pass 1: dQ of query tile (b, h, [i0, i0 + nq)).
void dq_tile(const Problem& P, int64_t b, int64_t h, int64_t i0, int64_t nq, Scratch& s) {
  const int64_t hk = h / P.G;
  float* qt = s.qt.get(std::max<int64_t>(P.D, 1) * kL);
  float* dot = s.dot.get(std::max<int64_t>(P.Dv, 1) * kL);
  rows_transposed(P.q, head_off(P.q, b, h), i0, nq, P.D, qt);
  rows_transposed(P.dout, head_off(P.dout, b, h), i0, nq, P.Dv, dot);
  std::fill(s.lse.begin(), s.lse.end(), -kInfF);
  std::fill(s.delta.begin(), s.delta.end(), 0.0f);
  for (int64_t i = 0; i < nq; ++i) {
    s.lse[static_cast<std::size_t>(i)] = lse_at(P, b, h, i0 + i);
    s.delta[static_cast<std::size_t>(i)] = delta_at(P, b, h, i0 + i);
  }
  float* dqt = s.acc1.get(std::max<int64_t>(P.D, 1) * kL);
  float* kp = s.kp.get(kT * std::max<int64_t>(P.D, 1));
  float* vp = s.vp.get(kT * std::max<int64_t>(P.Dv, 1));
  float* st = s.st.get(kT * kL);
  float* dp = s.dp.get(kT * kL);
  float* fac = s.fac.get(kT * kL);
  const float scale = static_cast<float>(P.plan.scale);
  for (int64_t t = 0; t < P.Sk; t += kT) {
    const int64_t nk = std::min(kT, P.Sk - t);
    bool inside;
    if (!tile_live(P, i0, nq, t, nk, inside)) continue;
    rows_f32(P, P.k, head_off(P.k, b, hk), t, nk, P.D, kp);
    rows_f32(P, P.v, head_off(P.v, b, hk), t, nk, P.Dv, vp);
    P.kt->scores(qt, P.D, nq, kp, P.D, nk, scale, st);  // st[j][i]
    mask_tile(P, b, h, i0, nq, t, nk, inside, st, 1, kL, fac);
    P.bt->probs(st, nk, nq, s.lse.data(), true);
    P.kt->scores(dot, P.Dv, nq, vp, P.Dv, nk, 1.0f, dp);  // dP[j][i] = dO_i . v_j
    P.bt->dscores(st, dp, nk, nq, s.delta.data(), true, scale);
    apply_fac(P, dp, fac, nk, nq);
    P.kt->pv(dp, nk, nq, kp, P.D, P.D, s.ones.data(), dqt);  // dQ_i += sum_j dS[j][i] k_j
  }
  store_rows(P.dq, b, h, i0, nq, P.D, dqt);
}

// Pass 2: dK, dV of key tile (b, hk, [t, t + nk)).
void dkv_tile(const Problem& P, int64_t b, int64_t hk, int64_t t, int64_t nk, Scratch& s) {
  float* kt = s.qt.get(std::max<int64_t>(P.D, 1) * kL);
  float* vt = s.dot.get(std::max<int64_t>(P.Dv, 1) * kL);
  rows_transposed(P.k, head_off(P.k, b, hk), t, nk, P.D, kt);
  rows_transposed(P.v, head_off(P.v, b, hk), t, nk, P.Dv, vt);
  float* dkt = s.acc1.get(std::max<int64_t>(P.D, 1) * kL);
  float* dvt = s.acc2.get(std::max<int64_t>(P.Dv, 1) * kL);
  float* qp = s.kp.get(kT * std::max<int64_t>(P.D, 1));
  float* dop = s.vp.get(kT * std::max<int64_t>(P.Dv, 1));
  float* st = s.st.get(kT * kL);
  float* dp = s.dp.get(kT * kL);
  float* fac = s.fac.get(kT * kL);
  const float scale = static_cast<float>(P.plan.scale);
  for (int64_t h = hk * P.G; h < (hk + 1) * P.G; ++h) {
    for (int64_t i0 = 0; i0 < P.Sq; i0 += kT) {
      const int64_t nq = std::min(kT, P.Sq - i0);
      bool inside;
      if (!tile_live(P, i0, nq, t, nk, inside)) continue;
      rows_f32(P, P.q, head_off(P.q, b, h), i0, nq, P.D, qp);
      rows_f32(P, P.dout, head_off(P.dout, b, h), i0, nq, P.Dv, dop);
      for (int64_t i = 0; i < nq; ++i) {
        s.lse[static_cast<std::size_t>(i)] = lse_at(P, b, h, i0 + i);
        s.delta[static_cast<std::size_t>(i)] = delta_at(P, b, h, i0 + i);
      }
      P.kt->scores(kt, P.D, nk, qp, P.D, nq, scale, st);  // st[i][j]
      mask_tile(P, b, h, i0, nq, t, nk, inside, st, kL, 1, fac);
      P.bt->probs(st, nq, nk, s.lse.data(), false);
      P.kt->pv(st, nq, nk, dop, P.Dv, P.Dv, s.ones.data(), dvt);  // dV_j += sum_i P[i][j] dO_i
      P.kt->scores(vt, P.Dv, nk, dop, P.Dv, nq, 1.0f, dp);        // dP[i][j] = dO_i . v_j
      P.bt->dscores(st, dp, nq, nk, s.delta.data(), false, scale);
      apply_fac(P, dp, fac, nq, nk);
      P.kt->pv(dp, nq, nk, qp, P.D, P.D, s.ones.data(), dkt);  // dK_j += sum_i dS[i][j] q_i
    }
  }
  store_rows(P.dk, b, hk, t, nk, P.D, dkt);
  store_rows(P.dv, b, hk, t, nk, P.Dv, dvt);
}

void check_shape(const char* op, const char* arg, const std::vector<int64_t>& want,
                 const std::vector<int64_t>& got, const char* dims) {
  if (got.size() != want.size()) {
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + detail::shape_str(got),
                std::string("must have rank ") + std::to_string(want.size()) + ": " + dims);
  }
  detail::check_same_shape(op, arg, want, got);
}

// Shapes, dtypes and overlaps; fills the sizes of P.
void validate(const char* op, Problem& P, const MaskOptions& o) {
  detail::check_threads(op, o.threads);
  const std::pair<const char*, const ConstTensorView*> ins[] = {
      {"q", &P.q}, {"k", &P.k}, {"v", &P.v}, {"out", &P.out}, {"lse", &P.lse}, {"dout", &P.dout}};
  for (const auto& [name, t] : ins) detail::check_view(op, name, *t);
  const std::pair<const char*, const TensorView*> outs[] = {
      {"dq", &P.dq}, {"dk", &P.dk}, {"dv", &P.dv}};
  for (const auto& [name, t] : outs) detail::check_output_view(op, name, *t);
  if (P.q.shape.size() != 4 || P.k.shape.size() != 4 || P.v.shape.size() != 4) {
    const char* arg = P.q.shape.size() != 4 ? "q" : P.k.shape.size() != 4 ? "k" : "v";
    const auto& sh = P.q.shape.size() != 4   ? P.q.shape
                     : P.k.shape.size() != 4 ? P.k.shape
                                             : P.v.shape;
    throw Error(ErrorKind::kShapeMismatch, op, arg, "shape " + detail::shape_str(sh),
                "must have rank 4: q (B, Hq, Sq, D), k (B, Hkv, Sk, D), v (B, Hkv, Sk, Dv)");
  }
  P.B = P.q.shape[0], P.Hq = P.q.shape[1], P.Sq = P.q.shape[2], P.D = P.q.shape[3];
  P.Hkv = P.k.shape[1], P.Sk = P.k.shape[2], P.Dv = P.v.shape[3];
  if ((P.Hkv == 0 && P.Hq != 0) || (P.Hkv != 0 && P.Hq % P.Hkv != 0)) {
    throw Error(ErrorKind::kShapeMismatch, op, "k", "shape " + detail::shape_str(P.k.shape),
                "its head count Hkv = " + std::to_string(P.Hkv) +
                    " must divide q's head count Hq = " + std::to_string(P.Hq) +
                    " (grouped-query attention)");
  }
  P.G = P.Hkv ? P.Hq / P.Hkv : 1;
  check_shape(op, "k", {P.B, P.Hkv, P.Sk, P.D}, P.k.shape, "(B, Hkv, Sk, D)");
  check_shape(op, "v", {P.B, P.Hkv, P.Sk, P.Dv}, P.v.shape, "(B, Hkv, Sk, Dv)");
  check_shape(op, "out", {P.B, P.Hq, P.Sq, P.Dv}, P.out.shape, "(B, Hq, Sq, Dv)");
  check_shape(op, "dout", {P.B, P.Hq, P.Sq, P.Dv}, P.dout.shape, "(B, Hq, Sq, Dv)");
  check_shape(op, "lse", {P.B, P.Hq, P.Sq}, P.lse.shape, "(B, Hq, Sq)");
  check_shape(op, "dq", P.q.shape, P.dq.shape, "q's shape");
  check_shape(op, "dk", P.k.shape, P.dk.shape, "k's shape");
  check_shape(op, "dv", P.v.shape, P.dv.shape, "v's shape");
  detail::check_attention_dtype(op, "q", P.q.dtype);
  for (const auto& [name, t] : ins) {
    if (t == &P.lse) continue;
    if (t != &P.q && t->dtype != P.q.dtype) {
      throw Error(ErrorKind::kDTypeMismatch, op, name, dtype_name(t->dtype),
                  std::string("must have q's dtype (") + dtype_name(P.q.dtype) + ")");
    }
  }
  if (P.lse.dtype != DType::f32) {
    throw Error(ErrorKind::kDTypeMismatch, op, "lse", dtype_name(P.lse.dtype),
                "must be f32 (the forward's logsumexp)");
  }
  for (const auto& [name, t] : outs) detail::check_attention_dtype(op, name, t->dtype);
  const double default_scale = P.D > 0 ? 1.0 / std::sqrt(static_cast<double>(P.D)) : 1.0;
  P.plan = detail::make_mask_plan(op, o, {P.B, P.Hq, P.Sq, P.Sk}, default_scale);
  for (const auto& [oname, ot] : outs) {
    for (const auto& [iname, it] : ins) detail::check_disjoint(op, iname, *it, oname, *ot);
    if (P.plan.bias) detail::check_disjoint(op, "bias", o.bias, oname, *ot);
    if (P.plan.mask) detail::check_disjoint(op, "mask", o.mask, oname, *ot);
  }
  detail::check_disjoint(op, "dq", P.dq, "dk", P.dk);
  detail::check_disjoint(op, "dq", P.dq, "dv", P.dv);
  detail::check_disjoint(op, "dk", P.dk, "dv", P.dv);
}

// delta_i = sum_c dO_ic O_ic (double sum, rounded to f32 once).
void compute_delta(Problem& P, int threads) {
  const int64_t rows = P.B * P.Hq * P.Sq;
  P.delta.assign(static_cast<std::size_t>(rows), 0.0f);
  const int th = rows * P.Dv >= detail::kMinParallelElems ? threads : 1;
  detail::parallel_for(rows, th, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const int64_t i = r % P.Sq, h = (r / P.Sq) % P.Hq, b = r / (P.Sq * P.Hq);
      const int64_t oo = head_off(P.out, b, h) + i * P.out.strides[2];
      const int64_t go = head_off(P.dout, b, h) + i * P.dout.strides[2];
      double acc = 0;
      for (int64_t c = 0; c < P.Dv; ++c) {
        acc += detail::load_as_double(P.out.data, P.out.dtype, oo + c * P.out.strides[3]) *
               detail::load_as_double(P.dout.data, P.dout.dtype, go + c * P.dout.strides[3]);
      }
      P.delta[static_cast<std::size_t>(r)] = static_cast<float>(acc);
    }
  });
}

}  // namespace

void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        TensorView dq, TensorView dk, TensorView dv, const MaskOptions& options) {
  const char* op = "attention_backward";
  Problem P{q,
            k,
            v,
            out,
            lse,
            dout,
            dq,
            dk,
            dv,
            {},
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            {},
            &cpu::attention_kernels(),
            &cpu::attention_backward_kernels()};
  validate(op, P, options);
  const int threads = detail::resolve_threads(options.threads);
  compute_delta(P, threads);
  const int64_t qtiles = (P.Sq + kT - 1) / kT, ktiles = (P.Sk + kT - 1) / kT;
  const int64_t work = P.B * P.Hq * std::max<int64_t>(P.Sq, 1) * std::max<int64_t>(P.Sk, 1) *
                       std::max<int64_t>(P.D + P.Dv, 1);
  const int th = work >= detail::kMinParallelElems ? threads : 1;
  const int64_t items1 = P.B * P.Hq * qtiles;
  detail::parallel_for(items1, th, [&](int64_t ib, int64_t ie) {
    Scratch s;
    for (int64_t it = ib; it < ie; ++it) {
      const int64_t tile = it % qtiles, h = (it / qtiles) % P.Hq, b = it / (qtiles * P.Hq);
      dq_tile(P, b, h, tile * kT, std::min(kT, P.Sq - tile * kT), s);
    }
  });
  const int64_t items2 = P.B * P.Hkv * ktiles;
  detail::parallel_for(items2, th, [&](int64_t ib, int64_t ie) {
    Scratch s;
    for (int64_t it = ib; it < ie; ++it) {
      const int64_t tile = it % ktiles, hk = (it / ktiles) % P.Hkv, b = it / (ktiles * P.Hkv);
      dkv_tile(P, b, hk, tile * kT, std::min(kT, P.Sk - tile * kT), s);
    }
  });
}

}  // namespace softmax
