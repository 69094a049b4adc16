"""Streamed answers of the fake OpenAI server: server-sent events with controllable timing and
faults (`"stream": true` requests).

Why its own module: the server's routing stays as it was (one branch), and a streaming test
reads here exactly what the wire carries: a role event, the answer cut into content events of
`chunk_chars` characters (or the pieces `split` returns), a finish event, a usage event when
the request asks for it (`stream_options.include_usage`), then `data: [DONE]`. `delay_s` is
slept before each content event; `fault` breaks the stream after `fault_after` content events:

- ``reset``: the connection is cut (TCP RST), mid-body;
- ``close``: the body ends cleanly, with no finish event and no ``[DONE]``;
- ``malformed``: an event whose data is not JSON;
- ``error_event``: an OpenAI-style ``{"error": {...}}`` event, then the end of the body;
- ``done_early``: ``data: [DONE]`` with no finish event before it (what llama-cpp-python's
  server sends when it interrupts a stream because another request is waiting).

The body is sent with chunked transfer encoding (``framing="chunked"``, as llama.cpp's server
does) or delimited by closing the connection (``"close"``). When the client goes away, the
next write fails; the server counts it (``stream_aborted``) and records how many content
events it had sent (``stream_log``).
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .payloads import count_tokens, message_text

FAULTS = ("reset", "close", "malformed", "error_event", "done_early")


@dataclass(frozen=True)
class StreamPlan:
    """How the fake server streams one answer."""

    chunk_chars: int = 4
    delay_s: float = 0.0
    fault: str | None = None
    fault_after: int = 1
    finish_reason: str = "stop"
    framing: str = "chunked"
    split: Callable[[str], list[str]] | None = None

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown stream fault {self.fault!r}; known: {FAULTS}")
        if self.framing not in ("chunked", "close"):
            raise ValueError(f"framing must be 'chunked' or 'close', not {self.framing!r}")

    def pieces(self, answer: str) -> list[str]:
        if self.split is not None:
            return [p for p in self.split(answer) if p]
        size = max(1, self.chunk_chars)
        return [answer[i : i + size] for i in range(0, len(answer), size)]


class _Gone(Exception):
    """The client closed the connection (a write failed)."""


def chunk_event(number: int, model: str, delta: Mapping[str, Any], finish: str | None) -> bytes:
    body = {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def usage_event(number: int, model: str, request: Mapping[str, Any], answer: str) -> bytes:
    prompt = sum(
        count_tokens(message_text(m))
        for m in request.get("messages") or []
        if isinstance(m, Mapping)
    )
    completion = count_tokens(answer)
    body = {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def serve_stream(
    handler: Any,
    request: Mapping[str, Any],
    answer: str,
    number: int,
    model: str,
    plan: StreamPlan,
    sleep: Callable[[float], bool],
) -> tuple[int, bool]:
    """Stream `answer` on `handler` (a BaseHTTPRequestHandler) as `plan` says.

    Returns (content events sent, whether the client went away before the end)."""
    model = str(request.get("model") or model)
    sent = 0
    chunked = plan.framing == "chunked"

    def write(data: bytes) -> None:
        try:
            if chunked:
                handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                handler.wfile.write(data)
            handler.wfile.flush()
        except OSError:
            raise _Gone from None

    def end() -> None:
        if chunked:
            try:
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()
            except OSError:
                raise _Gone from None

    try:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-store")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        write(chunk_event(number, model, {"role": "assistant"}, None))
        for piece in plan.pieces(answer):
            if plan.fault is not None and sent >= plan.fault_after:
                return sent, _fault(handler, plan.fault, write, end)
            if not sleep(plan.delay_s):
                return sent, False
            write(chunk_event(number, model, {"content": piece}, None))
            sent += 1
        if plan.fault is not None:
            return sent, _fault(handler, plan.fault, write, end)
        write(chunk_event(number, model, {}, plan.finish_reason))
        options = request.get("stream_options")
        if isinstance(options, Mapping) and options.get("include_usage"):
            write(usage_event(number, model, request, answer))
        write(b"data: [DONE]\n\n")
        end()
    except _Gone:
        handler.close_connection = True
        return sent, True
    if not chunked:
        handler.close_connection = True
    return sent, False


def _fault(
    handler: Any, fault: str, write: Callable[[bytes], None], end: Callable[[], None]
) -> bool:
    handler.close_connection = True
    if fault == "reset":
        try:
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
        except OSError:
            pass
        return False
    if fault == "malformed":
        write(b"data: {not json\n\n")
    elif fault == "error_event":
        write(b'data: {"error":{"message":"injected stream fault","type":"server_error"}}\n\n')
    elif fault == "done_early":
        write(b"data: [DONE]\n\n")
    end()
    return False
