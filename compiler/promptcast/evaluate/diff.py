"""Field-level differences between what an example expected and what the program returned.

Why: a structured output (a pydantic model, a dataclass, a dict) that misses one field is
unreadable as two truncated JSON blobs side by side; the failure table and the HTML report show
the fields that differ, by path (`items[2].qty`), with both values whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .data import Example

MISSING = "<missing>"
"""Shown for a field one side does not have."""


class Difference(NamedTuple):
    path: str
    expected: Any
    got: Any


def expected_value(example: Example) -> Any:
    """The expected output as the program returns it: the one value, or the fields as a dict."""
    expected = example.expected()
    if len(expected) == 1:
        return next(iter(expected.values()))
    return dict(expected)


def differences(expected: Any, got: Any, path: str = "") -> list[Difference]:
    """Every leaf where `got` differs from `expected` (both JSON-ready values), in order.

    Dicts compare key by key (a key on one side only is a difference with `MISSING` on the
    other), lists index by index; anything else compares whole. Equal values: no difference.
    """
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        out: list[Difference] = []
        keys = list(expected) + [k for k in got if k not in expected]
        for key in keys:
            sub = f"{path}.{key}" if path else str(key)
            if key not in got:
                out.append(Difference(sub, expected[key], MISSING))
            elif key not in expected:
                out.append(Difference(sub, MISSING, got[key]))
            else:
                out.extend(differences(expected[key], got[key], sub))
        return out
    if _is_list(expected) and _is_list(got):
        out = []
        for i in range(max(len(expected), len(got))):
            sub = f"{path}[{i}]"
            if i >= len(got):
                out.append(Difference(sub, expected[i], MISSING))
            elif i >= len(expected):
                out.append(Difference(sub, MISSING, got[i]))
            else:
                out.extend(differences(expected[i], got[i], sub))
        return out
    if expected == got and isinstance(expected, bool) == isinstance(got, bool):
        return []
    return [Difference(path or "(value)", expected, got)]


def is_structured(value: Any) -> bool:
    return isinstance(value, Mapping) or _is_list(value)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))
