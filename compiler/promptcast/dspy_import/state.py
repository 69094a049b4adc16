"""A DSPy program's saved state (`program.save("x.json")`), read as plain JSON.

DSPy writes, per predictor (named as `named_predictors()` names them: `classify`,
`cot.predict`, `agent.react`, ...), its demos, its signature's instructions and each field's
prefix and description, and its LM; plus `metadata.dependency_versions`. Loading it back,
DSPy replaces the source's instructions and descriptions with the saved ones, field by field
in signature order; this does the same, and refuses a state that does not fit the source
(a different number of fields, a predictor the source lacks) instead of guessing.

A pickled state (`save_program=True`, or a `.pkl`) is refused: reading it would run code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .model import DPredictor, DProgram, DSPyImportError

REASONING_DESC = "${reasoning}"


def load_state(path: Path) -> dict[str, Any]:
    if path.suffix in (".pkl", ".pickle") or path.is_dir():
        raise DSPyImportError(
            f"{path}: a pickled or whole-program save; from-dspy reads the JSON state of"
            ' `program.save("program.json")` (reading a pickle would run its code)'
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DSPyImportError(f"{path}: not a readable DSPy state JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DSPyImportError(f"{path}: a DSPy state is a JSON object of predictor states")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def dspy_version(state: dict[str, Any]) -> str | None:
    meta = state.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("dependency_versions"), dict):
        version = meta["dependency_versions"].get("dspy")
        return str(version) if version is not None else None
    return None


def apply_state(program: DProgram, state: dict[str, Any], path: Path) -> list[str]:
    """Overlay the saved instructions, descriptions and demos onto `program`'s predictors.

    Returns notes for the report. A module-level state (one module) is keyed by predictor
    name directly; with several modules in one file, pass the state of the one saved.
    """
    notes: list[str] = []
    predictors = {key: p for m in program.modules for p in m.predictors for key in p.state_keys}
    saved = {k: v for k, v in state.items() if k != "metadata"}
    unknown = sorted(set(saved) - set(predictors))
    if unknown:
        raise DSPyImportError(
            f"{path}: the state has predictor(s) {unknown} that {program.path} does not define"
            f" (it defines {sorted(predictors)}); was it saved from this program?"
        )
    for key, predictor in predictors.items():
        entry = saved.get(key)
        if entry is None:
            raise DSPyImportError(
                f"{path}: no state for predictor `{key}` ({program.path}:{predictor.line})"
            )
        if not isinstance(entry, dict) or not isinstance(entry.get("signature"), dict):
            raise DSPyImportError(f"{path}: predictor `{key}`: not a DSPy predictor state")
        if entry.get("fields"):
            raise DSPyImportError(
                f"{path}: predictor `{key}` has decision `fields`, which from-dspy does not convert"
            )
        if predictor.kind == "react":
            notes.extend(_react_state(key, predictor, entry, path))
            continue
        _overlay_signature(key, predictor, entry["signature"], path)
        predictor.demos = _demos(key, predictor, entry.get("demos", []), path)
        notes.extend(_unsorted_dicts(key, predictor))
        predictor.state_key = key
        lm = entry.get("lm")
        if isinstance(lm, dict):
            for param in ("temperature", "max_tokens", "top_p", "stop", "seed"):
                value = lm.get(param)
                if value is not None:
                    predictor.lm_params.setdefault(param, value)
    return notes


def _overlay_signature(key: str, predictor: DPredictor, saved: dict[str, Any], path: Path) -> None:
    fields = list(predictor.signature.fields)
    saved_fields = saved.get("fields", [])
    expected = len(fields) + (1 if predictor.kind == "chain_of_thought" else 0)
    if not isinstance(saved_fields, list) or len(saved_fields) != expected:
        raise DSPyImportError(
            f"{path}: predictor `{key}` was saved with {len(saved_fields)} fields; the source"
            f" signature ({predictor.line}) has {expected}: the state belongs to another"
            " version of the program"
        )
    instructions = saved.get("instructions")
    if not isinstance(instructions, str):
        raise DSPyImportError(f"{path}: predictor `{key}`: instructions must be text")
    predictor.signature.instructions = instructions
    # DSPy's field order: inputs, then outputs (a chain of thought's reasoning first among them).
    order = [f for f in fields if f.role == "input"]
    outputs = [f for f in fields if f.role == "output"]
    saved_iter = iter(saved_fields)
    for f in order:
        _set_desc(key, f, next(saved_iter), path)
    if predictor.kind == "chain_of_thought":
        reasoning = next(saved_iter)
        if reasoning.get("description") != REASONING_DESC:
            raise DSPyImportError(
                f"{path}: predictor `{key}`: a reasoning field described"
                f" {reasoning.get('description')!r} (promptcast's chain of thought keeps DSPy's"
                f" default {REASONING_DESC!r})"
            )
    for f in outputs:
        _set_desc(key, f, next(saved_iter), path)


def _set_desc(key: str, field: Any, saved: Any, path: Path) -> None:
    if not isinstance(saved, dict) or not isinstance(saved.get("description"), str):
        raise DSPyImportError(f"{path}: predictor `{key}`: a field without a description")
    desc = saved["description"]
    field.desc = "" if desc == "${" + field.name + "}" else desc


def _demos(key: str, predictor: DPredictor, demos: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(demos, list):
        raise DSPyImportError(f"{path}: predictor `{key}`: demos must be a list")
    names = [f.name for f in predictor.signature.fields]
    if predictor.kind == "chain_of_thought":
        names.append("reasoning")
    out: list[dict[str, Any]] = []
    for i, demo in enumerate(demos, 1):
        if not isinstance(demo, dict):
            raise DSPyImportError(f"{path}: predictor `{key}`, demo {i}: not an object")
        kept = {n: demo[n] for n in names if n in demo}
        for name, value in kept.items():
            problem = _json_problem(value)
            if problem:
                raise DSPyImportError(
                    f"{path}: predictor `{key}`, demo {i}, field `{name}`: {problem}"
                )
        out.append(kept)  # `augmented` and other bookkeeping keys DSPy never renders
    return out


def _unsorted_dicts(key: str, predictor: DPredictor) -> list[str]:
    """Demo values of a free `dict[...]` field whose keys are not sorted: the lock stores
    JSON with sorted keys, so the converted prompt lists them sorted where DSPy kept the saved
    order (a model's fields are put back in declared order; a free dict has none)."""
    free = {f.name for f in predictor.signature.fields if f.annotation.startswith(("dict", "Dict"))}
    notes = []
    for i, demo in enumerate(predictor.demos, 1):
        for name in sorted(free & set(demo)):
            value = demo[name]
            if isinstance(value, dict) and list(value) != sorted(value):
                notes.append(
                    f"predictor `{key}`, demo {i}, field `{name}`: a dict whose keys DSPy renders"
                    " in saved order; the lock sorts them, so this demo's text differs from DSPy's"
                )
    return notes


def _json_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    if isinstance(value, dict):
        return next((p for v in value.values() if (p := _json_problem(v))), None)
    if isinstance(value, list):
        return next((p for v in value if (p := _json_problem(v))), None)
    return None


def _react_state(key: str, predictor: DPredictor, entry: dict[str, Any], path: Path) -> list[str]:
    if entry.get("demos"):
        raise DSPyImportError(
            f"{path}: predictor `{key}` has demos; DSPy's ReAct trajectory demos have no"
            " promptcast equivalent (re-optimize the converted @pc.react with `promptcast"
            " optimize`)"
        )
    if key.endswith(".extract.predict"):
        instructions = entry["signature"].get("instructions")
        if isinstance(instructions, str):
            predictor.signature.instructions = instructions
    return [
        f"`{predictor.attr}` (ReAct): instructions kept; promptcast's tool loop asks in its own"
        " turn format, so its prompts are not DSPy's"
    ]
