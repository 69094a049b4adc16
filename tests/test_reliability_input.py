"""Reliability (issue 8, part 4): hostile and broken input through the CLI, one clear error each.

Why through the CLI: the unit tests (test_evaluate_data.py, test_frontend_*.py) prove each
layer locates its errors; what a user sees is the command -- its exit code, its one message, and
whether anything was left behind. Every case here runs `optimize`, `eval` or `build` in a fresh
directory and asserts: exit code 2, the message names `file:line` and what was expected, no
lock, no `.promptcast/` cache, no output tree, and not one request reached the LM server.

Decision recorded here: an *extra* column in a dataset is allowed and ignored (datasets often
carry ids or notes; a user metric may read them), so it is the one case that succeeds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promptcast.cli import main
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_cli_optimize import fresh_process

STEPS = '''from typing import Literal

import promptcast as pc


@pc.predict
def kind(question: str, level: int) -> Literal["NUM", "LOC", "HUM"]:
    """Classify the kind of answer a question asks for."""
'''
GOOD = [
    {"question": q, "level": i, "coarse": QUESTIONS[q]} for i, q in enumerate(list(QUESTIONS)[:4])
]


def jsonl(rows: list[dict[str, object]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


# name -> (file name, bytes, expected message fragment). Line 5 is the bad row where there is one.
BAD_DATA = {
    "bad_json_line": ("d.jsonl", jsonl(GOOD) + b'{"question": "x",\n', "d.jsonl:5: invalid JSON"),
    "missing_column": (
        "d.jsonl",
        jsonl([*GOOD, {"question": "Where is Oslo?", "coarse": "LOC"}]),
        "d.jsonl:5: missing column 'level' for parameter 'level'",
    ),
    "missing_label": (
        "d.jsonl",
        jsonl([*GOOD, {"question": "Where is Oslo?", "level": 1}]),
        "d.jsonl:5: missing column 'coarse'",
    ),
    "list_for_str": (
        "d.jsonl",
        jsonl([*GOOD, {"question": ["a", "b"], "level": 1, "coarse": "LOC"}]),
        "d.jsonl:5: bad value for 'question'",
    ),
    "null_for_str": (
        "d.jsonl",
        jsonl([*GOOD, {"question": None, "level": 1, "coarse": "LOC"}]),
        "d.jsonl:5: bad value for 'question'",
    ),
    "text_for_int": (
        "d.jsonl",
        jsonl([*GOOD, {"question": "q?", "level": "high", "coarse": "LOC"}]),
        "d.jsonl:5: bad value for 'level'",
    ),
    "label_not_in_literal": (
        "d.jsonl",
        jsonl([*GOOD, {"question": "q?", "level": 1, "coarse": "PLACE"}]),
        "d.jsonl:5: bad value for 'answer'",
    ),
    "text_for_int_csv": (
        "d.csv",
        b"question,level,coarse\nWhere is Lima?,1,LOC\nWho?,lots,HUM\n",
        "d.csv:3: bad value for 'level'",
    ),
    "row_not_object": ("d.jsonl", jsonl(GOOD) + b"[1, 2]\n", "d.jsonl:5: expected a JSON object"),
    "empty_file": ("d.jsonl", b"", "d.jsonl: dataset is empty"),
    "only_blank_lines": ("d.jsonl", b"\n  \n\n", "d.jsonl: dataset is empty"),
    "empty_json_array": ("d.json", b"[]", "d.json: dataset is empty"),
    "huge_row_5mb": (
        "d.jsonl",
        jsonl([*GOOD, {"question": "x" * 5_000_000, "level": 1, "coarse": "NUM"}]),
        "d.jsonl:5: row is 5,000,0",
    ),
    "huge_csv_field": (
        "d.csv",
        b"question,level,coarse\n" + b'"' + b"y" * 300_000 + b'",1,NUM\n',
        "d.csv:2: malformed CSV",
    ),
    "not_utf8": (
        "d.jsonl",
        jsonl(GOOD) + b'{"question": "caf\xe9?", "level": 1, "coarse": "LOC"}\n',
        "d.jsonl:5: not valid UTF-8",
    ),
    "utf16_file": ("d.jsonl", jsonl(GOOD).decode().encode("utf-16"), "d.jsonl:1: not valid UTF-8"),
}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    lm = ScriptedLM(QUESTIONS)
    with FakeOpenAIServer(lambda req: lm.complete(req["messages"]).text) as fake:
        yield fake


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cwd with package `hostile` (one LM function with a str and an int input)."""
    (tmp_path / "hostile").mkdir()
    (tmp_path / "hostile" / "__init__.py").write_text("")
    (tmp_path / "hostile" / "steps.py").write_text(STEPS)
    (tmp_path / "good.jsonl").write_bytes(jsonl(GOOD))
    monkeypatch.chdir(tmp_path)
    saved_path = list(sys.path)
    yield tmp_path
    fresh_process(saved_path)
    for name in [n for n in sys.modules if n == "hostile" or n.startswith("hostile.")]:
        del sys.modules[name]


def run(*args: str) -> Result:
    saved_path = list(sys.path)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        sys.path[:] = saved_path
        for name in [n for n in sys.modules if n == "hostile" or n.startswith("hostile.")]:
            del sys.modules[name]


def data_command(command: str, data: str, server: FakeOpenAIServer) -> list[str]:
    lm = ["--metric", "exact_match", "--label", "coarse", "--model", "openai/fake-model"]
    lm += ["--api-base", server.url]
    if command == "optimize":
        return ["optimize", "hostile.steps:kind", "--train", data, "--optimizer", "labeled", *lm]
    if command == "optimize-dev":
        return [
            "optimize", "hostile.steps:kind", "--train", "good.jsonl", "--dev", data,
            "--optimizer", "labeled", *lm,
        ]  # fmt: skip
    return ["eval", "hostile.steps:kind", "--data", data, *lm]


def assert_nothing_written(root: Path, server: FakeOpenAIServer) -> None:
    assert not (root / "promptcast.lock.json").exists()
    assert not (root / ".promptcast").exists()
    assert not (root / "out").exists()
    assert server.counts.get("chat", 0) == 0


@pytest.mark.parametrize("command", ["optimize", "optimize-dev", "eval"])
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_dataset_is_one_located_error_exit_2_nothing_written(
    project: Path, server: FakeOpenAIServer, case: str, command: str
) -> None:
    name, data, message = BAD_DATA[case]
    (project / name).write_bytes(data)
    result = run(*data_command(command, name, server))
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert result.output.startswith("error: ") and result.output.count("error:") == 1
    assert "Traceback" not in result.output
    assert_nothing_written(project, server)


def test_extra_columns_are_allowed_and_ignored(project: Path, server: FakeOpenAIServer) -> None:
    """Decision: extra columns (ids, notes) are fine; they never reach the prompt or the lock."""
    rows = [dict(r, note="CANARY-EXTRA-COLUMN", id=i) for i, r in enumerate(GOOD)]
    (project / "extra.jsonl").write_bytes(jsonl(rows))
    result = run(*data_command("optimize", "extra.jsonl", server))
    assert result.exit_code == 0, result.output
    lock = (project / "promptcast.lock.json").read_text()
    assert "CANARY-EXTRA-COLUMN" not in lock
    assert all("CANARY-EXTRA-COLUMN" not in json.dumps(r) for r in server.requests)
    demos = json.loads(lock)["functions"]["hostile.steps:kind"]["state"]["demos"]
    assert demos and all(set(d) == {"question", "level", "answer"} for d in demos)


# --- source -----------------------------------------------------------------------------------

HEAD = "import promptcast as pc\n\n\n"
BODY = '(q: str) -> str:\n    """Doc."""\n'

# name -> (steps.py bytes, "line:col", expected message fragment)
BAD_SOURCE: dict[str, tuple[bytes, str, str]] = {
    "decorated_method": (
        (
            HEAD
            + "class C:\n    @pc.predict\n    def m(self, q: str) -> str:\n"
            + '        """Doc."""\n'
        ).encode(),
        "6:9",
        "is a method (defined inside a class)",
    ),
    "nested_definition": (
        (
            HEAD
            + "def outer() -> None:\n    @pc.predict\n    def f(q: str) -> str:\n"
            + '        """Doc."""\n'
        ).encode(),
        "6:9",
        "is a nested function",
    ),
    "conditional_definition": (
        (
            HEAD + "if True:\n    @pc.predict\n    def f(q: str) -> str:\n" + '        """Doc."""\n'
        ).encode(),
        "6:9",
        "is a conditional definition (inside an `if`)",
    ),
    "definition_in_try": (
        (
            HEAD
            + "try:\n    @pc.predict\n    def f(q: str) -> str:\n"
            + '        """Doc."""\n'
            + "except ImportError:\n    pass\n"
        ).encode(),
        "6:9",
        "is a conditional definition (inside a `try`)",
    ),
    "star_import": (
        ("from promptcast import *\n\n\n@predict\ndef f" + BODY).encode(),
        "1:1",
        "star import from promptcast",
    ),
    "shadowed_module_alias": (
        (HEAD + "pc = object()\n\n\n@pc.predict\ndef f" + BODY).encode(),
        "4:1",
        "`pc` is imported from promptcast",
    ),
    "shadowed_decorator_def": (
        (
            "from promptcast import predict\n\n\ndef predict(fn):\n    return fn\n\n\n@predict\ndef f"
            + BODY
        ).encode(),
        "4:1",
        "`predict` is imported from promptcast",
    ),
    "positional_decorator_argument": (
        (HEAD + '@pc.predict("chat")\ndef f' + BODY).encode(),
        "4:13",
        "@predict takes keyword arguments only",
    ),
    "unknown_decorator_option": (
        (HEAD + "@pc.predict(temperature=0.5)\ndef f" + BODY).encode(),
        "4:13",
        "@predict has no option `temperature`",
    ),
    "unknown_adapter": (
        (HEAD + '@pc.predict(adapter="xml")\ndef f' + BODY).encode(),
        "4:21",
        "unknown adapter 'xml'",
    ),
    "program_with_arguments": (
        (HEAD + "@pc.program(threads=2)\ndef f" + BODY).encode(),
        "4:2",
        "@program takes no arguments",
    ),
    "not_utf8": (
        b"# caf\xe9\n" + (HEAD + "@pc.predict\ndef f" + BODY).encode(),
        "1:6",
        "file is not valid UTF-8",
    ),
    "unsupported_annotation": (
        (HEAD + '@pc.predict\ndef f(q: object) -> str:\n    """Doc."""\n').encode(),
        "5:10",
        "unsupported type `object`",
    ),
    "syntax_error": ((HEAD + "@pc.predict\ndef f(q: str -> str:\n").encode(), "5:", "steps.py"),
}


@pytest.mark.parametrize("case", list(BAD_SOURCE))
def test_bad_source_is_one_located_error_exit_2_nothing_written(
    project: Path, server: FakeOpenAIServer, case: str
) -> None:
    source, where, message = BAD_SOURCE[case]
    (project / "hostile" / "steps.py").write_bytes(source)
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*"))
    result = run("build", "hostile", "-o", "out")
    assert result.exit_code == 2, result.output
    assert f"hostile/steps.py:{where}" in result.output, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == before
    assert_nothing_written(project, server)


@pytest.mark.parametrize("case", ["decorated_method", "star_import", "not_utf8", "unknown_adapter"])
def test_bad_source_stops_optimize_and_eval_before_any_call(
    project: Path, server: FakeOpenAIServer, case: str
) -> None:
    """The same source errors stop the LM commands too, before a request or a cache file."""
    source, where, message = BAD_SOURCE[case]
    decorator = "@predict" if case == "star_import" else "@pc.predict"
    good_function = f'\n\n{decorator}\ndef kind(question: str) -> str:\n    """Doc."""\n'
    text = source + good_function.encode()
    (project / "hostile" / "steps.py").write_bytes(text)
    for command in ("optimize", "eval"):
        result = run(*data_command(command, "good.jsonl", server))
        assert result.exit_code == 2, result.output
        assert "hostile/steps.py:" in result.output and message in result.output, result.output
        assert_nothing_written(project, server)


# --- output paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("hostile", "is inside the source"),
        ("hostile/generated", "is inside the source"),
        ("hostile/../hostile/x", "is inside the source"),
        (".", "source hostile is inside the output"),
        ("..", "source hostile is inside the output"),
        ("{abs}/hostile", "is inside the source"),
        ("link/out", "is inside the source"),  # a symlink into the source
        ("notes.txt", "exists and is not a directory"),
    ],
)
def test_output_that_overlaps_or_escapes_the_source_is_refused(
    project: Path, server: FakeOpenAIServer, out: str, message: str
) -> None:
    (project / "link").symlink_to(project / "hostile", target_is_directory=True)
    (project / "notes.txt").write_text("precious")
    out = out.replace("{abs}", str(project))
    before = {p.relative_to(project).as_posix(): p.is_dir() for p in project.rglob("*")}
    result = run("build", "hostile", "-o", out)
    assert result.exit_code == 2, result.output
    assert message in result.output and "choose" in result.output, result.output
    after = {p.relative_to(project).as_posix(): p.is_dir() for p in project.rglob("*")}
    assert after == before and (project / "notes.txt").read_text() == "precious"
    assert not list(project.parent.glob(".*.new"))  # no temp tree beside anything either


def test_bad_lock_is_located_exit_2_nothing_written(
    project: Path, server: FakeOpenAIServer
) -> None:
    (project / "promptcast.lock.json").write_text('{"format": 1, "functions": {\n  "x": [}\n')
    result = run("build", "hostile", "-o", "out")
    assert result.exit_code == 2, result.output
    assert "promptcast.lock.json" in result.output and "2" in result.output
    assert not (project / "out").exists()
