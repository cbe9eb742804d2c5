"""Attention forward + backward: the fused FlashAttention-2 backward (softmax.attention under
torch autograd, which calls softmax.attention_backward) against materialise-and-backprop in
torch (matmul, softmax, matmul; autograd), on the forward benchmark's shapes (f32, B = 1,
H = 8, S in {512, 2048}, D in {64, 128}; no mask and causal). One thread each, medians.

    PYTHONPATH=build/python /usr/bin/python3 bench/attention_backward.py [--repeat 5] [--threads 1]

Target (docs/python.md): fused >= 2x faster than materialised at S = 2048.
"""
import argparse
import math
import statistics
import time

import torch

import softmax as sm


def materialised(q, k, v, causal):
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        L = s.shape[-1]
        s = s.masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), float("-inf"))
    return torch.matmul(torch.softmax(s, -1), v)


def fused(q, k, v, causal):
    return sm.attention(q, k, v, causal=causal, threads=torch.get_num_threads())


def step_ms(fn, q, k, v, causal, dout, repeat):
    times = []
    for _ in range(repeat + 1):
        for t in (q, k, v):
            t.grad = None
        t0 = time.perf_counter()
        fn(q, k, v, causal).backward(dout)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times[1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{'S':>5} {'D':>4} {'causal':>6} {'fused ms':>9} {'torch ms':>9} {'speedup':>8}")
    for s in (512, 2048):
        for d in (64, 128):
            for causal in (False, True):
                q, k, v = (torch.rand(1, 8, s, d).mul_(2).sub_(1).requires_grad_() for _ in range(3))
                dout = torch.randn(1, 8, s, d)
                a = step_ms(fused, q, k, v, causal, dout, args.repeat)
                b = step_ms(materialised, q, k, v, causal, dout, args.repeat)
                print(f"{s:5d} {d:4d} {str(causal):>6} {a:9.1f} {b:9.1f} {b / a:7.2f}x")


if __name__ == "__main__":
    main()
