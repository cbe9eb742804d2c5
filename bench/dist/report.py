#!/usr/bin/env python3
"""Markdown table of dist_bench's JSON lines (bench/results/dist.md).

  for R in 1 2 4; do mpiexec --oversubscribe -np $R build-bench/bench/dist/dist_bench 11; done > dist.jsonl
  python3 bench/dist/report.py dist.jsonl
"""
import json
import sys


def main():
    rows = {}
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            rows.setdefault((d["shape"], d["ranks"], d["op"]), {})[d["impl"]] = d
    print("| shape | R | op | ours ms (min..max) | Megatron-style ms (min..max) | memcpy ms | "
          "streaming copy ms | Megatron / ours | ours: bytes sent per rank, collectives | "
          "Megatron: bytes, collectives |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = {"softmax": 0, "log_softmax": 1, "logsumexp": 2, "cross_entropy": 3}
    for key in sorted(rows, key=lambda k: (k[0], k[1], order.get(k[2], 9))):
        r = rows[key]
        o, m = r["ours"], r["megatron"]
        print(f"| {key[0]} | {key[1]} | {key[2]} | {o['median_ms']:.2f} ({o['min_ms']:.2f}..{o['max_ms']:.2f}) "
              f"| {m['median_ms']:.2f} ({m['min_ms']:.2f}..{m['max_ms']:.2f}) "
              f"| {r['memcpy']['median_ms']:.2f} | {r['stream_copy']['median_ms']:.2f} "
              f"| {m['ratio_to_ours']:.2f} | {o['bytes_sent_per_rank']}, {o['collectives']} "
              f"| {m['bytes_sent_per_rank']}, {m['collectives']} |")


if __name__ == "__main__":
    main()
