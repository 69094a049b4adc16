"""`bootstrap`: DSPy BootstrapFewShot semantics, run in parallel waves, with a scripted LM."""

from __future__ import annotations

from typing import Any

from promptcast.optimizers import OptimizationResult
from tests.support.optimizing import DEV, TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM, sections

KIND = "optpkg.steps:kind"


def _teacher_requests(lm: ScriptedLM) -> list[list[dict[str, str]]]:
    """Requests whose last question is a training question (dev runs ask dev questions)."""
    return [
        r for r in lm.requests if sections(r[-1]["content"]).get("question") in TRAIN and len(r) > 2
    ]


def test_first_passing_examples_become_demos_then_labeled_top_up() -> None:
    result, lm = run(steps().kind, "bootstrap", max_bootstrapped_demos=2, max_labeled_demos=5)
    demos = result.states[KIND].demos
    assert [d["question"] for d in demos[:2]] == TRAIN[:2]  # traces, in train order
    assert len(demos) == 5
    assert all(d["question"] in TRAIN[2:] for d in demos[2:])  # labeled, not bootstrapped ones
    assert len(_teacher_requests(lm)) == 2  # exactly DSPy's sequential count
    assert result.dev_score_after == 1.0 and result.dev_score_before == 0.5


def test_teacher_never_sees_the_examples_own_demo() -> None:
    _, lm = run(steps().kind, "bootstrap", max_labeled_demos=16)
    for request in _teacher_requests(lm):
        asked = sections(request[-1]["content"])["question"]
        shown = [
            sections(m["content"]).get("question") for m in request[1:-1] if m["role"] == "user"
        ]
        assert asked not in shown
        assert len(shown) == len(TRAIN) - 1


def test_failing_examples_are_skipped_and_counted_like_dspy() -> None:
    lm = ScriptedLM(QUESTIONS, never=TRAIN[:3], wrong="ABBR")  # not a label: a parse error
    result, lm = run(steps().kind, "bootstrap", lm, max_bootstrapped_demos=3, max_labeled_demos=3)
    assert [d["question"] for d in result.states[KIND].demos] == TRAIN[3:6]
    assert len(_teacher_requests(lm)) == 6  # 3 failures + 3 successes, none beyond
    assert "3 of 6 training examples bootstrapped" in result.notes[0]


def test_retry_rounds_run_hotter_only_for_failures() -> None:
    lm = ScriptedLM(QUESTIONS, never=TRAIN[:1], wrong="LOC")
    result, lm = run(
        steps().kind, "bootstrap", lm, max_bootstrapped_demos=1, max_rounds=2, threads=1
    )
    assert result.states[KIND].demos[0]["question"] == TRAIN[1]
    assert len(_teacher_requests(lm)) == 3  # example 0 twice (round 2 at t=0.701), example 1


def test_same_states_whatever_the_thread_count() -> None:
    lm = ScriptedLM(QUESTIONS, never=[TRAIN[1], TRAIN[4]])
    one, _ = run(steps().kind, "bootstrap", lm, threads=1)
    lm = ScriptedLM(QUESTIONS, never=[TRAIN[1], TRAIN[4]])
    many, _ = run(steps().kind, "bootstrap", lm, threads=16)
    assert one.states == many.states


def test_chain_of_thought_demos_keep_reasoning() -> None:
    result, _ = run(steps().kind_cot, "bootstrap", max_bootstrapped_demos=2, max_labeled_demos=2)
    demos = result.states["optpkg.steps:kind_cot"].demos
    assert demos[0]["reasoning"].startswith("It asks for")
    assert set(demos[0]) == {"question", "reasoning", "answer"}


def test_program_gets_demos_per_function_from_traces() -> None:
    result, _ = run(steps().two_steps, "bootstrap", max_bootstrapped_demos=2, max_labeled_demos=2)
    assert set(result.states) == {KIND, "optpkg.steps:shout"}
    shout = result.states["optpkg.steps:shout"].demos
    assert shout == ({"text": "NUM", "answer": "NUM"}, {"text": "LOC", "answer": "LOC"})
    assert len(result.states[KIND].demos) == 2


def test_function_called_twice_gives_one_demo_per_example() -> None:
    result, _ = run(steps().twice, "bootstrap", max_bootstrapped_demos=3, max_labeled_demos=3)
    demos = result.states[KIND].demos
    assert len(demos) == 3
    for demo, question in zip(demos, TRAIN, strict=False):
        assert demo["question"] in (question, question + " Please.")


def test_no_bootstrapping_means_labeled_only() -> None:
    result, lm = run(steps().kind, "bootstrap", max_bootstrapped_demos=0, max_labeled_demos=3)
    assert len(result.states[KIND].demos) == 3
    assert lm.calls == 2 * len(DEV)


NUM_FIRST = [TRAIN[0], TRAIN[3], TRAIN[6], TRAIN[1], TRAIN[2], TRAIN[4], TRAIN[5], TRAIN[7]]
"""Training order NUM, NUM, NUM, LOC, HUM, ...: the first passing traces all share one label."""


def _labels(demos: tuple[dict[str, object], ...]) -> list[object]:
    return [d["answer"] for d in demos]


def _bootstrap_num_first(target: Any = None, **args: Any) -> tuple[OptimizationResult, ScriptedLM]:
    """`bootstrap` of `target` (default `kind`) over NUM_FIRST with these optimizer args."""
    return run(target or steps().kind, "bootstrap", train=NUM_FIRST, **args)


def test_stratify_shows_each_label_once_before_any_repeats() -> None:
    result, lm = _bootstrap_num_first(max_bootstrapped_demos=3, max_labeled_demos=3, stratify=True)
    demos = result.states[KIND].demos
    # One NUM trace, then a labeled LOC (3 left in the pool) and HUM (2) in the reserved slots.
    assert demos[0]["question"] == NUM_FIRST[0]
    assert _labels(demos) == ["NUM", "LOC", "HUM"]
    assert all(d["question"] not in NUM_FIRST[:3] for d in demos[1:])
    assert len(_teacher_requests(lm)) == 3  # the same examples run as without stratify


def test_without_stratify_the_choice_is_dspys() -> None:
    # The default: DSPy's first-that-pass.
    result, lm = _bootstrap_num_first(max_bootstrapped_demos=3, max_labeled_demos=3)
    assert [d["question"] for d in result.states[KIND].demos] == NUM_FIRST[:3]
    assert len(_teacher_requests(lm)) == 3


def test_stratify_repeats_a_traced_label_only_when_room_is_left() -> None:
    result, _ = _bootstrap_num_first(max_bootstrapped_demos=3, max_labeled_demos=6, stratify=True)
    demos = result.states[KIND].demos
    assert [d["question"] for d in demos[:3]] == NUM_FIRST[:3]  # all traces fit
    assert _labels(demos)[3:5] == ["LOC", "HUM"]
    assert len(demos) == 6


def test_stratify_keeps_as_many_repeats_as_the_reserved_slots_leave() -> None:
    result, _ = _bootstrap_num_first(max_bootstrapped_demos=3, max_labeled_demos=4, stratify=True)
    demos = result.states[KIND].demos
    # Two slots reserved (LOC, HUM) out of four: one NUM repeat fits, the third NUM trace not.
    assert [d["question"] for d in demos[:2]] == NUM_FIRST[:2]
    assert _labels(demos) == ["NUM", "NUM", "LOC", "HUM"]


def test_stratify_never_balances_a_function_without_a_label_output() -> None:
    result, _ = _bootstrap_num_first(
        steps().two_steps, max_bootstrapped_demos=2, max_labeled_demos=2, stratify=True
    )
    # `shout` (a str output) keeps its first traces; `kind` (a Literal) shows two labels.
    assert [d["text"] for d in result.states["optpkg.steps:shout"].demos] == ["NUM", "NUM"]
    assert _labels(result.states[KIND].demos) == ["NUM", "LOC"]


def test_stratified_states_do_not_depend_on_the_thread_count() -> None:
    states = [
        _bootstrap_num_first(threads=t, max_labeled_demos=4, stratify=True)[0].states
        for t in (1, 3, 16)
    ]
    assert states[0] == states[1] == states[2]


def test_dev_score_false_spends_nothing_on_dev_and_keeps_the_same_demos() -> None:
    scored, scored_lm = run(steps().kind, "bootstrap", max_bootstrapped_demos=2)
    unscored, lm = run(steps().kind, "bootstrap", max_bootstrapped_demos=2, dev_score=False)
    assert unscored.states == scored.states  # one candidate: scoring it chose nothing
    asked = [sections(r[-1]["content"]).get("question") for r in lm.requests]
    assert not set(asked) & set(DEV)  # not one dev question reached the LM
    assert lm.calls == len(_teacher_requests(lm)) == 2
    assert scored_lm.calls == 2 + 2 * len(DEV)  # the scores it skipped: before and after
    assert unscored.dev_score_before is None and unscored.dev_score_after is None
    assert unscored.best_label == "bootstrap"
    assert any("without scoring it on dev" in note for note in unscored.notes)
