"""The compile engine at high concurrency: `optimize --concurrency 64` (and 256 raw calls).

The engine's HTTP calls run as coroutines of the runtime's asyncio client on one event loop per
LM, under the run's RateLimiter. What held at 2 or 8 threads must hold at 64+: the call budget
is exact, identical requests pay once, a warm cache pays nothing, two runs write byte-identical
locks, kill -9 + rerun repeats no completed call -- the existing tests of those properties,
re-run here with 64 in flight -- and a 429 pauses every call of the run, not only its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.test_crash_resume as crash_resume
from promptcast.engine.budget import BudgetExhausted, LMBudget
from promptcast.engine.cache import LMCache
from promptcast.engine.lm import LiteLLMLM
from promptcast_runtime import OpenAIClient, RateLimiter
from tests.support.faults import FaultKind
from tests.support.openai_server import FakeOpenAIServer
from tests.support.rate_limit import RateLimitPlan
from tests.support.scripted_lm import ScriptedLM
from tests.test_cli_optimize import cli, fresh_process, lm_flags, optimize

IN_FLIGHT = 64

PACKAGE = '''
from typing import Literal

import promptcast as pc


@pc.predict
def kind(question: str) -> Literal["NUM", "LOC", "HUM"]:
    """Classify the kind of answer a question asks for."""
'''

STEMS = {
    "NUM": "How many legs has animal {}?",
    "LOC": "Where is town {}?",
    "HUM": "Who wrote book {}?",
}
LABELS = {stem.format(i): label for i in range(100) for label, stem in STEMS.items()}
"""300 questions: enough rows that a wave of the optimizers holds 64+ program runs."""


def write_big_project(root: Path, train: int = 160, dev: int = 100) -> Path:
    """Package `cliapp` (the same step as tests/test_cli_optimize.py) with 160 train and 100
    dev rows, so 64 runs really are in flight at once."""
    (root / "cliapp").mkdir(parents=True)
    (root / "cliapp" / "__init__.py").write_text("")
    (root / "cliapp" / "steps.py").write_text(PACKAGE)
    questions = list(LABELS)
    for name, rows in (("train", questions[:train]), ("dev", questions[train : train + dev])):
        lines = [json.dumps({"question": q, "coarse": LABELS[q]}) for q in rows]
        (root / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return root


class InFlight(RateLimitPlan):
    """Counts requests in flight at the server: +1 as one arrives (the plan is asked), -1 as
    it is answered (the responder is called after the latency)."""

    def fault_for(self, number: int) -> FaultKind | None:
        with _FLIGHT_LOCK:
            _FLIGHT["now"] += 1
            _FLIGHT["peak"] = max(_FLIGHT["peak"], _FLIGHT["now"])
        return super().fault_for(number)


_FLIGHT_LOCK = threading.Lock()
_FLIGHT = {"now": 0, "peak": 0}


def scripted_big_server(latency: float = 0.05, **plan: Any) -> FakeOpenAIServer:
    lm = ScriptedLM(LABELS)
    with _FLIGHT_LOCK:
        _FLIGHT.update(now=0, peak=0)

    def respond(request: dict[str, Any]) -> str:
        with _FLIGHT_LOCK:
            _FLIGHT["now"] -= 1
        return lm.complete(request["messages"]).text

    return FakeOpenAIServer(respond, latency=latency, faults=InFlight(**plan))


def peak_in_flight() -> int:
    return _FLIGHT["peak"]


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


class _CountingClient(OpenAIClient):
    """The runtime's asyncio client, noting calls in flight and the thread that drives them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = self.peak = 0
        self.threads: set[str] = set()

    async def _apost(self, data: bytes) -> bytes:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.threads.add(threading.current_thread().name)
        try:
            return await super()._apost(data)
        finally:
            self.in_flight -= 1


def _threads(n: int, target: Any) -> None:
    workers = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_256_calls_in_flight_on_one_event_loop_thread(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency=1.0) as server:
        lm = LiteLLMLM("openai/m", api_base=server.url, cache=LMCache(tmp_path / "c.sqlite"))
        assert lm.transport == "http"
        client = _CountingClient("m", server.url, "sk-no-key-required", timeout=60)
        lm._http_client = client
        _threads(256, lambda i: lm.complete(msg(f"q{i}")))
    assert client.peak == 256
    assert client.threads == {"promptcast-lm-loop"}  # every request driven by the one loop
    assert lm.snapshot().calls == 256 and server.counts["chat"] == 256


def test_budget_is_exact_with_256_callers(tmp_path: Path) -> None:
    refused: list[int] = []

    def call(i: int) -> None:
        try:
            lm.complete(msg(f"q{i}"))
        except BudgetExhausted:
            refused.append(i)

    with FakeOpenAIServer(latency=0.2) as server:
        lm = LiteLLMLM(
            "openai/m", api_base=server.url, cache=LMCache(tmp_path / "c.sqlite"),
            budget=LMBudget(max_calls=100),
        )  # fmt: skip
        _threads(256, call)
    assert server.counts["chat"] == 100 and len(refused) == 156
    assert lm.snapshot().calls == 100


def test_identical_requests_from_64_callers_pay_once(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency=0.2) as server:
        lm = LiteLLMLM("openai/m", api_base=server.url, cache=LMCache(tmp_path / "c.sqlite"))
        _threads(IN_FLIGHT, lambda i: lm.complete(msg("same")))
    assert server.counts["chat"] == 1
    assert lm.snapshot().cache_hits == IN_FLIGHT - 1


def test_a_429_pauses_every_call_of_the_run(tmp_path: Path) -> None:
    # Request 1 gets 429 + Retry-After 1 s; the other 7 first requests are in flight (0.2 s).
    # Every later request waits out the second, as the runtime's batch does.
    plan = RateLimitPlan(at={1: FaultKind.RATE_LIMIT}, retry_after_s=1.0)
    with FakeOpenAIServer(latency=0.2, faults=plan) as server:
        lm = LiteLLMLM("openai/m", api_base=server.url, cache=LMCache(tmp_path / "c.sqlite"))
        done = threading.Semaphore(8)

        def call(i: int) -> None:
            with done:  # 8 in flight at a time, like --concurrency 8
                lm.complete(msg(f"q{i}"))

        _threads(24, call)
    throttled_at = plan.arrivals[0][1]
    later = [t for number, t, _ in plan.arrivals if number > 8]
    assert len(later) == 17  # 16 more calls and the retry
    assert min(later) >= throttled_at + 0.95
    assert lm.limiter.throttles == 1


def test_requests_per_minute_paces_the_engine(tmp_path: Path) -> None:
    plan = RateLimitPlan(requests_per_minute=1200)
    with FakeOpenAIServer(faults=plan) as server:
        lm = LiteLLMLM(
            "openai/m", api_base=server.url, cache=LMCache(tmp_path / "c.sqlite"),
            limiter=RateLimiter(1200), num_retries=0,
        )  # fmt: skip
        _threads(60, lambda i: lm.complete(msg(f"q{i}")))
    assert plan.limited == 0 and server.counts["chat"] == 60


# --- the optimize command at 64 in flight --------------------------------------------------


@pytest.fixture
def scripted_server() -> Iterator[FakeOpenAIServer]:
    with scripted_big_server(latency=0.3) as fake:  # long enough for a wave's 64 to overlap
        yield fake


@pytest.fixture
def projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import sys

    saved = list(sys.path)
    yield tmp_path
    fresh_process(saved)


def _optimize_in(
    root: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> Any:
    import sys

    write_big_project(root)
    monkeypatch.chdir(root)
    saved = list(sys.path)
    try:
        return optimize(server, *extra)
    finally:
        fresh_process(saved)


@pytest.mark.parametrize("optimizer", ["bootstrap", "random_search"])
def test_two_runs_at_64_in_flight_lock_byte_identical_and_a_warm_rerun_pays_nothing(
    projects: Path,
    scripted_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    optimizer: str,
) -> None:
    flags = ("--optimizer", optimizer, "--concurrency", str(IN_FLIGHT), "--seed", "3")
    if optimizer == "random_search":  # every candidate on all of dev: waves of 64 runs
        flags += ("--optimizer-arg", "racing=false", "--optimizer-arg", "num_candidates=4")
    first = _optimize_in(projects / "a", scripted_server, monkeypatch, *flags)
    assert first.exit_code == 0, first.output
    paid = scripted_server.counts["chat"]
    scripted_server.reset()
    second = _optimize_in(projects / "b", scripted_server, monkeypatch, *flags)
    assert second.exit_code == 0, second.output
    assert scripted_server.counts["chat"] == paid  # a cold cache pays the same calls
    lock_a = (projects / "a" / "promptcast.lock.json").read_bytes()
    assert lock_a == (projects / "b" / "promptcast.lock.json").read_bytes()
    assert peak_in_flight() >= IN_FLIGHT  # the waves really held 64 runs at once
    scripted_server.reset()
    (projects / "a" / "promptcast.lock.json").unlink()
    warm = _optimize_in_existing(projects / "a", scripted_server, monkeypatch, *flags)
    assert warm.exit_code == 0, warm.output
    assert scripted_server.counts.get("chat", 0) == 0  # everything from the cache
    assert (projects / "a" / "promptcast.lock.json").read_bytes() == lock_a


def _optimize_in_existing(
    root: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> Any:
    import sys

    monkeypatch.chdir(root)
    saved = list(sys.path)
    try:
        return optimize(server, *extra)
    finally:
        fresh_process(saved)


def test_max_calls_is_exact_at_64_in_flight(
    projects: Path, scripted_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _optimize_in(
        projects / "p", scripted_server, monkeypatch,
        "--optimizer", "random_search", "--max-calls", "10", "--concurrency", str(IN_FLIGHT),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stopped early" in result.output
    assert scripted_server.counts["chat"] == 10
    entry = json.loads((projects / "p" / "promptcast.lock.json").read_text())["functions"][
        "cliapp.steps:kind"
    ]
    assert "budget exhausted" in entry["optimization"]["stopped"]


def test_optimize_under_a_requests_per_minute_limit_sees_no_429(
    projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scripted_big_server(latency=0.0, requests_per_minute=6000) as server:
        result = _optimize_in(
            projects / "p", server, monkeypatch, "--optimizer", "bootstrap",
            "--concurrency", str(IN_FLIGHT), "--requests-per-minute", "6000",
        )  # fmt: skip
        plan = server._state.faults
    assert result.exit_code == 0, result.output
    assert isinstance(plan, RateLimitPlan)
    assert plan.limited == 0 and server.counts["chat"] > 150


@pytest.mark.parametrize("pace", ["flag", "config", "none"])
def test_eval_is_paced_by_the_flag_or_the_config_key(
    projects: Path, monkeypatch: pytest.MonkeyPatch, pace: str
) -> None:
    """eval of 60 rows at 64 in flight against a 1200/min provider (a burst of 20): paced by
    --requests-per-minute or `[tool.promptcast] requests_per_minute`, it sees no 429; unpaced,
    all 60 go at once and the same run does (so the check can fail)."""
    import sys

    root = write_big_project(projects / "p", train=0, dev=60)
    if pace == "config":
        (root / "pyproject.toml").write_text("[tool.promptcast]\nrequests_per_minute = 1200\n")
    monkeypatch.chdir(root)
    flag = ["--requests-per-minute", "1200"] if pace == "flag" else []
    saved = list(sys.path)
    try:
        with scripted_big_server(latency=0.0, requests_per_minute=1200) as server:
            result = cli(
                "eval", "cliapp.steps:kind", "--data", "dev.jsonl", "--metric", "exact_match",
                "--label", "coarse", *lm_flags(server), "--concurrency", str(IN_FLIGHT),
                "--json", *flag,
            )  # fmt: skip
            plan = server._state.faults
    finally:
        fresh_process(saved)
    assert result.exit_code == 0, result.output
    assert isinstance(plan, RateLimitPlan)
    report = json.loads(result.output[result.output.index("{") :])
    assert report["n"] == 60 and report["errors"] == 0  # every row answered, none lost
    if pace == "none":
        assert plan.limited > 0
    else:
        assert plan.limited == 0


def test_concurrency_and_threads_are_one_setting(
    projects: Path, scripted_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _optimize_in(
        projects / "p", scripted_server, monkeypatch,
        "--optimizer", "random_search", "--concurrency", "64", "--threads", "8",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--concurrency 64 and --threads 8 disagree" in result.output


def test_kill_9_then_rerun_at_64_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/test_crash_resume.py's kill -9 test, with `--concurrency 64`."""
    command = crash_resume._command

    def at_64(url: str) -> list[str]:
        args = command(url)
        at = args.index("--threads")
        return [*args[:at], "--concurrency", str(IN_FLIGHT), *args[at + 2 :]]

    monkeypatch.setattr(crash_resume, "THREADS", IN_FLIGHT)
    monkeypatch.setattr(crash_resume, "_command", at_64)
    monkeypatch.setattr(crash_resume, "write_project", write_big_project)
    monkeypatch.setattr(crash_resume, "_server", lambda: scripted_big_server(latency=0.03))
    crash_resume.test_kill_9_then_rerun_repeats_no_completed_call_and_gives_the_same_lock(tmp_path)


def test_the_litellm_transport_reports_429s_to_the_same_limiter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from promptcast.engine.lm import _import_litellm

    litellm = _import_litellm()
    calls: list[float] = []

    class RateLimited(Exception):
        status_code = 429

        class response:  # noqa: N801 -- the shape litellm's errors carry
            headers = {"Retry-After": "0.5"}

    def completion(**kwargs: Any) -> Any:
        import time

        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RateLimited("429 Too Many Requests")
        return litellm.ModelResponse(
            choices=[{"message": {"role": "assistant", "content": "ok"}}],
            usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            model="gpt-4o-mini",
        )

    monkeypatch.setattr(litellm, "completion", completion)
    lm = LiteLLMLM("openai/gpt-4o-mini", limiter=RateLimiter(6000))
    assert lm.transport == "litellm"
    assert lm.complete(msg("a")).text == "ok"
    assert lm.limiter.throttles == 1  # the 429 paused the run's limiter ...
    assert calls[1] - calls[0] >= 0.45  # ... and the retry waited out its Retry-After there
