"""Issue 18, items 4 and 5 against the real local model (llama-cpp-python's server, qwen0.5b,
as scripts/lm/start.sh runs it: the GGUF's own chat template, no `--chat_format`).

What the server does, checked here so the claims in the README and the note stay true:
- `response_format` of type `json_schema` is refused with HTTP 500 (its request model allows
  only "text" and "json_object"); `json_object` with a `schema` is taken and turned into a
  grammar, so the answer is one of the schema's labels.
- `tools` are taken (the Qwen template writes them into the prompt) but the reply is plain
  `content` -- the model writes a call as JSON text -- and never `tool_calls`: the probe sees
  that, and `protocol="auto"` locks the text protocol.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptcast.engine.cache import LMCache
from promptcast.engine.lm import LiteLLMLM
from promptcast.optimizers.capabilities import SCHEMA_PROBE, TOOLS_PROBE
from promptcast_runtime import build_step

pytestmark = pytest.mark.slow


def _lm(url: str, tmp_path: Path) -> LiteLLMLM:
    return LiteLLMLM(
        "openai/qwen0.5b", api_base=url, cache=LMCache(tmp_path / "cache.sqlite"), timeout=300
    )


def test_the_local_server_refuses_json_schema_and_takes_a_schema_in_json_object(
    local_lm_url: str, tmp_path: Path
) -> None:
    accepted, reply = _lm(local_lm_url, tmp_path).probe(
        SCHEMA_PROBE["messages"], **SCHEMA_PROBE["params"]
    )
    assert not accepted
    assert "HTTP 500" in reply.text and "json_object" in reply.text
    spec = {
        "api": 2, "step": "t:kind", "kind": "predict",
        "instructions": "Classify the kind of answer a question asks for.",
        "inputs": {"question": ""}, "outputs": {"answer": ""}, "shape": "single", "demos": (),
        "adapter": "json", "lm_params": {"max_tokens": 32, "temperature": 0.0}, "options": {},
        "response_format": {
            "type": "json_object",
            "schema": {
                "type": "object",
                "properties": {"answer": {"enum": ["NUM", "LOC", "HUM"]}},
                "required": ["answer"],
                "additionalProperties": False,
            },
        },
    }  # fmt: skip
    step = build_step(spec, {"question": str}, str)
    prediction = step.forward(
        {"question": "How far is Oslo from Lima?"}, _lm(local_lm_url, tmp_path)
    )
    assert json.loads(prediction.completion.text)["answer"] in ("NUM", "LOC", "HUM")


def test_the_local_server_takes_tools_but_answers_without_tool_calls(
    local_lm_url: str, tmp_path: Path
) -> None:
    accepted, reply = _lm(local_lm_url, tmp_path).probe(
        TOOLS_PROBE["messages"], **TOOLS_PROBE["params"]
    )
    assert accepted
    assert reply.tool_calls == ()
    assert "ping" in reply.text  # the call, written as text the client does not parse
