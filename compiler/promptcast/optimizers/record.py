"""An optimization result -> the lock entries of the functions it optimized.

Only what a rerun reproduces goes in: scores, parameters, dataset hashes, LM requests and tokens
counted over every request (cached or paid). Wall time, paid-call counts and cache hits depend on
the cache and the machine, so they are printed, never locked: the same seed on a warm cache gives
a byte-identical lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..lockfile import LockEntry
from .base import OptimizationResult

SCORE_DIGITS = 6


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, SCORE_DIGITS)


def optimization_record(result: OptimizationResult, datasets: Mapping[str, Any]) -> dict[str, Any]:
    """The `optimization` object of each entry (shared by the functions of one run)."""
    return {
        "optimizer": result.optimizer,
        "params": dict(result.params),
        "seed": result.seed,
        "metric": result.metric,
        "datasets": dict(datasets),
        "dev_score_before": _round(result.dev_score_before),
        "dev_score_after": _round(result.dev_score_after),
        "best_candidate": result.best_label,
        "candidates": [
            {"label": c.label, "dev_score": _round(c.dev_score), "lm_requests": c.lm_requests}
            for c in result.history
        ],
        "lm_requests": result.usage.requests,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "stopped": result.stopped,
    }


def lock_entries(
    result: OptimizationResult,
    *,
    model: str,
    datasets: Mapping[str, Any],
) -> dict[str, LockEntry]:
    """qualname -> LockEntry for every function whose state the result holds.

    LM requests and tokens are the run's totals (the functions of a program are optimized
    together, so their costs are not separable).
    """
    record = optimization_record(result, datasets)
    return {
        qualname: LockEntry(
            signature_hash=result.functions[qualname].signature.hash(),
            state=state,
            model=model,
            optimization=record,
        )
        for qualname, state in sorted(result.states.items())
    }
