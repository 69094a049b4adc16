"""Development-time calls: decorated functions run through the runtime with the current state."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import promptcast as pc
from promptcast import context, ir
from promptcast.cli import main
from promptcast.context import Tracer, candidate
from promptcast.lockfile import Lock, LockEntry, save_lock
from promptcast_runtime import Completion
from tests.support.openai_server import FakeOpenAIServer

FIXTURE = Path(__file__).parent / "fixtures" / "onepath"
sys.path.insert(0, str(FIXTURE))

from onepath import steps  # noqa: E402

NUM = "[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]"


class Scripted:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.sent: list[Any] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sent.append(messages)
        return Completion(self.answer)


@pytest.fixture(autouse=True)
def _reset_settings() -> Any:
    saved = (context.SETTINGS.lm, context.SETTINGS.lock_path)
    yield
    context.SETTINGS.lm, context.SETTINGS.lock_path = saved


def test_configure_sets_the_development_lm() -> None:
    lm = Scripted(NUM)
    pc.configure(lm=lm)
    assert steps.question_type("How far is Aspen?") == "NUM"
    assert "How far is Aspen?" in lm.sent[0][-1]["content"]


def test_configure_rejects_objects_without_complete() -> None:
    with pytest.raises(TypeError, match="complete"):
        pc.configure(lm=object())  # type: ignore[arg-type]


def test_environment_configures_the_lm(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(responder=lambda body: NUM) as server:
        monkeypatch.setenv("PROMPTCAST_BASE_URL", server.url)
        monkeypatch.setenv("PROMPTCAST_MODEL", "fake-model")
        assert steps.question_type("How far?") == "NUM"
        assert server.requests[0]["model"] == "fake-model"


def test_lock_state_is_used_in_development(tmp_path: Path) -> None:
    signature = steps.question_type.signature
    lock_path = tmp_path / "promptcast.lock.json"
    demo = {"question": "Who wrote Hamlet?", "answer": "HUM"}
    state = ir.FunctionState("Pick the label.", (demo,))
    save_lock(Lock({signature.qualname: LockEntry(signature.hash(), state)}), lock_path)
    lm = Scripted(NUM)
    pc.configure(lm=lm, lock=lock_path)
    steps.question_type("How far?")
    contents = [m["content"] for m in lm.sent[0]]
    assert "Pick the label." in contents[0]
    assert "Who wrote Hamlet?" in contents[1] and "HUM" in contents[2]


def test_tracer_records_each_call_of_a_program_even_from_threads() -> None:
    tracer = Tracer()
    lm = Scripted(NUM)

    def run(i: int) -> None:
        with candidate(lm=lm, tracer=tracer):
            steps.question_type(f"q{i}")
            steps.question_type(f"again {i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = tracer.by_function()["onepath.steps:question_type"]
    assert len(records) == 16
    assert {r.inputs["question"] for r in records} == {f"q{i}" for i in range(8)} | {
        f"again {i}" for i in range(8)
    }
    assert all(r.value == "NUM" and r.fields == {"answer": "NUM"} for r in records)


def test_inspect_prints_the_exact_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURE)
    result = CliRunner().invoke(
        main,
        ["inspect", "onepath.steps:mood", "-i", "text=so sad", "-i", "scores=[1, 2]", "--json"],
    )
    assert result.exit_code == 0, result.output
    messages = json.loads(result.output)
    assert messages == steps.mood.predictor().messages({"text": "so sad", "scores": [1, 2]})
    assert "[1, 2]" in messages[-1]["content"]


def test_inspect_requires_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURE)
    result = CliRunner().invoke(main, ["inspect", "onepath.steps:mood", "-i", "text=x"])
    assert result.exit_code == 2 and "scores" in result.output
