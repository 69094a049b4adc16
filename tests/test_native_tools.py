"""Issue 18, native tool calls for ReAct: the tools go out as the endpoint's `tools`, the model's
`tool_calls` (several per turn) are run and answered with `role: tool` messages carrying their
`tool_call_id`; unknown tools and unparseable arguments are observations; the protocol is a
state option that `optimize` can settle ("auto") and the lock, the spec and the built module
carry; the engine LM and its cache keep the tool calls, so optimization scores what ships.

The fake server speaks `tool_calls` (tests/support/payloads.py `reply`/`tool_call`); the agent
example (examples/agent) runs in both protocols against it, from a copy under a unique package
name.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptcast.cli import main
from promptcast.engine.cache import LMCache
from promptcast.engine.lm import LiteLLMLM
from promptcast.ir import FunctionState
from promptcast.lockfile import LockEntry, LockError, validate_entry
from promptcast_runtime import Completion, OpenAIClient, build_step, using
from promptcast_runtime.lm import ToolCall
from promptcast_runtime.react import ReAct, describe_tool
from promptcast_runtime.signature import Field, Signature
from promptcast_runtime.step import SpecError
from promptcast_runtime.tool_calls import param_schema, tool_schema
from tests.support.openai_server import FakeOpenAIServer
from tests.support.payloads import ErrorReply, reply, tool_call

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "agent"))

from planets.tools import PLANETS, calculate, lookup  # noqa: E402

FACTS = {"moons": "moons", "diameter": "diameter_km", "day": "day_hours"}


# --- a fake model that solves the planet questions in either protocol -----------------------


def _question(request: dict[str, Any]) -> str:
    """The question of this call (the last user turn that has one: demo turns come first)."""
    for message in reversed(request["messages"]):
        found = re.search(
            r"\[\[ ## question ## \]\]\n(.*?)(?:\n\n|$)", message.get("content") or ""
        )
        if message["role"] == "user" and found:
            return found.group(1)
    raise AssertionError(f"no question in {request['messages']}")


def _plan(question: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls that answer `question`: a lookup per planet, then the arithmetic."""
    names = [p for p in PLANETS if p.title() in question]
    names.sort(key=lambda p: question.index(p.title()))
    calls: list[tuple[str, dict[str, Any]]] = [("lookup", {"planet": p.title()}) for p in names]
    if len(names) == 2:
        fact = next(v for k, v in FACTS.items() if k in question)
        a, b = (PLANETS[p][fact] for p in names)
        op = "+" if "added" in question else "-"
        calls.append(("calculate", {"expression": f"{a} {op} {b}"}))
    return calls


def _answer(question: str, trajectory: str) -> str:
    observations = re.findall(r"^observation_\d+: (.*)$", trajectory, re.M)
    if not observations:
        return "[[ ## reasoning ## ]]\nNothing seen.\n\n[[ ## answer ## ]]\n0"
    last = observations[-1]
    if last.startswith("{"):
        fact = next(v for k, v in FACTS.items() if k in question)
        last = str(json.loads(last)[fact])
    return f"[[ ## reasoning ## ]]\nFrom the tools.\n\n[[ ## answer ## ]]\n{last}"


class PlanetAgent:
    """Answers requests like a model that knows how to use the planet tools.

    Tools protocol: all lookups in the first turn (several calls), the arithmetic next, then a
    reply without calls. Text protocol: one call per turn, then `finish`. The answer call reads
    the trajectory. `text_fails` / `tools_fail`: in that protocol it stops at once (a model that
    cannot use it), so the other scores better. `rejects_tools`: HTTP 400 on `tools`.
    """

    def __init__(
        self, *, text_fails: bool = False, tools_fail: bool = False, rejects_tools: bool = False
    ) -> None:
        self.text_fails = text_fails
        self.tools_fail = tools_fail
        self.rejects_tools = rejects_tools

    def __call__(self, request: dict[str, Any]) -> Any:
        messages = request["messages"]
        if "tools" in request:
            if self.rejects_tools:
                raise ErrorReply(400, "tools are not supported by this server")
            if messages[-1]["content"] == "Call the tool `ping` now.":
                return reply(None, [tool_call("ping", {}, "call_ping")])
            plan = _plan(_question(request))
            turns = sum(1 for m in messages if m["role"] == "assistant")
            lookups = [c for c in plan if c[0] == "lookup"]
            batches = [lookups, [c for c in plan if c[0] != "lookup"]]
            batches = [b for b in batches if b]
            if turns >= len(batches) or self.tools_fail:
                return reply("I have what I need.")
            return reply(
                "Looking it up." if turns == 0 else "Now the arithmetic.",
                [
                    tool_call(name, args, f"call_{turns}_{i}")
                    for i, (name, args) in enumerate(batches[turns])
                ],
            )
        user = messages[-1]["content"]
        trajectory = re.search(r"\[\[ ## trajectory ## \]\]\n(.*?)\n\nRespond with", user, re.S)
        done = trajectory.group(1) if trajectory else ""
        if "You work in turns" in messages[0]["content"]:
            plan = [] if self.text_fails else _plan(_question(request))
            turn = len(re.findall(r"^thought_\d+:", done, re.M))
            name, args = plan[turn] if turn < len(plan) else ("finish", {})
            return (
                f"[[ ## next_thought ## ]]\nStep {turn}.\n\n[[ ## next_tool_name ## ]]\n{name}"
                f"\n\n[[ ## next_tool_args ## ]]\n{json.dumps(args)}\n\n[[ ## completed ## ]]"
            )
        return _answer(_question(request), done)


# --- the runtime loop ---------------------------------------------------------------------------


def _react(protocol: str = "tools", max_iters: int = 5) -> ReAct[float]:
    spec = {
        "api": 2,
        "step": "tests.native:answer",
        "kind": "react",
        "instructions": "Answer the question about the planets with a number.",
        "inputs": {"question": ""},
        "outputs": {"answer": ""},
        "shape": "single",
        "demos": (),
        "adapter": "chat",
        "lm_params": {"max_tokens": 256, "temperature": 0.0},
        "options": {"max_iters": max_iters, "parse_retries": 0, "teach_turns": False},
        "protocol": protocol,
    }
    step = build_step(spec, {"question": str}, float, (lookup, calculate))
    assert isinstance(step, ReAct)
    return step


def test_tool_schema_is_the_text_protocols_description_with_json_schema_parameters() -> None:
    schema = tool_schema(lookup, describe_tool(lookup))
    assert schema == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": (
                "lookup(planet: str): Facts about a planet: number of moons, diameter in km,"
                " length of day in hours."
            ),
            "parameters": {
                "type": "object",
                "properties": {"planet": {"type": "string"}},
                "required": ["planet"],
                "additionalProperties": False,
            },
        },
    }
    assert _react().tool_schemas[1]["function"]["description"] == describe_tool(calculate)


def test_parameter_schemas_follow_the_annotations() -> None:
    from enum import Enum
    from typing import Literal

    class Unit(Enum):
        KM = "km"
        MI = "mi"

    assert param_schema(int) == {"type": "integer"}
    assert param_schema(Literal["a", "b"]) == {"enum": ["a", "b"]}
    assert param_schema(Unit) == {"enum": ["km", "mi"]}
    assert param_schema(list[float]) == {"type": "array", "items": {"type": "number"}}
    assert param_schema(bool | None) == {"anyOf": [{"type": "boolean"}, {"type": "null"}]}
    assert param_schema(dict[str, int]) == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    assert param_schema(Any) == {}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(PlanetAgent()) as fake:
        yield fake


def test_several_calls_per_turn_each_answered_with_its_call_id(server: FakeOpenAIServer) -> None:
    step = _react()
    question = "What is the moons of Uranus and Neptune added together?"
    with using(OpenAIClient("fake-model", server.url)):
        prediction = step.forward({"question": question})
    assert prediction.value == 44.0
    requests = server.requests
    assert len(requests) == 4  # lookups (2 calls), arithmetic, the reply without calls, answer
    first = requests[0]
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup", "calculate"]
    assert first["tool_choice"] == "auto"
    assert "response_format" not in first
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert "reply without calling a tool" in first["messages"][0]["content"]
    second = requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    calls = second[2]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0_0", "call_0_1"]
    assert [m["tool_call_id"] for m in second[3:]] == ["call_0_0", "call_0_1"]
    assert json.loads(second[3]["content"])["moons"] == 28
    assert "tools" not in requests[3]  # the answer call is the text step's, in both protocols
    trajectory = prediction.inputs["trajectory"]
    assert trajectory.startswith(
        'thought_0: Looking it up.\ntool_name_0: lookup\ntool_args_0: {"planet": "Uranus"}'
    )
    assert 'thought_1: \ntool_name_1: lookup\ntool_args_1: {"planet": "Neptune"}' in trajectory
    assert "tool_name_2: calculate" in trajectory and "observation_2: 44.0" in trajectory
    assert trajectory.endswith(
        "thought_3: I have what I need.\ntool_name_3: finish\ntool_args_3: {}"
    )


class ScriptLM:
    """Replies from a list of completions, in order; records (messages, params) of each call."""

    def __init__(self, replies: list[Completion]) -> None:
        self.replies = replies
        self.sent: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sent.append(([dict(m) for m in messages], params))
        return self.replies[min(len(self.sent), len(self.replies)) - 1]


ANSWER = Completion("[[ ## reasoning ## ]]\nSo.\n\n[[ ## answer ## ]]\n1")


def test_unknown_tools_and_bad_arguments_are_observations_never_guesses() -> None:
    lm = ScriptLM(
        [
            Completion(
                "",
                tool_calls=(
                    ToolCall("a", "teleport", '{"to": "Mars"}'),
                    ToolCall("b", "lookup", "{planet: Mars"),
                    ToolCall("c", "lookup", '["Mars"]'),
                    ToolCall("d", "lookup", '{"planet": "Vulcan"}'),
                    ToolCall("e", "finish", "{}"),
                ),
            ),
            Completion("Done."),
            ANSWER,
        ]
    )
    prediction = _react().forward({"question": "?"}, lm)
    results = {m["tool_call_id"]: m["content"] for m in lm.sent[1][0] if m["role"] == "tool"}
    assert results["a"] == (
        "there is no tool named 'teleport'; the tools are: lookup, calculate (reply without a"
        " tool call when you have what you need)"
    )
    assert results["b"] == "the arguments are not a JSON object: {planet: Mars"
    assert results["c"] == 'the arguments are not a JSON object: ["Mars"]'
    assert results["d"] == "lookup failed: KeyError: 'vulcan'"
    assert results["e"].startswith("there is no tool named 'finish'")  # no finish tool here
    trajectory = prediction.inputs["trajectory"]
    assert "tool_args_1: {planet: Mars\n\nobservation_1: the arguments are not" in trajectory
    assert trajectory.endswith("thought_5: Done.\ntool_name_5: finish\ntool_args_5: {}")


def test_max_iters_bounds_the_turns_and_a_cut_off_turn_ends_the_loop() -> None:
    again = Completion("", tool_calls=(ToolCall("x", "lookup", '{"planet": "Mars"}'),))
    lm = ScriptLM([again] * 3 + [ANSWER])
    _react(max_iters=3).forward({"question": "?"}, lm)
    assert len(lm.sent) == 3 + 1
    assert "tools" not in lm.sent[-1][1]
    cut = ScriptLM([Completion('{"name": "look', finish_reason="length"), ANSWER])
    prediction = _react().forward({"question": "?"}, cut)
    assert len(cut.sent) == 2
    assert prediction.inputs["trajectory"].startswith(
        "[turn 1 could not be read: the reply was cut"
    )


def test_the_async_path_sends_the_same_requests(server: FakeOpenAIServer) -> None:
    question = "How much larger is the diameter in km of Jupiter than that of Earth?"
    client = OpenAIClient("fake-model", server.url)
    with using(client):
        sync = _react().forward({"question": question})
    sent = server.requests
    server.reset()
    awaited = asyncio.run(_react().aforward({"question": question}, client))
    assert awaited.value == sync.value == 130228.0
    assert server.requests == sent


def test_the_text_protocol_is_unchanged_by_the_option(server: FakeOpenAIServer) -> None:
    with using(OpenAIClient("fake-model", server.url)):
        value = _react("text")(question="How many moons does Neptune have?")
    assert value == 16.0
    assert all("tools" not in r for r in server.requests)
    assert "next_tool_name" in server.requests[0]["messages"][0]["content"]


def test_a_spec_or_lock_with_a_bad_protocol_is_refused() -> None:
    spec = {
        "api": 2, "step": "t:f", "kind": "predict", "instructions": "Do.", "inputs": {"x": ""},
        "outputs": {"answer": ""}, "shape": "single", "demos": (), "adapter": "chat",
        "lm_params": {}, "options": {}, "protocol": "tools",
    }  # fmt: skip
    with pytest.raises(SpecError, match="@predict has no protocol"):
        build_step(spec, {"x": str}, str)
    with pytest.raises(SpecError, match="protocol must be one of text, tools"):
        build_step({**spec, "kind": "react", "protocol": "auto"}, {"x": str}, str, (lookup,))
    entry = LockEntry("sha256:x", FunctionState("Do.", protocol="smoke-signals"))
    with pytest.raises(LockError, match="unknown protocol 'smoke-signals'"):
        validate_entry("t:f", entry)
    assert (
        ReAct(
            Signature("Do.", (Field("x", str),), (Field("answer", str),)), "answer", (lookup,)
        ).protocol
        == "text"
    )


# --- the engine LM and its cache --------------------------------------------------------------


def test_the_engine_lm_and_cache_carry_tool_calls(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = LMCache(tmp_path / "cache.sqlite")
    lm = LiteLLMLM("openai/fake-model", api_base=server.url, cache=cache)
    question = "What is the moons of Mars and Venus added together?"
    step = _react()
    first = step.forward({"question": question}, lm)
    paid = server.counts["chat"]
    again = step.forward(
        {"question": question}, LiteLLMLM("openai/fake-model", api_base=server.url, cache=cache)
    )
    assert server.counts["chat"] == paid  # every turn, tool calls included, from the cache
    assert again.inputs == first.inputs and again.value == first.value == 2.0
    key_request = json.loads(
        cache._connection().execute("SELECT request FROM completions").fetchall()[1][0]
    )
    assert "tools" in key_request["params"]
    stored = [
        json.loads(row[0])
        for row in cache._connection().execute("SELECT tool_calls FROM completions")
    ]
    assert ["call_0_0", "lookup", '{"planet": "Mars"}'] in [c for s in stored for c in s]
    cache.close()


# --- the agent example, optimized and built in both protocols ------------------------------


def _agent_copy(root: Path, name: str, protocol: str) -> Path:
    """examples/agent as package `name` (unique per test), its decorator given `protocol`."""
    project = root / "agent"
    shutil.copytree(ROOT / "examples" / "agent", project, ignore=shutil.ignore_patterns("build"))
    (project / "planets").rename(project / name)
    solve = project / name / "solve.py"
    text = solve.read_text()
    text = text.replace("max_iters=5)", f'max_iters=5, protocol="{protocol}")')
    solve.write_text(text)
    pyproject = (project / "pyproject.toml").read_text().replace("planets", name)
    (project / "pyproject.toml").write_text(pyproject)
    return project


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = list(sys.path)
    before = set(sys.modules)
    yield
    sys.path[:] = saved
    for name in set(sys.modules) - before:
        if name.startswith("agentnative"):
            del sys.modules[name]


def _optimize(project: Path, url: str) -> Any:
    return CliRunner().invoke(
        main,
        ["optimize", "--api-base", url, "--model", "openai/fake-model", "--threads", "1"],
        catch_exceptions=False,
    )  # fmt: skip


def _build(project: Path) -> Any:
    return CliRunner().invoke(main, ["build"], catch_exceptions=False)


def _import_built(project: Path, name: str) -> Any:
    import importlib

    for module in [n for n in sys.modules if n == name or n.startswith(f"{name}.")]:
        del sys.modules[module]  # the source package, imported by optimize
    sys.path.insert(0, str(project / "build"))
    built = importlib.import_module(f"{name}.solve")
    assert "build" in str(built.__file__)
    return built


@pytest.mark.parametrize(
    ("protocol", "agent", "locked"),
    [
        ("auto", PlanetAgent(text_fails=True), "tools"),
        ("auto", PlanetAgent(tools_fail=True), "text"),
        ("tools", PlanetAgent(), "tools"),
        ("text", PlanetAgent(), ""),
    ],
    ids=["auto-tools-better", "auto-text-better", "tools", "text"],
)
def test_the_agent_example_in_both_protocols(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated: None,
    protocol: str,
    agent: PlanetAgent,
    locked: str,
) -> None:
    name = f"agentnative_{protocol}_{locked or 'none'}"
    project = _agent_copy(tmp_path, name, protocol)
    monkeypatch.chdir(project)
    with FakeOpenAIServer(agent) as fake:
        result = _optimize(project, fake.url)
        assert result.exit_code == 0, result.output
        lock = json.loads((project / "promptcast.lock.json").read_text())
        entry = lock["functions"][f"{name}.solve:answer"]
        assert entry["state"].get("protocol", "") == locked
        labels = [c["label"] for c in entry["optimization"]["candidates"]]
        if protocol == "auto":
            assert "zero-shot, answer protocol=text" in labels
            assert "zero-shot, answer protocol=tools" in labels
            assert (
                f"-> {locked}" in result.output
                and "protocol=auto for answer: text" in result.output
            )
        probes = [r for r in fake.requests if r["messages"][-1]["content"].startswith("Call the")]
        assert len(probes) == (0 if protocol == "text" else 1)
        assert _build(project).exit_code == 0
        code = (project / "build" / name / "solve.py").read_text()
        assert (f'"protocol": "{locked}"' in code) == bool(locked)
        first = code
        assert _build(project).exit_code == 0
        assert (project / "build" / name / "solve.py").read_text() == first  # byte-identical
        built = _import_built(project, name)
        fake.reset()
        with using(OpenAIClient("fake-model", fake.url)):
            value = built.answer("What is the diameter in km of Saturn and Mercury added together?")
        assert value == 125415.0
        sent_tools = any("tools" in r for r in fake.requests)
        assert sent_tools == (locked == "tools")
        dev = entry["optimization"]["dev_score_after"]
        assert dev == 1.0 or (locked == "" and dev is not None)


def test_an_endpoint_that_rejects_tools_is_probed_once_and_text_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None
) -> None:
    name = "agentnative_rejected"
    project = _agent_copy(tmp_path, name, "auto")
    monkeypatch.chdir(project)
    with FakeOpenAIServer(PlanetAgent(rejects_tools=True)) as fake:
        result = _optimize(project, fake.url)
        assert result.exit_code == 0, result.output
        assert "protocol=auto for answer: text (the endpoint rejects `tools`" in result.output
        assert sum(1 for r in fake.requests if "tools" in r) == 1  # one probe, one attempt
        lock = (project / "promptcast.lock.json").read_bytes()
        entry = json.loads(lock)["functions"][f"{name}.solve:answer"]
        assert entry["state"]["protocol"] == "text"
        fake.reset()
        rerun = _optimize(project, fake.url)
        assert rerun.exit_code == 0, rerun.output
        assert fake.counts.get("chat", 0) == 0  # the probe's rejection came from the cache
        assert (project / "promptcast.lock.json").read_bytes() == lock


def test_declared_tools_on_an_endpoint_that_rejects_them_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None
) -> None:
    name = "agentnative_declared"
    project = _agent_copy(tmp_path, name, "tools")
    monkeypatch.chdir(project)
    with FakeOpenAIServer(PlanetAgent(rejects_tools=True)) as fake:
        result = CliRunner().invoke(
            main,
            ["optimize", "--api-base", fake.url, "--model", "openai/fake-model"],
        )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "has protocol='tools' but the endpoint rejects `tools`" in result.output
    assert "solve.py:" in result.output
