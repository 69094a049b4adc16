"""Commands a user can trust (issue 17): `optimize` never trades a locked state for a worse or
unscored one unless asked, `eval` fails loudly when no LM answered, and `build --check` /
`inspect` turn every input mistake into one error line and exit 2 (never 1, which `--check`
means as "stale", and never a traceback).

Everything runs for real against the fake OpenAI server: litellm, the SQLite cache, the lock.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from promptcast.cli import main
from tests.support.faults import FaultKind, FaultPlan
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM, sections
from tests.test_cli_optimize import QS, fresh_process, lm_flags, write_project

LOCK = "promptcast.lock.json"
TARGET = "cliapp.steps:kind"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """test_cli_optimize's project (package `cliapp`, train/dev data) as the cwd."""
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    saved_path = list(sys.path)
    yield tmp_path
    fresh_process(saved_path)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """The scripted model behind a fake OpenAI server: right only when the prompt has demos."""
    lm = ScriptedLM(QUESTIONS)
    with FakeOpenAIServer(lambda request: lm.complete(request["messages"]).text) as fake:
        yield fake


def cli(*args: str) -> Result:
    """The CLI as a user runs it: stdout and stderr apart, exceptions become exit codes."""
    return CliRunner().invoke(main, list(args))


def optimize(fake: FakeOpenAIServer, *extra: str, dev: str = "dev.jsonl") -> Result:
    return cli(
        "optimize", TARGET, "--train", "train.jsonl", "--dev", dev, "--metric", "exact_match",
        "--label", "coarse", *lm_flags(fake), *extra,
    )  # fmt: skip


def lock_entry(root: Path) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads((root / LOCK).read_text())["functions"][TARGET]
    return entry


def cold_cache(root: Path) -> None:
    """Forget every cached answer, so the next run pays (and its budget bites) again."""
    shutil.rmtree(root / ".promptcast", ignore_errors=True)


def lock_four_demos(root: Path, fake: FakeOpenAIServer) -> bytes:
    """A lock whose entry holds 4 bootstrapped demos scoring dev 1.0; its bytes."""
    result = optimize(fake, "--optimizer", "bootstrap", "--optimizer-arg", "max_labeled_demos=4")
    assert result.exit_code == 0, result.output
    entry = lock_entry(root)
    assert len(entry["state"]["demos"]) == 4
    assert entry["optimization"]["dev_score_after"] == 1.0
    cold_cache(root)
    return (root / LOCK).read_bytes()


def demos_hurt(request: dict[str, Any]) -> str:
    """A model that is right zero-shot and says HUM whenever the prompt holds demos."""
    question = sections(request["messages"][-1]["content"])["question"]
    label = QUESTIONS.get(question, "HUM") if len(request["messages"]) == 2 else "HUM"
    return f"[[ ## answer ## ]]\n{label}\n\n[[ ## completed ## ]]"


def write_dev(root: Path, name: str, questions: list[str]) -> None:
    lines = [json.dumps({"question": q, "coarse": QUESTIONS[q]}) for q in questions]
    (root / name).write_text("\n".join(lines) + "\n")


# --- optimize keeps a better locked state ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        # 2 calls: not even the zero-shot baseline is scored -> an unscored zero-shot result
        (["--optimizer", "bootstrap", "--max-calls", "2"], "the new result is unscored"),
        # 5 calls: zero-shot scored (0.5 on the same dev data), bootstrap stopped at once
        (["--optimizer", "bootstrap", "--max-calls", "5"], "scores 0.500 < 1.000 on the same dev"),
        # a complete run that never scores on dev
        (
            ["--optimizer", "bootstrap", "--optimizer-arg", "max_bootstrapped_demos=2",
             "--optimizer-arg", "dev_score=false"],
            "it is not scored on dev (dev_score=false)",
        ),
    ],
)  # fmt: skip
def test_optimize_keeps_a_locked_state_over_an_unscored_or_worse_result(
    project: Path,
    server: FakeOpenAIServer,
    extra: list[str],
    why: str,
) -> None:
    before = lock_four_demos(project, server)
    result = optimize(server, *extra)
    assert result.exit_code == 1, result.output
    assert (project / LOCK).read_bytes() == before  # 4 demos, dev 1.0: untouched
    assert f"kept the locked state of {TARGET} (bootstrap, 4 demo(s), dev 1.000)" in result.stderr
    assert why in result.stderr and "--replace-lock" in result.stderr
    assert "unchanged" in result.stdout and "wrote" not in result.stdout


def test_replace_lock_locks_the_new_result_anyway(
    project: Path,
    server: FakeOpenAIServer,
) -> None:
    lock_four_demos(project, server)
    result = optimize(server, "--optimizer", "bootstrap", "--max-calls", "5", "--replace-lock")
    assert result.exit_code == 0, result.output
    assert "replacing the locked state" in result.stderr
    entry = lock_entry(project)
    assert entry["state"]["demos"] == [] and entry["optimization"]["dev_score_after"] == 0.5


def test_a_worse_complete_run_on_the_same_dev_data_keeps_the_lock(project: Path) -> None:
    lm = ScriptedLM(QUESTIONS)
    with FakeOpenAIServer(lambda request: lm.complete(request["messages"]).text) as fake:
        before = lock_four_demos(project, fake)
    with FakeOpenAIServer(demos_hurt) as fake:
        result = optimize(fake, "--optimizer", "labeled", "--optimizer-arg", "k=2")
    assert result.exit_code == 1, result.output
    assert (project / LOCK).read_bytes() == before
    assert "the new result scores 0.500 < 1.000 on the same dev data" in result.stderr


def test_a_better_run_replaces_the_lock(project: Path, server: FakeOpenAIServer) -> None:
    first = optimize(server, "--optimizer", "labeled", "--optimizer-arg", "k=0")
    assert first.exit_code == 0, first.output
    assert lock_entry(project)["optimization"]["dev_score_after"] == 0.5
    result = optimize(server, "--optimizer", "bootstrap", "--optimizer-arg", "max_labeled_demos=4")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert len(lock_entry(project)["state"]["demos"]) == 4


def test_a_lock_from_other_dev_data_is_scored_on_this_runs_dev_set(
    project: Path,
    server: FakeOpenAIServer,
) -> None:
    """Scores on other data are not comparable: the locked state is scored on this run's dev
    set (here it wins, 1.0 against the zero-shot 0.25), so the lock stays."""
    before = lock_four_demos(project, server)
    write_dev(project, "dev2.jsonl", [QS[0], QS[1], QS[2], QS[3]])  # NUM LOC HUM NUM
    result = optimize(server, "--optimizer", "labeled", "--optimizer-arg", "k=0", dev="dev2.jsonl")
    assert result.exit_code == 1, result.output
    assert "locked state, scored on this run's dev set: 1.000" in result.stdout
    assert "0.250 < 1.000 on this run's dev data" in result.stderr
    assert (project / LOCK).read_bytes() == before


def test_a_lock_from_other_dev_data_that_scores_worse_there_is_replaced(project: Path) -> None:
    lm = ScriptedLM(QUESTIONS)
    with FakeOpenAIServer(lambda request: lm.complete(request["messages"]).text) as fake:
        lock_four_demos(project, fake)
    write_dev(project, "dev2.jsonl", [QS[0], QS[1], QS[3], QS[4]])
    with FakeOpenAIServer(demos_hurt) as fake:
        result = optimize(
            fake, "--optimizer", "labeled", "--optimizer-arg", "k=0", dev="dev2.jsonl"
        )
    assert result.exit_code == 0, result.output
    assert "locked state, scored on this run's dev set: 0.000" in result.stdout
    entry = lock_entry(project)
    assert entry["state"]["demos"] == [] and entry["optimization"]["dev_score_after"] == 1.0


def test_no_budget_left_to_score_a_lock_from_other_data_keeps_it(
    project: Path,
    server: FakeOpenAIServer,
) -> None:
    before = lock_four_demos(project, server)
    spent = server.counts["chat"]
    write_dev(project, "dev2.jsonl", [QS[0], QS[1], QS[2], QS[3]])
    result = optimize(
        server, "--optimizer", "labeled", "--optimizer-arg", "k=0", "--max-calls", "5",
        dev="dev2.jsonl",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "could not score it on this run's dev set" in result.stderr
    assert server.counts["chat"] - spent == 5  # zero-shot on dev2, then 1 of 4 rescoring calls
    assert (project / LOCK).read_bytes() == before


def test_compile_builds_the_kept_lock_and_exits_1(
    project: Path,
    server: FakeOpenAIServer,
) -> None:
    lock_four_demos(project, server)
    result = cli(
        "compile", TARGET, "--train", "train.jsonl", "--dev", "dev.jsonl", "--metric",
        "exact_match", "--label", "coarse", "--optimizer", "bootstrap", "--max-calls", "2",
        "--source", "cliapp", "--out", "build", *lm_flags(server),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "kept the locked state" in result.stderr
    built = (project / "build" / "cliapp" / "steps.py").read_text()
    assert QS[0] in built  # the kept demos shipped


# --- eval with no LM ---------------------------------------------------------------------------


@pytest.fixture
def no_server_url() -> Iterator[str]:
    """A base URL where nothing listens (a server started, then closed)."""
    with FakeOpenAIServer() as fake:
        url = fake.url
    yield url


def eval_on(url: str, *extra: str) -> Result:
    return cli(
        "eval", TARGET, "--data", "dev.jsonl", "--metric", "exact_match", "--label", "coarse",
        "--model", "openai/fake-model", "--api-base", url, *extra,
    )  # fmt: skip


@pytest.mark.parametrize("as_json", [False, True])
def test_eval_with_every_lm_call_failing_is_an_error_not_a_zero_score(
    project: Path,
    no_server_url: str,
    as_json: bool,
) -> None:
    result = eval_on(no_server_url, *(["--json"] if as_json else []))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""  # no table, no 0.000, no JSON score
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: every LM call failed")
    assert "all 4 examples raised LMError" in lines[0]
    assert "first error (dev.jsonl:1): LMError: " in lines[0] and no_server_url in lines[0]
    assert "Traceback" not in result.output


def test_eval_reports_how_many_examples_failed_on_the_lm_side(project: Path) -> None:
    """The first example's five attempts (one try, four retries) all get a 429: that example
    is an LM failure; the other three are answered. The score stands, the count is said."""
    lm = ScriptedLM(QUESTIONS)
    faults = FaultPlan(at={n: FaultKind.RATE_LIMIT for n in range(1, 6)}, retry_after_s=0.0)
    with FakeOpenAIServer(lambda r: lm.complete(r["messages"]).text, faults=faults) as fake:
        result = eval_on(fake.url, "--threads", "1")
        assert result.exit_code == 0, result.output
        assert "exact_match: 0.250 (1/4 fully correct) | errors 1" in result.stdout
        assert "warning: 1 of 4 examples failed on the LM side" in result.stderr
        assert "first (dev.jsonl:1): LMError:" in result.stderr
        cold_cache(project)
        fake.reset()
        as_json = eval_on(fake.url, "--threads", "1", "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["lm_failures"] == 1 and data["errors"] == 1 and data["score"] == 0.25


# --- build --check and inspect: one error line, exit 2 -----------------------------------------

BAD_CONFIGS: dict[str, tuple[str | bytes, str]] = {
    "typo": (
        "[tool.promptcast]\nsoruce = 'cliapp'\n",
        "unknown key(s) in [tool.promptcast]: soruce",
    ),
    "broken TOML": ("[tool.promptcast\nsource = 'cliapp'\n", "pyproject.toml: Expected ']'"),
    "not UTF-8": (b"[tool.promptcast]\nmodel = '\xff'\n", "pyproject.toml: 'utf-8' codec can't"),
    "tool not a table": ("tool = 3\n", "[tool.promptcast] must be a table"),
    "section not a table": ("[tool]\npromptcast = 3\n", "[tool.promptcast] must be a table"),
    "bool as text": (
        "[tool.promptcast]\nvendor_runtime = 'yes'\n",
        "vendor_runtime must be true or false, not 'yes'",
    ),
    "number as text": ("[tool.promptcast]\nthreads = 'x'\n", "threads must be a whole number"),
    "path as number": ("[tool.promptcast]\nlock = 3\n", "lock must be a string, not 3"),
    "columns as number": ("[tool.promptcast]\ncolumns = 3\n", "columns must be a table"),
}


def one_error_line(result: Result, *fragments: str, diagnostic: bool = False) -> None:
    """Exit 2, no traceback, one `error: ...` line naming `fragments` on stderr. A compile
    `diagnostic` (build's report of source errors) may follow its line with the source line and
    the error count, as a compiler does."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) == 1 or (diagnostic and lines[-1] == "1 error"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["build --check", "inspect"])
def test_a_bad_config_is_one_error_line_and_exit_2(project: Path, name: str, command: str) -> None:
    """`build --check` on an up-to-date tree: 2 (bad input) must not read as 1 (stale)."""
    assert cli("build", "cliapp", "-o", "out").exit_code == 0
    text, message = BAD_CONFIGS[name]
    pyproject = project / "pyproject.toml"
    pyproject.write_bytes(text if isinstance(text, bytes) else text.encode())
    if command == "inspect":
        result = cli("inspect", TARGET, "--input", "question=Where is Oslo?")
    else:
        result = cli("build", "cliapp", "-o", "out", "--check")
    one_error_line(result, message)


SOURCES = {
    "not UTF-8": (
        b"import promptcast as pc\n\n\n@pc.predict\ndef kind(question: str) -> str:\n"
        b'    """Classify \xff the question."""\n',
        "not valid UTF-8",
    ),
    "syntax error": (
        b"import promptcast as pc\n\n\n@pc.predict\ndef kind(question: str) -> str\n"
        b'    """Classify the question."""\n',
        "latin.py:5",
    ),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
@pytest.mark.parametrize("command", ["build --check", "inspect"])
def test_a_broken_source_file_is_one_error_line_and_exit_2(
    project: Path,
    name: str,
    command: str,
) -> None:
    assert cli("build", "cliapp", "-o", "out").exit_code == 0
    text, message = SOURCES[name]
    (project / "cliapp" / "latin.py").write_bytes(text)
    if command == "inspect":
        result = cli("inspect", "cliapp.latin:kind", "--input", "question=Where is Oslo?")
        one_error_line(result, "latin.py", message if name == "syntax error" else "utf-8")
    else:
        result = cli("build", "cliapp", "-o", "out", "--check")
        one_error_line(result, "latin.py", message, diagnostic=True)


TYPED = '''
from typing import Literal

from pydantic import BaseModel

import promptcast as pc


class Item(BaseModel):
    name: str
    qty: int


@pc.predict
def count(n: int, item: Item, mode: Literal["a", "b"]) -> int:
    """Count the items."""
'''


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["n=abc"], "--input n='abc': not a valid value for `n`"),
        (["n=1.5"], "not a valid value for `n`: expected an integer"),
        (['item={"name": "x", "qty": "many"}'], "not a valid value for `item`"),
        (["item=[1, 2]"], "not a valid value for `item`"),
        (["mode=c"], "not a valid value for `mode`: expected one of a, b"),
        (["size=3"], "--input 'size=3': expected NAME=VALUE with NAME one of"),
        (["n"], "--input 'n': expected NAME=VALUE"),
        ([], "missing --input for: item, mode, n"),
    ],
)
def test_inspect_on_an_input_it_cannot_convert_is_one_error_line(
    project: Path,
    inputs: list[str],
    message: str,
) -> None:
    (project / "cliapp" / "typed.py").write_text(TYPED)
    valid = {"n": "n=2", "item": 'item={"name": "x", "qty": 2}', "mode": "mode=a"}
    given = {pair.partition("=")[0] for pair in inputs}
    pairs = inputs + [v for k, v in valid.items() if k not in given and inputs]
    args = [x for pair in pairs for x in ("--input", pair)]
    one_error_line(cli("inspect", "cliapp.typed:count", *args), message)


# --- a tool the model cannot be told how to call ------------------------------------------------

AGENT = '''import promptcast as pc

from agentpkg.tools import convert


def lookup(city):
    return {"oslo": 709_000}[city]


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@pc.react(tools=[add, lookup, convert])
def answer(question: str) -> int:
    """Answer the question with the tools."""
'''
TOOLS = '''def convert(amount: float, unit) -> float:
    """Convert an amount to metres."""
    return amount
'''
LOOKUP = "tool `lookup` of `answer` (agentpkg/steps.py:6) has no annotation on parameter `city`"
CONVERT = "tool `convert` of `answer` (agentpkg/tools.py:1) has no annotation on parameter `unit`"


@pytest.fixture
def agent_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    package = tmp_path / "agentpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text(AGENT)
    (package / "tools.py").write_text(TOOLS)
    monkeypatch.chdir(tmp_path)
    saved_path = list(sys.path)
    yield tmp_path
    sys.path[:] = saved_path
    for name in [n for n in sys.modules if n == "agentpkg" or n.startswith("agentpkg.")]:
        del sys.modules[name]


def test_a_tool_without_annotations_or_docstring_is_a_compile_error(agent_project: Path) -> None:
    result = cli("build", "agentpkg", "-o", "out")
    assert result.exit_code == 2, result.output
    assert f"{LOOKUP} and no docstring; the model learns how to call a tool" in result.stderr
    assert CONVERT in result.stderr and "`add`" not in result.stderr
    assert "2 errors" in result.stderr
    assert not (agent_project / "out").exists()


def test_the_development_path_reports_the_same_tool_errors(agent_project: Path) -> None:
    """`inspect` (and any call) reads the live function's signature through the same frontend."""
    built = cli("build", "agentpkg", "-o", "out").stderr
    result = cli("inspect", "agentpkg.steps:answer", "--input", "question=How many?")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for line in result.stderr.splitlines():
        if "tool `" in line:
            assert line in built  # word for word what the build says
    assert LOOKUP in result.stderr and CONVERT in result.stderr
