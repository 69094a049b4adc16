"""Streaming twins in built modules and in development: `<name>_stream` / `<name>_astream`
exist on both sides, send the same requests, yield the same partials and end with the plain
call's answer; a module that defines those names is refused; a user's code consuming them
passes `mypy --strict`."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from promptcast.cli import main
from promptcast_runtime import OpenAIClient, using
from tests.support.openai_server import FakeOpenAIServer
from tests.support.payloads import last_user_message
from tests.support.sse_stream import StreamPlan

SOURCE = '''\
"""Two steps to stream."""

from typing import Literal, NamedTuple

import promptcast as pc


class Totals(NamedTuple):
    """Totals of a receipt."""

    total: int
    note: str


@pc.chain_of_thought
def classify(question: str) -> Literal["ABBR", "DESC", "NUM"]:
    """Classify the kind of answer a question asks for."""


@pc.predict(adapter="json")
def add_up(receipt: str) -> Totals:
    """Add up the receipt."""
'''

CONSUMER = '''\
"""A user's code reading the streams, typed."""

from .steps import Totals, add_up_astream, add_up_stream, classify_astream, classify_stream


def label(question: str) -> str:
    shown: list[str] = []
    for part in classify_stream(question):
        reasoning = part.fields.get("reasoning")
        if isinstance(reasoning, str):
            shown.append(reasoning)
        if part.done:
            return part.value
    raise AssertionError("a stream always ends with its answer")


def total(receipt: str) -> int:
    parts = add_up_stream(receipt)
    try:
        for part in parts:
            if part.done:
                value: Totals = part.value
                return value.total
    finally:
        parts.close()
    return -1


async def alabel(question: str) -> str:
    async for part in classify_astream(question):
        if part.prediction is not None:
            return part.prediction.value
    return ""


async def atotal(receipt: str) -> int:
    parts = add_up_astream(receipt)
    async for part in parts:
        if part.done:
            await parts.aclose()
            return part.value.total
    return -1
'''

ANSWERS = {
    "classify": (
        "[[ ## reasoning ## ]]\nIt asks how many, a number.\n\n[[ ## answer ## ]]\nNUM\n\n"
        "[[ ## completed ## ]]"
    ),
    "add_up": '{"total": 12, "note": "tea and \\"cake\\""}',
}


def _answer(body: dict[str, Any]) -> str:
    return ANSWERS["add_up" if "receipt" in last_user_message(body) else "classify"]


def _package(tmp_path: Path) -> tuple[str, Path]:
    name = f"streampkg_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "steps.py").write_text(SOURCE)
    return name, src


def _build(src: Path, out: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(out), *args])
    assert result.exit_code == 0, result.output


def _import(root: Path, name: str) -> Any:
    sys.path.insert(0, str(root))
    try:
        __import__(f"{name}.steps")
        return sys.modules[f"{name}.steps"]
    finally:
        sys.path.remove(str(root))


def _drop(name: str) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


async def _alist(parts: Any) -> list[Any]:
    return [part async for part in parts]


def _run_all(module: Any, lm: OpenAIClient) -> dict[str, Any]:
    with using(lm):
        return {
            "classify": module.classify("How many?"),
            "classify_stream": [p.fields for p in module.classify_stream("How many?")],
            "classify_last": list(module.classify_stream("How many?"))[-1].value,
            "classify_astream": [
                p.fields for p in asyncio.run(_alist(module.classify_astream("How many?")))
            ],
            "add_up": module.add_up("receipt: tea 5, cake 7"),
            "add_up_last": list(module.add_up_stream("receipt: tea 5, cake 7"))[-1].value,
            "add_up_astream": [
                p.fields
                for p in asyncio.run(_alist(module.add_up_astream("receipt: tea 5, cake 7")))
            ],
        }


def test_built_and_development_stream_twins_send_and_yield_alike(tmp_path: Path) -> None:
    name, src = _package(tmp_path)
    out = tmp_path / "out"
    _build(src, out)
    generated = (out / name / "steps.py").read_text()
    assert "def classify_stream(question: str) -> PartialStream[" in generated
    assert "def add_up_astream(receipt: str) -> AsyncPartialStream[Totals]:" in generated
    with FakeOpenAIServer(responder=_answer) as server:
        server.set_stream(StreamPlan(chunk_chars=3))
        lm = OpenAIClient("fake-model", server.url, "k")
        built = _import(out, name)
        built_results = _run_all(built, lm)
        built_requests = server.requests
        _drop(name)
        server.reset()
        dev = _import(src.parent, name)
        dev_results = _run_all(dev, lm)
        dev_requests = server.requests
        _drop(name)
    assert built_requests == dev_requests
    assert built_results == dev_results
    assert built_results["classify"] == built_results["classify_last"] == "NUM"
    assert built_results["add_up"] == built_results["add_up_last"]
    assert built_results["add_up"].note == 'tea and "cake"'
    stream = built_results["classify_stream"]
    assert stream == built_results["classify_astream"] and len(stream) > 5
    assert set(stream[0]) == {"reasoning"}  # reasoning streams first
    assert "It asks how many, a number.".startswith(stream[0]["reasoning"])
    notes = [f.get("note") for f in built_results["add_up_astream"]]
    assert 'tea and "' in notes and not any("\\" in n for n in notes if n)  # escape decoded
    streamed = [r for r in built_requests if r.get("stream")]
    plain = [r for r in built_requests if not r.get("stream")]
    assert len(streamed) == 5 and len(plain) == 2
    assert {k: v for k, v in streamed[0].items() if not k.startswith("stream")} == plain[0]
    assert inspect.isasyncgenfunction(built.classify_astream) is False  # a plain def: it
    assert inspect.isasyncgen(built.classify_astream("x"))  # returns the async generator


def test_user_code_consuming_the_streams_passes_mypy_strict(tmp_path: Path) -> None:
    name, src = _package(tmp_path)
    out = tmp_path / "out"
    _build(src, out, "--vendor-runtime")
    (out / name / "consumer.py").write_text(CONSUMER)
    bin_dir = Path(sys.executable).parent
    mypy = subprocess.run(
        [str(bin_dir / "mypy"), "--strict", "--no-incremental", "-p", name],
        cwd=out,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(out)},
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    with FakeOpenAIServer(responder=_answer) as server:
        script = textwrap.dedent(
            f"""
            import asyncio
            from {name} import consumer
            print(consumer.label("How many?"), consumer.total("receipt: tea"),
                  asyncio.run(consumer.alabel("How many?")),
                  asyncio.run(consumer.atotal("receipt: tea")))
            """
        )
        env = {
            **os.environ,
            "PROMPTCAST_BASE_URL": server.url,
            "PROMPTCAST_MODEL": "fake-model",
            "PROMPTCAST_API_KEY": "k",
        }
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=out, capture_output=True, text=True, env=env
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NUM", "12", "NUM", "12"]


def test_a_module_that_defines_a_stream_twin_name_is_refused(tmp_path: Path) -> None:
    for twin in ("classify_stream", "classify_astream"):
        name, src = _package(tmp_path / twin)
        (src / "steps.py").write_text(SOURCE + f"\n\ndef {twin}() -> None:\n    pass\n")
        result = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / twin / "o")])
        assert result.exit_code == 2, result.output
        assert f"`{twin}` is defined in this module" in result.output
        assert "steps.py:" in result.output
        assert not (tmp_path / twin / "o").exists()
