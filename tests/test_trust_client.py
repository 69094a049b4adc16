"""Trust (issue 17): the LM clients keep credentials home, fail fast where nothing listens, send
the model under the name optimize used, and let `using(lm)` reach worker threads on request.

Every test here failed before its fix: a redirect carried the bearer key to another origin; a key
with a trailing newline crashed with the whole key in the text (sync) or broke the header block
(async); a key echoed across the 300-character cut stayed mostly visible; a refused connection
was retried through the whole backoff schedule; `PROMPTCAST_MODEL=openai/x` sent `openai/x` where
optimize had sent `x`; and nothing carried `using(lm)` into a thread pool.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptcast.engine.lm import LiteLLMLM
from promptcast_runtime import aio
from promptcast_runtime.errors import LMError
from promptcast_runtime.lm import (
    OpenAIClient,
    current_lm,
    is_connection_refused,
    propagate,
    redact,
    using,
    wire_model,
)
from tests.support.faults import FaultKind, FaultPlan
from tests.support.openai_server import FakeOpenAIServer

KEY = "sk-trust-canary-0123456789abcdefXYZ"
MESSAGES = [{"role": "user", "content": "2+2?"}]


def ok_body(text: str = "4") -> bytes:
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": text}}], "model": "m"}
    ).encode()


class Recorder:
    """A server on 127.0.0.1 that records (method, path, headers) of every request, then
    answers with `respond(handler)` -> (status, headers, body)."""

    def __init__(self, respond: Any = None) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        owner = self
        respond = respond or (lambda handler: (200, {}, ok_body()))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.seen.append((self.command, self.path, dict(self.headers)))
                status, headers, body = respond(self)
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def sync_call(client: OpenAIClient) -> Any:
    return client.complete(MESSAGES)


def async_call(client: OpenAIClient) -> Any:
    return asyncio.run(client.acomplete(MESSAGES))


CALLS = [pytest.param(sync_call, id="sync"), pytest.param(async_call, id="async")]


# --- redirects never carry the key -----------------------------------------------------------


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_never_receives_the_key(call: Any, status: int) -> None:
    with Recorder() as elsewhere:
        target = f"{elsewhere.url}/chat/completions"
        with Recorder(lambda h: (status, {"Location": target}, b"moved")) as endpoint:
            client = OpenAIClient("m", endpoint.url, KEY, max_retries=3, backoff=0.001)
            with pytest.raises(LMError) as info:
                call(client)
            assert len(endpoint.seen) == 1  # a redirect is final, not retried
        assert elsewhere.seen == []  # nothing (and so no Authorization header) went there
    message = str(info.value)
    assert f"HTTP {status}" in message and "redirects to" in message and target in message
    assert KEY not in message


# --- keys that cannot be sent ----------------------------------------------------------------

BAD_KEYS = [
    pytest.param(KEY + "\n", id="trailing-newline"),
    pytest.param(KEY + "\r\n", id="trailing-crlf"),
    pytest.param(KEY[:10] + "\u2013" + KEY[10:], id="en-dash"),
    pytest.param(KEY[:10] + "\u00a0" + KEY[10:], id="nbsp"),
    pytest.param(" " + KEY, id="leading-space"),
]


def _assert_key_hidden(message: str) -> None:
    for start in range(0, len(KEY) - 8):
        assert KEY[start : start + 8] not in message, message


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("key", BAD_KEYS)
def test_an_unsendable_key_is_one_clear_error_that_never_shows_it(call: Any, key: str) -> None:
    with Recorder() as server:
        with pytest.raises(LMError) as info:
            call(OpenAIClient("m", server.url, key, max_retries=3, backoff=0.001))
        assert server.seen == []  # refused before anything was sent
    message = str(info.value)
    assert "the API key holds" in message and "position" in message
    _assert_key_hidden(message)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_an_unsendable_key_from_the_environment_is_named_by_its_variable(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMPTCAST_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("PROMPTCAST_MODEL", "m")
    with pytest.raises(LMError, match="OPENAI_API_KEY holds") as info:
        OpenAIClient.from_env()
    _assert_key_hidden(str(info.value))
    with pytest.raises(LMError, match="OPENAI_API_KEY holds") as info:  # the engine's http path
        LiteLLMLM("openai/m", api_base="http://127.0.0.1:9/v1")
    _assert_key_hidden(str(info.value))
    with pytest.raises(LMError, match="api_key argument holds") as info:
        LiteLLMLM("openai/m", api_key=key, transport="litellm")
    _assert_key_hidden(str(info.value))


def test_the_async_transport_refuses_a_header_that_would_break_the_request() -> None:
    with Recorder() as server:
        with pytest.raises(ValueError, match="'Authorization'") as info:
            asyncio.run(aio.post(server.url, b"{}", {"Authorization": f"Bearer {KEY}\n"}, 2.0))
        assert server.seen == []
    _assert_key_hidden(str(info.value))


# --- redaction before truncation -------------------------------------------------------------


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("offset", [255, 265, 275])  # the key crosses the 300-char cut
def test_a_key_echoed_across_the_cut_is_redacted_whole(call: Any, offset: int) -> None:
    body = ("x" * offset + f" invalid key {KEY} " + "y" * 400).encode()
    with Recorder(lambda h: (401, {}, body)) as server, pytest.raises(LMError) as info:
        call(OpenAIClient("m", server.url, KEY))
    assert "HTTP 401" in str(info.value)
    _assert_key_hidden(str(info.value))


@pytest.mark.parametrize("call", CALLS)
def test_a_key_in_a_body_that_is_not_json_is_redacted_whole(call: Any) -> None:
    body = ("<html>" + "z" * 85 + KEY + "</html>").encode()  # the key crosses the 100-char cut
    with (
        Recorder(lambda h: (200, {}, body)) as server,
        pytest.raises(LMError, match="JSON") as info,
    ):
        call(OpenAIClient("m", server.url, KEY, max_retries=0))
    _assert_key_hidden(str(info.value))


def test_secret_looking_tokens_are_redacted_even_when_unknown() -> None:
    text = "auth failed: Authorization: Bearer abc.DEF-123_xyz; other key sk-proj-AbCdEf123456 end"
    cleaned = redact(text)
    assert "abc.DEF-123_xyz" not in cleaned and "AbCdEf123456" not in cleaned
    assert "Bearer ***" in cleaned and "sk-***" in cleaned and "end" in cleaned
    assert redact("a key 'sk-x\\n' seen", ["sk-x\n"]) == "a key '***' seen"  # repr form too
    assert redact("task-force and desk-lamp stay") == "task-force and desk-lamp stay"


# --- a refused connection fails fast; transient faults are still retried ---------------------


def record_delays(monkeypatch: pytest.MonkeyPatch, owner: type, seen: list[int]) -> None:
    """Make `owner._delay` (called once per retry) record the attempt and wait 0 s."""

    def delay(self: Any, attempt: int, wait: float | None) -> float:
        seen.append(attempt)
        return 0.0

    monkeypatch.setattr(owner, "_delay", delay)


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every backoff the runtime client computes (one per retry), recorded instead of slept."""
    seen: list[int] = []
    record_delays(monkeypatch, OpenAIClient, seen)
    yield seen


@pytest.mark.parametrize("call", CALLS)
def test_a_refused_connection_fails_at_once_naming_the_url(call: Any, delays: list[int]) -> None:
    url = closed_port_url()
    with pytest.raises(LMError) as info:
        call(OpenAIClient("m", url, KEY, max_retries=10))
    assert delays == []  # not one retry of the ten allowed
    message = str(info.value)
    assert f"{url}/chat/completions" in message
    assert "connection refused" in message and "no server seems to listen" in message


@pytest.mark.parametrize("call", CALLS)
def test_a_reset_connection_is_still_retried(call: Any, delays: list[int]) -> None:
    with FakeOpenAIServer(answers={"2+2?": "4"}, faults=FaultPlan.first(2, FaultKind.RESET)) as s:
        assert call(OpenAIClient("m", s.url, KEY, max_retries=3)).text == "4"
        assert s.counts["chat"] == 3
    assert delays == [1, 2]


@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_the_engine_fails_at_once_on_a_refused_connection(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    retries: list[int] = []
    record_delays(monkeypatch, OpenAIClient, retries)  # the http transport's retries
    record_delays(monkeypatch, LiteLLMLM, retries)  # the litellm transport's
    url = closed_port_url()
    lm = LiteLLMLM("openai/m", api_base=url, api_key=KEY, transport=transport, num_retries=10)
    with pytest.raises(LMError) as info:
        lm.complete(MESSAGES)
    assert retries == []  # not one of the ten allowed
    message = str(info.value)
    assert url in message and "no server seems to listen" in message and KEY not in message
    assert lm.snapshot().errors == 1


def test_refusals_are_told_apart_from_other_connection_faults() -> None:
    assert is_connection_refused(ConnectionRefusedError(111, "Connection refused"))
    wrapped = RuntimeError("Connection error.")
    wrapped.__cause__ = OSError(111, "Connection refused")
    assert is_connection_refused(wrapped)
    both = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 9)"
    )
    assert is_connection_refused(both)
    assert not is_connection_refused(ConnectionResetError(104, "Connection reset by peer"))
    assert not is_connection_refused(TimeoutError("timed out"))
    assert not is_connection_refused(
        OSError("Multiple exceptions: [Errno 111] x, [Errno 110] Connection timed out")
    )


# --- one spelling of the model ---------------------------------------------------------------


def test_wire_model_drops_one_openai_prefix() -> None:
    assert wire_model("openai/qwen0.5b") == "qwen0.5b"
    assert wire_model("openai/openai/gpt-oss") == "openai/gpt-oss"
    assert wire_model("qwen0.5b") == "qwen0.5b"
    assert wire_model("anthropic/claude") == "anthropic/claude"


def test_the_runtime_sends_the_model_name_optimize_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--model openai/fake-model` at build time, `PROMPTCAST_MODEL=openai/fake-model` (what the
    lock and the header record) in production: one name on the wire at both ends."""
    with FakeOpenAIServer(answers={"2+2?": "4"}) as server:
        LiteLLMLM("openai/fake-model", api_base=server.url).complete(MESSAGES)
        monkeypatch.setenv("PROMPTCAST_MODEL", "openai/fake-model")
        monkeypatch.setenv("PROMPTCAST_BASE_URL", server.url)
        current_lm().complete(MESSAGES)
        asyncio.run(OpenAIClient.from_env().acomplete(MESSAGES))
        engine_body, runtime_body, async_body = server.requests
    assert engine_body["model"] == runtime_body["model"] == async_body["model"] == "fake-model"


# --- using(lm) and threads -------------------------------------------------------------------


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def complete(self, messages: Any, **params: Any) -> str:
        return self.name


def lm_name() -> str:
    return str(getattr(current_lm(), "name", None) or getattr(current_lm(), "model", "?"))


def name_of_lm(_: object) -> str:
    return lm_name()


def test_propagate_carries_using_into_a_thread_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTCAST_MODEL", "environment-model")
    with using(Named("chosen")), ThreadPoolExecutor(4) as pool:
        plain = list(pool.map(lambda _: lm_name(), range(8)))
        carried = list(pool.map(propagate(name_of_lm), range(8)))
    assert plain == ["environment-model"] * 8  # threads start with an empty context
    assert carried == ["chosen"] * 8


def test_propagated_calls_are_isolated_from_each_other() -> None:
    barrier = threading.Barrier(4, timeout=10)

    def work(name: str) -> tuple[str, str]:
        before = lm_name()
        with using(Named(name)):
            barrier.wait()  # all four are inside their own `using` at once
            inside = lm_name()
        return before, inside

    with using(Named("outer")):
        task = propagate(work)
    with ThreadPoolExecutor(4) as pool:  # called outside the block: the capture still holds
        results = list(pool.map(task, "abcd"))
    assert results == [("outer", n) for n in "abcd"]


def test_a_thread_without_an_lm_says_how_to_carry_using(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMPTCAST_MODEL", "PROMPTCAST_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with using(Named("chosen")), ThreadPoolExecutor(1) as pool:
        future = pool.submit(current_lm)
        with pytest.raises(LMError, match=r"propagate\(fn\)"):
            future.result(timeout=10)
