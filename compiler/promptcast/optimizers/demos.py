"""Few-shot demos from labeled examples and from traces, in the JSON form the lock stores.

A demo is one dict of field name -> JSON-form value (`promptcast_runtime.to_jsonable`), inputs and
outputs together: exactly what the adapter renders as a user/assistant turn pair, and exactly
what the lock and the generated code hold.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from promptcast_runtime import to_jsonable

from ..engine.program import StepCall
from ..evaluate.data import Example
from ..ir import Demo, FieldSpec, Signature, TypeSchema, canonical_json


def labeled_demo(signature: Signature, example: Example) -> Demo | None:
    """The example's values for the step's fields (inputs, then expected outputs), or None.

    None when the example has none of the step's inputs or none of its outputs: such a demo
    would show the model only "Not supplied" placeholders. (An inner step of a program usually
    has no labels of its own; it gets bootstrapped demos instead.) None too when a value the
    example has under a field's name does not fit that field's type: a program's `answer`
    column (a recipe name) is no label for an inner `bool` step that also calls its output
    `answer` -- a demo teaching a wrong type is worse than no demo.
    """
    inputs = _fitting(signature.inputs, example)
    outputs = _fitting(signature.outputs, example)
    if not inputs or not outputs:
        return None
    return {**inputs, **outputs}


def _fitting(fields: Sequence[FieldSpec], example: Example) -> dict[str, Any] | None:
    """The example's values for `fields` in JSON form; None when one present does not fit."""
    values: dict[str, Any] = {}
    for field in fields:
        if field.name not in example.data:
            continue
        value = to_jsonable(example.data[field.name])
        if not fits(value, field.type):
            return None
        values[field.name] = value
    return values


def fits(value: Any, schema: TypeSchema) -> bool:
    """Whether a JSON-form value is one of `schema`'s values (what a demo may show for it)."""
    kind = schema.kind
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "none":
        return value is None
    if kind in ("literal", "enum"):
        return any(type(value) is type(v) and value == v for v in schema.values)
    if kind == "optional":
        return value is None or fits(value, schema.args[0])
    if kind == "list":
        return isinstance(value, list) and all(fits(v, schema.args[0]) for v in value)
    if kind == "tuple":
        items = schema.args  # fixed length: the frontend refuses tuple[T, ...]
        return (
            isinstance(value, list)
            and len(value) == len(items)
            and all(fits(v, t) for v, t in zip(value, items, strict=True))
        )
    if kind == "dict":
        return isinstance(value, dict) and all(
            isinstance(k, str) and fits(v, schema.args[-1]) for k, v in value.items()
        )
    if kind == "object":
        names = {f.name: f for f in schema.fields}
        return isinstance(value, dict) and all(
            k in names and fits(v, names[k].type) for k, v in value.items()
        )
    return True  # a kind this check does not know: leave it to the adapter


def labeled_demos(
    functions: Mapping[str, Signature],
    examples: Sequence[Example],
    k: int,
    rng: random.Random,
) -> dict[str, tuple[Demo, ...]]:
    """DSPy's LabeledFewShot: each function (in qualname order) gets `rng.sample` of k examples.

    One rng serves all functions in turn, as in DSPy, so each function gets its own sample.
    """
    result: dict[str, tuple[Demo, ...]] = {}
    for qualname in sorted(functions):
        if k <= 0 or not examples:
            result[qualname] = ()
            continue
        sample = rng.sample(list(examples), min(k, len(examples)))
        demos = (labeled_demo(functions[qualname], ex) for ex in sample)
        result[qualname] = tuple(d for d in demos if d is not None)
    return result


def trace_demo(record: StepCall) -> Demo:
    """A traced call as a demo: its inputs and every output field (reasoning included)."""
    return {
        **{str(k): to_jsonable(v) for k, v in record.inputs.items()},
        **{str(k): to_jsonable(v) for k, v in record.fields.items()},
    }


def pick_one(demos: Sequence[Demo]) -> Demo:
    """One demo of a function called several times in one example (DSPy's rule).

    Half the time the last call, else one of the earlier ones, chosen by an rng seeded with the
    demos' content -- so the choice is deterministic without any global seed.
    """
    if len(demos) == 1:
        return demos[0]
    digest = hashlib.sha256(canonical_json(list(demos)).encode()).hexdigest()
    rng = random.Random(int(digest[:16], 16))
    return rng.choice(list(demos[:-1])) if rng.random() < 0.5 else demos[-1]
