"""Streaming a compiled step: partial results in order, the plain call's answer last, over the
stdlib client's server-sent events (sync and asyncio) against the fake server, with closes and
faults; user LMs with and without a stream method; chain of thought, both adapters, hooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import pytest

from promptcast_runtime import (
    REASONING,
    Completion,
    Field,
    Hook,
    LMError,
    OpenAIClient,
    ParseError,
    Partial,
    Predictor,
    Signature,
    StreamError,
    build_step,
    hooked,
    using,
)
from promptcast_runtime.hooks import Call
from tests.support.openai_server import FakeOpenAIServer
from tests.support.sse_stream import StreamPlan

QUESTION = (Field("question", str, "A question."),)
LABEL = Literal["ABBR", "DESC", "NUM"]

CHAT_COT = (
    "[[ ## reasoning ## ]]\nThe question asks how far, which is a distance.\n\n"
    "[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]"
)
JSON_COT = (
    '{"reasoning": "A distance: \\"far\\" \\u00e9t\\u00e9 \\ud83d\\ude00 ok.\\n", "answer": "NUM"}'
)


class Totals(NamedTuple):
    total: int
    note: str


def cot(adapter: str = "chat", retries: int = 0) -> Predictor[Any]:
    signature = Signature("Classify.", QUESTION, (REASONING, Field("answer", LABEL)))
    return Predictor(signature, "answer", adapter=adapter, parse_retries=retries)


def client(server: FakeOpenAIServer, **options: Any) -> OpenAIClient:
    return OpenAIClient("fake-model", server.url, "test-key", backoff=0.01, **options)


def collect(parts: Iterator[Partial[Any]]) -> list[Partial[Any]]:
    return list(parts)


def assert_growing(parts: list[Partial[Any]], final: dict[str, Any]) -> None:
    """Every partial str is a prefix of its final value; other fields appear once, with the
    final value; a field once shown never disappears; the last item is the only done one."""
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    for before, after in zip(parts, parts[1:], strict=False):
        assert set(before.fields) <= set(after.fields)
    for part in parts[:-1]:
        for name, value in part.fields.items():
            if isinstance(value, str) and isinstance(final[name], str):
                assert final[name].startswith(value), (name, value, final[name])
            else:
                assert value == final[name]


# --- over the fake SSE server -----------------------------------------------------------------


def test_partials_arrive_in_order_and_the_last_equals_the_plain_call() -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        lm = client(server)
        predictor = cot()
        plain = predictor.forward({"question": "How far?"}, lm)
        parts = collect(predictor.stream_forward({"question": "How far?"}, lm))
    final = parts[-1]
    assert final.value == plain.value == "NUM"
    assert final.prediction is not None and final.prediction.fields == plain.fields
    assert final.text == plain.completion.text == CHAT_COT
    assert final.prediction.completion.finish_reason == "stop"
    assert final.prediction.completion.usage["completion_tokens"] > 0  # include_usage honoured
    assert_growing(parts, plain.fields)
    # reasoning streams first, token by token; the label appears once its section closes
    reasoning = [p.fields["reasoning"] for p in parts[:-1] if "reasoning" in p.fields]
    assert len(set(reasoning)) > 5
    first_answer = next(i for i, p in enumerate(parts) if "answer" in p.fields)
    assert all("answer" not in p.fields for p in parts[:first_answer])
    assert parts[first_answer].fields["reasoning"] == plain.fields["reasoning"]
    with pytest.raises(ValueError, match="no value yet"):
        _ = parts[0].value


def test_the_streamed_request_is_the_plain_request_plus_stream() -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        lm = client(server)
        predictor = cot()
        predictor.forward({"question": "How far?"}, lm, seed=7)
        collect(predictor.stream_forward({"question": "How far?"}, lm, seed=7))
        plain, streamed = server.requests
    assert streamed.pop("stream") is True
    assert streamed.pop("stream_options") == {"include_usage": True}
    assert streamed == plain
    assert "stream" not in plain


def test_async_stream_matches_the_sync_stream_and_the_plain_call() -> None:
    async def run(lm: OpenAIClient) -> list[Partial[Any]]:
        return [part async for part in cot().astream_forward({"question": "How far?"}, lm)]

    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        lm = client(server)
        sync_parts = collect(cot().stream_forward({"question": "How far?"}, lm))
        async_parts = asyncio.run(run(lm))
        plain = cot().forward({"question": "How far?"}, lm)
    assert [p.fields for p in async_parts] == [p.fields for p in sync_parts]
    assert async_parts[-1].value == plain.value


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_both_body_framings_stream(framing: str) -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        server.set_stream(StreamPlan(chunk_chars=1, framing=framing))
        parts = collect(cot().stream_forward({"question": "q"}, client(server)))
        aparts = asyncio.run(_alist(cot().astream_forward({"question": "q"}, client(server))))
    assert parts[-1].value == aparts[-1].value == "NUM"
    assert [p.fields for p in parts] == [p.fields for p in aparts]


async def _alist(parts: Any) -> list[Partial[Any]]:
    return [part async for part in parts]


async def _ainto(parts: Any, seen: list[Partial[Any]]) -> None:
    async for part in parts:
        seen.append(part)


def test_json_adapter_streams_string_fields_with_escapes_decoded() -> None:
    with FakeOpenAIServer(answers={"*": JSON_COT}) as server:
        server.set_stream(StreamPlan(chunk_chars=1))  # every escape split across events
        lm = client(server)
        predictor = cot("json")
        plain = predictor.forward({"question": "q"}, lm)
        parts = collect(predictor.stream_forward({"question": "q"}, lm))
    assert plain.fields["reasoning"] == 'A distance: "far" été 😀 ok.\n'
    assert parts[-1].prediction is not None and parts[-1].prediction.fields == plain.fields
    assert_growing(parts, plain.fields)
    shown = [p.fields["reasoning"] for p in parts[:-1] if "reasoning" in p.fields]
    assert 'A distance: "far" é' in shown and not any("\\" in s for s in shown)
    assert server.requests[0]["response_format"] == {"type": "json_object"}


def test_a_structured_output_shows_non_str_fields_only_once_complete() -> None:
    signature = Signature("Add up.", QUESTION, (Field("total", int), Field("note", str)))
    predictor: Predictor[Totals] = Predictor(signature, Totals)
    text = "[[ ## total ## ]]\n1234\n\n[[ ## note ## ]]\nfour items\n\n[[ ## completed ## ]]"
    with FakeOpenAIServer(answers={"*": text}) as server:
        server.set_stream(StreamPlan(chunk_chars=1))
        parts = collect(predictor.stream_forward({"question": "q"}, client(server)))
    # nothing until the next marker closes `total`: never 1, 12 or 123; then `note` grows
    assert parts[0].fields == {"total": 1234}
    assert {p.fields["total"] for p in parts} == {1234}
    assert [p.fields.get("note") for p in parts[1:3]] == ["fo", "fou"]  # "f" may be "final:"
    assert parts[-1].value == Totals(1234, "four items")


def test_closing_the_stream_closes_the_connection() -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        server.set_stream(StreamPlan(chunk_chars=2, delay_s=0.02))
        parts = cot().stream_forward({"question": "q"}, client(server))
        first = next(parts)
        assert not first.done
        parts.close()
        _wait_for(lambda: server.counts.get("stream_aborted") == 1)
        ((_, sent, gone),) = server.stream_log
    assert gone and sent < len(CHAT_COT) // 2


def test_breaking_out_of_a_for_loop_closes_the_connection() -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        server.set_stream(StreamPlan(chunk_chars=2, delay_s=0.02))
        for part in cot().stream_forward({"question": "q"}, client(server)):
            if "reasoning" in part.fields:
                break
        _wait_for(lambda: server.counts.get("stream_aborted") == 1)


def test_aclose_closes_the_async_connection() -> None:
    async def run(server: FakeOpenAIServer) -> None:
        parts = cot().astream_forward({"question": "q"}, client(server))
        first = await parts.__anext__()
        assert not first.done
        await parts.aclose()

    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        server.set_stream(StreamPlan(chunk_chars=2, delay_s=0.02))
        asyncio.run(run(server))
        _wait_for(lambda: server.counts.get("stream_aborted") == 1)
        ((_, sent, gone),) = server.stream_log
    assert gone and sent < len(CHAT_COT) // 2


def _wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never saw the connection drop"
        time.sleep(0.02)


@pytest.mark.parametrize("fault", ["reset", "close", "malformed", "error_event", "done_early"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_fault_mid_stream_raises_stream_error_with_what_arrived(fault: str, mode: str) -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        server.set_stream(StreamPlan(chunk_chars=4, delay_s=0.01, fault=fault, fault_after=8))
        lm = client(server)
        seen: list[Partial[Any]] = []
        with pytest.raises(StreamError) as caught:
            if mode == "sync":
                for part in cot().stream_forward({"question": "q"}, lm):
                    seen.append(part)
            else:
                asyncio.run(_ainto(cot().astream_forward({"question": "q"}, lm), seen))
        assert server.counts["chat"] == 1  # content had arrived: never retried
    error = caught.value
    assert isinstance(error, LMError)
    if fault == "reset":  # a reset may discard the last bytes the client had not read yet
        assert CHAT_COT[:32].startswith(error.text) and len(error.text) >= 24
    else:
        assert error.text == CHAT_COT[:32]
    assert error.fields == seen[-1].fields and "reasoning" in error.fields
    assert f"broke off after {len(error.text)} characters" in str(error)
    assert "test-key" not in str(error)


@pytest.mark.parametrize("fault", ["reset", "done_early", "malformed"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_fault_before_any_content_is_retried(mode: str, fault: str) -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT}) as server:
        server.set_stream(StreamPlan(), at={1: StreamPlan(fault=fault, fault_after=0)})
        lm = client(server)
        if mode == "sync":
            parts = collect(cot().stream_forward({"question": "q"}, lm))
        else:
            parts = asyncio.run(_alist(cot().astream_forward({"question": "q"}, lm)))
        assert server.counts["chat"] == 2
    assert parts[-1].value == "NUM"


def test_http_errors_before_the_stream_are_retried_like_plain_calls() -> None:
    from tests.support.faults import FaultPlan

    with FakeOpenAIServer(answers={"*": CHAT_COT}, faults=FaultPlan.first(2, "unavailable")) as s:
        parts = collect(cot().stream_forward({"question": "q"}, client(s)))
        assert s.counts["chat"] == 3
    assert parts[-1].value == "NUM"


def test_a_stream_cut_by_the_token_limit_raises_parse_error_at_the_end() -> None:
    with FakeOpenAIServer(answers={"*": CHAT_COT[:60]}) as server:
        server.set_stream(StreamPlan(finish_reason="length"))
        seen: list[Partial[Any]] = []
        with pytest.raises(ParseError, match="cut off by the token limit"):
            for part in cot().stream_forward({"question": "q"}, client(server)):
                seen.append(part)
    assert seen and not any(p.done for p in seen) and "reasoning" in seen[-1].fields


def test_a_whole_json_reply_where_a_stream_was_asked_is_read_whole() -> None:
    """A proxy that ignores `stream`: the reply is one completion; one final item."""

    with FakeOpenAIServer(responder=lambda body: CHAT_COT) as server:
        lm = client(server)
        original = lm._request_body

        def without_stream(messages: Any, params: Any) -> bytes:
            return original(messages, {k: v for k, v in params.items() if "stream" not in k})

        lm._request_body = without_stream  # type: ignore[method-assign]
        parts = collect(cot().stream_forward({"question": "q"}, lm))
        aparts = asyncio.run(_alist(cot().astream_forward({"question": "q"}, lm)))
    assert parts[-1].value == aparts[-1].value == "NUM"
    assert parts[-1].prediction is not None
    assert parts[-1].prediction.completion.finish_reason == "stop"


# --- user LMs ---------------------------------------------------------------------------------


class ChunkedLM:
    """A user LM that streams `text` in pieces of `size` (str pieces, then a metadata chunk)."""

    def __init__(self, text: str, size: int = 3, finish: str = "stop") -> None:
        self.text, self.size, self.finish = text, size, finish
        self.closed = False

    def complete(self, messages: Any, **params: Any) -> Completion:
        return Completion(self.text, finish_reason=self.finish)

    def stream(self, messages: Any, **params: Any) -> Iterator[str | Completion]:
        try:
            for i in range(0, len(self.text), self.size):
                yield self.text[i : i + self.size]
            yield Completion("", {"completion_tokens": 9}, "user-model", self.finish)
        finally:
            self.closed = True


class PlainLM:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.calls += 1
        return Completion(self.text, finish_reason="stop")


def test_a_user_lm_with_a_stream_method_streams() -> None:
    lm = ChunkedLM(CHAT_COT)
    parts = collect(cot().stream_forward({"question": "q"}, lm))
    assert len(parts) > 10 and parts[-1].value == "NUM" and lm.closed
    assert parts[-1].prediction is not None
    assert parts[-1].prediction.completion.usage == {"completion_tokens": 9}
    assert parts[-1].prediction.completion.model == "user-model"


def test_a_user_lm_without_a_stream_method_yields_one_final_item() -> None:
    lm = PlainLM(CHAT_COT)
    parts = collect(cot().stream_forward({"question": "q"}, lm))
    aparts = asyncio.run(_alist(cot().astream_forward({"question": "q"}, lm)))
    assert len(parts) == len(aparts) == 1 and parts[0].done and parts[0].value == "NUM"
    assert lm.calls == 2


def test_a_sync_only_stream_method_serves_the_async_stream_too() -> None:
    lm = ChunkedLM(CHAT_COT)
    aparts = asyncio.run(_alist(cot().astream_forward({"question": "q"}, lm)))
    assert len(aparts) > 10 and aparts[-1].value == "NUM" and lm.closed


def test_a_stream_yielding_something_else_is_an_lm_error() -> None:
    class Odd(PlainLM):
        def stream(self, messages: Any, **params: Any) -> Iterator[int]:
            yield 3

    with pytest.raises(LMError, match="must yield str or Completion"):
        collect(cot().stream_forward({"question": "q"}, Odd("")))


def test_a_user_lms_own_lm_error_mid_stream_becomes_a_stream_error() -> None:
    class Breaks(PlainLM):
        def stream(self, messages: Any, **params: Any) -> Iterator[str]:
            yield CHAT_COT[:30]
            raise LMError("socket gone")

    with pytest.raises(StreamError, match="socket gone") as caught:
        collect(cot().stream_forward({"question": "q"}, Breaks("")))
    assert caught.value.text == CHAT_COT[:30]
    assert isinstance(caught.value.__cause__, LMError)


def test_parse_retries_stream_the_repair_attempt_too() -> None:
    class TwoAnswers(PlainLM):
        def __init__(self) -> None:
            super().__init__("")
            self.sent: list[Any] = []

        def stream(self, messages: Any, **params: Any) -> Iterator[str]:
            self.sent.append(list(messages))
            text = (
                "[[ ## reasoning ## ]]\nhm\n\n[[ ## answer ## ]]\nmaybe"
                if len(self.sent) == 1
                else CHAT_COT
            )
            yield from (text[i : i + 5] for i in range(0, len(text), 5))

    lm = TwoAnswers()
    parts = collect(cot(retries=1).stream_forward({"question": "q"}, lm))
    assert parts[-1].value == "NUM" and parts[-1].attempt == 1
    assert {p.attempt for p in parts} == {0, 1}
    assert lm.sent[1][-2]["role"] == "assistant" and "must be" in lm.sent[1][-1]["content"]


def test_hooks_see_a_streamed_call_like_any_call() -> None:
    class Recorder(Hook):
        def __init__(self) -> None:
            self.events: list[tuple[str, Call]] = []

        def call_started(self, call: Call) -> None:
            self.events.append(("started", call))

        def call_finished(self, call: Call) -> None:
            self.events.append(("finished", call))

        def call_failed(self, call: Call) -> None:
            self.events.append(("failed", call))

    recorder = Recorder()
    with hooked(recorder):
        parts = collect(cot().stream_forward({"question": "q"}, ChunkedLM(CHAT_COT)))
        broken = cot().stream_forward({"question": "q"}, ChunkedLM(CHAT_COT))
        next(broken)
        broken.close()
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["started", "finished", "started", "failed"]
    finished = recorder.events[1][1]
    assert finished.value == "NUM" and finished.fields == parts[-1].fields
    assert finished.completion.text == CHAT_COT
    assert isinstance(recorder.events[3][1].error, GeneratorExit)


# --- kinds and the built step ------------------------------------------------------------------


def _spec(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "api": 2,
        "step": "tests.streaming:step",
        "kind": kind,
        "instructions": "Classify.",
        "inputs": {"question": "A question."},
        "outputs": {"answer": "The type."},
        "shape": "single",
        "demos": (),
        "adapter": "chat",
        "lm_params": {"temperature": 0.0},
        "options": {},
        **extra,
    }


def test_build_step_steps_stream_with_the_current_lm() -> None:
    step = build_step(_spec("chain_of_thought"), {"question": str}, LABEL)
    with using(ChunkedLM(CHAT_COT)):
        parts = list(step.stream(question="q"))
        aparts = asyncio.run(_alist(step.astream(question="q")))
        value = step(question="q")
    assert parts[-1].value == aparts[-1].value == value == "NUM" and len(parts) > 5


def test_multi_chain_and_ensemble_stream_as_one_final_item() -> None:
    answer = "[[ ## reasoning ## ]]\nr\n\n[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]"
    multi = build_step(_spec("multi_chain_comparison", options={"m": 2}), {"question": str}, LABEL)
    member = {"instructions": "Classify.", "demos": (), "adapter": "chat", "lm_params": {}}
    ensemble = build_step(
        _spec("predict", ensemble={"members": (member, member), "reduce": "majority"}),
        {"question": str},
        LABEL,
    )
    lm = ChunkedLM(answer)
    for step in (multi, ensemble):
        with using(lm):
            parts = list(step.stream(question="q"))
            aparts = asyncio.run(_alist(step.astream(question="q")))
            value = step(question="q")
        assert len(parts) == len(aparts) == 1 and parts[0].done
        assert parts[0].value == aparts[0].value == value == "NUM"


def test_every_kind_streams() -> None:
    """Each kind's runtime class has the stream methods the generated twins call."""
    from promptcast_runtime.kinds import KINDS
    from promptcast_runtime.streaming import StreamingStep, WholeStream

    for kind in KINDS.values():
        cls = kind.runtime_class()
        assert issubclass(cls, (StreamingStep, WholeStream)), kind.name
        for method in ("stream", "astream", "stream_forward", "astream_forward"):
            assert callable(getattr(cls, method)), (kind.name, method)
