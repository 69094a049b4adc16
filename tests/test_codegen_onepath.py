"""One path: what a decorated function sends in development is what its generated twin sends.

For generated states (instructions, demos with hostile strings, sampling parameters) and inputs,
the request each side sends -- messages *and* every parameter, serialized as the request body --
is recorded by the same fake LM and compared byte for byte, and the same completion parses to
equal values on both sides. The generated module is built by the real build pipeline
and imported from disk, so this also proves the literals round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptcast import ir
from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.lockfile import Lock, LockEntry
from promptcast_runtime import Completion, to_jsonable, using

FIXTURE = Path(__file__).parent / "fixtures" / "onepath"
sys.path.insert(0, str(FIXTURE))

from onepath import steps  # noqa: E402

FUNCTIONS = [
    steps.question_type,
    steps.add_up,
    steps.mood,
    steps.judge,
    steps.read_totals,
    steps.find_address,
    steps.extract_contact,
    steps.best_total,
]
ANSWERS = {
    "onepath.steps:question_type": "[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]",
    "onepath.steps:add_up": (
        "[[ ## reasoning ## ]]\n2 + 3\n\n[[ ## total ## ]]\n$5\n\n[[ ## items ## ]]\n"
        '["tea", "cake"]\n\n[[ ## completed ## ]]'
    ),
    "onepath.steps:mood": "[[ ## answer ## ]]\nSad.\n",
    "onepath.steps:read_totals": 'Here: {"total": "1,200", "items": ["a", "b"],}',
    "onepath.steps:find_address": (
        "[[ ## street ## ]]\n1 Main St\n\n[[ ## city ## ]]\nOslo\n\n[[ ## completed ## ]]"
    ),
    "onepath.steps:extract_contact": (
        '```json\n{"reasoning": "signed", "name": "Ann Lee", "email": null,'
        ' "tags": ["vip"], "priority": "1"}\n```'
    ),
    "onepath.steps:best_total": (
        "[[ ## reasoning ## ]]\n2 + 3\n\n[[ ## total ## ]]\n5\n\n[[ ## items ## ]]\n"
        '["tea", "cake"]\n\n[[ ## completed ## ]]'
    ),
    "onepath.steps:judge": (
        "[[ ## reasoning ## ]]\nok\n[[ ## correct ## ]]\nyes\n[[ ## confidence ## ]]\n0.9"
    ),
}
_counter = itertools.count()
BUILDS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
"""Settings of the tests that build and import a module per example (slow; tmp dirs)."""

hostile_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40
) | st.sampled_from(['"""', "'''", "\\", "{{ x }}", "\x00", "\r\n", "é\u2028ü", "\\n"])


class RecordingLM:
    """Answers each function's fixed completion; records the messages it was sent, and each
    whole request body (messages and parameters) as the JSON an HTTP client would send."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.sent: list[list[dict[str, str]]] = []
        self.bodies: list[str] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sent.append([dict(m) for m in messages])
        self.bodies.append(_body(messages, params))
        return Completion(self.answer)


def _body(messages: Any, params: dict[str, Any]) -> str:
    return json.dumps({"messages": list(messages), **params}, sort_keys=True, ensure_ascii=False)


lm_params = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.sampled_from([0.0, 0.3, 1.0]),
        "max_tokens": st.integers(1, 4096),
        "stop": st.lists(hostile_text.filter(bool), max_size=2),
        "seed": st.integers(0, 2**31),
        "top_p": st.floats(0.1, 1.0),
    },
)


def _demo_for(function: Any, values: list[str]) -> dict[str, Any]:
    """A demo holding hostile strings in every text-valued field of the function's signature."""
    demo: dict[str, Any] = {}
    text = itertools.cycle(values or [""])
    for field in (*function.signature.inputs, *function.signature.outputs):
        demo[field.name] = next(text) if field.type.kind == "str" else _plain_value(field.type)
    return demo


def _plain_value(schema: ir.TypeSchema) -> Any:
    return {
        "literal": schema.values[0] if schema.values else "x",
        "enum": schema.values[0] if schema.values else "x",
        "int": 3,
        "float": 0.5,
        "bool": True,
        "list": [1, 2],
        "dict": {"k": "v"},
        "optional": None,
    }.get(schema.kind, "x")


def _import_built(out: Path) -> Any:
    """Import the generated `onepath.steps` from `out` under a fresh name."""
    name = f"built_onepath_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(
        name, out / "onepath" / "steps.py", submodule_search_locations=None
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _inputs(draw_text: str) -> dict[str, dict[str, Any]]:
    return {
        "question_type": {"question": draw_text},
        "add_up": {"receipt": draw_text, "currency": None},
        "mood": {"text": draw_text, "scores": [1, -2, 3]},
        "judge": {"claim": draw_text, "evidence": {"a": draw_text, "b'\"": "x"}},
        "read_totals": {"receipt": draw_text},
        "best_total": {"receipt": draw_text},
        "find_address": {"letter": draw_text},
        "extract_contact": {
            "signature_block": draw_text,
            "known": steps.Address(street=draw_text, city='Zürich "Old" Town'),
        },
    }


@settings(max_examples=25, **BUILDS)
@given(
    instructions=hostile_text,
    demo_text=st.lists(hostile_text, max_size=3),
    text=hostile_text,
    params=lm_params,
    pool_text=st.lists(hostile_text, max_size=4),
    nearest_k=st.integers(0, 3),
    ensemble=st.booleans(),
)
def test_development_and_generated_send_identical_requests(
    tmp_path_factory: Any,
    instructions: str,
    demo_text: list[str],
    text: str,
    params: dict[str, Any],
    pool_text: list[str],
    nearest_k: int,
    ensemble: bool,
) -> None:
    def state(f: Any) -> ir.FunctionState:
        knn = bool(nearest_k and pool_text) and f.signature.kind in ("predict", "chain_of_thought")
        return ir.FunctionState(
            instructions=instructions or "Do the task.",
            demos=(_demo_for(f, demo_text),) if demo_text and not knn else (),
            adapter=f.signature.adapter,
            lm_params=params,
            nearest_k=nearest_k if knn else 0,
            demo_pool=tuple(_demo_for(f, [t, text]) for t in pool_text) if knn else (),
        )

    def voted(f: Any) -> ir.FunctionState:
        first = state(f)
        if not ensemble or first.nearest_k:
            return first
        other = ir.FunctionState(
            instructions=f"{first.instructions} (second member)",
            demos=(_demo_for(f, [text]),),
            adapter=f.signature.adapter,
            lm_params={**params, "temperature": 0.5},
        )
        return dataclasses.replace(first, members=(first, other))

    states = {f.qualname: voted(f) for f in FUNCTIONS}
    lock = Lock(
        {
            f.qualname: LockEntry(f.signature.hash(), states[f.qualname], model="fake")
            for f in FUNCTIONS
        }
    )
    out = tmp_path_factory.mktemp("built")
    write_tree(plan_build(FIXTURE / "onepath", lock), out)
    built = _import_built(out)
    inputs = _inputs(text)
    for function in FUNCTIONS:
        answer = ANSWERS[function.qualname]
        dev_lm, built_lm = RecordingLM(answer), RecordingLM(answer)
        with candidate(states=states, lm=dev_lm):
            dev_value = function(**inputs[function.__name__])
        with using(built_lm):
            built_value = getattr(built, function.__name__)(**inputs[function.__name__])
        assert dev_lm.bodies == built_lm.bodies, function.qualname
        assert dev_lm.sent == built_lm.sent, function.qualname
        # The state's sampling is sent exactly by the answering call (the last); a kind may
        # override some of it on purpose in calls before (multi-chain attempts sample hotter).
        # (An ensemble's last call is its last member's answering call.)
        members = states[function.qualname].members or (states[function.qualname],)
        last = members[-1].lm_params
        sent = json.loads(built_lm.bodies[-1])
        assert {k: sent[k] for k in last} == json.loads(json.dumps(last))
        assert to_jsonable(dev_value) == to_jsonable(built_value)
        assert type(dev_value).__name__ == type(built_value).__name__
        generated = getattr(built, f"_{function.__name__.upper()}")
        built_members = getattr(generated, "members", None) or (generated,)
        assert len(built_members) == len(members)
        for member, state_of in zip(built_members, members, strict=True):
            assert member.signature.instructions == state_of.instructions
            assert list(member.demos) == list(state_of.demos)


def test_parsed_values_have_the_declared_types() -> None:
    lm = RecordingLM(ANSWERS["onepath.steps:add_up"])
    with candidate(lm=lm):
        totals = steps.add_up("tea 2, cake 3")
    assert totals == steps.Totals(5, ["tea", "cake"])
    with candidate(lm=RecordingLM(ANSWERS["onepath.steps:mood"])):
        assert steps.mood("meh", [1]) is steps.Mood.SAD
    with candidate(lm=RecordingLM(ANSWERS["onepath.steps:judge"])):
        assert steps.judge("c", {"a": "b"}) == steps.Verdict(True, 0.9)
    json_lm = RecordingLM(ANSWERS["onepath.steps:read_totals"])
    with candidate(lm=json_lm):
        assert steps.read_totals("r") == steps.Totals(1200, ["a", "b"])
    assert "JSON object" in json_lm.sent[0][0]["content"]
    with candidate(lm=RecordingLM(ANSWERS["onepath.steps:find_address"])):
        assert steps.find_address("l") == {"street": "1 Main St", "city": "Oslo"}
    contact_lm = RecordingLM(ANSWERS["onepath.steps:extract_contact"])
    with candidate(lm=contact_lm):
        contact = steps.extract_contact("--\nAnn", steps.Address(street="s", city="c"))
    assert contact == steps.VipContact(name="Ann Lee", email=None, tags=["vip"], priority=1)
    system = contact_lm.sent[0][0]["content"]
    # Descriptions from pydantic Field(...), Annotated metadata and the Returns: section.
    for text in ("Full name as written.", "Short labels.", "1 for customers, 3 for everyone"):
        assert text in system
    assert '{"street": "s", "city": "c"}' in contact_lm.sent[0][-1]["content"]


class TwoAnswers(RecordingLM):
    """First an unparsable answer, then a good one: exercises the opt-in parse retry."""

    def __init__(self) -> None:
        super().__init__("")
        self.answers = ["[[ ## answer ## ]]\nmany", "[[ ## answer ## ]]\n3"]

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.sent.append([dict(m) for m in messages])
        return Completion(self.answers[len(self.sent) - 1])


def test_parse_retry_is_the_same_in_development_and_generated_code(tmp_path: Path) -> None:
    write_tree(plan_build(FIXTURE / "onepath", Lock()), tmp_path)
    built = _import_built(tmp_path)
    dev_lm, built_lm = TwoAnswers(), TwoAnswers()
    with candidate(lm=dev_lm):
        assert steps.count_words("a b c") == 3
    with using(built_lm):
        assert built.count_words("a b c") == 3
    assert dev_lm.sent == built_lm.sent and len(dev_lm.sent) == 2
    retry = dev_lm.sent[1]
    assert retry[-2] == {"role": "assistant", "content": "[[ ## answer ## ]]\nmany"}
    assert "`answer` must be int" in retry[-1]["content"]
    assert '"parse_retries": 1,' in (tmp_path / "onepath" / "steps.py").read_text()


class AsyncRecordingLM(RecordingLM):
    """Also serves awaited calls natively, recording them apart from sync ones."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.sent_async: list[list[dict[str, str]]] = []

    async def acomplete(self, messages: Any, **params: Any) -> Completion:
        self.sent_async.append([dict(m) for m in messages])
        return Completion(self.answer)


def test_awaitable_twins_send_what_the_sync_functions_send(tmp_path: Path) -> None:
    """`<name>_async` exists in development and in the build; all four paths send alike."""
    import asyncio

    states = {
        f.qualname: ir.FunctionState(
            "Async too.", ({k: v for k, v in _demo_for(f, ["d"]).items()},), f.signature.adapter
        )
        for f in FUNCTIONS
    }
    lock = Lock({f.qualname: LockEntry(f.signature.hash(), states[f.qualname]) for f in FUNCTIONS})
    write_tree(plan_build(FIXTURE / "onepath", lock), tmp_path)
    built = _import_built(tmp_path)
    inputs = _inputs('héllo "x"')
    for function in FUNCTIONS:
        name = function.__name__
        dev_lm, built_lm = (
            AsyncRecordingLM(ANSWERS[function.qualname]),
            AsyncRecordingLM(ANSWERS[function.qualname]),
        )
        with candidate(states=states, lm=dev_lm):
            dev_sync = function(**inputs[name])
            dev_async = asyncio.run(getattr(steps, f"{name}_async")(**inputs[name]))
        with using(built_lm):
            built_sync = getattr(built, name)(**inputs[name])
            built_async = asyncio.run(getattr(built, f"{name}_async")(**inputs[name]))
        assert dev_lm.sent == dev_lm.sent_async == built_lm.sent == built_lm.sent_async, name
        values = {repr(to_jsonable(v)) for v in (dev_sync, dev_async, built_sync, built_async)}
        assert len(values) == 1, (name, values)
        assert asyncio.iscoroutinefunction(getattr(built, f"{name}_async"))


# History and Image inputs (issue 18): the same one path, demos holding them included ----------

CONVERSATIONS = Path(__file__).parent / "fixtures" / "convpkg"
if str(CONVERSATIONS) not in sys.path:
    sys.path.insert(0, str(CONVERSATIONS))


def _png(shade: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes([shade]) * 2 for _ in range(2)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


CONVERSATION_ANSWERS = {
    "follow_up": "[[ ## answer ## ]]\npositive\n\n[[ ## completed ## ]]",
    "follow_up_json": '{"answer": "negative"}',
    "follow_up_cot": "[[ ## reasoning ## ]]\nflip\n\n[[ ## answer ## ]]\npositive",
    "describe_photo": "[[ ## answer ## ]]\nA grey square.\n\n[[ ## completed ## ]]",
    "compare_photos": '{"answer": "same"}',
}


@settings(max_examples=15, **BUILDS)
@given(
    texts=st.lists(hostile_text, min_size=1, max_size=4),
    turns=st.integers(0, 3),
    shades=st.lists(st.integers(0, 255), min_size=1, max_size=3),
    with_demos=st.booleans(),
    params=lm_params,
)
def test_history_and_image_inputs_send_identical_requests(
    tmp_path_factory: Any,
    texts: list[str],
    turns: int,
    shades: list[int],
    with_demos: bool,
    params: dict[str, Any],
) -> None:
    from convpkg import steps as conv

    from promptcast.context import SETTINGS
    from promptcast.lockfile import load_lock, save_lock
    from promptcast_runtime import History, Image

    text = itertools.cycle(texts)
    images = [Image.from_bytes(_png(s)) for s in shades]
    label = itertools.cycle(["positive", "negative"])

    def history(n: int) -> History:
        return History([{"message": next(text), "answer": next(label)} for _ in range(n)])

    def photo_history(n: int) -> History:
        return History([{"photos": images[:1], "note": None, "answer": "same"} for _ in range(n)])

    demos = {
        "follow_up": {"history": history(turns), "message": next(text), "answer": "negative"},
        "follow_up_json": {"history": history(1), "message": next(text), "answer": "positive"},
        "follow_up_cot": {
            "history": history(turns), "message": next(text), "reasoning": next(text),
            "answer": "positive",
        },
        "describe_photo": {"photo": images[-1], "question": next(text), "answer": next(text)},
        "compare_photos": {
            "photos": images, "note": images[0], "history": photo_history(1), "answer": "same",
        },
    }  # fmt: skip
    functions = [getattr(conv, name) for name in CONVERSATION_ANSWERS]
    states = {
        f.qualname: ir.FunctionState(
            instructions=next(text) or "Do the task.",
            demos=(to_jsonable(demos[f.__name__]),) if with_demos else (),
            adapter=f.signature.adapter,
            lm_params=params,
        )
        for f in functions
    }
    root = tmp_path_factory.mktemp("conv")
    lock_path = root / "promptcast.lock.json"
    entries = {f.qualname: LockEntry(f.signature.hash(), states[f.qualname]) for f in functions}
    save_lock(Lock(entries), lock_path)  # demo images go to promptcast.media/, by hash
    lock = load_lock(lock_path)
    assert "data:" not in lock_path.read_text()
    out = root / "built"
    write_tree(plan_build(CONVERSATIONS / "convpkg", lock), out)
    name = f"built_convpkg_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, out / "convpkg" / "steps.py")
    assert spec is not None and spec.loader is not None
    built = importlib.util.module_from_spec(spec)
    sys.modules[name] = built
    spec.loader.exec_module(built)
    inputs = {
        "follow_up": {"history": history(turns), "message": next(text)},
        "follow_up_json": {"history": history(turns), "message": next(text)},
        "follow_up_cot": {"history": history(turns), "message": next(text)},
        "describe_photo": {"photo": images[0], "question": next(text)},
        "compare_photos": {"photos": images, "note": None, "history": photo_history(turns)},
    }
    locked = {q: e.state for q, e in lock.entries.items()}
    before, SETTINGS.lock_path = SETTINGS.lock_path, lock_path  # dev reads the lock's media
    try:
        for function in functions:
            fn = function.__name__
            dev_lm = RecordingLM(CONVERSATION_ANSWERS[fn])
            built_lm = RecordingLM(CONVERSATION_ANSWERS[fn])
            scored_lm = RecordingLM(CONVERSATION_ANSWERS[fn])
            with candidate(states=locked, lm=dev_lm):
                dev_value = function(**inputs[fn])
            with candidate(states=states, lm=scored_lm):  # as the optimizer scored it, inline
                function(**inputs[fn])
            with using(built_lm):
                built_value = getattr(built, fn)(**inputs[fn])
            assert dev_lm.bodies == built_lm.bodies == scored_lm.bodies, fn
            assert to_jsonable(dev_value) == to_jsonable(built_value)
    finally:
        SETTINGS.lock_path = before


@settings(max_examples=15, **BUILDS)
@given(
    street=hostile_text,
    city=hostile_text,
    adapter=st.sampled_from(["chat", "json", "dspy"]),
)
def test_a_structured_demo_read_back_from_a_saved_lock_renders_as_it_was_scored(
    tmp_path_factory: Any, street: str, city: str, adapter: str
) -> None:
    """A lock stores JSON with sorted keys, so a demo's `Address` comes back as
    `{"city", "street"}`; every adapter renders it in the class's field order, so the built
    module and development (both reading the saved lock) send what the optimizer scored from
    the in-memory demo (`{"street", "city"}`)."""
    from promptcast.lockfile import load_lock, save_lock

    function = steps.extract_contact
    demo = to_jsonable(
        {
            "signature_block": street,
            "known": steps.Address(street=street, city=city),
            "reasoning": city,
            "name": "Ann Lee",
            "email": None,
            "tags": ["vip"],
            "priority": 1,
        }
    )
    assert list(demo["known"]) == ["street", "city"]
    scored = ir.FunctionState(instructions="Do the task.", demos=(demo,), adapter=adapter)
    root = tmp_path_factory.mktemp("sorted")
    lock_path = root / "promptcast.lock.json"
    save_lock(Lock({function.qualname: LockEntry(function.signature.hash(), scored)}), lock_path)
    lock = load_lock(lock_path)
    read_back = lock.entries[function.qualname].state
    assert list(read_back.demos[0]["known"]) == ["city", "street"]  # what made this a bug
    out = root / "built"
    write_tree(plan_build(FIXTURE / "onepath", lock), out)
    built = _import_built(out)
    inputs = {"signature_block": city, "known": {"city": city, "street": street}}
    answer = ANSWERS[function.qualname]
    scored_lm, dev_lm, built_lm = RecordingLM(answer), RecordingLM(answer), RecordingLM(answer)
    with candidate(states={function.qualname: scored}, lm=scored_lm):
        function(**inputs)
    with candidate(states={function.qualname: read_back}, lm=dev_lm):
        function(**inputs)
    with using(built_lm):
        built.extract_contact(**inputs)
    assert scored_lm.bodies == dev_lm.bodies == built_lm.bodies
    in_field_order = json.dumps({"street": street, "city": city}, ensure_ascii=False)
    assert any(in_field_order in m["content"] for m in scored_lm.sent[0])
