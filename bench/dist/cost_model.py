#!/usr/bin/env python3
"""Alpha-beta cost model of the vocabulary-parallel softmax (bench/results/dist.md).

Per call and rank, for `rows` rows of V classes over R ranks (f32):
  compute   rows * (V / R_busy) * c            c: seconds per element (measured at R = 1)
  latency   n_coll * alpha * ceil(log2 R)      tree/recursive-doubling collectives
  bandwidth beta * bytes received per rank
ours (default layout): 2 collectives, an agreement all-gather of 512 B per rank and an all-gather
  of 40 B per 32768-class chunk per row; only ceil(V / 32768) ranks hold classes (R_busy), since
  the bit-identical layout deals whole chunks.
ours (even layout, within bounds but not bit-identical): same bytes per chunk, R_busy = R and
  ceil(V / R / 32768) chunks per rank.
megatron: 2 all-reduces of 4 B per row (ring: 2 (R - 1) / R of the payload), R_busy = R.
cross_entropy: ours adds one all-gather of 16 B per row (the target logit: 3 collectives with the
  agreement); Megatron's fused loss all-reduces 4 B then 8 B per row (2 collectives).
Parameters (stated, not measured here: typical of one InfiniBand HDR link between nodes):
  alpha = 2 us per collective step, beta = 1 / (20 GB/s).
  python3 bench/dist/cost_model.py [c_seconds_per_element]
"""
import math
import sys

ALPHA = 2e-6
BETA = 1 / 20e9
CHUNK = 32768


def ours(rows, v, r, c, even, ce=False):
    chunks = math.ceil(v / CHUNK)
    busy = r if even else min(r, chunks)
    per_rank_chunks = math.ceil(v / r / CHUNK) if even else math.ceil(chunks / busy)
    total_chunks = per_rank_chunks * busy
    recv = 512 * (r - 1) + 40 * rows * (total_chunks - per_rank_chunks)
    if ce:
        recv += 16 * rows * (r - 1)
    steps = math.ceil(math.log2(r)) if r > 1 else 0
    n_coll = 3 if ce else 2
    return rows * math.ceil(v / busy) * c, n_coll * ALPHA * steps, BETA * recv


def megatron(rows, v, r, c, ce=False):
    steps = math.ceil(math.log2(r)) if r > 1 else 0
    payload = (4 + 8) if ce else (4 + 4)
    recv = (2 * (r - 1) / r) * payload * rows
    return rows * math.ceil(v / r) * c, 2 * ALPHA * steps, BETA * recv


def main():
    c = float(sys.argv[1]) if len(sys.argv) > 1 else 2.2e-9
    print(f"alpha = {ALPHA * 1e6:.1f} us, beta = 1/({1 / BETA / 1e9:.0f} GB/s), c = {c * 1e9:.2f} ns/element")
    for ce in (False, True):
        print()
        print("cross_entropy" if ce else "softmax family")
        print("| V | rows | R | ours default: compute / comm (us) | ours even split | Megatron-style |")
        print("|---|---|---|---|---|---|")
        for v in (131072, 1 << 20):
            for rows in (1, 32):
                for r in (8, 64, 512):
                    a = ours(rows, v, r, c, False, ce)
                    b = ours(rows, v, r, c, True, ce)
                    m = megatron(rows, v, r, c, ce)
                    f = lambda t: f"{t[0] * 1e6:.1f} / {(t[1] + t[2]) * 1e6:.1f}"
                    print(f"| {v} | {rows} | {r} | {f(a)} | {f(b)} | {f(m)} |")


if __name__ == "__main__":
    main()
