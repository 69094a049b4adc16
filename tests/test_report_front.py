"""The accuracy-vs-tokens front: which candidates it keeps, and that the report draws it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from promptcast.ir import FunctionState
from promptcast.optimizers.base import CandidateRecord, OptimizationResult, RunUsage
from promptcast.optimizers.front import Costed, costed, front, front_svg
from promptcast.optimizers.report import write_report


def _record(label: str, score: float, prompt: float | None, complete: bool = True) -> CandidateRecord:
    return CandidateRecord(label, score, 10, dev_examples=40, complete=complete,
                           prompt_tokens_per_call=prompt, completion_tokens_per_call=5.0)  # fmt: skip


HISTORY = (
    _record("zero-shot", 0.50, 100.0),
    _record("labeled k=16", 0.50, 1500.0),  # as good, 15x the tokens: off the front
    _record("bootstrap", 0.70, 900.0),
    _record("seed 0", 0.60, 1200.0),  # beaten by bootstrap on both
    _record("seed 1", 0.80, 400.0, complete=False),  # raced out: not a real score
)


def test_the_front_keeps_only_candidates_nobody_beats_on_score_and_cost() -> None:
    edge = front(costed(HISTORY))
    assert [p.label for p in edge] == ["zero-shot", "bootstrap"]
    assert all(c.label != "seed 1" for c in costed(HISTORY))


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(1, 5000)), min_size=1, max_size=15))
def test_no_point_of_the_front_is_dominated(pairs: list[tuple[float, float]]) -> None:
    points = [Costed(str(i), s, t) for i, (s, t) in enumerate(pairs)]
    edge = front(points)
    assert edge
    for p in edge:
        assert not any(o.score > p.score and o.tokens < p.tokens for o in points)


def test_the_report_draws_the_front_with_the_winner(tmp_path: Path) -> None:
    result = OptimizationResult(
        optimizer="random_search", params={}, seed=0, metric="exact_match",
        states={"app:f": FunctionState("Answer.")}, dev_score_before=0.5, dev_score_after=0.7,
        best_label="bootstrap", history=HISTORY, usage=RunUsage(requests=50),
    )  # fmt: skip
    svg = front_svg(list(HISTORY), "bootstrap", title="t")
    assert "tokens per program run" in svg and "winner (0.700, 905 tok)" in svg
    text = write_report(result, tmp_path, "app:f", "openai/m").html.read_text()
    assert "Dev score vs tokens per run" in text and text.count("<svg") == 2


def test_no_measured_cost_means_no_front() -> None:
    assert front_svg([CandidateRecord("x", 0.5, 3)], "x", title="t") == ""
