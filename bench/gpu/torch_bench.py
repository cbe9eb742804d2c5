#!/usr/bin/env python3
"""bench/gpu/torch_bench.py: torch's figures for the shapes of softmax_gpu_bench, and the table.

Reads the JSON lines of softmax_gpu_bench (argument 1), times torch on the same shapes with CUDA
events (torch.softmax / log_softmax forward, their backward through autograd, F.cross_entropy
forward + backward, and torch's sort-based top-p sampling of 64 x 128256 logits), and writes the
markdown table (argument 2, bench/results/gpu.md). Without torch or CUDA it writes our figures
alone and says so. Usage: torch_bench.py ours.jsonl gpu.md [--quick]
"""
import json
import statistics
import sys


def time_ms(fn, reps):
    import torch
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)


def torch_ms(row, reps):
    import torch
    import torch.nn.functional as F
    dt = {"f32": torch.float32, "bf16": torch.bfloat16}[row["dtype"]]
    m, n = row["rows"], row["n"]
    op = row["op"]
    x = torch.randn(m, n, device="cuda", dtype=dt) * 3
    if op == "copy":
        y = torch.empty_like(x)
        return time_ms(lambda: y.copy_(x), reps)
    if op in ("softmax", "log_softmax"):
        f = torch.softmax if op == "softmax" else torch.log_softmax
        return time_ms(lambda: f(x, -1), reps)
    if op in ("softmax_backward", "log_softmax_backward"):
        xr = x.clone().requires_grad_(True)
        f = torch.softmax if op == "softmax_backward" else torch.log_softmax
        y = f(xr, -1)
        g = torch.randn_like(y)
        return time_ms(lambda: torch.autograd.grad(y, xr, g, retain_graph=True), reps)
    if op == "cross_entropy_fwd_bwd":
        xr = x.clone().requires_grad_(True)
        t = torch.randint(0, n, (m,), device="cuda")

        def step():
            loss = F.cross_entropy(xr, t)
            torch.autograd.grad(loss, xr)
        return time_ms(step, reps)
    return None


def torch_top_p(reps):
    import torch
    x = torch.randn(64, 128256, device="cuda") * 3

    def step():
        probs = torch.softmax(x, -1)
        sp, si = torch.sort(probs, descending=True, dim=-1)
        cum = sp.cumsum(-1)
        sp = sp.masked_fill(cum - sp > 0.9, 0.0)
        tok = torch.multinomial(sp, 1)
        return si.gather(-1, tok)
    return time_ms(step, reps)


def main():
    ours_path, out_path = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    rows = [json.loads(l) for l in open(ours_path) if l.strip().startswith("{")]
    have_torch = False
    note = ""
    try:
        import torch
        have_torch = torch.cuda.is_available()
        note = f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}"
    except Exception as e:  # noqa: BLE001 - any import failure means no torch column
        note = f"torch unavailable ({e.__class__.__name__}): ours only"
    reps = 5 if quick else 20
    lines = ["# GPU benchmark (scripts/gpu-check.sh)", "",
             f"Machine: {note}. Median of {reps} runs, CUDA events. GB/s counts the bytes the op "
             "must move (read + write); `% copy` is against a device-to-device copy of the same "
             "bytes; `x torch` is torch's time over ours.", "",
             "| op | dtype | rows x n | strategy | ours ms | ours GB/s | % copy | torch ms | x torch |",
             "|---|---|---|---|---|---|---|---|---|"]
    speedups = {}
    for r in rows:
        t_ms = torch_ms(r, reps) if have_torch else None
        pct = 100.0 * r["gbps"] / r["copy_gbps"] if r["copy_gbps"] else 0.0
        sp = (t_ms / r["ms"]) if t_ms else None
        if sp and r["op"] != "copy":
            speedups.setdefault((r["op"], r["dtype"], r["rows"] == 4096 and r["n"] <= 12672), []).append(sp)
        lines.append(f"| {r['op']} | {r['dtype']} | {r['rows']} x {r['n']} | {r['strategy']} | "
                     f"{r['ms']:.4f} | {r['gbps']:.0f} | {pct:.0f}% | "
                     f"{'' if t_ms is None else f'{t_ms:.4f}'} | {'' if sp is None else f'{sp:.2f}'} |")
    lines += ["", "Average speed-up over torch on QuACK's grid (M = 4096, N = 256..12672):", ""]
    for (op, dt, grid), v in sorted(speedups.items()):
        if grid:
            lines.append(f"- {op} {dt}: {statistics.mean(v):.2f}x")
    if have_torch:
        lines += ["", f"torch sort-based top-p sampling, 64 x 128256 f32: {torch_top_p(reps):.4f} ms "
                  "(the CUDA sampler is not implemented yet: no figure of ours)."]
    open(out_path, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
