"""The signatures of the labelled parse corpus (`tests/corpus/*.jsonl`), by name.

Shared by the collector of real model completions (`bench/collect_corpus.py`) and the corpus
test (`tests/test_trust_parse.py`): a corpus row names its schema and adapter, and the test
parses the row's text with exactly the signature the completion was produced for.
Every supported type schema has at least one signature here: str, int, float, bool, Literal,
Enum, list, dict, Optional, tuple, nested objects, several outputs, chain of thought.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal, Optional

from promptcast_runtime import REASONING, Field, Signature

TREC = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
SENTIMENT = Literal["positive", "negative", "neutral"]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclasses.dataclass
class Address:
    city: str
    country: str


@dataclasses.dataclass
class Person:
    name: str
    age: int
    address: Address


def _one(instructions: str, inputs: list[tuple[str, str]], output: Field) -> Signature:
    return Signature(instructions, tuple(Field(n, str, d) for n, d in inputs), (output,))


SCHEMAS: dict[str, Signature] = {
    "trec": _one(
        "Classify the kind of answer a question asks for.",
        [("question", "A question in English.")],
        Field("answer", TREC, "The coarse TREC answer type."),
    ),
    "sentiment": _one(
        "Classify the sentiment of the review.",
        [("review", "A product review.")],
        Field("sentiment", SENTIMENT, "The overall sentiment."),
    ),
    "color": _one(
        "Name the main color of the thing described.",
        [("description", "A short description of an object.")],
        Field("color", Color, "Its main color."),
    ),
    "capital": _one(
        "Give the capital city of the country.",
        [("country", "A country.")],
        Field("answer", str, "The capital city, just its name."),
    ),
    "summary": _one(
        "Summarize the story in one sentence.",
        [("story", "A short story.")],
        Field("summary", str, "One sentence."),
    ),
    "math": _one(
        "Solve the math word problem and give the final number.",
        [("problem", "A word problem.")],
        Field("answer", int, "The final answer."),
    ),
    "math_cot": Signature(
        "Solve the math word problem and give the final number.",
        (Field("problem", str, "A word problem."),),
        (REASONING, Field("answer", int, "The final answer.")),
    ),
    "price": _one(
        "Extract the price per unit, in the currency of the text.",
        [("text", "A sentence about a purchase.")],
        Field("price", float, "The unit price as a number."),
    ),
    "fact": _one(
        "Say whether the statement is true.",
        [("statement", "A statement of fact.")],
        Field("answer", bool, "Whether the statement is true."),
    ),
    "items": _one(
        "List the items mentioned in the text.",
        [("text", "A sentence naming some things.")],
        Field("items", list[str], "The items, in order."),
    ),
    "numbers": _one(
        "List every number that appears in the text, in order.",
        [("text", "A sentence.")],
        Field("numbers", list[int], "The numbers."),
    ),
    "counts": _one(
        "Count how many of each fruit the text mentions.",
        [("text", "A sentence about fruit.")],
        Field("counts", dict[str, int], "Fruit name -> count."),
    ),
    "year": _one(
        "Give the year the event happened, or null if the text does not say.",
        [("text", "A sentence about an event.")],
        Field("year", Optional[int], "The year, or null."),  # noqa: UP045
    ),
    "pair": _one(
        "Extract the person's name and age.",
        [("text", "A sentence about a person.")],
        Field("pair", tuple[str, int], "[name, age]."),
    ),
    "person": _one(
        "Extract the person described.",
        [("text", "A sentence about a person.")],
        Field("person", Person, "The person."),
    ),
    "order": Signature(
        "Read the order in the message.",
        (Field("message", str, "A customer message."),),
        (
            Field("item", str, "The item ordered."),
            Field("quantity", int, "How many."),
            Field("unit_price", float, "The price of one."),
            Field("express", bool, "Whether express shipping was asked for."),
        ),
    ),
    "qa_cot": Signature(
        "Answer the question in a few words.",
        (Field("question", str, "A question."),),
        (REASONING, Field("answer", str, "A short answer.")),
    ),
}
"""Schema name -> signature; the returned value of every row is its parsed fields."""
