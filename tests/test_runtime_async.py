"""The async path: `OpenAIClient.acomplete` over asyncio streams, `Predictor.aforward`, and many
concurrent calls from one event loop without a thread per call.

The client's behaviour must be the sync client's: the same request body, the same retries and
the same errors; only the transport differs. The fault cases below are the sync suite's, run
through `acomplete`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from promptcast_runtime import Completion, Field, LMError, Predictor, Signature, using
from tests.support.faults import FaultKind, FaultPlan
from tests.support.openai_server import FakeOpenAIServer
from tests.test_runtime_lm import KEY, MESSAGES, Scripted, client, ok_body

ROOT = Path(__file__).resolve().parent.parent


def acomplete(lm: Any, messages: Sequence[dict[str, str]] = MESSAGES, **params: Any) -> Completion:
    return asyncio.run(lm.acomplete(messages, **params))


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answers={"2+2?": "4"}) as fake:
        yield fake


def test_same_request_body_text_usage_and_model(server: FakeOpenAIServer) -> None:
    result = acomplete(client(server.url), temperature=0.0, rollout=3)
    assert result == client(server.url).complete(MESSAGES, temperature=0.0, rollout=3)
    assert result.text == "4" and result.usage["completion_tokens"] == 1
    first, second = server.requests
    assert first == second  # byte-for-byte the same JSON body as the sync client sends
    assert "rollout" not in first


def test_key_is_a_bearer_header_and_redacted_from_errors() -> None:
    with Scripted([(200, {}, ok_body())]) as fake:
        acomplete(client(fake.url))
    assert fake.headers[0]["Authorization"] == f"Bearer {KEY}"
    denied = Scripted([(401, {}, f"invalid key {KEY}".encode())])
    with denied as fake, pytest.raises(LMError) as info:
        acomplete(client(fake.url))
    assert KEY not in str(info.value) and "HTTP 401" in str(info.value)
    assert len(fake.headers) == 1  # a client error is not retried


@pytest.mark.parametrize(
    "kind",
    [
        FaultKind.RATE_LIMIT_NO_RETRY_AFTER,
        FaultKind.SERVER_ERROR,
        FaultKind.UNAVAILABLE,
        FaultKind.RESET,
        FaultKind.TRUNCATED,
        FaultKind.NOT_JSON,
        FaultKind.EMPTY_CHOICES,
        FaultKind.TIMEOUT,
    ],
    ids=lambda k: k.value,
)
def test_transient_faults_are_retried(server: FakeOpenAIServer, kind: FaultKind) -> None:
    server.set_faults(FaultPlan.first(2, kind, hang_s=2.0))
    assert acomplete(client(server.url, timeout=0.3)).text == "4"
    assert server.counts["chat"] == 3


def test_retries_are_bounded_and_name_the_cause(server: FakeOpenAIServer) -> None:
    server.set_faults(FaultPlan.first(100, FaultKind.BAD_GATEWAY))
    with pytest.raises(LMError, match="giving up after 3 attempts: HTTP 502"):
        acomplete(client(server.url, max_retries=2))
    assert server.counts["chat"] == 3


def test_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.set_faults(FaultPlan.first(1, FaultKind.RATE_LIMIT, retry_after_s=0.4))
    start = time.monotonic()
    assert acomplete(client(server.url)).text == "4"
    assert time.monotonic() - start >= 0.35


def test_a_slow_drip_body_fails_within_the_timeout(server: FakeOpenAIServer) -> None:
    server.set_responder(lambda body: "x" * 400)
    server.set_faults(FaultPlan.first(100, FaultKind.DRIP, drip_interval_s=0.01))
    start = time.monotonic()
    with pytest.raises(LMError, match="TimeoutError"):
        acomplete(client(server.url, timeout=0.3, max_retries=0))
    assert time.monotonic() - start < 1.0


def test_chunked_responses_are_read() -> None:
    body = ok_body("chunked!")
    chunked = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:])
    )
    with Scripted([(200, {"Transfer-Encoding": "chunked"}, chunked + b"0\r\n\r\n")]) as fake:
        # Scripted always sends Content-Length; chunked wins over it, as HTTP/1.1 says.
        assert acomplete(client(fake.url)).text == "chunked!"


def test_connection_refused_is_named_at_once_not_retried() -> None:
    with Scripted([]) as fake:
        url = fake.url
    with pytest.raises(LMError) as info:
        acomplete(client(url, max_retries=1))
    message = str(info.value)
    assert url in message and "no server seems to listen" in message
    assert "giving up" not in message


# --- Predictor.aforward ----------------------------------------------------------------------


LABEL = Literal["NUM", "LOC"]
PREDICTOR: Predictor[str] = Predictor(
    Signature("Classify.", (Field("question", str),), (Field("answer", LABEL),)),
    returns="answer",
    demos=({"question": "Where is Oslo?", "answer": "LOC"},),
)


class TwoWayLM:
    """Records what each path sends; answers the same either way."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.sync: list[list[dict[str, str]]] = []
        self.async_: list[list[dict[str, str]]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sync.append([dict(m) for m in messages])
        return Completion(self.answer)

    async def acomplete(self, messages: Any, **params: Any) -> Completion:
        self.async_.append([dict(m) for m in messages])
        await asyncio.sleep(0)
        return Completion(self.answer)


def test_aforward_sends_what_forward_sends_and_parses_alike() -> None:
    lm = TwoWayLM("[[ ## answer ## ]]\nnum.")
    sync = PREDICTOR.forward({"question": "How many?"}, lm)
    awaited = asyncio.run(PREDICTOR.aforward({"question": "How many?"}, lm))
    assert lm.sync == lm.async_ and len(lm.sync) == 1
    assert sync.value == awaited.value == "NUM"
    assert sync.messages == awaited.messages


def test_a_sync_only_lm_still_serves_awaited_calls() -> None:
    class SyncOnly:
        def complete(self, messages: Any, **params: Any) -> str:
            return "[[ ## answer ## ]]\nLOC"

    async def main() -> str:
        with using(SyncOnly()):
            return await PREDICTOR.acall(question="Where is Lima?")

    assert asyncio.run(main()) == "LOC"


def test_parse_retries_work_when_awaited() -> None:
    class FirstBad(TwoWayLM):
        async def acomplete(self, messages: Any, **params: Any) -> Completion:
            self.async_.append([dict(m) for m in messages])
            return Completion("no idea" if len(self.async_) == 1 else "[[ ## answer ## ]]\nNUM")

    retrying: Predictor[str] = Predictor(PREDICTOR.signature, returns="answer", parse_retries=1)
    lm = FirstBad("")
    prediction = asyncio.run(retrying.aforward({"question": "How many?"}, lm))
    assert prediction.value == "NUM" and len(lm.async_) == 2
    assert lm.async_[1][-2] == {"role": "assistant", "content": "no idea"}


# --- 200 concurrent calls from one event loop ---------------------------------------------------


def test_200_concurrent_calls_one_loop_bounded_threads_results_matched() -> None:
    """A server in another process answers each question with its own number after 0.3 s.

    200 calls at once finish in about one latency, so they really overlap; the client process
    holds no more threads than before (no thread per call), and every result is its own.
    """
    n, latency = 200, 0.3
    answers = {f"[[ ## question ## ]]\nquestion {i}\n\nRespond with the corresponding output fields, starting with the field `[[ ## answer ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`.": f"[[ ## answer ## ]]\n{i}" for i in range(n)}  # fmt: skip
    table = ROOT / ".pytest_cache" / "async-answers.json"
    table.parent.mkdir(exist_ok=True)
    table.write_text(json.dumps(answers))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--latency", str(latency),
         "--answers", str(table), "--max-seconds", "120"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        numbered: Predictor[int] = Predictor(
            Signature("Say the number.", (Field("question", str),), (Field("answer", int),)),
            returns="answer",
        )
        peak = threading.active_count()

        async def main() -> tuple[list[int], float, int]:
            nonlocal peak
            lm = client(url, timeout=30.0)
            with using(lm):
                await numbered.acall(question="question 0")  # warm-up: imports, first connect
                before = threading.active_count()
                start = time.monotonic()
                tasks = [
                    asyncio.create_task(numbered.acall(question=f"question {i}")) for i in range(n)
                ]
                while not all(t.done() for t in tasks):
                    peak = max(peak, threading.active_count())
                    await asyncio.sleep(0.01)
                results = [t.result() for t in tasks]
                return results, time.monotonic() - start, before

        results, seconds, before = asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert results == list(range(n))  # each call got its own answer, in order
    assert peak <= before + 1, (before, peak)  # no thread per call (+1: asyncio's resolver)
    assert seconds < latency * n / 4, seconds  # overlapped, not one after another
    print(f"\n200 concurrent calls: {seconds:.2f} s, threads before {before}, peak {peak}")
