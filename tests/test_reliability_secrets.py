"""Reliability (issue 8, part 5): secrets never leak; model and data text never become code.

Why: a build tool handles two kinds of dangerous strings. API keys live in the environment and
must never be written anywhere a repository or a log could carry them (lock, cache, generated
tree, command output). Model output and dataset values are attacker-controllable text, so they
must stay data: the cache holds JSON, not pickles; the runtime never evaluates a completion;
and codegen writes them as literals that cannot change the generated module's structure.
"""

from __future__ import annotations

import ast
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptcast import ir
from promptcast.cli import main
from promptcast.codegen.build import plan_build
from promptcast.frontend.package import load_package
from promptcast.lockfile import Lock, LockEntry
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_cli_optimize import PACKAGE, fresh_process, write_project

CANARY = "sk-canary-RELIABILITY-7f3a9c1e5b"
OTHER_CANARY = "pc-canary-PROMPTCAST-42d8e6"
RUNTIME = Path(__file__).resolve().parents[1] / "runtime" / "promptcast_runtime"


DANGEROUS_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "importlib", "ast"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    saved_path = list(sys.path)
    yield tmp_path
    fresh_process(saved_path)


def cli(*args: str) -> Result:
    saved_path = list(sys.path)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        fresh_process(saved_path)


def test_canary_keys_never_reach_lock_cache_tree_or_output(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """optimize -> build -> eval --built with canary keys in the environment and an LM failure."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("PROMPTCAST_API_KEY", OTHER_CANARY)
    caplog.set_level(logging.DEBUG)
    lm = ScriptedLM(QUESTIONS)
    outputs: list[str] = []
    with FakeOpenAIServer(lambda req: lm.complete(req["messages"]).text) as server:
        flags = ["--metric", "exact_match", "--label", "coarse", "--model", "openai/fake-model"]
        flags += ["--api-base", server.url]
        for args in (
            ["optimize", "cliapp.steps:kind", "--train", "train.jsonl", "--dev", "dev.jsonl",
             "--optimizer", "bootstrap", *flags],
            ["build", "cliapp", "-o", "out", "--vendor-runtime"],
            ["eval", "cliapp.steps:kind", "--built", "out", "--data", "dev.jsonl", *flags],
            ["eval", "cliapp.steps:kind", "--data", "dev.jsonl", "--json", *flags],
        ):  # fmt: skip
            result = cli(*args)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
        assert server.counts["chat"] > 0
    # An LM failure's message (which litellm may build from the request) is redacted too.
    failing = cli("eval", "cliapp.steps:kind", "--data", "dev.jsonl", "--metric", "exact_match",
                  "--label", "coarse", "--model", "openai/fake-model",
                  "--api-base", "http://127.0.0.1:9/v1", "--threads", "1")  # fmt: skip
    outputs.append(failing.output)
    files = [p for p in project.rglob("*") if p.is_file()]
    assert any(p.name == "cache.sqlite" for p in files) and (project / "out").is_dir()
    assert (project / "promptcast.lock.json").exists()
    for secret in (CANARY, OTHER_CANARY):
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret} leaked into {path}"
        for text in [*outputs, caplog.text]:
            assert secret not in text, "key leaked into command output or logs"


def test_cache_rows_are_json_text_never_pickles(project: Path) -> None:
    lm = ScriptedLM(QUESTIONS)
    with FakeOpenAIServer(lambda req: lm.complete(req["messages"]).text) as server:
        result = cli(
            "optimize", "cliapp.steps:kind", "--train", "train.jsonl", "--dev", "dev.jsonl",
            "--optimizer", "labeled", "--metric", "exact_match", "--label", "coarse",
            "--model", "openai/fake-model", "--api-base", server.url,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = project / ".promptcast" / "cache.sqlite"
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT typeof(key), typeof(text), typeof(usage), typeof(model), typeof(request),"
            " usage, request FROM completions"
        ).fetchall()
        meta_types = {t for (t,) in db.execute("SELECT typeof(value) FROM meta")}
    assert rows and meta_types <= {"text"}
    for *types, usage, request in rows:
        assert types == ["text"] * 5  # no BLOB column anywhere: nothing to unpickle
        assert isinstance(json.loads(usage), dict) and isinstance(json.loads(request), dict)
    raw = path.read_bytes()
    assert b"\x80\x04\x95" not in raw and b"\x80\x05\x95" not in raw  # pickle protocol 4/5 frames


def _dangerous_uses(source: str) -> list[str]:
    """Calls or imports through which text could become code or objects."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            owner = (
                func.value.id
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else ""
            )
            if name in {"eval", "exec", "compile", "__import__", "literal_eval"}:
                found.append(f"{owner + '.' if owner else ''}{name}() at line {node.lineno}")
            if name in {"loads", "load"} and owner not in {"json", ""}:
                found.append(f"{owner}.{name}() at line {node.lineno}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for top in [module or "", *names]:
                if top.split(".")[0] in DANGEROUS_MODULES:
                    found.append(f"import {top} at line {node.lineno}")
    return found


def test_runtime_never_evaluates_model_output() -> None:
    """No eval/exec/compile/literal_eval/pickle/marshal in the runtime: completions stay data."""
    files = sorted(RUNTIME.glob("*.py"))
    assert len(files) >= 6
    found = {p.name: _dangerous_uses(p.read_text()) for p in files}
    assert not any(found.values()), found


def test_generated_module_never_evaluates_model_output(tmp_path: Path) -> None:
    src = tmp_path / "cliapp"
    src.mkdir()
    (src / "__init__.py").write_text("")
    (src / "steps.py").write_text(PACKAGE)
    plan = plan_build(src, Lock({}), vendor_runtime=True)
    for rel, data in plan.files.items():
        if rel.endswith(".py"):
            assert not _dangerous_uses(data.decode()), rel


# --- no string from data or a model changes the generated code's structure -------------------

_STEPS = "cliapp/steps.py"
_SIGNATURE = None


def _signature() -> Any:
    global _SIGNATURE
    if _SIGNATURE is None:
        root = Path(__file__).parent / "fixtures" / "reliability" / "cliapp"
        _SIGNATURE = load_package(root).signature("cliapp.steps:kind")
    return _SIGNATURE


def _shape(tree: ast.Module) -> list[str]:
    """Top-level statement kinds and the names they bind: the structure a string must not alter."""
    shape = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            shape.append(f"{type(node).__name__}:{node.name}")
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            shape.append(f"AnnAssign:{node.target.id}")
        elif isinstance(node, ast.ImportFrom):
            shape.append(f"ImportFrom:{node.module}:{','.join(a.name for a in node.names)}")
        else:
            shape.append(type(node).__name__)
    return shape


def _predictor_literals(tree: ast.Module) -> tuple[str, list[dict[str, Any]]]:
    """Instructions and demos as written in the module, read back with literal_eval (test-side)."""
    assign = next(n for n in tree.body if isinstance(n, ast.AnnAssign))
    call = assign.value
    assert isinstance(call, ast.Call)
    spec = ast.literal_eval(call.args[0])  # the step spec: plain data, nothing else
    return spec["instructions"], [dict(d) for d in spec["demos"]]


def _generate(instructions: str, demos: tuple[dict[str, Any], ...]) -> str:
    signature = _signature()
    state = ir.FunctionState(instructions, demos)
    lock = Lock({signature.qualname: LockEntry(signature.hash(), state, model="m")})
    root = Path(__file__).parent / "fixtures" / "reliability" / "cliapp"
    return plan_build(root, lock).files[_STEPS].decode()


hostile_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=60
) | st.sampled_from(
    [
        '"""\nimport os; os.system("x")\n"""',
        "'''",
        "\\",
        '"), exec("1"), ("',
        "\x00\r\n\u2028\u2029",
        "{{ demos }} {% raw %}",
        "# noqa\nimport pickle",
        "\N{RIGHT-TO-LEFT OVERRIDE}evil",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instructions=hostile_text,
    demos=st.lists(
        st.fixed_dictionaries(
            {"question": hostile_text, "answer": st.sampled_from(["NUM", "LOC"])}
        ),
        max_size=3,
    ),
)
def test_data_and_model_strings_cannot_change_the_generated_structure(
    instructions: str, demos: list[dict[str, Any]]
) -> None:
    baseline = ast.parse(_generate("Classify.", ()))
    text = _generate(instructions, tuple(demos))
    tree = ast.parse(text)
    assert _shape(tree) == _shape(baseline)
    assert _predictor_literals(tree) == (instructions, demos)
    assert not _dangerous_uses(text)
