"""The shared rate limiter (`promptcast_runtime.limits`), on a fake clock: the slots it hands
out never exceed the requests/min and tokens/min ceilings (property-tested over arrival
patterns), a 429 pauses every later start, the adaptive rate halves and recovers."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptcast_runtime.limits import RateLimiter, current_limiter, estimate_tokens, limited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def starts(
    limiter: RateLimiter, clock: Clock, arrivals: list[float], tokens: int = 0
) -> list[float]:
    out = []
    for at in arrivals:
        clock.now = max(clock.now, at)
        start, _ = limiter._reserve(tokens)
        out.append(start)
    return out


@settings(max_examples=200, deadline=None)
@given(
    rpm=st.floats(min_value=6, max_value=60000),
    gaps=st.lists(st.floats(min_value=0, max_value=2.0), min_size=1, max_size=80),
    burst=st.floats(min_value=0, max_value=3),
)
def test_request_starts_never_exceed_the_rate_plus_the_burst(
    rpm: float, gaps: list[float], burst: float
) -> None:
    clock = Clock()
    limiter = RateLimiter(rpm, burst_seconds=burst, clock=clock)
    arrivals, t = [], clock.now
    for gap in gaps:
        t += gap
        arrivals.append(t)
    got = starts(limiter, clock, arrivals)
    rate = rpm / 60
    depth = max(1.0, burst * rate)
    assert all(
        s >= a - 1e-9 for s, a in zip(got, arrivals, strict=True)
    )  # never before it was asked
    ordered = sorted(got)
    for i in range(len(ordered)):
        for j in range(i + 1, len(ordered)):
            # j - i + 1 starts within [s_i, s_j]: at most the burst plus what the rate refills
            assert j - i + 1 <= depth + (ordered[j] - ordered[i]) * rate + 1e-6


@settings(max_examples=100, deadline=None)
@given(
    tpm=st.floats(min_value=1000, max_value=1_000_000),
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40),
)
def test_token_starts_never_exceed_tokens_per_minute(tpm: float, sizes: list[int]) -> None:
    clock = Clock()
    limiter = RateLimiter(tokens_per_minute=tpm, clock=clock)
    got = []
    for size in sizes:  # all asked at once
        start, _ = limiter._reserve(size)
        got.append((start, size))
    rate = tpm / 60
    first = got[0][0]
    for k in range(len(got)):
        # tokens started by start_k (those before it included) fit in a second's worth plus
        # what the rate refilled since the first start
        spent = sum(size for _, size in got[:k])
        assert spent <= rate * (1.0 + got[k][0] - first) + 1e-6


def test_600_per_minute_is_a_burst_of_ten_then_one_every_100_ms() -> None:
    clock = Clock()
    limiter = RateLimiter(600, burst_seconds=1.0, clock=clock)
    got = starts(limiter, clock, [clock.now] * 14)
    assert [round(s - 1000.0, 3) for s in got] == [0.0] * 10 + [0.1, 0.2, 0.3, 0.4]


def test_the_default_burst_is_half_a_second_of_requests() -> None:
    clock = Clock()
    got = starts(RateLimiter(600, clock=clock), clock, [clock.now] * 7)
    assert [round(s - 1000.0, 3) for s in got] == [0.0] * 5 + [0.1, 0.2]


def test_a_429_pauses_every_later_start_and_halves_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(600, clock=clock)
    starts(limiter, clock, [clock.now] * 10)
    assert limiter.throttled(2.0) == 2.0
    later = starts(limiter, clock, [clock.now] * 3)
    assert min(later) >= 1002.0
    assert limiter.rate_factor == 0.5
    assert later[1] - later[0] == pytest.approx(0.2)  # 300/min now
    for _ in range(20):
        limiter.succeeded()
    assert limiter.rate_factor == pytest.approx(min(1.0, 0.5 * 1.05**20))


def test_without_retry_after_the_shared_back_off_doubles_and_resets() -> None:
    limiter = RateLimiter(backoff=0.5, max_backoff=4.0)
    assert [limiter.throttled(None) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    limiter.succeeded()
    assert limiter.throttled(None) == 0.5
    assert limiter.throttles == 6


def test_a_reservation_made_before_a_pause_is_void_after_it() -> None:
    clock = Clock()
    limiter = RateLimiter(600, clock=clock)
    _, epoch = limiter._reserve(0)
    assert limiter._still_valid(epoch)
    limiter.throttled(1.0)
    assert not limiter._still_valid(epoch)


def test_settling_charges_the_real_usage_instead_of_the_estimate() -> None:
    clock = Clock()
    limiter = RateLimiter(
        tokens_per_minute=6000, burst_seconds=1.0, clock=clock
    )  # 100/s, 100 slack
    permit = asyncio.run(limiter.acquire(100))
    limiter.settle(permit, 20)  # used far less: the next 80 tokens start at once
    start, _ = limiter._reserve(180)
    assert start == clock.now
    limiter.settle(permit, 10_000)  # a second settle changes nothing
    # 200 tokens spent against 100 of slack: the next waits for 100 to refill, one second
    assert limiter._reserve(1)[0] == pytest.approx(clock.now + 1.0)


def test_acquire_waits_for_its_slot() -> None:
    limiter = RateLimiter(1200, burst_seconds=0)  # one every 50 ms, no burst

    async def three() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(3):
            await limiter.acquire()
        return loop.time() - start

    assert asyncio.run(three()) >= 0.09
    assert limiter.requests == 3


def test_estimate_counts_prompt_characters_and_max_tokens() -> None:
    messages = [{"role": "user", "content": "x" * 400}]
    assert estimate_tokens(messages, {"max_tokens": 50}) == 150
    assert estimate_tokens(messages, {}) == 100 + 256


def test_limited_is_context_local() -> None:
    limiter = RateLimiter(60)
    assert current_limiter() is None
    with limited(limiter):
        assert current_limiter() is limiter

        async def inner() -> RateLimiter | None:
            return current_limiter()

        assert asyncio.run(inner()) is limiter  # tasks inherit it
    assert current_limiter() is None


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="tokens_per_minute"):
        RateLimiter(tokens_per_minute=-5)
