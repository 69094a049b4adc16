"""The fake OpenAI server does what reliability tests and benchmarks will rely on.

Every fault is checked from a plain urllib client, because the point is the wire behaviour
(status, headers, bytes, timing), not any particular client library's reaction to it.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.faults import FaultKind, FaultPlan, parse_fault_spec
from tests.support.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parent.parent


def chat_body(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
        **extra,
    }


def post(url: str, body: Any, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """POST JSON to ``url``/chat/completions; returns status, headers and raw body."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url + "/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_models_endpoint(fake_openai_server: FakeOpenAIServer) -> None:
    with urllib.request.urlopen(fake_openai_server.url + "/models", timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["object"] == "list"
    assert body["data"][0]["id"] == "fake-model"
    assert fake_openai_server.counts["models"] == 1


def test_default_echo_has_openai_shape(fake_openai_server: FakeOpenAIServer) -> None:
    status, headers, raw = post(fake_openai_server.url, chat_body("one two three"))
    body = json.loads(raw)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["id"] == "chatcmpl-fake-1"
    assert body["object"] == "chat.completion" and body["created"] == 0
    assert body["model"] == "m"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "one two three"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_answers_table_wildcard_and_content_parts(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(answers={"2+2?": "4", "*": "dunno"})
    assert (
        json.loads(post(server.url, chat_body(" 2+2? "))[2])["choices"][0]["message"]["content"]
        == "4"
    )
    parts = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]}],
    }
    assert json.loads(post(server.url, parts)[2])["choices"][0]["message"]["content"] == "4"
    assert (
        json.loads(post(server.url, chat_body("other"))[2])["choices"][0]["message"]["content"]
        == "dunno"
    )


def test_custom_responder_n_choices_and_recording(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(lambda req: req["messages"][-1]["content"].upper())
    body = json.loads(post(server.url, chat_body("abc", n=3))[2])
    assert [c["message"]["content"] for c in body["choices"]] == ["ABC"] * 3
    assert server.requests == [chat_body("abc", n=3)]
    assert server.counts["chat"] == 1


def test_bad_requests_and_unknown_routes(fake_openai_server: FakeOpenAIServer) -> None:
    status, _, raw = post(fake_openai_server.url, b"{not json")
    assert status == 400 and "invalid request" in json.loads(raw)["error"]["message"]
    status, _, _ = post(fake_openai_server.url, {"model": "m"})
    assert status == 400
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(fake_openai_server.url + "/nope", timeout=5)
    assert err.value.code == 404
    assert fake_openai_server.counts == {"bad_request": 2, "not_found": 1}
    assert fake_openai_server.requests == []


def test_responder_exception_is_a_500(fake_openai_server_factory: Any) -> None:
    def broken(request: dict[str, Any]) -> str:
        raise RuntimeError("boom")

    server = fake_openai_server_factory(broken)
    status, _, raw = post(server.url, chat_body())
    assert status == 500 and "boom" in raw.decode()


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.RATE_LIMIT, 429),
        (FaultKind.RATE_LIMIT_NO_RETRY_AFTER, 429),
        (FaultKind.SERVER_ERROR, 500),
        (FaultKind.BAD_GATEWAY, 502),
        (FaultKind.UNAVAILABLE, 503),
    ],
)
def test_http_error_faults(fake_openai_server_factory: Any, kind: FaultKind, status: int) -> None:
    server = fake_openai_server_factory(faults=FaultPlan(at={1: kind}, retry_after_s=2))
    got, headers, raw = post(server.url, chat_body())
    assert got == status
    assert json.loads(raw)["error"]["code"] == str(status)
    assert headers.get("Retry-After") == ("2" if kind is FaultKind.RATE_LIMIT else None)
    assert post(server.url, chat_body())[0] == 200  # only request 1 was planned to fail
    assert server.faults_served == [(1, kind)]
    assert server.counts["fault:" + kind.value] == 1


def test_timeout_fault_outlasts_client_timeout(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(faults=FaultPlan(at={1: "timeout"}, hang_s=3))
    start = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        post(server.url, chat_body(), timeout=0.3)
    assert time.monotonic() - start < 2
    assert post(server.url, chat_body(), timeout=2)[0] == 200


def test_reset_fault_closes_abruptly(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(faults=FaultPlan.first(1, FaultKind.RESET))
    with pytest.raises(
        (ConnectionResetError, http.client.RemoteDisconnected, urllib.error.URLError)
    ):
        post(server.url, chat_body())
    assert post(server.url, chat_body())[0] == 200


@pytest.mark.parametrize("kind", [FaultKind.TRUNCATED, FaultKind.NOT_JSON])
def test_broken_body_faults(fake_openai_server_factory: Any, kind: FaultKind) -> None:
    server = fake_openai_server_factory(faults=FaultPlan(at={1: kind}))
    status, headers, raw = post(server.url, chat_body())
    assert status == 200
    assert int(headers["Content-Length"]) == len(raw)  # a complete HTTP message...
    with pytest.raises(json.JSONDecodeError):  # ...whose body is not a completion
        json.loads(raw)
    if kind is FaultKind.NOT_JSON:
        assert headers["Content-Type"] == "text/html"


def test_empty_choices_fault(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(faults=FaultPlan(at={1: "empty_choices"}))
    body = json.loads(post(server.url, chat_body())[2])
    assert body["choices"] == [] and body["object"] == "chat.completion"


def test_drip_fault_is_slow_but_valid(fake_openai_server_factory: Any) -> None:
    interval = 0.004
    server = fake_openai_server_factory(faults=FaultPlan(at={1: "drip"}, drip_interval_s=interval))
    start = time.monotonic()
    status, _, raw = post(server.url, chat_body(), timeout=0.5)  # per-read timeout never trips
    elapsed = time.monotonic() - start
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "hello there"
    assert elapsed >= len(raw) * interval * 0.9  # well beyond any single read's timeout


def test_seeded_random_faults_are_reproducible() -> None:
    plan = FaultPlan.random(0.3, kinds=["server_error", "reset"], seed=7)
    picks = [plan.fault_for(n) for n in range(1, 201)]
    assert picks == [
        FaultPlan.random(0.3, kinds=["server_error", "reset"], seed=7).fault_for(n)
        for n in range(1, 201)
    ]
    assert picks != [FaultPlan.random(0.3, seed=8).fault_for(n) for n in range(1, 201)]
    rate = sum(p is not None for p in picks) / len(picks)
    assert 0.2 < rate < 0.4
    assert {p for p in picks if p} == {FaultKind.SERVER_ERROR, FaultKind.RESET}


def test_random_faults_on_the_wire(fake_openai_server_factory: Any) -> None:
    plan = FaultPlan.random(0.5, kinds=["unavailable"], seed=1)
    server = fake_openai_server_factory(faults=plan)
    statuses = [post(server.url, chat_body())[0] for _ in range(20)]
    expected = [503 if plan.fault_for(n) else 200 for n in range(1, 21)]
    assert statuses == expected and 503 in statuses and 200 in statuses


def test_fault_plan_validation_and_spec() -> None:
    assert parse_fault_spec("1=rate_limit, 3=reset") == {
        1: FaultKind.RATE_LIMIT,
        3: FaultKind.RESET,
    }
    with pytest.raises(ValueError):
        parse_fault_spec("1:reset")
    with pytest.raises(ValueError):
        FaultPlan(at={1: "nonsense"})
    with pytest.raises(ValueError):
        FaultPlan(rate=1.5)


def test_latency_is_served_concurrently(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(latency=0.2)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: post(server.url, chat_body(f"q{i}")), range(8)))
    elapsed = time.monotonic() - start
    assert [r[0] for r in results] == [200] * 8
    assert 0.2 <= elapsed < 0.8, elapsed  # serial would be 1.6 s
    assert sorted(r["messages"][-1]["content"] for r in server.requests) == [
        f"q{i}" for i in range(8)
    ]
    assert server.counts["chat"] == 8


def test_close_is_bounded_even_with_a_hanging_request() -> None:
    server = FakeOpenAIServer(faults=FaultPlan(at={1: "timeout"}, hang_s=60)).start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, server.url, chat_body(), 30)
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.monotonic()
        server.close()
        assert time.monotonic() - start < 2
        with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            pending.result(timeout=5)
    server.close()  # idempotent


def test_reset_and_stats_endpoint(fake_openai_server: FakeOpenAIServer) -> None:
    post(fake_openai_server.url, chat_body())
    with urllib.request.urlopen(
        fake_openai_server.url.removesuffix("/v1") + "/_stats", timeout=5
    ) as r:
        assert json.loads(r.read())["counts"] == {"chat": 1}
    fake_openai_server.reset()
    assert fake_openai_server.requests == [] and fake_openai_server.counts == {}
    assert json.loads(post(fake_openai_server.url, chat_body())[2])["id"] == "chatcmpl-fake-1"


def test_command_line_prints_url_and_serves(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ping": "pong"}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.openai_server",
            "--port",
            "0",
            "--answers",
            str(answers),
            "--max-seconds",
            "20",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        body = json.loads(post(url, chat_body("ping"))[2])
        assert body["choices"][0]["message"]["content"] == "pong"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
