"""softmax: softmax, log-softmax, logsumexp and their neighbours on strided tensors.

Every function takes NumPy arrays (float16/32/64, any strides) or CPU tensors with
``__dlpack__`` (torch, including bfloat16) without copying, and returns the same kind of
object. Keyword arguments follow torch.nn.functional / scipy.special (``axis`` or ``dim``,
``keepdims`` or ``keepdim``, ``temperature``, ``dtype``, ``out``, ``threads``). Library errors
raise ValueError (TypeError for dtype errors) with the library's message.

torch tensors that require grad are differentiable through every op with a gradient
(softmax, log_softmax, logsumexp, sigmoid, masked_softmax, cross_entropy, nll_loss,
linear_cross_entropy, attention, scaled_dot_product_attention, sampled_softmax_loss,
hierarchical_softmax_loss, adaptive_log_softmax_with_loss, gumbel_softmax, sparsemax); the
backward passes run the library's fused backward kernels. ``softmax.nn`` holds torch.nn.Module
wrappers (``CrossEntropyLoss``, ``LinearCrossEntropyLoss``, ``AdaptiveLogSoftmaxWithLoss``,
...).
"""
import inspect as _inspect

from . import _core
from ._forms import DEFAULT_AXIS as _AXIS
from . import _forms
from ._forms import fast_call as _fast, SOFTMAX as _SM, LOG_SOFTMAX as _LSM, \
    LOGSUMEXP as _LSE, SIGMOID as _SIG

_INTS = (int, type(_AXIS))
from ._wrap import wrap as _wrap, signature_of as _signature_of

__version__ = _core.__version__

# Every core function, with a signature and one-line errors for bad keywords; the ones below
# are then replaced by Python functions that add autograd and SciPy's argument forms.
for _name in dir(_core):
    _obj = getattr(_core, _name)
    if not _name.startswith("_") and callable(_obj) and type(_obj).__name__ == "builtin_function_or_method":
        globals()[_name] = _wrap(_obj)
    elif not _name.startswith("_") and isinstance(_obj, type):
        globals()[_name] = _obj
del _name, _obj
if hasattr(_core, "STATS_CHUNK"):  # softmax_stats: classes per statistics record
    STATS_CHUNK = _core.STATS_CHUNK


def _ag():
    """softmax._autograd (imports torch), loaded on first use and then kept."""
    ag = _AG[0]
    if ag is None:
        from . import _autograd as ag
        _AG[0] = ag
    return ag


_AG = [None]


def _pick_x(x, aliases, op):
    """x given positionally or as one of its keyword aliases (input=, a=)."""
    given = [v for v in aliases.values() if v is not _MISSING]
    if x is not _MISSING:
        if given:
            raise TypeError(f"softmax.{op}: pass the input once (x, {', '.join(aliases)} are aliases)")
        return x
    if len(given) != 1:
        raise TypeError(f"softmax.{op}() missing required argument 'x'" if not given else
                        f"softmax.{op}: pass the input once ({', '.join(aliases)} are aliases)")
    return given[0]


class _Missing:
    def __repr__(self):
        return "<required>"


_MISSING = _Missing()


def _same_shape(op, core_fn, x, axis, dim, temperature, dtype, out, threads):
    """softmax / log_softmax past the small-call path: SciPy axis forms, dtype plans, autograd."""
    x = _forms.as_input(x, op)

    def grad_fn(*args):
        return getattr(_ag(), op)(*args)

    if (axis.__class__ is int or axis is _AXIS) and dim is None and dtype is None \
            and out is None and getattr(x, "ndim", 1) > 0:
        # One axis, no dtype plan (what the small-call path did not take: autograd,
        # bfloat16 and other DLPack tensors, promoted or converted inputs).
        if _forms.needs_grad(x):
            return grad_fn(x, axis, temperature, None, threads)
        return core_fn(x, axis, temperature=temperature, threads=threads)
    axes = _forms.resolve_axes(axis, dim, getattr(x, "ndim", 0), op)
    plan = _forms.wide_plan(x, dtype, out)
    want = _forms.dtype_name(dtype) or _forms.dtype_name(getattr(out, "dtype", None))
    if plan == "up":
        x, dtype_arg = _forms.cast(x, "float64"), None
    elif plan == "down":
        dtype_arg = None
    else:
        dtype_arg = dtype
    folded = None
    if isinstance(axes, tuple):
        x, folded = _forms.fold(x, axes)
        axes = -1
    if _forms.needs_grad(x):
        y = grad_fn(x, axes, temperature, dtype_arg, threads)
    else:
        direct = out if folded is None and plan is None else None
        y = core_fn(x, axes, temperature=temperature, dtype=dtype_arg, out=direct, threads=threads)
        if direct is not None:
            return out
    if folded is not None:
        y = _forms.unfold(y, folded)
    if plan == "down":
        y = _forms.cast(y, want)
    if out is not None:
        return _copy_into(out, y)
    return y


def _torch_from(a):
    import torch
    return torch.from_numpy(a)


def _copy_into(out, y):
    if _forms.is_tensor(out):
        out.copy_(y if _forms.is_tensor(y) else _torch_from(y))
    else:
        import numpy as np
        np.copyto(out, y.detach().numpy() if _forms.is_tensor(y) else y, casting="same_kind")
    return out


def softmax(x=_MISSING, axis=_AXIS, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0,
            input=_MISSING):
    """softmax(x, axis=-1, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0)

    Softmax of ``x / temperature`` along one axis, several axes or all of them.

    ``y_i = exp((x_i - max) / T) / sum_j exp((x_j - max) / T)``, computed with max subtraction
    and f32 accumulation (f64 for float64), so large logits never overflow. Differentiable for
    torch tensors that require grad (backward: the library's fused softmax backward).

    Parameters
    ----------
    x : array_like or tensor, shape (..., n, ...)
        A NumPy array of float16, float32 or float64 (any strides), or a CPU tensor with
        ``__dlpack__`` such as a ``torch.Tensor`` (also bfloat16); not copied. Lists,
        scalars and 0-d arrays are accepted; integer and bool NumPy arrays promote as NumPy's
        ufuncs do (int32/int64 -> float64); masked arrays raise TypeError. Also accepted as
        ``input=`` (torch's name).
    axis : int, tuple of int or None, optional
        The axis or axes to normalise over (default -1, as JAX and ONNX; SciPy's default is
        None = all axes, torch requires `dim`). None means every axis.
    dim : int or tuple of int, optional
        Alias of `axis` (PyTorch's name). Give at most one of the two.
    temperature : float, optional
        ``T`` in ``softmax(x / T)``; finite and > 0. Default 1.
    dtype : dtype, optional
        Output dtype (numpy or torch dtype, or a name), any float type: float64 output of a
        float32 input computes in float64; float32/16 output of a float64 input computes in
        float64 and rounds once. Default: the dtype of `x`.
    out : ndarray or tensor, optional
        Where to write the result: the shape of `x`; may be `x` itself (in place).
    threads : int, optional
        Worker threads; 0 (default) uses the OpenMP default. Results do not depend on it.

    Returns
    -------
    y : ndarray or tensor, shape of `x`
        `out` if given; otherwise the container kind of `x` (NumPy in, NumPy out; torch in,
        torch out).

    Raises
    ------
    ValueError
        Bad axis, temperature <= 0 / NaN / inf, wrong `out` shape or overlap, a non-CPU tensor.
    TypeError
        Unsupported dtypes, masked arrays, an unknown keyword (one line naming it).

    Examples
    --------
    >>> import numpy as np, softmax
    >>> softmax.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax.softmax(np.zeros((2, 2), np.float32), axis=None)
    array([[0.25, 0.25],
           [0.25, 0.25]], dtype=float32)
    """
    ax = axis if dim is None else dim if axis is _AXIS else None  # torch callers pass dim=
    if ax.__class__ in _INTS and dtype is None and out is None and input is _MISSING:
        y = _core._fast_torch(_SM, x, ax, temperature, threads, False) \
            if x.__class__ is _forms._Tensor else _fast(_core, _SM, x, ax, temperature, threads)
        if y is not None:
            return y
    x = _pick_x(x, {"input": input}, "softmax")
    return _same_shape("softmax", _core.softmax, x, axis, dim, temperature, dtype, out, threads)


def log_softmax(x=_MISSING, axis=_AXIS, *, dim=None, temperature=1.0, dtype=None, out=None,
                threads=0, input=_MISSING):
    """log_softmax(x, axis=-1, *, dim=None, temperature=1.0, dtype=None, out=None, threads=0)

    Log-softmax of ``x / temperature`` along one axis, several axes or all of them.

    ``y_i = (x_i - max) / T - log(sum_j exp((x_j - max) / T))``, computed in that form (never
    as ``log(softmax)``). Differentiable for torch tensors (fused log-softmax backward).

    Parameters
    ----------
    x : array_like or tensor, shape (..., n, ...)
        float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
        (also bfloat16). Integer/bool NumPy arrays promote; masked arrays raise TypeError;
        0-d accepted. Also ``input=``.
    axis : int, tuple of int or None, optional
        Axis or axes (default -1; None = all axes). `dim` is an alias.
    dim : int or tuple of int, optional
        Alias of `axis`.
    temperature : float, optional
        Finite and > 0; default 1.
    dtype : dtype, optional
        Output dtype, any float type (see :func:`softmax`); default the dtype of `x`.
    out : ndarray or tensor, optional
        Output of the shape of `x`; may be `x` itself.
    threads : int, optional
        Worker threads, 0 = OpenMP default.

    Returns
    -------
    y : ndarray or tensor, shape of `x`
        Same container kind as `x` (or `out`).

    Raises
    ------
    ValueError
        Bad axis, temperature, `out` shape, overlap or strides.
    TypeError
        Unsupported dtypes, masked arrays, unknown keywords.

    Examples
    --------
    >>> import numpy as np, softmax
    >>> softmax.log_softmax(np.array([1000.0, 1000.0]))
    array([-0.69314718, -0.69314718])
    """
    ax = axis if dim is None else dim if axis is _AXIS else None  # torch callers pass dim=
    if ax.__class__ in _INTS and dtype is None and out is None and input is _MISSING:
        y = _core._fast_torch(_LSM, x, ax, temperature, threads, False) \
            if x.__class__ is _forms._Tensor else _fast(_core, _LSM, x, ax, temperature, threads)
        if y is not None:
            return y
    x = _pick_x(x, {"input": input}, "log_softmax")
    return _same_shape("log_softmax", _core.log_softmax, x, axis, dim, temperature, dtype, out, threads)


def _logsumexp_b(a, axes, b, keepdims, return_sign, temperature, threads):
    """log |sum b exp(a)| and its sign (SciPy's b= and return_sign=), NumPy inputs."""
    import numpy as np
    if _forms.is_tensor(a) or _forms.is_tensor(b):
        raise TypeError("softmax.logsumexp: b= and return_sign= take NumPy inputs "
                        "(for tensors, add log(b) to the logits)")
    a = np.asarray(a) / temperature if temperature != 1.0 else np.asarray(a)
    if b is None:
        b = np.ones((), a.dtype)
    b = np.asarray(b)
    if b.dtype.kind in "iub":
        b = b.astype(np.float64)
    a, b = np.broadcast_arrays(a, b)
    dt = np.result_type(a.dtype, b.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        logb = np.log(np.abs(b)).astype(dt)
        inf = np.array(-np.inf, dt)
        pos = np.where(b > 0, a + logb, inf)
        neg = np.where(b < 0, a + logb, inf)
    lp = logsumexp(pos, axes, keepdims=keepdims, threads=threads)
    ln = logsumexp(neg, axes, keepdims=keepdims, threads=threads)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hi, lo = np.maximum(lp, ln), np.minimum(lp, ln)
        r = hi + np.log1p(-np.exp(lo - hi))
        sign = np.where(lp > ln, 1.0, np.where(lp < ln, -1.0, 0.0)).astype(dt)
        r = np.where(np.isneginf(hi) | (lp == ln), -np.inf, r)
        nan = np.isnan(lp) | np.isnan(ln)
        r = np.where(nan, np.nan, r)
        sign = np.where(nan, np.nan, sign)
    r = np.asarray(r, dt)
    if return_sign:
        return r, sign
    return np.where(sign < 0, np.nan, r)


def logsumexp(x=_MISSING, axis=_AXIS, b=None, keepdims=None, return_sign=False, *, dim=None,
              keepdim=None, temperature=1.0, dtype=None, out=None, threads=0, a=_MISSING,
              input=_MISSING):
    """logsumexp(x, axis=-1, b=None, keepdims=False, return_sign=False, *, dim=None, keepdim=None, temperature=1.0, dtype=None, out=None, threads=0)

    ``log(sum(exp(x / temperature)))`` over one axis, several axes or all, without overflow.

    Equals ``max / T + log(sum_i exp((x_i - max) / T))``. Differentiable for torch tensors
    (backward: the library's softmax times the incoming gradient / T).

    Parameters
    ----------
    x : array_like or tensor, shape (..., n, ...)
        float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
        (also bfloat16). Integer/bool NumPy arrays promote; masked arrays raise TypeError;
        0-d accepted. Also ``a=`` (SciPy's name) or ``input=`` (torch's).
    axis : int, tuple of int or None, optional
        The axis or axes to reduce (default -1; None = all axes, SciPy's default). `dim` is an
        alias.
    b : array_like, optional
        SciPy's scale factors: ``log(sum(b * exp(x)))``, broadcast against `x`; may be
        negative (then see `return_sign`). NumPy inputs only.
    keepdims : bool, optional
        Keep the reduced axes with size 1 (default False). `keepdim` is an alias.
    return_sign : bool, optional
        Also return the sign of the sum (SciPy): ``(log|sum|, sign)``; without it a negative
        sum gives NaN. NumPy inputs only.
    dim : int or tuple of int, optional
        Alias of `axis`.
    keepdim : bool, optional
        Alias of `keepdims` (PyTorch's name).
    temperature : float, optional
        Finite and > 0; default 1.
    dtype : dtype, optional
        Output dtype, any float type (see :func:`softmax`); default the dtype of `x`.
    out : ndarray or tensor, optional
        Output of the reduced shape; must not overlap `x`.
    threads : int, optional
        Worker threads, 0 = OpenMP default.

    Returns
    -------
    y : ndarray or tensor, shape of `x` without `axis` (or with it of size 1)
        Same container kind as `x` (or `out`); ``(y, sign)`` with `return_sign`.

    Raises
    ------
    ValueError
        Bad axis, temperature, `out` shape, overlap or strides.
    TypeError
        Unsupported dtypes, masked arrays, b= on tensors, unknown keywords.

    Examples
    --------
    >>> import numpy as np, softmax
    >>> softmax.logsumexp(np.array([[0.0, 0.0], [10.0, 10.0]]))
    array([ 0.69314718, 10.69314718])
    >>> softmax.logsumexp(np.zeros((2, 3)), axis=0, keepdims=True).shape
    (1, 3)
    >>> softmax.logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -1.0]), return_sign=True)
    (array(1.54132485), array(-1.))
    """
    ax = axis if dim is None else dim if axis is _AXIS else None
    if ax.__class__ in _INTS and dtype is None and out is None and b is None \
            and not return_sign and (keepdims is None or keepdim is None) and a is _MISSING \
            and input is _MISSING:
        y = _fast(_core, _LSE, x, ax, temperature, threads, bool(keepdim or keepdims))
        if y is not None:
            return y
    x = _pick_x(x, {"a": a, "input": input}, "logsumexp")
    x = _forms.as_input(x, "logsumexp")
    if keepdims is not None and keepdim is not None:
        raise TypeError("softmax.logsumexp: pass either keepdims or keepdim (its alias), not both")
    kd = bool(keepdim if keepdims is None else keepdims)
    if (axis.__class__ is int or axis is _AXIS) and dim is None and dtype is None \
            and out is None and b is None and not return_sign and getattr(x, "ndim", 1) > 0:
        if _forms.needs_grad(x):
            return _ag().logsumexp(x, axis, kd, temperature, None, threads)
        return _core.logsumexp(x, axis, keepdims=kd, temperature=temperature, threads=threads)
    axes = _forms.resolve_axes(axis, dim, getattr(x, "ndim", 0), "logsumexp")
    if b is not None or return_sign:
        return _logsumexp_b(x, axes, b, kd, return_sign, temperature, threads)
    plan = _forms.wide_plan(x, dtype, out)
    want = _forms.dtype_name(dtype) or _forms.dtype_name(getattr(out, "dtype", None))
    dtype_arg = None if plan else dtype
    if plan == "up":
        x = _forms.cast(x, "float64")
    folded = None
    if isinstance(axes, tuple):
        x, folded = _forms.fold(x, axes)
        axes = -1
    if _forms.needs_grad(x):
        y = _ag().logsumexp(x, axes, False if folded else kd, temperature, dtype_arg, threads)
    else:
        direct = out if folded is None and plan is None else None
        y = _core.logsumexp(x, axes, keepdims=False if folded else kd, temperature=temperature,
                            dtype=dtype_arg, out=direct, threads=threads)
        if direct is not None:
            return out
    if folded is not None:
        y = _forms.unfold_reduced(y, folded, kd)
    if plan == "down":
        y = _forms.cast(y, want)
    if out is not None:
        return _copy_into(out, y)
    return y


def sigmoid(x=_MISSING, *, dtype=None, out=None, threads=0, input=_MISSING):
    """sigmoid(x, *, dtype=None, out=None, threads=0)

    Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise (``scipy.special.expit``).

    Never overflows; ``sigmoid(NaN) = NaN``, ``sigmoid(+-inf) = 1, 0``. Differentiable for
    torch tensors (``dx = dy * y * (1 - y)`` from the saved output).

    Parameters
    ----------
    x : array_like or tensor, any shape (rank 0 included)
        float16, float32, float64 NumPy array (any strides) or CPU ``__dlpack__`` tensor
        (also bfloat16). Integer/bool NumPy arrays promote. Also ``input=``.
    dtype : dtype, optional
        Output dtype; default the dtype of `x` (float64 pairs only with float64).
    out : ndarray or tensor, optional
        Output of the shape of `x`; may be `x` itself.
    threads : int, optional
        Worker threads, 0 = OpenMP default.

    Returns
    -------
    y : ndarray or tensor, shape of `x`
        Same container kind as `x` (or `out`).

    Raises
    ------
    ValueError
        Wrong `out` shape, overlap or strides.
    TypeError
        Unsupported dtypes.

    Examples
    --------
    >>> import numpy as np, softmax
    >>> softmax.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    if dtype is None and out is None and input is _MISSING:
        y = _fast(_core, _SIG, x, -1, 1.0, threads)
        if y is not None:
            return y
    x = _forms.as_input(_pick_x(x, {"input": input}, "sigmoid"), "sigmoid")
    if out is None and _forms.needs_grad(x):
        return _ag().sigmoid(x, dtype, threads)
    return _core.sigmoid(x, dtype=dtype, out=out, threads=threads)


expit = sigmoid

# The documented signatures (the keyword aliases input= / a= stay out of them).
for _fn in (softmax, log_softmax, logsumexp, sigmoid):
    _fn.__doc__ = _inspect.cleandoc(_fn.__doc__)
    _fn.__signature__ = _signature_of(_fn)
del _fn

from ._losses import cross_entropy, nll_loss, linear_cross_entropy  # noqa: E402
from ._attention import masked_softmax, attention, scaled_dot_product_attention  # noqa: E402
from . import _large_vocab  # noqa: E402

if _large_vocab._HAS_LARGE_VOCAB:
    from ._large_vocab import (sampled_softmax_loss, hierarchical_softmax_loss,  # noqa: E402
                               hierarchical_log_prob, hierarchical_predict,
                               adaptive_log_softmax_with_loss, adaptive_log_prob, adaptive_predict)
if _large_vocab._HAS_SPARSEMAX:
    from ._large_vocab import gumbel_softmax, sparsemax  # noqa: E402

if not hasattr(_core, "cross_entropy"):
    del cross_entropy, nll_loss, linear_cross_entropy
if not hasattr(_core, "attention"):
    del masked_softmax, attention, scaled_dot_product_attention


def __getattr__(name):
    # softmax.nn imports torch, so it loads on first use.
    if name == "nn":
        from . import nn
        return nn
    raise AttributeError(f"module 'softmax' has no attribute '{name}'")
