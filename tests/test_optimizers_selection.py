"""Choosing the winner: objectives, intervals, the dev-too-small note, and racing."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptcast.errors import PromptcastError
from promptcast.evaluate import Example
from promptcast.optimizers import OptimizationTask, make_optimizer, optimize
from promptcast.optimizers.base import Search
from promptcast.optimizers.selection import (
    RACE_FIRST,
    Objective,
    ObjectiveError,
    Scored,
    choose,
    hopeless,
    interval,
    separation,
    stages,
)
from tests.support.optimizing import steps
from tests.support.scripted_lm import ScriptedLM, sections

KIND = "optpkg.steps:kind"
LABELS = ("NUM", "LOC", "HUM")
QUESTIONS = {f"Question number {i}?": LABELS[i % 3] for i in range(60)}
NAMES = list(QUESTIONS)


def _examples(names: list[str]) -> list[Example]:
    return [
        Example({"question": q, "answer": QUESTIONS[q]}, "mem.jsonl", i + 1, ("question",), ("answer",))
        for i, q in enumerate(names)
    ]


def _task(lm: ScriptedLM, *, dev: int = 40, threads: int = 4, **extra: Any) -> OptimizationTask:
    return OptimizationTask(
        steps().kind, _examples(NAMES[:20]), _examples(NAMES[20 : 20 + dev]), "exact_match", lm,
        threads=threads, **extra,
    )  # fmt: skip


# --- objectives ------------------------------------------------------------------------------


def test_objective_forms_parse_and_bad_ones_are_user_errors() -> None:
    assert Objective.parse("accuracy") == Objective()
    assert Objective.parse("weighted:0.05") == Objective("weighted", weight=0.05)
    assert Objective.parse("within:2%") == Objective("within", margin=0.02)
    for bad in ("speed", "within", "within:abc", "within:3", "weighted:-1", "accuracy:1"):
        with pytest.raises(ObjectiveError, match="--objective"):
            Objective.parse(bad)
    assert issubclass(ObjectiveError, PromptcastError)  # exit code 2


def test_accuracy_gives_a_tie_to_the_cheaper_state_then_the_earlier() -> None:
    pool = [Scored(0, 0.5, 900.0), Scored(1, 0.5, 120.0), Scored(2, 0.4, 50.0)]
    assert choose(Objective(), pool) == pool[1]
    same = [Scored(0, 0.5, 100.0), Scored(1, 0.5, 100.0)]
    assert choose(Objective(), same) == same[0]
    assert choose(Objective(), []) is None


def test_within_picks_the_cheapest_close_enough_and_weighted_trades_points_for_tokens() -> None:
    pool = [Scored(0, 0.80, 2000.0), Scored(1, 0.78, 300.0), Scored(2, 0.70, 100.0)]
    assert choose(Objective("within", margin=0.02), pool) == pool[1]
    assert choose(Objective("within", margin=0.0), pool) == pool[0]
    assert choose(Objective("weighted", weight=0.05), pool) == pool[1]  # 0.80-0.10 < 0.78-0.015
    assert choose(Objective("weighted", weight=0.0), pool) == pool[0]


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 5000)), min_size=1, max_size=12))
def test_every_objective_picks_a_candidate_no_other_dominates(pairs: list[tuple[float, float]]) -> None:
    pool = [Scored(i, s, c) for i, (s, c) in enumerate(pairs)]
    for objective in (Objective(), Objective("within", margin=0.05), Objective("weighted", weight=0.1)):
        picked = choose(objective, pool)
        assert picked is not None
        assert not any(
            o.score > picked.score + 1e-9 and o.cost < picked.cost - 1e-9 for o in pool
        )


# --- intervals and separation ----------------------------------------------------------------


@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=200))
def test_wilson_interval_holds_the_mean_inside_zero_one(scores: list[float]) -> None:
    low, high = interval(scores)
    mean = sum(scores) / len(scores)
    assert 0.0 <= low <= mean + 1e-12 and mean - 1e-12 <= high <= 1.0


def test_interval_narrows_with_more_rows() -> None:
    small = interval([1.0, 0.0] * 5)
    large = interval([1.0, 0.0] * 200)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 4


def test_a_ten_row_dev_cannot_separate_close_candidates_and_says_how_many_rows_would() -> None:
    winner = [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    runner = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    found = separation(winner, runner)
    assert not found.separated
    assert found.rows_needed is not None and found.rows_needed > 10
    text = found.describe("bootstrap", "zero-shot")
    assert "does not separate 'bootstrap' from 'zero-shot'" in text and "dev rows" in text


def test_identical_rows_need_no_estimate_and_a_clear_gap_is_separated() -> None:
    same = [1.0, 0.0, 1.0, 1.0]
    assert separation(same, same).rows_needed is None
    assert separation([1.0] * 30, [0.0] * 30).separated


# --- the racing rule -------------------------------------------------------------------------


def test_stages_start_small_double_and_end_on_the_whole_dev_set() -> None:
    assert stages(3) == [3]
    assert stages(40) == [5, 10, 20, 40]
    assert stages(200) == [25, 50, 100, 200]
    for total in range(1, 300):
        sizes = stages(total)
        assert sizes[-1] == total and sizes == sorted(set(sizes))
        assert sizes[0] >= min(total, RACE_FIRST)


def test_a_candidate_wrong_where_the_best_is_right_stops_and_an_equal_one_does_not() -> None:
    reference = [1.0] * 10 + [0.0] * 30
    assert hopeless([0.0] * 10, reference[:10], 10.0, 40, 0.0, 0.95) is not None
    assert hopeless([1.0] * 10, reference[:10], 10.0, 40, 0.0, 0.95) is None
    assert hopeless([0.0] * 4, reference[:4], 10.0, 40, 0.0, 0.95) is None  # too few rows yet
    # the exact rule: even every remaining row right would not reach the best
    assert "cannot reach" in (hopeless([0.0] * 10, [1.0] * 10, 39.0, 40, 0.0, 0.95) or "")


@given(
    st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])), min_size=1, max_size=60),
    st.integers(0, 40),
)
def test_racing_never_stops_a_candidate_at_least_as_good_on_every_row(
    pairs: list[tuple[float, float]], extra: int
) -> None:
    candidate = [max(a, b) for a, b in pairs]
    reference = [b for _, b in pairs]
    total = len(pairs) + extra
    assert hopeless(candidate, reference, sum(reference) + extra, total, 0.0, 0.95) is None


# --- racing and selection in a search --------------------------------------------------------


def _strong(search: Search) -> Any:
    demos = {KIND: [{"question": q, "answer": QUESTIONS[q]} for q in NAMES[:2]]}
    return search.with_demos(demos)


def test_a_weak_candidate_is_raced_out_after_a_few_rows_and_cannot_win() -> None:
    lm = ScriptedLM(QUESTIONS, needs_demos=1, wrong="HUM")
    search = Search(_task(lm))
    search.discover()
    assert search.score("strong", _strong(search)) == 1.0
    before = lm.calls
    weak = search.score("zero-shot", search.base_states, race=True)
    record = search.history[-1]
    assert not record.complete and record.dev_examples < 40
    assert lm.calls - before == record.dev_examples  # only the rows it saw were asked
    assert record.stopped_because is not None
    assert search.best is not None and search.best[1] == "strong"
    assert 0.0 <= weak < 1.0


def test_a_candidate_as_good_as_the_best_is_scored_on_all_of_dev() -> None:
    lm = ScriptedLM(QUESTIONS, needs_demos=1)
    search = Search(_task(lm))
    search.discover()
    search.score("strong", _strong(search))
    other = search.with_demos({KIND: [{"question": NAMES[5], "answer": QUESTIONS[NAMES[5]]}]})
    assert search.score("one demo", other, race=True) == 1.0
    assert search.history[-1].complete and search.history[-1].dev_examples == 40
    assert search.best is not None and search.best[1] == "one demo"  # tie: one demo is cheaper


def test_each_candidate_records_its_tokens_per_call_and_an_interval() -> None:
    lm = ScriptedLM(QUESTIONS, needs_demos=1)
    search = Search(_task(lm))
    search.discover()
    search.score("zero-shot", search.base_states)
    search.score("strong", _strong(search))
    zero, strong = search.history
    assert zero.prompt_tokens_per_call is not None and strong.prompt_tokens_per_call is not None
    assert strong.prompt_tokens_per_call > zero.prompt_tokens_per_call  # demos cost tokens
    assert zero.interval is not None and zero.interval[0] <= zero.dev_score <= zero.interval[1]


class KeyLM(ScriptedLM):
    """Right only when a demo shows one of the `keys` questions: some demo sets are strong,
    others weak, in an order the candidates' seeds decide."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(QUESTIONS, wrong="HUM")
        self.keys = set(keys)

    def complete(self, messages: Any, **params: Any) -> Any:
        shown = {sections(m["content"]).get("question") for m in messages[1:-1] if m["role"] == "user"}
        if shown & self.keys:
            return super().complete(messages, **params)
        return super().complete([messages[0], messages[-1]], **params)  # answered as zero-shot


def test_racing_keeps_the_winner_and_spends_fewer_calls_in_random_search() -> None:
    def once(racing: bool, threads: int = 4) -> tuple[Any, int]:
        lm = KeyLM(NAMES[:3])
        optimizer = make_optimizer(
            "random_search",
            {"num_candidates": 6, "max_labeled_demos": 2, "max_bootstrapped_demos": 2,
             "racing": racing},
        )  # fmt: skip
        task = OptimizationTask(
            steps().kind, _examples(NAMES[:20]), _examples(NAMES[20:60]), "exact_match", lm,
            threads=threads,
        )  # fmt: skip
        result = optimize(task, optimizer)
        return result, lm.calls

    full, full_calls = once(False)
    raced, raced_calls = once(True)
    assert raced.best_label == full.best_label and raced.states == full.states
    assert raced.dev_score_after == full.dev_score_after
    assert raced_calls < 0.75 * full_calls
    assert all(c.complete for c in full.history)
    assert sum(not c.complete for c in raced.history) >= 3
    assert any(n.startswith("racing stopped") for n in raced.notes)
    again, _ = once(True, threads=1)
    assert again.states == raced.states and [c.label for c in again.history] == [
        c.label for c in raced.history
    ]


def test_a_tiny_dev_set_that_cannot_separate_the_winner_says_so() -> None:
    lm = ScriptedLM(QUESTIONS, needs_demos=1, never=NAMES[20:22])
    search_task = _task(lm, dev=6)
    result = optimize(search_task, make_optimizer("random_search", {"num_candidates": 0}))
    assert any("does not separate" in note for note in result.notes), result.notes


def test_objective_reaches_the_lock_record() -> None:
    from promptcast.optimizers.record import optimization_record

    lm = ScriptedLM(QUESTIONS, needs_demos=1)
    result = optimize(
        _task(lm, objective=Objective("within", margin=0.1)),
        make_optimizer("random_search", {"num_candidates": 0}),
    )
    record = optimization_record(result, {})
    assert record["objective"] == "within:0.1"
    first = record["candidates"][0]
    assert {"dev_examples", "complete", "interval_95", "prompt_tokens_per_call"} <= set(first)
    assert math.isclose(sum(first["interval_95"]) / 2, first["dev_score"], abs_tol=0.5)


def test_prune_demos_drops_the_demos_the_score_does_not_need() -> None:
    lm = ScriptedLM(QUESTIONS, needs_demos=2, wrong="HUM")
    task = _task(lm, prune_demos=True)
    result = optimize(task, make_optimizer("labeled", {"k": 5}))
    assert result.dev_score_after == 1.0
    assert len(result.states[KIND].demos) == 2  # the fewest that still score 1.0
    pruned = [c for c in result.history if c.label.startswith("pruned:")]
    assert len(pruned) == 5  # one try per demo, last first
    assert any("dropped 3 demo(s)" in note for note in result.notes)


def test_without_prune_demos_the_winner_keeps_every_demo() -> None:
    lm = ScriptedLM(QUESTIONS, needs_demos=2, wrong="HUM")
    result = optimize(_task(lm), make_optimizer("labeled", {"k": 5}))
    assert len(result.states[KIND].demos) == 5
    assert not any(c.label.startswith("pruned:") for c in result.history)


def test_successive_halving_keeps_the_better_half_per_rung_and_scores_the_last_fully() -> None:
    def once(halving: bool, threads: int = 4) -> tuple[Any, int]:
        lm = KeyLM(NAMES[:3])
        optimizer = make_optimizer(
            "random_search",
            {"num_candidates": 6, "max_labeled_demos": 2, "max_bootstrapped_demos": 2,
             "halving": halving},
        )  # fmt: skip
        task = OptimizationTask(
            steps().kind, _examples(NAMES[:20]), _examples(NAMES[20:60]), "exact_match", lm,
            threads=threads,
        )  # fmt: skip
        return optimize(task, optimizer), lm.calls

    halved, calls = once(True)
    sequential, _ = once(False)
    stopped = [c for c in halved.history if not c.complete]
    assert stopped and all(c.stopped_because.startswith("successive halving") for c in stopped)
    rows = sorted({c.dev_examples for c in stopped})
    assert set(rows) <= {5, 10, 20}  # the rungs of a 40-row dev set
    assert all(c.complete for c in halved.history if c.label == halved.best_label)
    assert halved.dev_score_after == sequential.dev_score_after == 1.0
    again, again_calls = once(True, threads=1)
    assert again.states == halved.states and again_calls == calls
