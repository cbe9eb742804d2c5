#!/usr/bin/python3
"""bench/serving_torch.py: the PyTorch peer of bench/serving_bench.cc (issue 16).

The same serving pipeline in torch ops, as Hugging Face's logits processors and vLLM's torch
sampler write it: counts of the previous tokens by scatter_add, the CTRL repetition penalty
(torch.where on the sign), presence / frequency penalties, logit bias by index_add, banned and
EOS ids masked to -inf, per-row temperature, top-k / top-p by torch.sort + cumsum, min-p, then
torch.multinomial. Same shapes, per-row parameters and processors as the C++ benchmark: B in
{1, 64, 256} x V = 128256, f32, torch.set_num_threads(1). "plain" is the same without the
processors. Speculative verification (Leviathan et al. rejection rule with the residual
max(0, p - q) and the bonus token) at k in {4, 8}, B in {1, 8}.

Prints one line per case: name (bench_util.hpp convention, impl "torch"), median ms per call
(wall clock) and median CPU ms per call (process time).

Usage: /usr/bin/python3 bench/serving_torch.py [--reps 7] [--threads 1]
"""
import argparse
import statistics
import time

import torch

V = 128256


def params(rows):
    g = torch.Generator().manual_seed(rows)
    t = torch.tensor([0.6 + 0.1 * (r % 5) for r in range(rows)])
    k = torch.tensor([[0, 50, 100, 40][r % 4] for r in range(rows)])
    p = torch.tensor([[0.9, 0.95, 1.0][r % 3] for r in range(rows)])
    mp = torch.tensor([0.05 if r % 2 else 0.0 for r in range(rows)])
    prev = torch.randint(0, V, (rows, 128), generator=g).repeat_interleave(2, dim=1)
    bias_ids = torch.randint(0, V, (16,), generator=g)
    bias = torch.tensor([2.0 if j % 2 else -2.0 for j in range(16)])
    return t, k, p, mp, prev, bias_ids, bias


def processors(x, prev, bias_ids, bias):
    counts = torch.zeros_like(x).scatter_add_(1, prev, torch.ones(prev.shape, dtype=x.dtype))
    seen = counts > 0
    rep = torch.where(seen, torch.tensor(1.1), torch.tensor(1.0))
    x = torch.where(x > 0, x / rep, x * rep)
    x = x - 0.3 * counts - 0.5 * seen.to(x.dtype)
    x = x.index_add(1, bias_ids, bias.expand(x.shape[0], -1))
    x[:, [1, 2, 3, 4, V - 1]] = -float("inf")  # banned ids, EOS before min_tokens
    return x


def filters_and_draw(x, t, k, p, mp, gen):
    probs = torch.softmax(x / t[:, None], dim=-1)
    sp, idx = torch.sort(probs, dim=-1, descending=True)
    kk = torch.where(k > 0, k, torch.tensor(x.shape[1]))
    ranks = torch.arange(x.shape[1]).expand_as(sp)
    sp = sp.masked_fill(ranks >= kk[:, None], 0.0)
    cum = torch.cumsum(sp, dim=-1)
    sp = sp.masked_fill((cum - sp) >= p[:, None] * cum[:, -1:], 0.0)
    sp = sp.masked_fill(sp < mp[:, None] * sp[:, :1], 0.0)
    return idx.gather(-1, torch.multinomial(sp, 1, generator=gen)).squeeze(-1)


def speculative(drafts, q, p, gen):
    b, k = drafts.shape
    pt = p[:, :k].gather(2, drafts[..., None]).squeeze(-1)
    qt = q.gather(2, drafts[..., None]).squeeze(-1)
    u = torch.rand(b, k, generator=gen, dtype=p.dtype)
    accept = u * qt < pt
    n_acc = torch.cumprod(accept.to(torch.int64), 1).sum(1)
    rows = torch.arange(b)
    j = n_acc.clamp(max=k - 1)
    resid = (p[rows, j] - q[rows, j]).clamp(min=0)
    resid = torch.where(resid.sum(-1, keepdim=True) > 0, resid, p[rows, j])
    corr = torch.multinomial(resid, 1, generator=gen).squeeze(-1)
    bonus = torch.multinomial(p[:, k], 1, generator=gen).squeeze(-1)
    last = torch.where(n_acc == k, bonus, corr)
    out = torch.full((b, k + 1), -1, dtype=torch.int64)
    mask = torch.arange(k + 1)[None] < n_acc[:, None]
    out[:, :k] = torch.where(mask[:, :k], drafts, out[:, :k])
    out[rows, n_acc] = last
    return n_acc, out


def timeit(fn, reps):
    wall, cpu = [], []
    for _ in range(reps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall[1:]) * 1e3, statistics.median(cpu[1:]) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    for rows in (1, 64, 256):
        x = torch.randn(rows, V, generator=torch.Generator().manual_seed(0x5EED + rows)) * 3
        t, k, p, mp, prev, bias_ids, bias = params(rows)
        cases = {
            "sample_plain_perrow": lambda: filters_and_draw(x, t, k, p, mp, gen),
            "sample_serving": lambda: filters_and_draw(processors(x, prev, bias_ids, bias), t, k, p, mp, gen),
        }
        for name, fn in cases.items():
            ms, cpu = timeit(fn, args.reps)
            print("%-55s %9.2f ms %9.2f cpu_ms" % ("torch/%s/%dx%d/f32/t%d" % (name, rows, V, args.threads), ms, cpu))
    for k in (4, 8):
        for rows in (1, 8):
            g = torch.Generator().manual_seed(7)
            lt = torch.randn(rows, k + 1, V, generator=g) * 3
            p = torch.softmax(lt, -1)
            q = torch.softmax(lt[:, :k] + torch.randn(rows, k, V, generator=g), -1)
            drafts = torch.multinomial(q.reshape(-1, V), 1, generator=g).reshape(rows, k)
            ms, cpu = timeit(lambda: speculative(drafts, q, p, gen), args.reps)
            print("%-55s %9.2f ms %9.2f cpu_ms" % ("torch/speculative_k%d/%dx%d/f32/t%d" % (k, rows, V, args.threads), ms, cpu))


if __name__ == "__main__":
    main()
