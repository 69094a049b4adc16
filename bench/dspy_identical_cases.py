"""The signatures `bench/dspy_identical.py` renders with DSPy and with `adapter="dspy"`.

Imported in both venvs (the project's and bench/.venv-dspy): it needs pydantic only, which
both have (the same version, so the JSON schemas pydantic writes are the same). A signature
is plain data -- field names, a type key, a description -- so a case can travel as JSON
between the two processes; `TYPES` turns a key back into the annotation on either side.
"""

from __future__ import annotations

import enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Order(BaseModel):
    """One order line read from a customer's message."""

    item: str = Field(description="What was ordered, singular.")
    quantity: int
    unit_price: float = Field(description="Dollars per item.")
    express: bool = False


class Address(BaseModel):
    street: str
    city: str


class Customer(BaseModel):
    name: str
    addresses: list[Address]
    tier: Literal["gold", "silver"] | None = None


TREC = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]

TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "trec": TREC,
    "sentiment": Literal["positive", "negative"],
    "quoted": Literal["it's", 'say "hi"', "plain"],
    "small_int": Literal[1, 2, 3],
    "list_str": list[str],
    "list_int": list[int],
    "dict_int": dict[str, int],
    "dict_any": dict[str, Any],
    "opt_int": Optional[int],  # noqa: UP045 (DSPy names it Union[int, NoneType] either way)
    "opt_str": str | None,
    "tuple": tuple[int, str],
    "color": Color,
    "list_color": list[Color],
    "order": Order,
    "customer": Customer,
    "list_order": list[Order],
}

SIGNATURES: dict[str, dict[str, Any]] = {
    # name: inputs / outputs as (field, type key, description or "" for none); cot: DSPy's
    # ChainOfThought (a `reasoning` output first).
    "trec_literal": {
        "inputs": [("question", "str", "A question in English.")],
        "outputs": [("answer", "trec", "The coarse TREC answer type.")],
        "cot": False,
    },
    "count_int": {
        "inputs": [("question", "str", ""), ("items", "list_str", "The things to count.")],
        "outputs": [("answer", "int", "")],
        "cot": False,
    },
    "tags_list": {
        "inputs": [("text", "str", "")],
        "outputs": [
            ("tags", "list_str", "Topic tags, lower case."),
            ("scores", "dict_int", ""),
            ("confidence", "float", ""),
        ],
        "cot": False,
    },
    "order_pydantic": {
        "inputs": [("message", "str", "A customer's message."), ("context", "dict_any", "")],
        "outputs": [("order", "order", "The order line."), ("urgent", "bool", "")],
        "cot": False,
    },
    "solve_cot": {
        "inputs": [("problem", "str", "A math word problem.")],
        "outputs": [("answer", "int", "The final number.")],
        "cot": True,
    },
    "mixed_cot": {
        "inputs": [("question", "str", ""), ("passages", "list_str", ""), ("n", "int", "")],
        "outputs": [
            ("answer", "str", "A short answer."),
            ("sentiment", "sentiment", ""),
            ("pick", "small_int", ""),
            ("score", "opt_int", ""),
            ("color", "color", "The color."),
        ],
        "cot": True,
    },
    "structured_many": {
        "inputs": [("note", "opt_str", "")],
        "outputs": [
            ("customer", "customer", "Who wrote."),
            ("lines", "list_order", ""),
            ("colors", "list_color", ""),
            ("pair", "tuple", ""),
            ("quote", "quoted", ""),
            ("numbers", "list_int", ""),
        ],
        "cot": False,
    },
}
