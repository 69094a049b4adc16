"""Issue 17, the parser under hypothesis: any text gives every field or a ParseError, nothing
else; a draft in a reasoning block never wins; two different numbers or labels never give one.

The text strategies are arbitrary Unicode and adversarial text assembled from the pieces a
parser treats specially: field markers (with and without `#`s, of known and unknown names),
brackets and quotes, fences, reasoning tags, numbers in every grouping, labels, boolean words,
negations, placeholders, long runs of spaces. Time per parse is measured by
`bench/parse_timing.py`, not asserted here (shared machines are noisy).
"""

from __future__ import annotations

import contextlib
import re
from typing import Literal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from promptcast_runtime import ChatAdapter, Field, JSONAdapter, ParseError, Signature, coerce
from tests.corpus_schemas import SCHEMAS
from tests.test_runtime_adapters import MARKER_LINE, field_names
from tests.test_runtime_coerce import _report_cases, count, same, schemas  # noqa: F401

ADAPTERS: dict[str, ChatAdapter | JSONAdapter] = {"chat": ChatAdapter(), "json": JSONAdapter()}

PIECES = [
    "[[ ## answer ## ]]", "[[ ## completed ## ]]", "[[ ## reasoning ## ]]", "[[ ## item ## ]]",
    "[[ ## quantity ## ]]", "[[ answer ]]", "[[", "]]", "##", "[[ ## x ## ]]", "{", "}", "[",
    "]", '"', "'", ",", ":", "```", "```json\n", "<think>", "</think>", "<thinking>",
    "</reasoning>", "<answer>", "</answer>", "answer:", "Answer:", "**", "{answer}", "- ",
    "1. ", "\n", "\n\n", " ", "   ", "\t", "=", "+", "-", "\u2212", "$", "€", "7", "42",
    "1,000", "12,34,567", "1 000", "1_000", "3,5", "1.250", "0x1F", "1e999", "1/2", "5k",
    "2 million", "true", "false", "yes", "no", "not", "neither", "nor", "or", "right",
    "DESC", "ENTY", "NUM", "positive", "negative", "red", "null", "None", "N/A", "sorry",
    "the answer is", "because", "(", ")", "#", "//", "/*", "\\", "\\u12", "NaN", "Infinity",
]  # fmt: skip
adversarial = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=40).map("".join)
long_runs = st.builds(
    lambda piece, n, tail: piece + " " * n + tail,
    st.sampled_from(["[[", "```", "[[ ## a", "[1,", "{a", "<think>", "1,"]),
    st.integers(0, 3000),
    st.sampled_from(["", "x", "]]", "```", "1"]),
)
any_text = st.text() | adversarial | long_runs


def check(signature: Signature, adapter: str, text: str) -> None:
    """Every output field, or a ParseError carrying the raw text; nothing else escapes."""
    try:
        parsed = ADAPTERS[adapter].parse(signature, text)
    except ParseError as err:
        assert err.raw == text
    else:
        assert list(parsed) == [f.name for f in signature.outputs]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text, st.sampled_from(sorted(SCHEMAS)), st.sampled_from(["chat", "json"]))
def test_any_text_gives_every_field_or_parse_error(text: str, schema: str, adapter: str) -> None:
    count("trust: any text x corpus schema")
    check(SCHEMAS[schema], adapter, text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_text_for_generated_types(data: st.DataObject) -> None:
    """The same for generated type schemas (scalars, labels, containers, nested objects)."""
    tp, _ = data.draw(schemas, label="schema")
    text = data.draw(any_text, label="text")
    count("trust: any text x generated schema")
    signature = Signature("Do it.", (Field("x", str),), (Field("out", tp),))
    check(signature, data.draw(st.sampled_from(["chat", "json"])), text)
    with contextlib.suppress(ValueError):
        coerce(text, tp)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_draft_in_a_reasoning_block_never_wins(data: st.DataObject) -> None:
    """`<think>` + a complete answer with other values + `</think>` + the answer: the answer."""
    names = data.draw(st.lists(field_names, min_size=1, max_size=3, unique=True), label="names")
    types = [data.draw(schemas, label=f"type of {n}") for n in names]
    outputs = tuple(Field(n, t[0]) for n, t in zip(names, types, strict=True))
    signature = Signature("Do it.", (Field("x", str),), outputs)
    values = {n: data.draw(t[1], label=n) for n, t in zip(names, types, strict=True)}
    draft = {n: data.draw(t[1], label=f"draft {n}") for n, t in zip(names, types, strict=True)}
    adapter = ChatAdapter()
    message = adapter.assistant_message(signature, values)
    assume(len(MARKER_LINE.findall(message)) == len(names) + 1)
    assume("<" not in message)  # a value of its own holding a tag is a different test
    tag = data.draw(st.sampled_from(["think", "thinking", "reasoning"]))
    text = f"<{tag}>\n{adapter.assistant_message(signature, draft)}\n</{tag}>\n{message}"
    count("trust: reasoning draft")
    parsed = adapter.parse(signature, text)
    for name in names:
        assert same(parsed[name], values[name]), (name, text)


MATH = SCHEMAS["math"]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**6), 10**6),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["{a} and {b}", "{a} or {b}", "between {a} and {b}", "{a}, {b}", "{a} {b}?"]),
)
def test_two_different_numbers_never_give_one(a: int, b: int, shape: str) -> None:
    assume(a != b)
    text = shape.format(a=a, b=b)
    # `7 100` is one number written with a space between digit groups, as `1 000 000` is.
    assume(not re.search(r"(?<![\d,])[1-9]\d{0,2}(?: \d{3})+(?!\d)", text))
    count("trust: two numbers")
    with pytest.raises(ParseError):
        ChatAdapter().parse(MATH, f"[[ ## answer ## ]]\n{text}")


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**9), 10**9), st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_result_with_its_explanation_is_the_result(n: int, x: int, y: int) -> None:
    count("trust: result and explanation")
    for text in (f"{n} (because {x} + {y})", f"{x} + {y} = {n}", f"The answer is {n}."):
        assert coerce(text, int) == n, text
    grouped = f"{n:,}"
    assert coerce(grouped, int) == n
    assert coerce(grouped.replace(",", "_"), int) == n
    if n < 0:
        assert coerce(grouped.replace("-", "\u2212"), int) == n


LABELS = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]), min_size=2, max_size=3
    ),
    st.sampled_from(["{} or {}", "not {}, it is {}", "neither {} nor {}", "{}, {}", "{}\n{}"]),
    st.booleans(),
)
def test_two_different_labels_never_give_one(labels: list[str], shape: str, lower: bool) -> None:
    assume(labels[0] != labels[1])
    text = shape.format(*(label.lower() if lower else label for label in labels[:2]))
    count("trust: two labels")
    with pytest.raises(ValueError):
        coerce(text, LABELS)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["true", "yes", "correct", "right"]), st.sampled_from(["false", "no"]))
def test_true_and_false_together_never_give_one(yes: str, no: str) -> None:
    for text in (f"{yes.title()}, that is {no}.", f"{yes} or {no}", f"{no}... well, {yes}"):
        with pytest.raises(ValueError):
            coerce(text, bool)
