#!/usr/bin/python3
"""Writes the small example inputs the README's commands use into this folder, or into the
folder given as the first argument (run from anywhere; NumPy):

  logits.npy   (8, 10) float32   logits of 8 rows over 10 classes
  targets.npy  (8,)    int64     class ids in [0, 10); row 5 is -100 (ignore_index)
  q.npy        (1, 4, 16, 8)  float32   queries: batch 1, 4 heads, 16 positions, head size 8
  k.npy, v.npy (1, 2, 16, 8)  float32   keys and values: 2 KV heads (grouped-query attention)

Fixed seed, so rerunning it rewrites the same files.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    rng = np.random.default_rng(20240601)
    logits = (rng.standard_normal((8, 10)) * 2).astype(np.float32)
    targets = rng.integers(0, 10, size=8).astype(np.int64)
    targets[5] = -100
    q = rng.standard_normal((1, 4, 16, 8)).astype(np.float32)
    k = rng.standard_normal((1, 2, 16, 8)).astype(np.float32)
    v = rng.standard_normal((1, 2, 16, 8)).astype(np.float32)
    for name, arr in [("logits", logits), ("targets", targets), ("q", q), ("k", k), ("v", v)]:
        np.save(os.path.join(out, name + ".npy"), arr)


if __name__ == "__main__":
    main()
