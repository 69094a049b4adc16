"""Trust (issue 17): the LM cache answers only for the endpoint that gave the answer, and can be
bypassed (`LiteLLMLM(refresh_cache=True)`, `--no-cache`, `PROMPTCAST_NO_CACHE=1`).

Before the fix the key held model, messages and params only: `eval --api-base` pointing at
another server answered from the first server's entries, and nothing could force a fresh call.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from promptcast.cli import main
from promptcast.engine.cache import LMCache, cache_key, canonical_request
from promptcast.engine.lm import LiteLLMLM
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_cli_optimize import fresh_process, write_project

MESSAGES = [{"role": "user", "content": "2+2?"}]
PARAMS = {"temperature": 0.0, "rollout": 0}


def test_the_key_names_the_endpoint() -> None:
    here = cache_key("openai/m", MESSAGES, PARAMS, api_base="http://127.0.0.1:8765/v1")
    assert here == cache_key("openai/m", MESSAGES, PARAMS, api_base="http://127.0.0.1:8765/v1/")
    assert here != cache_key("openai/m", MESSAGES, PARAMS, api_base="http://127.0.0.1:8766/v1")
    assert here != cache_key("openai/m", MESSAGES, PARAMS)  # the provider's default endpoint
    request = json.loads(canonical_request("openai/m", MESSAGES, PARAMS, api_base="http://h/v1/"))
    assert request["api_base"] == "http://h/v1" and request["model"] == "openai/m"


@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_another_endpoint_is_not_answered_from_the_cache(transport: str, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with (
        FakeOpenAIServer(answers={"2+2?": "four from A"}) as a,
        FakeOpenAIServer(answers={"2+2?": "four from B"}) as b,
    ):
        first = LiteLLMLM(
            "openai/fake-model", api_base=a.url, cache=LMCache(path), transport=transport
        )
        assert first.complete(MESSAGES).text == "four from A"
        again = LiteLLMLM(
            "openai/fake-model", api_base=a.url, cache=LMCache(path), transport=transport
        )
        assert again.complete(MESSAGES).text == "four from A"  # same endpoint: a hit
        other = LiteLLMLM(
            "openai/fake-model", api_base=b.url, cache=LMCache(path), transport=transport
        )
        assert other.complete(MESSAGES).text == "four from B"
        assert (a.counts["chat"], b.counts["chat"]) == (1, 1)
    assert (again.snapshot().cache_hits, other.snapshot().cache_hits) == (1, 0)


def test_refresh_cache_pays_each_request_once_and_replaces_what_was_stored(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with FakeOpenAIServer(answers={"2+2?": "old", "3+3?": "six"}) as server:
        LiteLLMLM("openai/fake-model", api_base=server.url, cache=LMCache(path)).complete(MESSAGES)
        server.set_responder(lambda body: "new")  # the model behind the endpoint changed
        fresh = LiteLLMLM(
            "openai/fake-model", api_base=server.url, cache=LMCache(path), refresh_cache=True
        )
        assert fresh.complete(MESSAGES).text == "new"  # not the stored "old"
        assert fresh.complete(MESSAGES).text == "new"  # paid once in this run, then its own hit
        assert server.counts["chat"] == 2
        assert (fresh.snapshot().calls, fresh.snapshot().cache_hits) == (1, 1)
        later = LiteLLMLM("openai/fake-model", api_base=server.url, cache=LMCache(path))
        assert later.complete(MESSAGES).text == "new"  # the fresh answer replaced the old one
        assert server.counts["chat"] == 2


# --- the commands ----------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTCAST_NO_CACHE", raising=False)
    saved_path = list(sys.path)
    yield tmp_path
    fresh_process(saved_path)


def scripted(request: dict[str, Any]) -> str:
    return ScriptedLM(QUESTIONS).complete(request["messages"]).text


def eval_json(server: FakeOpenAIServer, *extra: str, env: dict[str, str] | None = None) -> Any:
    saved_path = list(sys.path)
    try:
        result: Result = CliRunner().invoke(
            main,
            [
                "eval",
                "cliapp.steps:kind",
                "--data",
                "dev.jsonl",
                "--metric",
                "exact_match",
                "--label",
                "coarse",
                "--json",
                "--model",
                "openai/fake-model",
                "--api-base",
                server.url,
                *extra,
            ],  # fmt: skip
            env=env,
            catch_exceptions=False,
        )
    finally:
        fresh_process(saved_path)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_eval_against_another_server_asks_that_server(project: Path) -> None:
    with FakeOpenAIServer(scripted) as a, FakeOpenAIServer(lambda body: "HUM") as b:
        on_a = eval_json(a)
        assert a.counts["chat"] == 4
        on_b = eval_json(b)
        assert b.counts["chat"] == 4  # nothing answered from A's entries
    assert on_a["n"] == on_b["n"] == 4


@pytest.mark.parametrize(
    ("extra", "env"),
    [(["--no-cache"], None), ([], {"PROMPTCAST_NO_CACHE": "1"})],
    ids=["flag", "environment"],
)
def test_no_cache_sends_every_request_again(
    project: Path, extra: list[str], env: dict[str, str] | None
) -> None:
    with FakeOpenAIServer(scripted) as server:
        first = eval_json(server)
        cached = eval_json(server)
        assert server.counts["chat"] == 4  # the second run was all cache hits
        fresh = eval_json(server, *extra, env=env)
        assert server.counts["chat"] == 8
    assert first["score"] == cached["score"] == fresh["score"]
