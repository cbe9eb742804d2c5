"""Argument forms shared by the Python layer: containers, SciPy's axis forms, dtype plans.

Nothing here computes a result; every op still runs in the compiled core (``softmax._core``).
"""
import sys

import numpy as np

__all__ = ["DEFAULT_AXIS", "fast_call", "is_tensor", "needs_grad", "as_input",
           "resolve_axes", "fold", "unfold", "unfold_reduced", "dtype_name",
           "wide_plan", "cast"]


class _DefaultAxis(int):
    """-1, the default axis, told apart from an explicit -1 (so `dim=` may be given)."""

    def __repr__(self):
        return "-1"


DEFAULT_AXIS = _DefaultAxis(-1)


def is_tensor(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def needs_grad(*xs):
    """True when autograd must record: torch is imported, grad mode is on and a tensor
    argument requires grad."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.is_grad_enabled():
        return False
    return any(isinstance(x, torch.Tensor) and x.requires_grad for x in xs)


def as_input(x, op, promote_int=True):
    """SciPy's input forms for NumPy: masked arrays are refused (their mask would be
    ignored); integer and bool arrays promote as NumPy's ufuncs do (np.exp: int8 -> float16,
    int16 -> float32, int32/int64 -> float64). Tensors and float arrays pass unchanged."""
    if isinstance(x, np.ndarray):
        if isinstance(x, np.ma.MaskedArray):
            raise TypeError(f"softmax.{op}: masked arrays are not supported (the mask would "
                            "be ignored); fill the masked entries first, e.g. x.filled(-numpy.inf)")
        if promote_int and x.dtype.kind in "iub":
            return x.astype(np.result_type(x.dtype, np.float16))
        return x
    if isinstance(x, (list, tuple)) or np.isscalar(x):
        a = np.asarray(x)
        if promote_int and a.dtype.kind in "iub":
            return a.astype(np.result_type(a.dtype, np.float16))
        return a if a.dtype.kind == "f" else x  # the core names what else it is
    return x


# Op codes of the core's small-call entry points (python/bind_core.cc: _fast_np, _fast_torch).
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, SIGMOID = 0, 1, 2, 3
_Tensor = None  # torch.Tensor, once torch is imported (never imported here)


def _see_torch(core):
    """Hands torch's objects to the core once torch has been imported; False before."""
    global _Tensor
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "Tensor"):
        return False
    core._fast_torch_init(torch.Tensor, torch.empty_like, torch.is_grad_enabled,
                          (torch.float32, torch.float64, torch.bfloat16, torch.float16))
    _Tensor = torch.Tensor
    return True


def fast_call(core, op, x, axis=-1, temperature=1.0, threads=0, keepdims=False):
    """The small-call path: op (SOFTMAX, ...) of x along `axis` for a C-contiguous float NumPy
    array of rank >= 1 (float16/32/64), or a C-contiguous CPU torch tensor of rank >= 1 (also
    bfloat16) that needs no autograd; None when x is anything else (the caller takes the
    general path).

    Each kind is one call of a positional-only core entry point: _fast_np returns a new
    array; _fast_torch checks the tensor (exactly torch.Tensor, no subclass such as
    Parameter; dtype, is_cpu, is_contiguous, requires_grad with grad mode), allocates
    torch.empty_like(x) (x.new_empty of the reduced shape for LOGSUMEXP) and writes it
    through data_ptr, so no DLPack capsule, NumPy view or Python-level attribute read is
    made. Whatever they do not take, or an error (bad axis or temperature), makes them answer
    None, and the general path then gives the answer or the error. (A real-dtype tensor has no
    negative or conjugate bit outside torch's private _neg_view.)"""
    c = x.__class__
    if c is np.ndarray:
        try:
            return core._fast_np(op, x, axis, temperature, keepdims, threads)
        except TypeError:  # an argument of another type: the general path names it
            return None
    if c is _Tensor or (_Tensor is None and _see_torch(core) and c is _Tensor):
        return core._fast_torch(op, x, axis, temperature, threads, keepdims)
    return None


def _ndim(x):
    return x.ndim if hasattr(x, "ndim") else np.ndim(x)


def resolve_axes(axis, dim, ndim, op):
    """axis / dim -> an int (one axis) or a tuple of normalised axes (several, all or none).

    axis=None means every axis (SciPy, JAX); the default is -1 for every input type."""
    if dim is not None:
        if axis is not DEFAULT_AXIS:
            raise TypeError(f"softmax.{op}: pass either axis or dim (its alias), not both")
        axis = dim
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        out = []
        for a in axis:
            if isinstance(a, bool) or not hasattr(a, "__index__"):
                raise TypeError(f"softmax.{op}: axis entries must be integers, not {a!r}")
            a = a.__index__()
            if not -ndim <= a < ndim:
                raise ValueError(f"softmax.{op}: argument 'axis' = {a}: must be in "
                                 f"[{-ndim}, {ndim - 1}] for a tensor of rank {ndim}")
            a %= ndim
            if a in out:
                raise ValueError(f"softmax.{op}: argument 'axis' = {tuple(axis)}: repeated axis {a}")
            out.append(a)
        if len(out) == 1:
            return out[0]
        return tuple(out)
    if ndim == 0 and not isinstance(axis, bool) and hasattr(axis, "__index__") \
            and axis.__index__() in (0, -1):
        return ()  # a 0-d input: the one element is its own row
    return axis


def fold(x, axes):
    """Moves `axes` to the end and flattens them into one: (x2, plan) for unfold."""
    nd = _ndim(x)
    rest = [i for i in range(nd) if i not in axes]
    perm = rest + list(axes)
    shape = tuple(x.shape)
    n = 1
    for a in axes:
        n *= shape[a]
    moved = x.permute(perm) if is_tensor(x) else np.transpose(x, perm)  # a list: 0-d too
    x2 = moved.reshape(tuple(shape[i] for i in rest) + (n,))
    return x2, (shape, perm, rest)


def unfold(y2, plan):
    """Inverse of fold for a result of the folded shape."""
    shape, perm, _ = plan
    moved = y2.reshape(tuple(shape[i] for i in perm))
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return moved.permute(inv) if is_tensor(moved) else np.transpose(moved, inv)


def unfold_reduced(r, plan, keepdims):
    """A reduction of the folded tensor over its last axis, back to x's reduced shape."""
    shape, perm, rest = plan
    if not keepdims:
        return r
    kept = tuple(shape[i] if i in rest else 1 for i in range(len(shape)))
    return r.reshape(kept)


def dtype_name(dtype):
    """A dtype argument's name ('float32', 'bfloat16', ...) or None if not a float dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype == "bfloat16":
        return "bfloat16"
    mod = type(dtype).__module__
    if mod == "torch":
        return str(dtype)[6:]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return None
    return dt.name if dt.kind == "f" else None


def wide_plan(x, dtype, out):
    """How to honour dtype= / out= pairs the core does not pair directly (float64 with the
    f32 family): 'up' casts the input to float64 first (computing in the wider type), 'down'
    computes in float64 and rounds the result once; None lets the core decide."""
    want = dtype_name(dtype)
    if want is None and out is not None and dtype is None:
        want = dtype_name(getattr(out, "dtype", None))
    have = dtype_name(getattr(x, "dtype", None))
    if want is None or have is None or (want == "float64") == (have == "float64"):
        return None
    return "up" if want == "float64" else "down"


def cast(y, like_dtype_name):
    """y converted to the named float dtype, keeping its container."""
    if is_tensor(y):
        import torch
        return y.to(getattr(torch, like_dtype_name))
    return y.astype(like_dtype_name)
