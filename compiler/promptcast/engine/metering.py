"""LM wrappers that meter a run: a call budget for LMs without one, and a request counter.

The engine's own LM (`LiteLLMLM`) budgets and prices paid calls itself; a test fake or a plain
client gets its budget from `BudgetedLM`. `CountingLM` counts every request and its tokens,
cached or paid, so a rerun on a warm cache records the same numbers in the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from promptcast_runtime import LM, Completion, Message
from promptcast_runtime.lm import as_completion

from .budget import LMBudget, UsageMeter, UsageSnapshot


class BudgetedLM:
    """Gives an LM without a budget of its own (a test fake, a plain client) `max_calls`.

    Every request is paid for such an LM (it has no cache), so each reserves one call first.
    """

    def __init__(self, lm: LM, budget: LMBudget) -> None:
        self.inner = lm
        self.budget = budget

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        self.budget.reserve()
        return as_completion(self.inner.complete(messages, **params))


class CountingLM:
    """Counts every request and its tokens, cached or not, and forwards to the engine LM."""

    def __init__(self, lm: LM) -> None:
        self.inner = lm
        self._lock = threading.Lock()
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._own = UsageMeter()

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        completion = as_completion(self.inner.complete(messages, **params))
        usage = completion.usage or {}
        with self._lock:
            self.requests += 1
            self.prompt_tokens += int(usage.get("prompt_tokens", 0) or 0)
            self.completion_tokens += int(usage.get("completion_tokens", 0) or 0)
        self._own.record_call(usage)
        return completion

    def snapshot(self) -> UsageSnapshot:
        """The engine LM's reading (paid calls, hits) when it has one; else every request is paid."""
        inner = self.inner.inner if isinstance(self.inner, BudgetedLM) else self.inner
        reader: Callable[[], UsageSnapshot] | None = getattr(inner, "snapshot", None)
        return reader() if callable(reader) else self._own.snapshot()


def with_budget(lm: LM, budget: LMBudget | None) -> LM:
    """The LM a run uses: `lm` held to `budget` (which the run's other LMs may share).

    An engine LM (`LiteLLMLM`) keeps its own `LMBudget`, which counts only paid calls (cache hits
    are free) and charges their cost: it is replaced by `budget`. Any other LM is wrapped (it
    reports no cost, so only the call ceiling applies to it).
    """
    if budget is None:
        return lm
    if isinstance(getattr(lm, "budget", None), LMBudget):
        lm.budget = budget  # type: ignore[attr-defined]
        return lm
    return BudgetedLM(lm, budget)
