"""The agent's tools: ordinary typed functions with docstrings (that is what the model reads)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

PLANETS: dict[str, dict[str, float]] = {
    "mercury": {"moons": 0, "diameter_km": 4879, "day_hours": 4222.6},
    "venus": {"moons": 0, "diameter_km": 12104, "day_hours": 2802.0},
    "earth": {"moons": 1, "diameter_km": 12756, "day_hours": 24.0},
    "mars": {"moons": 2, "diameter_km": 6792, "day_hours": 24.7},
    "jupiter": {"moons": 95, "diameter_km": 142984, "day_hours": 9.9},
    "saturn": {"moons": 146, "diameter_km": 120536, "day_hours": 10.7},
    "uranus": {"moons": 28, "diameter_km": 51118, "day_hours": 17.2},
    "neptune": {"moons": 16, "diameter_km": 49528, "day_hours": 16.1},
}
"""Planetary facts (NASA planetary fact sheet, rounded)."""


def lookup(planet: str) -> dict[str, float]:
    """Facts about a planet: number of moons, diameter in km, length of day in hours.

    Args:
        planet: The planet's English name, e.g. "Mars".
    """
    return PLANETS[planet.strip().lower()]


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> float:
    """Evaluate arithmetic with + - * / and parentheses, e.g. "(95 + 146) / 2".

    Args:
        expression: The arithmetic expression.
    """

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](value(node.operand))
        raise ValueError(f"only numbers and + - * / are allowed, not {ast.dump(node)[:40]}")

    return value(ast.parse(expression, mode="eval").body)
