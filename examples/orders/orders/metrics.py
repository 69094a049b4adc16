"""The fraction of an order's fields read correctly, with feedback naming the wrong ones."""

from __future__ import annotations

from typing import Any


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def order_fields(example: Any, prediction: Any) -> tuple[float, str]:
    """Score 0-1: item (case-insensitive), quantity, unit price (to the cent), express."""
    expected = {name: example[name] for name in ("item", "quantity", "unit_price", "express")}
    wrong = []
    for name, want in expected.items():
        got = _field(prediction, name)
        if name == "item":
            ok = isinstance(got, str) and got.strip().lower() == str(want).lower()
        elif name == "unit_price":
            ok = isinstance(got, (int, float)) and abs(float(got) - float(want)) < 0.005
        else:
            ok = got == want
        if not ok:
            wrong.append(f"{name}: expected {want!r}, got {got!r}")
    score = 1 - len(wrong) / len(expected)
    return score, "; ".join(wrong) or "all fields correct"
