"""The DSPy signatures of the examples, written once for every DSPy-side bench script.

Each mirrors its promptcast source: the same instruction (docstring), field names, types and
descriptions, so both systems are given the same task. Imported inside bench/.venv-dspy only.
"""

from __future__ import annotations

from typing import Any, Literal

import dspy


class Sentiment(dspy.Signature):
    """Say whether the review sentence is positive or negative."""

    text: str = dspy.InputField(desc="One sentence from a restaurant review.")
    answer: Literal["positive", "negative"] = dspy.OutputField()


class QuestionType(dspy.Signature):
    """Classify the kind of answer a question asks for."""

    question: str = dspy.InputField(desc="A question in English.")
    answer: Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"] = dspy.OutputField(
        desc="The coarse TREC answer type."
    )


class ReadOrder(dspy.Signature):
    """Extract the order a customer placed from their message."""

    message: str = dspy.InputField(desc="A customer's message, in English.")
    item: str = dspy.OutputField(desc="What was ordered, singular and lower case, e.g. `blue mug`.")
    quantity: int = dspy.OutputField(desc="How many were ordered.")
    unit_price: float = dspy.OutputField(desc="The price of one item in dollars.")
    express: bool = dspy.OutputField(desc="Whether the customer asked for express shipping.")


class ShippingTier(dspy.Signature):
    """Pick the shipping tier for an order: `freight` when quantity times unit price is
    1000 dollars or more; otherwise `express` if the customer asked for express shipping;
    otherwise `standard`."""

    order: dict[str, Any] = dspy.InputField()
    answer: Literal["standard", "express", "freight"] = dspy.OutputField()


class Answer(dspy.Signature):
    """Answer the question about the planets with a number. Look up every fact you need
    with `lookup`, and do any arithmetic with `calculate`."""

    question: str = dspy.InputField()
    answer: float = dspy.OutputField()
