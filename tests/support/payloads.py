"""Request reading and OpenAI-shaped response bodies for the fake server.

Why separate from the server: these are pure functions of the request, easy to test and to
reuse (e.g. a benchmark's scripted responder can call :func:`last_user_message`). The shapes
follow the OpenAI chat-completions API closely enough for litellm, the ``openai`` client and
promptcast's runtime client; ``created`` is fixed at 0 and ids are numbered so responses are
deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Responder = Callable[[dict[str, Any]], Any]
"""Maps a chat-completions request body to the assistant's answer: its text, or a `reply(...)`
message (text and native `tool_calls`); raising `ErrorReply` answers with an HTTP error."""


class ErrorReply(Exception):  # noqa: N818 -- an answer, like an HTTP status
    """Raised by a responder: the server answers with this HTTP status and message (e.g. a
    server that rejects `response_format` json_schema with 500, as llama.cpp's does)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def tool_call(name: str, arguments: Any, call_id: str = "call_0") -> dict[str, Any]:
    """One OpenAI `tool_calls` entry; `arguments` as given if a str (bad JSON on purpose),
    else serialised."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def reply(
    content: str | None = None, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An assistant message a responder returns instead of text: content and/or tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one message; content may be a string or a list of OpenAI content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type", "text") == "text"
        )
    return ""


def last_user_message(request: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message, or "" when there is none."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return ""


def count_tokens(text: str) -> int:
    """Whitespace tokens: crude, deterministic, and enough for usage accounting in tests."""
    return len(text.split())


def echo(request: dict[str, Any]) -> str:
    """The default answer: the last user message, unchanged."""
    return last_user_message(request)


class TableResponder:
    """Answers from a table keyed by the last user message (stripped); otherwise a fallback.

    A ``"*"`` key in the table is the fallback answer; without it the fallback echoes.
    """

    def __init__(self, answers: Mapping[str, str], fallback: Responder = echo) -> None:
        self.answers = {key.strip(): value for key, value in answers.items()}
        self.fallback = fallback

    def __call__(self, request: dict[str, Any]) -> Any:
        key = last_user_message(request).strip()
        if key in self.answers:
            return self.answers[key]
        if "*" in self.answers:
            return self.answers["*"]
        return self.fallback(request)


def completion(request: Mapping[str, Any], answer: Any, number: int, model: str) -> dict[str, Any]:
    """A chat-completion body; ``n`` choices all carry the same answer (text, or a `reply`
    message: its tool calls make the finish reason "tool_calls")."""
    message = (
        dict(answer) if isinstance(answer, Mapping) else {"role": "assistant", "content": answer}
    )
    text = message.get("content") or ""
    prompt_tokens = sum(
        count_tokens(message_text(m))
        for m in request.get("messages") or []
        if isinstance(m, Mapping)
    )
    n = request.get("n") or 1
    n = n if isinstance(n, int) and 1 <= n <= 128 else 1
    completion_tokens = count_tokens(text) * n
    reason = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": str(request.get("model") or model),
        "choices": [
            {
                "index": i,
                "message": message,
                "logprobs": None,
                "finish_reason": reason,
            }
            for i in range(n)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def models_list(model: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "promptcast-tests"}],
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-style error object."""
    kind = {
        400: "invalid_request_error",
        404: "not_found_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
