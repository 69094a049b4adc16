"""ReAct demos reach the turn call: whole successful runs (what the lock keeps) are cut into
turns by the runtime -- the first working call of each tool and the finish -- so development
and the built module teach the turns alike; a trajectory that cannot be split is skipped."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptcast import ir
from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.evaluate import Example
from promptcast.lockfile import Lock, LockEntry
from promptcast.optimizers import OptimizationTask, make_optimizer, optimize
from promptcast_runtime import Completion, using
from promptcast_runtime.react import (
    MAX_TURN_DEMO_CHARS,
    MAX_TURN_DEMOS,
    Turn,
    _observation_entry,
    _turn_entry,
    split_trajectory,
    turn_demos,
)

FIXTURE = Path(__file__).parent / "fixtures" / "reactpkg"
sys.path.insert(0, str(FIXTURE))

from agent import steps  # noqa: E402

QUALNAME = "agent.steps:answer"
TOOLS = {"add": steps.add, "population": steps.population}
PLAN = [
    ("I need Oslo's population.", "population", {"city": "Oslo"}),
    ("Now Lima's.", "population", {"city": "lima"}),
    ("Add them.", "add", {"a": 709000, "b": 10000000}),
    ("Done.", "finish", {}),
]
TURNS = "You work in turns"


class AgentLM:
    """Follows `plan` turn by turn (the turn is read from the last user message), then
    answers with the last observation. Records every request: messages and parameters."""

    def __init__(self, plan: list[tuple[str, str, Any]] = PLAN) -> None:
        self.plan = plan
        self.sent: list[list[dict[str, str]]] = []
        self.bodies: list[str] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sent.append([dict(m) for m in messages])
        self.bodies.append(json.dumps({"messages": list(messages), **params}, sort_keys=True))
        user = messages[-1]["content"]
        if TURNS in messages[0]["content"]:
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

    async def acomplete(self, messages: Any, **params: Any) -> Completion:
        return self.complete(messages, **params)

    def turn_calls(self) -> list[list[dict[str, str]]]:
        return [m for m in self.sent if TURNS in m[0]["content"]]


def _run(question: str, plan: list[tuple[str, str, Any]] = PLAN) -> dict[str, Any]:
    """A whole successful run of the zero-shot agent, as bootstrap keeps it: a demo."""
    with candidate(lm=AgentLM(plan)):
        prediction = steps.answer.forward(question)
    return {**prediction.inputs, **prediction.fields}


def _state(*demos: dict[str, Any]) -> ir.FunctionState:
    return ir.FunctionState(steps.answer.signature.instructions, tuple(demos))


def _demo_turns(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The (user, assistant) demo pairs between the system message and the live input."""
    middle = messages[1:-1]
    assert [m["role"] for m in middle] == ["user", "assistant"] * (len(middle) // 2)
    return [(u["content"], a["content"]) for u, a in zip(middle[::2], middle[1::2], strict=True)]


def test_the_turn_call_carries_demo_turns() -> None:
    demo = _run("How many people live in Oslo and Lima together?")
    lm = AgentLM()
    with candidate(states={QUALNAME: _state(demo)}, lm=lm):
        assert steps.answer("Oslo and Lima, once more?") == 10_709_000
    turn_calls = lm.turn_calls()
    assert len(turn_calls) == 4
    pairs = _demo_turns(turn_calls[0])
    # The first turn, the first call of the second tool, the finish; Lima's lookup (a second
    # call of a tool already shown) is not.
    assert len(pairs) == 3
    (user0, assistant0), (user2, assistant2), (user3, assistant3) = pairs
    assert "[[ ## question ## ]]\nHow many people live in Oslo and Lima together?" in user0
    assert "[[ ## trajectory ## ]]\n\n\nRespond" in user0  # empty: nothing done yet
    assert "[[ ## next_tool_name ## ]]\npopulation" in assistant0
    assert '[[ ## next_tool_args ## ]]\n{"city": "Oslo"}' in assistant0
    assert "observation_1: 10000000" in user2 and "thought_2" not in user2
    assert "[[ ## next_tool_name ## ]]\nadd" in assistant2
    assert '{"a": 709000, "b": 10000000}' in assistant2
    assert "observation_2: 10709000.0" in user3
    assert "[[ ## next_thought ## ]]\nDone.\n\n[[ ## next_tool_name ## ]]\nfinish" in assistant3
    # Every turn sends the same demo turns; the answer call still gets the whole run.
    assert all(_demo_turns(call) == pairs for call in turn_calls)
    answer_call = lm.sent[-1]
    ((user, assistant),) = _demo_turns(answer_call)
    assert demo["trajectory"] in user and "[[ ## answer ## ]]\n10709000" in assistant


def test_zero_shot_turns_carry_no_demos() -> None:
    lm = AgentLM()
    with candidate(lm=lm):
        steps.answer("Oslo and Lima?")
    assert all(len(call) == 2 for call in lm.sent)


def test_built_module_sends_the_development_requests(tmp_path: Path) -> None:
    demos = (_run("Oslo and Lima?"), _run("Lima and Oslo?", [PLAN[1], PLAN[0], *PLAN[2:]]))
    state = _state(*demos)
    lock = Lock({QUALNAME: LockEntry(steps.answer.signature.hash(), state, model="fake")})
    write_tree(plan_build(FIXTURE / "agent", lock), tmp_path)
    spec = importlib.util.spec_from_file_location(
        "built_agent_steps_demos", tmp_path / "agent" / "steps.py"
    )
    assert spec is not None and spec.loader is not None
    built = importlib.util.module_from_spec(spec)
    sys.modules["built_agent_steps_demos"] = built
    spec.loader.exec_module(built)
    code = (tmp_path / "agent" / "steps.py").read_text()
    assert "next_tool_name" not in code  # the lock's whole runs ship; the runtime cuts them
    dev_lm, built_lm, awaited_lm = AgentLM(), AgentLM(), AgentLM()
    with candidate(states={QUALNAME: state}, lm=dev_lm):
        dev = steps.answer("Oslo and Lima, again?")
    with using(built_lm):
        shipped = built.answer("Oslo and Lima, again?")
    with using(awaited_lm):
        awaited = asyncio.run(built.answer_async("Oslo and Lima, again?"))
    assert dev == shipped == awaited == 10_709_000
    assert dev_lm.bodies == built_lm.bodies == awaited_lm.bodies
    assert len(_demo_turns(dev_lm.turn_calls()[0])) == 6  # 3 turns from each run


GOOD = (
    _turn_entry(0, "Look.", "population", '{"city": "Oslo"}')
    + "\n\n"
    + _observation_entry(0, "709000")
)
FINISH = _turn_entry(1, "Done.", "finish", "{}")


@pytest.mark.parametrize(
    "trajectory",
    [
        "I looked up Oslo, then I was done.",  # free text (hand-written, another framework)
        GOOD.replace("\n\nobservation_0", "\nobservation_0"),  # a separator changed
        GOOD.replace("observation_0", "observation_1"),  # a numbering gap
        _turn_entry(1, "Look.", "add", "{}") + "\n\nobservation_1: 2",  # not from turn 0
        _turn_entry(0, "Look.", "add", "{}") + "\n\n" + FINISH.replace("_1", "_0"),  # no obs
        GOOD + "\n\n" + FINISH + "\n\nobservation_1: late",  # something after the finish
        GOOD.replace("Look.", "Look.\ntool_name_0: add"),  # a marker line inside a thought
        GOOD + "\n\n" + FINISH.replace("thought_1: ", "thought_1 "),  # a broken marker
        GOOD + "\n\n[turn 5 could not be read: no marker]",  # the note names the wrong turn
        " " + GOOD,  # text before the first turn
        "",
    ],
)
def test_a_trajectory_that_cannot_be_split_is_skipped(trajectory: str) -> None:
    assert split_trajectory(trajectory) is None
    good = {"question": "Oslo?", "trajectory": GOOD + "\n\n" + FINISH, "answer": 709000}
    bad = {"question": "Hmm?", "trajectory": trajectory, "answer": 1}
    demos = turn_demos([bad, good], ["question"], TOOLS)
    assert [d["question"] for d in demos] == ["Oslo?", "Oslo?"]
    assert [d["next_tool_name"] for d in demos] == ["population", "finish"]
    lm = AgentLM()
    with candidate(states={QUALNAME: _state(bad, good)}, lm=lm):
        steps.answer("Oslo?")
    assert len(_demo_turns(lm.turn_calls()[0])) == 2
    assert len(_demo_turns(lm.sent[-1])) == 2  # the answer call still sees both runs


def test_labeled_demos_and_non_text_trajectories_teach_no_turn() -> None:
    demos = [
        {"question": "Oslo?", "answer": 709000},
        {"question": "Oslo?", "trajectory": ["not", "text"], "answer": 709000},
    ]
    assert turn_demos(demos, ["question"], TOOLS) == ()


def test_a_trajectory_the_loop_wrote_splits_back_into_its_turns() -> None:
    demo = _run("Oslo and Lima?")
    turns = split_trajectory(demo["trajectory"])
    assert turns is not None
    assert [(t.number, t.tool_name, t.observation) for t in turns] == [
        (0, "population", "709000"),
        (1, "population", "10000000"),
        (2, "add", "10709000.0"),
        (3, "finish", None),
    ]
    assert turns[0].before == ""
    assert turns[3].before == demo["trajectory"].rsplit("\n\nthought_3", 1)[0]
    unreadable = GOOD + "\n\n[turn 2 could not be read: the `[[ ## next_tool_args ## ]]` ...]"
    assert split_trajectory(unreadable) == split_trajectory(GOOD)


def test_failed_and_repeated_calls_are_never_taught() -> None:
    failing = [
        ("Try.", "multiply", {"a": 1}),  # unknown tool
        ("Try.", "add", {"a": 1}),  # bad arguments
        ("Oslo.", "population", {"city": "Oslo"}),
        ("Done.", "finish", {}),
    ]
    looping = [
        ("Try.", "population", {"city": "Atlantis"}),  # the tool raises
        ("Lima.", "population", {"city": "Lima"}),
        ("Lima again.", "population", {"city": "Lima"}),  # a loop
        ("Add.", "add", {"a": 1, "b": 1}),
        ("Done.", "finish", {}),
    ]
    runs = [{"question": "Oslo?", **_run("Oslo?", plan)} for plan in (failing, looping)]
    taught = [
        (d["next_thought"], d["next_tool_name"]) for d in turn_demos(runs, ["question"], TOOLS)
    ]
    assert taught == [
        ("Oslo.", "population"),
        ("Done.", "finish"),
        ("Lima.", "population"),
        ("Add.", "add"),
        ("Done.", "finish"),
    ]


def test_a_run_that_never_finished_teaches_its_first_calls_only() -> None:
    plan = [PLAN[0], PLAN[2]]  # population, then add, add, add ... to max_iters
    demo = _run("Oslo?", plan)
    assert "finish" not in demo["trajectory"]
    taught = [d["next_tool_name"] for d in turn_demos([demo], ["question"], TOOLS)]
    assert taught == ["population", "add"]


def test_turn_demos_are_bounded_whole_runs_in_order() -> None:
    runs = [_run(f"Oslo and Lima, take {i}?") for i in range(3)]
    demos = turn_demos(runs, ["question"], TOOLS)
    assert len(demos) == MAX_TURN_DEMOS == 6  # two runs of three; the third does not fit
    assert [d["question"] for d in demos] == [runs[0]["question"]] * 3 + [runs[1]["question"]] * 3
    long = _run("x" * 10, [("y" * MAX_TURN_DEMO_CHARS, "population", {"city": "Oslo"}), PLAN[3]])
    short = _run("Oslo?", [PLAN[0], PLAN[3]])
    picked = turn_demos([long, short], ["question"], TOOLS)
    assert [d["question"] for d in picked] == ["Oslo?", "Oslo?"]  # the long run is left out


def test_bootstrapped_runs_reach_the_turn_call() -> None:
    examples = [
        Example(
            {"question": f"Oslo and Lima, take {i}?", "answer": 10_709_000},
            "mem.jsonl",
            i + 1,
            ("question",),
            ("answer",),
        )  # fmt: skip
        for i in range(4)
    ]
    task = OptimizationTask(
        steps.answer, examples[:3], examples[3:], "exact_match", AgentLM(), threads=2
    )
    result = optimize(
        task, make_optimizer("bootstrap", {"max_bootstrapped_demos": 2, "max_labeled_demos": 0})
    )
    lm = AgentLM()
    with candidate(states=result.states, lm=lm):
        steps.answer("Oslo and Lima?")
    pairs = _demo_turns(lm.turn_calls()[0])
    assert len(pairs) == 6
    assert [re.search(r"next_tool_name ## \]\]\n(\w+)", a).group(1) for _, a in pairs] == [  # type: ignore[union-attr]
        "population", "add", "finish"
    ] * 2  # fmt: skip


# --- any text: split only where certain ----------------------------------------------------------

_pieces = st.sampled_from(
    ["a", " ", "\n", "\n\n", "thought_0: ", "tool_name_1: ", "observation_0: ", "finish", "{}",
     "[turn 1 could not be read: x]", "é", "tool_args_0: "]
)  # fmt: skip
_text = st.lists(_pieces, max_size=12).map("".join)
_plain = st.text(max_size=30).filter(
    lambda t: not re.search(r"(?:^|\n)(?:thought|tool_name|tool_args|observation)_\d+: ", t)
)


@settings(max_examples=300, deadline=None)
@given(_text)
def test_any_text_splits_only_into_what_writes_it_back(text: str) -> None:
    turns = split_trajectory(text)
    if turns is not None:
        entries = []
        for turn in turns:
            entries.append(_turn_entry(turn.number, turn.thought, turn.tool_name, turn.tool_args))
            if turn.observation is not None:
                entries.append(_observation_entry(turn.number, turn.observation))
        written = "\n\n".join(entries)
        assert text == written or text.startswith(written + "\n\n[turn ")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_plain, _plain, _plain, _plain), min_size=1, max_size=4), st.booleans())
def test_what_the_loop_writes_splits_back_exactly(
    turns: list[tuple[str, str, str, str]], finished: bool
) -> None:
    entries: list[str] = []
    expected: list[Turn] = []
    for k, (thought, name, args, observation) in enumerate(turns):
        name = name.replace("\n", " ")
        if name.lower() == "finish":
            name += "x"
        before = "\n\n".join(entries)
        entries += [_turn_entry(k, thought, name, args), _observation_entry(k, observation)]
        expected.append(Turn(k, before, thought, name, args, observation))
    if finished:
        before = "\n\n".join(entries)
        entries.append(_turn_entry(len(turns), "Done.", "finish", "{}"))
        expected.append(Turn(len(turns), before, "Done.", "finish", "{}", None))
    assert split_trajectory("\n\n".join(entries)) == expected


def test_teach_turns_false_keeps_demos_to_the_answer_call() -> None:
    """`@pc.react(..., teach_turns=False)` (the default; the fixture sets True): the turn call
    sees no demo turns, the answer call still sees the whole runs (the registry option reaches
    the runtime through the spec)."""
    from promptcast import ir
    from promptcast.steps import dev_step

    demo = _run("How many people live in Oslo and Lima together?")
    signature = steps.answer.signature
    quiet = dataclasses.replace(signature, options=(("teach_turns", False),))
    assert quiet.hash() != signature.hash()  # a different step: its lock entry would be stale
    step = dev_step(quiet, _state(demo), steps.answer.annotations, steps.answer.options["tools"])
    lm = AgentLM()
    assert step.forward({"question": "Oslo and Lima, once more?"}, lm).value == 10_709_000
    assert all(_demo_turns(call) == [] for call in lm.turn_calls())
    ((user, _),) = _demo_turns(lm.sent[-1])
    assert demo["trajectory"] in user
    assert isinstance(signature, ir.Signature)
