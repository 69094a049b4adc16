"""Runtime Predictor (render, call once, parse, build the caller's value), its thread safety, and
the runtime's import footprint (standard library only, nothing started at import).
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import pytest

import promptcast_runtime
from promptcast_runtime import (
    REASONING,
    ChatAdapter,
    Completion,
    Field,
    ParseError,
    Prediction,
    Predictor,
    Signature,
    fields_from,
    using,
)

RUNTIME_DIR = Path(promptcast_runtime.__file__).resolve().parent.parent


class Sum(NamedTuple):
    total: int
    unit: str


@dataclasses.dataclass
class Person:
    name: str
    age: int


class Doc(TypedDict):
    title: str
    pages: int


class Thought(NamedTuple):
    reasoning: str  # a class that asks for the reasoning gets it
    answer: int


def predictor(returns: Any, outputs: Sequence[Field], **options: Any) -> Predictor[Any]:
    signature = Signature("Do it.", (Field("question", str),), tuple(outputs))
    return Predictor(signature, returns, **options)


def sections(**values: Any) -> str:
    body = "\n\n".join(f"[[ ## {k} ## ]]\n{v}" for k, v in values.items())
    return body + "\n\n[[ ## completed ## ]]"


class Scripted:
    """A fake LM: returns the given texts in turn and records every call."""

    def __init__(self, *texts: str | Completion) -> None:
        self.texts = list(texts)
        self.calls: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    def complete(self, messages: Sequence[dict[str, str]], **params: Any) -> str | Completion:
        self.calls.append((list(messages), params))
        return self.texts[min(len(self.calls), len(self.texts)) - 1]


# --- build -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "outputs", "fields", "expected"),
    [
        ("answer", [Field("answer", int)], {"answer": 3}, 3),
        ("answer", [REASONING, Field("answer", int)], {"reasoning": "r", "answer": 3}, 3),
        (Sum, fields_from(Sum, {}), {"total": 3, "unit": "kg"}, Sum(3, "kg")),
        (
            Sum,
            (REASONING, *fields_from(Sum, {})),
            {"reasoning": "r", "total": 3, "unit": "kg"},
            Sum(3, "kg"),
        ),
        (
            Person,
            (REASONING, *fields_from(Person, {})),
            {"reasoning": "r", "name": "Ada", "age": 36},
            Person("Ada", 36),
        ),
        (Doc, fields_from(Doc, {}), {"title": "T", "pages": 2}, {"title": "T", "pages": 2}),
        (
            Thought,
            fields_from(Thought, {}),
            {"reasoning": "because", "answer": 1},
            Thought("because", 1),
        ),
    ],
)
def test_build(
    returns: Any, outputs: Sequence[Field], fields: dict[str, Any], expected: Any
) -> None:
    value = predictor(returns, outputs).build(fields)
    assert value == expected and type(value) is type(expected)


def test_fields_from_keeps_class_order_and_descriptions() -> None:
    assert fields_from(Person, {"age": "In years."}) == (
        Field("name", str, ""),
        Field("age", int, "In years."),
    )


# --- forward ---------------------------------------------------------------------------------


def test_forward_renders_calls_once_parses_and_builds() -> None:
    outputs = (REASONING, *fields_from(Sum, {}))
    step = predictor(Sum, outputs, lm_params={"temperature": 0.0})
    lm = Scripted(Completion(sections(reasoning="add", total="$1,200", unit="kg"), {"t": 1}))
    result = step.forward({"question": "How much?"}, lm=lm, max_tokens=50)
    assert isinstance(result, Prediction)
    assert result.value == Sum(1200, "kg")
    assert result.fields == {"reasoning": "add", "total": 1200, "unit": "kg"}
    assert result.completion.usage == {"t": 1}
    ((messages, params),) = lm.calls
    assert messages == result.messages == step.messages({"question": "How much?"})
    assert messages == ChatAdapter().format(step.signature, (), {"question": "How much?"})
    assert params == {"temperature": 0.0, "max_tokens": 50}


def test_call_uses_the_context_lm_and_accepts_plain_strings() -> None:
    step = predictor("answer", [Field("answer", int)])
    with using(Scripted("= 26")):
        assert step(question="?") == 26


def test_demos_are_rendered() -> None:
    demos = [{"question": "1+1", "answer": 2}]
    step = predictor("answer", [Field("answer", int)], demos=demos)
    messages = step.messages({"question": "2+2"})
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == sections(answer=2)


def test_missing_inputs_are_a_type_error_before_any_call() -> None:
    lm = Scripted("1")
    with pytest.raises(TypeError, match="missing input"):
        predictor("answer", [Field("answer", int)]).forward({}, lm=lm)
    assert lm.calls == []


def test_a_bad_answer_is_a_parse_error_and_never_a_second_call() -> None:
    lm = Scripted("I cannot answer that.")
    with pytest.raises(ParseError) as info:
        predictor("answer", [Field("answer", int)]).forward({"question": "?"}, lm=lm)
    assert info.value.raw == "I cannot answer that." and info.value.field == "answer"
    assert len(lm.calls) == 1


def test_an_lm_returning_something_else_is_an_lm_error() -> None:
    from promptcast_runtime import LMError

    class Broken:
        def complete(self, messages: Sequence[dict[str, str]], **params: Any) -> Any:
            return {"text": "1"}

    with pytest.raises(LMError, match="must return a Completion or str, got dict"):
        predictor("answer", [Field("answer", int)]).forward({"question": "?"}, lm=Broken())


# --- threads ---------------------------------------------------------------------------------


class Echo:
    """Answers with the number in the question, after a random short sleep (thread-safe)."""

    def complete(self, messages: Sequence[dict[str, str]], **params: Any) -> str:
        number = re.findall(r"q(\d+)", messages[-1]["content"])[0]
        time.sleep(random.uniform(0, 0.005))
        return sections(reasoning=f"it is {number}", total=number, unit=f"u{number}")


def test_64_threads_share_one_predictor_and_get_their_own_answers() -> None:
    step = predictor(Sum, (REASONING, *fields_from(Sum, {})))
    lm = Echo()
    barrier = threading.Barrier(64, timeout=10)

    def call(i: int) -> Sum:
        barrier.wait()
        value: Sum = step.forward({"question": f"q{i}"}, lm=lm).value
        return value

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(call, range(64)))
    assert results == [Sum(i, f"u{i}") for i in range(64)]


def test_64_threads_each_with_its_own_lm_via_using() -> None:
    step = predictor("answer", [Field("answer", str)])
    barrier = threading.Barrier(64, timeout=10)

    class Own:
        def __init__(self, i: int) -> None:
            self.i = i

        def complete(self, messages: Sequence[dict[str, str]], **params: Any) -> str:
            time.sleep(random.uniform(0, 0.005))
            return f"lm-{self.i}"

    def call(i: int) -> str:
        with using(Own(i)):
            barrier.wait()
            return str(step(question="same for all"))

    with ThreadPoolExecutor(64) as pool:
        assert list(pool.map(call, range(64))) == [f"lm-{i}" for i in range(64)]


# --- import footprint ------------------------------------------------------------------------

PROBE = """
import sys, threading
sys.path.insert(0, {runtime!r})
before = set(sys.modules)
threads_before = threading.active_count()
import promptcast_runtime
new = sorted(set(sys.modules) - before)
print(json.dumps({{
    "all": sorted(sys.modules),
    "new": new,
    "threads": threading.active_count() - threads_before,
}}))
"""


def test_import_uses_only_the_standard_library_and_starts_nothing() -> None:
    # -S: no site-packages at all, -I: no PYTHONPATH or user site; only stdlib + the runtime.
    code = "import json\n" + PROBE.format(runtime=str(RUNTIME_DIR))
    out = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert "promptcast_runtime" in report["new"]
    foreign = [
        name
        for name in report["all"]
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in {"promptcast_runtime", "__main__"}
    ]
    assert foreign == []
    assert report["threads"] == 0
    assert "promptcast" not in {name.split(".")[0] for name in report["all"]}


def test_import_from_the_dev_venv_pulls_nothing_from_site_packages() -> None:
    """The same with site-packages on the path: still nothing but stdlib is imported."""
    code = "import json\n" + PROBE.format(runtime=str(RUNTIME_DIR))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout)["new"]
    foreign = [
        n
        for n in new
        if n.split(".")[0] not in sys.stdlib_module_names
        and n.split(".")[0] != "promptcast_runtime"
    ]
    assert foreign == []


def test_parse_failure_costs_one_call_unless_retries_are_opted_into() -> None:
    from promptcast_runtime import Completion, Field, ParseError, Predictor, Signature

    calls: list[int] = []

    class Garbage:
        def complete(self, messages: Any, **params: Any) -> Completion:
            calls.append(len(messages))
            return Completion("no idea")

    signature = Signature("Count.", (Field("text", str),), (Field("answer", int),))
    with pytest.raises(ParseError):
        Predictor[int](signature, returns="answer").forward({"text": "x"}, Garbage())
    assert calls == [2]
    with pytest.raises(ParseError):
        Predictor[int](signature, returns="answer", parse_retries=2).forward(
            {"text": "x"}, Garbage()
        )
    assert calls == [2, 2, 4, 6]  # each retry adds the bad answer and the correction
