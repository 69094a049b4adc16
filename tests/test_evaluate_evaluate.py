"""evaluate(): per-example results, errors recorded not raised, summary numbers, table, JSON."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "runtime") not in sys.path:
    sys.path.insert(0, str(ROOT / "runtime"))

from promptcast.engine.budget import LMBudget, UsageMeter  # noqa: E402
from promptcast.evaluate import evaluate  # noqa: E402
from promptcast.evaluate.data import Example, bind, load_examples  # noqa: E402
from promptcast.evaluate.evaluate import EvalReport, jsonable  # noqa: E402
from promptcast_runtime.errors import ParseError  # noqa: E402
from promptcast_runtime.lm import Completion  # noqa: E402

DATA = ROOT / "tests" / "fixtures" / "data"


class ScriptedLM:
    """A deterministic in-process LM: answers from a table, counts calls, shares a budget."""

    def __init__(self, answers: dict[str, str], budget: LMBudget | None = None) -> None:
        self.answers = answers
        self.usage = UsageMeter()
        self.budget = budget or LMBudget()
        self.lock = threading.Lock()

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.budget.reserve()
        question = messages[-1]["content"]
        self.usage.record_call({"prompt_tokens": 5, "completion_tokens": 1})
        return Completion(self.answers.get(question, "?"))

    def snapshot(self) -> Any:
        return self.usage.snapshot()


def make_program(lm: ScriptedLM) -> Any:
    def program(question: str) -> str:
        text = lm.complete([{"role": "user", "content": question}]).text
        if text == "garbage":
            raise ParseError("no field", field="answer", expected="str", raw=text)
        return text

    return program


def qa() -> list[Example]:
    return bind(load_examples(DATA / "qa.jsonl"), inputs=["question"], outputs=["answer"])


def test_summary_numbers_with_a_parse_error() -> None:
    lm = ScriptedLM(
        {
            "What is the capital of France?": "paris.",
            "How many legs does a spider have?": "garbage",
            "Who wrote Hamlet?": "Marlowe",
        }
    )
    report = evaluate(make_program(lm), qa(), "exact_match", threads=4, usage=lm)
    assert isinstance(report, EvalReport)
    assert report.n == 3 and report.errors == 1 and report.lm_calls == 3
    assert report.score == pytest.approx(1 / 3)
    first, second, third = report.results
    assert first.prediction == "paris." and first.score == 1.0 and first.passed
    assert second.score == 0.0 and second.error is not None
    assert second.error.startswith("ParseError: could not parse field `answer`")
    assert third.feedback == "expected exactly 'Shakespeare', got 'Marlowe'"
    assert [r.index for r in report.failures] == [1, 2]
    assert report.skipped == 0 and report.stopped is None

    summary = report.summary()
    assert "exact_match: 0.333 (1/3 fully correct)" in summary
    assert "errors 1" in summary and "LM calls 3 (cache hits 0)" in summary
    assert "tokens 15+3" in summary


def test_failures_table_and_json() -> None:
    lm = ScriptedLM({"Who wrote Hamlet?": "Shakespeare"})
    report = evaluate(make_program(lm), qa(), "exact_match", threads=2, usage=lm)
    table = report.failures_table()
    lines = table.splitlines()
    assert lines[0].split() == ["#", "where", "expected", "got", "score"]
    assert "qa.jsonl:1" in lines[2] and "Paris" in lines[2] and "?" in lines[2]
    assert len(lines) == 4
    assert "1 more failures" in report.failures_table(limit=1)

    data = json.loads(report.to_json_text())
    assert data["score"] == pytest.approx(1 / 3) and data["n"] == 3 and data["lm_calls"] == 3
    assert data["errors"] == 0 and data["metric"] == "exact_match"
    assert [f["where"].rsplit(":", 1)[1] for f in data["failures"]] == ["1", "2"]
    assert data["failures"][0]["expected"] == {"answer": "Paris"}
    full = report.to_json(include_examples=True)
    assert len(full["examples"]) == 3 and "failures" not in full


def test_all_correct_has_no_failures() -> None:
    lm = ScriptedLM(
        {
            "What is the capital of France?": "Paris",
            "How many legs does a spider have?": "8",
            "Who wrote Hamlet?": "shakespeare",
        }
    )
    report = evaluate(make_program(lm), qa(), "exact_match", usage=lm, progress=False)
    assert report.score == 1.0 and report.failures_table() == "no failures"


def test_metric_exception_is_recorded() -> None:
    def broken_metric(example: Example, prediction: Any) -> float:
        raise RuntimeError("metric bug")

    report = evaluate(lambda question: "x", qa(), broken_metric)
    assert report.score == 0.0 and report.errors == 3
    assert report.results[0].error == "metric RuntimeError: metric bug"
    assert report.results[0].prediction == "x"
    assert report.lm_calls == 0  # no usage source given


def test_budget_stop_reports_what_ran() -> None:
    budget = LMBudget(max_calls=2)
    lm = ScriptedLM({"What is the capital of France?": "Paris"}, budget=budget)
    report = evaluate(make_program(lm), qa(), "exact_match", threads=1, usage=lm)
    assert report.n == 2 and report.skipped == 1
    assert report.stopped is not None and "budget exhausted" in report.stopped
    assert report.score == 0.5
    assert "stopped early, 1 examples not run" in report.summary()


def test_usage_is_the_delta_of_this_run() -> None:
    lm = ScriptedLM({})
    lm.complete([{"role": "user", "content": "warm-up"}])
    report = evaluate(make_program(lm), qa(), "contains", usage=lm)
    assert report.lm_calls == 3 and report.usage.prompt_tokens == 15


def test_unbound_examples_are_rejected() -> None:
    with pytest.raises(ValueError, match="not bound"):
        evaluate(lambda **kw: "x", load_examples(DATA / "qa.jsonl"), "exact_match")


def test_unknown_metric_fails_before_running() -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        evaluate(lambda question: calls.append(question), qa(), "nope")
    assert calls == []


class Out(NamedTuple):
    city: str
    n: int


def test_structured_predictions_are_jsonable() -> None:
    assert jsonable(Out("Paris", 2)) == {"city": "Paris", "n": 2}
    assert jsonable({"a": (1, 2)}) == {"a": [1, 2]}
    assert jsonable(object).startswith("<class")
    example = Example({"q": "?", "city": "Paris", "n": 2}, "d", 1, ("q",), ("city", "n"))
    report = evaluate(lambda q: Out("paris", 3), [example], "exact_match")
    assert report.score == 0.5
    assert report.to_json()["failures"][0]["prediction"] == {"city": "paris", "n": 3}
    assert '{"city": "Paris", "n": 2}' in report.failures_table(width=80)
