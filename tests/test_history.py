"""`History` inputs: earlier turns rendered as the adapter renders a call and its answer.

Request bodies are checked against the OpenAI chat format (roles in order, string contents),
demos stay before the conversation (a demo's own history is one of its values), a turn that does
not fit the step is an error naming it, and optimizers treat a history like any other input.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

from promptcast import ir
from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.lockfile import Lock, LockEntry, load_lock, save_lock
from promptcast_runtime import (
    ChatAdapter,
    Completion,
    History,
    HistoryError,
    JSONAdapter,
    build_step,
    to_jsonable,
    using,
)

FIXTURES = Path(__file__).parent / "fixtures" / "convpkg"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from convpkg import steps  # noqa: E402

Label = Literal["positive", "negative"]
TURNS = [
    {"message": "The soup was cold.", "answer": "negative"},
    {"message": "Same here.", "answer": "negative"},
]


class Recorder:
    """Answers `answer`; keeps each request as the JSON body an HTTP client would send."""

    def __init__(self, answer: str = "[[ ## answer ## ]]\npositive\n\n[[ ## completed ## ]]"):
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.bodies.append(json.loads(json.dumps({"messages": list(messages), **params})))
        return Completion(self.answer)


def _spec(adapter: str = "chat", demos: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "api": 2,
        "step": "app.chat:follow_up",
        "kind": "predict",
        "instructions": "Say whether the latest message is positive or negative.",
        "inputs": {"history": "The conversation so far.", "message": "The latest message."},
        "outputs": {"answer": "The sentiment."},
        "shape": "single",
        "demos": demos,
        "adapter": adapter,
        "lm_params": {"max_tokens": 16, "temperature": 0.0},
        "options": {"parse_retries": 0},
    }


def _step(adapter: str = "chat", demos: tuple[dict[str, Any], ...] = ()) -> Any:
    return build_step(
        _spec(adapter, demos), inputs={"history": History, "message": str}, returns=Label
    )


def _check_openai_chat(body: dict[str, Any]) -> None:
    """The body's messages are OpenAI chat messages: a system message, then strictly
    alternating user/assistant turns ending with a user turn, every content a string."""
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system"
    assert roles[1:] == ["user", "assistant"] * ((len(roles) - 2) // 2) + ["user"]
    for message in body["messages"]:
        assert set(message) == {"role", "content"}
        assert isinstance(message["content"], str)


def test_history_turns_render_exactly_as_calls_and_answers_chat() -> None:
    step = _step()
    lm = Recorder()
    with using(lm):
        assert step(history=History(TURNS), message="I had the opposite experience.") == "positive"
    (body,) = lm.bodies
    _check_openai_chat(body)
    messages = body["messages"]
    assert len(messages) == 1 + 2 * len(TURNS) + 1
    plain = step.signature._replace(inputs=step.signature.inputs[1:])  # without the history
    adapter = ChatAdapter()
    for i, turn in enumerate(TURNS):
        assert messages[1 + 2 * i]["content"] == adapter.user_message(plain, turn)
        assert messages[2 + 2 * i]["content"] == adapter.assistant_message(plain, turn)
    assert messages[1]["content"].startswith("[[ ## message ## ]]\nThe soup was cold.\n\n")
    assert messages[2]["content"] == "[[ ## answer ## ]]\nnegative\n\n[[ ## completed ## ]]"
    last = messages[-1]["content"]
    assert last.startswith("[[ ## message ## ]]\nI had the opposite experience.\n\n")
    assert "[[ ## history ## ]]" not in last  # the conversation is the turns, not a field
    assert "`history` (conversation history)" in messages[0]["content"]
    assert body["max_tokens"] == 16 and body["temperature"] == 0.0


def test_history_turns_json_adapter_answers_as_json_objects() -> None:
    step = _step("json")
    lm = Recorder('{"answer": "positive"}')
    with using(lm):
        step(history=History(TURNS), message="Really? I loved it.")
    (body,) = lm.bodies
    _check_openai_chat(body)
    assert body["response_format"] == {"type": "json_object"}
    messages = body["messages"]
    assert json.loads(messages[2]["content"]) == {"answer": "negative"}
    assert messages[1]["content"].endswith("Respond with a JSON object with the keys `answer`, in that order.")
    assert messages[-1]["content"].startswith("[[ ## message ## ]]\nReally? I loved it.")


def test_demos_come_first_and_keep_their_own_history_as_a_value() -> None:
    demo = {"history": [TURNS[0]], "message": "Same here.", "answer": "negative"}
    step = _step(demos=(demo,))
    lm = Recorder()
    with using(lm):
        step(history=History([{"message": "Lovely staff.", "answer": "positive"}]), message="Yes!")
    messages = lm.bodies[0]["messages"]
    _check_openai_chat(lm.bodies[0])
    # system, demo (user, assistant), history turn (user, assistant), the call.
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    demo_user = messages[1]["content"]
    assert demo_user.startswith(
        '[[ ## history ## ]]\n[{"message": "The soup was cold.", "answer": "negative"}]\n\n'
        "[[ ## message ## ]]\nSame here."
    )
    assert messages[3]["content"].startswith("[[ ## message ## ]]\nLovely staff.")
    assert "Lovely staff" not in demo_user and "soup" not in messages[3]["content"]
    assert messages[5]["content"].startswith("[[ ## message ## ]]\nYes!")


def test_empty_history_is_just_the_call() -> None:
    step = _step()
    messages = step.messages({"history": History(), "message": "Fine."})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert step.messages({"history": [], "message": "Fine."}) == messages  # a plain list too


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        ([{"message": "a", "answer": "positive"}, {"message": "b"}], "history turn 2 lacks field(s) ['answer']"),
        ([{"message": "a", "answer": "positive", "mood": "x"}], "history turn 1 has unknown field(s) ['mood']"),
        ([{"answer": "positive", "extra": 1}], "history turn 1 lacks field(s) ['message'] and has unknown field(s) ['extra']"),
    ],
)
def test_a_turn_that_does_not_fit_is_an_error_naming_it(turns: Any, expected: str) -> None:
    with pytest.raises(HistoryError, match=re.escape(expected)):
        _step().messages({"history": History(turns), "message": "x"})


def test_history_values_that_are_not_turns_are_refused() -> None:
    with pytest.raises(HistoryError, match="history turn 2 is a str"):
        History([{"message": "a"}, "b"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of turns"):
        History("hello")  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="input `history`"):
        _step().messages({"history": 3, "message": "x"})


def test_history_is_immutable_and_json_ready() -> None:
    history = History(messages=TURNS[:1])  # DSPy's spelling
    longer = history.then(TURNS[1])
    assert len(history) == 1 and len(longer) == 2 and list(longer) == TURNS
    with pytest.raises(AttributeError):
        history.turns = ()  # type: ignore[misc]
    assert to_jsonable(longer) == TURNS
    assert to_jsonable({"history": longer}) == {"history": TURNS}
    assert History.from_data(TURNS) == longer


def test_chain_of_thought_turns_may_leave_reasoning_out() -> None:
    lm = Recorder("[[ ## reasoning ## ]]\nflip\n\n[[ ## answer ## ]]\npositive")
    with candidate(lm=lm):
        steps.follow_up_cot(History(TURNS), "I had the opposite experience.")
    messages = lm.bodies[0]["messages"]
    assert len(messages) == 6
    assert "[[ ## reasoning ## ]]" in messages[2]["content"]  # the adapter's filler for it
    with_reasoning = [{**TURNS[0], "reasoning": "cold soup"}]
    with candidate(lm=lm):
        steps.follow_up_cot(History(with_reasoning), "Same.")
    assert "[[ ## reasoning ## ]]\ncold soup" in lm.bodies[1]["messages"][2]["content"]


def test_the_dspy_adapter_refuses_a_history_clearly() -> None:
    with pytest.raises(ValueError, match="'dspy' adapter .* does not render a History"):
        _step("dspy")


def test_plain_steps_have_no_conversation_and_send_what_they_always_sent() -> None:
    spec = {**_spec(), "inputs": {"message": "The latest message."}}
    step = build_step(spec, inputs={"message": str}, returns=Label)
    assert step.conversation is None
    assert step.messages({"message": "x"}) == ChatAdapter().format(step.signature, (), {"message": "x"})
    json_step = build_step({**spec, "adapter": "json"}, inputs={"message": str}, returns=Label)
    assert json_step.messages({"message": "x"}) == JSONAdapter().format(
        json_step.signature, (), {"message": "x"}
    )


def test_frontend_accepts_history_inputs_and_refuses_them_elsewhere(tmp_path: Path) -> None:
    assert steps.follow_up.signature.inputs[0].type.kind == "history"
    assert steps.follow_up_json.signature.inputs[0].type.source == "History"
    package = tmp_path / "badhist"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "m.py").write_text(
        "import promptcast as pc\n\n\n"
        "@pc.predict\ndef two(a: pc.History, b: pc.History) -> str:\n    \"\"\"Two.\"\"\"\n\n\n"
        "@pc.predict\ndef out(a: str) -> pc.History:\n    \"\"\"Out.\"\"\"\n\n\n"
        "@pc.predict\ndef nested(a: list[pc.History]) -> str:\n    \"\"\"Nested.\"\"\"\n"
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "promptcast"), "build", str(package), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "takes 2 History inputs" in result.stderr
    assert "returns a History or Image" in result.stderr
    assert "History is an input of its own" in result.stderr


def _train() -> tuple[list[Any], list[Any]]:
    from promptcast.evaluate import Example

    rows = []
    for i, (first, before, follow, label) in enumerate(
        [
            ("Great food.", "positive", "Same here.", "positive"),
            ("Awful service.", "negative", "Same here.", "negative"),
            ("Lovely room.", "positive", "I had the opposite experience.", "negative"),
            ("Dirty floors.", "negative", "I had the opposite experience.", "positive"),
        ]
    ):
        history = History([{"message": first, "answer": before}])
        rows.append(
            Example(
                {"history": history, "message": follow, "answer": label},
                "mem.jsonl",
                i + 1,
                ("history", "message"),
                ("answer",),
            )
        )
    return rows[:2], rows[2:]


class Oracle:
    """A scripted model that reads the conversation: it answers the last turn's label, flipped
    when the latest message says "opposite"."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.requests.append([dict(m) for m in messages])
        previous = messages[-2]["content"] if len(messages) > 2 else ""
        label = "negative" if "negative" in previous else "positive"
        if "opposite" in messages[-1]["content"]:
            label = "positive" if label == "negative" else "negative"
        return Completion(f"[[ ## answer ## ]]\n{label}\n\n[[ ## completed ## ]]")


def test_bootstrap_keeps_history_inputs_in_its_demos_and_they_render(tmp_path: Path) -> None:
    from promptcast.optimizers import OptimizationTask, make_optimizer, optimize

    train, dev = _train()
    lm = Oracle()
    task = OptimizationTask(steps.follow_up, train, dev, "exact_match", lm, threads=1, seed=0)
    result = optimize(task, make_optimizer("bootstrap", {"max_bootstrapped_demos": 2}))
    demos = result.states["convpkg.steps:follow_up"].demos
    assert demos and all(isinstance(d["history"], list) for d in demos)
    assert demos[0]["history"] == to_jsonable(train[0]["history"])
    # Locked, read back and built: the demo's history is one of its values, in order.
    lock_path = tmp_path / "promptcast.lock.json"
    state = result.states["convpkg.steps:follow_up"]
    save_lock(Lock({"convpkg.steps:follow_up": LockEntry(steps.follow_up.signature.hash(), state)}), lock_path)
    lock = load_lock(lock_path)
    assert lock.entries["convpkg.steps:follow_up"].state.demos == demos
    with candidate(states={"convpkg.steps:follow_up": state}, lm=lm):
        steps.follow_up(History([{"message": "Nice.", "answer": "positive"}]), "Same here.")
    sent = lm.requests[-1]
    assert sent[1]["content"].startswith('[[ ## history ## ]]\n[{"message": "Great food."')
    assert [m["role"] for m in sent] == ["system"] + ["user", "assistant"] * (len(demos) + 1) + ["user"]


def test_built_module_with_history_passes_mypy_strict_and_ruff(tmp_path: Path) -> None:
    write_tree(plan_build(FIXTURES / "convpkg", Lock()), tmp_path)
    text = (tmp_path / "convpkg" / "steps.py").read_text()
    assert re.search(r"from promptcast_runtime import [^)]*\bHistory,\s+Image\b", text)
    assert "def follow_up(history: History, message: str)" in text
    assert "photos: list[Image], note: Image | None, history: History" in text
    assert "promptcast\n" not in text and "pc." not in text
    bin_dir = Path(sys.executable).parent
    mypy = subprocess.run(
        [str(bin_dir / "mypy"), "--strict", "--no-incremental", "-p", "convpkg"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(tmp_path)},
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    ruff = subprocess.run(
        [str(bin_dir / "ruff"), "check", "--isolated", "--select", "E,F,W,I", "--ignore", "E501", "convpkg"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_inspect_shows_history_turns(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "promptcast"),
            "inspect",
            "convpkg.steps:follow_up",
            "-i",
            "history=" + json.dumps(TURNS),
            "-i",
            "message=Really?",
            "--lock",
            str(tmp_path / "none.json"),
        ],
        capture_output=True,
        text=True,
        cwd=FIXTURES,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("--- user ---") == 3 and out.count("--- assistant ---") == 2
    assert out.index("The soup was cold.") < out.index("Same here.") < out.index("Really?")
    bad = subprocess.run(
        [
            str(Path(sys.executable).parent / "promptcast"),
            "inspect",
            "convpkg.steps:follow_up",
            "-i",
            'history=[{"message": "x"}]',
            "-i",
            "message=y",
        ],
        capture_output=True,
        text=True,
        cwd=FIXTURES,
    )
    assert bad.returncode == 2
    assert "history turn 1 lacks field(s) ['answer']" in bad.stderr


def test_ir_type_kinds_cover_history() -> None:
    assert "history" in ir.TypeKind.__args__  # type: ignore[attr-defined]


def test_the_followup_example_builds_from_its_committed_lock(tmp_path: Path) -> None:
    """examples/followup's lock (bootstrap with the local model) holds demos whose history is
    one of their values; the built module renders them before the call's own turns."""
    example = Path(__file__).resolve().parent.parent / "examples" / "followup"
    lock = load_lock(example / "promptcast.lock.json")
    entry = lock.entries["followup.chat:follow_up"]
    assert entry.optimization["optimizer"] == "bootstrap"
    assert entry.state.demos and all(isinstance(d["history"], list) for d in entry.state.demos)
    write_tree(plan_build(example / "followup", lock), tmp_path)
    spec = importlib.util.spec_from_file_location("built_followup_example", tmp_path / "followup" / "chat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lm = Recorder()
    with using(lm):
        module.follow_up(History([{"message": "Cold soup.", "answer": "negative"}]), "Same here.")
    messages = lm.bodies[0]["messages"]
    _check_openai_chat(lm.bodies[0])
    demos = len(entry.state.demos)
    assert len(messages) == 1 + 2 * demos + 2 + 1
    assert messages[1]["content"].startswith("[[ ## history ## ]]\n[{")
    assert messages[-3]["content"].startswith("[[ ## message ## ]]\nCold soup.")
