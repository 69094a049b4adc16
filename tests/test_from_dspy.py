"""`promptcast from-dspy`: DSPy source + saved state -> promptcast source + lock that builds.

DSPy is not installed in the project venv, which is itself the proof that the program is read
statically (never imported). The messages the converted, built program sends are compared
with what DSPy 3.4.1 itself formats for the same program and state
(tests/fixtures/from_dspy/qa_golden.json, written by `bench/dspy_identical.py --write-fixtures`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptcast.cli import main
from promptcast.dspy_import import DSPyImportError, convert
from promptcast.lockfile import load_lock
from promptcast_runtime import Completion, using

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "from_dspy"
PROGRAM = FIXTURES / "qa_program.py"
STATE = FIXTURES / "qa_state.json"


def test_dspy_is_not_importable_here() -> None:
    """What makes every test below a test of static reading: no DSPy distribution here."""
    import importlib.metadata

    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("dspy")


def _build(project: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "promptcast", "build"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return project / "build"


@pytest.fixture
def built_qa(tmp_path: Path) -> Iterator[Any]:
    project = tmp_path / "project"
    convert(PROGRAM, STATE, project, package="qa_conv", model="openai/qwen0.5b")
    build = _build(project)
    sys.path.insert(0, str(build))
    try:
        yield importlib.import_module("qa_conv.qa_program")
    finally:
        sys.path.remove(str(build))
        for name in [m for m in sys.modules if m.startswith("qa_conv")]:
            del sys.modules[name]


def test_lock_holds_dspy_s_saved_instructions_and_demos(tmp_path: Path) -> None:
    project = tmp_path / "p"
    done = convert(PROGRAM, STATE, project, package="qa_lock")
    lock = load_lock(project / "promptcast.lock.json", required=True)
    state = json.loads(STATE.read_text())
    generate = lock.entries["qa_lock.qa_program:generate"].state
    judge = lock.entries["qa_lock.qa_program:judge"].state
    assert generate.adapter == judge.adapter == "dspy"
    assert generate.instructions == state["generate.predict"]["signature"]["instructions"]
    assert judge.instructions == "Judge whether the answer is supported.\n\nBe strict."
    # `augmented` is DSPy bookkeeping, never rendered; the fields are kept as saved.
    assert generate.demos[0] == {
        "question": "What is 2 + 3?",
        "reasoning": "2 plus 3 is 5.",
        "answer": 5,
    }
    assert generate.demos[1] == {"question": "What is 10 - 4?", "answer": 6}
    assert done.demos == {"qa_lock.qa_program:generate": 2, "qa_lock.qa_program:judge": 1}
    assert any("dspy.configure" in n for n in done.notes)  # LM setup dropped, and said so


def test_built_program_sends_dspy_s_messages(built_qa: Any) -> None:
    golden = json.loads((FIXTURES / "qa_golden.json").read_text("utf-8"))
    assert (
        built_qa._GENERATE.messages(golden["inputs"]["generate.predict"])
        == (golden["messages"]["generate.predict"])
    )
    assert built_qa._JUDGE.messages(golden["inputs"]["judge"]) == golden["messages"]["judge"]


def test_built_program_runs_forward_as_plain_python(built_qa: Any) -> None:
    answers = iter(
        [
            "[[ ## reasoning ## ]]\n7 times 6.\n\n[[ ## answer ## ]]\n42\n\n[[ ## completed ## ]]",
            '[[ ## verdict ## ]]\n{"label": "yes", "confidence": 0.8}\n\n[[ ## notes ## ]]\n'
            '["ok"]\n\n[[ ## completed ## ]]',
        ]
    )
    seen: list[list[dict[str, str]]] = []

    class LM:
        def complete(self, messages: list[dict[str, str]], **params: Any) -> Completion:
            seen.append(messages)
            return Completion(next(answers))

    with using(LM()):
        result = built_qa.qa(question="What is 7 * 6?")
    assert result.answer == 42 and result.verdict.label == "yes"
    assert len(seen) == 2
    assert "[[ ## answer ## ]]\nAnswer: 42" in seen[1][-1]["content"]  # forward's own Python


def test_converted_source_is_plain_promptcast(tmp_path: Path) -> None:
    convert(PROGRAM, STATE, tmp_path / "p", package="qa_src")
    text = (tmp_path / "p" / "qa_src" / "qa_program.py").read_text()
    assert "dspy." not in text and "import dspy" not in text
    assert '@pc.chain_of_thought(adapter="dspy")' in text
    assert "@pc.program\ndef qa(question: str):" in text
    assert "class Verdict(BaseModel):" in text  # the user's own types travel with the program
    pyproject = (tmp_path / "p" / "pyproject.toml").read_text()
    assert 'target = "qa_src.qa_program:qa"' in pyproject


def test_without_state_the_source_instructions_and_no_demos(tmp_path: Path) -> None:
    convert(PROGRAM, None, tmp_path / "p", package="qa_zero")
    lock = load_lock(tmp_path / "p" / "promptcast.lock.json", required=True)
    generate = lock.entries["qa_zero.qa_program:generate"].state
    assert generate.instructions == "Given the fields `question`, produce the fields `answer`."
    assert generate.demos == ()
    _build(tmp_path / "p")


def test_lm_params_reach_the_lock(tmp_path: Path) -> None:
    convert(PROGRAM, STATE, tmp_path / "p", package="qa_params", lm_params={"max_tokens": 128})
    lock = load_lock(tmp_path / "p" / "promptcast.lock.json", required=True)
    assert lock.entries["qa_params.qa_program:judge"].state.lm_params == {
        "max_tokens": 128,
        "temperature": 0.0,
    }


def _program(tmp_path: Path, body: str, name: str = "prog.py") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


HEAD = '''import dspy


class QA(dspy.Signature):
    """Answer."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()

'''


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (
            "class M(dspy.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.p = dspy.Refine(QA)\n\n    def forward(self, question):\n"
            "        return self.p(question=question)\n",
            13,
            "dspy.Refine",
        ),
        (
            "class M(dspy.Module):\n    def __init__(self):\n        self.k = 3\n"
            "        self.p = dspy.Predict(QA)\n\n    def forward(self, question):\n"
            "        return self.p(question=question)\n",
            12,
            "other module state",
        ),
        (
            "class M(dspy.Module):\n    def __init__(self):\n        self.p = dspy.ChainOfThought(QA)\n\n"
            "    def forward(self, question):\n        out = self.p(question=question)\n"
            "        return out.reasoning\n",
            16,
            "reasoning",
        ),
        (
            "class M(dspy.Module):\n    def __init__(self):\n        self.p = dspy.Predict(QA)\n\n"
            "    def forward(self, question):\n        return self.p(question)\n",
            15,
            "positional",
        ),
        (
            "class M(dspy.Module):\n    def __init__(self):\n        self.p = dspy.Predict(QA)\n\n"
            "    def forward(self, question):\n        with dspy.context(lm=None):\n"
            "            return self.p(question=question)\n",
            15,
            "DSPy used in `forward`",
        ),
    ],
)
def test_unsupported_constructs_name_the_construct_and_line(
    tmp_path: Path, body: str, line: int, words: str
) -> None:
    path = _program(tmp_path, HEAD + body)
    with pytest.raises(DSPyImportError) as info:
        convert(path, None, tmp_path / "out")
    message = str(info.value)
    assert f"{path}:{line}:" in message and words in message
    assert not (tmp_path / "out").exists()  # nothing written


def test_field_constraints_are_refused(tmp_path: Path) -> None:
    path = _program(
        tmp_path,
        "import dspy\n\n\nclass C(dspy.Signature):\n    q: str = dspy.InputField()\n"
        "    n: int = dspy.OutputField(ge=0)\n",
    )
    with pytest.raises(DSPyImportError, match=r"prog.py:6: field `C.n`: `ge=` is not supported"):
        convert(path, None, tmp_path / "out")


def test_a_state_from_another_program_is_refused(tmp_path: Path) -> None:
    bad = json.loads(STATE.read_text())
    bad["judge"]["signature"]["fields"].pop()
    state = tmp_path / "state.json"
    state.write_text(json.dumps(bad))
    with pytest.raises(DSPyImportError, match="saved with 3 fields; the source"):
        convert(PROGRAM, state, tmp_path / "out")
    bad = json.loads(STATE.read_text())
    bad["extra"] = bad.pop("judge")
    state.write_text(json.dumps(bad))
    with pytest.raises(DSPyImportError, match=r"predictor\(s\) \['extra'\]"):
        convert(PROGRAM, state, tmp_path / "out")


def test_a_pickle_is_never_read(tmp_path: Path) -> None:
    pkl = tmp_path / "program.pkl"
    pkl.write_bytes(b"\x80\x04")
    with pytest.raises(DSPyImportError, match="would run its code"):
        convert(PROGRAM, pkl, tmp_path / "out")


def test_cli_exit_code_2_and_one_line(tmp_path: Path) -> None:
    path = _program(tmp_path, HEAD)  # no module
    result = CliRunner().invoke(main, ["from-dspy", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no `dspy.Module` subclass found" in result.output


def test_cli_converts_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["from-dspy", str(PROGRAM), "--state", str(STATE), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--package", "qa_cli", "--lm-param", "max_tokens=64"])
    assert result.exit_code == 0, result.output
    assert "qa_cli.qa_program:generate  <- generate.predict (2 demos)" in result.output
    again = CliRunner().invoke(main, [*args, "--package", "qa_cli"])
    assert again.exit_code == 2 and "exists and is not empty" in again.output


def test_react_becomes_pc_react_with_the_same_tools(tmp_path: Path) -> None:
    path = _program(
        tmp_path,
        HEAD
        + '''
def lookup(term: str) -> str:
    """Look a term up.

    Args:
        term: The term.
    """
    return term


class Agent(dspy.Module):
    def __init__(self):
        super().__init__()
        self.act = dspy.ReAct(QA, tools=[lookup], max_iters=3)

    def forward(self, question: str):
        return self.act(question=question)
''',
        name="agent.py",
    )
    convert(path, None, tmp_path / "out", package="agent_conv")
    text = (tmp_path / "out" / "agent_conv" / "agent.py").read_text()
    assert '@pc.react(tools=[lookup], max_iters=3, adapter="dspy")' in text
    _build(tmp_path / "out")


def test_string_signature_types_and_instructions(tmp_path: Path) -> None:
    path = _program(
        tmp_path,
        "import dspy\n\n\nclass M(dspy.Module):\n    def __init__(self):\n"
        '        self.p = dspy.Predict(dspy.Signature("doc, tags: list[str] -> score: float,'
        " label: Literal['a', 'b']\", \"Score it.\"))\n\n"
        "    def forward(self, doc, tags):\n        return self.p(doc=doc, tags=tags)\n",
    )
    convert(path, None, tmp_path / "out", package="sig_conv")
    text = (tmp_path / "out" / "sig_conv" / "prog.py").read_text()
    assert "from typing import Literal, NamedTuple" in text
    assert "def p(doc: str, tags: list[str]) -> POutput:" in text
    lock = load_lock(tmp_path / "out" / "promptcast.lock.json", required=True)
    assert lock.entries["sig_conv.prog:p"].state.instructions == "Score it."
    _build(tmp_path / "out")


_TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list[str]": list[str],
    "dict[str, int]": dict[str, int],
    "Literal['x', 'y']": Literal["x", "y"],
    "Optional[int]": Optional[int],  # noqa: UP045 (DSPy users write it)
}
_desc = st.text(
    st.characters(whitelist_categories=("L", "N", "Zs", "P"), blacklist_characters='\\"`'),
    max_size=40,
).map(lambda t: " ".join(t.split()))
_field = st.tuples(st.sampled_from(sorted(_TYPES)), _desc)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inputs=st.lists(_field, min_size=1, max_size=3),
    outputs=st.lists(_field, min_size=1, max_size=3),
    instructions=st.sampled_from(["", "Do the task.", "Line one.\n\n    Indented line two."]),
    cot=st.booleans(),
)
def test_any_class_signature_converts_to_the_same_prompt(
    tmp_path_factory: pytest.TempPathFactory,
    inputs: list[tuple[str, str]],
    outputs: list[tuple[str, str]],
    instructions: str,
    cot: bool,
) -> None:
    """Whatever the fields, types, descriptions and docstring: the converted step sends the
    messages adapter dspy renders for DSPy's view of the signature (instructions as DSPy's
    `Signature.instructions` gives them, `${name}` descriptions empty)."""
    import inspect

    from promptcast_runtime.adapters import get_adapter
    from promptcast_runtime.signature import REASONING, Field, Signature
    from promptcast_runtime.step import build_step  # noqa: F401 (the built module uses it)

    tmp = tmp_path_factory.mktemp("prop")
    rows = [("in", i, t, d) for i, (t, d) in enumerate(inputs)]
    rows += [("out", i, t, d) for i, (t, d) in enumerate(outputs)]
    lines = ["from typing import Literal, Optional", "", "import dspy", "", ""]
    lines.append("class Sig(dspy.Signature):")
    if instructions:
        lines.append(f'    """{instructions}"""')
    for role, i, tp, desc in rows:
        kind = "InputField" if role == "in" else "OutputField"
        arg = f'desc="{desc}"' if desc else ""
        lines.append(f"    {role}_{i}: {tp} = dspy.{kind}({arg})")
    module = "ChainOfThought" if cot else "Predict"
    call = ", ".join(f"in_{i}=in_{i}" for i in range(len(inputs)))
    params = ", ".join(f"in_{i}" for i in range(len(inputs)))
    lines += [
        "",
        "",
        "class M(dspy.Module):",
        "    def __init__(self):",
        f"        self.step = dspy.{module}(Sig)",
        "",
        f"    def forward(self, {params}):",
        f"        return self.step({call})",
        "",
    ]
    path = tmp / "prop_prog.py"
    path.write_text("\n".join(lines), encoding="utf-8")
    name = f"prop_{abs(hash((tuple(rows), instructions, cot))) % 10**9}"
    convert(path, None, tmp / "out", package=name)
    build = _build(tmp / "out")
    sys.path.insert(0, str(build))
    try:
        built = importlib.import_module(f"{name}.prop_prog")
        values = {f"in_{i}": _VALUES[t] for i, (t, _) in enumerate(inputs)}
        messages = built._STEP.messages(values)
    finally:
        sys.path.remove(str(build))
        for mod in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[mod]
    fields = {
        role: tuple(Field(f"{role}_{i}", _TYPES[t], d) for r, i, t, d in rows if r == role)
        for role in ("in", "out")
    }
    default = (
        "Given the fields "
        + ", ".join(f"`in_{i}`" for i in range(len(inputs)))
        + ", produce the fields "
        + ", ".join(f"`out_{i}`" for i in range(len(outputs)))
        + "."
    )
    expected = Signature(
        inspect.cleandoc(instructions) if instructions else default,
        fields["in"],
        (REASONING, *fields["out"]) if cot else fields["out"],
    )
    assert messages == get_adapter("dspy").format(expected, [], values)


_VALUES: dict[str, Any] = {
    "str": "text",
    "int": 3,
    "float": 2.5,
    "bool": True,
    "list[str]": ["a", "b"],
    "dict[str, int]": {"k": 1},
    "Literal['x', 'y']": "x",
    "Optional[int]": None,
}


@pytest.mark.slow
def test_converted_trec_program_sends_what_dspy_sent_to_the_real_model(
    local_lm_url: str, tmp_path: Path
) -> None:
    """The state DSPy's BootstrapFewShot saved (bench/dspy_convert_trec.py), converted and
    built, asks the real local model exactly what DSPy asked it, and gets DSPy's completion
    back (the server is deterministic): first rows of DSPy's recorded run."""
    from promptcast_runtime import OpenAIClient, ParseError
    from tests.conftest import LOCAL_LM_MODEL

    results = ROOT / "bench" / "results" / "dspy_convert_trec"
    recorded = json.loads((results / "dspy_rows.json").read_text("utf-8"))["rows"][:3]
    project = tmp_path / "trec"
    convert(
        ROOT / "bench" / "dspy_convert_trec_program.py",
        results / "dspy_state.json",
        project,
        package="trec_slow",
        lm_params={"max_tokens": 128, "temperature": 0},
    )
    build = _build(project)
    sent: list[tuple[list[dict[str, str]], str]] = []
    client = OpenAIClient(LOCAL_LM_MODEL, base_url=local_lm_url, api_key="local", timeout=900)

    class Recording:
        def complete(self, messages: list[dict[str, str]], **params: Any) -> Completion:
            completion = client.complete(messages, **params)
            sent.append((messages, completion.text))
            return completion

    sys.path.insert(0, str(build))
    try:
        built = importlib.import_module("trec_slow.dspy_convert_trec_program")
        with using(Recording()):
            for row in recorded:
                # A ParseError is where DSPy asked again (its fallback): the first request is
                # what is compared.
                with contextlib.suppress(ParseError):
                    built.triage(question=row["question"])
    finally:
        sys.path.remove(str(build))
    assert len(sent) == len(recorded)  # one call per row, whatever the answer
    for (messages, text), row in zip(sent, recorded, strict=True):
        assert messages == row["requests"][0]["messages"]
        assert text == row["requests"][0]["completion"]
