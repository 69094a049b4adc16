"""Tracing: which LM functions a program calls, recorded per run even across threads."""

from __future__ import annotations

import pytest

from promptcast.context import Tracer, candidate
from promptcast.engine import run_parallel
from promptcast.optimizers import OptimizationError, OptimizationTask
from promptcast.optimizers.base import Search, static_functions
from tests.support.optimizing import QS, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM, examples


def _trace(program: object, question: str) -> Tracer:
    tracer = Tracer()
    with candidate(lm=ScriptedLM(QUESTIONS), tracer=tracer):
        program(question)  # type: ignore[operator]
    return tracer


def test_two_functions_are_recorded_in_call_order() -> None:
    tracer = _trace(steps().two_steps, QS[0])
    assert [r.qualname for r in tracer.records] == ["optpkg.steps:kind", "optpkg.steps:shout"]
    assert tracer.records[0].inputs == {"question": QS[0]}
    assert tracer.records[1].inputs == {"text": tracer.records[0].value}
    assert tracer.records[0].function is steps().kind


def test_same_function_twice_is_recorded_twice() -> None:
    grouped = _trace(steps().twice, QS[1]).by_function()
    assert [r.inputs["question"] for r in grouped["optpkg.steps:kind"]] == [
        QS[1],
        QS[1] + " Please.",
    ]


@pytest.mark.parametrize("name", ["threaded", "via_asyncio"])
def test_calls_from_threads_that_carry_the_context(name: str) -> None:
    tracer = _trace(getattr(steps(), name), QS[2])
    assert sorted(r.qualname for r in tracer.records) == ["optpkg.steps:kind", "optpkg.steps:shout"]


def test_parallel_runs_never_mix_traces() -> None:
    lm = ScriptedLM(QUESTIONS)

    def one(question: str) -> list[str]:
        tracer = Tracer()
        with candidate(lm=lm, tracer=tracer):
            steps().threaded(question)
        return [r.inputs.get("question", "") for r in tracer.records if "question" in r.inputs]

    results = run_parallel(one, QS, threads=8)
    assert results == [[q] for q in QS]


def test_discovery_by_tracing_a_program() -> None:
    task = OptimizationTask(
        steps().twice, examples(QS[:4]), examples(QS[4:6]), "exact_match", ScriptedLM(QUESTIONS)
    )
    search = Search(task)
    search.discover()
    assert list(search.functions) == ["optpkg.steps:kind"]
    assert search.base_states["optpkg.steps:kind"].demos == ()


def test_discovery_falls_back_to_the_code_when_every_traced_run_fails() -> None:
    lm = ScriptedLM(QUESTIONS, wrong="ABBR", needs_demos=99)  # every classification unparsable
    task = OptimizationTask(
        steps().two_steps, examples(QS[:3]), examples(QS[3:5]), "exact_match", lm
    )
    search = Search(task)
    search.discover()
    assert set(search.functions) == {"optpkg.steps:kind", "optpkg.steps:shout"}
    assert set(static_functions(steps().two_steps)) == set(search.functions)


def test_empty_sets_are_refused() -> None:
    with pytest.raises(OptimizationError, match="training set is empty"):
        Search(OptimizationTask(steps().kind, [], examples(QS[:1]), "exact_match", ScriptedLM({})))
