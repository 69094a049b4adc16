"""An optimization result -> the lock entries of the functions it optimized.

Only what a rerun reproduces goes in: scores, parameters, dataset hashes, LM requests and tokens
counted over every request (cached or paid). Wall time, paid-call counts and cache hits depend on
the cache and the machine, so they are printed, never locked: the same seed on a warm cache gives
a byte-identical lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..lockfile import Lock, LockEntry
from .base import CandidateRecord, OptimizationResult

SCORE_DIGITS = 6


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, SCORE_DIGITS)


def _candidate(record: CandidateRecord) -> dict[str, Any]:
    """One candidate as the lock records it: score, rows, interval and tokens per call."""
    out: dict[str, Any] = {
        "label": record.label,
        "dev_score": _round(record.dev_score),
        "lm_requests": record.lm_requests,
        "dev_examples": record.dev_examples,
        "complete": record.complete,
    }
    if record.interval is not None:
        out["interval_95"] = [_round(record.interval[0]), _round(record.interval[1])]
    if record.prompt_tokens_per_call is not None:
        out["prompt_tokens_per_call"] = round(record.prompt_tokens_per_call, 1)
        out["completion_tokens_per_call"] = round(record.completion_tokens_per_call or 0.0, 1)
    if record.tokens_per_example is not None:
        out["tokens_per_example"] = round(record.tokens_per_example, 1)
    if record.stopped_because is not None:
        out["stopped_because"] = record.stopped_because
    return out


def optimization_record(result: OptimizationResult, datasets: Mapping[str, Any]) -> dict[str, Any]:
    """The `optimization` object of each entry (shared by the functions of one run)."""
    record: dict[str, Any] = {
        "optimizer": result.optimizer,
        "params": dict(result.params),
        "seed": result.seed,
        "metric": result.metric,
        "objective": result.objective,
        "datasets": dict(datasets),
        "dev_score_before": _round(result.dev_score_before),
        "dev_score_after": _round(result.dev_score_after),
        "best_candidate": result.best_label,
        "candidates": [_candidate(c) for c in result.history],
        "lm_requests": result.usage.requests,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "stopped": result.stopped,
    }
    if result.training:  # only when weights were trained: other locks stay byte-identical
        record["training"] = dict(result.training)
    return record


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
            signature_hash=result.functions[qualname].hash(),
            state=state,
            model=model,
            optimization=record,
        )
        for qualname, state in sorted(result.states.items())
    }


# --- replacing a locked state -----------------------------------------------------------------
#
# `optimize` never replaces a usable locked state with one that is unscored or scores worse
# (unless asked: `--replace-lock`). These helpers say which entries a result would replace and
# whether the locked state's recorded dev score was measured the way this run measures, so the
# two numbers can be compared without spending a call.


def protected_entries(lock: Lock, result: OptimizationResult) -> dict[str, LockEntry]:
    """The lock's entries that `result` would overwrite and that a build can still use.

    An entry made for another version of the function (its signature hash differs) protects
    nothing: `build` refuses it anyway, so replacing it loses nothing.
    """
    found: dict[str, LockEntry] = {}
    for qualname in result.states:
        entry = lock.entries.get(qualname)
        function = result.functions.get(qualname)
        if entry is None or function is None:
            continue
        if entry.signature_hash == function.hash():
            found[qualname] = entry
    return found


def same_states(protected: Mapping[str, LockEntry], result: OptimizationResult) -> bool:
    """Whether the result would lock exactly the states already locked (nothing to lose)."""
    return set(protected) == set(result.states) and all(
        protected[q].state == result.states[q] for q in protected
    )


def dev_identity(optimization: Mapping[str, Any]) -> Any:
    """What a recorded dev score was measured on: the dev data's content (its hash and rows,
    not its path) -- or, for a seeded split of train, train's hash and the seed. None when the
    record does not say (an old or hand-written lock)."""
    datasets = optimization.get("datasets")
    if not isinstance(datasets, Mapping) or not isinstance(datasets.get("dev"), Mapping):
        return None
    dev = {k: v for k, v in datasets["dev"].items() if k != "path"}
    if "split_of" in dev:
        train = datasets.get("train")
        if not isinstance(train, Mapping) or "sha256" not in train:
            return None
        return {"dev": dev, "train_sha256": train["sha256"]}
    return {"dev": dev} if "sha256" in dev else None


def comparable_locked_score(
    protected: Mapping[str, LockEntry],
    result: OptimizationResult,
    *,
    model: str,
    datasets: Mapping[str, Any],
) -> float | None:
    """The locked state's recorded dev score, when it is comparable with `result`'s; else None.

    Comparable means: one run locked every function the result holds (one shared record, so
    its score is the score of exactly these states together), for the same model, with the
    same metric, on the same dev data (`dev_identity`). Which optimizer found it does not
    matter: the score measures the state, not the search. Label and column mappings are not
    recorded, so a run that reads other columns of the same files is taken as comparable.
    """
    if set(protected) != set(result.states):
        return None
    records = [entry.optimization for entry in protected.values()]
    first = records[0]
    if any(record != first for record in records[1:]):
        return None
    if any(entry.model != model for entry in protected.values()):
        return None
    score = first.get("dev_score_after")
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        return None
    if first.get("metric") != result.metric:
        return None
    here = dev_identity({"datasets": datasets})
    if here is None or dev_identity(first) != here:
        return None
    return float(score)


def describe_locked(protected: Mapping[str, LockEntry]) -> str:
    """`bootstrap, 12 demos, dev 1.000` -- what the user is about to keep or lose."""
    entries = list(protected.values())
    record = entries[0].optimization
    demos = sum(len(entry.state.demos) for entry in entries)
    score = record.get("dev_score_after")
    parts = [str(record.get("optimizer") or "unknown optimizer"), f"{demos} demo(s)"]
    parts.append(f"dev {score:.3f}" if isinstance(score, (int, float)) else "dev not scored")
    return ", ".join(parts)
