#!/usr/bin/python3
"""bench/cross_entropy_torch.py: the PyTorch peer of bench/cross_entropy_bench.cc.

Times log_softmax + nll_loss (reduction mean) + backward, the unfused PyTorch path, with
torch.set_num_threads(1), at the shapes of the fused cross-entropy benchmark, f32 and bf16.
Prints one line per case: name, median wall ms per forward + backward, GB/s (one read of the
logits and one write of the gradient, the same convention as the C++ benchmark), and the median
process CPU time (comparable with the C++ benchmark's cpu_time when the machine is shared).

Usage: /usr/bin/python3 bench/cross_entropy_torch.py [--reps 5] [--shapes 4096x32000,512x128256]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--shapes", default="4096x32000,512x128256")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for shape in args.shapes.split(","):
        rows, c = (int(v) for v in shape.split("x"))
        for dtype, name in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            x = (torch.rand(rows, c) * 16 - 8).to(dtype).requires_grad_(True)
            t = torch.randint(0, c, (rows,))
            times, cpu = [], []
            for _ in range(args.reps + 1):
                x.grad = None
                t0, c0 = time.perf_counter(), time.process_time()
                loss = F.nll_loss(F.log_softmax(x, dim=1), t)
                loss.backward()
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            ms = statistics.median(times[1:]) * 1e3
            cpu_ms = statistics.median(cpu[1:]) * 1e3
            gbps = 2 * x.numel() * x.element_size() / (ms * 1e-3) / 1e9
            print(f"torch/cross_entropy_fwd_bwd/{shape}/{name}/t{args.threads}  {ms:9.2f} ms  "
                  f"{gbps:6.2f} GB/s  (process CPU {cpu_ms:9.2f} ms: the figure to compare "
                  f"while the machine is shared)")


if __name__ == "__main__":
    main()
