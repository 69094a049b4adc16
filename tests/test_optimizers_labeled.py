"""`labeled` and the optimizer registry, against the scripted LM (right only with demos)."""

from __future__ import annotations

import pytest

from promptcast.optimizers import OptimizationError, make_optimizer
from tests.support.optimizing import QS, TRAIN, run, steps

KIND = "optpkg.steps:kind"


def test_labeled_demos_are_a_seeded_sample_of_train_with_expected_outputs() -> None:
    result, _ = run(steps().kind, "labeled", k=3)
    demos = result.states[KIND].demos
    assert len(demos) == 3
    for demo in demos:
        assert set(demo) == {"question", "answer"}
        assert demo["question"] in TRAIN
    assert result.dev_score_before == 0.5 and result.dev_score_after == 1.0
    again, _ = run(steps().kind, "labeled", k=3)
    assert again.states == result.states
    other, _ = run(steps().kind, "labeled", k=3, seed=7)
    assert other.states[KIND].demos != demos


def test_labeled_k_larger_than_train_takes_all() -> None:
    result, _ = run(steps().kind, "labeled", k=50)
    assert sorted(d["question"] for d in result.states[KIND].demos) == sorted(TRAIN)


def test_zero_shot_is_scored_once_and_instructions_come_from_the_docstring() -> None:
    result, lm = run(steps().kind, "labeled", k=2)
    assert lm.calls == 2 * len(QS[8:])  # before + the one candidate
    assert result.states[KIND].instructions.startswith("Classify the kind")
    assert result.usage.requests == lm.calls
    assert [c.label for c in result.history] == ["labeled k=2"]


def test_optimizer_args_are_converted_and_checked() -> None:
    opt = make_optimizer("bootstrap", {"max_labeled_demos": "4", "metric_threshold": "0.5"})
    assert opt.params()["max_labeled_demos"] == 4
    assert opt.params()["metric_threshold"] == 0.5
    assert (
        make_optimizer("bootstrap", {"metric_threshold": "none"}).params()["metric_threshold"]
        is None
    )
    with pytest.raises(OptimizationError, match="no parameter 'k2'"):
        make_optimizer("labeled", {"k2": "1"})
    with pytest.raises(OptimizationError, match="expected"):
        make_optimizer("labeled", {"k": "many"})
    with pytest.raises(OptimizationError, match="unknown optimizer"):
        make_optimizer("miprov3", {})


def test_labeled_with_dev_score_false_makes_no_lm_call() -> None:
    scored, _ = run(steps().kind, "labeled", k=3)
    result, lm = run(steps().kind, "labeled", k=3, dev_score=False)
    assert lm.calls == 0
    assert result.states == scored.states
    assert result.dev_score_before is None and result.dev_score_after is None
    assert result.history == ()
