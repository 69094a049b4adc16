"""Runtime hooks: what a service owner sees of each LM call (started / finished / failed,
with function, model, messages, raw completion, value or error, usage, latency, retries), the
scopes around them (ReAct agent, turns, tool calls), registration per context and globally, and
the optimized-for warning."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import warnings
from typing import Any

import pytest

from promptcast_runtime import (
    RUNTIME_API,
    Completion,
    Hook,
    OpenAIClient,
    OptimizedForWarning,
    ParseError,
    add_hook,
    build_step,
    hooked,
    hooks,
    remove_hook,
    using,
)
from promptcast_runtime.hooks import HookWarning, Scope, same_model
from tests.support.faults import FaultKind, FaultPlan


def spec(step: str = "app.triage:classify", kind: str = "predict", **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"parse_retries": extra.pop("parse_retries", 0)}
    options.update(extra.pop("options", {}))
    return {
        "api": RUNTIME_API,
        "step": step,
        "kind": kind,
        "instructions": "Classify the question.",
        "inputs": {"question": "A question."},
        "outputs": {"answer": "Its type."},
        "shape": "single",
        "demos": (),
        "adapter": "chat",
        "lm_params": {"max_tokens": 64, "temperature": 0.0},
        "options": options,
        **extra,
    }


class Recorder(Hook):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def call_started(self, call: hooks.Call) -> None:
        self.events.append(("started", call))

    def call_finished(self, call: hooks.Call) -> None:
        self.events.append(("finished", call))

    def call_failed(self, call: hooks.Call) -> None:
        self.events.append(("failed", call))

    def scope_started(self, scope: Scope) -> None:
        self.events.append(("scope_started", scope))

    def scope_finished(self, scope: Scope) -> None:
        self.events.append(("scope_finished", scope))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class ScriptedLM:
    def __init__(self, *texts: str, model: str = "test-model") -> None:
        self.texts = list(texts)
        self.model = model

    def complete(self, messages: Any, **params: Any) -> Completion:
        text = self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]
        return Completion(text, {"prompt_tokens": 11, "completion_tokens": 3}, self.model, "stop")


ANSWER = "[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]"


def test_a_call_is_reported_started_then_finished_with_everything_it_did() -> None:
    step = build_step(spec(), inputs={"question": str}, returns=str)
    recorder = Recorder()
    with hooked(recorder), using(ScriptedLM(ANSWER)):
        assert step(question="How far?") == "NUM"
    assert recorder.names() == ["started", "finished"]
    call = recorder.events[1][1]
    assert recorder.events[0][1] is call
    assert call.function == "app.triage:classify" and call.role == "predict"
    assert call.model == "test-model"
    assert call.messages == step.messages({"question": "How far?"})
    assert call.params == {"max_tokens": 64, "temperature": 0.0}
    assert call.text == ANSWER and call.value == "NUM" and call.fields == {"answer": "NUM"}
    assert call.usage == {"prompt_tokens": 11, "completion_tokens": 3}
    assert call.latency_s > 0 and call.retries == 0 and call.error is None


def test_no_hook_sees_a_call_outside_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    step = build_step(spec(), inputs={"question": str}, returns=str)
    recorder = Recorder()
    with using(ScriptedLM(ANSWER)):
        with hooked(recorder):
            step(question="a")
        assert hooks.ACTIVE == 0
        step(question="b")
    assert recorder.names() == ["started", "finished"]


def test_a_parse_failure_is_reported_with_the_error_and_the_raw_text() -> None:
    step = build_step(spec(), inputs={"question": str}, returns=int)
    recorder = Recorder()
    with hooked(recorder), using(ScriptedLM("I cannot say.")), pytest.raises(ParseError):
        step(question="How far?")
    assert recorder.names() == ["started", "failed"]
    call = recorder.events[1][1]
    assert isinstance(call.error, ParseError) and call.text == "I cannot say."


def test_parse_retries_are_counted() -> None:
    step = build_step(spec(parse_retries=1), inputs={"question": str}, returns=int)
    recorder = Recorder()
    with hooked(recorder), using(ScriptedLM("no idea", "[[ ## answer ## ]]\n7")):
        assert step(question="x") == 7
    call = recorder.events[-1][1]
    assert recorder.names() == ["started", "finished"] and call.retries == 1


def test_transport_retries_of_the_builtin_client_are_counted(fake_openai_server_factory: Any) -> None:
    server = fake_openai_server_factory(
        answers={"*": ANSWER}, faults=FaultPlan.first(2, FaultKind.UNAVAILABLE)
    )
    client = OpenAIClient("fake-model", server.url, backoff=0.01, max_backoff=0.02)
    step = build_step(spec(), inputs={"question": str}, returns=str)
    recorder = Recorder()
    with hooked(recorder), using(client):
        assert step(question="x") == "NUM"
    call = recorder.events[-1][1]
    assert call.transport_retries == 2 and call.retries == 2 and call.model == "fake-model"


def test_global_hooks_see_every_context_until_removed() -> None:
    step = build_step(spec(), inputs={"question": str}, returns=str)
    recorder = Recorder()
    add_hook(recorder)
    add_hook(recorder)  # once only
    try:
        assert hooks.ACTIVE == 1
        lm = ScriptedLM(ANSWER)
        thread = threading.Thread(target=lambda: step.forward({"question": "t"}, lm))
        thread.start()
        thread.join()
        with using(lm):
            step(question="main")
    finally:
        remove_hook(recorder)
    assert hooks.ACTIVE == 0
    assert recorder.names() == ["started", "finished"] * 2


def test_context_hooks_stay_in_their_thread() -> None:
    step = build_step(spec(), inputs={"question": str}, returns=str)
    mine, other = Recorder(), Recorder()
    lm = ScriptedLM(ANSWER)
    ready, done = threading.Event(), threading.Event()

    def elsewhere() -> None:
        with hooked(other):
            ready.set()
            done.wait(5)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    ready.wait(5)
    with hooked(mine):
        step.forward({"question": "q"}, lm)
    done.set()
    thread.join()
    assert mine.names() == ["started", "finished"] and other.events == []


def test_a_hook_that_raises_warns_and_the_call_goes_on() -> None:
    class Broken(Hook):
        def call_started(self, call: hooks.Call) -> None:
            raise RuntimeError("exporter down")

    step = build_step(spec(), inputs={"question": str}, returns=str)
    with hooked(Broken()), using(ScriptedLM(ANSWER)), pytest.warns(HookWarning, match="down"):
        assert step(question="x") == "NUM"


def test_hooks_may_implement_only_some_moments() -> None:
    seen: list[str] = []

    class OnlyFinished:
        def call_finished(self, call: hooks.Call) -> None:
            seen.append(call.text or "")

    step = build_step(spec(), inputs={"question": str}, returns=str)
    with hooked(OnlyFinished()), using(ScriptedLM(ANSWER)):
        step(question="x")
    assert seen == [ANSWER]


def test_async_calls_are_reported_too() -> None:
    step = build_step(spec(), inputs={"question": str}, returns=str)
    recorder = Recorder()

    async def main() -> list[str]:
        with hooked(recorder), using(ScriptedLM(ANSWER)):
            return list(await asyncio.gather(*(step.acall(question=str(i)) for i in range(3))))

    assert asyncio.run(main()) == ["NUM"] * 3
    assert recorder.names().count("finished") == 3
    assert all(call.latency_s > 0 for name, call in recorder.events if name == "finished")


# --- ReAct: agent, turn and tool scopes around the calls ---------------------------------------


def population(city: str) -> int:
    """How many people live in a city."""
    return {"oslo": 709000}.get(city.lower(), 0)


class AgentLM:
    """Looks up Oslo, finishes, answers with the observation."""

    model = "agent-model"

    def complete(self, messages: Any, **params: Any) -> Completion:
        user = messages[-1]["content"]
        if "You work in turns" in messages[0]["content"]:
            turn = len(re.findall(r"^thought_\d+:", user, re.M))
            tool, args = [("population", {"city": "Oslo"}), ("finish", {})][min(turn, 1)]
            return Completion(
                f"[[ ## next_thought ## ]]\nStep {turn}.\n\n[[ ## next_tool_name ## ]]\n{tool}"
                f"\n\n[[ ## next_tool_args ## ]]\n{json.dumps(args)}\n\n[[ ## completed ## ]]"
            )
        return Completion("[[ ## reasoning ## ]]\nLooked.\n\n[[ ## answer ## ]]\n709000")


def agent() -> Any:
    agent_spec = spec(
        "app.agent:people", "react", options={"max_iters": 3, "teach_turns": False}
    )
    return build_step(agent_spec, inputs={"question": str}, returns=int, tools=[population])


def test_a_react_run_is_an_agent_scope_holding_turns_tools_and_calls() -> None:
    step = agent()
    recorder = Recorder()
    with hooked(recorder), using(AgentLM()):
        assert step(question="How many live in Oslo?") == 709000
    kinds = [
        (name, getattr(event, "kind", None) or event.role)
        for name, event in recorder.events
        if name.endswith("started")
    ]
    assert kinds == [
        ("scope_started", "agent"),
        ("scope_started", "turn"),
        ("started", "turn"),
        ("scope_started", "tool"),
        ("scope_started", "turn"),
        ("started", "turn"),
        ("started", "answer"),
    ]
    scopes = [e for n, e in recorder.events if n == "scope_finished"]
    tool = next(s for s in scopes if s.kind == "tool")
    assert tool.attributes == {"tool": "population", "arguments": {"city": "Oslo"},
                               "observation": "709000"}
    assert tool.parent is not None and tool.parent.kind == "turn"
    assert tool.parent.parent is not None and tool.parent.parent.kind == "agent"
    calls = [e for n, e in recorder.events if n == "finished"]
    assert [c.function for c in calls] == ["app.agent:people"] * 3
    assert calls[0].parent.kind == "turn" and calls[-1].parent.kind == "agent"


def test_program_decorator_opens_a_program_scope() -> None:
    step = build_step(spec(), inputs={"question": str}, returns=str)

    @hooks.program("app.pipeline:answer")
    def answer(question: str) -> str:
        return step(question=question) + step(question=question)

    recorder = Recorder()
    with hooked(recorder), using(ScriptedLM(ANSWER)):
        assert answer("x") == "NUMNUM"
    assert recorder.names()[0] == "scope_started" and recorder.names()[-1] == "scope_finished"
    calls = [e for n, e in recorder.events if n == "finished"]
    assert all(c.parent is not None and c.parent.name == "app.pipeline:answer" for c in calls)
    with using(ScriptedLM(ANSWER)):
        assert answer("y") == "NUMNUM"  # no hook: the plain function


# --- the optimized-for warning -------------------------------------------------------------------


def test_a_built_step_called_with_another_model_warns_once_naming_both() -> None:
    step = build_step(spec(optimized_for="openai/qwen0.5b"), inputs={"question": str}, returns=str)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with using(ScriptedLM(ANSWER, model="gpt-4o-mini")):
            step(question="a")
            step(question="b")
        with using(ScriptedLM(ANSWER, model="gpt-4o-mini")):
            step(question="c")
    found = [w for w in caught if issubclass(w.category, OptimizedForWarning)]
    assert len(found) == 1
    text = str(found[0].message)
    assert "app.triage:classify" in text and "openai/qwen0.5b" in text and "gpt-4o-mini" in text


def test_the_model_it_was_optimized_for_does_not_warn() -> None:
    step = build_step(spec(optimized_for="openai/qwen0.5b"), inputs={"question": str}, returns=str)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with using(ScriptedLM(ANSWER, model="qwen0.5b")):
            step(question="a")
        with using(ScriptedLM(ANSWER, model="openai/qwen0.5b")):
            step(question="a")
        plain = build_step(spec(), inputs={"question": str}, returns=str)  # zero-shot: no target
        with using(ScriptedLM(ANSWER, model="other")):
            plain(question="a")


def test_the_warning_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTCAST_WARN_MODEL", "0")
    step = build_step(spec(optimized_for="openai/qwen0.5b"), inputs={"question": str}, returns=str)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with using(ScriptedLM(ANSWER, model="gpt-4o")):
            step(question="a")


def test_a_react_step_warns_once_for_its_two_calls() -> None:
    agent_spec = spec(
        "app.agent:people",
        "react",
        options={"max_iters": 3, "teach_turns": False},
        optimized_for="openai/qwen1.5b",
    )
    step = build_step(agent_spec, inputs={"question": str}, returns=int, tools=[population])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with using(AgentLM()):
            step(question="Oslo?")
    assert len([w for w in caught if issubclass(w.category, OptimizedForWarning)]) == 1


def test_same_model_drops_only_a_provider_prefix() -> None:
    assert same_model("openai/qwen0.5b", "qwen0.5b")
    assert same_model("gpt-4o", "gpt-4o")
    assert not same_model("openai/qwen0.5b", "qwen1.5b")
    assert not same_model("openai/qwen0.5b", "wen0.5b")


def test_a_module_built_from_a_lock_knows_its_model_and_warns(tmp_path: Any) -> None:
    """End to end: `build` writes the lock's model into the spec; the built function warns."""
    import importlib.util
    import sys
    from pathlib import Path

    from promptcast.codegen.build import plan_build, write_tree
    from promptcast.lockfile import load_lock

    trec = Path(__file__).parents[1] / "examples" / "trec"
    write_tree(plan_build(trec / "triage", load_lock(trec / "promptcast.lock.json")), tmp_path)
    source = (tmp_path / "triage" / "classify.py").read_text()
    assert '"optimized_for": "openai/qwen0.5b"' in source
    spec_ = importlib.util.spec_from_file_location("built_trec_hooks", tmp_path / "triage" / "classify.py")
    assert spec_ is not None and spec_.loader is not None
    module = importlib.util.module_from_spec(spec_)
    sys.modules["built_trec_hooks"] = module
    spec_.loader.exec_module(module)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with using(ScriptedLM(ANSWER, model="gpt-4o-mini")):
            assert module.question_type("How far?") == "NUM"
            module.question_type("Who?")
        with using(ScriptedLM(ANSWER, model="qwen0.5b")):
            module.question_type("Where?")
    found = [str(w.message) for w in caught if issubclass(w.category, OptimizedForWarning)]
    assert len(found) == 1 and "triage.classify:question_type" in found[0]
