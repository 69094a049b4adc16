"""Request and token rate limits shared by every call of a batch, and the 429 pause they obey.

Why a limiter of our own: a hosted API meters requests per minute and tokens per minute per
key, and answers a burst above them with 429 + `Retry-After`. Calls that each retry on their
own keep hammering it (every one of 200 in-flight calls learns about the limit separately and
comes back at once); DSPy has no limiter at all. Here one `RateLimiter` is shared by every call
that should count against the same key -- a `batch`, an `optimize` run -- and:

- spaces request starts by the requests/min and tokens/min ceilings (GCRA, the "virtual
  scheduling" form of a token bucket: each call reserves the next free slot, so waiters are
  served in arrival order without polling; `burst_seconds` of unused allowance may be spent at
  once);
- charges a request's token estimate up front (prompt characters / 4 + `max_tokens`, as
  providers count it) and settles the difference when the real usage comes back;
- on a 429, pauses *every* call until the server's `Retry-After` (or, without one, a shared
  exponential back-off that grows with consecutive 429s and resets on a success), and --
  `adaptive` -- halves the request rate it allows, winning it back a little with each success.

Thread-safe and loop-agnostic (one `threading.Lock` around plain arithmetic; waiting is
`asyncio.sleep` or `time.sleep` outside it), so one limiter serves coroutines of one event loop
and threads alike. The current limiter is context-local (`limited(limiter)`), like `using(lm)`:
no global state. The runtime's `OpenAIClient` consults it on every attempt, retries included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any

CHARS_PER_TOKEN = 4
"""A token estimate good enough to pace by: English text averages ~4 characters per token."""

DEFAULT_COMPLETION_TOKENS = 256
"""Tokens a request is assumed to produce when it sets no `max_tokens`."""


def estimate_tokens(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> int:
    """The tokens a request counts against a tokens/min limit before its usage is known:
    prompt characters / 4 plus `max_tokens` (providers reserve the completion's ceiling)."""
    chars = sum(len(str(m.get("content", ""))) for m in messages)
    completion = params.get("max_tokens") or params.get("max_completion_tokens")
    if not isinstance(completion, int) or isinstance(completion, bool):
        completion = DEFAULT_COMPLETION_TOKENS
    return math.ceil(chars / CHARS_PER_TOKEN) + completion


class Permit:
    """One granted request start: the tokens it was charged, to be settled once it returns."""

    __slots__ = ("settled", "tokens")

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.settled = False


class RateLimiter:
    """Requests/min and tokens/min ceilings (None: unlimited) and the shared 429 pause.

    `acquire` (coroutine) or `acquire_blocking` (thread) waits for a start slot and returns a
    `Permit`; `settle(permit, used_tokens)` corrects the token charge; `throttled(retry_after)`
    reports a 429; `succeeded()` a success. Counters (`requests`, `throttles`, `waited_s`) are
    for reports and tests.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 0.5,
        adaptive: bool = True,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        )
        for name, value in limits:
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        if burst_seconds < 0:
            raise ValueError(f"burst_seconds must be >= 0, got {burst_seconds!r}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.burst_seconds = burst_seconds
        self.adaptive = adaptive
        self.backoff = backoff
        self.max_backoff = max_backoff
        import threading  # here: generated modules that never limit do not pay for it

        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._request_tat = now  # GCRA theoretical arrival times
        self._token_tat = now
        self._paused_until = now
        self._pause_epoch = 0
        self._rate_factor = 1.0  # adaptive share of the request rate allowed (0.05..1)
        self._consecutive_throttles = 0
        self.requests = 0
        self.throttles = 0
        self.waited_s = 0.0

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute})"
        )

    # --- the slot arithmetic (under the lock) ------------------------------------------------

    def _reserve(self, tokens: int) -> tuple[float, int]:
        """Reserve the next start slot for a request of `tokens`: (start time, pause epoch)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            request_interval = token_interval = 0.0
            if self.requests_per_minute is not None:
                request_interval = 60.0 / (self.requests_per_minute * self._rate_factor)
                start = max(start, self._request_tat - self._tolerance())
            if self.tokens_per_minute is not None:
                token_rate = self.tokens_per_minute / 60.0
                token_interval = tokens / token_rate
                tolerance = self.burst_seconds  # a second's worth of tokens may go at once
                start = max(start, self._token_tat - tolerance)
            if self.requests_per_minute is not None:
                self._request_tat = max(self._request_tat, start) + request_interval
            if self.tokens_per_minute is not None:
                self._token_tat = max(self._token_tat, start) + token_interval
            self.requests += 1
            self.waited_s += start - now
            return start, self._pause_epoch

    def _tolerance(self) -> float:
        """How far ahead of now the request schedule may run: `burst_seconds` of requests at
        the current rate may start at once (GCRA's tolerance; caller holds the lock)."""
        if self.requests_per_minute is None:
            return 0.0
        rate = self.requests_per_minute / 60.0 * self._rate_factor
        return max(0.0, self.burst_seconds * rate - 1.0) / rate

    def _still_valid(self, epoch: int) -> bool:
        """Whether a slot reserved in `epoch` may start now. After a 429 paused everything
        since the reservation, the slot is void: the caller reserves again (behind the pause)."""
        with self._lock:
            if epoch == self._pause_epoch:
                return True
            self.requests -= 1  # the void reservation is not a request
            return False

    # --- waiting -------------------------------------------------------------------------------

    async def acquire(self, tokens: int = 0) -> Permit:
        """Wait (without a thread) for a start slot for a request of `tokens` tokens."""
        import asyncio

        while True:
            start, epoch = self._reserve(tokens)
            delay = start - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._still_valid(epoch):
                return Permit(tokens)

    def acquire_blocking(self, tokens: int = 0) -> Permit:
        """`acquire` for a thread: sleeps the calling thread until its slot."""
        while True:
            start, epoch = self._reserve(tokens)
            delay = start - self._clock()
            if delay > 0:
                time.sleep(delay)
            if self._still_valid(epoch):
                return Permit(tokens)

    # --- feedback ------------------------------------------------------------------------------

    def settle(self, permit: Permit, used_tokens: int | None) -> None:
        """Charge the request's real token usage instead of its estimate (once per permit)."""
        if permit.settled:
            return
        permit.settled = True
        if self.tokens_per_minute is None or used_tokens is None:
            return
        with self._lock:
            self._token_tat += (used_tokens - permit.tokens) / (self.tokens_per_minute / 60.0)

    def throttled(self, retry_after: float | None) -> float:
        """A 429 came back: pause every call for `retry_after` seconds (the server's), else a
        shared back-off doubling with each consecutive 429; the adaptive rate halves. Returns
        the pause in seconds."""
        with self._lock:
            self.throttles += 1
            self._consecutive_throttles += 1
            if retry_after is None:
                ceiling = self.backoff * 2 ** min(self._consecutive_throttles - 1, 16)
                retry_after = min(self.max_backoff, ceiling)
            pause = min(self.max_backoff, max(0.0, retry_after))
            now = self._clock()
            until = now + pause
            if self.adaptive and self.requests_per_minute is not None:
                self._rate_factor = max(0.05, self._rate_factor / 2)
            if until > self._paused_until:
                self._paused_until = until
                self._pause_epoch += 1
                # Slots queue up after the pause at the (halved) rate, without a burst: all
                # firing the moment it ends would only earn the next 429.
                self._request_tat = max(self._request_tat, until + self._tolerance())
                self._token_tat = max(self._token_tat, until + self.burst_seconds)
            return pause

    def succeeded(self) -> None:
        """A request succeeded: the back-off resets and the adaptive rate recovers by 5%."""
        with self._lock:
            self._consecutive_throttles = 0
            if self._rate_factor < 1.0:
                self._rate_factor = min(1.0, self._rate_factor * 1.05)

    @property
    def rate_factor(self) -> float:
        """The share of `requests_per_minute` currently allowed (1.0 until a 429 halves it)."""
        return self._rate_factor


_current: ContextVar[RateLimiter | None] = ContextVar("promptcast_runtime_limiter", default=None)


def current_limiter() -> RateLimiter | None:
    """The limiter calls in this context count against (`limited`), or None."""
    return _current.get()


class LimitedContext:
    """What `limited(limiter)` returns: a context manager making `limiter` current."""

    __slots__ = ("_token", "limiter")

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self._token: Token[RateLimiter | None] | None = None

    def __enter__(self) -> RateLimiter | None:
        self._token = _current.set(self.limiter)
        return self.limiter

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def limited(limiter: RateLimiter | None) -> LimitedContext:
    """Make `limiter` the one every LM call in this context (and asyncio tasks started in it)
    counts against; None lifts the limit. Threads need `lm.propagate`, as for `using`."""
    return LimitedContext(limiter)
