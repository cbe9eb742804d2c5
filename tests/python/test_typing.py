# The typed, discoverable API: inspect.signature of every public function, the installed
# stubs (softmax/__init__.pyi, py.typed) matching the functions name for name and parameter for
# parameter, and docstrings that start with the signature.
import ast
import inspect
import os
import types

import softmax as sm

PKG = os.path.dirname(sm.__file__)


def public_functions():
    return {n: getattr(sm, n) for n in dir(sm)
            if not n.startswith("_") and callable(getattr(sm, n))
            and not isinstance(getattr(sm, n), (type, types.ModuleType))}


def stub_functions():
    with open(os.path.join(PKG, "__init__.pyi"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_py_typed_and_stub_ship_with_the_package():
    assert os.path.isfile(os.path.join(PKG, "py.typed"))
    assert os.path.isfile(os.path.join(PKG, "__init__.pyi"))


def test_every_public_function_has_a_signature_and_a_stub():
    stubs = stub_functions()
    funcs = public_functions()
    assert sorted(funcs) == sorted(stubs), (
        f"stubs and module differ in {sorted(set(funcs) ^ set(stubs))}: run python/gen_stubs.py")
    for name, fn in funcs.items():
        sig = inspect.signature(fn)
        node = stubs[name]
        a = node.args
        stub_params = [p.arg for p in a.posonlyargs + a.args] + [p.arg for p in a.kwonlyargs]
        assert [p for p in sig.parameters] == stub_params, name
        kwonly = [p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert kwonly == [p.arg for p in a.kwonlyargs], name


def test_docstrings_start_with_the_signature():
    for name, fn in public_functions().items():
        head = fn.__doc__.split("\n", 1)[0]
        assert head.startswith(name + "(") or (name == "expit" and head.startswith("sigmoid(")), name


def test_signature_defaults():
    sig = inspect.signature(sm.softmax)
    assert sig.parameters["axis"].default == -1
    assert sig.parameters["dim"].kind is inspect.Parameter.KEYWORD_ONLY
    sig = inspect.signature(sm.scaled_dot_product_attention)
    assert list(sig.parameters)[:7] == ["query", "key", "value", "attn_mask", "dropout_p",
                                        "is_causal", "scale"]
    assert sig.parameters["dropout_p"].default == 0.0


def test_new_docstring_examples_run():
    import doctest
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    names = ["scaled_dot_product_attention", "attention_backward", "logsumexp", "softmax"]
    for name in names:
        for test in finder.find(getattr(sm, name), name, globs={}):
            runner.run(test)
    assert runner.failures == 0 and runner.tries >= len(names)
