#!/usr/bin/python3
"""word_lm: a small word-level language model trained with the full softmax or one of its
large-vocabulary approximations, all from the `softmax` module.

Model: the embeddings of the previous --context words, concatenated -> tanh hidden layer of
--hidden units -> output layer. The output layer and its loss are the choice of --loss:

  full          linear_cross_entropy over [h, 1] @ [W, b]^T (the exact softmax)
  sampled       sampled_softmax_loss (log-uniform sampler, --num-sampled, new samples each step)
  hierarchical  hierarchical_softmax_loss over word2vec's Huffman tree of the training counts
  adaptive      adaptive_log_softmax_with_loss (cutoffs --cutoffs, tails hidden/4, hidden/16)
  all           the four in turn, then one plot

Held-out perplexity is always exact: exp of the mean -log p(word) under the model's own
normalised distribution (for sampled: the full softmax of its W h + b; the tree and the
adaptive softmax are normalised by construction), over the last --heldout fraction of verses.

Corpus: the King James Bible (Debian's bible-kjv-text), by default ../shared/data/kjv.txt.xz
next to the repository; lower-cased words, verses end with </s>, words seen fewer than
--min-count times in training become <unk>.

Usage (from the repository root, with the module built):
  PYTHONPATH=build/python /usr/bin/python3 examples/word_lm/word_lm.py --loss all --minutes 2
Writes <out>/results.json and, when matplotlib is installed, <out>/perplexity.png.
--cbow WS switches to fastText's CBOW task (mean of the WS words each side -> the word) with
hierarchical or sampled (unigram^0.75 negatives) losses, to compare words/s with `fasttext cbow`.
"""
import argparse
import json
import lzma
import math
import os
import re
import sys
import time

# One BLAS thread for the NumPy layers (the --threads of the softmax calls is separate), so the
# timings are not at the mercy of thread oversubscription.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

import softmax as sm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.join(HERE, "..", "..", "..", "shared", "data", "kjv.txt.xz")
LOSSES = ("full", "sampled", "hierarchical", "adaptive")


def load_corpus(path, heldout, min_count, max_verses=0):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if max_verses:
        lines = lines[:max_verses]
    verses = [re.findall(r"[a-z]+(?:'[a-z]+)?", line.lower()) for line in lines]
    split = int(len(verses) * (1 - heldout))
    counts = {}
    for v in verses[:split]:
        for w in v:
            counts[w] = counts.get(w, 0) + 1
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    n_unk = sum(c for w, c in counts.items() if c < min_count)
    vocab = ["</s>", "<unk>"] + words  # ids sorted by decreasing frequency (log-uniform sampler)
    freq = [split, max(n_unk, 1)] + [counts[w] for w in words]
    order = np.argsort(-np.array(freq), kind="stable")
    vocab = [vocab[i] for i in order]
    freq = np.array(freq, dtype=np.int64)[order]
    ids = {w: i for i, w in enumerate(vocab)}
    eos, unk = ids["</s>"], ids["<unk>"]

    def encode(vs):
        out = []
        for v in vs:
            out.extend(ids.get(w, unk) for w in v)
            out.append(eos)
        return np.array(out, dtype=np.int64)

    return vocab, freq, encode(verses[:split]), encode(verses[split:]), eos


def contexts(tokens, c, eos):
    pad = np.concatenate([np.full(c, eos, dtype=np.int64), tokens])
    ctx = np.stack([pad[i:i + len(tokens)] for i in range(c)], 1)
    return ctx, tokens


def cbow_contexts(tokens, ws, eos):
    """The ws words on each side of every token (word2vec / fastText CBOW), padded with </s>."""
    pad = np.concatenate([np.full(ws, eos, dtype=np.int64), tokens, np.full(ws, eos, dtype=np.int64)])
    n = len(tokens)
    cols = [pad[i:i + n] for i in range(ws)] + [pad[ws + 1 + i:ws + 1 + i + n] for i in range(ws)]
    return np.stack(cols, 1), tokens


class Adagrad:
    def __init__(self, lr):
        self.lr, self.acc = lr, {}

    def dense(self, name, p, g):
        a = self.acc.setdefault(name, np.full_like(p, 1e-8))
        a += g * g
        p -= self.lr * g / np.sqrt(a)

    def rows(self, name, p, rows, g):
        a = self.acc.setdefault(name, np.full_like(p, 1e-8))
        a[rows] += g * g
        p[rows] -= self.lr * g / np.sqrt(a[rows])


class Model:
    def __init__(self, args, v, freq, rng):
        self.args, self.v, self.freq = args, v, freq
        c, e, h = args.context, args.embed, args.hidden
        if args.cbow:  # the hidden vector is the mean of the context embeddings
            h = e
        s = lambda *shape: (rng.standard_normal(shape) * (1 / math.sqrt(shape[-1]))).astype(np.float32)
        self.E = (rng.standard_normal((v, e)) * 0.1).astype(np.float32)
        self.W1, self.b1 = s(h, c * e), np.zeros(h, np.float32)
        self.loss = args.loss
        if self.loss == "full":
            self.W = np.zeros((v, h + 1), np.float32)
        elif self.loss == "sampled":
            self.W, self.b = np.zeros((v, h), np.float32), np.zeros(v, np.float32)
        elif self.loss == "hierarchical":
            self.tree = sm.huffman_tree(freq)
            self.W, self.b = np.zeros((v - 1, h), np.float32), np.zeros(v - 1, np.float32)
        else:
            self.cutoffs = [c for c in args.cutoffs if c < v - 1]
            self.head = s(self.cutoffs[0] + len(self.cutoffs), h)
            bounds = self.cutoffs + [v]
            self.tails = [(s(max(1, h // 4 ** (i + 1)), h), s(bounds[i + 1] - bounds[i], max(1, h // 4 ** (i + 1))))
                          for i in range(len(self.cutoffs))]

    def hidden(self, ctx):
        if self.args.cbow:
            return None, self.E[ctx].mean(1)
        x = self.E[ctx].reshape(len(ctx), -1)
        return x, np.tanh(x @ self.W1.T + self.b1)

    def out_loss(self, h, t, step, grad):
        """Mean loss over the batch and (with grad) d loss / d h plus the output-layer update."""
        a, n, th = self.args, len(t), self.args.threads
        if self.loss == "full":
            hb = np.hstack([h, np.ones((n, 1), np.float32)])
            if not grad:
                return float(sm.linear_cross_entropy(hb, self.W, t, threads=th)), None
            loss, gh, gw = sm.linear_cross_entropy(hb, self.W, t, return_grad=True, threads=th)
            return float(loss), (gh[:, :-1], [("W", gw)])
        if self.loss == "sampled":
            extra = dict(sampler="unigram", unigrams=self.freq, distortion=0.75) if a.cbow else {}
            loss, g = sm.sampled_softmax_loss(self.W, self.b, t[:, None], h, a.num_sampled, self.v,
                                              seed=a.seed, offset=step, return_grad=True, **extra,
                                              grad_output=np.full(n, 1.0 / n, np.float32), threads=th)
            return float(loss.mean()), (g["inputs"], [("W", g["rows"], g["weights"]), ("b", g["rows"], g["biases"])])
        if self.loss == "hierarchical":
            if not grad:
                return float(sm.hierarchical_softmax_loss(h, t, self.tree, self.W, self.b, threads=th)), None
            loss, g = sm.hierarchical_softmax_loss(h, t, self.tree, self.W, self.b, return_grad=True, threads=th)
            return float(loss), (g["hidden"], [("W", g["rows"], g["node_weights"]), ("b", g["rows"], g["node_bias"])])
        res = sm.adaptive_log_softmax_with_loss(h, t, self.head, self.tails, self.cutoffs, return_grad=grad, threads=th)
        if not grad:
            return float(res[1]), None
        _, loss, g = res
        ups = [("head", g["head_weight"])]
        for i, (gp, go) in enumerate(g["tail_weights"]):
            ups += [(f"tail{i}p", gp), (f"tail{i}o", go)]
        return float(loss), (g["input"], ups)

    def params(self, name):
        if name == "head":
            return self.head
        if name.startswith("tail"):
            i, which = int(name[4:-1]), name[-1]
            return self.tails[i][0 if which == "p" else 1]
        return getattr(self, name)

    def step(self, ctx, t, step, opt):
        x, h = self.hidden(ctx)
        loss, (gh, ups) = self.out_loss(h, t, step, True)
        for u in ups:
            if len(u) == 2:
                opt.dense(u[0], self.params(u[0]), u[1])
            else:
                opt.rows(u[0], self.params(u[0]), u[1], u[2])
        if self.args.cbow:
            gx = np.repeat(gh[:, None, :] / ctx.shape[1], ctx.shape[1], 1)
        else:
            gz = gh * (1 - h * h)
            opt.dense("W1", self.W1, gz.T @ x)
            opt.dense("b1", self.b1, gz.sum(0))
            gx = (gz @ self.W1).reshape(len(t), self.args.context, -1)
        rows, inv = np.unique(ctx.ravel(), return_inverse=True)
        ge = np.zeros((len(rows), self.E.shape[1]), np.float32)
        np.add.at(ge, inv, gx.reshape(-1, self.E.shape[1]))
        opt.rows("E", self.E, rows, ge)
        return loss

    def heldout_ppl(self, ctx, t):
        """Exact perplexity of the model's normalised distribution."""
        total, n = 0.0, len(t)
        for i in range(0, n, 4096):
            _, h = self.hidden(ctx[i:i + 4096])
            tt = t[i:i + 4096]
            if self.loss == "sampled":  # the full softmax of the trained W h + b
                hb = np.hstack([h, np.ones((len(tt), 1), np.float32)])
                wb = np.hstack([self.W, self.b[:, None]])
                loss = float(sm.linear_cross_entropy(hb, wb, tt, threads=self.args.threads))
            else:
                loss, _ = self.out_loss(h, tt, 0, False)
            total += loss * len(tt)
        return math.exp(total / n)


def bar(frac, width=30):
    k = int(round(frac * width))
    return "[" + "#" * k + "." * (width - k) + "]"


def train(args, loss_name, data):
    vocab, freq, (ctx_tr, t_tr), (ctx_he, t_he) = data
    args.loss = loss_name
    rng = np.random.default_rng(args.seed)
    model = Model(args, len(vocab), freq, rng)
    opt = Adagrad(args.lr)
    budget = args.minutes * 60.0
    curve, train_s, step, last_eval = [], 0.0, 0, -1e9
    ppl = model.heldout_ppl(ctx_he, t_he)
    curve.append((0.0, ppl))
    avg = None
    def done():
        return train_s >= budget or (args.max_steps and step >= args.max_steps)

    while not done():
        perm = rng.permutation(len(t_tr))
        for b in range(0, len(perm) - args.batch + 1, args.batch):
            idx = perm[b:b + args.batch]
            t0 = time.perf_counter()
            loss = model.step(ctx_tr[idx], t_tr[idx], step, opt)
            train_s += time.perf_counter() - t0
            step += 1
            avg = loss if avg is None else 0.98 * avg + 0.02 * loss
            if train_s - last_eval >= args.eval_every or done():
                ppl = model.heldout_ppl(ctx_he, t_he)  # not counted as training time
                curve.append((train_s, ppl))
                last_eval = train_s
            sys.stderr.write(f"\r{loss_name:>12} {bar(min(train_s / budget, 1))} {train_s:6.1f}/{budget:.0f} s"
                             f"  step {step}  train loss {avg:.3f}  held-out ppl {ppl:8.2f}")
            sys.stderr.flush()
            if done():
                break
    sys.stderr.write("\n")
    return {"loss": loss_name, "steps": step, "train_seconds": train_s,
            "tokens_per_second": step * args.batch / train_s, "final_ppl": curve[-1][1], "curve": curve}


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot (apt-get install python3-matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        t, p = zip(*r["curve"])
        ax.plot(np.array(t) / 60, p, marker=".", label=f"{r['loss']} ({r['final_ppl']:.0f})")
    ax.set_xlabel("training wall-clock (minutes)")
    ax.set_ylabel("held-out perplexity (exact)")
    ax.set_yscale("log")
    ax.set_title("word_lm on the KJV Bible")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--loss", choices=LOSSES + ("all",), default="all")
    p.add_argument("--corpus", default=DEFAULT_CORPUS)
    p.add_argument("--minutes", type=float, default=2.0, help="training time per loss")
    p.add_argument("--context", type=int, default=3)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--num-sampled", type=int, default=512)
    p.add_argument("--cutoffs", type=int, nargs="+", default=[1000, 4000])
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--heldout", type=float, default=0.05)
    p.add_argument("--eval-every", type=float, default=15.0, help="seconds of training between evaluations")
    p.add_argument("--threads", type=int, default=1, help="threads of the softmax calls")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="word_lm_out")
    p.add_argument("--cbow", type=int, default=0, metavar="WS",
                   help="fastText-style CBOW instead of the LM: predict each word from the mean embedding of "
                        "WS words on each side (--embed wide); for the fastText comparison")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0: only --minutes)")
    p.add_argument("--max-verses", type=int, default=0, help="use only the first N verses (0: all)")
    args = p.parse_args()
    if not os.path.exists(args.corpus):
        sys.exit(f"word_lm: error: corpus {args.corpus} not found (--corpus PATH)")
    vocab, freq, tr, he, eos = load_corpus(args.corpus, args.heldout, args.min_count, args.max_verses)
    print(f"vocabulary {len(vocab)} words; {len(tr)} training and {len(he)} held-out tokens")
    make = (lambda x: cbow_contexts(x, args.cbow, eos)) if args.cbow else (lambda x: contexts(x, args.context, eos))
    data = (vocab, freq, make(tr), make(he))
    results = [train(args, name, data) for name in (LOSSES if args.loss == "all" else (args.loss,))]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "vocab": len(vocab), "results": results}, f, indent=1)
    for r in results:
        print(f"{r['loss']:>12}: held-out perplexity {r['final_ppl']:.2f} after {r['train_seconds']:.0f} s "
              f"({r['steps']} steps, {r['tokens_per_second']:.0f} tokens/s)")
    plot(results, os.path.join(args.out, "perplexity.png"))


if __name__ == "__main__":
    main()
