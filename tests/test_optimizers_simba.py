"""`simba`: mini-batch ascent with appended demos or rules, with a scripted LM whose hot
samples differ (right on even seeds), so the runs of one example vary as a real model's do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from promptcast.optimizers import OptimizationError
from promptcast_runtime import Completion
from tests.support.optimizing import TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM

KIND = "optpkg.steps:kind"
ADVICE = "If the question asks where, answer LOC."


class VaryLM(ScriptedLM):
    """Right at temperature 0 as ScriptedLM (needs_demos=0); sampled hot, right only on even
    seeds (the question misread, so the label lookup misses); answers SIMBA's advice prompt
    with one rule for `kind`."""

    def __init__(self) -> None:
        super().__init__(QUESTIONS, needs_demos=0, wrong="HUM")
        self.advice_requests: list[str] = []
        self.hot: list[Mapping[str, Any]] = []

    def scripted(self, system: str, user: str, params: Mapping[str, Any]) -> str | None:
        if "two trajectories of an LLM-driven program" in system:
            self.advice_requests.append(user)
            return (
                "[[ ## discussion ## ]]\nThe worse run mislabeled a place.\n\n"
                f'[[ ## module_advice ## ]]\n{{"kind": "{ADVICE}"}}\n\n[[ ## completed ## ]]'
            )
        return None

    def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> Completion:
        if params.get("temperature") == 1.0:
            with self._lock:
                self.hot.append(dict(params))
            if int(params.get("seed", 0)) % 2:  # this sample misreads the question: wrong
                *head, last = [dict(m) for m in messages]
                last["content"] = last["content"].replace("?", "? (misread)")
                return super().complete([*head, last], **params)
        return super().complete(messages, **params)


def _run(lm: ScriptedLM, **args: Any) -> Any:
    settings = {"bsize": 4, "num_candidates": 2, "max_steps": 2, **args}
    return run(steps().kind, "simba", lm, threads=1, **settings)


def test_samples_run_hot_with_a_distinct_seed_each() -> None:
    lm = VaryLM()
    _run(lm)
    assert lm.hot and {p["temperature"] for p in lm.hot} == {1.0}
    assert {p["seed"] for p in lm.hot} == {0, 1}  # num_candidates samples per example


def _ascend(lm: ScriptedLM, **args: Any) -> Any:
    from promptcast.optimizers import OptimizationTask, make_optimizer
    from promptcast.optimizers.base import Search
    from promptcast.optimizers.simba import _Run
    from tests.support.scripted_lm import examples

    task = OptimizationTask(
        steps().kind, examples(TRAIN), examples(TRAIN[:2]), "exact_match", lm, threads=1
    )
    search = Search(task)
    search.discover()
    simba = make_optimizer("simba", {"bsize": 4, "num_candidates": 2, "max_steps": 2, **args})
    ascent = _Run(simba, search, list(task.trainset))  # type: ignore[arg-type]
    return ascent, ascent.ascend()


def test_rules_append_the_advice_to_the_instructions() -> None:
    lm = VaryLM()
    ascent, _ = _ascend(lm, max_demos=0)  # no demo strategy: every candidate is a rule
    assert lm.advice_requests, "the advice prompt was never asked"
    asked = lm.advice_requests[0]
    assert "better_program_trajectory" in asked and '"module_name": "kind"' in asked
    ruled = [p[KIND].instructions for p in ascent.programs[1:]]
    assert any(text.endswith("\n\n" + ADVICE) for text in ruled)
    assert all(p[KIND].demos == () for p in ascent.programs)


def test_the_final_candidates_are_scored_on_dev_and_the_best_is_kept() -> None:
    result, _ = _run(VaryLM())
    labels = [c.label for c in result.history]
    assert labels[0] == "simba: baseline" and any("winner of step" in x for x in labels)
    assert result.best_label in labels


def test_demos_come_from_the_best_sampled_trace() -> None:
    _, winners = _ascend(VaryLM())
    demos = [d for states in winners for d in states[KIND].demos]
    assert demos, "no candidate appended a demo"
    assert all(d["answer"] == QUESTIONS[d["question"]] for d in demos)  # the good run's trace


def test_simba_is_deterministic_whatever_the_thread_count() -> None:
    one, _ = run(steps().kind, "simba", VaryLM(), threads=1, bsize=4, num_candidates=2, max_steps=2)
    many, _ = run(steps().kind, "simba", VaryLM(), threads=8, bsize=4, num_candidates=2, max_steps=2)
    assert one.states == many.states
    assert [c.label for c in one.history] == [c.label for c in many.history]


def test_a_training_set_smaller_than_the_batch_is_a_clear_error() -> None:
    with pytest.raises(OptimizationError, match="fewer than bsize=32"):
        run(steps().kind, "simba", VaryLM())
