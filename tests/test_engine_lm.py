"""LiteLLMLM over a faked `litellm.completion`: caching, budget, usage, errors, secrets, import."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "runtime") not in sys.path:  # until the editable install exposes the runtime
    sys.path.insert(0, str(ROOT / "runtime"))

from promptcast.engine.budget import BudgetExhausted, LMBudget, UsageSnapshot  # noqa: E402
from promptcast.engine.cache import LMCache  # noqa: E402
from promptcast.engine.lm import LiteLLMLM, _import_litellm  # noqa: E402
from promptcast_runtime.errors import LMError  # noqa: E402
from promptcast_runtime.lm import LM, Completion  # noqa: E402

CANARY = "sk-canary-0123456789abcdef"


class FakeCompletion:
    """Records every call it receives and answers `echo: <last message>`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, **kwargs: Any) -> Any:
        with self._lock:
            self.calls.append(kwargs)
        if self.delay:
            time.sleep(self.delay)
        litellm = _import_litellm()
        return litellm.ModelResponse(
            choices=[
                {
                    "message": {
                        "role": "assistant",
                        "content": "echo: " + kwargs["messages"][-1]["content"],
                    }
                }
            ],
            usage={"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
            model=kwargs["model"].split("/")[-1],
        )


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCompletion:
    litellm = _import_litellm()
    fake = FakeCompletion()
    monkeypatch.setattr(litellm, "completion", fake)
    return fake


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def test_implements_runtime_protocol_and_caches(tmp_path: Path, fake: FakeCompletion) -> None:
    lm = LiteLLMLM(
        "openai/gpt-4o-mini",
        cache=LMCache(tmp_path / "c.sqlite"),
        default_params={"temperature": 0.0},
    )
    assert isinstance(lm, LM)
    first = lm.complete(msg("hi"))
    second = lm.complete(msg("hi"))
    assert (
        first
        == second
        == Completion(
            "echo: hi", {"completion_tokens": 4, "prompt_tokens": 10}, "gpt-4o-mini", "stop"
        )
    )
    assert len(fake.calls) == 1
    assert fake.calls[0]["temperature"] == 0.0
    assert "rollout" not in fake.calls[0]  # part of the key, never sent
    snap = lm.snapshot()
    assert (snap.calls, snap.cache_hits, snap.prompt_tokens, snap.completion_tokens) == (
        1,
        1,
        10,
        4,
    )
    assert snap.cost > 0  # litellm knows gpt-4o-mini's price
    assert lm.cache is not None and lm.cache.stats().hits == 1


def test_rollout_and_params_make_distinct_entries(tmp_path: Path, fake: FakeCompletion) -> None:
    lm = LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(tmp_path / "c.sqlite"))
    lm.complete(msg("hi"))
    lm.complete(msg("hi"), rollout=0)  # same as default
    lm.complete(msg("hi"), rollout=1)
    lm.complete(msg("hi"), temperature=0.7)
    assert len(fake.calls) == 3
    assert lm.snapshot().cache_hits == 1


def test_cache_survives_new_lm_object(tmp_path: Path, fake: FakeCompletion) -> None:
    path = tmp_path / "c.sqlite"
    LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(path)).complete(msg("q"))
    lm2 = LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(path))
    assert lm2.complete(msg("q")).text == "echo: q"
    assert len(fake.calls) == 1
    assert lm2.snapshot() == UsageSnapshot(cache_hits=1)


def test_unknown_price_costs_zero(tmp_path: Path, fake: FakeCompletion) -> None:
    lm = LiteLLMLM("openai/qwen0.5b", api_base="http://127.0.0.1:1/v1", transport="litellm")
    lm.complete(msg("q"))
    assert lm.snapshot().cost == 0.0  # litellm has no price for it: 0, not an exception
    assert fake.calls[0]["api_base"] == "http://127.0.0.1:1/v1"


def test_budget_stops_paid_calls_but_hits_are_free(tmp_path: Path, fake: FakeCompletion) -> None:
    budget = LMBudget(max_calls=2)
    lm = LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(tmp_path / "c.sqlite"), budget=budget)
    lm.complete(msg("a"))
    lm.complete(msg("b"))
    with pytest.raises(BudgetExhausted, match="2 of max 2"):
        lm.complete(msg("c"))
    assert lm.complete(msg("a")).text == "echo: a"  # cached: free
    assert len(fake.calls) == 2 and budget.used == 2 and budget.remaining == 0
    assert budget.exhausted


def test_budget_is_exact_under_32_threads(tmp_path: Path, fake: FakeCompletion) -> None:
    fake.delay = 0.01
    budget = LMBudget(max_calls=10)
    lm = LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(tmp_path / "c.sqlite"), budget=budget)
    refused: list[int] = []

    def worker(i: int) -> None:
        try:
            lm.complete(msg(f"q{i}"))
        except BudgetExhausted:
            refused.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.calls) == 10 and len(refused) == 22
    assert lm.snapshot().calls == 10


def test_shared_budget_across_lms(fake: FakeCompletion) -> None:
    budget = LMBudget(max_calls=1)
    LiteLLMLM("openai/gpt-4o-mini", budget=budget).complete(msg("a"))
    with pytest.raises(BudgetExhausted):
        LiteLLMLM("openai/gpt-4o", budget=budget).complete(msg("a"))


def test_concurrent_identical_requests_pay_once(tmp_path: Path, fake: FakeCompletion) -> None:
    fake.delay = 0.05
    lm = LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(tmp_path / "c.sqlite"))
    threads = [threading.Thread(target=lm.complete, args=(msg("same"),)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.calls) == 1
    assert lm.snapshot().cache_hits == 7


def test_usage_snapshots_subtract_per_step(fake: FakeCompletion) -> None:
    lm = LiteLLMLM("openai/gpt-4o-mini")
    lm.complete(msg("a"))
    before = lm.snapshot()
    lm.complete(msg("b"))
    lm.complete(msg("c"))
    step = lm.snapshot() - before
    assert (step.calls, step.prompt_tokens, step.completion_tokens, step.total_tokens) == (
        2,
        20,
        8,
        28,
    )
    assert (before + step) == lm.snapshot()
    assert set(step.to_json()) == {
        "calls",
        "cache_hits",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "errors",
    }


def test_provider_error_becomes_lmerror_without_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    litellm = _import_litellm()

    def boom(**kwargs: Any) -> Any:
        raise litellm.exceptions.RateLimitError(
            message=f"Incorrect API key provided: {kwargs['api_key']}",
            llm_provider="openai",
            model="qwen0.5b",
        )

    monkeypatch.setattr(litellm, "completion", boom)
    lm = LiteLLMLM(
        "openai/qwen0.5b",
        api_base="http://127.0.0.1:9/v1",
        api_key=CANARY,
        transport="litellm",
        cache=LMCache(tmp_path / "c.sqlite"),
        backoff=0.0,
    )
    with pytest.raises(LMError) as info:
        lm.complete(msg("x"))
    text = str(info.value)
    assert "model='openai/qwen0.5b'" in text
    assert "api_base='http://127.0.0.1:9/v1'" in text
    assert "status=429" in text
    assert CANARY not in text and "***" in text
    assert CANARY not in repr(lm)
    assert lm.snapshot().errors == 1 and lm.snapshot().calls == 0
    assert lm.cache is not None and len(lm.cache) == 0  # failures are not cached


def test_empty_choices_is_lmerror(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _import_litellm()
    monkeypatch.setattr(litellm, "completion", lambda **kw: {"choices": [], "model": "x"})
    with pytest.raises(LMError, match="no choices"):
        LiteLLMLM("openai/x", backoff=0.0).complete(msg("x"))
    monkeypatch.setattr(
        litellm, "completion", lambda **kw: {"choices": [{"message": {"content": None}}]}
    )
    with pytest.raises(LMError, match="no text"):
        LiteLLMLM("openai/x", backoff=0.0).complete(msg("x"))


def test_api_keys_never_reach_the_cache(
    tmp_path: Path, fake: FakeCompletion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    path = tmp_path / "c.sqlite"
    lm = LiteLLMLM("openai/gpt-4o-mini", api_key=CANARY, cache=LMCache(path))
    lm.complete(msg("a"))
    lm.complete(msg("b"), api_key=CANARY)  # per-call key: used, not stored, not in the key
    assert fake.calls[1]["api_key"] == CANARY
    assert lm.complete(msg("b")).text == "echo: b" and len(fake.calls) == 2
    assert lm.cache is not None
    lm.cache.close()
    for file in tmp_path.iterdir():
        assert CANARY.encode() not in file.read_bytes(), file
    with pytest.raises(ValueError, match="api_key="):
        LiteLLMLM("m", default_params={"api_key": CANARY})


def test_local_server_gets_a_placeholder_key(
    fake: FakeCompletion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    lm = LiteLLMLM("openai/qwen0.5b", api_base="http://127.0.0.1:8765/v1", transport="litellm")
    lm.complete(msg("a"))
    assert fake.calls[0]["api_key"]


def test_openai_compatible_servers_are_called_without_litellm(tmp_path: Path) -> None:
    """`openai/<name>` + api_base goes through the stdlib client: litellm is never imported,
    and the request, the cache row and the completion are what the litellm path produces."""
    code = (
        "import sys\n"
        "from tests.support.openai_server import FakeOpenAIServer\n"
        "from promptcast.engine import LiteLLMLM, LMCache\n"
        "with FakeOpenAIServer(answers={'q': 'a!'}) as server:\n"
        f"    lm = LiteLLMLM('openai/m', api_base=server.url, cache=LMCache({str(tmp_path / 'c.sqlite')!r}),\n"
        "                   default_params={'temperature': 0.0})\n"
        "    assert lm.transport == 'http'\n"
        "    done = lm.complete([{'role': 'user', 'content': 'q'}], rollout=2)\n"
        "    assert done.text == 'a!', done\n"
        "    assert lm.complete([{'role': 'user', 'content': 'q'}], rollout=2) == done  # cached\n"
        "    (body,) = server.requests\n"
        "    assert body['model'] == 'm' and body['temperature'] == 0.0 and 'rollout' not in body\n"
        "    assert body['messages'] == [{'role': 'user', 'content': 'q'}]\n"
        "    assert lm.snapshot().calls == 1 and lm.snapshot().cache_hits == 1\n"
        "assert 'litellm' not in sys.modules, 'litellm imported'\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "compiler"), str(ROOT / "runtime")])
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60, cwd=ROOT)


def test_transport_choice() -> None:
    assert LiteLLMLM("openai/m", api_base="http://h/v1").transport == "http"
    assert LiteLLMLM("openai/m").transport == "litellm"  # the real OpenAI: litellm (prices)
    assert LiteLLMLM("anthropic/c", api_base="http://h/v1").transport == "litellm"
    assert LiteLLMLM("openai/m", api_base="http://h/v1", transport="litellm").transport == "litellm"
    with pytest.raises(ValueError, match="needs an openai/<model> with an api_base"):
        LiteLLMLM("anthropic/c", transport="http")
    with pytest.raises(ValueError, match="transport must be"):
        LiteLLMLM("openai/m", transport="grpc")


def test_importing_engine_and_evaluate_does_not_load_litellm() -> None:
    code = (
        "import sys\n"
        "import promptcast.engine, promptcast.engine.cache, promptcast.engine.lm\n"
        "import promptcast.engine.runner, promptcast.evaluate\n"
        "import promptcast.evaluate.metrics, promptcast.evaluate.data\n"
        "assert 'litellm' not in sys.modules, 'litellm imported'\n"
        "assert 'tqdm' not in sys.modules, 'tqdm imported'\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "compiler"), str(ROOT / "runtime")])
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


@pytest.mark.slow
def test_real_local_model_call_then_cache_hit(tmp_path: Path, local_lm_url: str) -> None:
    lm = LiteLLMLM(
        "openai/qwen0.5b",
        api_base=local_lm_url,
        api_key="local",
        cache=LMCache(tmp_path / "c.sqlite"),
        default_params={"temperature": 0.0, "max_tokens": 8},
    )
    messages = [{"role": "user", "content": "Reply with the single word: yes"}]
    first = lm.complete(messages)
    assert isinstance(first.text, str) and first.text.strip()
    second = lm.complete(messages)
    assert second == first
    snap = lm.snapshot()
    assert (snap.calls, snap.cache_hits) == (1, 1)
    assert snap.prompt_tokens > 0


def test_usd_budget_refuses_calls_once_the_spend_reaches_it(
    tmp_path: Path, fake: FakeCompletion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LiteLLMLM, "_cost", lambda self, litellm, response: 0.004)
    budget = LMBudget(max_usd=0.01)
    lm = LiteLLMLM("openai/gpt-4o-mini", cache=LMCache(tmp_path / "c.sqlite"), budget=budget)
    for text in ("a", "b", "c"):  # 0.000, 0.004, 0.008 spent before each: all start
        lm.complete(msg(text))
    with pytest.raises(BudgetExhausted, match=r"cost budget exhausted: \$0\.0120 of max \$0\.0100"):
        lm.complete(msg("d"))
    assert lm.complete(msg("a")).text == "echo: a"  # cache hits stay free
    assert len(fake.calls) == 3 and budget.exhausted and budget.spent_usd == pytest.approx(0.012)


def test_budget_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_usd must be >= 0"):
        LMBudget(max_usd=-1)
    both = LMBudget(max_calls=5, max_usd=1.0)
    both.reserve()
    both.charge(2.0)
    with pytest.raises(BudgetExhausted, match="cost budget"):
        both.reserve()
