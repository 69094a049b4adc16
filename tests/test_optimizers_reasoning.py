"""Reasoning demos (`reasoning="complete"`): a chain-of-thought step never learns from a demo
that skips its reasoning -- the teacher runs it zero-shot and labeled demos are rationalized."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from promptcast.optimizers import OptimizationError
from tests.support.optimizing import TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM, sections

COT = "optpkg.steps:kind_cot"
HINTED = re.compile(r"correct answer is known: answer = (\w+)\.")


class HintLM(ScriptedLM):
    """Answers right zero-shot for `always` questions (else "ABBR", a parse failure), and, when the
    instructions carry the label as a hint, reasons to it -- except for `contrary` questions
    (it answers something else) and `leaky` ones (its reasoning cites the hint)."""

    def __init__(
        self,
        *,
        always: Sequence[str] = (),
        contrary: Sequence[str] = (),
        leaky: Sequence[str] = (),
        needs_demos: int = 1,
    ) -> None:
        super().__init__(QUESTIONS, always=always, needs_demos=needs_demos, wrong="ABBR")
        self.contrary, self.leaky = set(contrary), set(leaky)
        self.hinted: list[list[dict[str, str]]] = []

    def scripted(self, system: str, user: str, params: Mapping[str, Any]) -> str | None:
        found = HINTED.search(system)
        if found is None:
            return None
        self.hinted.append([{"role": "system", "content": system}, {"role": "user", "content": user}])
        question = sections(user)["question"]
        answer = "LOC" if question in self.contrary and found.group(1) != "LOC" else found.group(1)
        if question in self.contrary and answer == found.group(1):
            answer = "HUM"
        why = (
            f"The hint says {answer}."
            if question in self.leaky
            else f"The question word points to {answer}."
        )
        return f"[[ ## reasoning ## ]]\n{why}\n\n[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"


def _demo_turns(request: list[dict[str, str]]) -> int:
    return (len(request) - 2) // 2


def test_teacher_runs_a_reasoning_step_without_labeled_demos() -> None:
    lm = HintLM(always=TRAIN[:2])
    run(steps().kind_cot, "bootstrap", lm, max_bootstrapped_demos=2, max_labeled_demos=4)
    teacher = [r for r in lm.requests if sections(r[-1]["content"]).get("question") in TRAIN]
    assert teacher and all(_demo_turns(r) == 0 for r in teacher)


def test_dspy_policy_keeps_labeled_demos_in_the_teacher_and_the_student() -> None:
    lm = HintLM(always=TRAIN[:2])
    result, lm = run(
        steps().kind_cot,
        "bootstrap",
        lm,
        max_bootstrapped_demos=2,
        max_labeled_demos=4,
        reasoning="dspy",
    )
    assert not lm.hinted
    demos = result.states[COT].demos
    assert [("reasoning" in d) for d in demos] == [True, True, False, False]


def test_every_demo_of_a_reasoning_step_reasons() -> None:
    lm = HintLM(always=TRAIN[:2])
    result, lm = run(
        steps().kind_cot, "bootstrap", lm, max_bootstrapped_demos=2, max_labeled_demos=5
    )
    demos = result.states[COT].demos
    assert len(demos) == 5
    assert all(d["reasoning"].strip() for d in demos)
    assert [d["question"] for d in demos[:2]] == TRAIN[:2]  # bootstrapped traces first
    for demo in demos[2:]:
        assert demo["answer"] == QUESTIONS[demo["question"]]  # the label, reached by reasoning
        assert demo["question"] in TRAIN[2:]  # the example's own input, never the hint
    assert len(lm.hinted) == 3
    assert all("correct answer is known" not in r[-1]["content"] for r in lm.hinted)


def test_a_rationalization_that_misses_the_label_or_cites_the_hint_is_dropped() -> None:
    wrong, leaky = TRAIN[2:4], TRAIN[4:5]
    lm = HintLM(always=TRAIN[:2], contrary=wrong, leaky=leaky)
    result, lm = run(
        steps().kind_cot,
        "bootstrap",
        lm,
        max_bootstrapped_demos=2,
        max_labeled_demos=5,
        threads=1,
    )
    demos = result.states[COT].demos
    shown = {d["question"] for d in demos[2:]}
    assert not shown & set(wrong + leaky)
    assert all(d["answer"] == QUESTIONS[d["question"]] for d in demos)
    assert any("rationalized for kind_cot" in note for note in result.notes)


def test_rationalization_tries_at_most_twice_the_missing_demos() -> None:
    lm = HintLM(contrary=TRAIN)  # nothing bootstraps, no rationalization succeeds
    result, lm = run(
        steps().kind_cot, "bootstrap", lm, max_bootstrapped_demos=2, max_labeled_demos=3
    )
    assert result.states[COT].demos == ()  # fewer, complete demos: here none
    assert len(lm.hinted) == min(len(TRAIN), 2 * 3)


def test_a_step_that_does_not_reason_keeps_dspys_labeled_fill() -> None:
    lm = HintLM()
    result, lm = run(steps().kind, "bootstrap", lm, max_bootstrapped_demos=2, max_labeled_demos=3)
    assert not lm.hinted
    assert len(result.states["optpkg.steps:kind"].demos) == 3


def test_rationalized_states_do_not_depend_on_the_thread_count() -> None:
    def once(threads: int) -> Any:
        lm = HintLM(always=TRAIN[:1], contrary=TRAIN[3:4])
        result, _ = run(
            steps().kind_cot,
            "bootstrap",
            lm,
            max_bootstrapped_demos=2,
            max_labeled_demos=5,
            threads=threads,
        )
        return result.states

    assert once(1) == once(8)


def test_an_unknown_reasoning_policy_is_an_error() -> None:
    with pytest.raises(OptimizationError, match="reasoning='rationalise'"):
        run(steps().kind_cot, "bootstrap", reasoning="rationalise")
    with pytest.raises(OptimizationError, match="expected one of complete, dspy"):
        run(steps().kind_cot, "random_search", reasoning="none")


class RestatingLM(HintLM):
    """Right zero-shot on `always` questions, but its reasoning there is the question itself;
    hinted runs restate the question too for `restating` questions."""

    def __init__(self, *, always: Sequence[str] = (), restating: Sequence[str] = ()) -> None:
        super().__init__(always=always)
        self.restating = set(restating)

    def complete(self, messages: Any, **params: Any) -> Any:
        reply = super().complete(messages, **params)
        question = sections(messages[-1]["content"]).get("question", "")
        if question in self.restating or (question in self.always and not HINTED.search(messages[0]["content"])):
            text = re.sub(
                r"\[\[ ## reasoning ## \]\]\n.*?\n\n", f"[[ ## reasoning ## ]]\n{question}\n\n", reply.text,
                flags=re.DOTALL,
            )
            return type(reply)(text, reply.usage, reply.model)
        return reply


def test_a_reasoning_that_only_restates_the_question_is_no_demo() -> None:
    lm = RestatingLM(always=TRAIN[:2], restating=TRAIN[2:4])
    result, _ = run(steps().kind_cot, "bootstrap", lm, max_bootstrapped_demos=2, max_labeled_demos=5, threads=1)
    demos = result.states[COT].demos
    shown = [d["question"] for d in demos]
    assert not set(shown) & set(TRAIN[2:4])  # restating even with the hint: never a demo
    assert all(d["question"] not in d["reasoning"] for d in demos)  # no restated trace kept
    # TRAIN[:2] passed zero-shot by restating: not bootstrapped, so they may come back only
    # rationalized -- with a reasoning of their own.
    assert any("dropped: their reasoning only restated" in note for note in result.notes)


def test_reasons_needs_new_words_beyond_the_inputs() -> None:
    from promptcast.optimizers.rationalize import reasons

    question = {"question": "I have a drum and two flutes. How many instruments do I have?"}
    assert not reasons("I have a drum and two flutes.", question)
    assert not reasons("3", question)
    assert reasons("One drum plus two flutes makes 3 instruments.", question)
