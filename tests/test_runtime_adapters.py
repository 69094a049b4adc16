"""Runtime ChatAdapter: the exact message shape, lenient parsing, and format/parse round trips.

The round trip (`parse(assistant_message(values)) == values`) is what demo rendering relies on:
a demo shown to the model in a prompt must be the answer the parser would read back.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from promptcast_runtime import REASONING, ChatAdapter, Field, ParseError, Signature, get_adapter
from promptcast_runtime.adapters import NOT_SUPPLIED
from tests.test_runtime_coerce import _report_cases, count, same, schemas  # noqa: F401

ADAPTER = ChatAdapter()
LABEL = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]

QA = Signature(
    "Classify the question.\n\nBe brief.",
    (Field("question", str, "A question."), Field("context", list[str])),
    (REASONING, Field("answer", LABEL, "The label.")),
)
ONE = Signature("Answer.", (Field("question", str),), (Field("answer", int),))
TWO = Signature("Answer.", (Field("q", str),), (Field("name", str), Field("count", int)))


# --- format ----------------------------------------------------------------------------------


def test_system_message_lists_fields_types_structure_and_instruction() -> None:
    assert ADAPTER.system_message(QA) == (
        "Your input fields are:\n"
        "1. `question` (str): A question.\n"
        "2. `context` (JSON array of str)\n"
        "Your output fields are:\n"
        "1. `reasoning` (str): Think step by step about the inputs before giving the other"
        " outputs.\n"
        "2. `answer` (one of: ABBR, DESC, ENTY, HUM, LOC, NUM): The label.\n"
        "All interactions will be structured in the following way, with the appropriate values"
        " filled in.\n"
        "\n"
        "[[ ## question ## ]]\n{question}\n\n"
        "[[ ## context ## ]]\n{context}\n\n"
        "[[ ## reasoning ## ]]\n{reasoning}\n\n"
        "[[ ## answer ## ]]\n{answer}\n\n"
        "[[ ## completed ## ]]\n"
        "In adhering to this structure, your objective is: \n"
        "        Classify the question.\n"
        "\n"
        "        Be brief."
    )


def test_demos_are_user_assistant_pairs_and_missing_fields_say_not_supplied() -> None:
    demos: list[dict[str, Any]] = [
        {"question": "q1", "context": ["c"], "answer": "HUM"},
        {"question": "q2", "reasoning": "r", "answer": "NUM"},
    ]
    messages = ADAPTER.format(QA, demos, {"question": "Who?", "context": []})
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[1]["content"].startswith("[[ ## question ## ]]\nq1\n\n[[ ## context ## ]]\n")
    assert '["c"]' in messages[1]["content"]
    assert messages[2]["content"] == (
        f"[[ ## reasoning ## ]]\n{NOT_SUPPLIED}\n\n[[ ## answer ## ]]\nHUM\n\n[[ ## completed ## ]]"
    )
    assert f"[[ ## context ## ]]\n{NOT_SUPPLIED}" in messages[3]["content"]
    assert NOT_SUPPLIED == "Not supplied for this particular example."
    last = messages[-1]["content"]
    assert last == (
        "[[ ## question ## ]]\nWho?\n\n[[ ## context ## ]]\n[]\n\n"
        "Respond with the corresponding output fields, starting with the field "
        "`[[ ## reasoning ## ]]`, then `[[ ## answer ## ]]`, and then ending with the marker "
        "for `[[ ## completed ## ]]`."
    )
    # The type constraint is in the system message only, never next to a value.
    assert all("one of:" not in m["content"] for m in messages[1:])


def test_get_adapter() -> None:
    assert get_adapter("chat") is get_adapter("chat")
    with pytest.raises(ValueError, match="unknown adapter 'xml'; known: chat"):
        get_adapter("xml")


# --- parse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[ ## reasoning ## ]]\nWhy.\n\n[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]", "NUM"),
        ("[[ ## reasoning ## ]]\nWhy.\n\n[[ ## answer ## ]]\nNUM", "NUM"),  # no completed
        ("[[ ## answer ## ]]\nLOC\n[[ ## reasoning ## ]]\nWhy.", "LOC"),  # out of order
        (
            "[[ ## reasoning ## ]]\nWhy.\n[[ ## answer ## ]]\nHUM\n[[ ## answer ## ]]\nhum.",
            "HUM",  # repeated field with the same value
        ),
        ("[[## reasoning ##]]\nWhy.\n[[##answer##]]\nNUM", "NUM"),
        ("  [[  ##  reasoning  ##  ]]  \nWhy.\n\t[[ ### answer ### ]]\nNUM", "NUM"),
        ("[[ ## reasoning ## ]] Why.\n[[ ## answer ## ]] NUM\n[[ ## completed ## ]]", "NUM"),
        ("[[ ## Reasoning ## ]]\nWhy.\n[[ ## ANSWER ## ]]\nNUM", "NUM"),
        (
            "[[ ## reasoning ## ]]\nWhy.\n[[ ## answer ## ]]\n"
            "NUM   # note: the value you produce must exactly match one of: ABBR; DESC; NUM",
            "NUM",
        ),
        ("Sure!\n[[ ## reasoning ## ]]\nWhy.\n[[ ## answer ## ]]\n**num**.", "NUM"),
    ],
)
def test_parse_variants(text: str, expected: str) -> None:
    assert ADAPTER.parse(QA, text)["answer"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "42",
        "The answer is 42.",
        "42\n\n[[ ## completed ## ]]",
        "[[ ## answer ## ]]\n42",
        "[[ ## answer ## ]]\n$50 - $8 = $42\n[[ ## completed ## ]]",
        "[[ ## question ## ]]\nWhat?\n[[ ## answer ## ]]\n42",  # an echoed input is skipped
    ],
)
def test_single_output_bare_answer_and_markers(text: str) -> None:
    assert ADAPTER.parse(ONE, text) == {"answer": 42}


def test_repeated_field_with_different_values_is_parse_error() -> None:
    """Which of two different answers the model meant is a guess (issue 17)."""
    text = "[[ ## reasoning ## ]]\nWhy.\n[[ ## answer ## ]]\nHUM\n[[ ## answer ## ]]\nLOC"
    with pytest.raises(ParseError) as info:
        ADAPTER.parse(QA, text)
    assert info.value.field == "answer"


def test_missing_field_is_parse_error_with_field_expected_and_raw() -> None:
    text = "[[ ## reasoning ## ]]\nI am not sure.\n[[ ## completed ## ]]"
    with pytest.raises(ParseError) as info:
        ADAPTER.parse(QA, text)
    err = info.value
    assert err.field == "answer"
    assert err.expected == "one of: ABBR, DESC, ENTY, HUM, LOC, NUM"
    assert err.raw == text
    assert "`[[ ## answer ## ]]` section is missing" in str(err)
    assert isinstance(err, ValueError)


def test_unparsable_value_is_parse_error_naming_the_field() -> None:
    text = "[[ ## name ## ]]\nBob\n[[ ## count ## ]]\nmany\n[[ ## completed ## ]]"
    with pytest.raises(ParseError) as info:
        ADAPTER.parse(TWO, text)
    assert (info.value.field, info.value.expected, info.value.raw) == ("count", "int", text)
    assert "field `count`" in str(info.value) and "many" in str(info.value)


def test_several_outputs_without_markers_is_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        ADAPTER.parse(TWO, "Bob, 3")
    assert info.value.field == "name"


def test_parse_error_truncates_long_raw_text_in_message_but_keeps_it_whole() -> None:
    text = "x" * 5000
    with pytest.raises(ParseError) as info:
        ADAPTER.parse(ONE, text)
    assert info.value.raw == text
    assert len(str(info.value)) < 1000


# --- round trip ------------------------------------------------------------------------------

field_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: s != "completed"
)
MARKER_LINE = re.compile(r"^[ \t]*\[\[\s*#+\s*\w+\s*#+\s*\]\]", re.MULTILINE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_assistant_message_parses_back_to_its_values(data: st.DataObject) -> None:
    """For generated signatures and values: parse(assistant_message(values)) == values."""
    names = data.draw(st.lists(field_names, min_size=1, max_size=4, unique=True), label="names")
    types = [data.draw(schemas, label=f"type of {n}") for n in names]
    outputs = tuple(Field(n, t[0]) for n, t in zip(names, types, strict=True))
    signature = Signature("Do it.", (Field("x", str),), outputs)
    values = {n: data.draw(t[1], label=n) for n, t in zip(names, types, strict=True)}
    message = ADAPTER.assistant_message(signature, values)
    # A value whose own text has a marker at a line start cannot be told from a marker.
    assume(len(MARKER_LINE.findall(message)) == len(names) + 1)
    count("adapter round trip")
    parsed = ADAPTER.parse(signature, message)
    assert parsed.keys() == values.keys()
    for name in names:
        assert same(parsed[name], values[name]), (name, message, parsed[name], values[name])


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from([QA, ONE, TWO]))
def test_arbitrary_completion_gives_fields_or_parse_error(text: str, signature: Signature) -> None:
    count("adapter arbitrary text")
    try:
        parsed = ADAPTER.parse(signature, text)
    except ParseError as err:
        assert err.raw == text
        assert err.field in {f.name for f in signature.outputs}
    else:
        assert list(parsed) == [f.name for f in signature.outputs]


def test_format_never_mutates_its_arguments() -> None:
    demos: list[dict[str, Any]] = [{"question": "q", "answer": "NUM"}]
    inputs = {"question": "Who?", "context": ["a"]}
    before = (repr(demos), repr(inputs))
    ADAPTER.format(QA, demos, inputs)
    assert (repr(demos), repr(inputs)) == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"[[ ## summary ## ]] Two cats met."', '"Two cats met."'),  # after a quote
        ("```[[ ## summary ## ]]\nTwo cats met.", "```\nTwo cats met."),  # after a fence
        ("Two cats met. [[ ## completed ## ]]", "Two cats met."),  # mid-line
        ("[[ summary ]] Two cats met.", "Two cats met."),  # no #s, but a field's name
        ("See [[Cat]] and [[ Dog ]].", "See [[Cat]] and [[ Dog ]]."),  # the answer's own
        ("[[ [[ ## x ## ]] ## summary ## ]] Two cats met.", "Two cats met."),  # nested
        ("Two [[ ## x ## ]] cats met.", "Two cats met."),
    ],
)
def test_markers_echoed_into_a_bare_text_answer_are_removed(text: str, expected: str) -> None:
    one_text = Signature("Summarize.", (Field("story", str),), (Field("summary", str),))
    assert ADAPTER.parse(one_text, text) == {"summary": expected}
