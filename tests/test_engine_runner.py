"""run_parallel: order, per-item errors, clean budget stop, progress bar."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "runtime") not in sys.path:
    sys.path.insert(0, str(ROOT / "runtime"))

from promptcast.engine.budget import BudgetExhausted, LMBudget, UsageMeter  # noqa: E402
from promptcast.engine.runner import ItemError, Progress, Skipped, run_parallel  # noqa: E402


def test_results_in_input_order_despite_finish_order() -> None:
    def slow_square(x: int) -> int:
        time.sleep(0.002 * (20 - x))
        return x * x

    out = run_parallel(slow_square, list(range(20)), threads=8)
    assert list(out) == [x * x for x in range(20)]
    assert out.stopped is None and out.completed == 20 and out.errors == []


def test_runs_concurrently() -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def work(_: int) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1

    run_parallel(work, list(range(16)), threads=4)
    assert peak[0] == 4


def test_exceptions_are_per_item() -> None:
    def f(x: int) -> int:
        if x % 3 == 0:
            raise ValueError(f"bad {x}")
        return x

    out = run_parallel(f, list(range(7)), threads=3)
    assert out[1] == 1 and out[2] == 2
    assert isinstance(out[0], ItemError) and str(out[0]) == "ValueError: bad 0"
    assert isinstance(out[6], ItemError) and isinstance(out[6].exception, ValueError)
    assert [i for i, _ in out.errors] == [0, 3, 6]


def test_budget_exhausted_stops_the_batch_cleanly() -> None:
    budget = LMBudget(max_calls=5)
    started: list[int] = []

    def f(x: int) -> int:
        budget.reserve()
        started.append(x)
        return x

    out = run_parallel(f, list(range(100)), threads=1)
    assert isinstance(out.stopped, BudgetExhausted)
    assert list(out[:5]) == [0, 1, 2, 3, 4]
    assert all(isinstance(o, Skipped) for o in out[5:])
    assert out.completed == 5 and len(started) == 5


def test_budget_stop_with_many_threads_keeps_completed() -> None:
    budget = LMBudget(max_calls=20)

    def f(x: int) -> int:
        budget.reserve()
        time.sleep(0.005)
        return x

    out = run_parallel(f, list(range(200)), threads=8)
    done = [o for o in out if not isinstance(o, Skipped)]
    assert out.stopped is not None
    assert len(done) == 20 and all(isinstance(o, int) for o in done)


def test_keyboard_interrupt_propagates() -> None:
    def f(x: int) -> int:
        if x == 0:
            raise KeyboardInterrupt
        return x

    with pytest.raises(KeyboardInterrupt):
        run_parallel(f, [0], threads=1)


def test_empty_and_bad_threads() -> None:
    assert list(run_parallel(lambda x: x, [], threads=4)) == []
    with pytest.raises(ValueError):
        run_parallel(lambda x: x, [1], threads=0)


def test_progress_bar_shows_calls_hits_and_score(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = UsageMeter()
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)

    def f(x: int) -> int:
        meter.record_call({"prompt_tokens": 1})
        meter.record_hit()
        return x

    progress = Progress(
        description="eval", enabled=True, usage=meter.snapshot, score=lambda r: float(r % 2)
    )
    run_parallel(f, list(range(4)), threads=2, progress=progress)
    text = err.getvalue()
    assert "eval" in text and "4/4" in text
    assert "calls=4" in text and "hits=4" in text and "score=0.500" in text


def test_progress_disabled_when_not_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    run_parallel(lambda x: x, [1, 2], progress=Progress())
    run_parallel(lambda x: x, [1, 2], progress=Progress(enabled=False))
    assert err.getvalue() == ""


def test_context_variables_reach_worker_threads() -> None:
    import contextvars

    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="unset")
    token = current.set("caller's lm")
    try:
        out = run_parallel(lambda _: current.get(), list(range(8)), threads=4)
    finally:
        current.reset(token)
    assert list(out) == ["caller's lm"] * 8


def test_runtime_using_lm_reaches_worker_threads() -> None:
    from promptcast_runtime.lm import Completion, current_lm, using

    class Named:
        def complete(self, messages: object, **params: object) -> Completion:
            return Completion("named")

    lm = Named()
    with using(lm):
        out = run_parallel(lambda _: current_lm(), [1, 2, 3], threads=3)
    assert all(o is lm for o in out)


def test_budget_stop_cancels_queued_items_without_error() -> None:
    item_1_started = threading.Event()

    def f(x: int) -> int:
        if x == 0:
            item_1_started.wait(5)
            raise BudgetExhausted(0, 0)
        if x == 1:
            item_1_started.set()
            time.sleep(0.2)  # keeps the other worker busy while the queue is cancelled
        return x

    out = run_parallel(f, list(range(50)), threads=2)
    assert out.stopped is not None
    assert out[1] == 1
    assert all(isinstance(o, Skipped) for i, o in enumerate(out) if i != 1)
