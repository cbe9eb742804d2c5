#!/usr/bin/python3
"""bench/sampling_torch.py: the PyTorch peer of bench/sampling_bench.cc (issue 5).

The sort-based sampler most serving code uses (HF transformers' TopK/TopP logits warpers,
vLLM before FlashInfer): softmax(x / T), torch.sort descending, cumsum, mask the tokens whose
preceding mass already reaches top_p (and those past top_k), renormalise, torch.multinomial.
Same shapes, filters and logits as the C++ benchmark: B in {1, 64} x V in {32000, 128256},
"topk50_topp0.9" and "topp0.9", T = 0.8, logits "gauss" N(0, 3^2) and "flat" U[-8, 8), f32,
torch.set_num_threads(1).

Prints one line per case: name (bench_util.hpp convention, impl "torch"), median ms per call,
rows per second.

Usage: /usr/bin/python3 bench/sampling_torch.py [--reps 5] [--threads 1]
"""
import argparse
import statistics
import time

import torch

TEMPERATURE = 0.8


def sort_sample(x, top_k, top_p, gen):
    probs = torch.softmax(x / TEMPERATURE, dim=-1)
    sorted_p, idx = torch.sort(probs, dim=-1, descending=True)
    if top_k > 0:
        sorted_p[:, top_k:] = 0.0
    cum = torch.cumsum(sorted_p, dim=-1)
    total = cum[:, -1:]
    # Keep a token while the mass before it is below top_p of the (top-k) total.
    drop = (cum - sorted_p) >= top_p * total
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    choice = torch.multinomial(sorted_p, 1, generator=gen)
    return idx.gather(-1, choice).squeeze(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    for flat in (False, True):
        for top_k in (50, 0):
            for rows in (1, 64):
                for vocab in (32000, 128256):
                    g = torch.Generator().manual_seed(0x5EED + rows * 7 + vocab)
                    if flat:
                        x = torch.rand(rows, vocab, generator=g) * 16 - 8
                    else:
                        x = torch.randn(rows, vocab, generator=g) * 3
                    times = []
                    for _ in range(args.reps + 1):
                        t0 = time.perf_counter()
                        sort_sample(x, top_k, 0.9, gen)
                        times.append(time.perf_counter() - t0)
                    ms = statistics.median(times[1:]) * 1e3
                    filt = "topk50_topp0.9" if top_k else "topp0.9"
                    name = "torch/sample_%s_%s/%dx%d/f32/t%d" % (
                        filt, "flat" if flat else "gauss", rows, vocab, args.threads)
                    print("%-60s %10.3f ms %12.1f rows/s" % (name, ms, rows / (ms * 1e-3)))


if __name__ == "__main__":
    main()
