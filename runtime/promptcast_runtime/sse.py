"""Streamed chat completions over server-sent events: the built-in client's `stream`/`astream`.

The request is the non-streaming call's body plus `"stream": true` and `"stream_options":
{"include_usage": true}` (servers that do not know the option ignore it; OpenAI then reports
the usage in a last chunk). The answer is a `text/event-stream` of `data: {chunk}` events
ending with `data: [DONE]`; each chunk's `choices[0].delta.content` is the next piece of text.

Faults follow one rule: before the first piece of content arrived, a fault is what it is for a
plain call (a 429/5xx, a reset, a timeout, a malformed event: retried with the client's
backoff); after it, nothing is retried -- the caller has seen part of an answer that a second
request could contradict -- and the stream raises `StreamError` carrying the text so far.
A reply that is one JSON completion (a proxy that does not stream) is read whole.

This module is the protocol (events, chunks, what one attempt received); `lm.OpenAIClient`'s
`stream` / `astream` own the transport (urllib; asyncio streams, `aio.open_stream`) and the
retries, as `complete` does. Closing the iterator (`break`, `.close()`, `aclose()`) closes
the connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

STREAM_PARAMS: Mapping[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
"""What a streamed request adds to the body the same call sends without streaming."""

_READ_BYTES = 65536


class Delta(NamedTuple):
    """One event of a stream: its text, and (when it carries them) why the model stopped,
    token usage and the model's name."""

    text: str
    finish_reason: str = ""
    usage: Mapping[str, int] | None = None
    model: str = ""


class SSEDecoder:
    """Bytes of an event stream -> the `data` of each complete event, in order.

    Lines end with LF, CRLF or CR; an event ends at a blank line; several `data:` lines of one
    event join with LF; comments (`:`) and other fields are skipped. Bytes of a line that has
    not ended yet wait for the next `feed`, so a multi-byte character split across two network
    reads decodes whole.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        events: list[str] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return events
            end, after = cut
            line = self._buffer[:end].decode("utf-8")
            self._buffer = self._buffer[after:]
            self._line(line, events)

    def close(self) -> list[str]:
        """The events still pending at the end of the stream (a last line without its end)."""
        events: list[str] = []
        if self._buffer:
            self._line(self._buffer.decode("utf-8"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """(end of the first line, start of the next) in `buffer`, or None if no line ended yet.
    A CR at the very end may be half of a CRLF: it waits."""
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr < 0 or (0 <= lf < cr):
        return None if lf < 0 else (lf, lf + 1)
    if cr + 1 == len(buffer):
        return None
    return (cr, cr + 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, cr + 1)


def read_event(data: str) -> Delta | None:
    """One event's `data` -> its Delta; None for `[DONE]`. ValueError (TypeError for a wrong
    shape) for an event that is not a chunk, naming what the server said for an error event."""
    if data.strip() == "[DONE]":
        return None
    try:
        body = json.loads(data)
    except ValueError:
        raise ValueError(f"malformed event (not JSON): {data[:120]!r}") from None
    if not isinstance(body, Mapping):
        raise TypeError(f"malformed event (not an object): {data[:120]!r}")
    if "error" in body:
        error = body["error"]
        message = error.get("message") if isinstance(error, Mapping) else error
        raise ValueError(f"the server sent an error event: {str(message)[:300]}")
    usage = body.get("usage")
    counts = (
        {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
        if isinstance(usage, Mapping)
        else None
    )
    model = body.get("model")
    choices = body.get("choices")
    if not choices:  # the usage chunk of `include_usage`
        return Delta("", "", counts, model if isinstance(model, str) else "")
    choice = choices[0] if isinstance(choices, list) else None
    if not isinstance(choice, Mapping):
        raise TypeError(f"malformed event (no choice): {data[:120]!r}")
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, Mapping) else None
    if text is not None and not isinstance(text, str):
        raise TypeError(f"malformed event (content is {type(text).__name__})")
    reason = choice.get("finish_reason")
    return Delta(
        text or "",
        reason if isinstance(reason, str) else "",
        counts,
        model if isinstance(model, str) else "",
    )


class StreamFault(Exception):
    """Something broke one attempt of a stream; `reason` says what (the client decides whether
    to retry: only while `Assembly.received` is False)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Assembly:
    """What one attempt of a stream received: the text so far and the completion's metadata."""

    __slots__ = ("ended", "finish_reason", "model", "parts", "usage", "whole")

    def __init__(self, model: str) -> None:
        self.parts: list[str] = []
        self.finish_reason = ""
        self.usage: Mapping[str, int] = {}
        self.model = model
        self.ended = False
        self.whole = False  # the reply was one JSON completion, not a stream

    @property
    def received(self) -> bool:
        """Whether any content arrived (after that, a fault is never retried)."""
        return bool(self.parts)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def events(self, payloads: list[str]) -> Iterator[str]:
        """The text pieces of these events' data, in order; StreamFault for a bad event."""
        for payload in payloads:
            try:
                delta = read_event(payload)
            except (TypeError, ValueError) as exc:
                raise StreamFault(str(exc)) from None
            if delta is None:
                self.ended = True
                return
            if delta.finish_reason:
                self.finish_reason = delta.finish_reason
            if delta.usage:
                self.usage = delta.usage
            if delta.model:
                self.model = delta.model
            if delta.text:
                self.parts.append(delta.text)
                yield delta.text

    def finish(self) -> None:
        """StreamFault unless the stream ended as a whole one ends: with a finish reason.

        OpenAI and llama.cpp send one on the last chunk of every completed stream. A stream
        without it was cut short: the body ended early, or the server stopped it and sent
        `[DONE]` anyway (llama-cpp-python's server does that to a stream when another request
        is waiting, its default `interrupt_requests`). Taking the text as whole would parse an
        unfinished answer as if it were complete.
        """
        if self.whole or self.finish_reason:
            return
        if self.ended:
            raise StreamFault("the stream ended ([DONE]) without a finish reason: it was cut short")
        raise StreamFault("the stream ended before its last event ([DONE])")


def is_event_stream(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "text/event-stream"
