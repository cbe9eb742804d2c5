"""Per-call overhead of the Python module on small inputs: softmax of a 1 x 512 float32 row
(and the other single-row ops) on a torch tensor and a NumPy array, against torch.softmax on
the same tensor, in one process. Microseconds per call.

    PYTHONPATH=build/python OMP_NUM_THREADS=1 /usr/bin/python3 bench/python_overhead.py

Every round times one batch of `--number` calls of every case, one case after the other
(round robin), so load from other processes falls on all cases alike; the table gives each
case's median over the rounds and its spread (the 10th and 90th percentiles), and the ratio
to torch.softmax is the median of the per-round ratios (each case against torch.softmax's
batch of the same round). Target (docs/python.md): ours within 2x of torch.softmax.

--timer thread counts this thread's CPU time instead of wall time (time.thread_time): on a
machine shared with other jobs, time spent descheduled then does not count.
"""
import argparse
import statistics
import time

import torch

import softmax as sm


def pct(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512, help="row length")
    ap.add_argument("--number", type=int, default=2000, help="calls per timed batch")
    ap.add_argument("--repeat", type=int, default=25, help="rounds (timed batches per case)")
    ap.add_argument("--timer", choices=["wall", "thread"], default="wall",
                    help="wall: time.perf_counter (default); thread: time.thread_time")
    args = ap.parse_args()
    timer = time.perf_counter if args.timer == "wall" else time.thread_time
    torch.manual_seed(0)
    t = torch.randn(1, args.n)
    a = t.numpy().copy()
    tg = t.clone().requires_grad_()
    bf = t.bfloat16()
    base = "torch.softmax(t, -1)"
    cases = [
        (base, lambda: torch.softmax(t, -1)),
        ("softmax.softmax(t)   torch f32", lambda: sm.softmax(t)),
        ("softmax.softmax(a)   numpy f32", lambda: sm.softmax(a)),
        ("softmax._core.softmax(a)", lambda: sm._core.softmax(a)),
        ("softmax.softmax(t_bf16)", lambda: sm.softmax(bf)),
        ("torch.softmax(t_bf16, -1)", lambda: torch.softmax(bf, -1)),
        ("softmax.log_softmax(t)", lambda: sm.log_softmax(t)),
        ("torch.log_softmax(t, -1)", lambda: torch.log_softmax(t, -1)),
        ("softmax.logsumexp(t)", lambda: sm.logsumexp(t)),
        ("torch.logsumexp(t, -1)", lambda: torch.logsumexp(t, -1)),
        ("softmax.sigmoid(t)", lambda: sm.sigmoid(t)),
        ("torch.sigmoid(t)", lambda: torch.sigmoid(t)),
        ("softmax.softmax(t_requires_grad)", lambda: sm.softmax(tg)),
        ("torch.softmax(t_requires_grad, -1)", lambda: torch.softmax(tg, -1)),
    ]
    samples = {name: [] for name, _ in cases}
    for name, fn in cases:  # warm-up (imports, first-call caches)
        for _ in range(100):
            fn()
    for _ in range(args.repeat):
        for name, fn in cases:
            t0 = timer()
            for _ in range(args.number):
                fn()
            samples[name].append((timer() - t0) / args.number * 1e6)
    ratios = {name: [v / b for v, b in zip(samples[name], samples[base])] for name, _ in cases}
    print(f"1 x {args.n} float32, {args.repeat} rounds of {args.number} calls, {args.timer} "
          f"time; torch threads {torch.get_num_threads()}")
    print(f"{'call':40s} {'median us':>10s} {'p10':>7s} {'p90':>7s} {'/ torch.softmax':>16s}")
    for name, _ in cases:
        v = samples[name]
        print(f"{name:40s} {statistics.median(v):10.2f} {pct(v, 0.1):7.2f} {pct(v, 0.9):7.2f} "
              f"{statistics.median(ratios[name]):15.2f}x")
    for name in ("softmax.softmax(t)   torch f32", "softmax.softmax(a)   numpy f32"):
        r = ratios[name]
        print(f"ratio {name.split('(')[1].split(')')[0]:>3s} / torch.softmax: "
              f"{statistics.median(r):.2f}x (p10 {pct(r, 0.1):.2f}, p90 {pct(r, 0.9):.2f})")


if __name__ == "__main__":
    main()
