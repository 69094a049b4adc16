"""Numeric answers count as right within 1% (facts are rounded)."""

from typing import Any


def close_enough(example: Any, prediction: Any) -> float:
    expected = float(example["answer"])
    try:
        got = float(prediction)
    except (TypeError, ValueError):
        return 0.0
    return float(abs(got - expected) <= 0.01 * max(1.0, abs(expected)))
