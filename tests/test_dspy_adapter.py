"""adapter="dspy": DSPy 3.4.1's ChatAdapter messages byte for byte, and its parse plus repair.

The reference is DSPy itself, but DSPy never enters the project venv: `bench/dspy_identical.py`
(run in the project venv, driving bench/.venv-dspy in a subprocess) draws hypothesis cases over
seven signatures (Literal, int, list, dict, pydantic, Enum, Optional, tuple outputs; chain of
thought; complete, incomplete and unusable demos) and stores them with the messages and parses
DSPy produced in tests/fixtures/from_dspy/chat_adapter_golden.json. These tests hold the runtime to
those golden results without DSPy installed. Why golden files and not a DSPy venv in
scripts/test.sh: DSPy pulls ~65 distributions (litellm, openai, optuna ...) into CI for a
comparison whose inputs are fixed anyway; regenerating the file is one bench command, and the
version check below fails as soon as the pinned DSPy version moves without it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptcast_runtime import ParseError, build_step
from promptcast_runtime.adapters import ADAPTERS, get_adapter
from promptcast_runtime.dspy_adapter import DSPY_VERSION, DSPyChatAdapter, json_schema
from promptcast_runtime.kinds import ADAPTER_CHOICES
from promptcast_runtime.lm import Completion
from promptcast_runtime.signature import REASONING, Field, Signature

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests/fixtures/from_dspy/chat_adapter_golden.json").read_text("utf-8"))


def _bench_module(name: str) -> Any:
    """A bench module (the case definitions and the harness's signature builder)."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "bench"))


HARNESS = _bench_module("dspy_identical")
CASES = GOLDEN["cases"]
ADAPTER = get_adapter("dspy")


def test_golden_file_is_for_the_pinned_dspy_version() -> None:
    """Bumping DSPY_VERSION without regenerating the golden file (or the reverse) fails here."""
    assert GOLDEN["dspy_version"] == DSPY_VERSION == "3.4.1"


def test_golden_file_covers_the_required_shapes() -> None:
    names = {c["signature"] for c in CASES}
    assert len(names) >= 5
    assert {"trec_literal", "count_int", "tags_list", "order_pydantic", "solve_cot"} <= names
    with_demos = [c for c in CASES if c["demos"]]
    assert with_demos and len(with_demos) < len(CASES)
    prefix = "This is an example of the task, though some input or output fields are not supplied."
    assert any(m["content"].startswith(prefix) for c in CASES for m in c["dspy_messages"])


@pytest.mark.parametrize("name", sorted({c["signature"] for c in CASES}))
def test_messages_are_byte_identical_to_dspy(name: str) -> None:
    cases = [c for c in CASES if c["signature"] == name]
    for case in cases:
        signature = HARNESS.our_signature(name, case["instructions"])
        demos = json.loads(json.dumps(case["demos"], sort_keys=True))  # as a lock holds them
        ours = ADAPTER.format(signature, demos, case["inputs"])
        assert ours == case["dspy_messages"], HARNESS.first_difference(ours, case["dspy_messages"])


@pytest.mark.parametrize("name", sorted({c["signature"] for c in CASES}))
def test_parse_agrees_with_dspy_where_dspy_parses(name: str) -> None:
    """Where ChatAdapter.parse succeeds, ours returns the same values; where it fails (DSPy
    would spend a second call), ours repairs or raises ParseError -- never anything else."""
    outcomes = []
    for case in (c for c in CASES if c["signature"] == name):
        signature = HARNESS.our_signature(name, case["instructions"])
        for text, theirs in zip(case["completions"], case["dspy_parses"], strict=True):
            try:
                mine: dict[str, Any] = {"ok": HARNESS.jsonable(ADAPTER.parse(signature, text))}
            except ParseError as exc:
                assert exc.raw == text
                mine = {"error": "ParseError"}
            if "ok" in theirs:
                assert mine == theirs, text
                outcomes.append("same")
            else:
                outcomes.append("repaired" if "ok" in mine else "raised")
    assert outcomes.count("same") > len(outcomes) // 2


def test_registered_as_a_choice_but_never_searched_by_auto() -> None:
    from promptcast.ir import AUTO_CHOICES

    assert isinstance(ADAPTERS["dspy"], DSPyChatAdapter)
    assert "dspy" in ADAPTER_CHOICES
    assert "dspy" not in AUTO_CHOICES


def _trec() -> Signature:
    label = Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    return Signature(
        "Classify the kind of answer a question asks for.",
        (Field("question", str, "A question in English."),),
        (Field("answer", label, "The coarse TREC answer type."),),
    )


def test_system_message_reads_as_dspy_writes_it() -> None:
    system = ADAPTER.format(_trec(), [], {"question": "Who?"})[0]["content"]
    assert system == (
        "Your input fields are:\n1. `question` (str): A question in English.\n"
        "Your output fields are:\n"
        "1. `answer` (Literal['ABBR', 'DESC', 'ENTY', 'HUM', 'LOC', 'NUM']): The coarse TREC"
        " answer type.\n"
        "All interactions will be structured in the following way, with the appropriate values"
        " filled in.\n\n[[ ## question ## ]]\n{question}\n\n[[ ## answer ## ]]\n{answer}"
        "        # note: the value you produce must exactly match (no extra characters) one of:"
        " ABBR; DESC; ENTY; HUM; LOC; NUM\n\n[[ ## completed ## ]]\n"
        "In adhering to this structure, your objective is: \n"
        "        Classify the kind of answer a question asks for."
    )


def test_parse_takes_dspy_s_reading_first() -> None:
    signature = Signature("t", (Field("q", str),), (Field("answer", str),))
    # DSPy returns a text field verbatim (our chat repair would strip the `Answer:` label).
    text = "[[ ## answer ## ]]\nAnswer: Paris\n\n[[ ## completed ## ]]"
    assert ADAPTER.parse(signature, text) == {"answer": "Answer: Paris"}


def test_repair_instead_of_a_second_call() -> None:
    """Lower-cased label, no markers: DSPy falls back to a JSONAdapter call; ours repairs."""
    assert ADAPTER.parse(_trec(), "num") == {"answer": "NUM"}
    assert ADAPTER.parse(_trec(), "[[ ## answer ## ]]\nLoc.") == {"answer": "LOC"}


def test_ambiguous_answers_raise_with_the_raw_text() -> None:
    for text in (
        "[[ ## answer ## ]]\nNUM\n\n[[ ## answer ## ]]\nLOC\n\n[[ ## completed ## ]]",
        "[[ ## answer ## ]]\nNUM or LOC",
        "",
    ):
        with pytest.raises(ParseError) as info:
            ADAPTER.parse(_trec(), text)
        assert info.value.raw == text


def test_text_after_the_completed_marker_is_not_a_second_answer() -> None:
    """Small models run on into an invented next turn; DSPy ignores it, and so do we."""
    text = (
        "[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]\n\n[[ ## question ## ]]\nWhy?\n\n"
        "[[ ## answer ## ]]\nDESC"
    )
    assert ADAPTER.parse(_trec(), text) == {"answer": "NUM"}


def test_optional_output_missing_is_none_as_in_dspy() -> None:
    signature = Signature("t", (Field("q", str),), (Field("a", str), Field("b", int | None)))
    assert ADAPTER.parse(signature, "[[ ## a ## ]]\nx\n\n[[ ## completed ## ]]") == {
        "a": "x",
        "b": None,
    }


def test_chain_of_thought_reasoning_shows_dspy_s_empty_description() -> None:
    signature = Signature("Solve.", (Field("problem", str),), (REASONING, Field("answer", int)))
    system = ADAPTER.format(signature, [], {"problem": "1+1"})[0]["content"]
    assert "1. `reasoning` (str): \n2. `answer` (int):" in system
    assert "Think step by step" not in system


def test_a_type_dspy_s_schema_cannot_be_reproduced_for_is_an_error() -> None:
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int

    with pytest.raises(TypeError, match="cannot reproduce DSPy's JSON schema"):
        json_schema(Point)


def test_one_call_even_when_nothing_parses() -> None:
    """A built step on adapter dspy makes exactly one call and raises; DSPy would make two."""
    calls: list[list[dict[str, str]]] = []

    class LM:
        def complete(self, messages: list[dict[str, str]], **params: Any) -> Completion:
            calls.append(messages)
            return Completion("I am not sure, maybe a number or a place.")

    spec = {
        "api": 2,
        "step": "t:classify",
        "kind": "predict",
        "instructions": "Classify the kind of answer a question asks for.",
        "inputs": {"question": "A question in English."},
        "outputs": {"answer": "The coarse TREC answer type."},
        "shape": "single",
        "demos": ({"question": "Who?", "answer": "HUM"},),
        "adapter": "dspy",
        "lm_params": {"max_tokens": 16, "temperature": 0.0},
        "options": {"parse_retries": 0},
    }
    step = build_step(spec, {"question": str}, Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"])
    with pytest.raises(ParseError) as info:
        step.forward({"question": "How far?"}, lm=LM())
    assert len(calls) == 1 and "maybe a number" in info.value.raw
    assert calls[0] == ADAPTER.format(_trec(), spec["demos"], {"question": "How far?"})


label = st.sampled_from(["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"])
words = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(label, words, st.sampled_from(["", "\n", "  \n\n"]))
def test_well_formed_answers_round_trip(answer: str, reasoning: str, tail: str) -> None:
    """An answer in the format the prompt asks for parses to exactly what was written."""
    signature = Signature(
        "x", (Field("q", str),), (REASONING, Field("answer", _trec().outputs[0].annotation))
    )
    text = (
        f"[[ ## reasoning ## ]]\n{reasoning}\n\n[[ ## answer ## ]]\n{answer}\n\n"
        f"[[ ## completed ## ]]{tail}"
    )
    parsed = ADAPTER.parse(signature, text)
    assert parsed["answer"] == answer
    assert parsed["reasoning"] == reasoning.strip() or "[[ ## " in reasoning


@settings(max_examples=100, deadline=None)
@given(st.lists(label, min_size=2, max_size=3, unique=True))
def test_two_different_labels_before_completed_never_parse(labels: list[str]) -> None:
    text = "\n\n".join(f"[[ ## answer ## ]]\n{x}" for x in labels) + "\n\n[[ ## completed ## ]]"
    with pytest.raises(ParseError):
        ADAPTER.parse(_trec(), text)
