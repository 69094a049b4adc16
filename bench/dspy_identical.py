"""Byte-identical check of `adapter="dspy"` against DSPy 3.4.1's own `ChatAdapter.format`.

Runs in the project venv; drives bench/.venv-dspy in a subprocess (`dspy_identical_dspy.py`),
so DSPy never enters the project's environment:

    .venv/bin/python bench/dspy_identical.py                      # compare, print a table
    .venv/bin/python bench/dspy_identical.py --write-fixtures     # also refresh the golden file

Hypothesis draws, for each signature of `dspy_identical_cases.py` (Literal, int, list, dict,
pydantic outputs, Enum, Optional, tuple, chain of thought), instructions, demos (complete,
incomplete -- some fields missing -- and unusable ones with no input or no output, which DSPy
drops) and inputs; both sides render them, and every message must be equal, byte for byte.
Each case also carries model-like completions (well formed, and damaged: a lower-cased label,
a missing marker, prose around the answer); where DSPy's `ChatAdapter.parse` succeeds ours must
return the same values, and where DSPy fails (and would spend a second call on its JSONAdapter
fallback) ours either repairs or raises ParseError -- both counted.

`--write-fixtures` stores the cases with DSPy's messages and parses in
tests/fixtures/from_dspy/chat_adapter_golden.json, which `tests/test_dspy_adapter.py` checks
without DSPy. Results: bench/results/dspy_identical.json.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from dspy_identical_cases import SIGNATURES, TYPES  # noqa: E402

sys.path.remove(str(HERE))  # imported by tests too: leave their import path as it was
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from promptcast_runtime import ParseError  # noqa: E402
from promptcast_runtime.adapters import get_adapter  # noqa: E402
from promptcast_runtime.signature import REASONING, Field, Signature  # noqa: E402

GOLDEN = ROOT / "tests" / "fixtures" / "from_dspy" / "chat_adapter_golden.json"
RESULTS = HERE / "results" / "dspy_identical.json"
DSPY_PY = HERE / ".venv-dspy" / "bin" / "python"

_chars = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF)
    | st.sampled_from(["\n", " ", "«", "»", "{", "}", '"', "'", "\t", "é"]),
    max_size=30,
)
text = _chars | st.tuples(_chars, st.sampled_from(["[[ ## x ## ]]", "  ", "\n\n"]), _chars).map(
    "".join
)
small_int = st.integers(-(10**6), 10**6)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _in_order(*keys: str) -> Any:
    """DSPy saves a model's demo value in `model_dump` (declared) order."""
    return lambda d: {k: d[k] for k in keys}


def _sorted(d: dict[str, Any]) -> dict[str, Any]:
    """A free dict's demo keys, sorted: a lock stores JSON with sorted keys, so only sorted
    free dicts can come back as DSPy saved them (docs/migrating-from-dspy.md)."""
    return dict(sorted(d.items()))


order = st.fixed_dictionaries(
    {"item": text, "quantity": small_int, "unit_price": finite, "express": st.booleans()}
).map(_in_order("item", "quantity", "unit_price", "express"))
address = st.fixed_dictionaries({"street": text, "city": text}).map(_in_order("street", "city"))

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": text,
    "int": small_int,
    "float": finite,
    "bool": st.booleans(),
    "trec": st.sampled_from(["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]),
    "sentiment": st.sampled_from(["positive", "negative"]),
    "quoted": st.sampled_from(["it's", 'say "hi"', "plain"]),
    "small_int": st.sampled_from([1, 2, 3]),
    "list_str": st.lists(text, max_size=4),
    "list_int": st.lists(small_int, max_size=4),
    "dict_int": st.dictionaries(text, small_int, max_size=3).map(_sorted),
    "dict_any": st.dictionaries(
        text,
        st.none() | st.booleans() | small_int | text | st.lists(small_int, max_size=2),
        max_size=3,
    ).map(_sorted),
    "opt_int": st.none() | small_int,
    "opt_str": st.none() | text,
    "tuple": st.tuples(small_int, text).map(list),
    "color": st.sampled_from(["red", "green"]),
    "list_color": st.lists(st.sampled_from(["red", "green"]), max_size=3),
    "order": order,
    "customer": st.fixed_dictionaries(
        {
            "name": text,
            "addresses": st.lists(address, max_size=2),
            "tier": st.sampled_from(["gold", "silver", None]),
        }
    ).map(_in_order("name", "addresses", "tier")),
    "list_order": st.lists(order, max_size=2),
}


def our_signature(name: str, instructions: str) -> Signature:
    """The runtime signature `build_step` makes for the same DSPy signature (what
    `promptcast from-dspy` writes: DSPy's cleaned instructions, `${name}` for no desc)."""
    spec = SIGNATURES[name]

    def fields(rows: list[tuple[str, str, str]]) -> tuple[Field, ...]:
        return tuple(Field(f, TYPES[k], d or "${" + f + "}") for f, k, d in rows)

    outputs = fields(spec["outputs"])
    if spec["cot"]:
        outputs = (REASONING, *outputs)
    return Signature(inspect.cleandoc(instructions), fields(spec["inputs"]), outputs)


@st.composite
def cases(draw: st.DrawFn, name: str) -> dict[str, Any]:
    spec = SIGNATURES[name]
    rows = [*spec["inputs"], *spec["outputs"]]
    if spec["cot"]:
        rows = [*rows, ("reasoning", "str", "")]
    instructions = draw(
        st.sampled_from(
            [
                "Classify the kind of answer a question asks for.",
                "Solve it.\n\n    Step one: read.\n      Step two: answer.\n",
                "\n    Indented docstring line.\n    Second line.\n    ",
            ]
        )
        | text.filter(lambda t: t.strip() != "")
    )
    demos = []
    for _ in range(draw(st.integers(0, 4))):
        complete = draw(st.booleans())
        demo = {f: draw(VALUES[k]) for f, k, _ in rows if complete or draw(st.integers(0, 9)) < 6}
        demos.append(demo)
    inputs = {f: draw(VALUES[k]) for f, k, _ in spec["inputs"]}
    completions = [draw(completion(name))]
    completions.append(draw(damaged(completions[0])))
    return {
        "signature": name,
        "instructions": instructions,
        "demos": demos,
        "inputs": inputs,
        "completions": completions,
    }


@st.composite
def completion(draw: st.DrawFn, name: str) -> str:
    """A well-formed answer in DSPy's format, rendered as a demo's assistant turn would be."""
    from promptcast_runtime.dspy_adapter import _assistant_content

    spec = SIGNATURES[name]
    signature = our_signature(name, "x")
    values = {f: draw(VALUES[k]) for f, k, _ in spec["outputs"]}
    if spec["cot"]:
        values["reasoning"] = draw(text)
    return _assistant_content(signature, values, "")


@st.composite
def damaged(draw: st.DrawFn, good: str) -> str:
    """What small models do to the format: lower case, a lost marker, prose, a repeat."""
    how = draw(st.sampled_from(["lower", "drop_marker", "prose", "repeat", "spaced", "bare"]))
    if how == "lower":
        return good.lower()
    if how == "drop_marker":
        lines = good.splitlines()
        markers = [i for i, line in enumerate(lines) if line.startswith("[[ ## ")]
        drop = draw(st.sampled_from(markers))
        return "\n".join(line for i, line in enumerate(lines) if i != drop)
    if how == "prose":
        return "Sure! Here is my answer.\n" + good + "\nHope this helps."
    if how == "repeat":
        return good + "\n" + good.replace("]]\n", "]]\nother ", 1)
    if how == "spaced":
        return good.replace("[[ ## ", "[[## ")
    return good.split("\n", 1)[1].split("\n\n", 1)[0]  # the first value alone


def draw_cases(per_signature: int) -> list[dict[str, Any]]:
    drawn: list[dict[str, Any]] = []
    for name in SIGNATURES:

        @settings(
            max_examples=per_signature,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(cases(name))
        def collect(case: dict[str, Any]) -> None:
            drawn.append(case)

        collect()
    return drawn


def dspy_side(cases_: list[dict[str, Any]]) -> dict[str, Any]:
    if not DSPY_PY.exists():
        sys.exit(f"{DSPY_PY} is missing; run `bash bench/setup_dspy.sh` first")
    proc = subprocess.run(
        [str(DSPY_PY), str(HERE / "dspy_identical_dspy.py")],
        input=json.dumps(cases_, ensure_ascii=False),
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    if proc.returncode:
        sys.exit(f"the DSPy side failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def jsonable(value: Any) -> Any:
    """Parsed values in the DSPy side's JSON form (models dumped, enums tagged)."""
    import enum

    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return {"enum": value.value}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def compare(case: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """One case: whether every message is identical, and how the parses compare."""
    adapter = get_adapter("dspy")
    signature = our_signature(case["signature"], case["instructions"])
    # Our demos come back from a lock: JSON with sorted keys, as `promptcast build` reads them.
    demos = json.loads(json.dumps(case["demos"], sort_keys=True))
    ours = adapter.format(signature, demos, case["inputs"])
    row: dict[str, Any] = {"signature": case["signature"], "identical": ours == theirs["messages"]}
    if not row["identical"]:
        row["diff"] = first_difference(ours, theirs["messages"])
    row["instructions_match"] = signature.instructions == theirs["instructions"]
    row["parse"] = []
    for text_, their in zip(case["completions"], theirs["parses"], strict=True):
        try:
            mine: dict[str, Any] = {"ok": jsonable(adapter.parse(signature, text_))}
        except ParseError as exc:
            mine = {"error": "ParseError", "reason": exc.reason}
        if "ok" in their:
            outcome = "same" if mine == their else "different"
            if "written more than once" in str(mine.get("reason", "")):
                outcome = "ambiguous"  # DSPy took the first of two different answers
        else:
            outcome = "repaired" if "ok" in mine else "parse_error"
        row["parse"].append(outcome)
        if outcome == "different":
            row.setdefault("parse_diffs", []).append({"text": text_, "ours": mine, "dspy": their})
    return row


def first_difference(ours: list[dict[str, str]], theirs: list[dict[str, str]]) -> str:
    if len(ours) != len(theirs):
        return f"{len(ours)} messages vs DSPy's {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            ca, cb = a["content"], b["content"]
            at = next(
                (j for j in range(min(len(ca), len(cb))) if ca[j] != cb[j]), min(len(ca), len(cb))
            )
            return f"message {i} ({a['role']}/{b['role']}) at {at}: ours {ca[at - 40 : at + 60]!r} dspy {cb[at - 40 : at + 60]!r}"
    return ""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-signature", type=int, default=40)
    p.add_argument("--write-fixtures", action="store_true")
    args = p.parse_args()
    t0 = time.perf_counter()
    drawn = draw_cases(args.per_signature)
    theirs = dspy_side(drawn)
    rows = [compare(c, t) for c, t in zip(drawn, theirs["results"], strict=True)]
    summary: dict[str, Any] = {"dspy_version": theirs["dspy_version"], "signatures": {}}
    for name in SIGNATURES:
        mine = [r for r in rows if r["signature"] == name]
        outcomes = [o for r in mine for o in r["parse"]]
        mine_cases = [c for c in drawn if c["signature"] == name]
        summary["signatures"][name] = {
            "cases": len(mine),
            "identical": sum(r["identical"] for r in mine),
            "messages": sum(
                len(t["messages"])
                for c, t in zip(drawn, theirs["results"], strict=True)
                if c["signature"] == name
            ),
            "demos": sum(len(c["demos"]) for c in mine_cases),
            "parse_same": outcomes.count("same"),
            "parse_different": outcomes.count("different"),
            "dspy_took_first_of_two_we_raised": outcomes.count("ambiguous"),
            "dspy_failed_we_repaired": outcomes.count("repaired"),
            "dspy_failed_we_raised": outcomes.count("parse_error"),
        }
    summary["all_identical"] = all(r["identical"] for r in rows)
    summary["mismatches"] = [r for r in rows if not r["identical"]][:10]
    summary["parse_differences"] = [d for r in rows for d in r.get("parse_diffs", [])][:20]
    program_ok = check_program(args.write_fixtures)
    summary["converted_program_identical"] = program_ok
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    for name, s in summary["signatures"].items():
        print(
            f"{name:16} cases {s['cases']:3}  identical {s['identical']:3}  messages {s['messages']:4}"
            f"  parse same {s['parse_same']:3} different {s['parse_different']}"
            f" ambiguous {s['dspy_took_first_of_two_we_raised']}"
            f" repaired {s['dspy_failed_we_repaired']} raised {s['dspy_failed_we_raised']}"
        )
    print(f"all identical: {summary['all_identical']} (DSPy {theirs['dspy_version']}); {RESULTS}")
    if args.write_fixtures:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        golden = {
            "dspy_version": theirs["dspy_version"],
            "generated_by": "bench/dspy_identical.py --write-fixtures",
            "cases": [
                {**c, "dspy_messages": t["messages"], "dspy_parses": t["parses"]}
                for c, t in zip(drawn, theirs["results"], strict=True)
            ],
        }
        GOLDEN.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n")
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size // 1024} KiB)")
    return 0 if summary["all_identical"] and program_ok else 1


PROGRAM = ROOT / "tests" / "fixtures" / "from_dspy" / "qa_program.py"
PROGRAM_STATE = ROOT / "tests" / "fixtures" / "from_dspy" / "qa_state.json"
PROGRAM_GOLDEN = ROOT / "tests" / "fixtures" / "from_dspy" / "qa_golden.json"
PROGRAM_INPUTS = {
    "generate.predict": {"question": "What is 7 * 6?"},
    "judge": {"question": "What is 7 * 6?", "answer": "Answer: 42"},
}


def check_program(write: bool) -> bool:
    """A converted program end to end: DSPy loads the saved state into the program and formats
    each predictor's call; `from-dspy` converts the same source + state, `build` builds it,
    and the built module's steps must send the same messages."""
    request = {
        "program": str(PROGRAM),
        "module": "QA",
        "state": str(PROGRAM_STATE),
        "inputs": PROGRAM_INPUTS,
    }
    proc = subprocess.run(
        [str(DSPY_PY), str(HERE / "dspy_identical_dspy.py"), "--program"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    if proc.returncode:
        sys.exit(f"the DSPy side failed on {PROGRAM}:\n{proc.stderr[-4000:]}")
    theirs = json.loads(proc.stdout)
    ours = built_program_messages()
    same = all(ours[name] == theirs[name] for name in PROGRAM_INPUTS)
    print(f"converted program {PROGRAM.name}: built module's messages identical to DSPy's: {same}")
    if write:
        golden = {"dspy_version": "3.4.1", "inputs": PROGRAM_INPUTS, "messages": theirs}
        PROGRAM_GOLDEN.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n")
    return same


def built_program_messages() -> dict[str, list[dict[str, str]]]:
    """from-dspy + build the fixture program in a temp dir; each step's messages."""
    import importlib
    import tempfile

    from promptcast.dspy_import import convert

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        convert(PROGRAM, PROGRAM_STATE, project, package="qa_built")
        proc = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "promptcast"), "build"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            sys.exit(f"promptcast build failed:\n{proc.stderr}")
        sys.path.insert(0, str(project / "build"))
        try:
            module = importlib.import_module("qa_built.qa_program")
            steps = {"generate.predict": module._GENERATE, "judge": module._JUDGE}
            return {name: steps[name].messages(PROGRAM_INPUTS[name]) for name in steps}
        finally:
            sys.path.remove(str(project / "build"))


if __name__ == "__main__":
    sys.exit(main())
