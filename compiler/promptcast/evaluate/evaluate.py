"""Score a program on examples in parallel: per-example outcomes, a summary, a table, JSON.

Why a failing example is a result and not an exception: with small models a parse error on a
few rows is normal, and it is exactly what the user needs to see in the failures table -- so
any exception from the program (or the metric) scores 0 and is recorded with its message.
Only a spent budget (`BudgetExhausted`) stops the run; the examples it skipped are reported.

The score is the mean over the examples that ran (errors count as 0), always in [0, 1]. LM
usage comes from an optional `usage` source (the engine LM or its meter): the report holds the
difference between its snapshots before and after, i.e. what this evaluation spent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from promptcast.engine.budget import BudgetExhausted, UsageSnapshot
from promptcast.engine.runner import DEFAULT_THREADS, ItemError, Progress, Skipped, run_parallel
from promptcast.evaluate.data import Example
from promptcast.evaluate.metrics import Metric, MetricFn, Score, get_metric
from promptcast_runtime import to_jsonable


class UsageSource(Protocol):
    """Anything that reports LM usage so far (`LiteLLMLM`, `UsageMeter`)."""

    def snapshot(self) -> UsageSnapshot: ...


@dataclass(frozen=True)
class ExampleResult:
    """One example's outcome. `error` is `"Type: message"` when the program or metric raised."""

    index: int
    example: Example
    prediction: Any = None
    score: float = 0.0
    feedback: str | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.score >= 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "where": self.example.where,
            "inputs": jsonable(self.example.inputs()),
            "expected": jsonable(self.example.expected()),
            "prediction": jsonable(self.prediction),
            "score": self.score,
            "feedback": self.feedback,
            "error": self.error,
        }


@dataclass(frozen=True)
class EvalReport:
    """What `evaluate` found: per-example results (examples that ran, in input order) + totals."""

    metric: str
    results: tuple[ExampleResult, ...]
    usage: UsageSnapshot = field(default_factory=UsageSnapshot)
    seconds: float = 0.0
    skipped: int = 0
    stopped: str | None = None

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def score(self) -> float:
        """Mean score over the examples that ran, in [0, 1] (0.0 when none ran)."""
        return sum(r.score for r in self.results) / self.n if self.results else 0.0

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r.error is not None)

    @property
    def lm_calls(self) -> int:
        return self.usage.calls

    @property
    def failures(self) -> list[ExampleResult]:
        """Results that scored below 1 or raised."""
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """One line for the CLI."""
        passed = sum(1 for r in self.results if r.passed)
        parts = [
            f"{self.metric}: {self.score:.3f} ({passed}/{self.n} fully correct)",
            f"errors {self.errors}",
            f"LM calls {self.usage.calls} (cache hits {self.usage.cache_hits})",
            f"tokens {self.usage.prompt_tokens}+{self.usage.completion_tokens}",
        ]
        if self.usage.cost:
            parts.append(f"cost ${self.usage.cost:.4f}")
        parts.append(f"{self.seconds:.1f}s")
        line = " | ".join(parts)
        if self.stopped:
            line += f"\nstopped early, {self.skipped} examples not run: {self.stopped}"
        return line

    def failures_table(self, limit: int | None = 20, width: int = 40) -> str:
        """A plain-text table of failing examples (first `limit`; None: all)."""
        rows = self.failures
        if not rows:
            return "no failures"
        shown = rows if limit is None else rows[:limit]
        header = ("#", "where", "expected", "got", "score")
        body = [
            (
                str(r.index),
                r.example.where,
                _cell(_expected_text(r.example), width),
                _cell(f"ERROR {r.error}" if r.error else _prediction_text(r.prediction), width),
                f"{r.score:.2f}",
            )
            for r in shown
        ]
        widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *body)
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if len(shown) < len(rows):
            lines.append(f"... and {len(rows) - len(shown)} more failures")
        return "\n".join(lines)

    def to_json(self, *, include_examples: bool = False) -> dict[str, Any]:
        """The `--json` object: at least `score`, `n`, `lm_calls`."""
        data: dict[str, Any] = {
            "score": self.score,
            "n": self.n,
            "lm_calls": self.lm_calls,
            "cache_hits": self.usage.cache_hits,
            "errors": self.errors,
            "metric": self.metric,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost": round(self.usage.cost, 8),
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
            "stopped": self.stopped,
        }
        results = self.results if include_examples else tuple(self.failures)
        data["examples" if include_examples else "failures"] = [r.to_json() for r in results]
        return data

    def to_json_text(self, *, include_examples: bool = False) -> str:
        return json.dumps(self.to_json(include_examples=include_examples), ensure_ascii=False)


def evaluate(
    program: Callable[..., Any],
    examples: Sequence[Example],
    metric: str | Metric | MetricFn,
    threads: int = DEFAULT_THREADS,
    *,
    usage: UsageSource | None = None,
    progress: bool | None = None,
    description: str = "eval",
) -> EvalReport:
    """Run `program(**example.inputs())` on every example (in parallel) and score it.

    `examples` must be bound (`data.bind`) so each knows its inputs and expected outputs.
    `usage` supplies LM usage for the report and the progress bar; `progress` None shows the
    bar only on a terminal, False never, True always.
    """
    scorer = get_metric(metric)
    for ex in examples:
        if not ex.input_names:
            raise ValueError(
                f"{ex.where}: example is not bound to the program's parameters; "
                "call promptcast.evaluate.data.bind first"
            )

    def run_one(item: tuple[int, Example]) -> ExampleResult:
        index, example = item
        try:
            prediction = program(**example.inputs())
        except Exception as exc:
            if _is_budget(exc):
                raise
            return ExampleResult(index, example, error=f"{type(exc).__name__}: {exc}")
        try:
            score: Score = scorer(example, prediction)
        except Exception as exc:
            if _is_budget(exc):
                raise
            return ExampleResult(
                index, example, prediction, error=f"metric {type(exc).__name__}: {exc}"
            )
        return ExampleResult(index, example, prediction, score.value, score.feedback)

    before = usage.snapshot() if usage is not None else UsageSnapshot()
    bar = Progress(
        description=description,
        enabled=progress,
        usage=usage.snapshot if usage is not None else None,
        score=lambda r: r.score if isinstance(r, ExampleResult) else None,
    )
    start = time.perf_counter()
    batch = run_parallel(run_one, list(enumerate(examples)), threads=threads, progress=bar)
    seconds = time.perf_counter() - start
    after = usage.snapshot() if usage is not None else UsageSnapshot()
    results: list[ExampleResult] = []
    for (index, example), outcome in zip(enumerate(examples), batch, strict=True):
        if isinstance(outcome, Skipped):
            continue
        if isinstance(outcome, ItemError):  # only if run_one itself failed
            results.append(ExampleResult(index, example, error=str(outcome)))
        else:
            results.append(outcome)
    return EvalReport(
        metric=scorer.name,
        results=tuple(results),
        usage=after - before,
        seconds=seconds,
        skipped=len(examples) - len(results),
        stopped=str(batch.stopped) if batch.stopped is not None else None,
    )


def _is_budget(exc: BaseException) -> bool:
    return isinstance(exc, BudgetExhausted)


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _expected_text(example: Example) -> str:
    expected = example.expected()
    if len(expected) == 1:
        return _prediction_text(next(iter(expected.values())))
    return json.dumps(jsonable(expected), ensure_ascii=False)


def _prediction_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a prediction (the runtime's `to_jsonable`, which demos and the lock
    use too); a value too deeply nested to convert is shown as its text, so a report never
    fails on the prediction it reports."""
    try:
        return to_jsonable(value)
    except ValueError:
        return str(value)
