"""Docstrings of the Python-level functions built from the core's (no copy of the text)."""

__all__ = ["with_note"]


def with_note(core_fn, note, params=""):
    """core_fn's docstring with `note` added before its Parameters section and `params`
    (numpydoc entries) added at the end of that section."""
    doc = core_fn.__doc__ or ""
    head, sep, rest = doc.partition("\n\nParameters\n----------\n")
    if not sep:
        return doc + "\n\n" + note
    body, sep2, tail = rest.partition("\n\nReturns\n-------\n")
    if params:
        body = body.rstrip("\n") + "\n" + params.rstrip("\n")
    return head + "\n\n" + note.strip("\n") + sep + body + sep2 + tail
