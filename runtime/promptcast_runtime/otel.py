"""OpenTelemetry spans for promptcast calls, following the GenAI semantic conventions.

    from promptcast_runtime import otel
    otel.instrument()                       # the global tracer provider; or tracer_provider=...
    otel.instrument(capture_content=True)   # also record prompts, completions, tool arguments

Every LM call becomes a CLIENT span `chat {model}` (`gen_ai.operation.name` "chat",
`gen_ai.request.model`, the sampling parameters as `gen_ai.request.*`, `gen_ai.response.model`,
`gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens` / `output_tokens`, and
`promptcast.function`, `promptcast.call.role`, `promptcast.retries`); a failed call sets the
span's status to ERROR with `error.type`. Scopes nest them: a ReAct run is `invoke_agent
{function}`, each turn `turn {i} {function}`, each tool call `execute_tool {tool}`, and a program
(`@pc.program` during development, `promptcast_runtime.hooks.program` in a built module)
`invoke_workflow {program}`. Spans join whatever trace is current, so a request handler's span
is the parent of the calls it makes.

Content (messages, completions as `gen_ai.input.messages` / `gen_ai.output.messages`, tool
arguments and results) is recorded only when asked: `capture_content=True`, or the convention's
environment variable `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`. Prompts hold user
data; a tracing backend should not receive it by default.

Why a separate module: the runtime stays standard-library only. This module imports
`opentelemetry` when `instrument()` is called, never at import of the runtime; without the
package `instrument()` raises ImportError saying what to install, and nothing else changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .hooks import Call, Hook, Scope, add_hook, remove_hook

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}
"""Sampling parameters -> their GenAI request attribute (`stop` is `stop_sequences`)."""


def instrument(
    tracer_provider: Any = None, *, capture_content: bool | None = None
) -> OpenTelemetryHook:
    """Trace every promptcast call of this process; returns the hook (`uninstrument(hook)`)."""
    hook = OpenTelemetryHook(tracer_provider, capture_content=capture_content)
    add_hook(hook)
    return hook


def uninstrument(hook: OpenTelemetryHook) -> None:
    remove_hook(hook)


class OpenTelemetryHook(Hook):
    """A promptcast hook that opens one span per call and per scope (see the module doc).

    Usable per context too: `with promptcast_runtime.hooked(OpenTelemetryHook(provider)):`.
    """

    def __init__(self, tracer_provider: Any = None, *, capture_content: bool | None = None) -> None:
        try:
            from opentelemetry import context, trace  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:  # pragma: no cover -- exercised where the SDK is absent
            raise ImportError(
                "promptcast_runtime.otel needs the OpenTelemetry API: "
                "pip install opentelemetry-api (and opentelemetry-sdk to export spans)"
            ) from exc
        from .contract import RUNTIME_VERSION

        self._context = context
        self._trace = trace
        self.tracer = trace.get_tracer(
            "promptcast_runtime", RUNTIME_VERSION, tracer_provider=tracer_provider
        )
        if capture_content is None:
            capture_content = os.environ.get(CONTENT_ENV, "").strip().lower() == "true"
        self.capture_content = capture_content

    # --- spans ----------------------------------------------------------------------------

    def _open(self, event: Any, name: str, kind: Any, attributes: Mapping[str, Any]) -> None:
        span = self.tracer.start_span(name, kind=kind, attributes=_clean(attributes))
        token = self._context.attach(self._trace.set_span_in_context(span))
        event.store[self] = (span, token)

    def _close(self, event: Any, error: BaseException | None, attributes: Mapping[str, Any]) -> None:
        opened = event.store.pop(self, None)
        if opened is None:
            return
        span, token = opened
        span.set_attributes(_clean(attributes))
        if error is not None:
            from opentelemetry.trace import Status, StatusCode  # type: ignore[import-not-found, unused-ignore]

            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)[:500]))
        try:
            self._context.detach(token)
        finally:
            span.end()

    # --- calls ----------------------------------------------------------------------------

    def call_started(self, call: Call) -> None:
        params = call.params
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": call.model,
            "promptcast.function": call.function,
            "promptcast.call.role": call.role,
        }
        provider = _provider(call.lm)
        if provider:
            attributes["gen_ai.provider.name"] = provider
        for param, attribute in REQUEST_PARAMS.items():
            if param in params:
                attributes[attribute] = params[param]
        stop = params.get("stop")
        if stop is not None:
            attributes["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else stop
        response_format = params.get("response_format")
        json_mode = isinstance(response_format, Mapping) and "json" in str(
            response_format.get("type", "")
        )
        attributes["gen_ai.output.type"] = "json" if json_mode else "text"
        attributes.update(_server(call.lm))
        if self.capture_content:
            attributes["gen_ai.input.messages"] = _messages_json(call.messages)
        self._open(call, f"chat {call.model}", self._trace.SpanKind.CLIENT, attributes)

    def call_finished(self, call: Call) -> None:
        self._close(call, None, self._answer(call))

    def call_failed(self, call: Call) -> None:
        self._close(call, call.error, self._answer(call))

    def _answer(self, call: Call) -> dict[str, Any]:
        attributes: dict[str, Any] = {"promptcast.retries": call.retries}
        completion = call.completion
        if completion is not None:
            if completion.model:
                attributes["gen_ai.response.model"] = completion.model
            if completion.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = [completion.finish_reason]
        usage = call.usage
        for key, attribute in (
            ("prompt_tokens", "gen_ai.usage.input_tokens"),
            ("completion_tokens", "gen_ai.usage.output_tokens"),
        ):
            if key in usage:
                attributes[attribute] = usage[key]
        text = call.text
        if self.capture_content and text is not None:
            attributes["gen_ai.output.messages"] = json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": text}]}],
                ensure_ascii=False,
            )
        return attributes

    # --- scopes ---------------------------------------------------------------------------

    def scope_started(self, scope: Scope) -> None:
        internal = self._trace.SpanKind.INTERNAL
        a = scope.attributes
        attributes: dict[str, Any]
        if scope.kind == "agent":
            attributes = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": scope.name,
                "promptcast.function": scope.name,
            }
            if "tools" in a:
                attributes["promptcast.tools"] = list(a["tools"])
            self._open(scope, f"invoke_agent {scope.name}", internal, attributes)
        elif scope.kind == "tool":
            attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": str(a.get("tool", "")),
                "gen_ai.tool.type": "function",
                "promptcast.function": scope.name,
            }
            if self.capture_content and "arguments" in a:
                attributes["gen_ai.tool.call.arguments"] = _json(a["arguments"])
            self._open(scope, f"execute_tool {a.get('tool', '')}", internal, attributes)
        elif scope.kind == "turn":
            index = int(a.get("index", 0))
            attributes = {"promptcast.function": scope.name, "promptcast.turn.index": index}
            self._open(scope, f"turn {index} {scope.name}", internal, attributes)
        elif scope.kind == "program":
            attributes = {
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": scope.name,
            }
            self._open(scope, f"invoke_workflow {scope.name}", internal, attributes)
        else:
            self._open(scope, f"{scope.kind} {scope.name}", internal, {})

    def scope_finished(self, scope: Scope) -> None:
        attributes: dict[str, Any] = {}
        if scope.kind == "tool" and self.capture_content and "observation" in scope.attributes:
            attributes["gen_ai.tool.call.result"] = str(scope.attributes["observation"])
        self._close(scope, scope.error, attributes)


def _provider(lm: Any) -> str | None:
    """`openai` for the built-in client (it speaks the OpenAI API), else what the LM says."""
    from .lm import OpenAIClient

    if isinstance(lm, OpenAIClient):
        return "openai"
    provider = getattr(lm, "provider", None)
    return provider if isinstance(provider, str) and provider else None


def _server(lm: Any) -> dict[str, Any]:
    base_url = getattr(lm, "base_url", None)
    if not isinstance(base_url, str):
        return {}
    import urllib.parse

    parts = urllib.parse.urlsplit(base_url)
    out: dict[str, Any] = {}
    if parts.hostname:
        out["server.address"] = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return out
    out["server.port"] = port
    return out


def _messages_json(messages: Any) -> str:
    return json.dumps(
        [
            {"role": m.get("role", ""), "parts": [{"type": "text", "content": m.get("content", "")}]}
            for m in messages
        ],
        ensure_ascii=False,
    )


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute values OpenTelemetry accepts: str, bool, int, float or homogeneous lists."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, bool, int, float)) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out
