"""The LM protocol and a standard-library client for OpenAI-compatible chat-completions endpoints.

Any object with a `complete(messages, **params)` method is an LM, so users can wrap their own SDK;
one that also has `async acomplete(...)` serves awaitable calls without a thread. The built-in
`OpenAIClient` needs nothing beyond the standard library: urllib (sync) or asyncio streams
(async), json, retries with exponential backoff and jitter on 429/5xx/connection faults,
honouring `Retry-After`.

Which LM a generated function uses is chosen per context, not by a global: `with using(lm): ...`
(a ContextVar, so threads and asyncio tasks do not see each other's choice); without one, a
client is built from the environment (`PROMPTCAST_BASE_URL`, `PROMPTCAST_MODEL`,
`PROMPTCAST_API_KEY` or `OPENAI_API_KEY`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

from .errors import LMError

Message = dict[str, str]

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_LOCAL_PARAMS = {"rollout"}
"""Parameters that distinguish samples for caching but are not sent to the provider."""


class Completion(NamedTuple):
    """What an LM returned: the text, and token usage when the provider reports it."""

    text: str
    usage: Mapping[str, int] = MappingProxyType({})
    model: str = ""


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
    attempts that may succeed later (429, 408, 409, 5xx, connection faults, timeouts, a body
    that is not a completion) are retried up to `max_retries` times with exponential backoff
    and jitter, or after the server's `Retry-After`, capped at `max_backoff`.
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
        """Build a client from PROMPTCAST_* environment variables (arguments override them)."""
        model = overrides.pop("model", None) or os.environ.get("PROMPTCAST_MODEL")
        if not model:
            raise LMError(
                "no LM configured: pass one with promptcast_runtime.using(lm), "
                "or set PROMPTCAST_MODEL (and PROMPTCAST_BASE_URL for a non-OpenAI endpoint)"
            )
        base_url = (
            overrides.pop("base_url", None)
            or os.environ.get("PROMPTCAST_BASE_URL")
            or "https://api.openai.com/v1"
        )
        api_key = (
            overrides.pop("api_key", None)
            or os.environ.get("PROMPTCAST_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
        )
        return cls(model, base_url, api_key, **overrides)

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        data = self._request_body(messages, params)
        attempt = 0
        while True:
            try:
                return self._parse(self._post(data))
            except _Retryable as exc:
                attempt += 1
                time.sleep(self._delay_or_give_up(attempt, exc))

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        """`complete` as a coroutine on the caller's event loop: no thread per call.

        The same request body, retries and errors as `complete`; only the transport differs
        (`aio.post`, asyncio streams).
        """
        import asyncio

        data = self._request_body(messages, params)
        attempt = 0
        while True:
            try:
                return self._parse(await self._apost(data))
            except _Retryable as exc:
                attempt += 1
                await asyncio.sleep(self._delay_or_give_up(attempt, exc))

    def _request_body(self, messages: Sequence[Message], params: Mapping[str, Any]) -> bytes:
        body = {"model": self.model, "messages": list(messages)}
        body.update({k: v for k, v in params.items() if k not in _LOCAL_PARAMS})
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

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _http_error(self, status: int, detail: str, headers: Any) -> Exception:
        """The exception for an HTTP error status: retryable, or a final LMError."""
        if status in _RETRY_STATUS:
            return _Retryable(f"HTTP {status}: {detail}", _retry_after(headers))
        return LMError(self._redact(f"{self.base_url}: HTTP {status}: {detail}"))

    async def _apost(self, data: bytes) -> bytes:
        import asyncio

        from . import aio

        url = f"{self.base_url}/chat/completions"
        try:
            response = await aio.post(url, data, self._headers(), self.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise _Retryable(
                f"TimeoutError: no complete response in {self.timeout:g}s", None
            ) from None
        except (OSError, ValueError) as exc:  # ConnectionError is an OSError
            raise _Retryable(f"{type(exc).__name__}: {exc}", None) from None
        if response.status >= 400:
            detail = response.body[:300].decode("utf-8", "replace")
            raise self._http_error(response.status, detail, response) from None
        return response.body

    def _redact(self, message: str) -> str:
        """Error text never shows the API key, even where a server echoes it back."""
        return message.replace(self._api_key, "***") if self._api_key else message

    def _post(self, data: bytes) -> bytes:
        import http.client
        import urllib.error
        import urllib.request

        try:
            request = urllib.request.Request(
                f"{self.base_url}/chat/completions",
                data=data,
                headers=self._headers(),
                method="POST",
            )
        except ValueError as exc:  # e.g. a base URL without http:// or https://
            raise LMError(f"{self.base_url}: not a usable endpoint URL: {exc}") from None
        deadline = time.monotonic() + self.timeout
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                chunks = []
                while chunk := response.read1(65536):
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"response not complete after {self.timeout:g}s")
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace")
            raise self._http_error(exc.code, detail, exc.headers) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retryable(f"{type(exc).__name__}: {reason}", None) from None
        except (OSError, http.client.HTTPException) as exc:  # e.g. IncompleteRead
            raise _Retryable(f"{type(exc).__name__}: {exc}", None) from None

    def _parse(self, payload: bytes) -> Completion:
        import json

        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable(f"response is not JSON: {payload[:100]!r}", None) from None
        try:
            text = body["choices"][0]["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
        except (KeyError, IndexError, TypeError):
            raise _Retryable(f"response has no completion text: {str(body)[:200]}", None) from None
        usage = body.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        return Completion(
            text=text,
            usage={
                k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)
            },
            model=str(body.get("model") or self.model),
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        import random

        return random.uniform(ceiling / 2, ceiling)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if seconds == seconds else None  # not NaN
    except ValueError:
        pass
    import email.utils

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):  # not a date either: ignore the header
        return None
    return max(0.0, parsed.timestamp() - time.time())


_current: ContextVar[LM | None] = ContextVar("promptcast_runtime_lm", default=None)


class using:  # noqa: N801 - reads as a function: `with using(lm): ...`
    """Make `lm` the LM of compiled functions called in this context (thread/task local)."""

    __slots__ = ("lm", "_token")

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
