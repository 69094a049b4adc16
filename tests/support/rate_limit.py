"""A fault plan for the fake OpenAI server that enforces a requests/min limit and records when
each chat request arrived.

Why a plan and not a server option: the server asks its plan, under its lock, which fault each
chat request gets *as it arrives* (before the simulated latency), which is exactly where a
provider's limiter sits. `RateLimitPlan` answers 429 + `Retry-After` to a request over the limit
(a token bucket of `requests_per_minute`, `burst` requests deep) and records the arrival time of
every request, so tests can check that a client paused after a 429 and benchmarks can count the
429s a client provoked. Stdlib only (benchmarks run it from another venv).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .faults import FaultKind, FaultPlan


class _Bucket:
    """Mutable state of a frozen plan: the token bucket and the arrival log."""

    def __init__(self) -> None:
        self.level: float | None = None
        self.updated = time.monotonic()
        self.arrivals: list[tuple[int, float, bool]] = []  # (number, time, limited)


@dataclass(frozen=True)
class RateLimitPlan(FaultPlan):
    """`requests_per_minute` (None: no limit, only recording) with `burst` requests of slack
    (default: one second's worth); everything else as `FaultPlan` (faults by number too)."""

    requests_per_minute: float | None = None
    burst: float | None = None
    _state: _Bucket = field(default_factory=_Bucket, repr=False, compare=False)

    def fault_for(self, number: int) -> FaultKind | None:
        now = time.monotonic()
        state = self._state
        limited = False
        fault = super().fault_for(number)
        if fault is None and self.requests_per_minute is not None:
            rate = self.requests_per_minute / 60.0
            depth = self.burst if self.burst is not None else max(1.0, rate)
            level = depth if state.level is None else state.level
            level = min(depth, level + (now - state.updated) * rate)
            state.updated = now
            if level >= 1.0:
                level -= 1.0
            else:
                limited = True
                fault = FaultKind.RATE_LIMIT
            state.level = level
        state.arrivals.append((number, now, limited or fault is FaultKind.RATE_LIMIT))
        return fault

    @property
    def arrivals(self) -> list[tuple[int, float, bool]]:
        """(request number, monotonic arrival time, answered 429) of every chat request."""
        return list(self._state.arrivals)

    @property
    def limited(self) -> int:
        """How many requests were answered 429."""
        return sum(1 for *_, was in self._state.arrivals if was)

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self._state.arrivals), "rate_limited": self.limited}
