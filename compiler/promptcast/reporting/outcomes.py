"""What the optimize report shows beyond the search: the dev examples one by one, and the prompt.

Why a second pass: the search keeps a score per dev row, not the outputs, and the report must
show the failing inputs and what the winner answered. The pass replays the winner and zero-shot
on dev through the run's own engine and LM -- the very requests the search already made for them
-- so with the cache on (the default) it is served from the cache and costs no paid call. When
the run did not score dev (`dev_score=false`) or `--no-cache` is set, the requests would be paid
again, so the pass is skipped and the report says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.program import ProgramEngine, RunFailed
from ..evaluate.evaluate import evaluate
from ..ir import FunctionState
from .html import Outcomes, PromptPair


def zero_shot_states(
    functions: Mapping[str, Any],
    lm_params: Mapping[str, Any] | None,
    run_lm_params: Mapping[str, Any] | None,
) -> dict[str, FunctionState]:
    """Each step's unoptimized state, with the sampling the run scored it with."""
    return {
        q: FunctionState.zero_shot(sig, dict(lm_params or {})).with_lm_params(
            dict(run_lm_params) if run_lm_params else None
        )
        for q, sig in functions.items()
    }


def dev_outcomes(
    target: Any,
    lm: Any,
    dev: Sequence[Any],
    metric: Any,
    threads: int,
    winner: Mapping[str, FunctionState],
    zero_shot: Mapping[str, FunctionState] | None,
    run_lm_params: Mapping[str, Any] | None,
) -> Outcomes:
    """The winner's (and zero-shot's) per-example dev results through the run's engine."""
    engine = ProgramEngine(target, lm, run_lm_params)

    def scored(states: Mapping[str, FunctionState], label: str) -> Any:
        return evaluate(
            lambda **inputs: engine.output(inputs, states),
            dev,
            metric,
            threads,
            usage=lm,
            progress=False,
            description=label,
        )

    report = scored(winner, "report: winner")
    baseline = None
    if zero_shot is not None and dict(zero_shot) != dict(winner):
        baseline = scored(zero_shot, "report: zero-shot")
    notes = []
    if report.stopped:
        notes.append(f"stopped early ({report.skipped} examples not run): {report.stopped}")
    return Outcomes(report, baseline, tuple(notes))


def prompt_pairs(
    target: Any,
    lm: Any,
    example: Any,
    winner: Mapping[str, FunctionState],
    zero_shot: Mapping[str, FunctionState],
    run_lm_params: Mapping[str, Any] | None,
) -> list[PromptPair]:
    """For each step: the messages it sends for `example` (its first call), zero-shot and
    winner. A program is run (through the cache) to see each step's own inputs."""
    engine = ProgramEngine(target, lm, run_lm_params)

    def first_messages(states: Mapping[str, FunctionState]) -> dict[str, Any]:
        try:
            calls = engine.run(example.inputs(), states).calls
        except RunFailed as failed:
            calls = failed.calls
        found: dict[str, Any] = {}
        for call in calls:
            found.setdefault(call.qualname, call.messages)
        return found

    after = first_messages(winner)
    before = first_messages(zero_shot)
    return [
        PromptPair(q, before[q], after[q]) for q in sorted(after) if q in before and q in winner
    ]
