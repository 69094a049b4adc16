"""A completion the token limit cut off is never parsed as if it were whole.

`finish_reason: "length"` travels from the wire (both clients, both engine transports) through
the cache to the step, which raises a ParseError naming the limit instead of returning the
prefix ("12" of "123").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptcast.engine.cache import LMCache
from promptcast_runtime import Completion, Field, OpenAIClient, ParseError, Predictor, Signature

COUNT: Predictor[int] = Predictor(
    Signature("Count.", (Field("text", str),), (Field("answer", int),)),
    returns="answer",
    lm_params={"max_tokens": 2},
)


class CutOffLM:
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.calls = 0

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.calls += 1
        return Completion("[[ ## answer ## ]]\n12", finish_reason=self.reason)


def test_a_cut_off_answer_raises_naming_the_limit_and_costs_no_retry() -> None:
    lm = CutOffLM("length")
    retrying: Predictor[int] = Predictor(
        COUNT.signature, returns="answer", lm_params={"max_tokens": 2}, parse_retries=2
    )
    with pytest.raises(ParseError) as info:
        retrying.forward({"text": "one two ... 123"}, lm)
    assert "cut off by the token limit" in str(info.value) and "max_tokens=2" in str(info.value)
    assert info.value.raw == "[[ ## answer ## ]]\n12" and lm.calls == 1
    assert COUNT.forward({"text": "x"}, CutOffLM("stop")).value == 12
    with pytest.raises(ParseError, match="content filter"):
        COUNT.forward({"text": "x"}, CutOffLM("content_filter"))


def test_the_client_reads_finish_reason_off_the_wire() -> None:
    client = OpenAIClient("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    body = {
        "model": "m",
        "choices": [{"message": {"content": "12"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    assert client._parse(json.dumps(body).encode()).finish_reason == "length"
    del body["choices"][0]["finish_reason"]  # type: ignore[attr-defined]
    assert client._parse(json.dumps(body).encode()).finish_reason == ""


def test_the_cache_keeps_finish_reason_and_upgrades_an_older_file(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "cache.sqlite"
    with sqlite3.connect(path) as db:  # a cache from before finish_reason was stored
        db.executescript(
            "CREATE TABLE completions (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
            " usage TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL);"
            "INSERT INTO completions VALUES ('old', 'hi', '{}', 'm', '{}');"
        )
    cache = LMCache(path)
    assert cache.get("old") == Completion("hi", {}, "m", "")
    cache.put("new", Completion("12", {"completion_tokens": 2}, "m", "length"))
    assert LMCache(path).get("new") == Completion("12", {"completion_tokens": 2}, "m", "length")


@pytest.mark.slow
def test_the_real_model_cut_off_by_a_small_limit_raises(local_lm_url: str) -> None:
    url = local_lm_url  # fails, never skips, when the local model is not running
    step: Predictor[int] = Predictor(
        Signature(
            "Count the objects and explain your count step by step.",
            (Field("question", str),),
            (Field("reasoning", str), Field("answer", int)),
        ),
        returns="answer",
        lm_params={"max_tokens": 8, "temperature": 0.0},
    )
    client = OpenAIClient("qwen0.5b", base_url=url, api_key="local")
    with pytest.raises(ParseError, match="cut off by the token limit"):
        step.forward({"question": "I have a chair, two tables and a lamp. How many?"}, client)
