"""ReAct: tools are the user's functions, failures become observations, the answer is typed,
the built module runs the same loop with the same messages, and bootstrapping keeps whole
trajectories as demos."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.evaluate import Example
from promptcast.frontend import CompileError, load_package
from promptcast.lockfile import Lock
from promptcast.optimizers import OptimizationTask, make_optimizer, optimize
from promptcast_runtime import Completion, using

FIXTURE = Path(__file__).parent / "fixtures" / "reactpkg"
sys.path.insert(0, str(FIXTURE))

from agent import steps  # noqa: E402

PLAN = [
    ("I need Oslo's population.", "population", {"city": "Oslo"}),
    ("Now Lima's.", "population", {"city": "lima"}),
    ("Add them.", "add", {"a": "709000", "b": 10000000}),
    ("Done.", "finish", {}),
]


class AgentLM:
    """Follows `plan` turn by turn (the turn is read from the trajectory), then answers with
    the last observation. Records every request."""

    def __init__(self, plan: list[tuple[str, str, Any]] = PLAN) -> None:
        self.plan = plan
        self.sent: list[list[dict[str, str]]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sent.append([dict(m) for m in messages])
        user = messages[-1]["content"]
        if "You work in turns" in messages[0]["content"]:
            turn = len(re.findall(r"^thought_\d+:", user, re.M))
            thought, tool, args = self.plan[min(turn, len(self.plan) - 1)]
            return Completion(
                f"[[ ## next_thought ## ]]\n{thought}\n\n[[ ## next_tool_name ## ]]\n{tool}\n\n"
                f"[[ ## next_tool_args ## ]]\n{json.dumps(args)}\n\n[[ ## completed ## ]]"
            )
        observations = re.findall(r"^observation_\d+: (.*)$", user, re.M)
        last = observations[-1] if observations else "0"
        last = last if re.fullmatch(r"[\d.]+", last) else "0"
        return Completion(f"[[ ## reasoning ## ]]\nFrom the tools.\n\n[[ ## answer ## ]]\n{last}")


def _built(tmp_path: Path) -> Any:
    write_tree(plan_build(FIXTURE / "agent", Lock()), tmp_path)
    spec = importlib.util.spec_from_file_location(
        "built_agent_steps", tmp_path / "agent" / "steps.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["built_agent_steps"] = module
    spec.loader.exec_module(module)
    return module


def test_the_loop_calls_the_users_functions_and_returns_the_typed_answer() -> None:
    lm = AgentLM()
    with candidate(lm=lm):
        prediction = steps.answer.forward("How many people live in Oslo and Lima together?")
    assert prediction.value == 10_709_000 and isinstance(prediction.value, int)
    trajectory = prediction.inputs["trajectory"]
    assert "observation_0: 709000" in trajectory and "observation_1: 10000000" in trajectory
    assert "observation_2: 10709000.0" in trajectory  # "709000" was coerced to float for add
    assert len(lm.sent) == 5  # four turns (the last one finishes) + the answer
    system = lm.sent[0][0]["content"]
    assert "1. add(a: float, b: float): Add two numbers." in system
    assert "2. population(city: str): The population of a city." in system
    assert "3. finish(): you have enough to answer." in system


@pytest.mark.parametrize(
    ("step", "observation"),
    [
        (
            ("Try.", "multiply", {"a": 1}),
            "there is no tool named 'multiply'; the tools are: add, population, finish",
        ),
        (
            ("Try.", "add", {"a": 1}),
            "bad arguments for add(a: float, b: float): missing a required argument: 'b'",
        ),
        (("Try.", "add", {"a": 1, "c": 2}), "bad arguments for add"),
        (("Try.", "population", {"city": "Atlantis"}), "population failed: KeyError: 'atlantis'"),
        (("Try.", "add", {"a": "lots", "b": 2}), "bad arguments for add"),
    ],
)
def test_failures_become_observations(step: tuple[str, str, Any], observation: str) -> None:
    lm = AgentLM([step, ("Stop.", "finish", {})])
    with candidate(lm=lm):
        prediction = steps.answer.forward("?")
    assert f"observation_0: {observation}" in prediction.inputs["trajectory"]


def test_max_iters_bounds_the_loop() -> None:
    lm = AgentLM([("Again.", "add", {"a": 1, "b": 1})])  # never finishes
    with candidate(lm=lm):
        steps.answer("?")
    assert len(lm.sent) == 5 + 1  # max_iters turns, then the answer


def test_built_module_runs_the_same_loop(tmp_path: Path) -> None:
    built = _built(tmp_path)
    dev_lm, built_lm = AgentLM(), AgentLM()
    with candidate(lm=dev_lm):
        dev = steps.answer("Oslo and Lima?")
    with using(built_lm):
        shipped = built.answer("Oslo and Lima?")
        awaited = asyncio.run(built.answer_async("Oslo and Lima?"))
    assert dev == shipped == awaited == 10_709_000
    assert dev_lm.sent == built_lm.sent[: len(dev_lm.sent)] == built_lm.sent[len(dev_lm.sent) :]
    code = (tmp_path / "agent" / "steps.py").read_text()
    assert "_ANSWER: Step[int] = build_step(" in code and "tools=(add, population)," in code
    assert '"kind": "react",' in code
    assert '"max_iters": 5,' in code and "import promptcast\n" not in code


def test_bootstrap_keeps_whole_trajectories_as_demos() -> None:
    questions = [f"Oslo and Lima, take {i}?" for i in range(4)]
    examples = [
        Example(
            {"question": q, "answer": 10_709_000}, "mem.jsonl", i + 1, ("question",), ("answer",)
        )
        for i, q in enumerate(questions)
    ]
    task = OptimizationTask(
        steps.answer, examples[:3], examples[3:], "exact_match", AgentLM(), threads=2
    )
    result = optimize(
        task, make_optimizer("bootstrap", {"max_bootstrapped_demos": 2, "max_labeled_demos": 2})
    )
    demos = result.states["agent.steps:answer"].demos
    assert len(demos) == 2
    for demo in demos:
        assert set(demo) == {"question", "trajectory", "reasoning", "answer"}
        assert "tool_name_0: population" in demo["trajectory"]
        assert demo["answer"] == 10_709_000


def test_react_source_errors_are_located(tmp_path: Path) -> None:
    pkg = tmp_path / "bad"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(
        "import promptcast as pc\n\n"
        "@pc.react\ndef a(q: str) -> str:\n    'Doc.'\n\n"
        "@pc.react(tools=add)\ndef b(q: str) -> str:\n    'Doc.'\n\n"
        "@pc.react(tools=[nowhere])\ndef c(q: str) -> str:\n    'Doc.'\n\n"
        "@pc.react(tools=[len], max_iters=0)\ndef d(q: str) -> str:\n    'Doc.'\n"
    )
    with pytest.raises(CompileError) as info:
        load_package(pkg)
    text = str(info.value)
    assert "mod.py:3:1: @react needs `tools=[...]`" in text
    assert "mod.py:7:17: `tools` must be a non-empty list of function names" in text
    assert "tool `nowhere` of `c` is not defined or imported in this module" in text
    assert "`max_iters` must be a whole number from 1 to 50, not 0" in text


def test_inspect_shows_the_first_turn() -> None:
    messages = steps.answer.predictor().messages({"question": "Oslo?"})
    assert "1. add(a: float, b: float): Add two numbers." in messages[0]["content"]
    assert "`next_tool_args` (JSON object)" in messages[0]["content"]
    assert "[[ ## question ## ]]\nOslo?" in messages[-1]["content"]
