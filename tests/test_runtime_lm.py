"""Runtime LM layer: OpenAIClient against the fake OpenAI server (faults, retries, timeouts),
secrets, configuration from the environment, and the context-local `using()`.

Backoff values are tiny so the whole file runs in a few seconds; waits that matter (Retry-After,
timeouts) are measured.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptcast_runtime import LM, Completion, LMError, OpenAIClient, current_lm, using
from promptcast_runtime.lm import retry_after
from tests.support.faults import FaultKind, FaultPlan
from tests.support.openai_server import FakeOpenAIServer

KEY = "sk-canary-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]


def client(url: str, **options: Any) -> OpenAIClient:
    settings: dict[str, Any] = {"timeout": 2.0, "max_retries": 3, "backoff": 0.001}
    settings.update(options)
    return OpenAIClient("fake-model", url, KEY, **settings)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answers={"2+2?": "4"}) as fake:
        yield fake


# --- a scripted server for status codes and headers the fake server does not produce ---------


class Scripted:
    """Answers each POST with the next (status, headers, body) of a script; records headers."""

    def __init__(self, script: Sequence[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = list(script)
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.headers.append(dict(self.headers))
                index = min(len(owner.headers), len(owner.script)) - 1
                status, headers, body = owner.script[index]
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok_body(text: str = "4") -> bytes:
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": text}}], "model": "m"}
    ).encode()


# --- success ---------------------------------------------------------------------------------


def test_completion_text_usage_model_and_request_body(server: FakeOpenAIServer) -> None:
    result = client(server.url).complete(MESSAGES, temperature=0.0, rollout=3)
    assert result.text == "4"
    assert result.model == "fake-model"
    assert result.usage["prompt_tokens"] > 0 and result.usage["completion_tokens"] == 1
    (body,) = server.requests
    assert body["model"] == "fake-model"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == 0.0
    assert "rollout" not in body  # a cache-only parameter is never sent


def test_api_key_is_a_bearer_header_and_never_shown() -> None:
    with Scripted([(200, {}, ok_body())]) as fake:
        lm = client(fake.url)
        lm.complete(MESSAGES)
    assert fake.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(lm) and KEY not in str(vars(lm).get("model"))
    assert "fake-model" in repr(lm) and fake.url in repr(lm)


def test_no_key_no_authorization_header() -> None:
    with Scripted([(200, {}, ok_body())]) as fake:
        OpenAIClient("m", fake.url).complete(MESSAGES)
    assert "Authorization" not in fake.headers[0]


def test_key_echoed_by_the_server_is_redacted_from_errors() -> None:
    echo = f"invalid key {KEY}".encode()
    with Scripted([(401, {}, echo)]) as fake, pytest.raises(LMError) as info:
        client(fake.url).complete(MESSAGES)
    assert KEY not in str(info.value) and "***" in str(info.value)
    with Scripted([(500, {}, echo)]) as fake, pytest.raises(LMError) as info:
        client(fake.url, max_retries=1).complete(MESSAGES)
    assert KEY not in str(info.value)


# --- retries ---------------------------------------------------------------------------------

RETRIED = [
    FaultKind.RATE_LIMIT_NO_RETRY_AFTER,
    FaultKind.SERVER_ERROR,
    FaultKind.BAD_GATEWAY,
    FaultKind.UNAVAILABLE,
    FaultKind.RESET,
    FaultKind.TRUNCATED,
    FaultKind.NOT_JSON,
    FaultKind.EMPTY_CHOICES,
    FaultKind.TIMEOUT,
]


@pytest.mark.parametrize("kind", RETRIED, ids=lambda k: k.value)
def test_transient_faults_are_retried(server: FakeOpenAIServer, kind: FaultKind) -> None:
    server.set_faults(FaultPlan.first(2, kind, hang_s=2.0))
    result = client(server.url, timeout=0.3).complete(MESSAGES)
    assert result.text == "4"
    assert server.counts["chat"] == 3


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retried_statuses(status: int) -> None:
    with Scripted([(status, {}, b"busy"), (200, {}, ok_body())]) as fake:
        assert client(fake.url).complete(MESSAGES).text == "4"
    assert len(fake.headers) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_fail_at_once(status: int) -> None:
    with Scripted([(status, {}, b'{"error": "bad request body"}')]) as fake:
        with pytest.raises(LMError) as info:
            client(fake.url).complete(MESSAGES)
        assert len(fake.headers) == 1
    assert f"HTTP {status}" in str(info.value) and fake.url in str(info.value)
    assert "bad request body" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        (FaultKind.SERVER_ERROR, "HTTP 500"),
        (FaultKind.NOT_JSON, "not JSON"),
        (FaultKind.EMPTY_CHOICES, "no completion text"),
        (FaultKind.RESET, "Connection"),
    ],
)
def test_retries_are_bounded_and_the_error_names_endpoint_and_cause(
    server: FakeOpenAIServer, kind: FaultKind, cause: str
) -> None:
    server.set_faults(FaultPlan.first(100, kind))
    with pytest.raises(LMError) as info:
        client(server.url, max_retries=2).complete(MESSAGES)
    assert server.counts["chat"] == 3
    message = str(info.value)
    assert server.url in message and "giving up after 3 attempts" in message
    assert cause in message, message
    assert KEY not in message


def test_no_retries_means_one_attempt(server: FakeOpenAIServer) -> None:
    server.set_faults(FaultPlan.first(100, FaultKind.UNAVAILABLE))
    with pytest.raises(LMError, match="after 1 attempt: HTTP 503"):
        client(server.url, max_retries=0).complete(MESSAGES)
    assert server.counts["chat"] == 1


def test_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.set_faults(FaultPlan.first(1, FaultKind.RATE_LIMIT, retry_after_s=0.4))
    start = time.monotonic()
    assert client(server.url).complete(MESSAGES).text == "4"
    waited = time.monotonic() - start
    assert 0.4 <= waited < 1.5, waited


def test_retry_after_is_capped_by_max_backoff(server: FakeOpenAIServer) -> None:
    server.set_faults(FaultPlan.first(1, FaultKind.RATE_LIMIT, retry_after_s=30))
    start = time.monotonic()
    assert client(server.url, max_backoff=0.2).complete(MESSAGES).text == "4"
    assert time.monotonic() - start < 1.5


def test_backoff_grows_exponentially_with_jitter_within_bounds() -> None:
    lm = OpenAIClient("m", "http://127.0.0.1:9", backoff=1.0, max_backoff=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        delays = [lm._delay(attempt, None) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
    assert lm._delay(1, 3.0) == 3.0
    assert lm._delay(1, 60.0) == 5.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_header_values(value: str | None, expected: float | None) -> None:
    assert retry_after({"Retry-After": value} if value is not None else {}) == expected


def test_retry_after_http_date_in_the_future() -> None:
    import email.utils

    header = email.utils.formatdate(time.time() + 100, usegmt=True)
    waited = retry_after({"Retry-After": header})
    assert waited is not None and 95 <= waited <= 101


def test_unparsable_retry_after_falls_back_to_backoff() -> None:
    with Scripted([(429, {"Retry-After": "later please"}, b""), (200, {}, ok_body())]) as fake:
        assert client(fake.url).complete(MESSAGES).text == "4"


# --- timeouts --------------------------------------------------------------------------------


def test_a_hanging_server_fails_within_the_timeout(server: FakeOpenAIServer) -> None:
    server.set_faults(FaultPlan.first(100, FaultKind.TIMEOUT, hang_s=5.0))
    start = time.monotonic()
    with pytest.raises(LMError, match="(?i)timed out|timeout"):
        client(server.url, timeout=0.3, max_retries=1).complete(MESSAGES)
    assert time.monotonic() - start < 1.5  # two attempts of 0.3 s, not two hangs of 5 s


def test_a_slow_drip_body_fails_within_the_timeout(server: FakeOpenAIServer) -> None:
    # ~600 bytes at 10 ms each would take 6 s; each byte arrives well within the socket timeout,
    # so only a deadline on the whole response stops it.
    server.set_responder(lambda body: "x" * 400)
    server.set_faults(FaultPlan.first(100, FaultKind.DRIP, drip_interval_s=0.01))
    start = time.monotonic()
    with pytest.raises(LMError, match="not complete after 0.3s"):
        client(server.url, timeout=0.3, max_retries=0).complete(MESSAGES)
    assert time.monotonic() - start < 1.0


def test_connection_refused_is_named_and_not_retried() -> None:
    with Scripted([]) as fake:
        url = fake.url
    with pytest.raises(LMError) as info:
        client(url, max_retries=1).complete(MESSAGES)
    assert url in str(info.value) and "refused" in str(info.value).lower()
    assert "no server seems to listen" in str(info.value)
    assert "giving up" not in str(info.value)  # one attempt: nothing listens there (issue 17)


@pytest.mark.parametrize("url", ["localhost:8080/v1", "127.0.0.1:8080", "ftp://host/v1", ""])
def test_a_base_url_without_http_scheme_is_refused_at_once(url: str) -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        OpenAIClient("m", url)


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'"text"',
        b'{"choices": [{"message": {"content": ["parts"]}}]}',
        b'{"choices": [{"message": {}}]}',
        b'{"choices": [{}]}',
    ],
)
def test_bodies_that_are_not_completions_are_lm_errors(payload: bytes) -> None:
    with Scripted([(200, {}, payload)]) as fake, pytest.raises(LMError):
        client(fake.url, max_retries=1).complete(MESSAGES)


def test_odd_usage_and_null_content_are_tolerated() -> None:
    body = {
        "choices": [{"message": {"content": None}}],
        "usage": ["not", "a", "dict"],
        "model": None,
    }
    with Scripted([(200, {}, json.dumps(body).encode())]) as fake:
        result = client(fake.url).complete(MESSAGES)
    assert result == Completion(text="", usage={}, model="fake-model")


# --- configuration ---------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("PROMPTCAST_BASE_URL", "PROMPTCAST_MODEL", "PROMPTCAST_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROMPTCAST_MODEL", "qwen")
    clean_env.setenv("PROMPTCAST_BASE_URL", "http://127.0.0.1:1/v1/")
    clean_env.setenv("PROMPTCAST_API_KEY", "pc-key")
    clean_env.setenv("OPENAI_API_KEY", "oa-key")
    lm = OpenAIClient.from_env(timeout=5.0)
    assert (lm.model, lm.base_url, lm._api_key, lm.timeout) == (
        "qwen",
        "http://127.0.0.1:1/v1",
        "pc-key",
        5.0,
    )
    clean_env.delenv("PROMPTCAST_API_KEY")
    assert OpenAIClient.from_env()._api_key == "oa-key"
    clean_env.delenv("PROMPTCAST_BASE_URL")
    assert OpenAIClient.from_env().base_url == "https://api.openai.com/v1"
    assert OpenAIClient.from_env(model="other", api_key="arg").model == "other"
    assert OpenAIClient.from_env(api_key="arg")._api_key == "arg"


def test_from_env_without_a_model_says_how_to_configure(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(LMError, match="PROMPTCAST_MODEL") as info:
        OpenAIClient.from_env()
    assert "using(lm)" in str(info.value)
    with pytest.raises(LMError):
        current_lm()


def test_current_lm_falls_back_to_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROMPTCAST_MODEL", "env-model")
    lm = current_lm()
    assert isinstance(lm, OpenAIClient) and lm.model == "env-model"


# --- using() and user LMs --------------------------------------------------------------------


class Named:
    """A user LM with only `complete`, answering with its own name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def complete(self, messages: Sequence[dict[str, str]], **params: Any) -> str:
        return self.name


def test_a_user_object_with_complete_is_an_lm() -> None:
    lm = Named("mine")
    assert isinstance(lm, LM)
    with using(lm) as active:
        assert active is lm and current_lm() is lm


def test_using_rejects_non_lms() -> None:
    with pytest.raises(TypeError, match="complete"), using(object()):  # type: ignore[arg-type]
        pass


def test_using_nests_and_restores(clean_env: pytest.MonkeyPatch) -> None:
    outer, inner = Named("outer"), Named("inner")
    with using(outer):
        with using(inner):
            assert current_lm() is inner
        assert current_lm() is outer
        with pytest.raises(RuntimeError), using(inner):
            raise RuntimeError("boom")
        assert current_lm() is outer
    with pytest.raises(LMError):
        current_lm()  # nothing configured outside


def test_using_is_local_to_each_thread(clean_env: pytest.MonkeyPatch) -> None:
    barrier = threading.Barrier(2, timeout=5)
    seen: dict[str, list[str]] = {}

    def work(name: str) -> None:
        with using(Named(name)):
            barrier.wait()  # both threads are inside their own `using` now
            seen[name] = [str(getattr(current_lm(), "name", "?")) for _ in range(100)]
            barrier.wait()

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert seen == {"a": ["a"] * 100, "b": ["b"] * 100}
    with pytest.raises(LMError):
        current_lm()  # neither thread's choice leaked into this one


def test_using_is_local_to_each_asyncio_task(clean_env: pytest.MonkeyPatch) -> None:
    import asyncio

    async def one(name: str) -> str:
        with using(Named(name)):
            await asyncio.sleep(0.01)
            return str(getattr(current_lm(), "name", "?"))

    async def main() -> list[str]:
        return list(await asyncio.gather(*(one(n) for n in "abcdefgh")))

    assert asyncio.run(main()) == list("abcdefgh")
