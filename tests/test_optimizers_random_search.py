"""`random_search`, budgets, determinism and lock records, with the scripted LM."""

from __future__ import annotations

import random

from promptcast.lockfile import Lock
from promptcast.optimizers.record import lock_entries
from tests.support.optimizing import TRAIN, run, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM

KIND = "optpkg.steps:kind"


def test_candidates_follow_dspy_order_and_a_tie_goes_to_the_cheaper_state() -> None:
    result, _ = run(steps().kind, "random_search", num_candidates=2, max_labeled_demos=4)
    labels = [c.label for c in result.history]
    sizes = [random.Random(s).randint(1, 4) for s in (0, 1)]
    assert labels == [
        "zero-shot",
        "labeled k=4",
        "bootstrap",
        f"seed 0: bootstrap {sizes[0]}",
        f"seed 1: bootstrap {sizes[1]}",
    ]
    assert [c.dev_score for c in result.history] == [0.5, 1.0, 1.0, 1.0, 1.0]
    tied = [c for c in result.history if c.dev_score == 1.0]
    cheapest = min(tied, key=lambda c: c.cost)
    assert len({c.cost for c in tied}) > 1  # the tie is a real choice
    assert result.best_label == cheapest.label  # fewest tokens per call, not the first
    requests = [c.lm_requests for c in result.history]
    assert requests == sorted(requests)


def test_best_candidate_wins() -> None:
    # Needs 3 demos to be right: labeled-only (2 demos) loses to a bootstrap of 2 + 2 labels.
    lm = ScriptedLM(QUESTIONS, needs_demos=3)
    result, _ = run(
        steps().kind,
        "random_search",
        lm,
        num_candidates=1,
        max_labeled_demos=2,
        max_bootstrapped_demos=2,
    )
    scores = {c.label: c.dev_score for c in result.history}
    assert scores["labeled k=2"] == 0.5
    assert result.dev_score_after == max(scores.values())


def test_shuffled_candidates_bootstrap_from_a_seeded_order() -> None:
    result, _ = run(
        steps().kind,
        "random_search",
        num_candidates=1,
        max_labeled_demos=1,
        max_bootstrapped_demos=1,
        stop_at_score=2.0,
    )
    assert "seed 0: bootstrap 1: 1 of 1 training examples bootstrapped" in result.notes


def test_budget_stops_cleanly_and_keeps_the_best_so_far() -> None:
    # zero-shot 4 + labeled 4 = 8 calls fully scored; the budget dies inside the bootstrap.
    result, lm = run(steps().kind, "random_search", num_candidates=4, max_calls=11)
    assert lm.calls == 11
    assert result.stopped is not None and "budget exhausted" in result.stopped
    assert result.best_label == "labeled k=16"
    assert result.dev_score_after == 1.0
    assert len(result.states[KIND].demos) == len(TRAIN)


def test_budget_spent_before_any_candidate_keeps_zero_shot() -> None:
    result, _ = run(steps().kind, "bootstrap", max_calls=6)
    assert result.stopped
    assert result.best_label is None
    assert result.states[KIND].demos == ()
    assert result.dev_score_after == result.dev_score_before == 0.5


def test_budget_during_the_zero_shot_score_reports_no_scores() -> None:
    result, _ = run(steps().kind, "labeled", max_calls=2)
    assert result.stopped and result.dev_score_before is None and result.dev_score_after is None


def _lock_bytes(seed: int) -> str:
    result, _ = run(steps().two_steps, "random_search", num_candidates=3, seed=seed, threads=8)
    entries = lock_entries(result, model="scripted", datasets={"train": {"sha256": "x"}})
    return Lock(entries).dumps()


def test_same_seed_gives_a_byte_identical_lock() -> None:
    first = _lock_bytes(0)
    assert first == _lock_bytes(0)
    assert '"lm_requests"' in first and '"dev_score_before": 0.5' in first
    assert "seconds" not in first and "wall" not in first


def test_lock_records_per_function() -> None:
    result, _ = run(steps().kind, "bootstrap", max_labeled_demos=2)
    (entry,) = lock_entries(result, model="m", datasets={"train": {"sha256": "t"}}).values()
    opt = entry.optimization
    assert entry.model == "m"
    assert entry.signature_hash == steps().kind.signature.hash()
    assert opt["optimizer"] == "bootstrap" and opt["params"]["max_labeled_demos"] == 2
    assert opt["seed"] == 0 and opt["metric"] == "exact_match"
    assert opt["dev_score_before"] == 0.5 and opt["dev_score_after"] == 1.0
    assert opt["lm_requests"] == result.usage.requests > 0
    assert opt["prompt_tokens"] > 0 and opt["completion_tokens"] > 0
    assert opt["datasets"] == {"train": {"sha256": "t"}}


def test_dry_run_estimate_bounds_the_calls_made() -> None:
    """An upper bound that is not far off: every candidate's teacher runs and dev pass."""
    from promptcast.optimizers import make_optimizer
    from promptcast.optimizers.base import estimate_runs
    from tests.support.optimizing import DEV, TRAIN

    args = {"num_candidates": 3, "max_labeled_demos": 2}
    estimate = estimate_runs(
        steps().kind, make_optimizer("random_search", args), len(TRAIN), len(DEV)
    )
    _, lm = run(steps().kind, "random_search", **args)
    assert lm.calls <= estimate <= 2 * lm.calls, (lm.calls, estimate)
