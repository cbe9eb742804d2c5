"""Signatures and one-line keyword errors for the functions of the compiled core.

pybind11 functions have no ``__text_signature__`` and report a bad call with a dump of every
argument (whole arrays included). Each core function's docstring starts with its Python
signature line, so :func:`wrap` builds an ``inspect.Signature`` from it and wraps the function
so that a call the core rejects is re-checked against that signature, raising a one-line
``TypeError`` that names the unexpected keyword (or the missing argument).
"""
import functools
import inspect

__all__ = ["wrap", "signature_of", "bad_call"]


def signature_of(fn):
    """The ``inspect.Signature`` of a core function, from its docstring's first line."""
    doc = (fn.__doc__ or "").lstrip()
    head = doc.split("\n", 1)[0]
    name = fn.__name__
    if not head.startswith(name + "(") or not head.endswith(")"):
        return None
    namespace = {}
    try:
        exec(f"def {name}{head[len(name):]}: pass", {}, namespace)  # defaults are literals
    except SyntaxError:
        return None
    return inspect.signature(namespace[name])


def bad_call(qualname, sig, args, kwargs):
    """A one-line TypeError for a call that does not fit `sig` (None if it fits)."""
    if sig is None:
        return None
    names = sig.parameters
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in names.values())
    for k in kwargs:
        if k not in names and not has_var_kw:
            return TypeError(f"{qualname}() got an unexpected keyword argument '{k}'")
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        return TypeError(f"{qualname}(): {e}")
    return None


def wrap(fn, module="softmax"):
    """`fn` with a signature and one-line errors for calls that do not match it."""
    sig = signature_of(fn)
    qualname = f"{module}.{fn.__name__}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TypeError as e:
            if "incompatible function arguments" not in str(e):
                raise
            err = bad_call(qualname, sig, args, kwargs)
            if err is None:
                types = ", ".join(type(a).__name__ for a in args)
                kw = ", ".join(f"{k}: {type(v).__name__}" for k, v in kwargs.items())
                err = TypeError(f"{qualname}(): argument types do not match its signature "
                                f"{sig} (got ({types}{', ' if types and kw else ''}{kw}))")
            raise err from None

    if sig is not None:
        wrapper.__signature__ = sig
    wrapper.__module__ = module
    return wrapper
