"""OpenTelemetry GenAI spans from promptcast calls, read back from the SDK's in-memory exporter:
span names, `gen_ai.*` attributes, parent links for a two-step program and a ReAct agent,
content only on opt-in, errors as ERROR spans; and nothing at all without instrumenting."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from promptcast.context import candidate
from promptcast_runtime import ParseError, build_step, hooked, hooks, otel, using
from tests.support.optimizing import QS, steps
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_hooks import ANSWER, AgentLM, population, spec
from tests.test_hooks import ScriptedLM as FixedLM

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory, provider
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def parent_name(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> str | None:
    if span.parent is None:
        return None
    ids = {s.context.span_id: s.name for s in spans}
    return ids[span.parent.span_id]


def test_a_call_is_a_chat_client_span_with_genai_attributes(exporter: Any) -> None:
    memory, provider = exporter
    step = build_step(spec(), inputs={"question": str}, returns=str)
    with hooked(otel.OpenTelemetryHook(provider)), using(FixedLM(ANSWER)):
        step(question="How far?")
    (span,) = memory.get_finished_spans()
    assert span.name == "chat test-model" and span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "test-model",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.0,
        "gen_ai.output.type": "text",
        "gen_ai.response.model": "test-model",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 3,
        "promptcast.function": "app.triage:classify",
        "promptcast.call.role": "predict",
        "promptcast.retries": 0,
    }
    assert span.status.status_code is StatusCode.UNSET


def test_content_is_recorded_only_when_asked(exporter: Any, monkeypatch: Any) -> None:
    memory, provider = exporter
    step = build_step(spec(), inputs={"question": str}, returns=str)
    with hooked(otel.OpenTelemetryHook(provider, capture_content=True)), using(FixedLM(ANSWER)):
        step(question="How far?")
    (span,) = memory.get_finished_spans()
    sent = json.loads(str((span.attributes or {})["gen_ai.input.messages"]))
    assert [m["role"] for m in sent] == ["system", "user"]
    assert "How far?" in sent[-1]["parts"][0]["content"]
    answered = json.loads(str((span.attributes or {})["gen_ai.output.messages"]))
    assert answered[0]["parts"][0]["content"] == ANSWER
    memory.clear()
    monkeypatch.setenv(otel.CONTENT_ENV, "true")
    with hooked(otel.OpenTelemetryHook(provider)), using(FixedLM(ANSWER)):
        step(question="again")
    assert "gen_ai.input.messages" in (memory.get_finished_spans()[0].attributes or {})


def test_a_failed_call_is_an_error_span_with_its_type(exporter: Any) -> None:
    memory, provider = exporter
    step = build_step(spec(), inputs={"question": str}, returns=int)
    hook = otel.OpenTelemetryHook(provider)
    with hooked(hook), using(FixedLM("no number here")), pytest.raises(ParseError):
        step(question="x")
    (span,) = memory.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ParseError"
    assert [e.name for e in span.events] == ["exception"]


def test_a_two_step_program_nests_its_calls_under_a_workflow_span(exporter: Any) -> None:
    memory, provider = exporter
    with hooked(otel.OpenTelemetryHook(provider)), candidate(lm=ScriptedLM(QUESTIONS)):
        steps().two_steps(QS[0])
    spans = memory.get_finished_spans()
    assert [s.name for s in spans] == [
        "chat ScriptedLM",
        "chat ScriptedLM",
        "invoke_workflow optpkg.steps:two_steps",
    ]
    workflow = spans[2]
    assert (workflow.attributes or {})["gen_ai.operation.name"] == "invoke_workflow"
    assert (workflow.attributes or {})["gen_ai.workflow.name"] == "optpkg.steps:two_steps"
    assert [parent_name(s, spans) for s in spans] == [workflow.name, workflow.name, None]
    assert [(s.attributes or {})["promptcast.function"] for s in spans[:2]] == [
        "optpkg.steps:kind",
        "optpkg.steps:shout",
    ]
    assert len({s.context.trace_id for s in spans}) == 1


def test_a_built_program_nests_the_same_way_with_the_runtime_decorator(exporter: Any) -> None:
    memory, provider = exporter
    first = build_step(spec("app.p:one"), inputs={"question": str}, returns=str)
    second = build_step(spec("app.p:two"), inputs={"question": str}, returns=str)

    @hooks.program("app.p:pipeline")
    def pipeline(question: str) -> str:
        return second(question=first(question=question))

    hook = otel.instrument(provider)
    try:
        with using(FixedLM(ANSWER)):
            pipeline("q")
    finally:
        otel.uninstrument(hook)
    spans = memory.get_finished_spans()
    assert [parent_name(s, spans) for s in spans] == ["invoke_workflow app.p:pipeline"] * 2 + [None]


def test_a_react_agent_is_agent_turn_tool_and_chat_spans(exporter: Any) -> None:
    memory, provider = exporter
    agent_spec = spec("app.agent:people", "react", options={"max_iters": 3, "teach_turns": False})
    agent = build_step(agent_spec, inputs={"question": str}, returns=int, tools=[population])
    with hooked(otel.OpenTelemetryHook(provider, capture_content=True)), using(AgentLM()):
        assert agent(question="How many live in Oslo?") == 709000
    spans = memory.get_finished_spans()
    tree = [(s.name, parent_name(s, spans)) for s in spans]
    assert sorted(tree) == sorted(
        [
            ("chat agent-model", "turn 0 app.agent:people"),
            ("execute_tool population", "turn 0 app.agent:people"),
            ("turn 0 app.agent:people", "invoke_agent app.agent:people"),
            ("chat agent-model", "turn 1 app.agent:people"),
            ("turn 1 app.agent:people", "invoke_agent app.agent:people"),
            ("chat agent-model", "invoke_agent app.agent:people"),
            ("invoke_agent app.agent:people", None),
        ]
    )
    named = by_name(spans)
    tool = dict(named["execute_tool population"].attributes or {})
    assert tool["gen_ai.operation.name"] == "execute_tool"
    assert tool["gen_ai.tool.name"] == "population" and tool["gen_ai.tool.type"] == "function"
    assert json.loads(str(tool["gen_ai.tool.call.arguments"])) == {"city": "Oslo"}
    assert tool["gen_ai.tool.call.result"] == "709000"
    root = dict(named["invoke_agent app.agent:people"].attributes or {})
    assert root["gen_ai.operation.name"] == "invoke_agent"
    assert root["gen_ai.agent.name"] == "app.agent:people"
    roles = [(s.attributes or {}).get("promptcast.call.role") for s in spans if s.name.startswith("chat")]
    assert roles == ["turn", "turn", "answer"]


def test_an_async_agent_nests_its_tool_span_too(exporter: Any) -> None:
    import asyncio

    memory, provider = exporter
    agent_spec = spec("app.agent:people", "react", options={"max_iters": 3, "teach_turns": False})
    agent = build_step(agent_spec, inputs={"question": str}, returns=int, tools=[population])

    async def main() -> int:
        with hooked(otel.OpenTelemetryHook(provider)), using(AgentLM()):
            return int(await agent.acall(question="Oslo?"))

    assert asyncio.run(main()) == 709000
    spans = memory.get_finished_spans()
    tool = by_name(spans)["execute_tool population"]
    assert parent_name(tool, spans) == "turn 0 app.agent:people"
    assert "gen_ai.tool.call.arguments" not in (tool.attributes or {})  # no content by default


def test_spans_join_the_callers_trace(exporter: Any) -> None:
    memory, provider = exporter
    tracer = provider.get_tracer("app")
    step = build_step(spec(), inputs={"question": str}, returns=str)
    hook = otel.OpenTelemetryHook(provider)
    with hooked(hook), using(FixedLM(ANSWER)), tracer.start_as_current_span("handle request"):
        step(question="x")
    spans = memory.get_finished_spans()
    assert [(s.name, parent_name(s, spans)) for s in spans] == [
        ("chat test-model", "handle request"),
        ("handle request", None),
    ]


def test_without_instrumenting_there_is_no_span_and_no_hook(exporter: Any) -> None:
    memory, provider = exporter
    step = build_step(spec(), inputs={"question": str}, returns=str)
    with using(FixedLM(ANSWER)):
        step(question="x")
    assert hooks.ACTIVE == 0 and memory.get_finished_spans() == ()


def test_the_runtime_never_imports_opentelemetry_by_itself() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(RUNTIME_DIR)!r})\n"
        "import promptcast_runtime, promptcast_runtime.hooks\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_real_local_model_call_is_traced_with_its_usage(local_lm_url: str, exporter: Any) -> None:
    """Against the real model: the span carries the usage and model the server reported."""
    from promptcast_runtime import OpenAIClient

    memory, provider = exporter
    step = build_step(spec(), inputs={"question": str}, returns=str)
    client = OpenAIClient("qwen0.5b", local_lm_url, timeout=300)
    with hooked(otel.OpenTelemetryHook(provider)), using(client):
        step(question="How far is it from Denver to Aspen ?")
    (span,) = memory.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "chat qwen0.5b"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["server.address"] == "127.0.0.1"
    assert int(str(attributes["gen_ai.usage.input_tokens"])) > 20
    assert int(str(attributes["gen_ai.usage.output_tokens"])) > 0
    assert attributes["gen_ai.response.finish_reasons"] in (("stop",), ("length",))
    assert attributes["gen_ai.response.model"]
