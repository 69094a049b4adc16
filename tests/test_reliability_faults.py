"""Reliability (issue 8, part 1): the compile-time engine against every fault a provider makes.

Why these tests exist beside tests/test_runtime_lm.py: the shipped runtime has its own stdlib
HTTP client, but `optimize` talks to providers through `LiteLLMLM` over litellm, a different
stack (litellm -> openai SDK -> httpx) with different failure classes. Each fault kind of the
fake server is aimed at the engine: a fault that clears is survived with one extra request per
fault; a fault that never clears ends in one `LMError` naming endpoint and cause after exactly
`num_retries + 1` requests, within (attempts x timeout) plus slack -- never a hang.

The last test is the one the issue names: `promptcast optimize` through the CLI with 30% of the
requests faulted (seeded random plan over the retryable kinds) writes the same lock bytes as a
clean run, and every fault cost exactly one extra request (no call lost, none paid twice).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptcast.cli import main
from promptcast.engine.cache import LMCache
from promptcast.engine.lm import LiteLLMLM
from promptcast_runtime import LMError
from tests.support.faults import FaultKind, FaultPlan
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_cli_optimize import PACKAGE, fresh_process

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]
TIMEOUT_S = 0.5
RETRIES = 2
SLOW_FAULTS = {FaultKind.TIMEOUT, FaultKind.DRIP}
"""Faults that cost the client a whole timeout per attempt."""

# A drip of the ~250-byte body at 20 ms a byte takes ~5 s: far past TIMEOUT_S.
TIMING = {"retry_after_s": 0.05, "hang_s": 3.0, "drip_interval_s": 0.02}

RETRYABLE_KINDS = tuple(k for k in FaultKind if k not in SLOW_FAULTS)
"""For the 30% optimize run: faults that fail fast (timeouts would only make the test slow)."""


TRANSPORTS = ("http", "litellm")
"""The engine's two ways to a local OpenAI-compatible server: both must hold up alike."""


def engine(url: str, tmp_path: Path | None = None, **options: Any) -> LiteLLMLM:
    settings: dict[str, Any] = {
        "timeout": TIMEOUT_S,
        "num_retries": RETRIES,
        "backoff": 0.005,
        "max_backoff": 0.05,
    }
    settings.update(options)
    cache = LMCache(tmp_path / "cache.sqlite") if tmp_path is not None else None
    return LiteLLMLM("openai/fake-model", api_base=url, api_key="sk-test", cache=cache, **settings)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_a_fault_that_clears_is_retried_and_the_answer_cached(
    kind: FaultKind, transport: str, tmp_path: Path
) -> None:
    """Two faulted requests, then success: three requests, the right answer, cached once."""
    with FakeOpenAIServer(answers={"2+2?": "4"}, faults=FaultPlan.first(2, kind, **TIMING)) as s:
        lm = engine(s.url, tmp_path, transport=transport)
        start = time.monotonic()
        completion = lm.complete(MESSAGES)
        elapsed = time.monotonic() - start
        assert completion.text == "4"
        assert s.counts["chat"] == 3 and s.counts["faults"] == 2
        assert lm.complete(MESSAGES).text == "4"  # from the cache now
        assert s.counts["chat"] == 3
    snap = lm.snapshot()
    assert (snap.calls, snap.cache_hits, snap.errors) == (1, 1, 0)
    assert elapsed < 2 * TIMEOUT_S + 2.0  # at most two timed-out attempts, plus slack


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_a_fault_that_never_clears_is_one_bounded_lmerror(
    kind: FaultKind, transport: str, tmp_path: Path
) -> None:
    """Every request faulted: exactly RETRIES + 1 requests, then LMError; nothing cached."""
    with FakeOpenAIServer(faults=FaultPlan.first(100, kind, **TIMING)) as s:
        lm = engine(s.url, tmp_path, transport=transport)
        start = time.monotonic()
        with pytest.raises(LMError) as info:
            lm.complete(MESSAGES)
        elapsed = time.monotonic() - start
        assert s.counts["chat"] == RETRIES + 1
    message = str(info.value)
    gave_up = "gave up" if transport == "litellm" else "giving up"
    assert s.url in message and f"{gave_up} after {RETRIES + 1} attempts" in message
    status = kind.http_status
    if status is not None:
        assert f"status={status}" in message or f"HTTP {status}" in message
    if kind in SLOW_FAULTS:
        assert any(
            text in message
            for text in ("no complete response after 0.5s", "Timeout", "not complete after 0.5s")
        ), message
    # Bounded: each attempt is cut at TIMEOUT_S (a drip included), backoff is tiny.
    assert elapsed < (RETRIES + 1) * TIMEOUT_S + 1.5, elapsed
    assert "sk-test" not in message
    assert lm.snapshot().errors == 1 and lm.cache is not None and len(lm.cache) == 0


def test_retry_after_is_honoured_by_the_engine(tmp_path: Path) -> None:
    """A 429 asking for 0.3 s is waited out (not hammered), then the call succeeds."""
    plan = FaultPlan.first(1, FaultKind.RATE_LIMIT, retry_after_s=0.3)
    with FakeOpenAIServer(answers={"2+2?": "4"}, faults=plan) as s:
        start = time.monotonic()
        assert engine(s.url, backoff=0.0, max_backoff=1.0).complete(MESSAGES).text == "4"
        assert time.monotonic() - start >= 0.3
        assert s.counts["chat"] == 2


def test_concurrent_calls_under_random_faults_all_succeed(tmp_path: Path) -> None:
    """48 distinct calls from 8 threads, 30% of requests faulted: every answer is its own."""
    from concurrent.futures import ThreadPoolExecutor

    plan = FaultPlan.random(0.3, RETRYABLE_KINDS, seed=11, retry_after_s=0.01)
    with FakeOpenAIServer(faults=plan) as s:  # echoes the last user message
        lm = engine(s.url, tmp_path, num_retries=10, timeout=10.0)
        prompts = [f"request number {i}" for i in range(48)]

        def ask(text: str) -> str:
            return lm.complete([{"role": "user", "content": text}]).text

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, prompts))
        assert answers == prompts
        assert s.counts["faults"] > 5
        assert s.counts["chat"] - s.counts["faults"] == len(prompts)  # no call lost or repeated


# --- optimize through the CLI with 30% of requests faulted ------------------------------------


QS = list(QUESTIONS)


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two identical projects (package `cliapp`, train/dev data): one clean, one faulted."""
    saved_path = list(sys.path)
    roots = []
    for name in ("clean", "faulted"):
        root = tmp_path / name
        (root / "cliapp").mkdir(parents=True)
        (root / "cliapp" / "__init__.py").write_text("")
        (root / "cliapp" / "steps.py").write_text(PACKAGE)
        for split, rows in (("train", QS[:8]), ("dev", QS[8:])):
            lines = [json.dumps({"question": q, "coarse": QUESTIONS[q]}) for q in rows]
            (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
        roots.append(root)
    yield roots[0], roots[1]
    fresh_process(saved_path)


def _optimize_in(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.chdir(root)
    saved_path = list(sys.path)
    args = [
        "optimize", "cliapp.steps:kind", "--train", "train.jsonl", "--dev", "dev.jsonl",
        "--metric", "exact_match", "--label", "coarse", "--optimizer", "random_search",
        "--optimizer-arg", "num_candidates=3", "--threads", "4", "--seed", "5",
        "--model", "openai/fake-model", "--api-base", url,
    ]  # fmt: skip
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        fresh_process(saved_path)
    assert result.exit_code == 0, result.output
    return (root / "promptcast.lock.json").read_bytes()


def _scripted_server(faults: FaultPlan | None = None) -> FakeOpenAIServer:
    lm = ScriptedLM(QUESTIONS)
    return FakeOpenAIServer(
        lambda req: lm.complete(req["messages"]).text, faults=faults or FaultPlan()
    )


def test_optimize_with_30_percent_faults_writes_the_clean_lock(
    projects: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same lock bytes as a clean run; each injected fault cost exactly one more request.

    The CLI's engine LM gets tiny backoffs and 12 retries (not the defaults: 30% is far above any
    real provider's error rate, and with 4 retries about one run in five would lose a call to 5
    faults in a row somewhere, since thread interleaving decides which request gets which fault).
    """
    from promptcast.commands.common import make_lm

    def patient_lm(model: str, api_base: str | None, project_dir: Path) -> Any:
        lm = make_lm(model, api_base, project_dir)
        lm.num_retries, lm.backoff, lm.max_backoff = 12, 0.002, 0.02
        return lm

    monkeypatch.setattr("promptcast.commands.optimize.make_lm", patient_lm)
    clean_root, faulted_root = projects
    with _scripted_server() as clean:
        clean_lock = _optimize_in(clean_root, clean.url, monkeypatch)
        clean_calls = clean.counts["chat"]
    plan = FaultPlan.random(0.3, RETRYABLE_KINDS, seed=2024, retry_after_s=0.01)
    with _scripted_server(plan) as faulted:
        faulted_lock = _optimize_in(faulted_root, faulted.url, monkeypatch)
        counts = faulted.counts
    assert clean_calls > 20
    assert faulted_lock == clean_lock
    assert counts["faults"] >= 0.2 * counts["chat"]
    assert counts["chat"] - counts["faults"] == clean_calls  # calls lost: 0, paid twice: 0
    served_kinds = {k.removeprefix("fault:") for k in counts if k.startswith("fault:")}
    assert len(served_kinds) >= 6, served_kinds
    print(f"[figures] optimize: {counts['faults']} faults injected in {counts['chat']} requests, "
          f"all survived; {clean_calls} distinct calls, 0 lost")  # fmt: skip
