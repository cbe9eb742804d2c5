#!/usr/bin/python3
"""PyTorch (1.13, Debian's python3-torch) expectations for softmax::cross_entropy / nll_loss.

Run by tests/cpu/cross_entropy_test.cc at test time (no generated files are committed):
prints one block per case to stdout; floats as Python float.hex() so nothing is lost.
Prints a single line "SKIP <reason>" and exits 0 when torch is unavailable.

Block format (one "key values..." per line, "end" closes a case):
  case NAME / op cross_entropy|nll_loss / dtype f64|f32 / shape N C [d1 ...]
  reduction none|sum|mean / ignore_index K / label_smoothing E / z_loss Z
  weight none|<C values> / targets hard|soft / x <values> / t <values>
  loss <values> / grad <values> / lp <values> (cross_entropy only) / end
The gradient is d(loss)/d(input) for sum/mean and d(sum(loss))/d(input) for none.
z-loss (PaLM) is not in PyTorch; it is built here from its definition in
include/softmax/cross_entropy.hpp: z * lse^2 per kept row, divided like the loss.
"""
import sys

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # pragma: no cover
    print("SKIP torch unavailable: %s" % e)
    sys.exit(0)

torch.manual_seed(1234)


def hexs(t):
    return " ".join(float(v).hex() for v in t.detach().reshape(-1).tolist())


def emit(name, op, dtype, x, t, reduction, ignore_index=-100, eps=0.0, z=0.0, weight=None):
    x = x.clone().to(dtype).requires_grad_(True)
    w = None if weight is None else weight.to(dtype)
    soft = t.is_floating_point()
    if op == "cross_entropy":
        lp = F.log_softmax(x, dim=1 if x.dim() > 1 else 0)
        loss = F.cross_entropy(x, t.to(dtype) if soft else t, weight=w, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=eps)
        if z != 0.0:
            lse = torch.logsumexp(x, dim=1 if x.dim() > 1 else 0)
            if soft:
                kept = torch.ones_like(lse, dtype=torch.bool)
                denom = torch.tensor(float(lse.numel()), dtype=dtype)
            else:
                kept = t != ignore_index
                wt = (w if w is not None else torch.ones(x.shape[1 if x.dim() > 1 else 0], dtype=dtype))
                denom = wt[t.clamp(min=0)][kept].sum()
            zl = torch.where(kept, z * lse * lse, torch.zeros_like(lse))
            if reduction == "none":
                loss = loss + zl
            elif reduction == "sum":
                loss = loss + zl.sum()
            else:
                loss = loss + zl.sum() / denom
    else:
        lp = None
        if soft:
            # PyTorch's nll_loss has no soft targets; the definition: -sum w q' lp.
            c = x.shape[1]
            q = t.to(dtype) * (1 - eps) + eps / c
            wv = w if w is not None else torch.ones(c, dtype=dtype)
            shape = [1] * x.dim()
            shape[1] = c
            per = -(x * q * wv.view(shape)).sum(1)
            loss = per if reduction == "none" else per.sum() if reduction == "sum" else per.sum() / per.numel()
        else:
            loss = F.nll_loss(x, t, weight=w, ignore_index=ignore_index, reduction=reduction)
            if eps != 0.0:
                # PyTorch's cross_entropy label-smoothing formula applied to given log-probs.
                c = x.shape[1]
                shape = [1] * x.dim()
                shape[1] = c
                wv = w if w is not None else torch.ones(c, dtype=dtype)
                smooth = -(x * wv.view(shape)).sum(1)
                kept = t != ignore_index
                smooth = torch.where(kept, smooth, torch.zeros_like(smooth))
                if reduction == "none":
                    sm = smooth
                elif reduction == "sum":
                    sm = smooth.sum()
                else:
                    sm = smooth.sum() / wv[t.clamp(min=0)][kept].sum()
                loss = (1 - eps) * loss + eps / c * sm
    (loss.sum() if reduction == "none" else loss).backward()
    grad = x.grad
    print("case", name)
    print("op", op)
    print("dtype", "f64" if dtype == torch.float64 else "f32")
    print("shape", " ".join(str(s) for s in x.shape))
    print("reduction", reduction)
    print("ignore_index", ignore_index)
    print("label_smoothing", float(eps).hex())
    print("z_loss", float(z).hex())
    print("weight", "none" if w is None else hexs(w))
    print("targets", "soft" if soft else "hard")
    print("x", hexs(x))
    print("t", hexs(t) if soft else " ".join(str(int(v)) for v in t.reshape(-1).tolist()))
    print("loss", hexs(loss))
    print("grad", hexs(grad))
    if lp is not None:
        print("lp", hexs(lp))
    print("end")


def cases():
    n, c = 7, 11
    for dtype in (torch.float64, torch.float32):
        x = torch.randn(n, c, dtype=torch.float64) * 3
        t = torch.randint(0, c, (n,))
        t[2] = -100
        t[5] = -100
        w = torch.rand(c, dtype=torch.float64) + 0.25
        for red in ("none", "sum", "mean"):
            emit("plain_" + red, "cross_entropy", dtype, x, t, red)
            emit("weight_ignore_" + red, "cross_entropy", dtype, x, t, red, weight=w)
            emit("smooth_" + red, "cross_entropy", dtype, x, t, red, eps=0.1)
            emit("smooth_weight_" + red, "cross_entropy", dtype, x, t, red, eps=0.2, weight=w)
            emit("zloss_" + red, "cross_entropy", dtype, x, t, red, z=1e-2, weight=w)
            emit("nll_" + red, "nll_loss", dtype, F.log_softmax(x, 1), t, red, weight=w)
            emit("nll_smooth_" + red, "nll_loss", dtype, F.log_softmax(x, 1), t, red, eps=0.1,
                 weight=w)
        t2 = torch.where(t == -100, torch.full_like(t, 3), t)
        t2[0] = 3
        emit("ignore_index_3", "cross_entropy", dtype, x, t2, "mean", ignore_index=3, weight=w)
        q = torch.softmax(torch.randn(n, c, dtype=torch.float64), 1)
        for red in ("none", "sum", "mean"):
            emit("soft_" + red, "cross_entropy", dtype, x, q, red, eps=0.1, weight=w)
            emit("soft_z_" + red, "cross_entropy", dtype, x, q, red, z=1e-2)
            emit("nll_soft_" + red, "nll_loss", dtype, F.log_softmax(x, 1), q, red, weight=w)
        # (N, C, d1, d2): class axis 1.
        x4 = torch.randn(3, 5, 4, 2, dtype=torch.float64) * 2
        t4 = torch.randint(0, 5, (3, 4, 2))
        t4[1, 2, 1] = -100
        w5 = torch.rand(5, dtype=torch.float64) + 0.5
        for red in ("none", "mean"):
            emit("nd_" + red, "cross_entropy", dtype, x4, t4, red, eps=0.15, weight=w5)
            emit("nd_nll_" + red, "nll_loss", dtype, F.log_softmax(x4, 1), t4, red, weight=w5)
        q4 = torch.softmax(torch.randn(3, 5, 4, 2, dtype=torch.float64), 1)
        emit("nd_soft_mean", "cross_entropy", dtype, x4, q4, "mean", eps=0.1)
        # Every target ignored: mean is NaN, gradient 0.
        emit("all_ignored", "cross_entropy", dtype, x, torch.full((n,), -100), "mean", eps=0.1,
             weight=w)
        # Adversarial: huge equal logits (ln 2), large offsets, -inf entries.
        emit("huge_equal", "cross_entropy", dtype,
             torch.tensor([[1e30, 1e30], [-1e30, -1e30]], dtype=torch.float64),
             torch.tensor([0, 1]), "none")
        emit("offset_1000", "cross_entropy", dtype,
             torch.tensor([[1000.0, 1001.0, 1002.0], [90.0, 95.0, 100.0]], dtype=torch.float64),
             torch.tensor([0, 2]), "mean", eps=0.05)
        emit("neg_inf_entry", "cross_entropy", dtype,
             torch.tensor([[0.5, float("-inf"), 2.0]], dtype=torch.float64), torch.tensor([2]),
             "sum")
        # Long rows (several blocks, odd length).
        xl = torch.randn(3, 5001, dtype=torch.float64) * 4
        tl = torch.tensor([0, 5000, 1234])
        emit("long_rows", "cross_entropy", dtype, xl, tl, "mean", eps=0.1, z=1e-3)


if __name__ == "__main__":
    cases()
