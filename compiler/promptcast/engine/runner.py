"""Run a function over many items on a thread pool, keeping order, errors and a live progress bar.

LM programs are I/O bound, so threads (not processes) give the parallelism: the whole batch
shares one cache, one budget and one usage meter. Three rules shape this module:

- results come back in input order, whatever order the threads finish in;
- an exception in one item is *that item's* result (an `ItemError`), not the batch's end --
  one unparsable answer must not throw away a hundred good ones;
- `BudgetExhausted` is different: the run may not spend more, so the batch stops cleanly,
  items not yet started are skipped, and everything that completed is returned.

The progress bar (tqdm) shows examples done, paid LM calls, cache hits and the score so far; it
is disabled when stderr is not a terminal or when asked. Each item runs in a copy of the
caller's `contextvars` context, so `with using(lm): run_parallel(...)` works as it reads.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from promptcast.engine.budget import BudgetExhausted, UsageSnapshot

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_THREADS = 8


@dataclass(frozen=True)
class ItemError:
    """An exception raised by one item, kept as that item's result."""

    exception: BaseException
    type_name: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ItemError:
        return cls(exception=exc, type_name=type(exc).__name__, message=str(exc))

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


@dataclass(frozen=True)
class Skipped:
    """The item was never run because the batch stopped (budget exhausted)."""

    reason: str


class BatchResult(list[R | ItemError | Skipped]):
    """Per-item outcomes in input order (it *is* that list), plus `stopped`: the
    `BudgetExhausted` that ended the batch early, or None when every item ran."""

    def __init__(
        self, outcomes: Iterable[R | ItemError | Skipped], stopped: BudgetExhausted | None = None
    ) -> None:
        super().__init__(outcomes)
        self.stopped = stopped

    @property
    def completed(self) -> int:
        """Items that ran to an outcome (a result or an error), i.e. were not skipped."""
        return sum(1 for o in self if not isinstance(o, Skipped))

    @property
    def errors(self) -> list[tuple[int, ItemError]]:
        """(index, error) of every item that raised."""
        return [(i, o) for i, o in enumerate(self) if isinstance(o, ItemError)]


@dataclass
class Progress:
    """How the live bar is drawn.

    `usage` returns the LM usage so far (for the calls / cache-hit columns); `score` maps one
    finished result to a number in [0, 1] for the running mean (None: not shown). `enabled`
    None means "only when stderr is a TTY".
    """

    description: str = "running"
    enabled: bool | None = None
    usage: Callable[[], UsageSnapshot] | None = None
    score: Callable[[Any], float | None] | None = None

    def is_enabled(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return sys.stderr.isatty()


class _Bar:
    """A tqdm bar (or nothing) fed with postfix fields; imported lazily, used from one thread."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self._progress = progress
        self._scores: list[float] = []
        self._bar: Any = None
        if progress is not None and progress.is_enabled():
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, desc=progress.description, unit="ex", file=sys.stderr, leave=True
            )

    def update(self, result: Any) -> None:
        if self._bar is None or self._progress is None:
            return
        postfix: dict[str, Any] = {}
        if self._progress.usage is not None:
            snap = self._progress.usage()
            postfix["calls"] = snap.calls
            postfix["hits"] = snap.cache_hits
        if self._progress.score is not None and not isinstance(result, (ItemError, Skipped)):
            value = self._progress.score(result)
            if value is not None:
                self._scores.append(value)
        elif self._progress.score is not None and isinstance(result, ItemError):
            self._scores.append(0.0)
        if self._scores:
            postfix["score"] = f"{sum(self._scores) / len(self._scores):.3f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_parallel(
    fn: Callable[[T], R],
    items: Sequence[T],
    threads: int = DEFAULT_THREADS,
    progress: Progress | None = None,
) -> BatchResult[R]:
    """Apply `fn` to every item with up to `threads` workers; see the module docstring.

    Returns a `BatchResult` (a list) whose item `i` is `fn(items[i])`, an `ItemError`, or `Skipped`
    (only after `BudgetExhausted`). `KeyboardInterrupt` cancels pending items and propagates.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    n = len(items)
    outcomes: list[R | ItemError | Skipped] = [Skipped("not run") for _ in range(n)]
    stop = threading.Event()
    stopped: list[BudgetExhausted] = []
    bar = _Bar(n, progress)

    def task(index: int) -> tuple[int, R | ItemError | Skipped]:
        if stop.is_set():
            return index, Skipped("budget exhausted")
        try:
            return index, fn(items[index])
        except BudgetExhausted as exc:
            stopped.append(exc)
            stop.set()
            return index, Skipped("budget exhausted")
        except Exception as exc:
            return index, ItemError.from_exception(exc)

    executor = ThreadPoolExecutor(max_workers=min(threads, max(n, 1)), thread_name_prefix="pc")
    try:
        # Each item runs in a copy of the caller's context, so context-local state such as the
        # runtime's `using(lm)` reaches the worker threads (threads do not inherit contextvars).
        pending: set[Future[tuple[int, R | ItemError | Skipped]]] = {
            executor.submit(contextvars.copy_context().run, task, i) for i in range(n)
        }
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():  # cancelled after a budget stop: stays Skipped
                    continue
                index, outcome = future.result()
                outcomes[index] = outcome
                if not isinstance(outcome, Skipped):
                    bar.update(outcome)
            if stop.is_set():
                for future in pending:
                    future.cancel()
    except BaseException:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    executor.shutdown(wait=True)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Skipped) and stopped:
            outcomes[i] = Skipped("budget exhausted")
    return BatchResult(outcomes, stopped=stopped[0] if stopped else None)
