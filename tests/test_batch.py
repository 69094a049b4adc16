"""`promptcast_runtime.batch`: one process, one event loop, hundreds of rows in flight.

Run against a built module (examples/sentiment, vendored runtime) and the fake OpenAI server:
results in input order, a failed row is that row's `RowError`, one thread keeps 256 requests in
flight, the rate limits are honoured and a 429 pauses the whole batch.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from promptcast_runtime import (
    BatchProgress,
    Completion,
    OpenAIClient,
    ParseError,
    RateLimiter,
    RowError,
    abatch,
    batch,
    using,
)
from tests.support.built import build_sentiment, expected, row_text, sentiment_answer
from tests.support.faults import FaultKind
from tests.support.openai_server import FakeOpenAIServer
from tests.support.rate_limit import RateLimitPlan


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The built `reviews.sentiment` module (imported with this process's runtime)."""
    out = build_sentiment(tmp_path_factory.mktemp("built") / "tree")
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("reviews.sentiment")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == "reviews" or n.startswith("reviews.")]:
            del sys.modules[name]


def rows(n: int) -> list[dict[str, str]]:
    return [{"text": row_text(i)} for i in range(n)]


def test_results_in_input_order_and_a_failed_row_is_its_row_error(
    sentiment: ModuleType,
) -> None:
    data = rows(60)
    data[7] = {"text": "unparsable review"}
    with FakeOpenAIServer(sentiment_answer, latency=0.02) as server:
        client = OpenAIClient("m", server.url, max_retries=0)
        results = batch(sentiment.sentiment, data, concurrency=16, lm=client)
    assert len(results) == 60
    for i, result in enumerate(results):
        if i == 7:
            assert isinstance(result, RowError) and result.index == 7
            assert isinstance(result.exception, ParseError)
            assert "rather not say" in result.exception.raw
        else:
            assert result == expected(i), i
    assert server.counts["chat"] == 60


def test_a_transport_failure_is_a_row_error_not_the_batch(sentiment: ModuleType) -> None:
    from tests.support.faults import FaultPlan

    with FakeOpenAIServer(
        sentiment_answer, faults=FaultPlan(at={3: FaultKind.SERVER_ERROR})
    ) as server:
        client = OpenAIClient("m", server.url, max_retries=0)
        results = batch(sentiment.sentiment, rows(10), concurrency=1, lm=client)
    errors = [r for r in results if isinstance(r, RowError)]
    assert [e.index for e in errors] == [2] and errors[0].type_name == "LMError"
    assert [r for r in results if not isinstance(r, RowError)] == [
        expected(i) for i in range(10) if i != 2
    ]


def test_progress_is_reported_after_every_row(sentiment: ModuleType) -> None:
    seen: list[BatchProgress] = []
    data = rows(20)
    data[4] = {"text": "unparsable"}
    with FakeOpenAIServer(sentiment_answer) as server:
        batch(
            sentiment.sentiment,
            data,
            concurrency=4,
            lm=OpenAIClient("m", server.url),
            progress=seen.append,
        )
    assert [p.done for p in seen] == list(range(1, 21))
    assert {p.total for p in seen} == {20}
    assert seen[-1].errors == 1 and seen[-1].in_flight == 0
    assert all(0 <= p.in_flight <= 4 for p in seen)


def test_a_plain_function_composing_steps_runs_on_threads_in_order(
    sentiment: ModuleType,
) -> None:
    def shout(text: str) -> str:  # no `_async` twin: the batch runs it in a thread pool
        return sentiment.sentiment(text).upper()

    with FakeOpenAIServer(sentiment_answer, latency=0.01) as server:
        results = batch(shout, rows(30), concurrency=8, lm=OpenAIClient("m", server.url))
    assert results == [expected(i).upper() for i in range(30)]


def test_positional_rows_and_a_coroutine_function(sentiment: ModuleType) -> None:
    async def label(text: str) -> str:
        return str(await sentiment.sentiment_async(text))

    with FakeOpenAIServer(sentiment_answer) as server:
        results = batch(label, [row_text(i) for i in range(12)], lm=OpenAIClient("m", server.url))
    assert results == [expected(i) for i in range(12)]


def test_batch_inside_a_running_loop_points_to_abatch(sentiment: ModuleType) -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="abatch"):
            batch(sentiment.sentiment, rows(1))
        with FakeOpenAIServer(sentiment_answer) as server:
            done = await abatch(sentiment.sentiment, rows(5), lm=OpenAIClient("m", server.url))
        assert done == [expected(i) for i in range(5)]

    asyncio.run(inside())


def test_bad_arguments_are_refused(sentiment: ModuleType) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        batch(sentiment.sentiment, rows(1), concurrency=0)
    with pytest.raises(ValueError, match="either limiter"):
        batch(sentiment.sentiment, rows(1), limiter=RateLimiter(60), requests_per_minute=60)


class _CountingClient(OpenAIClient):
    """The runtime's asyncio client, counting requests in flight and the process's threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = self.peak = 0
        self.peak_threads = 0

    async def _apost(self, data: bytes) -> bytes:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.peak_threads = max(self.peak_threads, threading.active_count())
        try:
            return await super()._apost(data)
        finally:
            self.in_flight -= 1


def test_one_thread_keeps_256_requests_in_flight(sentiment: ModuleType, tmp_path: Path) -> None:
    # The server runs in another process, so this process's thread count is the batch's own.
    answers = tmp_path / "answers.json"
    answers.write_text('{"*": "[[ ## answer ## ]]\\npositive\\n\\n[[ ## completed ## ]]"}')
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.openai_server",
            "--latency",
            "1.5",
            "--answers",
            str(answers),
            "--max-seconds",
            "120",
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        client = _CountingClient("m", url, timeout=60)
        threads_before = threading.active_count()
        results = batch(sentiment.sentiment, rows(300), concurrency=256, lm=client)
    finally:
        server.kill()
        server.wait()
    assert results == ["positive"] * 300
    assert client.peak == 256  # every worker had its request out at once
    assert client.peak_threads == threads_before  # ... all driven by this one thread


def test_requests_per_minute_is_honoured_across_the_batch(sentiment: ModuleType) -> None:
    # The server allows 1200/min (20/s, a burst of 20); the batch is told the same limit.
    plan = RateLimitPlan(requests_per_minute=1200)
    with FakeOpenAIServer(sentiment_answer, faults=plan) as server:
        client = OpenAIClient("m", server.url, max_retries=0)
        start = time.monotonic()
        results = batch(
            sentiment.sentiment, rows(60), concurrency=64, lm=client, requests_per_minute=1200
        )
        wall = time.monotonic() - start
    assert results == [expected(i) for i in range(60)]
    assert plan.limited == 0  # not one 429: the batch paced itself
    assert wall >= (60 - 10) / 20 * 0.9  # half a second's worth at once, then 20 a second


def test_without_the_limit_the_same_server_answers_429s(sentiment: ModuleType) -> None:
    plan = RateLimitPlan(requests_per_minute=1200, retry_after_s=0.2)
    with FakeOpenAIServer(sentiment_answer, faults=plan) as server:
        client = OpenAIClient("m", server.url, max_retries=10, max_backoff=0.5)
        results = batch(sentiment.sentiment, rows(60), concurrency=64, lm=client)
    assert results == [expected(i) for i in range(60)]
    assert plan.limited > 0


def test_a_429_pauses_every_row_for_its_retry_after(sentiment: ModuleType) -> None:
    # Request 1 is answered 429 (Retry-After 1 s) at once; 2-4 are in flight for 0.2 s. Every
    # request sent after the 429 -- not only its own retry -- waits out the second.
    plan = RateLimitPlan(at={1: FaultKind.RATE_LIMIT}, retry_after_s=1.0)
    with FakeOpenAIServer(sentiment_answer, latency=0.2, faults=plan) as server:
        client = OpenAIClient("m", server.url)
        results = batch(
            sentiment.sentiment, rows(12), concurrency=4, lm=client, requests_per_minute=60000
        )
    assert results == [expected(i) for i in range(12)]
    arrivals = plan.arrivals
    throttled_at = arrivals[0][1]
    later = [t for number, t, _ in arrivals if number > 4]
    assert len(later) == 9  # 8 more rows and the retry of row 0
    assert min(later) >= throttled_at + 0.95


def test_without_limits_a_429_still_pauses_the_batch(sentiment: ModuleType) -> None:
    plan = RateLimitPlan(at={1: FaultKind.RATE_LIMIT}, retry_after_s=1.0)
    with FakeOpenAIServer(sentiment_answer, latency=0.2, faults=plan) as server:
        results = batch(
            sentiment.sentiment, rows(12), concurrency=4, lm=OpenAIClient("m", server.url)
        )
    assert results == [expected(i) for i in range(12)]
    throttled_at = plan.arrivals[0][1]
    assert min(t for number, t, _ in plan.arrivals if number > 4) >= throttled_at + 0.95


def test_calls_outside_a_batch_each_retry_on_their_own(sentiment: ModuleType) -> None:
    # What batch() adds: the same 429 in plain concurrent calls delays only its own retry.
    plan = RateLimitPlan(at={1: FaultKind.RATE_LIMIT}, retry_after_s=1.0)

    async def plain() -> list[str]:
        semaphore = asyncio.Semaphore(4)

        async def one(i: int) -> str:
            async with semaphore:
                return str(await sentiment.sentiment_async(row_text(i)))

        return list(await asyncio.gather(*(one(i) for i in range(12))))

    with FakeOpenAIServer(sentiment_answer, latency=0.2, faults=plan) as server:
        client = OpenAIClient("m", server.url)
        results = asyncio.run(_using(client, plain))
    assert results == [expected(i) for i in range(12)]
    throttled_at = plan.arrivals[0][1]
    assert min(t for number, t, _ in plan.arrivals if number > 4) < throttled_at + 0.5


async def _using(lm: OpenAIClient, make: Any) -> Any:
    with using(lm):
        return await make()


class _ScriptedLM:
    """A user's own LM (not the runtime's client): sync, answers from the text."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.lock = threading.Lock()

    def complete(self, messages: Any, **params: Any) -> Completion:
        with self.lock:
            self.starts.append(time.monotonic())
        return Completion(
            sentiment_answer({"messages": list(messages)}),
            usage={"prompt_tokens": 50, "completion_tokens": 5},
        )


def test_a_users_own_lm_is_paced_by_the_limit_too(sentiment: ModuleType) -> None:
    lm = _ScriptedLM()
    results = batch(sentiment.sentiment, rows(25), concurrency=25, lm=lm, requests_per_minute=600)
    assert results == [expected(i) for i in range(25)]
    starts = sorted(lm.starts)
    assert starts[-1] - starts[0] >= (25 - 10) / 10 * 0.9  # a burst of 10, then 10 a second


def test_using_reaches_the_rows_without_an_lm_argument(sentiment: ModuleType) -> None:
    with FakeOpenAIServer(sentiment_answer) as server, using(OpenAIClient("m", server.url)):
        assert batch(sentiment.sentiment, rows(6)) == [expected(i) for i in range(6)]


class _NoUsageLM(_ScriptedLM):
    """Reports no token usage: each request stays charged at its estimate."""

    def complete(self, messages: Any, **params: Any) -> Completion:
        done = super().complete(messages, **params)
        return Completion(done.text)


def test_tokens_per_minute_paces_by_the_estimate(sentiment: ModuleType) -> None:
    from promptcast_runtime.limits import estimate_tokens

    lm = _NoUsageLM()
    messages = sentiment._SENTIMENT.messages({"text": row_text(0)})
    per_request = estimate_tokens(messages, {"max_tokens": 512})  # prompt / 4 + max_tokens
    tpm = per_request * 600  # ten requests' worth a second
    results = batch(sentiment.sentiment, rows(20), concurrency=20, lm=lm, tokens_per_minute=tpm)
    assert results == [expected(i) for i in range(20)]
    starts = sorted(lm.starts)
    # half a second's tokens at once (5 requests), then about one every 100 ms
    assert starts[-1] - starts[0] >= (20 - 6) / 10 * 0.9
