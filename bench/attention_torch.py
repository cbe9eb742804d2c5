#!/usr/bin/python3
"""bench/attention_torch.py: the PyTorch 1.13 peer of bench/attention_bench.cc.

Times materialise-then-softmax attention in PyTorch (q @ k^T * scale, masked_fill of the causal
mask, softmax, @ v: PyTorch 1.13 has no fused scaled_dot_product_attention) with
torch.set_num_threads(1), f32, B = 1, H = 8, at the C++ benchmark's shapes: S in {512, 2048}
(8192 needs 2 GiB of scores: --big), D in {64, 128}, causal top-left; and decode (Sq = 1,
Sk = 8192). Prints one line per case: name, median wall ms, median process CPU ms (comparable
with the C++ benchmark's CPU time when the machine is shared).

Usage: /usr/bin/python3 bench/attention_torch.py [--reps 5] [--threads 1] [--big]
"""
import argparse
import math
import statistics
import time

import torch


def attention(q, k, v, mask):
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--big", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [(s, s, d) for s in ([512, 2048] + ([8192] if args.big else [])) for d in (64, 128)]
    cases += [(1, 8192, 64), (1, 8192, 128)]
    for sq, sk, d in cases:
        q = torch.rand(1, 8, sq, d) * 2 - 1
        k = torch.rand(1, 8, sk, d) * 2 - 1
        v = torch.rand(1, 8, sk, d) * 2 - 1
        # Top-left causal for prefill; decode (bottom-right) keeps every key: no mask.
        mask = None if sq == 1 else torch.ones(sq, sk, dtype=torch.bool).triu(1)
        attention(q, k, v, mask)  # warm-up
        wall, cpu = [], []
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            attention(q, k, v, mask)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        name = f"torch/attention/B1xH8x{sq}x{sk}x{d}/f32/t{args.threads}"
        print(f"{name:48s} {statistics.median(wall) * 1e3:10.2f} ms wall "
              f"{statistics.median(cpu) * 1e3:10.2f} ms cpu")


if __name__ == "__main__":
    main()
