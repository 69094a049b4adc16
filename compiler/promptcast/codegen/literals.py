"""Python source literals for arbitrary data: strings from users, datasets and models.

Everything a prompt contains ends up in generated source as a literal, so this is where
injection would happen if it could. Values are emitted with `repr` (which escapes quotes,
backslashes, NUL, CR and unicode as needed) and never by pasting text into code; multi-line
strings become a parenthesized concatenation of one literal per line, which black keeps and
reviewers can read. `ast.literal_eval` of the result gives back the value exactly (tested).
"""

from __future__ import annotations

from typing import Any


def py_literal(value: Any, indent: int = 0) -> str:
    """Source text of a literal equal to `value` (str, int, float, bool, None, list, tuple, dict)."""
    pad = "    " * (indent + 1)
    if isinstance(value, str):
        return _str_literal(value, pad)
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} has no Python literal; demos must hold finite numbers")
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}{py_literal(str(k), indent + 1)}: {py_literal(v, indent + 1)},"
            for k, v in value.items()
        ]
        return "{\n" + "\n".join(items) + "\n" + "    " * indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "()" if isinstance(value, tuple) else "[]"
        items = [f"{pad}{py_literal(v, indent + 1)}," for v in value]
        open_, close = ("(", ")") if isinstance(value, tuple) else ("[", "]")
        return open_ + "\n" + "\n".join(items) + "\n" + "    " * indent + close
    raise TypeError(f"cannot write a {type(value).__name__} as a Python literal: {value!r}")


def _str_literal(text: str, pad: str) -> str:
    lines = text.splitlines(keepends=True)
    if len(lines) <= 1:
        return repr(text)
    body = "\n".join(pad + repr(line) for line in lines)
    return "(\n" + body + "\n" + pad[:-4] + ")"
