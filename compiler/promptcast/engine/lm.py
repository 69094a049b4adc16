"""The compile-time LM: litellm behind the runtime's LM protocol, with the cache in front.

Why litellm here and only here: the compiler must talk to any provider (`openai/...`,
`anthropic/...`, a local OpenAI-compatible server via `api_base`), but shipped code and
`import promptcast` must not pay litellm's import cost (~1 s). So litellm is imported lazily on
the first paid call, and `LITELLM_LOCAL_MODEL_COST_MAP` is set first so that import never
reaches the network for its price table.

Order of a call: canonical key (model, endpoint, messages, params) -> cache hit (free, counted;
skipped with `refresh_cache=True` for entries this LM did not write) -> budget reserve (may raise
`BudgetExhausted`) -> `litellm.completion` -> store in cache at once -> record usage and cost.
Identical requests racing from several threads are collapsed into one paid call.

Retries are the engine's own, not litellm's: litellm's `num_retries` path needs `tenacity` (not a
dependency; without it every failure became "tenacity import failed") and retries without backoff,
and the provider SDK's own retries would multiply with ours. So litellm is called with
`num_retries=0, max_retries=0`, and `LiteLLMLM` retries what may succeed later (408/409/429/5xx,
connection faults, timeouts, a body that is not a completion) with exponential backoff and
jitter, or after the server's `Retry-After`, at most `num_retries` times, then raises `LMError`.
Each attempt is bounded by `timeout` as a whole, including a body that drips in slowly. A refused
connection is not retried (nothing listens there): one LMError naming the URL at once. Which
statuses are retried and how long to wait are the runtime's (`RETRY_STATUS`, `retry_after`,
`backoff_delay`), so both ends of the build behave alike.

A local or self-hosted OpenAI-compatible server (`openai/<name>` with `api_base`) is called
through the runtime's own stdlib client instead (`transport="auto"`, the default): the same
request, retries and timeouts, without litellm's ~1-3 s import inside the first call while
every worker thread waits on it. Pass `transport="litellm"` to force litellm.

Concurrency: the optimizers' program runs are threads of the parallel runner (a user's program
is plain synchronous Python), but the HTTP transport's calls do not each block a socket in their
thread: they run as coroutines of the runtime's asyncio client on one event loop per LM (a
daemon thread, started on the first call), so hundreds of calls in flight cost one thread of I/O.
Every attempt, on either transport, counts against the LM's `limiter` (a runtime `RateLimiter`:
requests/min and tokens/min, `optimize --requests-per-minute/--tokens-per-minute`); a 429 pauses
every call of the run for its `Retry-After` (or a shared back-off doubling with consecutive 429s)
and halves the allowed rate until successes win it back -- the same limiter `batch` uses in
production. Cache, single flight and the exact budget are untouched: they run in the calling
thread before a request is handed to the loop.

Credentials never enter the key, the cache or an error message: `api_key` is a constructor
argument (or comes from the provider's environment variable, read by litellm), an `api_key`
passed per call is removed before hashing, a key that cannot be sent (a trailing newline, a
non-ASCII character) is refused up front without being shown, and known key values (and any
`Bearer ...` / `sk-...` token) are redacted from the whole error text before it is cut.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from promptcast.engine.budget import LMBudget, UsageMeter, UsageSnapshot
from promptcast.engine.cache import SECRET_PARAMS, LMCache, cache_key, canonical_request
from promptcast_runtime.errors import LMError
from promptcast_runtime.limits import RateLimiter, estimate_tokens, limited
from promptcast_runtime.lm import (
    LOCAL_PARAMS,
    RETRY_STATUS,
    Completion,
    OpenAIClient,
    backoff_delay,
    check_api_key,
    is_connection_refused,
    read_tool_calls,
    redact,
    refused_error,
    retry_after,
    wire_model,
)

LOCAL_PLACEHOLDER_KEY = "sk-no-key-required"
"""Sent to OpenAI-compatible local servers that need *a* key but check none."""

NOT_SENT_PARAMS = LOCAL_PARAMS | {"probe"}
"""Parameters that are part of the cache key but are not sent to the provider (the runtime's,
and the marker of a capability probe's entry, `LiteLLMLM.probe`)."""

PROBE_REJECTED = "probe:rejected"
"""The `finish_reason` a cached probe outcome holds when the endpoint refused the request."""

__all__ = ["LOCAL_PLACEHOLDER_KEY", "NOT_SENT_PARAMS", "RETRY_STATUS", "LiteLLMLM", "redact"]


_T = TypeVar("_T")


class _Retryable(Exception):
    """One attempt failed in a way that may succeed later; carries the final error's text."""

    def __init__(
        self, error: LMError, retry_after: float | None, status: int | None = None
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.status = status


class EventLoopThread:
    """One asyncio event loop on a daemon thread, for coroutines handed over from any thread.

    Why: the runner's threads call `LiteLLMLM.complete` synchronously; each HTTP call is then
    run here as a coroutine of the runtime's asyncio client, so 256 calls in flight are 256
    coroutines on one loop rather than 256 sockets blocking 256 threads, and the limiter's
    waits are `asyncio.sleep`s. Started on first use; `close()` stops it (idempotent).
    """

    def __init__(self, name: str = "promptcast-lm-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run `coroutine` on the loop and wait for its result in the calling thread."""
        loop = self._started()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        with self._guard:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


def _import_litellm() -> Any:
    """Import litellm on first use, with its price map read locally (no network at import)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _field(obj: Any, name: str) -> Any:
    """Read `name` from a litellm response object or a plain dict alike."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _with_provider(model: str, named: str) -> str:
    """The litellm name of a step's trained model `named` (the wire name the provider gave
    it): with this LM's provider prefix (`openai/`), so litellm routes it where `model` goes."""
    provider, sep, _ = model.partition("/")
    if not sep or named.startswith(provider + "/"):
        return named
    return f"{provider}/{named}"


MESSAGE_KEYS = ("tool_calls", "tool_call_id", "name")
"""Message keys besides `role` and `content` that reach the provider and the cache key: the
tools protocol's assistant calls and tool results."""


def wire_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """One message as it is hashed and sent: `role`, `content` (text, None for an assistant
    turn that only calls tools, or a list of content parts), and the tools protocol's keys."""
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        content = str(content)
    out: dict[str, Any] = {"role": str(message["role"]), "content": content}
    for key in MESSAGE_KEYS:
        if key in message:
            out[key] = message[key]
    return out


def _status_of(error: str) -> int | None:
    """The HTTP status an LMError's text names (`HTTP 500: ...` from the runtime client,
    `status=500` from litellm's), or None for a transport fault."""
    import re

    found = re.search(r"\bHTTP (\d{3})\b|\bstatus=(\d{3})\b", error)
    return int(found.group(1) or found.group(2)) if found else None


def _secret_values(explicit: str | None) -> list[str]:
    """Key values to redact from error text: the explicit key and any `*_API_KEY` variable."""
    values = [explicit] if explicit else []
    values += [v for k, v in os.environ.items() if k.upper().endswith("API_KEY") and v]
    return [v for v in values if len(v) >= 6 and v != LOCAL_PLACEHOLDER_KEY]


class LiteLLMLM:
    """An LM (runtime protocol) that calls `litellm.completion`, cached, budgeted and metered.

    `default_params` (e.g. `{"temperature": 0.0, "max_tokens": 512}`) are merged under each
    call's params and are part of the cache key. `budget` may be shared by several LMs (teacher
    and student) so one `--max-calls` bounds the whole run. `usage` is this LM's meter.

    The cache key holds the model as given and the endpoint (`api_base`): the same request to
    another server is another entry. `refresh_cache=True` (`--no-cache`) never answers from an
    entry this LM did not write itself: every distinct request is sent once, and its fresh
    answer replaces the stored one (so an interrupted run still resumes without paying twice).
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        cache: LMCache | None = None,
        budget: LMBudget | None = None,
        default_params: Mapping[str, Any] | None = None,
        num_retries: int = 4,
        timeout: float = 120.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: str = "auto",
        refresh_cache: bool = False,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not model:
            raise ValueError("an LM model name is required (e.g. 'openai/gpt-4o-mini')")
        if api_key:
            check_api_key(api_key, "the api_key argument")
        defaults = dict(default_params or {})
        leaked = SECRET_PARAMS.intersection(defaults)
        if leaked:
            raise ValueError(
                f"pass credentials as api_key=, not in default_params: {sorted(leaked)}"
            )
        self.model = model
        self.api_base = api_base
        self._api_key = api_key
        self.cache = cache
        self.refresh_cache = refresh_cache
        self._written: set[str] = set()
        """Keys this LM paid for and stored, kept only with `refresh_cache` (the entries it may
        still answer from)."""
        self.budget = budget if budget is not None else LMBudget()
        self.default_params = defaults
        self.num_retries = num_retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        if transport not in ("auto", "litellm", "http"):
            raise ValueError(f"transport must be auto, litellm or http, not {transport!r}")
        if transport == "http" and not (model.startswith("openai/") and api_base):
            raise ValueError("transport='http' needs an openai/<model> with an api_base")
        self.transport = (
            "http"
            if transport == "http"
            or (transport == "auto" and model.startswith("openai/") and bool(api_base))
            else "litellm"
        )
        # One client for every call (a bad api_base fails here, not at the first call).
        self._http_client = (
            self._make_http_client(self._default_http_key()) if self.transport == "http" else None
        )
        self.usage = UsageMeter()
        self._inflight: dict[str, threading.Lock] = {}
        self._inflight_guard = threading.Lock()
        self.limiter = limiter if limiter is not None else RateLimiter()
        """Every attempt's rate limits and the run's shared 429 pause (unlimited by default:
        then only a 429 makes it wait)."""
        self._loop = EventLoopThread()
        self._routes: dict[str, str] = {}
        """A step's trained model (request `model`) -> the endpoint that serves it (`route`)."""
        self._route_clients: dict[str, OpenAIClient] = {}

    def route(self, model: str, api_base: str) -> None:
        """Send requests naming `model` (a step's trained model, served by its own server: the
        local trainer's llama.cpp) to `api_base`; the cache keys them by that endpoint."""
        with self._inflight_guard:
            self._routes[model] = api_base

    def _endpoint(self, params: Mapping[str, Any]) -> str | None:
        named = params.get("model")
        return self._routes.get(named, self.api_base) if isinstance(named, str) else self.api_base

    def __repr__(self) -> str:  # never shows the key
        return f"LiteLLMLM(model={self.model!r}, api_base={self.api_base!r})"

    def snapshot(self) -> UsageSnapshot:
        """Usage so far (calls, cache hits, tokens, cost, errors); subtract two for a step."""
        return self.usage.snapshot()

    def complete(self, messages: Sequence[Mapping[str, Any]], **params: Any) -> Completion:
        """Return the completion for `messages`, from the cache when it is there.

        `rollout` (int, default 0) selects an independent sample of the same request: it is in
        the key but not sent. Raises `BudgetExhausted` before a paid call the budget forbids and
        `LMError` when the provider fails (after litellm's own retries).
        """
        call_key = params.pop("api_key", None)
        if call_key:
            check_api_key(call_key, "the api_key call parameter")
        for name in SECRET_PARAMS.intersection(params):
            params.pop(name)
        merged: dict[str, Any] = {**self.default_params, **params}
        merged["rollout"] = int(merged.get("rollout", 0) or 0)
        msgs = [wire_message(m) for m in messages]
        api_base = self._endpoint(merged)
        key = cache_key(self.model, msgs, merged, api_base=api_base)

        if self._may_answer_from_cache(key):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                self.usage.record_hit()
                return hit
        with self._single_flight(key):
            if self.cache is not None and self._may_answer_from_cache(key):
                # Another thread may have paid for this exact request while we waited.
                hit = self.cache.peek(key)
                if hit is not None:
                    self.usage.record_hit()
                    return hit
            self.budget.reserve()
            completion, cost = self._call_provider(msgs, merged, call_key)
            self.budget.charge(cost)
            if self.cache is not None:
                request = canonical_request(self.model, msgs, merged, api_base=api_base)
                self.cache.put(key, completion, request)
                if self.refresh_cache:
                    with self._inflight_guard:
                        self._written.add(key)
            self.usage.record_call(completion.usage, cost)
            return completion

    def probe(
        self, messages: Sequence[Mapping[str, Any]], **params: Any
    ) -> tuple[bool, Completion]:
        """Whether the endpoint accepts this request (a capability question: a `response_format`
        of type json_schema, `tools`), and its reply (for a rejection: the error's text).

        One attempt, never retried: a server that rejects the request answers with an HTTP error
        status (llama.cpp's: 500 for json_schema), and retrying it would only repeat the answer.
        The outcome, a rejection too, is stored in the cache under the request's key (with a
        `probe` marker that is never sent), so a rerun of `optimize` asks nothing again and
        records the same choice; it counts against the budget like any paid call. A transport
        fault (refused connection, timeout, 429) is no answer: it raises LMError.
        """
        merged: dict[str, Any] = {**self.default_params, **params, "rollout": 0, "probe": 1}
        msgs = [wire_message(m) for m in messages]
        key = cache_key(self.model, msgs, merged, api_base=self.api_base)
        if self.cache is not None and self._may_answer_from_cache(key):
            hit = self.cache.get(key)
            if hit is not None:
                self.usage.record_hit()
                return hit.finish_reason != PROBE_REJECTED, hit
        with self._single_flight(key):
            self.budget.reserve()
            try:
                stored = self._probe_once(msgs, merged)
                accepted = True
            except LMError as exc:
                status = _status_of(str(exc))
                if status is None or status in (408, 429):
                    raise
                stored = Completion(text=str(exc)[:500], finish_reason=PROBE_REJECTED)
                accepted = False
            self.budget.charge(0.0)
            if self.cache is not None:
                request = canonical_request(self.model, msgs, merged, api_base=self.api_base)
                self.cache.put(key, stored, request)
                if self.refresh_cache:
                    with self._inflight_guard:
                        self._written.add(key)
            self.usage.record_call(stored.usage, 0.0)
            return accepted, stored

    def _probe_once(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Completion:
        """One attempt of a probe request on this LM's transport (LMError on any failure)."""
        send = {k: v for k, v in params.items() if k not in NOT_SENT_PARAMS}
        if self.transport == "http":
            client = OpenAIClient(
                wire_model(self.model),
                str(self.api_base),
                self._default_http_key() or LOCAL_PLACEHOLDER_KEY,
                timeout=self.timeout,
                max_retries=0,
            )
            return self._loop.run(client.acomplete(messages, **send))
        litellm = _import_litellm()
        api_key = self._api_key
        if api_key is None and self.api_base and not os.environ.get("OPENAI_API_KEY"):
            api_key = LOCAL_PLACEHOLDER_KEY
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "num_retries": 0,
            "max_retries": 0,
            "timeout": self.timeout,
            **send,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if api_key:
            kwargs["api_key"] = api_key
        try:
            return self._to_completion(self._attempt(litellm, kwargs, api_key))
        except _Retryable as retry:
            raise retry.error from None

    def _may_answer_from_cache(self, key: str) -> bool:
        """Always, unless `refresh_cache`: then only from entries this LM wrote itself."""
        if self.cache is None:
            return False
        if not self.refresh_cache:
            return True
        with self._inflight_guard:
            return key in self._written

    @contextmanager
    def _single_flight(self, key: str) -> Iterator[None]:
        """Serialise calls with the same key so concurrent duplicates pay once."""
        with self._inflight_guard:
            lock = self._inflight.setdefault(key, threading.Lock())
        with lock:
            try:
                yield
            finally:
                with self._inflight_guard:
                    self._inflight.pop(key, None)

    def _call_provider(
        self, messages: list[dict[str, str]], params: Mapping[str, Any], call_key: str | None
    ) -> tuple[Completion, float]:
        if self.transport == "http":
            return self._call_http(messages, params, call_key), 0.0
        litellm = _import_litellm()
        api_key = call_key or self._api_key
        if api_key is None and self.api_base and not os.environ.get("OPENAI_API_KEY"):
            api_key = LOCAL_PLACEHOLDER_KEY
        send = {k: v for k, v in params.items() if k not in NOT_SENT_PARAMS}
        named = send.pop("model", None)  # a step's trained model (FunctionState.model)
        kwargs: dict[str, Any] = {
            "model": _with_provider(self.model, str(named)) if named else self.model,
            "messages": messages,
            "num_retries": 0,  # retries are ours (see the module docstring)
            "max_retries": 0,
            "timeout": self.timeout,
            **send,
        }
        api_base = self._endpoint(params)
        if api_base:
            kwargs["api_base"] = api_base
        if api_key:
            kwargs["api_key"] = api_key
        tokens = estimate_tokens(messages, send)
        attempt = 0
        while True:
            permit = self.limiter.acquire_blocking(tokens)
            try:
                response = self._attempt(litellm, kwargs, api_key)
                completion = self._to_completion(response)
                self.limiter.settle(permit, sum(completion.usage.values()) or None)
                self.limiter.succeeded()
                return completion, self._cost(litellm, response)
            except _Retryable as retry:
                attempt += 1
                if attempt > self.num_retries:
                    self.usage.record_error()
                    tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                    raise LMError(f"{retry.error} (gave up after {tries})") from None
                if retry.status == 429:  # every call waits it out, in acquire_blocking
                    self.limiter.throttled(retry.retry_after)
                else:
                    time.sleep(self._delay(attempt, retry.retry_after))
            except LMError:
                self.usage.record_error()
                raise

    def _call_http(
        self, messages: list[dict[str, str]], params: Mapping[str, Any], call_key: str | None
    ) -> Completion:
        """An OpenAI-compatible endpoint through the runtime's stdlib client (no litellm)."""
        api_key = call_key or self._default_http_key()
        client = self._http_client
        routed = self._endpoint(params)
        if routed != self.api_base and call_key is None:
            with self._inflight_guard:
                client = self._route_clients.get(str(routed))
                if client is None:
                    client = self._route_clients[str(routed)] = self._make_http_client(
                        api_key, routed
                    )
        elif client is None or call_key is not None:
            client = self._make_http_client(api_key, routed)
        send = {k: v for k, v in params.items() if k not in NOT_SENT_PARAMS}
        limiter = self.limiter

        async def call() -> Completion:
            with limited(limiter):  # the runtime client consults it on every attempt
                return await client.acomplete(messages, **send)

        try:
            return self._loop.run(call())
        except LMError as exc:
            self.usage.record_error()
            raise LMError(redact(str(exc), _secret_values(api_key))) from None

    def _default_http_key(self) -> str | None:
        if self._api_key:
            return self._api_key
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            check_api_key(key, "OPENAI_API_KEY")
        return key

    def _make_http_client(self, api_key: str | None, api_base: str | None = None) -> OpenAIClient:
        return OpenAIClient(
            wire_model(self.model),  # the name litellm would send, and the runtime sends
            str(api_base or self.api_base),
            api_key or LOCAL_PLACEHOLDER_KEY,
            timeout=self.timeout,
            max_retries=self.num_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
        )

    def _attempt(self, litellm: Any, kwargs: Mapping[str, Any], api_key: str | None) -> Any:
        """One `litellm.completion`, cut off once it is `timeout` seconds old.

        httpx's timeout bounds each socket wait, not the whole body, so a server that drips
        bytes slowly would outlive it; the call runs in a daemon thread and is abandoned at the
        deadline (its socket times out or finishes on its own; the result is discarded).
        """
        outcome: list[Any] = []

        def call() -> None:
            try:
                outcome.append((True, litellm.completion(**kwargs)))
            except BaseException as exc:  # handed to the caller's thread
                outcome.append((False, exc))

        worker = threading.Thread(target=call, name="promptcast-lm-call", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if not outcome:
            error = self._lm_error(
                TimeoutError(f"no complete response after {self.timeout:g}s"), api_key
            )
            raise _Retryable(error, None)
        ok, value = outcome[0]
        if ok:
            try:
                self._to_completion(value)
            except LMError as exc:  # a 200 without a completion: the next attempt may have one
                raise _Retryable(exc, None) from None
            return value
        if not isinstance(value, Exception):
            raise value
        if is_connection_refused(value):  # litellm calls it a 500: nothing listens, no retry
            where = self.api_base or f"the default endpoint of {self.model}"
            raise refused_error(where) from None
        error = self._lm_error(value, api_key)
        status = getattr(value, "status_code", None)
        if status in RETRY_STATUS:
            response = getattr(value, "response", None)
            raise _Retryable(error, retry_after(getattr(response, "headers", None)), status)
        raise error

    def _delay(self, attempt: int, wait: float | None) -> float:
        """Seconds before retry `attempt` (1-based): Retry-After, else backoff with jitter."""
        return backoff_delay(attempt, wait, backoff=self.backoff, max_backoff=self.max_backoff)

    def _lm_error(self, exc: BaseException, api_key: str | None) -> LMError:
        status = getattr(exc, "status_code", None)
        detail = redact(f"{type(exc).__name__}: {exc}", _secret_values(api_key))
        where = f"model={self.model!r}"
        if self.api_base:
            where += f", api_base={self.api_base!r}"
        if status is not None:
            where += f", status={status}"
        return LMError(f"LM call failed ({where}): {detail}")

    def _to_completion(self, response: Any) -> Completion:
        where = f"model={self.model!r}" + (f", api_base={self.api_base!r}" if self.api_base else "")
        choices = _field(response, "choices")
        if not choices:
            raise LMError(f"LM returned no choices ({where})")
        message = _field(choices[0], "message")
        text = _field(message, "content") if message is not None else None
        try:
            calls = read_tool_calls(_field(message, "tool_calls") if message is not None else None)
        except TypeError as exc:
            raise LMError(f"LM returned an unusable tool call ({where}): {exc}") from None
        if text is None:
            text = _field(choices[0], "text")
        if text is None and calls:
            text = ""  # a turn that only calls tools
        if not isinstance(text, str):
            detail = redact(repr(choices[0]), _secret_values(self._api_key))[:300]
            raise LMError(f"LM returned no text content ({where}): {detail}")
        raw_usage = _field(response, "usage")
        usage: dict[str, int] = {}
        if raw_usage is not None:
            for name in ("prompt_tokens", "completion_tokens"):
                value = _field(raw_usage, name)
                if isinstance(value, int):
                    usage[name] = value
        model = _field(response, "model")
        reason = _field(choices[0], "finish_reason")
        return Completion(
            text=text,
            usage=usage,
            model=str(model or self.model),
            finish_reason=reason if isinstance(reason, str) else "",
            tool_calls=calls,
        )

    def _cost(self, litellm: Any, response: Any) -> float:
        """Dollar cost where litellm knows the model's price; 0.0 otherwise (never raises)."""
        try:
            cost = litellm.completion_cost(completion_response=response, model=self.model)
        except Exception:
            return 0.0
        return float(cost) if isinstance(cost, (int, float)) else 0.0
