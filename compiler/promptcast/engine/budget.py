"""Call budgets and usage accounting, shared by every thread of a run.

Budgets are first-class (DESIGN principle 4): an optimizer is given at most N *paid* LM calls.
The budget is checked and consumed atomically *before* a call is sent, so 32 threads racing for
the last call cannot overshoot it; cache hits are free and never touch it. When the budget is
spent, the next paid call raises `BudgetExhausted`, which the parallel runner treats as "stop
cleanly and keep what completed" rather than as a per-example failure.

`UsageMeter` accumulates what a run actually spent (calls, cache hits, tokens, cost, errors);
`UsageSnapshot` is an immutable reading of it, and snapshots subtract so an optimizer can report
what each step cost: `before = lm.usage.snapshot(); ...; step = lm.usage.snapshot() - before`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


class BudgetExhausted(Exception):  # noqa: N818 -- the name reads as the event it reports
    """A paid LM call was refused because the run's call budget is spent.

    Deliberately not an `LMError`: it is not a transport failure of one example, it is the end of
    the run's spending, and the runner stops the batch on it.
    """

    def __init__(
        self, max_calls: int | None, used: int, usd: tuple[float, float] | None = None
    ) -> None:
        self.max_calls = max_calls
        self.used = used
        if usd is not None:
            spent, limit = usd
            message = (
                f"LM cost budget exhausted: ${spent:.4f} of max ${limit:.4f} spent in {used} "
                "calls (cached calls are free; raise --max-usd to spend more)"
            )
        else:
            message = (
                f"LM call budget exhausted: {used} of max {max_calls} calls used "
                "(cached calls are free; raise --max-calls to spend more)"
            )
        super().__init__(message)


class LMBudget:
    """Thread-safe ceilings on paid LM calls and on dollars spent (`None`: unlimited).

    The call ceiling is exact. The dollar ceiling is known only after each call returns its
    cost, so it refuses every call that *starts* once the spend reached it; calls already in
    flight (at most one per thread) may finish above it.
    """

    def __init__(self, max_calls: int | None = None, max_usd: float | None = None) -> None:
        if max_calls is not None and max_calls < 0:
            raise ValueError(f"max_calls must be >= 0 or None, got {max_calls}")
        if max_usd is not None and max_usd < 0:
            raise ValueError(f"max_usd must be >= 0 or None, got {max_usd}")
        self.max_calls = max_calls
        self.max_usd = max_usd
        self._used = 0
        self._spent = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> None:
        """Take one call from the budget, or raise `BudgetExhausted` if none is left."""
        with self._lock:
            if self.max_calls is not None and self._used >= self.max_calls:
                raise BudgetExhausted(self.max_calls, self._used)
            if self.max_usd is not None and self._spent >= self.max_usd:
                raise BudgetExhausted(self.max_calls, self._used, (self._spent, self.max_usd))
            self._used += 1

    def charge(self, usd: float) -> None:
        """Add the cost of a call that returned."""
        with self._lock:
            self._spent += usd

    @property
    def spent_usd(self) -> float:
        return self._spent

    @property
    def used(self) -> int:
        return self._used

    @property
    def remaining(self) -> int | None:
        """Calls left, or None when unlimited."""
        if self.max_calls is None:
            return None
        return max(0, self.max_calls - self._used)

    @property
    def exhausted(self) -> bool:
        calls = self.max_calls is not None and self._used >= self.max_calls
        return calls or (self.max_usd is not None and self._spent >= self.max_usd)

    def __repr__(self) -> str:
        return (
            f"LMBudget(max_calls={self.max_calls}, used={self._used}, "
            f"max_usd={self.max_usd}, spent_usd={self._spent:.4f})"
        )


@dataclass(frozen=True)
class UsageSnapshot:
    """What a run spent up to one moment. `calls` are paid (non-cached) calls that returned."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    errors: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __sub__(self, other: UsageSnapshot) -> UsageSnapshot:
        return UsageSnapshot(
            calls=self.calls - other.calls,
            cache_hits=self.cache_hits - other.cache_hits,
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            completion_tokens=self.completion_tokens - other.completion_tokens,
            cost=self.cost - other.cost,
            errors=self.errors - other.errors,
        )

    def __add__(self, other: UsageSnapshot) -> UsageSnapshot:
        return UsageSnapshot(
            calls=self.calls + other.calls,
            cache_hits=self.cache_hits + other.cache_hits,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=self.cost + other.cost,
            errors=self.errors + other.errors,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the lock file and `--json` output (cost rounded to stay stable)."""
        data = asdict(self)
        data["cost"] = round(self.cost, 8)
        return data


class UsageMeter:
    """Thread-safe accumulator of LM usage; read it with `snapshot()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._hits = 0
        self._prompt = 0
        self._completion = 0
        self._cost = 0.0
        self._errors = 0

    def record_call(self, usage: Mapping[str, int], cost: float = 0.0) -> None:
        """A paid call returned with this token usage and (possibly 0) cost."""
        with self._lock:
            self._calls += 1
            self._prompt += int(usage.get("prompt_tokens", 0) or 0)
            self._completion += int(usage.get("completion_tokens", 0) or 0)
            self._cost += cost

    def record_hit(self) -> None:
        with self._lock:
            self._hits += 1

    def record_error(self) -> None:
        with self._lock:
            self._errors += 1

    def snapshot(self) -> UsageSnapshot:
        with self._lock:
            return UsageSnapshot(
                calls=self._calls,
                cache_hits=self._hits,
                prompt_tokens=self._prompt,
                completion_tokens=self._completion,
                cost=self._cost,
                errors=self._errors,
            )
