"""Run a compiled function over many rows in one process: `batch(f, rows, concurrency=N)`.

Why this exists: a compiled function is one LM call (or a few), and a dataset is thousands of
rows. Wall time is then set by latency, concurrency and the provider's rate limits, not CPU,
so the rows run as coroutines on one event loop (the asyncio client: no thread per call, one
thread keeps hundreds of requests in flight), under one shared `RateLimiter`.

The contract, what a user running 500,000 notes needs:

- results come back in input order, one per row;
- a row whose call raises gets a `RowError` (its index, the exception, its text) in its place:
  one unparsable answer never fails the batch (only `KeyboardInterrupt` and friends stop it);
- `requests_per_minute` / `tokens_per_minute` are honoured across the whole batch, and a 429's
  `Retry-After` pauses every row, not only the one that got it (see `limits`);
- `progress(BatchProgress)` is called after every row, from the loop's thread.

Rows: a mapping is passed as keyword arguments (`f(**row)`), anything else as the one
positional argument (`f(row)`). `f` may be a coroutine function, or a generated function whose
module has its awaitable twin (`sentiment` -> `sentiment_async`, which every generated step
has): the twin is used. Any other plain function (a hand-written composition) runs in a pool of
`concurrency` threads -- it still works, at a thread per in-flight row.

Standard library only, like the rest of the runtime; Ray and Spark adapters build on it in
their own optional modules (`ray_data`, `spark`).
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import LMError
from .limits import RateLimiter, estimate_tokens, limited
from .lm import (
    LM,
    Completion,
    Message,
    OpenAIClient,
    as_completion,
    complete_async,
    current_lm,
    using,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

DEFAULT_CONCURRENCY = 64
"""Rows in flight by default: enough to hide a hosted model's latency, few enough for any
rate limit's burst (asyncio, inspect and threads are imported on first use, not with the
runtime: a generated module that never batches does not pay for them)."""


class RowError:
    """What a row whose call raised gets instead of a result: the batch goes on without it.

    `index` is the row's position in the input, `exception` what was raised (a `ParseError`
    keeps the raw answer), `type_name` / `message` its class name and text (for a table).
    """

    __slots__ = ("exception", "index", "message", "type_name")

    def __init__(self, index: int, exception: BaseException) -> None:
        self.index = index
        self.exception = exception
        self.type_name = type(exception).__name__
        self.message = str(exception)

    def __repr__(self) -> str:
        return f"RowError(index={self.index}, {self.type_name}: {self.message[:120]!r})"

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowError) and (self.index, self.type_name, self.message) == (
            other.index,
            other.type_name,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.index, self.type_name, self.message))


class BatchProgress(NamedTuple):
    """Where a batch stands, handed to the progress callback after every row."""

    done: int
    total: int
    errors: int
    in_flight: int
    elapsed_s: float


def batch(
    f: Callable[..., Any],
    rows: Iterable[Any],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    limiter: RateLimiter | None = None,
    lm: LM | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
) -> list[Any]:
    """`f` over every row with up to `concurrency` calls in flight; see the module docstring.

    Returns one entry per row, in input order: `f`'s result or a `RowError`. The rate limits
    build one `RateLimiter` for the batch (without limits it still shares every 429's pause);
    pass `limiter` instead to share one across batches (or threads). `lm` is used as by `using(lm)`; without it, the current LM.
    Runs its own event loop: inside a running one (a notebook cell, an async service), await
    `abatch` instead.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("batch() was called inside a running event loop: await abatch(...)")
    return asyncio.run(
        abatch(
            f,
            rows,
            concurrency=concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            limiter=limiter,
            lm=lm,
            progress=progress,
        )
    )


async def abatch(
    f: Callable[..., Any],
    rows: Iterable[Any],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    limiter: RateLimiter | None = None,
    lm: LM | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
) -> list[Any]:
    """`batch` as a coroutine, on the caller's event loop."""

    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if limiter is not None and (requests_per_minute or tokens_per_minute):
        raise ValueError("pass either limiter or requests_per_minute/tokens_per_minute")
    if limiter is None:  # unlimited unless asked: then only a 429 pauses the batch
        limiter = RateLimiter(requests_per_minute, tokens_per_minute)
    items = list(rows)
    total = len(items)
    results: list[Any] = [None] * total
    call, pool = _async_form(f, concurrency)
    model = _gated(lm, limiter)
    state = _State(total, progress)
    indexes = iter(range(total))

    async def worker() -> None:
        for index in indexes:  # one shared iterator: each row is taken by exactly one worker
            row = items[index]
            state.in_flight += 1
            try:
                results[index] = await (call(**row) if isinstance(row, Mapping) else call(row))
            except Exception as exc:  # noqa: BLE001 -- a failed row is that row's result
                results[index] = RowError(index, exc)
                state.errors += 1
            finally:
                state.in_flight -= 1
            state.row_done()

    try:
        with limited(limiter):
            if model is not None:
                with using(model):
                    await _run_workers(worker, min(concurrency, max(total, 1)))
            else:
                await _run_workers(worker, min(concurrency, max(total, 1)))
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    return results


async def _run_workers(worker: Callable[[], Awaitable[None]], count: int) -> None:
    """Run `count` workers; the first BaseException (Ctrl-C, cancellation) cancels the rest."""
    import asyncio

    tasks = [asyncio.ensure_future(worker()) for _ in range(count)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _State:
    """Counters of one batch and its progress callback (touched only from the loop's thread)."""

    __slots__ = ("done", "errors", "in_flight", "progress", "started", "total")

    def __init__(self, total: int, progress: Callable[[BatchProgress], None] | None) -> None:
        self.total = total
        self.progress = progress
        self.done = self.errors = self.in_flight = 0
        self.started = time.monotonic()

    def row_done(self) -> None:
        self.done += 1
        if self.progress is not None:
            elapsed = time.monotonic() - self.started
            self.progress(
                BatchProgress(self.done, self.total, self.errors, self.in_flight, elapsed)
            )


def _async_form(
    f: Callable[..., Any], concurrency: int
) -> tuple[Callable[..., Any], ThreadPoolExecutor | None]:
    """The awaitable way to call `f`, and the thread pool it needs (None when it needs none).

    A coroutine function as it is; a generated function through its `<name>_async` twin; any
    other callable in threads of one pool, each call in a copy of the caller's context (so
    `using`, `limited` and the step's tracing reach it)."""
    import asyncio
    import inspect

    if inspect.iscoroutinefunction(f):
        return f, None
    module = sys.modules.get(getattr(f, "__module__", "") or "")
    twin = getattr(module, f"{getattr(f, '__name__', '')}_async", None) if module else None
    if twin is not None and inspect.iscoroutinefunction(twin):
        return twin, None
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="promptcast-batch")

    def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(pool, lambda: context.run(f, *args, **kwargs))

    return call, pool


def _gated(lm: LM | None, limiter: RateLimiter | None) -> LM | None:
    """The LM the batch's calls use: `lm` (None: leave the current one), wrapped so that it
    counts against `limiter` when it is not the runtime's client, which consults the limiter on
    every attempt itself (and a user's LM reports no 429 to it: it is paced, not paused)."""
    if limiter is None:
        return lm
    if lm is None:
        try:
            lm = current_lm()
        except LMError:  # nothing configured: every row will say so in its RowError
            return None
    if isinstance(lm, (OpenAIClient, _Gated)):
        return lm
    return _Gated(lm, limiter)


class _Gated:
    """A user's LM paced by a limiter: each call waits for its slot, then settles its tokens."""

    __slots__ = ("limiter", "lm")

    def __init__(self, lm: LM, limiter: RateLimiter) -> None:
        self.lm = lm
        self.limiter = limiter

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        permit = self.limiter.acquire_blocking(estimate_tokens(messages, params))
        done = as_completion(self.lm.complete(messages, **params))
        self.limiter.settle(permit, _used(done))
        return done

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        permit = await self.limiter.acquire(estimate_tokens(messages, params))
        done = await complete_async(self.lm, messages, **params)
        self.limiter.settle(permit, _used(done))
        return done


def _used(done: Completion) -> int | None:
    used = done.usage.get("prompt_tokens", 0) + done.usage.get("completion_tokens", 0)
    return used or done.usage.get("total_tokens")
