"""A strict parser for the same completions: the baseline lenient parsing is measured against.

Why: "how many outputs does lenient parsing rescue" needs a parser that does no repair. This
one accepts only what the prompt literally asked for -- every output field under its own
`[[ ## name ## ]]` marker (chat) or one bare JSON object with every key (json), values that are
exactly a label, `int(...)`, `float(...)`, `true`/`false` -- and nothing else: no fences, no
prose, no case or punctuation fixes, no spelled-out numbers, no echoed notes. Stdlib only.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any

from promptcast_runtime.coerce import object_fields

_MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")


def strict_value(text: str, tp: Any) -> Any:
    """`text` as `tp` with no repair; ValueError otherwise."""
    if typing.get_origin(tp) is typing.Literal:
        if text in typing.get_args(tp):
            return text
        raise ValueError(f"not exactly one of {typing.get_args(tp)}: {text!r}")
    if tp is str:
        return text
    if tp is bool:
        if text in ("true", "false", "True", "False"):
            return text.lower() == "true"
        raise ValueError(f"not true/false: {text!r}")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    raise ValueError(f"unsupported type {tp!r}")


def strict_chat(outputs: dict[str, Any], text: str) -> dict[str, Any]:
    """Field markers for every output, each value exactly of its type."""
    parts = _MARKER.split(text)
    sections = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    missing = [name for name in outputs if name not in sections]
    if missing:
        raise ValueError(f"missing field markers: {missing}")
    return {name: strict_value(sections[name], tp) for name, tp in outputs.items()}


def strict_json(outputs: dict[str, Any], text: str) -> dict[str, Any]:
    """One JSON object with every output key, values already of the right JSON type."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    result = {}
    for name, tp in outputs.items():
        if name not in data:
            raise ValueError(f"missing key {name!r}")
        value = data[name]
        ok = {
            str: isinstance(value, str),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            bool: isinstance(value, bool),
        }.get(tp)
        if ok is None:  # Literal
            ok = value in typing.get_args(tp)
        if not ok:
            raise ValueError(f"{name}: {value!r} is not {tp!r}")
        result[name] = value
    return result


def output_types(returns: Any, name: str = "answer") -> dict[str, Any]:
    """Output field name -> type, for a structured return type or a single `name` field."""
    try:
        return object_fields(returns)
    except TypeError:
        return {name: returns}
