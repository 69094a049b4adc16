"""The LM protocol and a standard-library client for OpenAI-compatible chat-completions endpoints.

Any object with a `complete(messages, **params)` method is an LM, so users can wrap their own SDK;
one that also has `async acomplete(...)` serves awaitable calls without a thread. The built-in
`OpenAIClient` needs nothing beyond the standard library: urllib (sync) or asyncio streams
(async), json, retries with exponential backoff and jitter on 429/5xx/connection faults,
honouring `Retry-After`.

Which LM a generated function uses is chosen per context, not by a global: `with using(lm): ...`
(a ContextVar, so threads and asyncio tasks do not see each other's choice); without one, a
client is built from the environment (`PROMPTCAST_BASE_URL`, `PROMPTCAST_MODEL`,
`PROMPTCAST_API_KEY` or `OPENAI_API_KEY`). Asyncio tasks inherit the choice; a thread does not
(Python starts every thread with an empty context), so work handed to a thread pool inside a
`using` block goes through `propagate(fn)`.

This module is also the one home of what the compile-time engine shares with shipped code:
which statuses are retried (`RETRY_STATUS`), how long to wait (`retry_after`, `backoff_delay`),
how a refused connection is told apart (`is_connection_refused`), how a model spelled the
compiler's way reaches an OpenAI-compatible endpoint (`wire_model`), and how secrets are kept
out of error texts (`check_api_key`, `redact`).
"""

from __future__ import annotations

import contextvars
import errno
import functools
import math
import os
import re
import time
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, NamedTuple, ParamSpec, Protocol, TypeVar, runtime_checkable

from . import hooks as _hooks
from .errors import LMError, StreamError
from .limits import Permit, RateLimiter, current_limiter, estimate_tokens

Message = dict[str, Any]
"""One chat message: `role` and `content` (text; an assistant turn of the tools protocol may
also hold `tool_calls`, a tool result `tool_call_id`)."""

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt; any other error status fails at once."""

LOCAL_PARAMS = frozenset({"rollout"})
"""Parameters that distinguish samples for caching but are not sent to the provider."""

_ERROR_READ_BYTES = 65536
"""How much of an error body is read: all of it is redacted before it is cut for a message."""

_DETAIL_CHARS = 300
"""How much of a (redacted) error body an error message shows."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


class ToolCall(NamedTuple):
    """One native tool call the model asked for: the provider's id for it (the `tool_call_id`
    its result message must carry), the function's name, and its arguments exactly as sent (a
    JSON text the runtime parses, and reports back to the model when it does not parse)."""

    id: str
    name: str
    arguments: str


class Completion(NamedTuple):
    """What an LM returned: the text, token usage when the provider reports it, and why the
    model stopped (`finish_reason`: "stop", "length" when the token limit cut it off, ...; ""
    when unknown). A step never parses a "length" completion as if it were whole.

    `tool_calls` are the native tool calls of a reply to a request with `tools` (empty
    otherwise; defaulted last, so a `Completion(text)` written before it still works)."""

    text: str
    usage: Mapping[str, int] = MappingProxyType({})
    model: str = ""
    finish_reason: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@runtime_checkable
class LM(Protocol):
    """Anything that turns chat messages into a completion (a `Completion` or plain `str`)."""

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion | str: ...


def as_completion(result: Completion | str) -> Completion:
    """Accept user LMs that return plain strings."""
    if isinstance(result, Completion):
        return result
    if isinstance(result, str):
        return Completion(text=result)
    raise LMError(f"an LM must return a Completion or str, got {type(result).__name__}")


def wire_model(model: str) -> str:
    """The model name an OpenAI-compatible endpoint receives for `model` spelled the compiler's
    way: one leading `openai/` (litellm's provider prefix) is dropped, as litellm drops it.

    `--model openai/qwen0.5b` at build time sends `qwen0.5b`; so does `PROMPTCAST_MODEL=
    openai/qwen0.5b` in production, the spelling the lock and the generated header record.
    A served name that itself starts with `openai/` is spelled `openai/openai/<name>`.
    """
    return model.removeprefix("openai/")


def check_api_key(key: str, source: str = "the API key") -> None:
    """Raise LMError unless `key` can be sent as a bearer token (printable ASCII, no spaces).

    A key read from a file often ends in a newline; one pasted from a document may hold a
    non-breaking space. Either would crash the HTTP layer with the whole key in the error text
    (sync) or break the request's header block (async). The error names `source` and the
    offending position, never the key.
    """
    for position, char in enumerate(key):
        if not "!" <= char <= "~":
            if char in "\r\n":
                kind = "a line break"
            elif char.isspace():
                kind = "whitespace"
            elif ord(char) < 0x80:
                kind = "a control character"
            else:
                kind = "a non-ASCII character"
            raise LMError(
                f"{source} holds {kind} at position {position + 1} of {len(key)}: an API key is "
                "printable ASCII with no spaces (strip the newline or whitespace around it)"
            )


_SECRET_PATTERNS = (
    (r"(?i)\b(bearer)\s+[^\s\"',;]+", r"\1 ***"),
    (r"\bsk-[A-Za-z0-9_\-]{6,}", "sk-***"),
)
"""What a secret looks like where its value is unknown: a bearer token, an `sk-...` key."""


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every occurrence of each secret (and of anything that looks like one: a
    `Bearer <token>`, an `sk-...` key) replaced by `***`.

    Redact the whole text first, then cut it for a message: a cut made first can leave most of
    a key that straddles the cut in plain sight.
    """
    for secret in secrets:
        if not secret:
            continue
        forms = {secret} | {f for f in (secret.strip(), repr(secret)[1:-1]) if len(f) >= 4}
        for form in sorted(forms, key=len, reverse=True):  # longest first: no half-replaced key
            text = text.replace(form, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = re.sub(pattern, replacement, text)
    return text


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), else None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
        return None if math.isnan(seconds) else max(0.0, seconds)
    except ValueError:
        pass
    import email.utils

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):  # not a date either: ignore the header
        return None
    return max(0.0, parsed.timestamp() - time.time())


def backoff_delay(
    attempt: int, retry_after: float | None, *, backoff: float, max_backoff: float
) -> float:
    """Seconds before retry `attempt` (1-based): the server's Retry-After where it gave one,
    else exponential backoff (`backoff * 2**(attempt-1)`) with jitter in its upper half; both
    capped at `max_backoff`."""
    if retry_after is not None:
        return min(retry_after, max_backoff)
    ceiling = min(max_backoff, backoff * 2 ** (attempt - 1))
    import random

    return random.uniform(ceiling / 2, ceiling)


_NOTHING_LISTENS = frozenset({errno.ECONNREFUSED, errno.EADDRNOTAVAIL, errno.ENETUNREACH})
"""Per-address outcomes that, beside at least one refusal, mean no server at all (e.g. `::1`
unusable in a container without IPv6, 127.0.0.1 refused)."""


def is_connection_refused(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it was raised from) is a refused TCP connection.

    A refusal means nothing listens at that address: retrying it for half a minute only delays
    the error. asyncio reports the refusals of several addresses (`localhost` is ::1 and
    127.0.0.1) as one OSError that lists them.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConnectionRefusedError):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
            return True
        text = str(exc)
        if isinstance(exc, OSError) and text.startswith("Multiple exceptions: "):
            codes = {int(code) for code in re.findall(r"\[Errno (\d+)\]", text)}
            if errno.ECONNREFUSED in codes and codes <= _NOTHING_LISTENS:
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def refused_error(url: str) -> LMError:
    """The LMError for a refused connection: which URL, and that nothing seems to listen."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    where = parts.netloc.rpartition("@")[2] or url
    return LMError(
        f"{url}: connection refused: no server seems to listen at {where} "
        "(start it, or check the base URL / --api-base)"
    )


def propagate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """`fn` bound to the caller's context: wherever it later runs (a worker thread), it sees
    the LM chosen with `using` (and every other context variable) as it is *now*.

    Python starts each thread with an empty context, so a compiled function submitted to a
    `ThreadPoolExecutor` inside `with using(lm):` would not see `lm`::

        with using(lm), ThreadPoolExecutor() as pool:
            answers = list(pool.map(propagate(classify), questions))

    Each call runs in its own copy of the captured context, so concurrent calls from several
    threads are safe and a `using` inside one call does not leak into another.
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return context.copy().run(fn, *args, **kwargs)

    return run


async def complete_async(lm: LM, messages: Sequence[Message], **params: Any) -> Completion:
    """One call from a coroutine: `lm.acomplete` where the LM has it (the built-in client does),
    else `lm.complete` in a worker thread, so a user's sync-only LM still works under asyncio."""
    native = getattr(lm, "acomplete", None)
    if native is not None:
        return as_completion(await native(messages, **params))
    import asyncio

    return as_completion(await asyncio.to_thread(lm.complete, messages, **params))


class OpenAIClient:
    """A chat-completions client over urllib for any OpenAI-compatible endpoint.

    Thread-safe: it holds only immutable configuration; each call opens its own connection.
    `timeout` bounds each attempt: every socket wait, and the whole response body (a server
    that drips bytes slowly is cut off once the attempt is `timeout` seconds old). Failed
    attempts that may succeed later (429, 408, 409, 5xx, a reset or dropped connection,
    timeouts, a body that is not a completion) are retried up to `max_retries` times with
    exponential backoff and jitter, or after the server's `Retry-After`, capped at
    `max_backoff`. A refused connection is not retried: nothing listens there.

    `model` is sent as given (the name the endpoint knows); `from_env` reads the compiler's
    spelling and converts it with `wire_model`. The API key is checked at construction
    (`check_api_key`) and never appears in a repr or an error text. Redirects are never
    followed: a 3xx is an LMError naming where it points, so the key never reaches another
    origin (and a POST is never silently turned into a GET).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        import urllib.parse

        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if api_key:
            check_api_key(api_key)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIClient(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_env(cls, **overrides: Any) -> OpenAIClient:
        """Build a client from PROMPTCAST_* environment variables (arguments override them).

        The model is spelled as at build time (`--model`, the lock, the generated header:
        `openai/qwen0.5b`) and sent as `wire_model` makes it (`qwen0.5b`), exactly the name
        `optimize` sent.
        """
        model = overrides.pop("model", None) or os.environ.get("PROMPTCAST_MODEL")
        if not model:
            raise LMError(
                "no LM configured: pass one with promptcast_runtime.using(lm), "
                "or set PROMPTCAST_MODEL (and PROMPTCAST_BASE_URL for a non-OpenAI endpoint); "
                "in a thread started inside `using(lm)`, run the work through "
                "promptcast_runtime.lm.propagate(fn): threads do not inherit `using`"
            )
        base_url = (
            overrides.pop("base_url", None)
            or os.environ.get("PROMPTCAST_BASE_URL")
            or "https://api.openai.com/v1"
        )
        api_key, source = overrides.pop("api_key", None), "the api_key argument"
        for name in ("PROMPTCAST_API_KEY", "OPENAI_API_KEY"):
            if not api_key:
                api_key, source = os.environ.get(name), name
        if api_key:
            check_api_key(api_key, source)
        return cls(wire_model(model), base_url, api_key, **overrides)

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        data = self._request_body(messages, params)
        limiter = current_limiter()  # `limits.limited(...)`: shared rate limits and 429 pause
        tokens = estimate_tokens(messages, params) if limiter is not None else 0
        attempt = 0
        while True:
            permit = limiter.acquire_blocking(tokens) if limiter is not None else None
            try:
                return _settled(limiter, permit, self._parse(self._post(data)))
            except _Retryable as exc:
                attempt += 1
                delay = self._delay_or_give_up(attempt, exc)
                if _hooks.ACTIVE:
                    _hooks.note_retry(exc.reason)
                if limiter is None or not _throttle(limiter, exc):
                    time.sleep(delay)

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        """`complete` as a coroutine on the caller's event loop: no thread per call.

        The same request body, retries and errors as `complete`; only the transport differs
        (`aio.post`, asyncio streams).
        """
        import asyncio

        data = self._request_body(messages, params)
        limiter = current_limiter()
        tokens = estimate_tokens(messages, params) if limiter is not None else 0
        attempt = 0
        while True:
            permit = await limiter.acquire(tokens) if limiter is not None else None
            try:
                return _settled(limiter, permit, self._parse(await self._apost(data)))
            except _Retryable as exc:
                attempt += 1
                delay = self._delay_or_give_up(attempt, exc)
                if _hooks.ACTIVE:
                    _hooks.note_retry(exc.reason)
                if limiter is None or not _throttle(limiter, exc):
                    await asyncio.sleep(delay)

    def stream(self, messages: Sequence[Message], **params: Any) -> Iterator[Completion]:
        """`complete`, streamed (server-sent events, `sse.py`): `Completion`s whose text is
        each piece as it arrives, then one with no text that carries the usage, model and
        finish reason.

        The request body is `complete`'s plus `stream` (`sse.STREAM_PARAMS`). Faults before the
        first piece are retried as `complete` retries them; after it, `StreamError` (an
        LMError) carries the text so far. Closing the iterator closes the connection; each
        read waits at most `timeout` seconds (a stream as a whole may take longer).
        """
        from . import sse

        data = self._request_body(messages, {**params, **sse.STREAM_PARAMS})
        limiter = current_limiter()
        tokens = estimate_tokens(messages, params) if limiter is not None else 0
        attempt = 0
        while True:
            permit = limiter.acquire_blocking(tokens) if limiter is not None else None
            got = sse.Assembly(self.model)
            try:
                try:
                    for piece in self._stream_attempt(data, got):
                        yield Completion(piece)
                    got.finish()
                except sse.StreamFault as fault:
                    raise self._stream_fault(fault.reason, got) from None
                last = Completion("", dict(got.usage), got.model, got.finish_reason)
                yield _settled(limiter, permit, last)
                return
            except _Retryable as exc:
                attempt += 1
                delay = self._delay_or_give_up(attempt, exc)
                if _hooks.ACTIVE:
                    _hooks.note_retry(exc.reason)
                if limiter is None or not _throttle(limiter, exc):
                    time.sleep(delay)

    async def astream(
        self, messages: Sequence[Message], **params: Any
    ) -> AsyncIterator[Completion]:
        """`stream` as an async iterator on the caller's event loop (`aio.open_stream`)."""
        import asyncio

        from . import sse

        data = self._request_body(messages, {**params, **sse.STREAM_PARAMS})
        limiter = current_limiter()
        tokens = estimate_tokens(messages, params) if limiter is not None else 0
        attempt = 0
        while True:
            permit = await limiter.acquire(tokens) if limiter is not None else None
            got = sse.Assembly(self.model)
            try:
                try:
                    async for piece in self._astream_attempt(data, got):
                        yield Completion(piece)
                    got.finish()
                except sse.StreamFault as fault:
                    raise self._stream_fault(fault.reason, got) from None
                last = Completion("", dict(got.usage), got.model, got.finish_reason)
                yield _settled(limiter, permit, last)
                return
            except _Retryable as exc:
                attempt += 1
                delay = self._delay_or_give_up(attempt, exc)
                if _hooks.ACTIVE:
                    _hooks.note_retry(exc.reason)
                if limiter is None or not _throttle(limiter, exc):
                    await asyncio.sleep(delay)

    def _stream_fault(self, reason: str, got: Any) -> Exception:
        """A stream's fault: retryable before content arrived, else StreamError."""
        if not got.received:
            return _Retryable(self._redact(reason), None)
        text = got.text
        where = f"{self.base_url}: the stream broke off after {len(text)} characters"
        return StreamError(self._redact(f"{where}: {reason}"), text=text)

    def _stream_attempt(self, data: bytes, got: Any) -> Iterator[str]:
        """One streamed request over urllib: its text pieces (StreamFault, _Retryable)."""
        import http.client

        from . import sse

        response = self._open(data, {"Accept": "text/event-stream"})
        with response:  # closed on every way out: the end, a fault, the caller's close()
            if not sse.is_event_stream(response.headers.get("Content-Type")):
                yield from self._whole(response.read(), got)
                return
            decoder = sse.SSEDecoder()
            while True:
                try:
                    chunk = response.read1(65536)
                except (OSError, http.client.HTTPException) as exc:  # resets, timeouts, cuts
                    raise sse.StreamFault(f"{type(exc).__name__}: {exc}") from None
                try:
                    payloads = decoder.feed(chunk) if chunk else decoder.close()
                except UnicodeDecodeError:
                    raise sse.StreamFault("malformed event (not UTF-8)") from None
                yield from got.events(payloads)
                if not chunk or got.ended:
                    return

    async def _astream_attempt(self, data: bytes, got: Any) -> AsyncIterator[str]:
        """One streamed request over asyncio streams (`aio.open_stream`)."""
        import asyncio

        from . import aio, sse

        url = f"{self.base_url}/chat/completions"
        headers = {**self._headers(), "Accept": "text/event-stream"}
        try:
            response = await aio.open_stream(url, data, headers, self.timeout)
        except Exception as exc:
            if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
                raise _Retryable(f"TimeoutError: no response in {self.timeout:g}s", None) from None
            if not isinstance(exc, (OSError, ValueError)):
                raise
            if is_connection_refused(exc):
                raise refused_error(url) from None
            raise _Retryable(self._redact(f"{type(exc).__name__}: {exc}"), None) from None
        faults = (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError)
        try:
            if response.status >= 300 or not sse.is_event_stream(response.get("Content-Type")):
                try:
                    body = await response.read_body(self.timeout)
                except faults as exc:
                    raise sse.StreamFault(f"{type(exc).__name__}: {exc}") from None
                if response.status >= 300:
                    raise self._http_error(response.status, body, response) from None
                for piece in self._whole(body, got):
                    yield piece
                return
            decoder = sse.SSEDecoder()
            chunks = response.chunks(self.timeout)
            while True:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    chunk = b""
                except faults as exc:
                    raise sse.StreamFault(f"{type(exc).__name__}: {exc}") from None
                try:
                    payloads = decoder.feed(chunk) if chunk else decoder.close()
                except UnicodeDecodeError:
                    raise sse.StreamFault("malformed event (not UTF-8)") from None
                for piece in got.events(payloads):
                    yield piece
                if not chunk or got.ended:
                    return
        finally:
            await response.close()

    def _whole(self, body: bytes, got: Any) -> Iterator[str]:
        """A reply that is one JSON completion where a stream was asked for (a proxy that
        does not stream): read whole, as one piece."""
        whole = self._parse(body)
        got.finish_reason, got.model, got.ended = whole.finish_reason, whole.model, True
        got.whole = True
        got.usage = whole.usage
        if whole.text:
            got.parts.append(whole.text)
            yield whole.text

    def _request_body(self, messages: Sequence[Message], params: Mapping[str, Any]) -> bytes:
        body = {"model": self.model, "messages": list(messages)}
        body.update({k: v for k, v in params.items() if k not in LOCAL_PARAMS})
        import json  # here, not at module level: HTTP and JSON cost ~20 ms to import

        return json.dumps(body).encode("utf-8")

    def _delay_or_give_up(self, attempt: int, exc: _Retryable) -> float:
        """Seconds to wait before attempt `attempt + 1`; LMError once retries are spent."""
        if attempt > self.max_retries:
            tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
            raise LMError(
                self._redact(f"{self.base_url}: giving up after {tries}: {exc.reason}")
            ) from None
        return self._delay(attempt, exc.retry_after)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(
            attempt, retry_after, backoff=self.backoff, max_backoff=self.max_backoff
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _http_error(self, status: int, body: bytes, headers: Any) -> Exception:
        """The exception for an HTTP error status: retryable, or a final LMError.

        The body is redacted whole and only then cut, so a key the server echoes never shows.
        """
        detail = self._excerpt(body.decode("utf-8", "replace"), _DETAIL_CHARS)
        if 300 <= status < 400:
            location = headers.get("Location") if headers is not None else None
            where = self._excerpt(str(location), _DETAIL_CHARS) if location else "elsewhere"
            return LMError(
                f"{self.base_url}: HTTP {status}: the endpoint redirects to {where}; redirects "
                "are not followed (the API key must not leave this origin, and a POST must not "
                "become a GET): set the base URL to the address it points to"
            )
        if status in RETRY_STATUS:
            return _Retryable(f"HTTP {status}: {detail}", retry_after(headers), status)
        return LMError(self._redact(f"{self.base_url}: HTTP {status}: {detail}"))

    def _excerpt(self, text: str, limit: int) -> str:
        """At most `limit` characters of `text`, redacted before the cut."""
        return self._redact(text)[:limit]

    async def _apost(self, data: bytes) -> bytes:
        import asyncio

        from . import aio

        url = f"{self.base_url}/chat/completions"
        try:
            response = await aio.post(url, data, self._headers(), self.timeout)
        except Exception as exc:
            # asyncio.TimeoutError is the builtin TimeoutError only from Python 3.11 on (and
            # TimeoutError is an OSError), so timeouts are told apart first, by isinstance.
            if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
                raise _Retryable(
                    f"TimeoutError: no complete response in {self.timeout:g}s", None
                ) from None
            if not isinstance(exc, (OSError, ValueError)):  # ConnectionError is an OSError
                raise
            if is_connection_refused(exc):
                raise refused_error(url) from None
            raise _Retryable(self._redact(f"{type(exc).__name__}: {exc}"), None) from None
        if response.status >= 300:
            raise self._http_error(response.status, response.body, response) from None
        return response.body

    def _redact(self, message: str) -> str:
        """Error text never shows the API key, even where a server echoes it back."""
        return redact(message, [self._api_key])

    def _post(self, data: bytes) -> bytes:
        import http.client

        deadline = time.monotonic() + self.timeout
        response = self._open(data)
        try:
            with response:
                chunks = []
                while chunk := response.read1(65536):
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"response not complete after {self.timeout:g}s")
                return b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:  # resets, timeouts, IncompleteRead
            raise _Retryable(f"{type(exc).__name__}: {exc}", None) from None

    def _open(self, data: bytes, headers: Mapping[str, str] | None = None) -> Any:
        """POST `data` to the chat endpoint over urllib (no redirects): the open response, or
        the project's error for what went wrong before it (`_http_error`, a refused
        connection, `_Retryable` for a fault worth another attempt). `_post` reads it whole,
        `_stream_attempt` as server-sent events."""
        import http.client
        import urllib.error
        import urllib.request

        try:
            request = urllib.request.Request(
                f"{self.base_url}/chat/completions",
                data=data,
                headers={**self._headers(), **(headers or {})},
                method="POST",
            )
        except ValueError as exc:  # e.g. a base URL without http:// or https://
            raise LMError(f"{self.base_url}: not a usable endpoint URL: {exc}") from None
        opener = urllib.request.build_opener(_refusing_redirects())
        try:
            return opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, exc.read(_ERROR_READ_BYTES), exc.headers) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            if is_connection_refused(reason if isinstance(reason, BaseException) else exc):
                raise refused_error(request.full_url) from None
            raise _Retryable(f"{type(exc).__name__}: {reason}", None) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}", None) from None

    def _parse(self, payload: bytes) -> Completion:
        import json

        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            excerpt = self._excerpt(repr(payload[:_ERROR_READ_BYTES]), 100)
            raise _Retryable(f"response is not JSON: {excerpt}", None) from None
        try:
            message = body["choices"][0]["message"]
            text = message["content"] or ""
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
            calls = read_tool_calls(message.get("tool_calls"))
        except (KeyError, IndexError, TypeError, AttributeError):
            excerpt = self._excerpt(str(body), 200)
            raise _Retryable(f"response has no completion text: {excerpt}", None) from None
        usage = body.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        return Completion(
            text=text,
            usage={
                k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)
            },
            model=str(body.get("model") or self.model),
            finish_reason=_finish_reason(body["choices"][0]),
            tool_calls=calls,
        )


def read_tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """The `tool_calls` of an OpenAI assistant message (a list of `{"id", "type": "function",
    "function": {"name", "arguments"}}`; dicts or SDK objects alike), as `ToolCall`s.

    None or an empty list is no call. Arguments that are not a string (a provider that sends
    the object itself) are written back as JSON text, so parsing them is the caller's one step;
    a call without a function name is a TypeError (the response is not a usable completion).
    """
    if not raw:
        return ()
    calls = []
    for index, item in enumerate(raw):
        function = _member(item, "function")
        name = _member(function, "name") if function is not None else None
        if not isinstance(name, str) or not name:
            raise TypeError(f"tool call {index + 1} has no function name")
        arguments = _member(function, "arguments")
        if not isinstance(arguments, str):
            import json

            arguments = json.dumps(arguments if arguments is not None else {})
        call_id = _member(item, "id")
        calls.append(ToolCall(str(call_id) if call_id else f"call_{index}", name, arguments))
    return tuple(calls)


def _member(obj: Any, name: str) -> Any:
    """`obj[name]` of a dict, `obj.name` of an SDK object (litellm's), else None."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _finish_reason(choice: Any) -> str:
    reason = choice.get("finish_reason") if isinstance(choice, Mapping) else None
    return reason if isinstance(reason, str) else ""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


def _settled(limiter: RateLimiter | None, permit: Permit | None, done: Completion) -> Completion:
    """A success under a limiter: its real token usage settles the permit's estimate."""
    if limiter is not None and permit is not None:
        used = done.usage.get("prompt_tokens", 0) + done.usage.get("completion_tokens", 0)
        limiter.settle(permit, used or done.usage.get("total_tokens"))
        limiter.succeeded()
    return done


def _throttle(limiter: RateLimiter, exc: _Retryable) -> bool:
    """A 429 under a limiter pauses every call sharing it (the retry then waits for its slot
    in `acquire` instead of sleeping on its own): True. Any other retryable fault: False."""
    if exc.status != 429:
        return False
    limiter.throttled(exc.retry_after)
    return True


def _refusing_redirects() -> Any:
    """A urllib handler that never follows a redirect (it would carry the bearer key along).

    Built per call (urllib is imported lazily, and the runtime keeps no module-level objects
    beyond constants); urllib then raises HTTPError for the 3xx, which `_http_error` explains.
    """
    import urllib.request

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return RefuseRedirects()


_current: ContextVar[LM | None] = ContextVar("promptcast_runtime_lm", default=None)


def using(lm: LM) -> LMContext:
    """Make `lm` the LM of compiled functions called in this context (thread/task local).

    Asyncio tasks created inside the block inherit it (they copy the context). Threads do not:
    Python 3.11 starts each thread with an empty context and records nothing of the thread that
    started it, so the runtime cannot tell a pool thread that should have inherited `lm` from a
    thread that means to use the environment's LM, short of process-wide state or patching
    `threading` (both refused: principle 6). Hand such work over with `propagate(fn)`::

        with using(lm), ThreadPoolExecutor() as pool:
            list(pool.map(propagate(compiled_fn), inputs))

    (or `contextvars.copy_context().run`). Where no environment LM is configured either, the
    thread's call fails with an LMError that says so.
    """
    return LMContext(lm)


class LMContext:
    """What `using(lm)` returns: a context manager making `lm` the current LM."""

    __slots__ = ("_token", "lm")

    def __init__(self, lm: LM) -> None:
        if not callable(getattr(lm, "complete", None)):
            raise TypeError(f"{lm!r} is not an LM: it needs a complete(messages, **params) method")
        self.lm = lm
        self._token: Token[LM | None] | None = None

    def __enter__(self) -> LM:
        self._token = _current.set(self.lm)
        return self.lm

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def current_lm() -> LM:
    """The LM chosen with `using`, else a client configured from the environment."""
    lm = _current.get()
    return lm if lm is not None else OpenAIClient.from_env()
