"""Issue 17, the parser: no silently wrong value, no crash, no super-linear time.

DESIGN principle 2: lenient parsing repairs format (fences, markers, quotes, case) but never
guesses content; an ambiguous, incomplete or absent answer is a `ParseError` with the raw text.

- The labelled corpus (`tests/corpus/*.jsonl`: real qwen0.5b completions collected by
  `bench/collect_corpus.py` and labelled by hand, plus written completions for every class of
  the issue) is parsed row by row against its label: the value, or "raise".
- One regression test per class of the issue, with the issue's own examples.
- Crashes (`RecursionError` from deep brackets, also in a thread) and the super-linear
  patterns, at 1 MB and more with a bound generous enough for a shared machine (the code
  before this change took minutes to hours on the same inputs).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from promptcast_runtime import (
    REASONING,
    ChatAdapter,
    Field,
    JSONAdapter,
    ParseError,
    Signature,
    coerce,
    to_jsonable,
)
from promptcast_runtime.adapters import remove_markers
from tests.corpus_schemas import SCHEMAS, Color

CORPUS = Path(__file__).parent / "corpus"
CHAT, JSON = ChatAdapter(), JSONAdapter()
ADAPTERS: dict[str, Any] = {"chat": CHAT, "json": JSON}


def load_corpus() -> list[dict[str, Any]]:
    rows = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


ROWS = load_corpus()


def canonical(value: Any) -> str:
    """JSON with types kept apart: 7, 7.0 and true are three different answers."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# --- the labelled corpus ---------------------------------------------------------------------


def test_corpus_covers_every_type_schema_and_adapter() -> None:
    assert len(ROWS) >= 300
    real = [r for r in ROWS if r["id"].startswith("qwen-")]
    assert len(real) >= 100
    assert {r["adapter"] for r in ROWS} == {"chat", "json"}
    assert {r["adapter"] for r in real} == {"chat", "json"}
    annotations = [f.annotation for r in ROWS for f in SCHEMAS[r["schema"]].outputs]
    kinds = {
        "str": str in annotations,
        "int": int in annotations,
        "float": float in annotations,
        "bool": bool in annotations,
        "Literal": any(get_origin(a) is Literal for a in annotations),
        "Enum": Color in annotations,
        "list": any(get_origin(a) is list for a in annotations),
        "dict": any(get_origin(a) is dict for a in annotations),
        "Optional": any(type(None) in get_args(a) for a in annotations),
        "tuple": any(get_origin(a) is tuple for a in annotations),
        "nested object": any(hasattr(a, "__dataclass_fields__") for a in annotations),
    }
    assert all(kinds.values()), kinds
    by_outcome = Counter(r["expect"] == "raise" for r in ROWS)
    assert by_outcome[True] >= 60 and by_outcome[False] >= 200  # both labels well represented


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_corpus_row_parses_to_its_label(row: dict[str, Any]) -> None:
    signature = SCHEMAS[row["schema"]]
    adapter = ADAPTERS[row["adapter"]]
    if row["expect"] == "raise":
        with pytest.raises(ParseError) as info:
            adapter.parse(signature, row["text"])
        assert info.value.raw == row["text"]
        return
    parsed = adapter.parse(signature, row["text"])
    assert list(parsed) == [f.name for f in signature.outputs]
    assert canonical(to_jsonable(parsed)) == canonical(row["expect"])


# --- reasoning blocks ------------------------------------------------------------------------

TREC = SCHEMAS["trec"]
MATH = SCHEMAS["math"]
ORDER = SCHEMAS["order"]
FACT = SCHEMAS["fact"]
ITEMS = SCHEMAS["items"]
CAPITAL = SCHEMAS["capital"]


@pytest.mark.parametrize("tag", ["think", "thinking", "reasoning"])
def test_a_draft_in_a_reasoning_block_never_wins(tag: str) -> None:
    chat = f"<{tag}>\n[[ ## answer ## ]]\nENTY\n</{tag}>\n[[ ## answer ## ]]\nDESC"
    assert CHAT.parse(TREC, chat) == {"answer": "DESC"}
    draft = f'<{tag}>{{"answer": "ENTY"}}</{tag}>\n{{"answer": "DESC"}}'
    assert JSON.parse(TREC, draft) == {"answer": "DESC"}
    assert CHAT.parse(TREC, f"<{tag}>It is ENTY.</{tag}> DESC") == {"answer": "DESC"}


@pytest.mark.parametrize(
    "text",
    [
        "<think>\n[[ ## answer ## ]]\n8\n",  # cut off inside the block: no answer at all
        '<think>{"answer": 8}',
        "<think>The answer is 8.</think>",
    ],
)
def test_an_answer_only_inside_a_reasoning_block_is_parse_error(text: str) -> None:
    for adapter in (CHAT, JSON):
        with pytest.raises(ParseError):
            adapter.parse(MATH, text)


def test_a_closing_tag_without_an_opening_one_ends_the_draft() -> None:
    text = "Is it DESC?\n[[ ## answer ## ]]\nDESC\n</think>\n[[ ## answer ## ]]\nABBR"
    assert CHAT.parse(TREC, text) == {"answer": "ABBR"}


# --- several candidates ----------------------------------------------------------------------

SENTIMENT = SCHEMAS["sentiment"]


@pytest.mark.parametrize(
    ("signature", "text"),
    [
        (TREC, "Not ENTY, it is DESC."),
        (TREC, "DESC or ENTY"),
        (TREC, "neither NUM nor LOC"),
        (TREC, "HUM. It is not LOC."),
        (SENTIMENT, "not negative"),
        (SENTIMENT, "Positive, not negative."),
        (SENTIMENT, "I wouldn't say positive."),
        (SENTIMENT, "neutral, leaning positive"),
    ],
)
def test_several_or_negated_labels_are_parse_error(signature: Signature, text: str) -> None:
    with pytest.raises(ParseError):
        CHAT.parse(signature, f"[[ ## {signature.outputs[0].name} ## ]]\n{text}")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("DESC", "DESC"),
        ("The answer is DESC.", "DESC"),
        ("**NUM** - the question asks for a count.", "NUM"),
        ("NUM   # note: the value you produce must be one of: ABBR; DESC; NUM", "NUM"),
        ("LOCATION", "LOC"),
    ],
)
def test_a_clear_label_still_parses(text: str, label: str) -> None:
    assert CHAT.parse(TREC, f"[[ ## answer ## ]]\n{text}") == {"answer": label}


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7 (because 3 + 4)", 7),
        ("3 + 4 = 7", 7),
        ("$50 - $24 = $26", 26),
        ("\u22125", -5),
        ("1 000 000", 1_000_000),
        ("1\u00a0000", 1000),
        ("12,34,567", 1_234_567),
        ("1_000", 1000),
        ("The answer is 42.", 42),
        ("42", 42),
        ("2 million", 2_000_000),
        ("There are 3 red and 4 blue, so 7 in total.", 7),
    ],
)
def test_numbers_where_they_are_unambiguous(text: str, expected: int) -> None:
    assert coerce(text, int) == expected
    assert CHAT.parse(MATH, f"[[ ## answer ## ]]\n{text}") == {"answer": expected}


@pytest.mark.parametrize(
    "text",
    [
        "3,5",  # a decimal comma or a list
        "1.250",  # a decimal or 1250 with a thousands dot (qwen0.5b wrote this for 1,250 yen)
        "I'm sorry, as of my knowledge cutoff in 2023 I cannot solve this.",
        "Tom has 3 apples and buys 4 more.",  # only echoes the question's numbers
        "5-7",
        "7, not 8",
        "more than 7",
        "5k",
        "1/2",
        "12:30",
        "192.168.0.1",
        "0x1F",
    ],
)
def test_ambiguous_numbers_are_parse_error(text: str) -> None:
    with pytest.raises(ValueError):
        coerce(text, float)
    with pytest.raises(ParseError):
        CHAT.parse(MATH, f"[[ ## answer ## ]]\n{text}")


def test_a_json_float_with_a_thousands_dot_is_ambiguous_too() -> None:
    with pytest.raises(ParseError):
        JSON.parse(SCHEMAS["price"], '{"price": 1.250}')
    assert JSON.parse(SCHEMAS["price"], '{"price": 1.25}') == {"price": 1.25}


# --- booleans --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Right, that is false.", None),
        ("true or false", None),
        ("not true", None),
        ("It isn't true.", None),
        ("No idea.", None),
        ("Wrong. It is true that Paris is the capital of France.", None),
        ("Yes, definitely.", True),
        ("No, the sun rises in the east.", False),
        ("The statement is false.", False),
        ("There is no evidence for it, so false.", False),
        ("True", True),
    ],
)
def test_a_boolean_is_not_decided_by_its_first_word(text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(ParseError):
            CHAT.parse(FACT, text)
    else:
        assert CHAT.parse(FACT, text) == {"answer": expected}


# --- lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The items are:\n- a\n- b", ["a", "b"]),
        ("Here are the items:\nbread\ncheese", ["bread", "cheese"]),
        ("None", []),
        ("bread, cheese, grapes and lemonade", ["bread", "cheese", "grapes", "lemonade"]),
        ("- a\n- b\nI hope this helps!", None),
        ("- a\nsome text\n- b", None),
        ("{name: Maria, age: 34}", None),
    ],
)
def test_list_text(text: str, expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(ParseError):
            CHAT.parse(ITEMS, f"[[ ## items ## ]]\n{text}")
    else:
        assert CHAT.parse(ITEMS, f"[[ ## items ## ]]\n{text}") == {"items": expected}


def test_thousands_in_a_comma_separated_list_of_numbers() -> None:
    text = "[[ ## numbers ## ]]\n3, 90, 40,000"
    assert CHAT.parse(SCHEMAS["numbers"], text) == {"numbers": [3, 90, 40000]}


# --- empty, null, placeholders ---------------------------------------------------------------


@pytest.mark.parametrize("signature", [ITEMS, CAPITAL, SCHEMAS["year"], MATH])
@pytest.mark.parametrize("adapter", [CHAT, JSON], ids=["chat", "json"])
def test_an_empty_completion_is_parse_error(signature: Signature, adapter: Any) -> None:
    for text in ("", "  \n", "<think>no idea</think>"):
        with pytest.raises(ParseError) as info:
            adapter.parse(signature, text)
        assert info.value.raw == text


@pytest.mark.parametrize(
    ("adapter", "text"),
    [
        (JSON, '{"answer": null}'),  # was the text "null"
        (JSON, '{"answer": ""}'),
        (CHAT, "[[ ## answer ## ]]\n\n[[ ## completed ## ]]"),
        (CHAT, "[[ ## answer ## ]]\n{answer}"),  # the template copied, not filled in
        (CHAT, "[[ ## answer ## ]]\nNot supplied for this particular example."),
    ],
)
def test_null_empty_or_copied_template_is_no_answer(adapter: Any, text: str) -> None:
    with pytest.raises(ParseError):
        adapter.parse(CAPITAL, text)


def test_an_empty_reasoning_is_allowed_an_empty_answer_is_not() -> None:
    cot = SCHEMAS["math_cot"]
    assert CHAT.parse(cot, "[[ ## reasoning ## ]]\n\n[[ ## answer ## ]]\n7") == {
        "reasoning": "",
        "answer": 7,
    }
    with pytest.raises(ParseError):
        CHAT.parse(cot, "[[ ## reasoning ## ]]\n3 + 4\n\n[[ ## answer ## ]]\n")


# --- several outputs without markers ---------------------------------------------------------

ORDER_VALUE = {"item": "desk lamp", "quantity": 2, "unit_price": 19.99, "express": True}
ORDER_JSON = '{"item": "desk lamp", "quantity": 2, "unit_price": 19.99, "express": true}'


@pytest.mark.parametrize(
    "text",
    [
        ORDER_JSON,
        f"```json\n{ORDER_JSON}\n```",
        f"Here is the order:\n{ORDER_JSON}",
        "item: desk lamp\nquantity: 2\nunit_price: $19.99\nexpress: true",
        "**Item:** desk lamp\n**Quantity:** 2\n**Unit price:** 19.99\n**Express:** yes",
    ],
)
def test_several_outputs_as_one_json_object_or_name_value_lines(text: str) -> None:
    assert CHAT.parse(ORDER, text) == ORDER_VALUE


def test_several_outputs_without_markers_still_need_every_field() -> None:
    for text in ("item: desk lamp\nquantity: 2", '{"item": "desk lamp", "quantity": 2}'):
        with pytest.raises(ParseError):
            CHAT.parse(ORDER, text)


# --- str wrappers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "answer: Paris",
        "Answer: Paris",
        "**Answer:** Paris",
        "<answer>Paris</answer>",
        '{"answer": "Paris"}',
        '```json\n{"answer": "Paris"}\n```',
        "[[ ## answer ## ]]\nanswer: Paris",
        "[[ ## answer ## ]]\n<answer>Paris</answer>\n\n[[ ## completed ## ]]",
    ],
)
def test_str_output_wrappers_are_removed(text: str) -> None:
    assert CHAT.parse(CAPITAL, text) == {"answer": "Paris"}


def test_a_dict_output_keeps_a_key_of_its_own_name() -> None:
    """As its demos render it: `{"counts": 2}` is the dict, not a wrapper around 2."""
    counts = SCHEMAS["counts"]
    rendered = CHAT.assistant_message(counts, {"counts": {"counts": 2}})
    assert CHAT.parse(counts, rendered) == {"counts": {"counts": 2}}
    wrapped = '[[ ## counts ## ]]\n{"counts": {"apples": 2}}'
    assert CHAT.parse(counts, wrapped) == {"counts": {"apples": 2}}


# --- several copies of one answer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "text"),
    [
        (CHAT, "[[ ## answer ## ]]\nENTY\n[[ ## answer ## ]]\nDESC"),
        (JSON, '{"answer": "ENTY", "answer": "DESC"}'),
        (JSON, '{"Answer": "ENTY", "answer": "DESC"}'),
        (JSON, '{"answer": "ENTY"}\n\nCorrection: {"answer": "DESC"}'),
    ],
)
def test_two_different_copies_of_an_answer_are_parse_error(adapter: Any, text: str) -> None:
    with pytest.raises(ParseError):
        adapter.parse(TREC, text)


# --- crashes: deep nesting -------------------------------------------------------------------


def _in_thread(call: Any) -> BaseException | None:
    """The exception `call()` raises in a fresh thread (None if it returns)."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - what escapes is the point
            raised[0] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return raised[0]


DEEP = [
    (JSON, CAPITAL, '{"answer": ' + "[" * 500 + "]" * 500 + "}"),
    (CHAT, CAPITAL, '{"answer": ' + "[" * 500 + "]" * 500 + "}"),
    (CHAT, SCHEMAS["counts"], '{"a":' * 500 + "1" + "}" * 500),
    (CHAT, ITEMS, "[[ ## items ## ]]\n" + "[" * 500 + "]" * 500),
    (JSON, SCHEMAS["person"], '{"person": ' + '{"a": ' * 500 + "1" + "}" * 501),
]


@pytest.mark.parametrize(("adapter", "signature", "text"), DEEP)
def test_deep_nesting_is_parse_error_not_recursion_error(
    adapter: Any, signature: Signature, text: str
) -> None:
    with pytest.raises(ParseError):
        adapter.parse(signature, text)
    error = _in_thread(lambda: adapter.parse(signature, text))
    assert isinstance(error, ParseError), repr(error)


def test_to_jsonable_of_a_deep_value_is_value_error_also_in_a_thread() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        to_jsonable(deep)
    assert isinstance(_in_thread(lambda: to_jsonable(deep)), ValueError)


# --- super-linear patterns -------------------------------------------------------------------

ONE_TEXT = Signature("Summarize.", (Field("story", str),), (Field("summary", str),))
MB = 1_000_000


def _seconds(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _parse_or_error(adapter: Any, signature: Signature, text: str) -> None:
    with contextlib.suppress(ParseError):
        adapter.parse(signature, text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        # remove_markers' echoed-marker pattern was cubic: 2,000 spaces took ~10 s.
        ("spaces around [[", " " * (MB // 2) + "[[" + " " * (MB // 2) + "x"),
        # the whole-text fence pattern was quadratic: 100k spaces took 11 s.
        ("fence then spaces", "```" + " " * MB + "x"),
        # JSON repair sliced the rest per comma: 1 MB took 2.7 s, 10 MB over 2 minutes.
        ("cut-off 4 MB JSON list", "[" + "1, " * (4 * MB // 3)),
    ],
)
def test_adversarial_megabytes_parse_in_bounded_time(name: str, text: str) -> None:
    """A bound for a shared, noisy machine: the linear code takes about 1 s here, the code
    before this change minutes (JSON list) to hours (markers, fence) on the same input."""
    seconds = max(
        _seconds(lambda: _parse_or_error(CHAT, ONE_TEXT, text)),
        _seconds(lambda: _parse_or_error(CHAT, ITEMS, text)),
        _seconds(lambda: _parse_or_error(JSON, ITEMS, text)),
    )
    assert seconds < 20, f"{name}: {seconds:.1f} s"


def test_remove_markers_is_linear_and_still_removes_markers() -> None:
    text = " " * 2000 + "[[" + " " * 2000
    assert _seconds(lambda: remove_markers(text)) < 5
    assert remove_markers("Two [[ ## x ## ]] cats met.") == "Two cats met."
    nested = "[[ ## a ## ]]"
    for _ in range(30):
        nested = "[[ ## " + nested + "a ## ]]"
    with pytest.raises(ParseError, match="nested too deeply"):
        CHAT.parse(ONE_TEXT, nested + " Two cats met.")


def test_reasoning_field_copies_do_not_make_an_answer_ambiguous() -> None:
    cot = Signature("Solve.", (Field("problem", str),), (REASONING, Field("answer", int)))
    text = "[[ ## reasoning ## ]]\nfirst\n[[ ## answer ## ]]\n7\n[[ ## reasoning ## ]]\nsecond"
    assert CHAT.parse(cot, text) == {"reasoning": "first", "answer": 7}
