"""A real training client: a one-block character transformer on the King James Bible, trained
twice from the same seed on the same batches, once with this library's ops (fused attention
with its FlashAttention-2 backward, LinearCrossEntropyLoss) and once with torch's
(materialised softmax attention, Linear + cross_entropy). Prints both loss curves side by side,
the time per step and the peak memory (max RSS) of each run (each in its own process).

    PYTHONPATH=build/python /usr/bin/python3 examples/train_lm.py            # from the repo root
    PYTHONPATH=build/python /usr/bin/python3 examples/train_lm.py --steps 300 --seq 128

The corpus is ../shared/data/kjv.txt.xz relative to the repository root (--corpus to change).
"""
import argparse
import json
import lzma
import math
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.join(HERE, "..", "..", "shared", "data", "kjv.txt.xz")


def load_text(path, max_chars):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return f.read(max_chars)


def build(args, impl):
    import torch
    import softmax as sm
    import softmax.nn as snn

    text = load_text(args.corpus, args.max_chars)
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text], dtype=torch.int64)
    V, D, H = len(vocab), args.dim, args.heads

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
            self.qkv, self.proj = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(D, 4 * D), torch.nn.GELU(),
                                           torch.nn.Linear(4 * D, D))

        def attend(self, q, k, v):
            if impl == "ours":
                return sm.scaled_dot_product_attention(q, k, v, is_causal=True)
            s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            L = s.shape[-1]
            mask = torch.ones(L, L, dtype=torch.bool).tril()
            return torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
            a = self.attend(q, k, v).transpose(1, 2).reshape(B, T, D)
            x = x + self.proj(a)
            return x + self.mlp(self.ln2(x))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = torch.nn.Embedding(V, D)
            self.pos = torch.nn.Embedding(args.seq, D)
            self.block = Block()
            self.ln = torch.nn.LayerNorm(D)
            if impl == "ours":
                self.head = snn.LinearCrossEntropyLoss(D, V, bias=True)
            else:
                self.head = torch.nn.Linear(D, V)

        def forward(self, x, y):
            h = self.tok(x) + self.pos(torch.arange(x.shape[1]))
            h = self.ln(self.block(h))
            if impl == "ours":
                return self.head(h, y)
            return torch.nn.functional.cross_entropy(self.head(h).reshape(-1, V), y.reshape(-1))

    torch.manual_seed(args.seed)
    model = Model()
    return model, ids


def train(args, impl):
    import torch
    torch.set_num_threads(args.threads)
    model, ids = build(args, impl)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed + 1)
    curve, times = [], []
    for step in range(args.steps):
        starts = torch.randint(0, len(ids) - args.seq - 1, (args.batch,), generator=g)
        x = torch.stack([ids[s:s + args.seq] for s in starts])
        y = torch.stack([ids[s + 1:s + args.seq + 1] for s in starts])
        t0 = time.perf_counter()
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        curve.append(float(loss))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times.sort()
    return {"impl": impl, "curve": curve, "step_ms": 1e3 * times[len(times) // 2],
            "peak_mib": peak_mib}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--max-chars", type=int, default=2_000_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=20, help="print the loss every N steps")
    ap.add_argument("--impl", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.impl:  # a child run: one implementation, JSON on stdout
        print(json.dumps(train(args, args.impl)))
        return
    if not os.path.exists(args.corpus):
        sys.exit(f"train_lm: corpus {args.corpus} not found (give --corpus)")
    runs = {}
    for impl in ("ours", "torch"):
        cmd = [sys.executable, os.path.abspath(__file__), "--impl", impl] + sys.argv[1:]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs[impl] = json.loads(out.strip().splitlines()[-1])
    a, b = runs["ours"]["curve"], runs["torch"]["curve"]
    print(f"{'step':>6} {'loss (ours)':>12} {'loss (torch)':>13} {'diff':>10}")
    for i in list(range(0, len(a), args.every)) + [len(a) - 1]:
        print(f"{i:6d} {a[i]:12.5f} {b[i]:13.5f} {a[i] - b[i]:10.2e}")
    worst = max(abs(x - y) for x, y in zip(a, b))
    print(f"max |loss difference| over {len(a)} steps: {worst:.2e}")
    for impl in ("ours", "torch"):
        r = runs[impl]
        print(f"{impl:5s}: median {r['step_ms']:.1f} ms/step (forward + backward + AdamW), "
              f"peak RSS {r['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
