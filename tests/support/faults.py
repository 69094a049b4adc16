"""Which request of the fake OpenAI server misbehaves, and how.

Why a plan object instead of ad-hoc flags: reliability tests of the runtime's HTTP client
(retries, timeouts, parse errors) need faults that are reproducible. A fault is chosen either
by request number (1-based, counted over chat-completion requests) or with a seeded
probability that depends only on (seed, request number), so the same plan faults the same
requests no matter how threads interleave.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum


class FaultKind(str, Enum):
    """Every way the fake server can fail one request."""

    RATE_LIMIT = "rate_limit"  # 429 with a Retry-After header
    RATE_LIMIT_NO_RETRY_AFTER = "rate_limit_no_retry_after"  # 429 without Retry-After
    SERVER_ERROR = "server_error"  # 500
    BAD_GATEWAY = "bad_gateway"  # 502
    UNAVAILABLE = "unavailable"  # 503
    TIMEOUT = "timeout"  # says nothing for FaultPlan.hang_s, then answers normally
    RESET = "reset"  # closes the socket abruptly (TCP RST), no response at all
    TRUNCATED = "truncated"  # 200, Content-Length matches, JSON cut in half
    NOT_JSON = "not_json"  # 200 with an HTML body
    EMPTY_CHOICES = "empty_choices"  # 200, valid JSON, "choices": []
    DRIP = "drip"  # 200, valid body sent one byte per FaultPlan.drip_interval_s

    @property
    def http_status(self) -> int | None:
        """The status line this fault sends, or None for faults that are not an HTTP error."""
        return _STATUS.get(self)


_STATUS = {
    FaultKind.RATE_LIMIT: 429,
    FaultKind.RATE_LIMIT_NO_RETRY_AFTER: 429,
    FaultKind.SERVER_ERROR: 500,
    FaultKind.BAD_GATEWAY: 502,
    FaultKind.UNAVAILABLE: 503,
}


@dataclass(frozen=True)
class FaultPlan:
    """Faults by request number, plus an optional seeded fault rate for the rest.

    ``at`` maps a 1-based chat request number to a fault. ``rate`` (0..1) faults other
    requests at random with one of ``kinds``. The timing knobs bound every fault: a hang
    lasts ``hang_s``, a drip sends one byte every ``drip_interval_s``.
    """

    at: Mapping[int, FaultKind | str] = field(default_factory=dict)
    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = tuple(FaultKind)
    seed: int = 0
    retry_after_s: float = 1.0
    hang_s: float = 5.0
    drip_interval_s: float = 0.005

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultPlan.rate must be within 0..1, got {self.rate}")
        if self.rate and not self.kinds:
            raise ValueError("FaultPlan.rate > 0 needs at least one kind")
        for number, kind in self.at.items():
            if number < 1:
                raise ValueError(f"request numbers start at 1, got {number}")
            FaultKind(kind)  # raises ValueError naming the bad kind

    @classmethod
    def first(cls, count: int, kind: FaultKind | str, **options: float) -> FaultPlan:
        """The first ``count`` requests fail with ``kind``; the rest succeed."""
        return cls(at={n: FaultKind(kind) for n in range(1, count + 1)}, **options)  # type: ignore[arg-type]

    @classmethod
    def random(
        cls,
        rate: float,
        kinds: Iterable[FaultKind | str] = tuple(FaultKind),
        seed: int = 0,
        **options: float,
    ) -> FaultPlan:
        """Each request fails with probability ``rate``, reproducibly for a given seed."""
        return cls(rate=rate, kinds=tuple(FaultKind(k) for k in kinds), seed=seed, **options)  # type: ignore[arg-type]

    def fault_for(self, number: int) -> FaultKind | None:
        """The fault for request ``number`` (1-based), or None to answer normally."""
        if number in self.at:
            return FaultKind(self.at[number])
        if self.rate <= 0.0:
            return None
        rng = random.Random(f"{self.seed}:{number}")  # str seeds are stable across processes
        return rng.choice(self.kinds) if rng.random() < self.rate else None


NO_FAULTS = FaultPlan()


def parse_fault_spec(spec: str) -> dict[int, FaultKind]:
    """``"1=rate_limit,3=reset"`` -> ``{1: RATE_LIMIT, 3: RESET}`` (for the command line)."""
    plan: dict[int, FaultKind] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        number, sep, kind = item.partition("=")
        if not sep:
            raise ValueError(f"fault spec item {item!r} is not NUMBER=KIND")
        plan[int(number)] = FaultKind(kind.strip())
    return plan
