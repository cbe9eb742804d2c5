"""Per-call overhead of the Python module on small inputs: softmax of a 1 x 512 float32 row
(and the other single-row ops) on a torch tensor and a NumPy array, against torch.softmax on
the same tensor. Medians of many timed batches, in microseconds per call.

    PYTHONPATH=build/python OMP_NUM_THREADS=1 /usr/bin/python3 bench/python_overhead.py

Target (docs/python.md): our call within 2x of torch.softmax's wall time.
"""
import argparse
import statistics
import timeit

import torch

import softmax as sm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512, help="row length")
    ap.add_argument("--number", type=int, default=2000, help="calls per timed batch")
    ap.add_argument("--repeat", type=int, default=25, help="timed batches (the median is kept)")
    args = ap.parse_args()
    torch.manual_seed(0)
    t = torch.randn(1, args.n)
    a = t.numpy().copy()
    tg = t.clone().requires_grad_()
    bf = t.bfloat16()
    cases = [
        ("torch.softmax(t, -1)", lambda: torch.softmax(t, -1)),
        ("softmax.softmax(t)   torch f32", lambda: sm.softmax(t)),
        ("softmax.softmax(a)   numpy f32", lambda: sm.softmax(a)),
        ("softmax._core.softmax(a)", lambda: sm._core.softmax(a)),
        ("softmax.softmax(t_bf16)", lambda: sm.softmax(bf)),
        ("torch.softmax(t_bf16, -1)", lambda: torch.softmax(bf, -1)),
        ("softmax.log_softmax(t)", lambda: sm.log_softmax(t)),
        ("torch.log_softmax(t, -1)", lambda: torch.log_softmax(t, -1)),
        ("softmax.logsumexp(t)", lambda: sm.logsumexp(t)),
        ("torch.logsumexp(t, -1)", lambda: torch.logsumexp(t, -1)),
        ("softmax.softmax(t_requires_grad)", lambda: sm.softmax(tg)),
        ("torch.softmax(t_requires_grad, -1)", lambda: torch.softmax(tg, -1)),
    ]
    # Round robin: batch r of every case runs before batch r + 1 of any, so load from other
    # processes spreads over all cases alike.
    samples = {name: [] for name, _ in cases}
    for name, fn in cases:
        fn()
    for _ in range(args.repeat):
        for name, fn in cases:
            samples[name].append(timeit.timeit(fn, number=args.number) / args.number * 1e6)
    res = {name: statistics.median(v) for name, v in samples.items()}
    print(f"{'call (1 x %d float32)' % args.n:40s} {'us/call':>9s}")
    for name, _ in cases:
        print(f"{name:40s} {res[name]:9.2f}")
    base = res["torch.softmax(t, -1)"]
    for name in ("softmax.softmax(t)   torch f32", "softmax.softmax(a)   numpy f32"):
        print(f"ratio {name.split('(')[1].split(')')[0]:>3s} / torch.softmax: {res[name] / base:.2f}x")


if __name__ == "__main__":
    main()
