"""Issue 18, strict structured outputs: a json step sends its output type as a JSON schema --
`json_schema` (strict) where the endpoint takes it, else `json_object` with the schema (what
llama.cpp's server takes) -- chosen by ONE probe at optimize time, cached, remembered in the
lock, carried as a literal by the built module's spec; shipped code never probes or retries.

The schema is derived from the IR's type schema; hypothesis checks it against the adapter's own
rendering of random values of random types (the JSON a demo shows is JSON the schema accepts).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptcast import ir
from promptcast.cli import main
from promptcast.engine.cache import LMCache
from promptcast.engine.lm import LiteLLMLM
from promptcast.json_schema import output_schema, response_format, type_schema
from promptcast.lockfile import LockEntry, LockError, validate_entry
from promptcast.optimizers.capabilities import SCHEMA_PROBE
from promptcast_runtime import JSONAdapter, OpenAIClient, build_step, using
from promptcast_runtime.coerce import _is_object, object_fields, to_jsonable
from promptcast_runtime.signature import REASONING, Field, Signature
from promptcast_runtime.step import SpecError
from tests.support.openai_server import FakeOpenAIServer
from tests.support.payloads import ErrorReply
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_runtime_coerce import schemas

# --- the schema, from the IR ----------------------------------------------------------------

HERE = ir.SourceLocation("t.py", 1, 1)


def to_ir(tp: Any) -> ir.TypeSchema:
    """The IR type schema the frontend would resolve for the live annotation `tp`."""
    source = repr(tp)
    scalars = {str: "str", int: "int", float: "float", bool: "bool", type(None): "none"}
    if tp in scalars:
        return ir.TypeSchema(scalars[tp], source)  # type: ignore[arg-type]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ir.TypeSchema("enum", tp.__name__, values=tuple(m.value for m in tp), name="E")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return ir.TypeSchema("literal", source, values=args)
    if origin is typing.Union or origin is types.UnionType:
        inner = next(a for a in args if a is not type(None))
        return ir.TypeSchema("optional", source, (to_ir(inner),))
    if origin is list:
        return ir.TypeSchema("list", source, (to_ir(args[0]),))
    if origin is dict:
        return ir.TypeSchema("dict", source, (to_ir(str), to_ir(args[1])))
    if origin is tuple:
        return ir.TypeSchema("tuple", source, tuple(to_ir(a) for a in args))
    if isinstance(tp, type) and _is_object(tp):
        hints = typing.get_type_hints(tp)
        fields = tuple(ir.FieldSpec(n, to_ir(hints[n])) for n in object_fields(tp))
        return ir.TypeSchema("object", tp.__name__, name=tp.__name__, fields=fields)
    raise AssertionError(f"no IR for {tp!r}")


def ir_signature(
    outputs: list[tuple[str, ir.TypeSchema]], kind: str = "predict", name: str = "step"
) -> ir.Signature:
    return ir.Signature(
        qualname=f"t:{name}", name=name, module="t", kind=kind, instructions="Do.",
        docstring="Do.", inputs=(ir.FieldSpec("x", ir.TypeSchema("str", "str")),),
        outputs=tuple(ir.FieldSpec(n, t, f"The {n}.") for n, t in outputs),
        return_type=outputs[0][1], return_shape="single" if len(outputs) == 1 else "dataclass",
        location=HERE, adapter="json",
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_schema_accepts_the_adapters_own_rendering_of_any_value(data: st.DataObject) -> None:
    """Random types (scalars, labels, enums, lists, dicts, optionals, tuples, nested records):
    the JSON the JSON adapter writes for a random value of each output validates against the
    response schema derived from the IR, for one output or several, with chain of thought."""
    count = data.draw(st.integers(1, 3), label="outputs")
    drawn = [data.draw(schemas, label=f"type {i}") for i in range(count)]
    names = [f"out{i}" for i in range(count)]
    kind = data.draw(st.sampled_from(["predict", "chain_of_thought"]), label="kind")
    signature = ir_signature([(n, to_ir(t)) for n, (t, _) in zip(names, drawn, strict=True)], kind)
    values = {n: data.draw(v, label=n) for n, (_, v) in zip(names, drawn, strict=True)}
    if kind == "chain_of_thought":
        values = {"reasoning": "Because.", **values}
    # The adapter writes each value with `to_jsonable` whatever its field's annotation.
    runtime = Signature("Do.", (Field("x", str),), tuple(Field(n, str) for n in values))
    rendered = json.loads(JSONAdapter().assistant_message(runtime, values))
    schema, _ = output_schema(signature)
    jsonschema.Draft202012Validator(schema).validate(rendered)
    for (tp, _), name in zip(drawn, names, strict=True):
        jsonschema.Draft202012Validator(type_schema(to_ir(tp))[0]).validate(
            to_jsonable(values[name])
        )


@dataclasses.dataclass
class Address:
    city: str
    zip: int | None


@dataclasses.dataclass
class Person:
    name: str
    tags: list[Literal["a", "b"]]
    address: Address


def test_literal_enum_scalars_lists_objects_optional_and_strictness() -> None:
    schema, strict = type_schema(to_ir(Person))
    assert strict
    assert schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
            "address": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "zip": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
                "required": ["city", "zip"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "tags", "address"],
        "additionalProperties": False,
    }
    assert type_schema(to_ir(dict[str, float])) == (
        {"type": "object", "additionalProperties": {"type": "number"}},
        False,  # open keys: not expressible in strict mode
    )
    assert type_schema(to_ir(tuple[int, bool]))[1] is False
    cot = ir_signature([("answer", to_ir(bool))], "chain_of_thought", name="is it?")
    assert response_format(cot, "json_schema") == {
        "type": "json_schema",
        "json_schema": {
            "name": "is_it_",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string", "description": REASONING.description},
                    "answer": {"type": "boolean", "description": "The answer."},
                },
                "required": ["reasoning", "answer"],
                "additionalProperties": False,
            },
        },
    }
    assert response_format(cot, "json_object") == {
        "type": "json_object",
        "schema": output_schema(cot)[0],
    }


def test_a_spec_or_lock_with_a_bad_response_format_is_refused() -> None:
    spec = {
        "api": 2, "step": "t:f", "kind": "predict", "instructions": "Do.", "inputs": {"x": ""},
        "outputs": {"answer": ""}, "shape": "single", "demos": (), "adapter": "json",
        "lm_params": {}, "options": {}, "response_format": {"type": "json_object", "schema": {}},
    }  # fmt: skip
    step = build_step(spec, {"x": str}, str)
    assert step._request(None, {})["response_format"] == {"type": "json_object", "schema": {}}
    with pytest.raises(SpecError, match="needs the json adapter"):
        build_step({**spec, "adapter": "chat"}, {"x": str}, str)
    with pytest.raises(SpecError, match="json_schema or json_object format"):
        build_step({**spec, "response_format": {"type": "text"}}, {"x": str}, str)
    bad = LockEntry("sha256:x", ir.FunctionState("Do.", adapter="json", response_format="xml"))
    with pytest.raises(LockError, match="unknown response_format 'xml'"):
        validate_entry("t:f", bad)


# --- the probe, the lock and the built module ---------------------------------------------

PACKAGE = '''
from typing import Literal

import promptcast as pc


@pc.predict(adapter="json")
def kind(question: str) -> Literal["NUM", "LOC", "HUM"]:
    """Classify the kind of answer a question asks for."""
'''
QS = list(QUESTIONS)
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"enum": ["NUM", "LOC", "HUM"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


class Endpoint:
    """Answers like the scripted LM; `rejects_schema`: HTTP 500 on `json_schema`, word for word
    what the local llama.cpp server says."""

    def __init__(self, rejects_schema: bool) -> None:
        self.rejects_schema = rejects_schema
        self.lm = ScriptedLM(QUESTIONS)

    def __call__(self, request: dict[str, Any]) -> str:
        kind = (request.get("response_format") or {}).get("type")
        if kind == "json_schema" and self.rejects_schema:
            raise ErrorReply(500, "Input should be 'text' or 'json_object'")
        if request["messages"] == SCHEMA_PROBE["messages"]:
            return '{"ok": true}'
        return self.lm.complete(request["messages"]).text


def _formats(server: FakeOpenAIServer) -> list[str]:
    return [(r.get("response_format") or {}).get("type", "none") for r in server.requests]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    package = f"strictapp_{len(list(tmp_path.parent.iterdir()))}_{tmp_path.name[-8:]}"
    package = "".join(c if c.isalnum() else "_" for c in package)
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "steps.py").write_text(PACKAGE)
    for name, rows in (("train", QS[:8]), ("dev", QS[8:])):
        lines = [json.dumps({"question": q, "coarse": QUESTIONS[q]}) for q in rows]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.promptcast]\nsource = "{package}"\nout = "build"\n'
    )
    monkeypatch.chdir(tmp_path)
    saved = list(sys.path)
    yield tmp_path
    sys.path[:] = saved
    for name in [n for n in sys.modules if n.startswith(package)]:
        del sys.modules[name]


def _package(project: Path) -> str:
    return next(p.name for p in project.iterdir() if p.name.startswith("strictapp_"))


def _optimize(project: Path, server: FakeOpenAIServer) -> Any:
    package = _package(project)
    return CliRunner().invoke(
        main,
        ["optimize", f"{package}.steps:kind", "--train", "train.jsonl", "--dev", "dev.jsonl",
         "--metric", "exact_match", "--label", "coarse", "--optimizer", "bootstrap",
         "--model", "openai/fake-model", "--api-base", server.url],
        catch_exceptions=False,
    )  # fmt: skip


@pytest.mark.parametrize("rejects", [True, False], ids=["llama.cpp-like", "takes-json-schema"])
def test_the_endpoint_is_probed_once_and_the_lock_and_build_carry_the_choice(
    project: Path, rejects: bool
) -> None:
    package = _package(project)
    form = "json_object" if rejects else "json_schema"
    expected = (
        {"type": "json_object", "schema": SCHEMA}
        if rejects
        else {
            "type": "json_schema",
            "json_schema": {"name": "kind", "strict": True, "schema": SCHEMA},
        }
    )
    with FakeOpenAIServer(Endpoint(rejects)) as server:
        result = _optimize(project, server)
        assert result.exit_code == 0, result.output
        formats = _formats(server)
        assert formats.count("json_schema") == (1 if rejects else formats.count("json_schema"))
        probes = [r for r in server.requests if r["messages"] == SCHEMA_PROBE["messages"]]
        assert len(probes) == 1 and probes[0]["response_format"]["type"] == "json_schema"
        calls = [r for r in server.requests if r not in probes]
        assert calls and all(r.get("response_format") == expected for r in calls), [
            (r.get("response_format"), r["messages"][0]["content"][:80])
            for r in calls
            if r.get("response_format") != expected
        ]
        note = "response_format: json_object with the output schema (json_schema refused: "
        assert (note in result.output) == rejects
        lock_path = project / "promptcast.lock.json"
        lock = lock_path.read_bytes()
        entry = json.loads(lock)["functions"][f"{package}.steps:kind"]
        assert entry["state"]["response_format"] == form
        # A rerun asks nothing: the probe's outcome (a rejection too) is in the cache.
        server.reset()
        rerun = _optimize(project, server)
        assert rerun.exit_code == 0, rerun.output
        assert server.counts.get("chat", 0) == 0 and "paid calls 0" in rerun.output
        assert lock_path.read_bytes() == lock
        # Build: the schema is a literal of the generated module; rebuilding is byte-identical.
        assert CliRunner().invoke(main, ["build"], catch_exceptions=False).exit_code == 0
        code = (project / "build" / package / "steps.py").read_text()
        assert '"response_format": {' in code and f'"type": "{form}",' in code
        assert CliRunner().invoke(main, ["build"], catch_exceptions=False).exit_code == 0
        assert (project / "build" / package / "steps.py").read_text() == code
        for name in [n for n in sys.modules if n.startswith(package)]:
            del sys.modules[name]  # the source package, imported by optimize
        sys.path.insert(0, str(project / "build"))
        built = importlib.import_module(f"{package}.steps")
        assert "build" in str(built.__file__)
        assert built._KIND.format_params == {"response_format": expected}  # the literal
        server.reset()
        with using(OpenAIClient("fake-model", server.url)):
            for question in QS[8:]:
                built.kind(question)
        assert len(server.requests) == len(QS[8:])  # one request a call: no probe, no retry
        assert all(r["response_format"] == expected for r in server.requests)


def test_the_probe_is_one_attempt_and_cached(tmp_path: Path) -> None:
    with FakeOpenAIServer(Endpoint(rejects_schema=True)) as server:
        cache = LMCache(tmp_path / "cache.sqlite")
        lm = LiteLLMLM("openai/fake-model", api_base=server.url, cache=cache)
        accepted, reply = lm.probe(SCHEMA_PROBE["messages"], **SCHEMA_PROBE["params"])
        assert not accepted and "HTTP 500" in reply.text
        assert server.counts["chat"] == 1  # a 500 is retried for a call, never for a probe
        again = LiteLLMLM("openai/fake-model", api_base=server.url, cache=cache)
        assert again.probe(SCHEMA_PROBE["messages"], **SCHEMA_PROBE["params"])[0] is False
        assert server.counts["chat"] == 1
        assert "probe" not in server.requests[0]  # the marker is in the key, never sent
        cache.close()
