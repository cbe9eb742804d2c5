#!/usr/bin/python3
"""bench/run_cpu.py: the CPU comparison (issue 11) from two runs of bench/cpu_compare.

1. Runs build-bench/bench/cpu_compare --json twice (two processes), each measuring every
   implementation of a case group round-robin on the same buffers in the same rounds (ours, sol,
   oneDNN, XNNPACK, PyTorch, NumPy, memcpy, a streaming-store copy, a read-only pass).
2. Writes bench/results/cpu.md: per regime (in cache, L3-resident, DRAM), dtype and thread count,
   our GB/s with its min-max spread over rounds and our speed relative to every baseline and
   peer, each ratio with how much it moved between the two runs; the issue 11 targets, met or
   missed by how much; bench/results/cpu_notes.md (hand-written: why) appended as is.
3. Writes cpu.json (every number of both runs) and cpu.png (skipped with a message when
   matplotlib is missing).

Ratios are speed ratios from median times (ours / peer > 1: ours is faster); "x memcpy" etc.
compare GB/s, where GB/s = bytes an ideal kernel moves (read input once, write output once) /
median seconds per call.

Usage (from the repository root, after building build-bench with -DSOFTMAX_BUILD_BENCH=ON):
  /usr/bin/python3 bench/run_cpu.py                  # two full runs, a few minutes
  /usr/bin/python3 bench/run_cpu.py --quick          # smoke test of the harness
  /usr/bin/python3 bench/run_cpu.py --filter 'cache/.*/f32/t1'
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGIMES = [("cache", "in cache"), ("l3", "L3-resident"), ("dram", "DRAM")]
DTYPES = ["f32", "bf16"]
THREADS = [1, 2]
OPS = ["softmax", "log_softmax", "logsumexp"]
PEERS = [("sol", "sol"), ("onednn", "oneDNN"), ("xnnpack", "XNNPACK"), ("torch", "PyTorch"),
         ("numpy", "NumPy")]


# ---------------------------------------------------------------------------------------------
# Running

def run_once(args, k):
    cmd = [args.bin, "--json", "--rounds", str(args.rounds), "--batch-ms", str(args.batch_ms),
           "--nice", str(args.nice)]
    if args.filter:
        cmd += ["--filter", args.filter]
    if args.no_python:
        cmd.append("--no-python")
    if args.quick:
        cmd.append("--quick")
    if args.realtime:
        cmd.append("--realtime")
    print(f"run_cpu: run {k}: " + " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.time()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    run = {"context": {}, "end": {}, "cases": {}, "seconds": round(time.time() - t0)}
    for line in out.splitlines():
        d = json.loads(line)
        if "context" in d:
            run["context"] = d["context"]
        elif "end" in d:
            run["end"] = d["end"]
        else:
            key = (d["regime"], d["shape"], d["dtype"], d["threads"], d["impl"], d["op"])
            run["cases"]["/".join(map(str, key))] = d
    return run


def key(regime, shape, dtype, t, impl, op):
    return f"{regime}/{shape}/{dtype}/{t}/{impl}/{op}"


def get(run, regime, shape, dtype, t, impl, op):
    return run["cases"].get(key(regime, shape, dtype, t, impl, op))


def gbps(c):
    return None if c is None else c["bytes"] / c["median_s"] * 1e-9


def speed_ratio(run, a, b):
    """Speed of case a over case b (bytes/s ratio: same bytes -> time ratio)."""
    ca, cb = get(run, *a), get(run, *b)
    if ca is None or cb is None:
        return None
    return gbps(ca) / gbps(cb)


def shapes_of(runs, regime):
    seen = []
    for r in runs:
        for c in r["cases"].values():
            if c["regime"] == regime and c["shape"] not in seen:
                seen.append(c["shape"])
    return sorted(seen, key=lambda s: (int(s.split("x")[0]) * int(s.split("x")[1]), s))


# ---------------------------------------------------------------------------------------------
# Report

def both(runs, a, b):
    """(mean ratio, moved) over the runs; moved = |r1 - r2| / mean."""
    vals = [speed_ratio(r, a, b) for r in runs]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    moved = (max(vals) - min(vals)) / mean if len(vals) > 1 else None
    return mean, moved


def ratio_cell(runs, a, b):
    mean, moved = both(runs, a, b)
    if mean is None:
        return "-"
    return f"{mean:.2f}" + ("" if moved is None else f" ({moved:.0%})")


def spread_cell(runs, case_key):
    """Our GB/s (run 1) and the spread over its rounds: -fast/+slow in % of the median time."""
    c = get(runs[0], *case_key)
    if c is None:
        return "-"
    lo = (c["median_s"] - c["min_s"]) / c["median_s"]
    hi = (c["max_s"] - c["median_s"]) / c["median_s"]
    return f"{gbps(c):.2f} (-{lo:.0%}/+{hi:.0%})"


def section(runs, regime, title, dtype, t):
    shapes = shapes_of(runs, regime)
    if not any(get(runs[0], regime, s, dtype, t, "ours", "softmax") for s in shapes):
        return []
    lines = [f"### {title}, {dtype}, {t} thread{'s' if t > 1 else ''}", "",
             "| shape | memcpy GB/s | ntcopy GB/s | read GB/s | op | ours GB/s (spread) | "
             "x memcpy | x ntcopy | x read | " +
             " | ".join(f"ours / {name}" for _, name in PEERS) + " |",
             "|" + "---|" * (9 + len(PEERS))]
    for s in shapes:
        base = [gbps(get(runs[0], regime, s, dtype, t, i, o))
                for i, o in (("memcpy", "copy"), ("ntcopy", "copy"), ("read", "sum"))]
        if get(runs[0], regime, s, dtype, t, "ours", "softmax") is None:
            continue
        for op in OPS:
            ours = (regime, s, dtype, t, "ours", op)
            row = [s if op == "softmax" else ""]
            row += [("-" if v is None else f"{v:.2f}") if op == "softmax" else "" for v in base]
            row += [op, spread_cell(runs, ours)]
            row.append(ratio_cell(runs, ours, (regime, s, dtype, t, "memcpy", "copy")))
            row.append(ratio_cell(runs, ours, (regime, s, dtype, t, "ntcopy", "copy")))
            row.append(ratio_cell(runs, ours, (regime, s, dtype, t, "read", "sum"))
                       if op == "logsumexp" else "")
            row += [ratio_cell(runs, ours, (regime, s, dtype, t, p, op)) for p, _ in PEERS]
            lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def targets(runs):
    """Issue 11's targets, each with its worst case over shapes, both runs pooled (mean)."""
    out = ["## Issue 11 targets", "",
           "Each line is the worst case over the shapes it covers (the mean of the two runs), "
           "and how many of those shapes meet the goal.", "",
           "| target | worst case | value | goal | shapes met | verdict |",
           "|---|---|---|---|---|---|"]

    def check(what, items, goal):
        vals = [(v, where) for v, where in items if v is not None]
        if not vals:
            out.append(f"| {what} | - | - | {goal} | - | not measured |")
            return
        v, where = min(vals)
        met = sum(1 for x, _ in vals if x >= goal)
        verdict = "met" if v >= goal else f"MISSED by {1 - v / goal:.0%}"
        out.append(f"| {what} | {where} | {v:.2f} | >= {goal} | {met} of {len(vals)} | {verdict} |")

    for dtype in DTYPES:
        for op in ("softmax", "log_softmax"):
            items = [(both(runs, (rg, s, dtype, 1, "ours", op), (rg, s, dtype, 1, "onednn", op))[0],
                      f"{rg} {s}") for rg in ("cache", "l3") for s in shapes_of(runs, rg)]
            check(f"{dtype} {op}, in cache and L3: ours / oneDNN", items, 1.5)
        items = [(both(runs, (rg, s, dtype, 1, "ours", "softmax"),
                       (rg, s, dtype, 1, "sol", "softmax"))[0], f"{rg} {s}")
                 for rg in ("cache", "l3") for s in shapes_of(runs, rg)]
        check(f"{dtype} softmax, in cache and L3: ours / sol", items, 0.8)
        for op in ("softmax", "log_softmax"):
            items = [(both(runs, ("dram", s, dtype, 1, "ours", op),
                           ("dram", s, dtype, 1, "ntcopy", "copy"))[0], f"dram {s}")
                     for s in shapes_of(runs, "dram")]
            check(f"{dtype} {op}, DRAM: GB/s x streaming copy", items, 0.85)
        items = [(both(runs, (rg, s, dtype, 1, "ours", "logsumexp"),
                       (rg, s, dtype, 1, "read", "sum"))[0], f"{rg} {s}")
                 for rg, _ in REGIMES for s in shapes_of(runs, rg)]
        check(f"{dtype} logsumexp, every regime: GB/s x read pass", items, 0.8)
        items = []
        for rg, _ in REGIMES:
            for s in shapes_of(runs, rg):
                r, n = map(int, s.split("x"))
                if r * n >= 16 * 1024:
                    items.append((both(runs, (rg, s, dtype, 2, "ours", "softmax"),
                                       (rg, s, dtype, 1, "ours", "softmax"))[0], f"{rg} {s}"))
        check(f"{dtype} softmax, >= 16x1024: 2 threads / 1 thread", items, 1.8)
    out += ["", "Not measured by this harness: fused attention decode against the materialised "
            "path (bench/attention_bench), softmax_backward, log_softmax_backward and the fused "
            "cross-entropy against their peers (bench/cross_entropy_bench).", ""]
    return out


def write_markdown(path, runs, info, notes_path):
    ctx = runs[0]["context"]
    lines = ["# CPU benchmark: softmax, log-softmax, logsumexp", "",
             "Generated by `bench/run_cpu.py` from two runs of `bench/cpu_compare` (see "
             "[docs/benchmarks.md](../../docs/benchmarks.md)); the notes at the end are written "
             "by hand.", "", "## Machine and runs", ""]
    for k, v in info.items():
        lines.append(f"- {k}: {v}")
    for i, r in enumerate(runs, 1):
        c, e = r["context"], r["end"]
        l3 = c.get("l3_bytes", 0) / 2**20
        lines.append(f"- run {i}: {r['seconds']} s, nice {c.get('nice')}, {c.get('sched')}, "
                     "load average "
                     f"{c.get('loadavg_start')} before, {e.get('loadavg_end')} after; usable L3 "
                     f"{l3:.0f} MiB ({'measured' if c.get('l3_measured') else 'sysfs or given'}; "
                     f"copy {c.get('copy_gbps_cache', 0):.1f} GB/s in cache, "
                     f"{c.get('copy_gbps_dram', 0):.1f} GB/s from DRAM)")
    lines.append(f"- sysfs says L3 {ctx.get('l3_sysfs_bytes', 0) / 2**20:.0f} MiB; "
                 f"SIMD target {ctx.get('simd_target')}, oneDNN {ctx.get('onednn')}, "
                 f"{ctx.get('python_peers')}, {ctx.get('rounds')} rounds of "
                 f"{ctx.get('batch_ms')} ms batches")
    sweep = ", ".join(f"{b / 2**20:.0f}: {g:.1f}" for b, g in ctx.get("sweep", []))
    lines += [f"- copy bandwidth sweep, run 1 (footprint MiB: GB/s): {sweep}", ""]
    cpus = ctx.get("cpus", 1)
    loads = [float(str(r["context"].get("loadavg_start", "0")).split()[0]) for r in runs]
    if max(loads) > 0.5 * cpus:
        lines += [f"**Warning: the load average was {max(loads):.1f} on {cpus} CPUs during these "
                  "runs: other processes shared the machine, so single rounds are noisy (see the "
                  "spread) and two-thread cases are the least reliable.**", ""]
    lines += ["How to read the tables: every implementation of a group (regime, shape, dtype, "
              "threads) took turns round-robin in one process on the same buffers, one batch of "
              "about 1 ms per round. `ours GB/s (spread)` is run 1's median; the spread is how "
              "much faster/slower its fastest/slowest round was. Ratio cells are the mean of the "
              "two runs, with (in parentheses) how much the ratio moved between them. "
              "`x memcpy`, `x ntcopy` (copy with streaming stores), `x read` (sum of the input, "
              "logsumexp only) divide GB/s; `ours / peer` divides speed (> 1: ours is faster). "
              "`sol` is the three-pass AVX-512 yardstick of bench/yardsticks.hpp (softmax only). "
              "'-': the peer has no such case (XNNPACK: softmax f32 only; NumPy: f32, one "
              "thread).", ""]
    for rg, title in REGIMES:
        lines += [f"## {title}", ""]
        for dtype in DTYPES:
            for t in THREADS:
                lines += section(runs, rg, title, dtype, t)
    lines += targets(runs)
    labels = sorted({f"{c['dtype']}: {c['label']}" for c in runs[0]["cases"].values()
                     if c["impl"] == "onednn" and c["label"]})
    if labels:
        lines += ["oneDNN implementations chosen: " + ", ".join(labels) + ".", ""]
    if notes_path and os.path.exists(notes_path):
        lines += [open(notes_path).read().rstrip(), ""]
    lines += ["![GB/s per shape](cpu.png)", ""]
    open(path, "w").write("\n".join(lines))


def write_plot(path, runs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("run_cpu: matplotlib is missing (apt-get install python3-matplotlib): "
              "no plot written", file=sys.stderr)
        return False
    impls = [("ours", "ours", "C3"), ("sol", "sol", "C5"), ("onednn", "oneDNN", "C0"),
             ("xnnpack", "XNNPACK", "C1"), ("torch", "PyTorch", "C2"), ("numpy", "NumPy", "C4"),
             ("memcpy", "memcpy", "k"), ("ntcopy", "ntcopy", "0.5")]
    fig, axes = plt.subplots(2, len(REGIMES), figsize=(5.2 * len(REGIMES), 8.4), squeeze=False)
    run = runs[0]
    for j, (rg, title) in enumerate(REGIMES):
        shapes = shapes_of(runs, rg)
        for i, op in enumerate(("softmax", "log_softmax")):
            ax = axes[i][j]
            for impl, name, color in impls:
                o = "copy" if impl in ("memcpy", "ntcopy") else op
                ys = [gbps(get(run, rg, s, "f32", 1, impl, o)) for s in shapes]
                xs = [k for k, y in enumerate(ys) if y is not None]
                if xs:
                    ax.plot(xs, [ys[k] for k in xs], color=color, marker="o",
                            linestyle="--" if o == "copy" else "-", label=name)
            if rg == "cache":  # memcpy from L1 is an order of magnitude above the rest
                ax.set_yscale("log")
            ax.set_xticks(range(len(shapes)))
            ax.set_xticklabels(shapes, rotation=30, fontsize=7)
            ax.set_title(f"{op}, f32, 1 thread, {title}", fontsize=10)
            ax.grid(True, alpha=0.3)
            if j == 0:
                ax.set_ylabel("GB/s (ideal bytes read + written)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def machine_info():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "L2 cache", "Hypervisor vendor"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    info["kernel"] = platform.release()
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["git"] = rev + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-bench", "bench", "cpu_compare"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--runs", type=int, default=2, help="separate runs (processes) to compare")
    ap.add_argument("--rounds", type=int, default=11, help="rounds per case group")
    ap.add_argument("--batch-ms", type=float, default=1.0, help="length of one batch of calls")
    ap.add_argument("--nice", type=int, default=-5, help="nice value for the runs (needs root)")
    ap.add_argument("--realtime", action="store_true",
                    help="run under SCHED_RR (needs root): for a machine shared with other work")
    ap.add_argument("--filter", default="", help="regex on regime/shape/dtype/tN")
    ap.add_argument("--no-python", action="store_true", help="leave out PyTorch and NumPy")
    ap.add_argument("--quick", action="store_true", help="3 rounds of short batches")
    ap.add_argument("--from-json", help="rewrite the report from a cpu.json instead of running")
    args = ap.parse_args()
    if not args.from_json and not os.path.exists(args.bin):
        sys.exit(f"run_cpu: {args.bin} not found; build it: cmake -S . -B build-bench "
                 "-DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_BENCH=ON && cmake --build build-bench "
                 "--target cpu_compare")
    os.makedirs(args.out_dir, exist_ok=True)
    if args.from_json:
        saved = json.load(open(args.from_json))
        info, runs = saved["machine"], saved["runs"]
    else:
        info = machine_info()
        runs = [run_once(args, k + 1) for k in range(max(1, args.runs))]
        with open(os.path.join(args.out_dir, "cpu.json"), "w") as f:
            json.dump({"machine": info, "runs": runs}, f, indent=1, sort_keys=True)
    write_markdown(os.path.join(args.out_dir, "cpu.md"), runs, info,
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                "cpu_notes.md"))
    plotted = write_plot(os.path.join(args.out_dir, "cpu.png"), runs)
    wrote = ["cpu.md"] + ([] if args.from_json else ["cpu.json"]) + (["cpu.png"] if plotted else [])
    print(f"run_cpu: wrote {', '.join(wrote)} in {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
