#!/usr/bin/python3
"""bench/run_cpu.py: the CPU comparison of issue 3 in one script run.

1. Runs the Google Benchmark program (bench/softmax_bench.cc: ours, oneDNN, XNNPACK, memcpy)
   with JSON output and takes the median of its repetitions.
2. Times PyTorch (torch.softmax / log_softmax / logsumexp with out=, torch.set_num_threads 1
   and 2) and NumPy (the max-subtract-exp-sum expression with out=, one thread) on the same
   shapes, rotating buffers the same way, plus a NumPy memcpy (np.copyto) baseline.
3. Writes bench/results/cpu.md (tables per dtype and thread count: GB/s, ratio to memcpy,
   speed-up of ours over each peer, plus the machine), cpu.png (GB/s against row length, one
   line per implementation) and cpu.json (every number, for later analysis).

GB/s = (bytes read + bytes written by an ideal one-read one-write kernel) / median seconds per
call; "x memcpy" divides by the C++ memcpy of the same bytes, same threads, same run.

Usage (from the repository root, after building build-bench with -DSOFTMAX_BUILD_BENCH=ON):
  /usr/bin/python3 bench/run_cpu.py                       # full run, a few minutes
  /usr/bin/python3 bench/run_cpu.py --quick               # smoke test of the harness
  /usr/bin/python3 bench/run_cpu.py --filter 'f32/t1'     # a subset (regex on case names)
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Must match standard_shapes() in bench/bench_util.hpp: (rows, n, rotate).
SHAPES = [(4096, 1024, True), (32, 131072, True), (65536, 64, True), (64, 1024, False),
          (1, 262144, True), (1, 1048576, True), (8, 50257, True)]
OPS = ["softmax", "log_softmax", "logsumexp"]
DTYPES = ["f32", "bf16"]
THREADS = [1, 2]
IMPL_TITLES = {"ours": "ours", "onednn": "oneDNN", "xnnpack": "XNNPACK", "torch": "PyTorch",
               "numpy": "NumPy", "memcpy": "memcpy", "np_copyto": "np.copyto"}
PEERS = ["onednn", "xnnpack", "torch", "numpy"]


def shape_str(rows, n):
    return f"{rows}x{n}"


def key(impl, op, shape, dtype, threads):
    return f"{impl}/{op}/{shape}/{dtype}/t{threads}"


def ideal_bytes(op, rows, n, dtype):
    es = 4 if dtype == "f32" else 2
    return rows * n * es + (rows if op == "logsumexp" else rows * n) * es


# ---------------------------------------------------------------------------------------------
# Machine

def llc_bytes():
    best = 0
    for i in range(8):
        try:
            s = open(f"/sys/devices/system/cpu/cpu0/cache/index{i}/size").read().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1], 1)
        best = max(best, int(s.rstrip("KMG")) * mult)
    return int(os.environ.get("SOFTMAX_BENCH_LLC_BYTES", best or (32 << 20)))


def cpu_idle_fraction(seconds=1.0):
    """Fraction of all CPUs idle over `seconds` (from /proc/stat): other load skews timings."""
    def snap():
        f = open("/proc/stat").readline().split()[1:]
        v = [int(x) for x in f]
        return v[3] + v[4], sum(v)
    i0, t0 = snap()
    time.sleep(seconds)
    i1, t1 = snap()
    return (i1 - i0) / max(1, t1 - t0)


def machine_info():
    info = {"date_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC")}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "L1d cache", "L2 cache", "L3 cache",
                             "Hypervisor vendor", "Thread(s) per core"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    info["kernel"] = platform.release()
    info["python"] = platform.python_version()
    info["numpy"] = np.__version__
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["git"] = rev + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------------------------
# Google Benchmark part

def run_gbench(binary, min_time, reps, filt, rotate_bytes):
    out_path = os.path.join(tempfile.mkdtemp(prefix="softmax_bench_"), "gbench.json")
    cmd = [binary, "--benchmark_format=json", f"--benchmark_out={out_path}",
           "--benchmark_out_format=json", f"--benchmark_min_time={min_time}",
           f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"]
    if filt:
        cmd.append(f"--benchmark_filter={filt}")
    env = dict(os.environ)
    if rotate_bytes:
        env["SOFTMAX_BENCH_ROTATE_BYTES"] = str(rotate_bytes)
    print("run_cpu: " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    data = json.load(open(out_path))
    results, skipped = {}, {}
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"]).replace("/real_time", "")
        if b.get("error_occurred"):
            skipped[name] = b.get("error_message", "error")
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        results[name] = {"gbps": b["gbps"], "seconds": b["real_time"] * unit,
                         "x_memcpy_inline": b.get("x_memcpy"), "label": b.get("label", "")}
    return results, skipped, data.get("context", {})


# ---------------------------------------------------------------------------------------------
# Python peers

def fill_logits(count, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(count, dtype=np.float32) * 16.0 - 8.0).astype(np.float32)


def time_calls(fn, pairs, min_time, min_reps=5, warmup=2):
    """Median seconds of fn(x, y) over calls cycling through the pairs."""
    k = 0
    for _ in range(warmup):
        fn(*pairs[k % len(pairs)])
        k += 1
    times, total = [], 0.0
    pc = time.perf_counter
    while len(times) < min_reps or total < min_time:
        x, y = pairs[k % len(pairs)]
        k += 1
        t0 = pc()
        fn(x, y)
        t = pc() - t0
        times.append(t)
        total += t
    return statistics.median(times)


def run_python_peers(min_time, rotate_bytes, filt):
    import torch
    results = {"_versions": {"torch": torch.__version__}}
    rx = re.compile(filt) if filt else None

    def want(name):
        return rx is None or rx.search(name) is not None

    def np_softmax(x, y):
        m = x.max(axis=-1, keepdims=True)
        np.subtract(x, m, out=y)
        np.exp(y, out=y)
        np.divide(y, y.sum(axis=-1, keepdims=True), out=y)

    def np_log_softmax(x, y):
        m = x.max(axis=-1, keepdims=True)
        np.subtract(x, m, out=y)
        s = np.log(np.exp(y).sum(axis=-1, keepdims=True))
        np.subtract(y, s, out=y)

    def np_logsumexp(x, y):
        m = x.max(axis=-1, keepdims=True)
        y[...] = (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[:, 0]

    np_ops = {"softmax": np_softmax, "log_softmax": np_log_softmax, "logsumexp": np_logsumexp}
    torch_ops = {
        "softmax": lambda x, y: torch._softmax(x, -1, False, out=y),
        "log_softmax": lambda x, y: torch._log_softmax(x, -1, False, out=y),
        "logsumexp": lambda x, y: torch.logsumexp(x, -1, out=y),
    }
    for dtype in DTYPES:
        tdt = torch.float32 if dtype == "f32" else torch.bfloat16
        es = 4 if dtype == "f32" else 2
        for rows, n, rotate in SHAPES:
            s = shape_str(rows, n)
            names = [key(i, o, s, dtype, t) for i in ("torch", "numpy", "np_copyto")
                     for o in OPS + ["copy"] for t in THREADS]
            if not any(want(nm) for nm in names):
                continue
            base = fill_logits(rows * n)
            print(f"run_cpu: python peers {s} {dtype}", file=sys.stderr, flush=True)

            # One set of rotating buffers per shape and dtype, shared by every op and by NumPy
            # (f32 NumPy arrays are views of the same tensors).
            count = max(2, math.ceil(rotate_bytes / (rows * n * es * 2))) if rotate else 1
            src = torch.from_numpy(base.reshape(rows, n)).to(tdt)
            xs = [src.clone() for _ in range(count)]
            ys = [torch.zeros((rows, n), dtype=tdt) for _ in range(count)]
            lse = [torch.zeros((rows,), dtype=tdt) for _ in range(count)]
            for op in OPS:
                pairs = list(zip(xs, lse if op == "logsumexp" else ys))
                for t in THREADS:
                    nm = key("torch", op, s, dtype, t)
                    if not want(nm):
                        continue
                    torch.set_num_threads(t)
                    sec = time_calls(torch_ops[op], pairs, min_time)
                    results[nm] = {"seconds": sec, "gbps": ideal_bytes(op, rows, n, dtype) / sec * 1e-9}
            if dtype == "f32":  # NumPy has no bf16
                np_x = [x.numpy() for x in xs]
                for op in OPS:
                    nm = key("numpy", op, s, dtype, 1)  # NumPy runs these on one thread
                    if not want(nm):
                        continue
                    outs = lse if op == "logsumexp" else ys
                    sec = time_calls(np_ops[op], list(zip(np_x, [y.numpy() for y in outs])), min_time)
                    results[nm] = {"seconds": sec, "gbps": ideal_bytes(op, rows, n, dtype) / sec * 1e-9}
                nm = key("np_copyto", "copy", s, dtype, 1)
                if want(nm):
                    sec = time_calls(lambda x, y: np.copyto(y, x),
                                     list(zip(np_x, [y.numpy() for y in ys])), min_time)
                    results[nm] = {"seconds": sec, "gbps": 2 * rows * n * es / sec * 1e-9}
            del xs, ys, lse
    return results


# ---------------------------------------------------------------------------------------------
# Report

def fmt_gbps(r):
    return "-" if r is None else f"{r['gbps']:.2f}"


def write_markdown(path, res, skipped, info, ctx, args):
    lines = ["# CPU benchmark: softmax, log-softmax, logsumexp", "",
             "Generated by `bench/run_cpu.py` (see [docs/benchmarks.md](../../docs/benchmarks.md)); "
             "every number below comes from one run of that script.", "",
             "## Machine and run", ""]
    for k, v in info.items():
        lines.append(f"- {k}: {v}")
    for k in ("softmax_simd_target", "onednn_version", "llc_bytes", "rotate_bytes"):
        if k in ctx:
            lines.append(f"- {k}: {ctx[k]}")
    lines.append(f"- torch: {res.get('_versions', {}).get('torch', '-')}")
    lines.append(f"- settings: --benchmark_min_time={args.min_time} "
                 f"--benchmark_repetitions={args.reps} (median), Python min time "
                 f"{args.py_min_time} s per case (median of calls)")
    lines += ["",
              "GB/s = (bytes read + bytes written by an ideal one-read one-write kernel) / median "
              "time per call. The number in parentheses is the ratio to the C++ memcpy of the same "
              "bytes with the same thread count, measured in the same run (logsumexp writes one "
              "value per row, so its ideal traffic is about half of memcpy's). Speed-up columns "
              "divide our GB/s by the peer's. Out-of-cache shapes rotate buffers totalling 2x the "
              "last-level cache; 64x1024 is in cache (one buffer pair). NumPy is single-threaded, "
              "so it appears in the t1 tables only; XNNPACK has no log-softmax and no bf16; "
              "'-' means the peer has no such operator or it failed (listed below).", ""]
    for dtype in DTYPES:
        for t in THREADS:
            lines += [f"## {dtype}, {t} thread{'s' if t > 1 else ''}", ""]
            peers = [p for p in PEERS if any(
                k.startswith(p + "/") and k.endswith(f"/{dtype}/t{t}") for k in res)]
            hdr = ["shape", "op", "memcpy GB/s", "ours GB/s (x memcpy)"]
            hdr += [f"{IMPL_TITLES[p]} GB/s (x memcpy)" for p in peers]
            hdr += [f"ours / {IMPL_TITLES[p]}" for p in peers]
            if t == 1 and dtype == "f32":
                hdr.append("np.copyto GB/s")
            lines.append("| " + " | ".join(hdr) + " |")
            lines.append("|" + "---|" * len(hdr))
            for rows, n, rotate in SHAPES:
                s = shape_str(rows, n)
                mc = res.get(key("memcpy", "copy", s, dtype, t))
                for op in OPS:
                    ours = res.get(key("ours", op, s, dtype, t))
                    if ours is None and mc is None:
                        continue

                    def cell(r):
                        if r is None:
                            return "-"
                        if mc is None:
                            return f"{r['gbps']:.2f}"
                        return f"{r['gbps']:.2f} ({r['gbps'] / mc['gbps']:.2f})"

                    row = [s + ("" if rotate else " (in cache)"), op, fmt_gbps(mc), cell(ours)]
                    row += [cell(res.get(key(p, op, s, dtype, t))) for p in peers]
                    for p in peers:
                        pr = res.get(key(p, op, s, dtype, t))
                        row.append("-" if pr is None or ours is None
                                   else f"{ours['gbps'] / pr['gbps']:.2f}x")
                    if t == 1 and dtype == "f32":
                        row.append(fmt_gbps(res.get(key("np_copyto", "copy", s, dtype, 1))))
                    lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    lines += targets_section(res)
    onednn_impls = sorted({f"{k.split('/')[3]}: {v['label']}" for k, v in res.items()
                           if k.startswith("onednn/") and v.get("label")})
    if onednn_impls:
        lines += ["oneDNN implementations chosen: " + ", ".join(onednn_impls) + ".", ""]
    if skipped:
        lines += ["## Cases that did not run", ""]
        for k, v in sorted(skipped.items()):
            lines.append(f"- `{k}`: {v}")
        lines.append("")
    lines += ["![GB/s against row length](cpu.png)", ""]
    open(path, "w").write("\n".join(lines))


def targets_section(res):
    """Issue 3's targets, each checked against this run's numbers."""
    def get(impl, op, shape, dtype="f32", t=1):
        return res.get(key(impl, op, shape, dtype, t))

    def elems_per_s(r, shape):
        rows, n = map(int, shape.split("x"))
        return rows * n / r["seconds"]

    rows_out = []

    def check(what, value, goal, fmt="{:.2f}"):
        if value is None:
            rows_out.append(f"| {what} | - | {fmt.format(goal)} | not measured |")
        else:
            ok = value >= goal
            rows_out.append(f"| {what} | {fmt.format(value)} | >= {fmt.format(goal)} | "
                            f"{'met' if ok else 'MISSED by ' + format(1 - value / goal, '.0%')} |")

    def ratio(a, b):
        return None if a is None or b is None else a["gbps"] / b["gbps"]

    for shape in ("4096x1024", "32x131072", "65536x64", "1x262144"):
        ours = get("ours", "softmax", shape)
        check(f"t1 {shape} softmax: x memcpy", ratio(ours, get("memcpy", "copy", shape)), 0.6)
        check(f"t1 {shape} softmax: ours / oneDNN", ratio(ours, get("onednn", "softmax", shape)), 3.0)
    check("t1 64x1024 (in cache) softmax: ours / oneDNN",
          ratio(get("ours", "softmax", "64x1024"), get("onednn", "softmax", "64x1024")), 4.0)
    for shape in ("4096x1024", "32x131072", "65536x64", "8x50257"):
        check(f"t2 {shape} softmax: x memcpy",
              ratio(get("ours", "softmax", shape, t=2), get("memcpy", "copy", shape, t=2)), 0.8)
    check("1x1048576 softmax: t2 / t1 speed",
          ratio(get("ours", "softmax", "1x1048576", t=2), get("ours", "softmax", "1x1048576")), 1.5)
    for shape in [shape_str(r, n) for r, n, _ in SHAPES]:
        sm = get("ours", "softmax", shape)
        for op in ("log_softmax", "logsumexp"):
            o = get("ours", op, shape)
            check(f"t1 {shape} {op}: elements/s vs softmax",
                  None if sm is None or o is None else elems_per_s(o, shape) / elems_per_s(sm, shape),
                  0.9)
        b = get("ours", "softmax", shape, "bf16")
        check(f"t1 {shape} softmax: bf16 elements/s vs f32",
              None if sm is None or b is None else elems_per_s(b, shape) / elems_per_s(sm, shape), 1.0)
    return (["## Issue 3 targets (f32 unless stated)", "",
             "| target | this run | goal | verdict |", "|---|---|---|---|"] + rows_out + [""])


def write_plot(path, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ops = ["softmax", "log_softmax"]
    combos = [(d, t) for d in DTYPES for t in THREADS]
    fig, axes = plt.subplots(len(ops), len(combos), figsize=(5 * len(combos), 4.2 * len(ops)),
                             squeeze=False, sharey=True)
    shapes = sorted([s for s in SHAPES if s[2]], key=lambda s: s[1])  # out of cache, by row length
    styles = {"ours": ("C3", "-", "o"), "onednn": ("C0", "-", "s"), "xnnpack": ("C1", "-", "^"),
              "torch": ("C2", "-", "D"), "numpy": ("C4", "-", "v"), "memcpy": ("k", "--", "")}
    for i, op in enumerate(ops):
        for j, (dtype, t) in enumerate(combos):
            ax = axes[i][j]
            for impl, (color, ls, marker) in styles.items():
                xs, ys = [], []
                for rows, n, _ in shapes:
                    r = res.get(key(impl, "copy" if impl == "memcpy" else op,
                                    shape_str(rows, n), dtype, t))
                    if r is not None:
                        xs.append(n)
                        ys.append(r["gbps"])
                if xs:
                    ax.plot(xs, ys, color=color, linestyle=ls, marker=marker,
                            label=IMPL_TITLES[impl])
            ax.set_xscale("log", base=2)
            ax.set_xticks([s[1] for s in shapes])
            ax.set_xticklabels([shape_str(r, n) for r, n, _ in shapes], rotation=35, fontsize=7)
            ax.set_title(f"{op}, {dtype}, {t} thread{'s' if t > 1 else ''}", fontsize=10)
            ax.grid(True, alpha=0.3)
            if j == 0:
                ax.set_ylabel("GB/s (ideal bytes read + written)")
            if i == len(ops) - 1:
                ax.set_xlabel("row length (shape), out of cache")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-bin", default=os.path.join(ROOT, "build-bench", "bench", "softmax_bench"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--min-time", type=float, default=0.1, help="--benchmark_min_time (s)")
    ap.add_argument("--reps", type=int, default=3, help="--benchmark_repetitions")
    ap.add_argument("--py-min-time", type=float, default=0.3, help="seconds of calls per Python case")
    ap.add_argument("--filter", default="", help="regex on impl/op/shape/dtype/tN")
    ap.add_argument("--rotate-bytes", type=int, default=0,
                    help="rotation footprint (default 2x the last-level cache)")
    ap.add_argument("--quick", action="store_true", help="tiny times and a 256 MiB rotation")
    ap.add_argument("--no-python", action="store_true", help="skip PyTorch and NumPy")
    args = ap.parse_args()
    if args.quick:
        args.min_time, args.reps, args.py_min_time = 0.01, 1, 0.02
        args.rotate_bytes = args.rotate_bytes or (256 << 20)
    rotate_bytes = args.rotate_bytes or 2 * llc_bytes()
    os.makedirs(args.out_dir, exist_ok=True)
    if not os.path.exists(args.bench_bin):
        sys.exit(f"run_cpu: {args.bench_bin} not found; build it: cmake -S . -B build-bench "
                 "-DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_BENCH=ON && cmake --build build-bench "
                 "--target softmax_bench")
    info = machine_info()
    idle = cpu_idle_fraction()
    info["CPU idle before the run"] = f"{idle:.0%}" + (
        "" if idle > 0.9 else " (other load on the machine: numbers are noisy)")
    if idle <= 0.9:
        print(f"run_cpu: warning: the CPUs are only {idle:.0%} idle; timings will be noisy",
              file=sys.stderr)
    t0 = time.time()
    res, skipped, ctx = run_gbench(args.bench_bin, args.min_time, args.reps, args.filter,
                                   args.rotate_bytes)
    if not args.no_python:
        res.update(run_python_peers(args.py_min_time, rotate_bytes, args.filter))
    info["run time"] = f"{time.time() - t0:.0f} s"
    json.dump({"machine": info, "context": ctx, "results": res, "skipped": skipped},
              open(os.path.join(args.out_dir, "cpu.json"), "w"), indent=1, sort_keys=True)
    write_markdown(os.path.join(args.out_dir, "cpu.md"), res, skipped, info, ctx, args)
    write_plot(os.path.join(args.out_dir, "cpu.png"), res)
    print(f"run_cpu: wrote {args.out_dir}/cpu.md, cpu.png, cpu.json ({info['run time']})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
